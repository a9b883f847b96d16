//! Retention: each category keeps its events for its configured days, dropped as whole day
//! partitions on PostgreSQL and as rows on SQLite — at start, on a timer, and right after
//! the central configuration changes (a shorter retention takes effect at once). Finished
//! webhook deliveries leave the delivery log after `webhooks.delivery_log_days`.

use std::sync::Arc;
use std::time::Duration;

use platform::db::Backend;
use platform::target::TargetContext;

use crate::model::Category;
use crate::service::Logs;
use crate::store;
use crate::store::partitions::DAY_MS;

/// One retention pass; returns how many partitions (PostgreSQL) or rows (SQLite) of events
/// went.
pub async fn apply(logs: &Logs) -> anyhow::Result<u64> {
    let now = logs.clock.now_millis();
    let mut removed = 0;
    for category in Category::ALL {
        let cutoff = logs.cutoff(category, now);
        match logs.db.backend() {
            Backend::Postgres => {
                let dropped = logs
                    .partitions
                    .drop_older(&logs.db, category, cutoff)
                    .await?;
                if !dropped.is_empty() {
                    tracing::info!(category = category.as_str(), partitions = ?dropped, "retention dropped partitions");
                }
                removed += dropped.len() as u64;
            }
            Backend::Sqlite => {
                removed += store::delete_older(&logs.db, category, cutoff).await?;
            }
        }
    }
    let log_days = i64::from(logs.live.get().webhooks.delivery_log_days.max(1));
    store::webhooks::purge_finished(&logs.db, now - log_days * DAY_MS).await?;
    Ok(removed)
}

/// Runs retention at start, every `retention_interval`, and after each configuration change.
pub fn spawn(ctx: &TargetContext, logs: Arc<Logs>) {
    let shutdown = ctx.shutdown.clone();
    let every = Duration::from_secs(logs.settings.retention_interval.max(1));
    let mut revisions = Some(ctx.live.watch_revision());
    ctx.spawn_critical("logging-retention", async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                changed = async {
                    match revisions.as_mut() {
                        Some(revisions) => revisions.changed().await,
                        None => std::future::pending().await,
                    }
                } => {
                    if changed.is_err() {
                        // No more changes will come; the timer remains.
                        revisions = None;
                        continue;
                    }
                }
                _ = shutdown.cancelled() => return Ok(()),
            }
            if let Err(err) = apply(&logs).await {
                tracing::warn!(error = %format!("{err:#}"), "retention pass failed; trying again later");
            }
        }
    });
}
