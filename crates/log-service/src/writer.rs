//! The queue side of ingestion: a durable consumer on `logs.>` that takes batches, inserts
//! them in one transaction (idempotent on the event id) and acknowledges only after the
//! commit. If the insert fails, the whole batch is redelivered later; nothing acknowledged is
//! lost, and a duplicate delivery is stored once.

use std::sync::Arc;
use std::time::Duration;

use platform::queue::{ConsumerSpec, Delivery};
use platform::target::TargetContext;

use crate::model::from_queue_message;
use crate::service::Logs;

pub const CONSUMER: &str = "logging-writer";

/// Starts `logs.settings.writers` writer loops on the one durable consumer, and keeps its
/// backlog gauge current.
pub fn spawn(ctx: &TargetContext, logs: Arc<Logs>) {
    for _ in 0..logs.settings.writers.max(1) {
        spawn_one(ctx, logs.clone());
    }
    ctx.watch_backlog(consumer_spec(&logs));
}

/// The durable consumer the writers share. Generous redelivery: a message is only given up
/// (and logged) after many tries. A short ack deadline: events handed to a pull that died
/// with a NATS server come back after 20 s rather than a minute, and an event that a slow
/// write gets twice is still stored once (its id is unique).
fn consumer_spec(logs: &Logs) -> ConsumerSpec {
    ConsumerSpec::new(CONSUMER, "logs.>")
        .max_deliver(0)
        .ack_wait(Duration::from_secs(20))
        .max_ack_pending((logs.settings.batch_size * 4 * logs.settings.writers.max(1)) as u32)
}

fn spawn_one(ctx: &TargetContext, logs: Arc<Logs>) {
    let queue = ctx.queue.clone();
    let shutdown = ctx.shutdown.clone();
    ctx.spawn_critical("logging-writer", async move {
        let spec = consumer_spec(&logs);
        let mut consumer = loop {
            match queue.consumer(spec.clone()).await {
                Ok(consumer) => break consumer,
                Err(err) => {
                    tracing::warn!(error = %format!("{err:#}"), "log consumer not ready; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.cancelled() => return Ok(()),
                    }
                }
            }
        };
        let size = logs.settings.batch_size.max(1);
        let linger = Duration::from_millis(logs.settings.batch_linger_ms);
        let max_bytes = logs.settings.batch_max_bytes.max(1);
        // One batch is written while the next is pulled: the database and the broker work
        // at the same time instead of taking turns.
        let mut writing: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            let batch = tokio::select! {
                batch = consumer.next_batch(size, max_bytes, linger) => batch,
                _ = shutdown.cancelled() => {
                    if let Some(writing) = writing {
                        let _ = writing.await;
                    }
                    return Ok(());
                }
            };
            match batch {
                Ok(batch) => {
                    if let Some(previous) = writing.take() {
                        let _ = previous.await;
                    }
                    let logs = logs.clone();
                    writing = Some(tokio::spawn(async move { write_batch(&logs, batch).await }));
                }
                Err(err) => {
                    tracing::warn!(error = %format!("{err:#}"), "log consumer pull failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    });
}

async fn write_batch(logs: &Logs, batch: Vec<Delivery>) {
    let now = logs.clock.now_millis();
    let mut events = Vec::with_capacity(batch.len());
    let mut keep = Vec::with_capacity(batch.len());
    for delivery in batch {
        match from_queue_message(
            &delivery.message.subject,
            &delivery.message.payload,
            now,
            logs.settings.max_message_bytes,
        ) {
            Some(parsed) => {
                events.extend(parsed);
                keep.push(delivery);
            }
            None => {
                tracing::warn!(subject = %delivery.message.subject, id = %delivery.message.id, "unreadable log event dropped");
                logs.metrics.count_rejected();
                let _ = delivery.term().await;
            }
        }
    }
    match crate::ops::ingest::store_events(logs, events, crate::ops::ingest::Origin::Queue).await {
        Ok(_) => {
            futures::future::join_all(keep.into_iter().map(|d| async move {
                if let Err(err) = d.ack().await {
                    // Redelivered later and then stored once: the insert is idempotent.
                    tracing::warn!(error = %format!("{err:#}"), "log event ack failed");
                }
            }))
            .await;
        }
        Err(err) => {
            tracing::warn!(error = %format!("{err:#}"), events = keep.len(), "log batch not stored; redelivering later");
            futures::future::join_all(keep.into_iter().map(|d| d.nak(Duration::from_secs(2))))
                .await;
        }
    }
}
