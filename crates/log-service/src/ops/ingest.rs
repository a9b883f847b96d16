//! Taking events in: one or a batch over HTTP (checked: who may write user_activity, and
//! nothing already past its retention), and storing events from any source (a batch in one
//! transaction; on SQLite a queue batch in parts, taking turns with the HTTP groups).

use std::sync::Arc;

use platform::auth::Caller;
use platform::db::Backend;
use platform::{ApiError, ErrorCode};
use serde_json::Value;

use crate::model::{Category, LogEvent, Submitter, from_submission};
use crate::service::Logs;
use crate::store;
use crate::store::partitions::day_start;
use crate::store::webhooks::{Message, NewDelivery, Route};
use crate::webhooks::catalog;

/// Where events came from. Only the queue notifies webhook subscribers: the services
/// publish there, while anyone with `logs:write` can submit over HTTP, and a notification
/// must not be forgeable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Queue,
    Http,
}

/// An event as submitted: the contract's `log_type` and `log_data`.
pub struct Submission {
    pub log_type: String,
    pub log_data: Value,
}

/// Checks and stores one event; returns its id.
pub async fn submit(
    logs: &Arc<Logs>,
    caller: &Caller,
    submission: Submission,
) -> Result<String, ApiError> {
    let event = accepted(logs, caller, submission)?;
    let log_id = event.id.clone();
    super::group_commit::store_one(logs, event).await?;
    Ok(log_id)
}

/// Checks every event, then stores them all or none; a refused one is named by its
/// position. Returns the ids and how many were new.
pub async fn submit_batch(
    logs: &Logs,
    caller: &Caller,
    submissions: Vec<(usize, Submission)>,
) -> Result<(Vec<String>, u64), ApiError> {
    if submissions.is_empty() {
        return Err(ApiError::invalid_data("the batch is empty"));
    }
    if submissions.len() > logs.settings.max_batch_events {
        return Err(ApiError::invalid_data(format!(
            "at most {} events per batch",
            logs.settings.max_batch_events
        )));
    }
    let mut events = Vec::with_capacity(submissions.len());
    for (position, submission) in submissions {
        let event = accepted(logs, caller, submission)
            .map_err(|err| ApiError::new(err.code, format!("item {position}: {}", err.message)))?;
        events.push(event);
    }
    let log_ids = events.iter().map(|e| e.id.clone()).collect();
    let stored = store_events(logs, events, Origin::Http).await?;
    Ok((log_ids, stored))
}

/// The event a submission makes, if the caller may write it and it is within retention.
fn accepted(logs: &Logs, caller: &Caller, submission: Submission) -> Result<LogEvent, ApiError> {
    let submitter = Submitter {
        id: caller.id(),
        username: caller.username(),
        team: caller.team(),
        is_service: caller.is_service(),
    };
    let now = logs.clock.now_millis();
    let event = from_submission(
        &submission.log_type,
        submission.log_data,
        &submitter,
        now,
        logs.settings.max_message_bytes,
    )?;
    // Writing user_activity over HTTP is for services and admins (`logs:write`): the audit
    // trail must not be forgeable by the people it records.
    if event.category == Category::UserActivity && !caller.has("logs:write") {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "submitting user_activity events needs `logs:write`",
        ));
    }
    if event.ts < logs.cutoff(event.category, now) {
        // Stored, it would be gone at the next retention pass; say so instead.
        return Err(ApiError::invalid_data(format!(
            "log_data.timestamp is older than the {} days {} events are kept",
            event.category.retention_days(&logs.live.get().retention),
            event.category.as_str()
        )));
    }
    Ok(event)
}

