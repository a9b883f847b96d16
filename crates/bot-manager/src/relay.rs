//! The relay: hands due outbox rows to the queue (subject `bots.jobs.due`, dedupe id
//! `<job_id>:<dispatch>`) and deletes them in the same transaction, so a crash between the
//! two publishes again (deduplicated by the queue) rather than losing a job. The database is
//! the source of truth for when a job is due; the relay wakes at the earliest due time, on
//! a nudge from the API, or every `relay_interval_ms`. Replicas claim disjoint rows
//! (`FOR UPDATE SKIP LOCKED`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::json;

use crate::service::BotManager;
use crate::store::execution::{self, Due};

/// The queue subject of due jobs.
pub const SUBJECT: &str = "bots.jobs.due";

pub fn envelope(due: &Due, clock: &platform::Clock) -> Bytes {
    Bytes::from(
        json!({
            "specversion": "1.0",
            "id": format!("{}:{}", due.job_id, due.dispatch),
            "source": "/vivesphere/bot-manager",
            "type": "vivesphere.bots.job.due",
            "time": clock.now_rfc3339(),
            "subject": due.bot_id,
            "datacontenttype": "application/json",
            "data": {"job_id": due.job_id, "dispatch": due.dispatch, "bot_id": due.bot_id},
        })
        .to_string(),
    )
}

/// One round: claims due rows, publishes them, commits. The number handed over.
pub async fn relay_once(manager: &BotManager) -> anyhow::Result<usize> {
    let db = &manager.db;
    let mut tx = db.pool().begin().await?;
    let due = execution::claim_due(
        &mut tx,
        db,
        manager.clock.now_millis(),
        manager.settings.execution.relay_batch,
    )
    .await?;
    if due.is_empty() {
        tx.rollback().await?;
        return Ok(0);
    }
    let results: Vec<anyhow::Result<_>> = futures::stream::iter(due.clone())
        .map(|d| {
            let queue = manager.queue.clone();
            async move {
                let dedupe_id = format!("{}:{}", d.job_id, d.dispatch);
                queue
                    .publish(SUBJECT, &dedupe_id, envelope(&d, &manager.clock))
                    .await
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    if let Some(Err(err)) = results.into_iter().find(|r| r.is_err()) {
        tx.rollback().await?;
        return Err(err.context("the queue refused due jobs; they stay in the outbox"));
    }
    tx.commit().await?;
    manager.metrics.dispatched.inc_by(due.len() as u64);
    Ok(due.len())
}

/// Most jobs one re-drive hands over again.
const REDRIVE_LIMIT: i64 = 10_000;

/// Hands every open, due job that no worker holds to the queue again, under a new dedupe id
/// (`<job_id>:<dispatch>:redrive:<now>`). A copy of a message the queue still holds is
/// harmless: the bot's lease and the job's dispatch number and state make the second
/// delivery a no-op. How many were handed over.
pub async fn redrive_once(manager: &BotManager) -> anyhow::Result<usize> {
    let now = manager.clock.now_millis();
    let stranded = execution::unheld_due(&manager.db, now, REDRIVE_LIMIT).await?;
    for due in &stranded {
        let dedupe_id = format!("{}:{}:redrive:{now}", due.job_id, due.dispatch);
        manager
            .queue
            .publish(SUBJECT, &dedupe_id, envelope(due, &manager.clock))
            .await?;
    }
    Ok(stranded.len())
}

/// When this replica starts and whenever its queue comes back after being away, re-drives
/// the due work nobody holds ([`redrive_once`]), so a message delivered to a pull that died
/// with a NATS server (or with a replica) waits seconds, not its ack deadline
/// (`lease_seconds` + 30 s). Checks the queue every second; a re-drive that fails is tried
/// again at the next check.
pub async fn redrive_on_recovery(
    manager: Arc<BotManager>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut owed = true;
    loop {
        match manager.queue.check().await {
            Err(_) => owed = true,
            Ok(()) if owed => match redrive_once(&manager).await {
                Ok(count) => {
                    owed = false;
                    if count > 0 {
                        tracing::info!(jobs = count, "re-drove due jobs no worker held");
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %format!("{err:#}"), "re-drive failed; trying again");
                }
            },
            Ok(()) => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Runs the relay until shutdown. Errors (database or queue down) are logged and retried:
/// the rows wait in the outbox.
pub async fn run(manager: Arc<BotManager>, shutdown: tokio_util::sync::CancellationToken) {
    let interval = Duration::from_millis(manager.settings.execution.relay_interval_ms);
    let mut failures = 0u32;
    loop {
        let sent = match relay_once(&manager).await {
            Ok(sent) => {
                failures = 0;
                sent
            }
            Err(err) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(50) {
                    tracing::warn!(error = %format!("{err:#}"), "relay round failed; retrying");
                }
                0
            }
        };
        if sent as i64 >= manager.settings.execution.relay_batch {
            continue;
        }
        // Sleep until the next row is due, a nudge, or the interval.
        let wait = match execution::next_due(&manager.db).await {
            Ok(Some(due)) => Duration::from_millis(
                (due - manager.clock.now_millis()).clamp(0, interval.as_millis() as i64) as u64,
            ),
            _ => interval,
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = manager.relay_wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
