//! A log event and the ways one arrives: the contract's `log_type`/`log_data`, a line of a
//! batch, or a CloudEvent from the queue (`logs.<category>.<service>`).

use platform::ApiError;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::settings::{Retention, RetentionBytes};

/// The four categories; each has its own retention and read permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    UserActivity,
    Debug,
    Terminal,
    Console,
}

impl Category {
    pub const ALL: [Category; 4] = [
        Category::UserActivity,
        Category::Debug,
        Category::Terminal,
        Category::Console,
    ];

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Category::UserActivity => "user_activity",
            Category::Debug => "debug",
            Category::Terminal => "terminal",
            Category::Console => "console",
        }
    }

    pub fn retention_days(self, retention: &Retention) -> u32 {
        match self {
            Category::UserActivity => retention.user_activity,
            Category::Debug => retention.debug,
            Category::Terminal => retention.terminal,
            Category::Console => retention.console,
        }
    }

    /// The category's byte budget; 0 for none.
    pub fn retention_bytes(self, budget: &RetentionBytes) -> u64 {
        match self {
            Category::UserActivity => budget.user_activity,
            Category::Debug => budget.debug,
            Category::Terminal => budget.terminal,
            Category::Console => budget.console,
        }
    }
}

pub const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "fatal"];

/// One stored event.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LogEvent {
    /// The event id (a UUID for events from the queue): storing it twice stores it once.
    pub id: String,
    /// When it happened (RFC 3339; Unix milliseconds inside).
    #[serde(
        rename = "time",
        serialize_with = "platform::time_fmt::millis_as_rfc3339"
    )]
    #[schema(value_type = String, format = DateTime)]
    pub ts: i64,
    #[schema(value_type = String)]
    pub category: Category,
    pub service: String,
    pub level: String,
    /// The acting user's id; null when a service or an operator acted.
    pub actor_id: Option<String>,
    /// The acting user's username, or `operator:<login>` for a command at the machine.
    pub actor_name: Option<String>,
    /// The service that acted (a service client, or a service's own worker).
    pub actor_service: Option<String>,
    /// The bot the event concerns.
    pub bot_id: Option<String>,
    /// The team the event belongs to (the bot's or user's, else the actor's); Managers read
    /// their own team's events and their own.
    pub team: Option<String>,
    pub action: Option<String>,
    pub request_id: Option<String>,
    pub message: String,
    /// Everything else the event carried.
    #[schema(value_type = Object)]
    pub data: Value,
}

fn text(map: &Map<String, Value>, key: &str, max: usize) -> Option<String> {
    map.get(key)
        .and_then(Value::as_str)
        .map(|s| s.chars().take(max).collect::<String>())
        .filter(|s| !s.is_empty())
}

/// Cuts a message to `max` bytes on a character boundary.
pub fn cut(mut message: String, max: usize) -> String {
    if message.len() > max {
        let mut end = max;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

/// A timestamp as RFC 3339 or Unix milliseconds.
pub fn parse_timestamp(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .ok()
                .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        }
        _ => None,
    }
}

/// Who submitted an event over HTTP. A person is the event's actor, in their team; a
/// service client is its actor service and may name the user it acts for (`user_id`) and the
/// team the event belongs to (`team`).
pub struct Submitter<'a> {
    /// A user id, or `client:<id>`.
    pub id: &'a str,
    pub username: Option<&'a str>,
    pub team: Option<&'a str>,
    pub is_service: bool,
}

/// Who an event says acted, in its three fields.
#[derive(Debug, Default, PartialEq)]
struct Actor {
    id: Option<String>,
    name: Option<String>,
    service: Option<String>,
}

