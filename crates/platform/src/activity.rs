//! User-activity events (logins, lockouts, role and password changes, …) as CloudEvents 1.0
//! on the queue subject `logs.user_activity.<service>`, and debug events on
//! `logs.debug.<service>`, where the Logging service consumes them. User activity goes
//! through the process's [`EventShipper`]: on the queue or in the spill file before the call
//! returns, never dropped. Debug events may be dropped (and are counted) under pressure.

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};

use crate::http::observe::current_request_id;
use crate::shipping::EventShipper;

/// Who acted: a user (by id, with their username), a service (a service client, or a
/// service's own worker), or an operator at the machine (`operator:<login>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    User,
    Service,
    Operator,
}

/// One thing a person (or client) did.
#[derive(Debug, Clone, Serialize)]
pub struct Activity {
    /// What happened, as `<resource>.<verb>` (`login.succeeded`, `user.disabled`).
    pub action: String,
    /// Who did it (a user id, a service name, `operator:<login>`), if known.
    pub actor: Option<String>,
    /// The actor's name as people read it (a username), when known.
    pub actor_name: Option<String>,
    /// What `actor` is; unset, the Logging service infers it from its form.
    pub actor_kind: Option<ActorKind>,
    /// Whom or what it concerned (a user id, a role name), if anything.
    pub subject: Option<String>,
    /// The bot it concerned, if any.
    pub bot_id: Option<String>,
    /// The team it belongs to: the team of the bot or user it concerned, else the actor's.
    /// Managers read their own team's events only.
    pub team: Option<String>,
    /// A sentence for people (naming the bot, not only its id); unset, the Logging service
    /// writes `<action> <subject>`.
    pub message: Option<String>,
    /// Extra facts; never secrets.
    pub details: Value,
}

impl Activity {
    pub fn new(action: impl Into<String>) -> Self {
        Self {
            action: action.into(),
            actor: None,
            actor_name: None,
            actor_kind: None,
            subject: None,
            bot_id: None,
            team: None,
            message: None,
            details: json!({}),
        }
    }

    /// An action the caller took: they are its actor (a user with their name and team, or
    /// a service client), and by default it belongs to their team.
    pub fn by(caller: &crate::auth::Caller, action: impl Into<String>) -> Self {
        let activity = Self::new(action);
        if caller.is_service() {
            let client = caller.id().trim_start_matches("client:").to_string();
            return activity.by_service(client);
        }
        let mut activity = activity.actor(caller.id());
        activity.actor_kind = Some(ActorKind::User);
        activity.actor_name = caller.username().map(str::to_string);
        activity.team = caller.team().map(str::to_string);
        activity
    }

    /// An action a service took by itself (a worker publishing, a token refresh).
    pub fn by_service(mut self, service: impl Into<String>) -> Self {
        self.actor = Some(service.into());
        self.actor_kind = Some(ActorKind::Service);
        self.actor_name = None;
        self
    }

    /// An action of a user known by id and name (a login, before any token exists).
    pub fn by_user(mut self, user_id: impl Into<String>, username: impl Into<String>) -> Self {
        self.actor = Some(user_id.into());
        self.actor_kind = Some(ActorKind::User);
        self.actor_name = Some(username.into());
        self
    }

    /// An operator command at the machine, as [`operator_actor`] names them.
    pub fn by_operator(mut self, operator: impl Into<String>) -> Self {
        self.actor = Some(operator.into());
        self.actor_kind = Some(ActorKind::Operator);
        self
    }

    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    pub fn bot(mut self, bot_id: impl Into<String>) -> Self {
        self.bot_id = Some(bot_id.into());
        self
    }

    /// The team the event belongs to (replaces the actor's).
    pub fn team(mut self, team: Option<&str>) -> Self {
        self.team = team.map(str::to_string);
        self
    }

    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

/// The actor an operator command at the machine is recorded as: `operator:<login name>`.
pub fn operator_actor() -> String {
    format!(
        "operator:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".to_string())
    )
}

