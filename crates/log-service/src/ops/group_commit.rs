//! Group commit for single events over HTTP: concurrent submissions share one transaction.
//!
//! On SQLite every transaction is a synced write and there is one writer, so a thousand
//! submissions a second as a thousand transactions queue behind each other (and behind the
//! queue writer's batches): the p99 went past a second. Here a submission joins the pending
//! group and waits for its answer; one committer commits everything pending at that moment
//! in one transaction and tells each submitter. While one group commits the next one
//! gathers, so the groups grow with the load and nothing waits for a timer.

use std::sync::Arc;

use platform::ApiError;
use tokio::sync::oneshot;

use crate::model::LogEvent;
use crate::service::Logs;

use super::ingest::{Origin, store_events};

type Reply = oneshot::Sender<Result<(), ApiError>>;

/// The events waiting for the next commit, and whether a committer is at work.
#[derive(Default)]
pub struct GroupCommit {
    pending: std::sync::Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    events: Vec<(LogEvent, Reply)>,
    committing: bool,
}

/// Stores `event` with whatever else is pending; returns once it is committed (or refused).
///
/// The first submitter to find no committer at work starts one, as its own task: it
/// commits everything pending, then whatever gathered meanwhile, until nothing waits. The
/// submitters only wait for their answer. (When each submitter took a turn at a lock
/// instead, the turn passed through every waiter in order, most of them finding their
/// event already committed; under a busy CPU each hand-over waited for a thread, and the
/// convoy, not the database, made the latency.) A client hanging up does not stop the
/// committer, so nothing pending is stranded.
pub async fn store_one(logs: &Arc<Logs>, event: LogEvent) -> Result<(), ApiError> {
    let (reply, committed) = oneshot::channel();
    let start_committer = {
        let mut pending = logs.group_commit.pending.lock().unwrap();
        pending.events.push((event, reply));
        !std::mem::replace(&mut pending.committing, true)
    };
    if start_committer {
        tokio::spawn(commit_while_pending(logs.clone()));
    }
    committed.await.unwrap_or_else(|_| {
        // The committer went away mid-commit (the service is stopping): the transaction
        // was rolled back, so this event was not stored; the client may resend.
        Err(ApiError::new(
            platform::ErrorCode::NotReady,
            "the event was not stored; try again",
        )
        .with_retry_after(1))
    })
}

/// Commits what is pending, group after group, until nothing is.
async fn commit_while_pending(logs: Arc<Logs>) {
    let mut at_work = AtWork(Some(&logs.group_commit));
    loop {
        let group = {
            let mut pending = logs.group_commit.pending.lock().unwrap();
            if pending.events.is_empty() {
                pending.committing = false;
                at_work.0 = None;
                return;
            }
            std::mem::take(&mut pending.events)
        };
        commit(&logs, group).await;
    }
}

/// A committer at work; if it ends before it said it is done (the runtime stopping under
/// it), the next submitter starts another one.
struct AtWork<'a>(Option<&'a GroupCommit>);

impl Drop for AtWork<'_> {
    fn drop(&mut self) {
        if let Some(group) = self.0
            && let Ok(mut pending) = group.pending.lock()
        {
            pending.committing = false;
        }
    }
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