/// An event from the contract's `{"log_type","log_data":{...}}` (also one line of a batch).
pub fn from_submission(
    log_type: &str,
    log_data: Value,
    submitter: &Submitter<'_>,
    now_ms: i64,
    max_message_bytes: usize,
) -> Result<LogEvent, ApiError> {
    let category = Category::parse(log_type).ok_or_else(|| {
        ApiError::invalid_data("log_type must be user_activity, debug, terminal or console")
    })?;
    let Value::Object(mut data) = log_data else {
        return Err(ApiError::invalid_data("log_data must be an object"));
    };
    let ts = submitted_time(&data, now_ms)?;
    let message = match data.get("message") {
        Some(Value::String(m)) if !m.is_empty() => cut(m.clone(), max_message_bytes),
        _ => {
            return Err(ApiError::invalid_data(
                "log_data.message: a non-empty string",
            ));
        }
    };
    let service = text(&data, "source", 64)
        .ok_or_else(|| ApiError::invalid_data("log_data.source: the emitting service or app"))?;
    let level = submitted_level(&data)?;
    let (actor, team) = if submitter.is_service {
        let actor = Actor {
            id: text(&data, "user_id", 128),
            name: None,
            service: Some(submitter.id.trim_start_matches("client:").to_string()),
        };
        (actor, text(&data, "team", 128))
    } else {
        let actor = Actor {
            id: Some(submitter.id.to_string()),
            name: submitter.username.map(str::to_string),
            service: None,
        };
        (actor, submitter.team.map(str::to_string))
    };
    let bot_id = text(&data, "bot_id", 128);
    let action = text(&data, "action", 128);
    let request_id = text(&data, "request_id", 128);
    let id = submitted_id(&data)?;
    for key in [
        "id",
        "timestamp",
        "message",
        "source",
        "level",
        "user_id",
        "bot_id",
        "team",
        "action",
        "request_id",
    ] {
        data.remove(key);
    }
    Ok(LogEvent {
        id,
        ts,
        category,
        service,
        level,
        actor_id: actor.id,
        actor_name: actor.name,
        actor_service: actor.service,
        bot_id,
        team,
        action,
        request_id,
        message,
        data: Value::Object(data),
    })
}

/// `log_data.timestamp`: required, and at most a day ahead of now.
fn submitted_time(data: &Map<String, Value>, now_ms: i64) -> Result<i64, ApiError> {
    let ts = match data.get("timestamp") {
        Some(value) => parse_timestamp(value).ok_or_else(|| {
            ApiError::invalid_data("log_data.timestamp: RFC 3339 or Unix milliseconds")
        })?,
        None => return Err(ApiError::invalid_data("log_data.timestamp is required")),
    };
    if ts > now_ms + 24 * 3600 * 1000 {
        return Err(ApiError::invalid_data(
            "log_data.timestamp is more than a day ahead",
        ));
    }
    Ok(ts)
}

/// `log_data.level`, lower-cased; `info` when absent.
fn submitted_level(data: &Map<String, Value>) -> Result<String, ApiError> {
    match data.get("level") {
        None => Ok("info".to_string()),
        Some(Value::String(l)) if LEVELS.contains(&l.to_ascii_lowercase().as_str()) => {
            Ok(l.to_ascii_lowercase())
        }
        Some(_) => Err(ApiError::invalid_data(
            "log_data.level: trace, debug, info, warn, error or fatal",
        )),
    }
}

/// `log_data.id`, the submitter's idempotency key; a new UUIDv7 when absent.
fn submitted_id(data: &Map<String, Value>) -> Result<String, ApiError> {
    match data.get("id") {
        Some(Value::String(id)) if (1..=128).contains(&id.len()) => Ok(id.clone()),
        Some(_) => Err(ApiError::invalid_data("log_data.id: 1 to 128 characters")),
        None => Ok(uuid::Uuid::now_v7().to_string()),
    }
}

