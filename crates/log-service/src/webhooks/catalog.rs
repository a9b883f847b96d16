//! What a subscription can be told about, and which stored events those are. An event
//! notifies only when the service that owns it published it on the queue (see
//! [`crate::ops::ingest::Origin`]), so nobody forges a notification through the HTTP intake.

use serde_json::{Value, json};

use crate::model::{Category, LogEvent};

/// Every event type a subscription may name, with what it means.
pub const EVENT_TYPES: &[(&str, &str)] = &[
    ("post.published", "A post went out on X"),
    (
        "post.failed",
        "A post could not be published and will not be retried",
    ),
    (
        "job.dead_lettered",
        "A job used up its attempts and waits for a person",
    ),
    (
        "bot.needs_reauth",
        "X refused a bot's tokens; it needs new credentials",
    ),
    ("bot.suspended", "A bot was suspended"),
    (
        "usage.threshold",
        "A team or an X app spent its budget's soft threshold this month",
    ),
    (
        "budget.exceeded",
        "A team or an X app spent its whole monthly budget",
    ),
    (
        "vault.sealed",
        "Secure Bot Data was sealed: bots cannot read their credentials",
    ),
];

/// The type of the test message `POST …/webhooks/{id}/ping` sends.
pub const PING: &str = "webhook.ping";

pub fn is_known(event_type: &str) -> bool {
    EVENT_TYPES.iter().any(|(name, _)| *name == event_type)
}

/// The notification a stored event makes, if any: its type.
pub fn event_type_of(event: &LogEvent) -> Option<&'static str> {
    if event.category != Category::UserActivity {
        return None;
    }
    let action = event.action.as_deref()?;
    let owner = |service: &str| event.service == service;
    match action {
        "post.published" if owner("bot-manager") => Some("post.published"),
        "post.failed" if owner("bot-manager") => Some("post.failed"),
        "job.dead_lettered" if owner("bot-manager") => Some("job.dead_lettered"),
        "bot.needs_reauth" if owner("bot-manager") => Some("bot.needs_reauth"),
        "bot.status_changed"
            if owner("bot-manager") && event.data["details"]["to"] == "suspended" =>
        {
            Some("bot.suspended")
        }
        "usage.threshold" if owner("bot-manager") => Some("usage.threshold"),
        "budget.exceeded" if owner("bot-manager") => Some("budget.exceeded"),
        "botdata.seal" if owner("secure-bot-data") => Some("vault.sealed"),
        _ => None,
    }
}

/// The message id receivers deduplicate on (`webhook-id`): the same for every attempt and
/// every subscription that gets the event.
pub fn message_id(event_id: &str) -> String {
    format!("msg_{event_id}")
}

/// The body every receiver gets for `event`, in the Standard Webhooks shape: `type`,
/// `timestamp` (when it happened) and `data`.
pub fn payload(event_type: &str, event: &LogEvent) -> Value {
    json!({
        "type": event_type,
        "timestamp": platform::time_fmt::rfc3339_from_millis(event.ts),
        "data": {
            "event_id": event.id,
            "service": event.service,
            "team": event.team,
            "bot_id": event.bot_id,
            "subject": event.data["subject"],
            "message": event.message,
            "actor": {
                "id": event.actor_id,
                "name": event.actor_name,
                "service": event.actor_service,
            },
            "details": event.data["details"],
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(service: &str, action: &str, details: Value) -> LogEvent {
        LogEvent {
            id: "e-1".into(),
            ts: 0,
            category: Category::UserActivity,
            service: service.into(),
            level: "info".into(),
            actor_id: None,
            actor_name: None,
            actor_service: Some(service.into()),
            bot_id: Some("b-1".into()),
            team: Some("blue".into()),
            action: Some(action.into()),
            request_id: None,
            message: "m".into(),
            data: json!({"action": action, "subject": "p-1", "details": details}),
        }
    }

    #[test]
    fn only_the_owning_service_s_events_notify_and_suspension_is_a_status_change() {
        assert_eq!(
            event_type_of(&event("bot-manager", "post.published", json!({}))),
            Some("post.published")
        );
        assert_eq!(
            event_type_of(&event("logging", "post.published", json!({}))),
            None
        );
        assert_eq!(
            event_type_of(&event(
                "bot-manager",
                "bot.status_changed",
                json!({"to": "suspended"})
            )),
            Some("bot.suspended")
        );
        assert_eq!(
            event_type_of(&event(
                "bot-manager",
                "bot.status_changed",
                json!({"to": "paused"})
            )),
            None
        );
        assert_eq!(
            event_type_of(&event("secure-bot-data", "botdata.seal", json!({}))),
            Some("vault.sealed")
        );
        let mut debug = event("bot-manager", "post.published", json!({}));
        debug.category = Category::Debug;
        assert_eq!(event_type_of(&debug), None);
        assert!(EVENT_TYPES.iter().all(|(name, _)| is_known(name)));
        assert!(!is_known(PING));
    }

    #[test]
    fn the_payload_has_the_standard_shape() {
        let body = payload(
            "post.published",
            &event("bot-manager", "post.published", json!({"x_post_id": "9"})),
        );
        assert_eq!(body["type"], "post.published");
        assert_eq!(body["timestamp"], "1970-01-01T00:00:00Z");
        assert_eq!(body["data"]["subject"], "p-1");
        assert_eq!(body["data"]["details"]["x_post_id"], "9");
        assert_eq!(message_id("e-1"), "msg_e-1");
    }
}
