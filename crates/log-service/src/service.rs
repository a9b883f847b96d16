//! The service's state: its database, settings, partitions, clock and metrics, and the
//! retention cutoff every operation applies.

use platform::config::Live;
use platform::db::Database;
use platform::http::metrics::{CategoryLabels, MetricsRegistry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use crate::model::Category;
use crate::settings::Settings;
use crate::store::partitions::{DAY_MS, Partitions};

#[derive(Clone)]
pub struct LogMetrics {
    stored: Family<CategoryLabels, Counter>,
    expired: Family<CategoryLabels, Counter>,
    rejected: Counter,
    group_commits: Histogram,
    stored_bytes: Family<CategoryLabels, Gauge>,
    budget_bytes: Family<CategoryLabels, Gauge>,
    dropped_for_space: Family<CategoryLabels, Counter>,
}

impl LogMetrics {
    pub fn register(registry: &MetricsRegistry) -> Self {
        let metrics = Self {
            stored: registry.register(
                "log_events_stored",
                "Log events stored, by category (duplicates not counted)",
                Family::default(),
            ),
            expired: registry.register(
                "log_events_expired",
                "Log events that arrived already past their category's retention, by category",
                Family::default(),
            ),
            rejected: registry.register(
                "log_events_rejected",
                "Queue messages that could not be read as log events",
                Counter::default(),
            ),
            group_commits: registry.register(
                "log_http_commit_group_events",
                "Events per transaction of single submissions over HTTP (group commit)",
                Histogram::new(exponential_buckets(1.0, 2.0, 11)),
            ),
            stored_bytes: registry.register(
                "log_store_bytes",
                "Bytes each category's events take, as of the last retention pass",
                Family::default(),
            ),
            budget_bytes: registry.register(
                "log_store_budget_bytes",
                "Each category's byte budget (logging.retention_bytes.*; 0: none)",
                Family::default(),
            ),
            dropped_for_space: registry.register(
                "log_events_dropped_for_space",
                "Log events let go before their days were up, because their category was over its byte budget",
                Family::default(),
            ),
        };
        // Every category from the start, so dashboards and alerts see zeros, not gaps.
        for category in Category::ALL {
            let labels = Self::labels(category);
            let _ = metrics.stored_bytes.get_or_create(&labels);
            let _ = metrics.budget_bytes.get_or_create(&labels);
            let _ = metrics.dropped_for_space.get_or_create(&labels);
        }
        metrics
    }

    pub fn set_stored_bytes(&self, category: Category, bytes: i64, budget: i64) {
        let labels = Self::labels(category);
        self.stored_bytes.get_or_create(&labels).set(bytes);
        self.budget_bytes.get_or_create(&labels).set(budget);
    }

    pub fn count_dropped_for_space(&self, category: Category, events: i64) {
        self.dropped_for_space
            .get_or_create(&Self::labels(category))
            .inc_by(events.max(0) as u64);
    }

    fn labels(category: Category) -> CategoryLabels {
        CategoryLabels {
            category: category.as_str().to_string(),
        }
    }

    pub fn observe_group_commit(&self, events: usize) {
        self.group_commits.observe(events as f64);
    }

    pub fn count_rejected(&self) {
        self.rejected.inc();
    }

    pub fn count_expired(&self, category: Category) {
        self.expired.get_or_create(&Self::labels(category)).inc();
    }

    pub fn count_stored(&self, category: Category, events: u64) {
        if events > 0 {
            self.stored
                .get_or_create(&Self::labels(category))
                .inc_by(events);
        }
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
    /// Webhook notifications: their sealing key, HTTP client and sender.
    pub webhooks: crate::webhooks::Webhooks,
    /// Single HTTP submissions waiting to share a transaction.
    pub group_commit: crate::ops::group_commit::GroupCommit,
}

impl Logs {
    /// The oldest time (ms) `category` keeps now.
    pub fn cutoff(&self, category: Category, now: i64) -> i64 {
        now - i64::from(category.retention_days(&self.live.get().retention)) * DAY_MS
    }
}
