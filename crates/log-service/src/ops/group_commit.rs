//! Group commit for single events over HTTP: concurrent submissions share one transaction.
//!
//! On SQLite every transaction is a synced write and there is one writer, so a thousand
//! submissions a second as a thousand transactions queue behind each other (and behind the
//! queue writer's batches): the p99 went past a second. Here a submission joins the pending
//! group and waits its turn at the commit; whoever gets the turn commits everything pending
//! at that moment in one transaction and tells each submitter. While one group commits the
//! next one gathers, so the groups grow with the load and nothing waits for a timer.

use platform::ApiError;
use tokio::sync::oneshot;

use crate::model::LogEvent;
use crate::service::Logs;

use super::ingest::{Origin, store_events};

type Reply = oneshot::Sender<Result<(), ApiError>>;

/// The events waiting for the next commit, and the turn to commit.
#[derive(Default)]
pub struct GroupCommit {
    pending: std::sync::Mutex<Vec<(LogEvent, Reply)>>,
    turn: tokio::sync::Mutex<()>,
}

/// Stores `event` with whatever else is pending; returns once it is committed (or refused).
pub async fn store_one(logs: &Logs, event: LogEvent) -> Result<(), ApiError> {
    let (reply, committed) = oneshot::channel();
    let group = &logs.group_commit;
    group.pending.lock().unwrap().push((event, reply));
    {
        let _turn = group.turn.lock().await;
        let waiting = std::mem::take(&mut *group.pending.lock().unwrap());
        // Empty when an earlier turn took this event along.
        if !waiting.is_empty() {
            commit(logs, waiting).await;
        }
    }
    committed.await.unwrap_or_else(|_| {
        // The submitter holding the turn went away mid-commit (its client hung up): the
        // transaction was rolled back, so this event was not stored; the client may resend.
        Err(ApiError::new(
            platform::ErrorCode::NotReady,
            "the event was not stored; try again",
        )
        .with_retry_after(1))
    })
}

/// One transaction for the group; if it fails and holds more than one event, each event
/// alone, so one bad event (the database refusing its text) fails only its own submitter —
/// unless the database is gone, which every submitter is told at once (503, try again).
async fn commit(logs: &Logs, group: Vec<(LogEvent, Reply)>) {
    let (events, replies): (Vec<LogEvent>, Vec<Reply>) = group.into_iter().unzip();
    logs.metrics.observe_group_commit(events.len());
    if events.len() == 1 {
        let outcome = store_events(logs, events, Origin::Http).await;
        let _ = replies
            .into_iter()
            .next()
            .map(|r| r.send(outcome.map(drop).map_err(ApiError::from)));
        return;
    }
    match store_events(logs, events.clone(), Origin::Http).await {
        Ok(_) => {
            for reply in replies {
                let _ = reply.send(Ok(()));
            }
        }
        Err(err) if platform::db::is_connection_loss(&err) => {
            let answer = ApiError::from(err);
            for reply in replies {
                let _ = reply.send(Err(answer.clone()));
            }
        }
        Err(err) => {
            tracing::warn!(error = %format!("{err:#}"), events = events.len(), "a group of log events failed together; storing each alone");
            for (event, reply) in events.into_iter().zip(replies) {
                let outcome = store_events(logs, vec![event], Origin::Http).await;
                let _ = reply.send(outcome.map(drop).map_err(ApiError::from));
            }
        }
    }
}