/// The most bytes one batch message of events holds. A queue message is held whole in
/// memory by the publisher, the broker and the consumer, and NATS refuses one over its
/// `max_payload` (1 MiB by default): batches are split well before either.
pub const MAX_BATCH_BYTES: usize = 128 * 1024;

/// One message's worth of a batch: its events and their JSON array.
struct Batch<'a> {
    events: &'a [Value],
    payload: Bytes,
}

/// `envelopes` in order, cut into JSON arrays of at most `max_bytes` each; an event bigger
/// than that alone goes in a message of its own.
fn split_batches(envelopes: &[Value], max_bytes: usize) -> Vec<Batch<'_>> {
    let mut batches = Vec::new();
    let mut start = 0;
    let mut payload = Vec::from(b"[".as_slice());
    for (i, envelope) in envelopes.iter().enumerate() {
        let encoded = envelope.to_string();
        // The closing bracket, and a comma unless it is the first.
        let grown = payload.len() + encoded.len() + usize::from(i > start) + 1;
        if i > start && grown > max_bytes {
            payload.push(b']');
            batches.push(Batch {
                events: &envelopes[start..i],
                payload: Bytes::from(std::mem::replace(&mut payload, Vec::from(b"[".as_slice()))),
            });
            start = i;
        }
        if i > start {
            payload.push(b',');
        }
        payload.extend_from_slice(encoded.as_bytes());
    }
    if start < envelopes.len() {
        payload.push(b']');
        batches.push(Batch {
            events: &envelopes[start..],
            payload: Bytes::from(payload),
        });
    }
    batches
}

/// Publishes user-activity events for one service.
#[derive(Clone)]
pub struct ActivityLog {
    events: EventShipper,
    service: &'static str,
}

impl ActivityLog {
    pub fn new(events: EventShipper, service: &'static str) -> Self {
        Self { events, service }
    }

    fn subject(&self, category: &str) -> String {
        format!("logs.{category}.{}", self.service.replace('-', "_"))
    }

    /// The CloudEvents envelope of an activity happening now, in the current request.
    pub fn envelope(&self, id: &str, activity: &Activity) -> Value {
        self.envelope_at(
            id,
            &self.events.clock().now_rfc3339(),
            current_request_id(),
            activity,
        )
    }

    /// The CloudEvents envelope of an activity recorded earlier (an outbox row).
    pub fn envelope_at(
        &self,
        id: &str,
        time: &str,
        request_id: Option<String>,
        activity: &Activity,
    ) -> Value {
        json!({
            "specversion": "1.0",
            "id": id,
            "source": format!("vivesphere/{}", self.service),
            "type": format!("vivesphere.{}.{}", self.service, activity.action),
            "time": time,
            "subject": activity.subject,
            "datacontenttype": "application/json",
            "request_id": request_id,
            "actor": activity.actor,
            "actor_name": activity.actor_name,
            "actor_kind": activity.actor_kind,
            "bot_id": activity.bot_id,
            "team": activity.team,
            "data": {
                "action": activity.action,
                "actor": activity.actor,
                "subject": activity.subject,
                "message": activity.message,
                "details": activity.details,
            },
        })
    }

    /// Publishes an envelope straight to the queue, reporting failure to the caller: for a
    /// caller with its own outbox. Its `id` is the dedupe id, so publishing again is harmless.
    pub async fn publish(&self, id: &str, envelope: &Value) -> anyhow::Result<()> {
        self.events
            .queue()
            .publish(
                &self.subject("user_activity"),
                id,
                Bytes::from(envelope.to_string()),
            )
            .await?;
        Ok(())
    }