/// Stores events with the webhook deliveries they make (queued events only): in one
/// transaction, or on SQLite a queue batch in parts; returns how many were new. Events
/// already past their retention are counted and skipped (retention would drop them anyway).
pub async fn store_events(
    logs: &Logs,
    events: Vec<LogEvent>,
    origin: Origin,
) -> anyhow::Result<u64> {
    let now = logs.clock.now_millis();
    let (keep, expired): (Vec<LogEvent>, Vec<LogEvent>) = events
        .into_iter()
        .partition(|e| e.ts >= logs.cutoff(e.category, now));
    for event in &expired {
        logs.metrics.count_expired(event.category);
    }
    if keep.is_empty() {
        return Ok(0);
    }
    if logs.db.backend() == Backend::Postgres {
        logs.partitions
            .ensure(&logs.db, keep.iter().map(|e| (e.category, day_start(e.ts))))
            .await?;
    }
    let mut inserted = 0;
    let mut notified = 0;
    for part in keep.chunks(events_per_turn(logs.db.backend(), origin)) {
        let (new, notices) = store_part(logs, part, origin, now).await?;
        inserted += new;
        notified += notices;
    }
    if notified > 0 {
        logs.webhooks.wake.notify_one();
    }
    for category in Category::ALL {
        let n = keep.iter().filter(|e| e.category == category).count() as u64;
        logs.metrics.count_stored(category, n);
    }
    Ok(inserted)
}

/// Events one transaction on SQLite's one writer takes from a queue batch, so a batch of
/// thousands does not hold the file for a quarter of a second while HTTP submissions wait:
/// between its parts the waiting HTTP group has its turn. The batch still settles as one
/// (acknowledged after its last part, redelivered whole on a failure, stored once: the
/// insert is idempotent and so are its notifications).
const QUEUED_EVENTS_PER_TURN: usize = 25;

fn events_per_turn(backend: Backend, origin: Origin) -> usize {
    match (backend, origin) {
        (Backend::Sqlite, Origin::Queue) => QUEUED_EVENTS_PER_TURN,
        _ => usize::MAX,
    }
}

/// One transaction: the events, and the webhook deliveries they make (queued events only).
async fn store_part(
    logs: &Logs,
    events: &[LogEvent],
    origin: Origin,
    now: i64,
) -> anyhow::Result<(u64, u64)> {
    // The queue's batches and the HTTP groups take turns at the file, in order.
    let turn = logs.db.write_turn().await;
    let mut tx = logs.db.pool().begin().await?;
    let inserted = store::insert(&mut tx, logs.db.backend(), events).await?;
    let notified = match origin {
        Origin::Queue => notify(&mut tx, events, now).await?,
        Origin::Http => 0,
    };
    tx.commit().await?;
    drop(turn);
    Ok((inserted, notified))
}

/// Puts the notifications `events` make into the webhook outbox, one message per event and
/// one delivery per subscription that wants it (its team's events, or every team's for a
/// global one). A redelivered event finds its deliveries already there.
async fn notify(
    conn: &mut sqlx::AnyConnection,
    events: &[LogEvent],
    now: i64,
) -> anyhow::Result<u64> {
    let notable: Vec<(&LogEvent, &str)> = events
        .iter()
        .filter_map(|e| catalog::event_type_of(e).map(|t| (e, t)))
        .collect();
    if notable.is_empty() {
        return Ok(0);
    }
    let routes = store::webhooks::routes(conn).await?;
    let wants = |route: &Route, event: &LogEvent, event_type: &str| {
        route.event_types.iter().any(|t| t == event_type)
            && (route.team.is_none() || route.team == event.team)
    };
    let mut messages = Vec::new();
    let mut deliveries = Vec::new();
    for (event, event_type) in notable {
        let message_id = catalog::message_id(&event.id);
        let mut wanted = false;
        for route in routes.iter().filter(|r| wants(r, event, event_type)) {
            wanted = true;
            deliveries.push(NewDelivery {
                id: uuid::Uuid::now_v7().to_string(),
                subscription_id: route.id.clone(),
                message_id: message_id.clone(),
                event_type: event_type.to_string(),
            });
        }
        if wanted {
            messages.push(Message {
                id: message_id,
                event_type: event_type.to_string(),
                payload: catalog::payload(event_type, event).to_string(),
                created_at: now,
            });
        }
    }
    store::webhooks::enqueue(conn, &messages, &deliveries, now).await
}
