//! The service's shared state and operations: storing events (HTTP and queue alike),
//! retention, and the service's metrics.

use std::sync::Arc;
use std::time::Duration;

use platform::config::Live;
use platform::db::{Backend, Database};
use platform::http::metrics::{CategoryLabels, MetricsRegistry};
use platform::target::TargetContext;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::model::{Category, LogEvent};
use crate::settings::Settings;
use crate::store;
use crate::store::partitions::{DAY_MS, Partitions, day_start};

#[derive(Clone, Default)]
pub struct LogMetrics {
    stored: Family<CategoryLabels, Counter>,
    expired: Family<CategoryLabels, Counter>,
    rejected: Counter,
}

impl LogMetrics {
    pub fn register(registry: &MetricsRegistry) -> Self {
        let metrics = Self::default();
        registry.register(
            "log_events_stored",
            "Log events stored, by category (duplicates not counted)",
            metrics.stored.clone(),
        );
        registry.register(
            "log_events_expired",
            "Log events that arrived already past their category's retention, by category",
            metrics.expired.clone(),
        );
        registry.register(
            "log_events_rejected",
            "Queue messages that could not be read as log events",
            metrics.rejected.clone(),
        );
        metrics
    }

    fn labels(category: Category) -> CategoryLabels {
        CategoryLabels {
            category: category.as_str().to_string(),
        }
    }

    pub fn count_rejected(&self) {
        self.rejected.inc();
    }
}

pub struct Logs {
    pub db: Database,
    pub activity: platform::activity::ActivityLog,
    /// The section as the service started; `live` for retention, which follows the central
    /// configuration.
    pub settings: Settings,
    pub live: Live<Settings>,
    pub partitions: Partitions,
    pub metrics: LogMetrics,
    pub clock: platform::Clock,
}

impl Logs {
    /// The oldest time (ms) `category` keeps now.
    pub fn cutoff(&self, category: Category, now: i64) -> i64 {
        now - i64::from(category.retention_days(&self.live.get().retention)) * DAY_MS
    }

    /// Stores events in one transaction; returns how many were new. Events already past
    /// their retention are counted and skipped (retention would drop them anyway).
    pub async fn store(&self, events: Vec<LogEvent>) -> anyhow::Result<u64> {
        let now = self.clock.now_millis();
        let (keep, expired): (Vec<LogEvent>, Vec<LogEvent>) = events
            .into_iter()
            .partition(|e| e.ts >= self.cutoff(e.category, now));
        for event in &expired {
            self.metrics
                .expired
                .get_or_create(&LogMetrics::labels(event.category))
                .inc();
        }
        if keep.is_empty() {
            return Ok(0);
        }
        if self.db.backend() == Backend::Postgres {
            self.partitions
                .ensure(&self.db, keep.iter().map(|e| (e.category, day_start(e.ts))))
                .await?;
        }
        let mut tx = self.db.pool().begin().await?;
        let inserted = store::insert(&mut tx, self.db.backend(), &keep).await?;
        tx.commit().await?;
        for category in Category::ALL {
            let n = keep.iter().filter(|e| e.category == category).count() as u64;
            if n > 0 {
                self.metrics
                    .stored
                    .get_or_create(&LogMetrics::labels(category))
                    .inc_by(n);
            }
        }
        Ok(inserted)
    }

    /// One retention pass: whole day partitions on PostgreSQL, rows on SQLite.
    pub async fn apply_retention(&self) -> anyhow::Result<u64> {
        let now = self.clock.now_millis();
        let mut removed = 0;
        for category in Category::ALL {
            let cutoff = self.cutoff(category, now);
            match self.db.backend() {
                Backend::Postgres => {
                    let dropped = self
                        .partitions
                        .drop_older(&self.db, category, cutoff)
                        .await?;
                    if !dropped.is_empty() {
                        tracing::info!(category = category.as_str(), partitions = ?dropped, "retention dropped partitions");
                    }
                    removed += dropped.len() as u64;
                }
                Backend::Sqlite => {
                    removed += store::delete_older(&self.db, category, cutoff).await?;
                }
            }
        }
        Ok(removed)
    }
}

/// Runs retention at start, every `retention_interval`, and right after the central
/// configuration changes (a shorter retention takes effect at once).
pub fn spawn_retention(ctx: &TargetContext, logs: Arc<Logs>) {
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
            if let Err(err) = logs.apply_retention().await {
                tracing::warn!(error = %format!("{err:#}"), "retention pass failed; trying again later");
            }
        }
    });
}
