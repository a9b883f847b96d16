//! User-activity events (logins, lockouts, role and password changes, …) as CloudEvents 1.0
//! on the queue subject `logs.user_activity.<service>`, where the Logging service consumes
//! them. A publish goes to the durable queue before the call returns; if the queue refuses,
//! the event is written to the process log instead of being dropped silently.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};

use crate::http::observe::current_request_id;
use crate::queue::Queue;
use crate::time_fmt::now_rfc3339;

/// One thing a person (or client) did.
#[derive(Debug, Clone, Serialize)]
pub struct Activity {
    /// What happened, as `<resource>.<verb>` (`login.succeeded`, `user.disabled`).
    pub action: String,
    /// Who did it (a user id, `client:<id>`), if known.
    pub actor: Option<String>,
    /// Whom or what it concerned (a user id, a role name), if anything.
    pub subject: Option<String>,
    /// Extra facts; never secrets.
    pub details: Value,
}

impl Activity {
    pub fn new(action: impl Into<String>) -> Self {
        Self {
            action: action.into(),
            actor: None,
            subject: None,
            details: json!({}),
        }
    }

    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

/// Publishes user-activity events for one service.
#[derive(Clone)]
pub struct ActivityLog {
    queue: Arc<dyn Queue>,
    service: &'static str,
}

impl ActivityLog {
    pub fn new(queue: Arc<dyn Queue>, service: &'static str) -> Self {
        Self { queue, service }
    }

    /// The CloudEvents envelope of an activity happening now, in the current request.
    pub fn envelope(&self, id: &str, activity: &Activity) -> Value {
        self.envelope_at(id, &now_rfc3339(), current_request_id(), activity)
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
            "data": {
                "action": activity.action,
                "actor": activity.actor,
                "subject": activity.subject,
                "details": activity.details,
            },
        })
    }

    /// Publishes an envelope; its `id` is the dedupe id, so publishing again is harmless.
    pub async fn publish(&self, id: &str, envelope: &Value) -> anyhow::Result<()> {
        let subject = format!("logs.user_activity.{}", self.service.replace('-', "_"));
        self.queue
            .publish(&subject, id, Bytes::from(envelope.to_string()))
            .await?;
        Ok(())
    }

    pub async fn record(&self, activity: Activity) {
        let id = uuid::Uuid::now_v7().to_string();
        let envelope = self.envelope(&id, &activity);
        if let Err(err) = self.publish(&id, &envelope).await {
            tracing::error!(
                error = %format!("{err:#}"),
                event = %envelope,
                "user activity could not be queued; logged here instead"
            );
        }
    }
}