/// Replaces every NUL character in keys and strings with U+FFFD. The queue carries what
/// services recorded, which no one refuses at an edge, and the store cannot hold a NUL
/// (PostgreSQL): kept as it was, such an event would be retried forever.
fn replace_nul(value: &mut Value) {
    match value {
        Value::String(text) if text.contains('\0') => *text = text.replace('\0', "\u{FFFD}"),
        Value::Array(items) => items.iter_mut().for_each(replace_nul),
        Value::Object(map) => {
            let entries = std::mem::take(map);
            for (key, mut item) in entries {
                replace_nul(&mut item);
                map.insert(key.replace('\0', "\u{FFFD}"), item);
            }
        }
        _ => {}
    }
}

/// The events of a queue message on `logs.<category>.<service>`: one CloudEvent (as
/// `platform::activity` writes them) or a CloudEvents JSON batch (an array of them, as outbox
/// relays send). `None` for a message none of which can ever be stored.
pub fn from_queue_message(
    subject: &str,
    payload: &[u8],
    now_ms: i64,
    max_message_bytes: usize,
) -> Option<Vec<LogEvent>> {
    let mut tokens = subject.split('.');
    let (Some("logs"), Some(category), service) = (tokens.next(), tokens.next(), tokens.next())
    else {
        return None;
    };
    let category = Category::parse(category)?;
    let mut parsed = serde_json::from_slice::<Value>(payload).ok()?;
    if platform::http::input::json_may_hold_nul(payload) {
        replace_nul(&mut parsed);
    }
    let events: Vec<LogEvent> = match parsed {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|item| match item {
                Value::Object(event) => {
                    from_cloudevent(category, service, event, now_ms, max_message_bytes)
                }
                _ => None,
            })
            .collect(),
        Value::Object(event) => {
            from_cloudevent(category, service, event, now_ms, max_message_bytes)
                .into_iter()
                .collect()
        }
        _ => Vec::new(),
    };
    (!events.is_empty()).then_some(events)
}

fn from_cloudevent(
    category: Category,
    service: Option<&str>,
    event: Map<String, Value>,
    now_ms: i64,
    max_message_bytes: usize,
) -> Option<LogEvent> {
    let id = text(&event, "id", 128)?;
    let ts = event
        .get("time")
        .and_then(parse_timestamp)
        .unwrap_or(now_ms);
    let source = text(&event, "source", 128)
        .map(|s| s.trim_start_matches("vivesphere/").to_string())
        .or_else(|| service.map(|s| s.replace('_', "-")))
        .unwrap_or_else(|| "unknown".to_string());
    let data = event.get("data").cloned().unwrap_or(Value::Null);
    let data_map = data.as_object();
    let action = data_map
        .and_then(|d| text(d, "action", 128))
        .or_else(|| text(&event, "type", 128));
    let actor = actor_of(&event, data_map, &source);
    let bot_id = text(&event, "bot_id", 128);
    let team = text(&event, "team", 128);
    let subject_of = text(&event, "subject", 128);
    let level = data_map
        .and_then(|d| text(d, "level", 16))
        .map(|l| l.to_ascii_lowercase())
        .filter(|l| LEVELS.contains(&l.as_str()))
        .unwrap_or_else(|| "info".to_string());
    let message = data_map
        .and_then(|d| text(d, "message", usize::MAX))
        .unwrap_or_else(|| match (&action, &subject_of) {
            (Some(action), Some(subject)) => format!("{action} {subject}"),
            (Some(action), None) => action.clone(),
            _ => "event".to_string(),
        });
    Some(LogEvent {
        id,
        ts,
        category,
        service: source,
        level,
        actor_id: actor.id,
        actor_name: actor.name,
        actor_service: actor.service,
        bot_id,
        team,
        action,
        request_id: text(&event, "request_id", 128),
        message: cut(message, max_message_bytes),
        data,
    })
}

