//! The workers: take due jobs from the queue and act on X. Any number of replicas run them;
//! what keeps a post from being published twice is, in order: the job's dispatch number
//! (an old or duplicate message is ignored), the bot's lease (one write in flight per bot),
//! the job's and post's state read under that lease, and — when an earlier attempt may have
//! reached X — a read of the bot's own posts before sending again.
//!
//! Outcomes: 2xx published; 400/403 failed without retry; 401 refresh once, then the bot
//! needs re-authorisation; 429 wait for `x-rate-limit-reset` plus jitter (not an attempt);
//! a network error before sending or a 5xx retries with exponential backoff and full jitter
//! up to `max_attempts`, then the job is dead-lettered; no answer after sending makes the
//! post unknown until a read settles it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use platform::queue::{ConsumerSpec, Delivery};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::service::{BotManager, random_below};
use crate::store::execution::{self, JobContext};
use crate::store::posts::JobKind;

mod delete;
mod media;
mod publish;
mod run;

/// The durable consumer every replica shares.
pub const CONSUMER: &str = "bot-manager-jobs";
/// Where dead-lettered jobs are announced.
pub const DEAD_LETTER_SUBJECT: &str = "bots.jobs.dead";
/// How soon to try again when Secure Bot Data or the database could not be asked.
const UNAVAILABLE_RETRY_MS: i64 = 5_000;

#[derive(Deserialize)]
struct DueMessage {
    data: DueData,
}

#[derive(Deserialize)]
struct DueData {
    job_id: String,
    dispatch: i64,
    bot_id: String,
}

/// What to do with the delivery.
pub(crate) enum Settle {
    Ack,
    Later(Duration),
}

/// How long a stopping worker lets a pull that is under way finish, to hand back what it
/// took.
const HAND_OUT_GRACE: Duration = Duration::from_millis(100);

/// A job message is its id and a few fields; this only keeps a batch of odd ones bounded.
const JOB_BATCH_BYTES: usize = 1024 * 1024;

/// The durable consumer every worker replica shares.
pub fn consumer_spec(execution: &crate::settings::ExecutionSettings) -> ConsumerSpec {
    ConsumerSpec::new(CONSUMER, crate::relay::SUBJECT)
        .max_deliver(0)
        .ack_wait(Duration::from_secs(execution.lease_seconds + 30))
        .max_ack_pending((execution.concurrency * 4).min(u32::MAX as usize) as u32)
}

