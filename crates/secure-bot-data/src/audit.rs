//! Recording audit entries, fail-closed, and relaying them to the Logging service.
//!
//! A reveal answers only after its audit row is committed. To keep that cheap under load the
//! rows go through one writer task that commits whatever has queued up in one transaction
//! (group commit), so a thousand concurrent reveals cost a handful of commits, not a thousand.
//! Writes put their audit rows in their own transaction instead.
//!
//! The audit table is also the outbox of user_activity events: a relay task publishes rows
//! not yet published, with the row id as the event (and dedupe) id, and marks them. If the
//! queue is down the rows wait; nothing is lost, and a row published twice is deduplicated.

use std::sync::Arc;
use std::time::Duration;

use platform::activity::{Activity, ActivityLog};
use platform::db::Database;
use platform::target::TargetContext;
use serde_json::json;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::store::audit::{self, AuditEntry};

type Batch = (Vec<AuditEntry>, oneshot::Sender<Result<(), String>>);

/// Most entries one group commit takes.
const MAX_GROUP: usize = 1024;
/// Entries the relay publishes per round.
const RELAY_BATCH: i64 = 256;

#[derive(Clone)]
pub struct AuditLog {
    sender: mpsc::Sender<Batch>,
    relay_wakeup: Arc<Notify>,
}

impl AuditLog {
    /// Starts the writer, the relay and the trim as critical tasks of the target.
    pub fn start(
        db: Database,
        ctx: &TargetContext,
        service: &'static str,
        settings: &crate::settings::Settings,
    ) -> Self {
        let (sender, receiver) = mpsc::channel(4096);
        let relay_wakeup = Arc::new(Notify::new());
        ctx.spawn_critical(
            "botdata-audit-writer",
            write_groups(db.clone(), receiver, relay_wakeup.clone()),
        );
        ctx.spawn_critical(
            "botdata-audit-trim",
            trim(
                db.clone(),
                ctx.clock.clone(),
                Retention {
                    days: settings.audit_retention_days,
                    every: Duration::from_secs(settings.audit_trim_interval),
                },
                ctx.shutdown.clone(),
            ),
        );
        ctx.spawn_critical(
            "botdata-audit-relay",
            relay(
                db,
                ActivityLog::new(ctx.events.clone(), service),
                relay_wakeup.clone(),
                ctx.shutdown.clone(),
            ),
        );
        Self {
            sender,
            relay_wakeup,
        }
    }

    /// Records entries; returns once they are committed.
    pub async fn record(&self, entries: Vec<AuditEntry>) -> anyhow::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let (done, result) = oneshot::channel();
        self.sender
            .send((entries, done))
            .await
            .map_err(|_| anyhow::anyhow!("the audit writer has stopped"))?;
        result
            .await
            .map_err(|_| anyhow::anyhow!("the audit writer has stopped"))?
            .map_err(|err| anyhow::anyhow!("audit write failed: {err}"))
    }

    /// Tells the relay that rows were committed by someone else's transaction.
    pub fn committed(&self) {
        self.relay_wakeup.notify_one();
    }
}

async fn write_groups(
    db: Database,
    mut receiver: mpsc::Receiver<Batch>,
    relay_wakeup: Arc<Notify>,
) -> anyhow::Result<()> {
    // Ends when every sender is gone, i.e. when the service is dropped at shutdown.
    while let Some(first) = receiver.recv().await {
        let mut group = vec![first];
        let mut size = group[0].0.len();
        while size < MAX_GROUP {
            match receiver.try_recv() {
                Ok(batch) => {
                    size += batch.0.len();
                    group.push(batch);
                }
                Err(_) => break,
            }
        }
        let entries: Vec<AuditEntry> = group.iter().flat_map(|(e, _)| e.iter().cloned()).collect();
        let outcome = commit(&db, &entries)
            .await
            .map_err(|err| format!("{err:#}"));
        if let Err(err) = &outcome {
            tracing::error!(error = %err, entries = entries.len(), "audit group commit failed");
        }
        for (_, done) in group {
            let _ = done.send(outcome.clone());
        }
        relay_wakeup.notify_one();
    }
    Ok(())
}

async fn commit(db: &Database, entries: &[AuditEntry]) -> anyhow::Result<()> {
    let mut tx = db.pool().begin().await?;
    audit::insert(&mut tx, entries).await?;
    tx.commit().await?;
    Ok(())
}

fn activity_of(entry: &AuditEntry) -> Activity {
    let action = if entry.result == "ok" {
        format!("botdata.{}", entry.action)
    } else {
        format!("botdata.{}.{}", entry.action, entry.result)
    };
    let mut activity = Activity::new(action).actor(&entry.actor).details(json!({
        "field": entry.field,
        "version": entry.version,
        "result": entry.result,
        "value_hmac": entry.value_hmac,
        "details": entry.details,
    }));
    if let Some(bot_id) = &entry.bot_id {
        // No team: this service does not know the bot's, so only admins read these in the
        // Logging service (the audit API here has its own rules).
        activity = activity.subject(bot_id).bot(bot_id);
    }
    activity
}

async fn relay(
    db: Database,
    activity: ActivityLog,
    wakeup: Arc<Notify>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut backoff = Duration::from_millis(200);
    loop {
        match relay_once(&db, &activity).await {
            Ok(published) if published as i64 == RELAY_BATCH => continue,
            Ok(_) => backoff = Duration::from_millis(200),
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "audit events wait for the queue");
                backoff = (backoff * 2).min(Duration::from_secs(5));
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => continue,
                    _ = shutdown.cancelled() => return Ok(()),
                }
            }
        }
        tokio::select! {
            _ = wakeup.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.cancelled() => {
                // One last round so that events of the final requests leave with us.
                let _ = relay_once(&db, &activity).await;
                return Ok(());
            }
        }
    }
}

/// Publishes one batch of unpublished entries as one queue message (a CloudEvents batch:
/// one stored message per relay round instead of one per reveal); returns how many.
async fn relay_once(db: &Database, activity: &ActivityLog) -> anyhow::Result<usize> {
    let entries = audit::unpublished(db, RELAY_BATCH).await?;
    let envelopes: Vec<serde_json::Value> = entries
        .iter()
        .map(|entry| {
            activity.envelope_at(
                &entry.id,
                &platform::time_fmt::rfc3339_from_millis(entry.at),
                entry.request_id.clone(),
                &activity_of(entry),
            )
        })
        .collect();
    activity.publish_batch(&envelopes).await?;
    let ids: Vec<String> = entries.into_iter().map(|entry| entry.id).collect();
    audit::mark_published(db, &ids).await?;
    Ok(ids.len())
}

struct Retention {
    days: u32,
    every: Duration,
}

/// Removes, every `every`, the entries older than `days` that the relay has published (the
/// Logging service holds them from then on, by its own retention); SQLite gets the pages
/// back. A failed pass is tried again at the next.
async fn trim(
    db: Database,
    clock: platform::Clock,
    retention: Retention,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(retention.every);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return Ok(()),
        }
        let cutoff = clock.now_millis() - i64::from(retention.days) * 86_400_000;
        match audit::remove_published_before(&db, cutoff).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(
                removed,
                days = retention.days,
                "audit entries past their retention removed"
            ),
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "audit trim failed; trying again later")
            }
        }
    }
}
