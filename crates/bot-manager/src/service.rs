//! The Bot Manager's shared state and the few things every part of it does: activity
//! events, waking waiting jobs, and its Prometheus figures.

use std::sync::Arc;

use platform::activity::{Activity, ActivityLog};
use platform::db::Database;
use platform::http::metrics::MetricsRegistry;
use platform::queue::Queue;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use serde_json::Value;
use tokio::sync::Notify;

use crate::botdata::BotDataClient;
use crate::settings::Settings;
use crate::tokens::Tokens;
use crate::xapi::XClient;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub action: String,
    pub result: String,
}

#[derive(Clone)]
pub struct BotMetrics {
    pub actions: Family<ActionLabels, Counter>,
    pub dispatched: Counter,
    /// Seconds between a post's run_at and its publication.
    pub lateness: Histogram,
}

impl BotMetrics {
    pub fn register(registry: &MetricsRegistry) -> Self {
        Self {
            actions: registry.register(
                "bot_actions",
                "Bot actions on X (publish, delete, verify, refresh, snapshot) by result",
                Family::default(),
            ),
            dispatched: registry.register(
                "bot_jobs_dispatched",
                "Jobs the relay handed to the queue",
                Counter::default(),
            ),
            lateness: registry.register(
                "bot_publish_lateness_seconds",
                "How long after its run_at a post was published",
                Histogram::new(exponential_buckets(0.01, 2.0, 16)),
            ),
        }
    }

    pub fn count(&self, action: &str, result: &str) {
        self.actions
            .get_or_create(&ActionLabels {
                action: action.into(),
                result: result.into(),
            })
            .inc();
    }
}

pub struct BotManager {
    pub db: Database,
    /// The section as the service started; `live` for what follows the central
    /// configuration (grace and retry limits).
    pub settings: Settings,
    pub live: platform::config::Live<Settings>,
    pub botdata: Arc<BotDataClient>,
    pub x: Arc<XClient>,
    pub tokens: Tokens,
    pub activity: ActivityLog,
    pub queue: Arc<dyn Queue>,
    /// Wakes the relay when a job is due now.
    pub relay_wake: Notify,
    pub metrics: BotMetrics,
    /// This replica's name in lease holders.
    pub instance: String,
    /// What time it is for schedules, leases, backoffs and rate windows.
    pub clock: platform::Clock,
}

/// A uniformly random whole number below `bound` (jitter, not secrets).
pub fn random_below(bound: u64) -> u64 {
    if bound == 0 {
        return 0;
    }
    (uuid::Uuid::new_v4().as_u128() % u128::from(bound)) as u64
}

impl BotManager {
    /// Re-arms the jobs that waited while the bot could not publish and wakes the relay.
    pub async fn release_waiting(&self, bot_id: &str) -> anyhow::Result<()> {
        let released =
            crate::store::posts::release_waiting_jobs(&self.db, bot_id, self.clock.now_millis())
                .await?;
        if released > 0 {
            self.relay_wake.notify_one();
        }
        Ok(())
    }

    /// A user activity for the Logging service (on the queue, or spilled until it is back).
    pub async fn record(&self, action: &str, actor: &str, subject: &str, details: Value) {
        self.activity
            .record(
                Activity::new(action)
                    .actor(actor)
                    .subject(subject)
                    .details(details),
            )
            .await;
    }
}