pub async fn run(manager: Arc<BotManager>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let execution = &manager.settings.execution;
    let mut consumer = manager.queue.consumer(consumer_spec(execution)).await?;
    let permits = Arc::new(tokio::sync::Semaphore::new(execution.concurrency));
    let in_flight = TaskTracker::new();
    let batch = execution.concurrency.min(256);
    let mut failures = 0u32;
    loop {
        let pulling = consumer.next_batch(batch, JOB_BATCH_BYTES, Duration::from_millis(2));
        tokio::pin!(pulling);
        let deliveries = tokio::select! {
            // Shutdown first: once it is asked for, no new job starts.
            biased;
            _ = shutdown.cancelled() => {
                // A hand-out may be half done (recorded by the queue, not yet returned):
                // let it finish briefly and hand it back rather than strand it until its
                // ack deadline.
                if let Ok(Ok(taken)) = tokio::time::timeout(HAND_OUT_GRACE, pulling).await {
                    hand_back(taken.into_iter()).await;
                }
                break;
            }
            next = &mut pulling => next,
        };
        let deliveries = match deliveries {
            Ok(deliveries) => {
                failures = 0;
                deliveries
            }
            Err(err) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(30) {
                    tracing::warn!(error = %format!("{err:#}"), "taking jobs from the queue failed; retrying");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut waiting = deliveries.into_iter();
        while let Some(delivery) = waiting.next() {
            let permit = tokio::select! {
                // A slot freed at the moment of shutdown must not start a job that the
                // stopping services could no longer finish.
                biased;
                _ = shutdown.cancelled() => {
                    hand_back(std::iter::once(delivery).chain(waiting)).await;
                    break;
                }
                permit = permits.clone().acquire_owned() => permit?,
            };
            let manager = manager.clone();
            in_flight.spawn(async move {
                handle(&manager, delivery).await;
                drop(permit);
            });
        }
    }
    // Finish what was started; what was not (handed back above) goes to another worker now.
    in_flight.close();
    in_flight.wait().await;
    Ok(())
}

/// Deliveries taken but not started when the worker stops: handed back at once, so another
/// replica (or this one restarted) runs them now rather than after the ack deadline.
async fn hand_back(deliveries: impl Iterator<Item = Delivery>) {
    for delivery in deliveries {
        if let Err(err) = delivery.nak(Duration::ZERO).await {
            tracing::warn!(error = %format!("{err:#}"), "could not hand a job back; it returns after its ack deadline");
        }
    }
}

async fn handle(manager: &BotManager, delivery: Delivery) {
    let message: DueMessage = match serde_json::from_slice(&delivery.message.payload) {
        Ok(message) => message,
        Err(err) => {
            tracing::error!(error = %err, id = %delivery.message.id, "unreadable job message; dropped");
            let _ = delivery.term().await;
            return;
        }
    };
    let settle = match execute(manager, &message.data).await {
        Ok(settle) => settle,
        Err(err) => {
            tracing::warn!(job_id = %message.data.job_id, error = %format!("{err:#}"), "job failed; it will be retried");
            Settle::Later(Duration::from_millis(UNAVAILABLE_RETRY_MS as u64))
        }
    };
    let settled = match settle {
        Settle::Ack => delivery.ack().await,
        Settle::Later(delay) => delivery.nak(delay).await,
    };
    if let Err(err) = settled {
        // Not settled: the queue delivers it again after the ack deadline, and the
        // dispatch number makes the second run harmless.
        tracing::warn!(error = %format!("{err:#}"), "could not settle a job message");
    }
}

async fn execute(manager: &BotManager, due: &DueData) -> anyhow::Result<Settle> {
    // Unique per execution: two copies of one message in one process must not share it.
    let holder = format!("{}:{}", manager.instance, uuid::Uuid::new_v4());
    let lease_ms = manager.settings.execution.lease_seconds as i64 * 1000;
    if !execution::acquire_lease(
        &manager.db,
        &due.bot_id,
        &holder,
        manager.clock.now_millis(),
        lease_ms,
    )
    .await?
    {
        let busy = manager.settings.execution.busy_retry_ms;
        return Ok(Settle::Later(Duration::from_millis(
            busy + random_below(busy),
        )));
    }
    let released = AtomicBool::new(false);
    let outcome = execute_leased(manager, due, &holder, &released).await;
    if !released.load(Ordering::Relaxed)
        && let Err(err) = execution::release_lease(&manager.db, &due.bot_id, &holder).await
    {
        tracing::warn!(error = %format!("{err:#}"), "could not release a bot lease; it lapses by itself");
    }
    outcome
}

async fn execute_leased(
    manager: &BotManager,
    due: &DueData,
    holder: &str,
    released: &AtomicBool,
) -> anyhow::Result<Settle> {
    let Some(job) =
        execution::load_job(&manager.db, &due.job_id, manager.clock.now_millis()).await?
    else {
        return Ok(Settle::Ack);
    };
    // An older dispatch, or a job already settled: nothing to do.
    if job.dispatches != due.dispatch || !job.state.is_open() {
        return Ok(Settle::Ack);
    }
    let run = Run {
        manager,
        job,
        holder,
        released,
    };
    match run.job.kind {
        JobKind::Publish => run.publish().await,
        JobKind::Delete => run.delete().await,
    }
}

/// One execution of one job under the bot's lease.
pub(crate) struct Run<'a> {
    manager: &'a BotManager,
    job: JobContext,
    /// This execution's hold on the bot's lease, released with the outcome.
    holder: &'a str,
    released: &'a AtomicBool,
}
