//! The service's state: its database, settings, partitions, clock and metrics, and the
//! retention cutoff every operation applies.

use platform::config::Live;
use platform::db::Database;
use platform::http::metrics::{CategoryLabels, MetricsRegistry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::model::Category;
use crate::settings::Settings;
use crate::store::partitions::{DAY_MS, Partitions};

#[derive(Clone)]
pub struct LogMetrics {
    stored: Family<CategoryLabels, Counter>,
    expired: Family<CategoryLabels, Counter>,
    rejected: Counter,
}

impl LogMetrics {
    pub fn register(registry: &MetricsRegistry) -> Self {
        Self {
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
        }
    }

    fn labels(category: Category) -> CategoryLabels {
        CategoryLabels {
            category: category.as_str().to_string(),
        }
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
}

impl Logs {
    /// The oldest time (ms) `category` keeps now.
    pub fn cutoff(&self, category: Category, now: i64) -> i64 {
        now - i64::from(category.retention_days(&self.live.get().retention)) * DAY_MS
    }
}
