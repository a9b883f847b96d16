//! Retention: each category keeps its events for its configured days and within its byte
//! budget (the oldest days go first), dropped as whole day partitions on PostgreSQL and as
//! rows on SQLite — at start, on a timer, and right after the central configuration changes
//! (a shorter retention or a smaller budget takes effect at once). Finished
//! webhook deliveries leave the delivery log after `webhooks.delivery_log_days`.

use std::sync::Arc;
use std::time::Duration;

use platform::db::Backend;
use platform::target::TargetContext;

use crate::model::Category;
use crate::service::Logs;
use crate::store;
use crate::store::partitions::{DAY_MS, day_start};

/// One retention pass: each category's days, then its byte budget; then the space deletes
/// freed goes back to the file system.
pub async fn apply(logs: &Logs) -> anyhow::Result<()> {
    let now = logs.clock.now_millis();
    for category in Category::ALL {
        by_age(logs, category, now).await?;
        by_bytes(logs, category, now).await?;
    }
    store::space::reclaim(&logs.db).await?;
    let log_days = i64::from(logs.live.get().webhooks.delivery_log_days.max(1));
    store::webhooks::purge_finished(&logs.db, now - log_days * DAY_MS).await?;
    Ok(())
}

async fn by_age(logs: &Logs, category: Category, now: i64) -> anyhow::Result<()> {
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
        }
        Backend::Sqlite => {
            store::delete_older(&logs.db, category, cutoff).await?;
        }
    }
    Ok(())
}

/// While the category holds more than its budget, its oldest day goes — but not the current
/// day (or a later one) whole; on SQLite that day's oldest events go instead, until the
/// category fits.
async fn by_bytes(logs: &Logs, category: Category, now: i64) -> anyhow::Result<()> {
    let budget = category.retention_bytes(&logs.live.get().retention_bytes);
    let days = store::space::days(&logs.db, &logs.partitions, category).await?;
    let mut held: i64 = days.iter().map(|day| day.bytes).sum();
    let budget = i64::try_from(budget).unwrap_or(i64::MAX);
    let today = day_start(now);
    for day in days.iter().take_while(|day| day.day < today) {
        if budget == 0 || held <= budget {
            break;
        }
        let events = store::space::drop_day(&logs.db, &logs.partitions, category, day).await?;
        held -= day.bytes;
        logs.metrics.count_dropped_for_space(category, events);
        tracing::warn!(category = category.as_str(), day = %platform::time_fmt::rfc3339_from_millis(day.day), events, bytes = day.bytes, budget, "the category is over its byte budget: its oldest day went");
    }
    if budget > 0 && held > budget && logs.db.backend() == Backend::Sqlite {
        // The current day alone is over the budget: its oldest events go too.
        let (events, left) = store::space::trim_oldest(&logs.db, category, budget).await?;
        logs.metrics.count_dropped_for_space(category, events);
        tracing::warn!(
            category = category.as_str(),
            events,
            budget,
            "the category's current day is over its byte budget: its oldest events went"
        );
        held = left;
    }
    logs.metrics.set_stored_bytes(category, held, budget);
    Ok(())
}

/// Only the byte budgets, between full passes: a burst fills a budget in minutes, not hours.
pub async fn apply_budgets(logs: &Logs) -> anyhow::Result<()> {
    let now = logs.clock.now_millis();
    for category in Category::ALL {
        by_bytes(logs, category, now).await?;
    }
    store::space::reclaim(&logs.db).await
}

/// How often the byte budgets are checked between full passes.
const BUDGET_CHECK_EVERY: Duration = Duration::from_secs(60);

/// Runs retention at start, every `retention_interval`, and after each configuration change;
/// the byte budgets also every [`BUDGET_CHECK_EVERY`].
pub fn spawn(ctx: &TargetContext, logs: Arc<Logs>) {
    let shutdown = ctx.shutdown.clone();
    let every = Duration::from_secs(logs.settings.retention_interval.max(1));
    let mut revisions = Some(ctx.live.watch_revision());
    ctx.spawn_critical("logging-retention", async move {
        let mut tick = tokio::time::interval(every);
        let mut budget_tick = tokio::time::interval(BUDGET_CHECK_EVERY.min(every));
        budget_tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = budget_tick.tick() => {
                    if let Err(err) = apply_budgets(&logs).await {
                        tracing::warn!(error = %format!("{err:#}"), "byte budget pass failed; trying again later");
                    }
                    continue;
                }
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