    /// Publishes several envelopes as few messages in the CloudEvents JSON batch format (an
    /// array), straight to the queue: one stored message per [`MAX_BATCH_BYTES`] instead of
    /// one per event, for an outbox relay under load. Each message's dedupe id names it by
    /// its first and last event; a consumer stores each event by its own id, so an event sent
    /// twice in different batches is still stored once.
    pub async fn publish_batch(&self, envelopes: &[Value]) -> anyhow::Result<()> {
        for batch in split_batches(envelopes, MAX_BATCH_BYTES) {
            let (first, last) = (&batch.events[0], &batch.events[batch.events.len() - 1]);
            if batch.events.len() == 1 {
                let id = first["id"].as_str().unwrap_or_default().to_string();
                self.publish(&id, first).await?;
                continue;
            }
            let batch_id = format!(
                "batch:{}:{}:{}",
                first["id"].as_str().unwrap_or_default(),
                last["id"].as_str().unwrap_or_default(),
                batch.events.len()
            );
            self.events
                .queue()
                .publish(&self.subject("user_activity"), &batch_id, batch.payload)
                .await?;
        }
        Ok(())
    }

    /// A debug event (`level`: trace … fatal) for the Logging service; may be dropped under
    /// pressure, never blocks.
    pub fn debug(&self, level: &str, message: &str, details: Value) {
        let id = self.events.clock().uuid_v7().to_string();
        let mut activity = Activity::new("debug");
        activity.details = details;
        let mut envelope = self.envelope(&id, &activity);
        envelope["type"] = Value::from(format!("vivesphere.{}.debug", self.service));
        envelope["data"]["level"] = Value::from(level);
        envelope["data"]["message"] = Value::from(message);
        self.events.ship_droppable(
            "debug",
            &self.subject("debug"),
            &id,
            Bytes::from(envelope.to_string()),
        );
    }

    /// Records a user activity: on the queue, or in the spill file until the queue is back.
    pub async fn record(&self, activity: Activity) {
        let id = self.events.clock().uuid_v7().to_string();
        let envelope = self.envelope(&id, &activity);
        let shipped = self
            .events
            .ship_durable(
                &self.subject("user_activity"),
                &id,
                Bytes::from(envelope.to_string()),
            )
            .await;
        if let Err(err) = shipped {
            tracing::error!(
                error = %format!("{err:#}"),
                event = %envelope,
                "user activity could not be queued; logged here instead"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(id: usize, filler: usize) -> Value {
        json!({"id": format!("e-{id}"), "data": {"message": "x".repeat(filler)}})
    }

    /// Parses every batch back: the events in order, each once, each message within the
    /// limit unless it is one event that alone exceeds it.
    fn check(envelopes: &[Value], max: usize) -> Vec<usize> {
        let batches = split_batches(envelopes, max);
        let mut seen = Vec::new();
        for batch in &batches {
            let parsed: Vec<Value> = serde_json::from_slice(&batch.payload).unwrap();
            assert_eq!(parsed, batch.events);
            assert!(
                batch.payload.len() <= max || batch.events.len() == 1,
                "{} bytes in {} events",
                batch.payload.len(),
                batch.events.len()
            );
            seen.extend(parsed);
        }
        assert_eq!(seen, envelopes);
        batches.iter().map(|b| b.events.len()).collect()
    }

    #[test]
    fn batches_are_cut_before_the_byte_limit_and_keep_every_event_in_order() {
        let small: Vec<Value> = (0..3).map(|i| envelope(i, 10)).collect();
        assert_eq!(check(&small, MAX_BATCH_BYTES), [3]);
        let many: Vec<Value> = (0..500).map(|i| envelope(i, 1000)).collect();
        let sizes = check(&many, MAX_BATCH_BYTES);
        assert!(sizes.len() >= 4, "{sizes:?}");
        // `[a,b]` takes 2 × one + 3 bytes: at that limit two go together, one byte less and
        // each goes alone.
        let exact: Vec<Value> = (0..4).map(|i| envelope(i, 17)).collect();
        let one = exact[0].to_string().len();
        assert_eq!(check(&exact, 2 * one + 3), [2, 2]);
        assert_eq!(check(&exact, 2 * one + 2), [1, 1, 1, 1]);
    }

    #[test]
    fn an_event_over_the_limit_goes_alone() {
        let events = vec![envelope(0, 10), envelope(1, 5000), envelope(2, 10)];
        assert_eq!(check(&events, 1000), [1, 1, 1]);
        assert!(split_batches(&[], 1000).is_empty());
    }
}