/// The actor a CloudEvent names, by the kind the platform writes (`actor_kind`), or for
/// events recorded before it did, by the actor's form: `client:<id>` and the emitting
/// service's own name are services, `operator:<login>` an operator, anything else a user id.
fn actor_of(event: &Map<String, Value>, data: Option<&Map<String, Value>>, source: &str) -> Actor {
    let Some(actor) =
        text(event, "actor", 128).or_else(|| data.and_then(|d| text(d, "actor", 128)))
    else {
        return Actor::default();
    };
    let kind = text(event, "actor_kind", 16).unwrap_or_else(|| {
        if actor.starts_with("client:") || actor == source {
            "service".into()
        } else if actor.starts_with("operator:") {
            "operator".into()
        } else {
            "user".into()
        }
    });
    match kind.as_str() {
        "service" => Actor {
            service: Some(actor.trim_start_matches("client:").to_string()),
            ..Actor::default()
        },
        "operator" => Actor {
            name: Some(actor),
            ..Actor::default()
        },
        _ => Actor {
            name: text(event, "actor_name", 128),
            id: Some(actor),
            service: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queued_event_with_a_nul_is_stored_with_the_nul_replaced() {
        let payload = json!({"specversion": "1.0", "id": "e-1", "source": "vivesphere/x",
            "type": "vivesphere.x.debug", "time": "2031-03-14T09:00:00Z",
            "data": {"level": "warn", "message": "a\u{0}b", "k\u{0}": ["c\u{0}"]}});
        let events =
            from_queue_message("logs.debug.x", payload.to_string().as_bytes(), 0, 1000).unwrap();
        assert_eq!(events[0].message, "a\u{FFFD}b");
        assert_eq!(events[0].data["k\u{FFFD}"], json!(["c\u{FFFD}"]));
    }
    use serde_json::json;

    const NOW: i64 = 1_800_000_000_000;

    fn user() -> Submitter<'static> {
        Submitter {
            id: "u-1",
            username: Some("ada"),
            team: Some("blue"),
            is_service: false,
        }
    }

    #[test]
    fn a_submission_needs_a_known_type_a_time_a_message_and_a_source() {
        let ok = from_submission(
            "console",
            json!({"timestamp": "2027-01-15T08:00:00Z", "message": "hello", "source": "web", "extra": 1, "user_id": "spoofed"}),
            &user(),
            NOW,
            100,
        )
        .unwrap();
        assert_eq!(ok.category, Category::Console);
        assert_eq!(
            (
                ok.actor_id.as_deref(),
                ok.actor_name.as_deref(),
                ok.team.as_deref()
            ),
            (Some("u-1"), Some("ada"), Some("blue")),
            "a user cannot log as someone else, nor for another team"
        );
        assert_eq!(ok.level, "info");
        assert_eq!(ok.data, json!({"extra": 1}));
        for (log_type, data) in [
            (
                "audit",
                json!({"timestamp": 1, "message": "m", "source": "s"}),
            ),
            ("debug", json!({"message": "m", "source": "s"})),
            (
                "debug",
                json!({"timestamp": "yesterday", "message": "m", "source": "s"}),
            ),
            (
                "debug",
                json!({"timestamp": 1, "message": "", "source": "s"}),
            ),
            ("debug", json!({"timestamp": 1, "message": "m"})),
            (
                "debug",
                json!({"timestamp": 1, "message": "m", "source": "s", "level": "loud"}),
            ),
            (
                "debug",
                json!({"timestamp": NOW + 2 * 86_400_000, "message": "m", "source": "s"}),
            ),
            ("debug", json!("not an object")),
        ] {
            assert!(
                from_submission(log_type, data.clone(), &user(), NOW, 100).is_err(),
                "{log_type} {data}"
            );
        }
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        assert_eq!(cut("héllo".to_string(), 2), "h…");
        assert_eq!(cut("abc".to_string(), 3), "abc");
    }

    #[test]
    fn cloudevents_from_the_platform_map_to_events() {
        let payload = json!({
            "specversion": "1.0", "id": "e-1", "source": "vivesphere/authentication",
            "type": "vivesphere.authentication.login.succeeded", "time": "2027-01-15T08:00:00Z",
            "subject": "u-9", "request_id": "r-1", "actor": "u-9",
            "data": {"action": "login.succeeded", "actor": "u-9", "subject": "u-9", "details": {}}
        });
        let subject = "logs.user_activity.authentication";
        let events = from_queue_message(subject, payload.to_string().as_bytes(), NOW, 100).unwrap();
        let event = &events[0];
        assert_eq!(event.id, "e-1");
        assert_eq!(event.category, Category::UserActivity);
        assert_eq!(event.service, "authentication");
        assert_eq!(event.action.as_deref(), Some("login.succeeded"));
        assert_eq!(event.actor_id.as_deref(), Some("u-9"));
        assert_eq!(event.request_id.as_deref(), Some("r-1"));
        assert_eq!(event.message, "login.succeeded u-9");
        assert!(
            from_queue_message("logs.audit.x", payload.to_string().as_bytes(), NOW, 100).is_none()
        );
        assert!(from_queue_message("logs.debug.x", b"not json", NOW, 100).is_none());

        // A CloudEvents batch: each readable event, the unreadable ones skipped.
        let mut second = payload.clone();
        second["id"] = json!("e-2");
        let batch = json!([payload, second, {"no": "id"}, 7]);
        let events = from_queue_message(subject, batch.to_string().as_bytes(), NOW, 100).unwrap();
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, vec!["e-1", "e-2"]);
        assert!(from_queue_message(subject, b"[1, 2]", NOW, 100).is_none());
    }

    #[test]
    fn the_actor_is_a_user_a_service_or_an_operator_in_separate_fields() {
        let event = |extra: Value| {
            let mut payload = json!({"specversion": "1.0", "id": "e-1",
                "source": "vivesphere/bot-manager", "time": "2027-01-15T08:00:00Z",
                "data": {"action": "bot.created"}});
            payload
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            let subject = "logs.user_activity.bot_manager";
            from_queue_message(subject, payload.to_string().as_bytes(), NOW, 100)
                .unwrap()
                .remove(0)
        };
        let actor = |e: &LogEvent| {
            (
                e.actor_id.clone(),
                e.actor_name.clone(),
                e.actor_service.clone(),
            )
        };
        let some = |s: &str| Some(s.to_string());
        let by_user = event(
            json!({"actor": "u-1", "actor_kind": "user", "actor_name": "ada",
            "bot_id": "b-1", "team": "blue"}),
        );
        assert_eq!(actor(&by_user), (some("u-1"), some("ada"), None));
        assert_eq!((by_user.bot_id, by_user.team), (some("b-1"), some("blue")));
        let by_worker = event(json!({"actor": "bot-manager", "actor_kind": "service"}));
        assert_eq!(actor(&by_worker), (None, None, some("bot-manager")));
        // Events recorded before the kind was written: read from the actor's form.
        assert_eq!(
            actor(&event(json!({"actor": "bot-manager"}))),
            (None, None, some("bot-manager"))
        );
        assert_eq!(
            actor(&event(json!({"actor": "client:gateway"}))),
            (None, None, some("gateway"))
        );
        assert_eq!(
            actor(&event(json!({"actor": "operator:root"}))),
            (None, some("operator:root"), None)
        );
        assert_eq!(actor(&event(json!({}))), (None, None, None));
    }

    #[test]
    fn a_service_client_names_the_user_and_team_it_acts_for() {
        let service = Submitter {
            id: "client:bot-manager",
            username: None,
            team: None,
            is_service: true,
        };
        let data = json!({"timestamp": NOW, "message": "m", "source": "s",
            "user_id": "u-2", "team": "red", "bot_id": "b-7"});
        let event = from_submission("console", data, &service, NOW, 100).unwrap();
        assert_eq!(event.actor_id.as_deref(), Some("u-2"));
        assert_eq!(event.actor_service.as_deref(), Some("bot-manager"));
        assert_eq!(event.team.as_deref(), Some("red"));
        assert_eq!(event.bot_id.as_deref(), Some("b-7"));
        assert_eq!(event.data, json!({}));
    }
}
