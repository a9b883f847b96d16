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
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use serde_json::Value;
use tokio::sync::Notify;

use crate::botdata::BotDataClient;
use crate::settings::Settings;
use crate::store::bots::BotRow;
use crate::tokens::Tokens;
use crate::xapi::XClient;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub action: String,
    pub result: String,
}

/// How far a budget is spent: `soft` or `exceeded`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LevelLabels {
    pub level: String,
}

/// An X app (project).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AppLabels {
    pub app: String,
}

/// A billable use of X, for the usage metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UsageLabels {
    pub kind: String,
    pub currency: String,
}

#[derive(Clone)]
pub struct BotMetrics {
    pub actions: Family<ActionLabels, Counter>,
    /// Billable uses of X, and what they cost in millionths of the currency.
    pub usage_units: Family<UsageLabels, Counter>,
    pub usage_cost: Family<UsageLabels, Counter>,
    pub dispatched: Counter,
    /// Budget crossings announced (`soft`, `exceeded`), once per team or app and month each.
    pub budget_notices: Family<LevelLabels, Counter>,
    /// X's last word on each registered app's project: its monthly cap and the use of it.
    pub x_project_cap: Family<AppLabels, Gauge>,
    pub x_project_usage: Family<AppLabels, Gauge>,
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
            usage_units: registry.register(
                "bot_x_usage_units",
                "Billable uses of X (posts, posts with a URL, deletes, reads) by kind",
                Family::default(),
            ),
            usage_cost: registry.register(
                "bot_x_cost_micros",
                "What the uses of X cost, in millionths of the currency, at the prices then in force",
                Family::default(),
            ),
            budget_notices: registry.register(
                "bot_budget_notices",
                "Team and app budget crossings announced, by level (soft = the threshold, exceeded = all spent)",
                Family::default(),
            ),
            x_project_cap: registry.register(
                "bot_x_project_cap",
                "The monthly cap of the app's X project, as X's GET /2/usage/tweets last said (0: none)",
                Family::default(),
            ),
            x_project_usage: registry.register(
                "bot_x_project_usage",
                "The use of the app's X project cap this period, as X's GET /2/usage/tweets last said",
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

    /// A metered use, once it is recorded.
    pub fn bill(&self, charge: &crate::store::usage::Charge) {
        let labels = UsageLabels {
            kind: charge.kind.into(),
            currency: charge.currency.clone(),
        };
        self.usage_units
            .get_or_create(&labels)
            .inc_by(charge.units.max(0) as u64);
        self.usage_cost
            .get_or_create(&labels)
            .inc_by(charge.cost_micros.max(0) as u64);
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

/// Who acted on a bot: a person (or service client) calling the API, or this service's own
/// workers.
pub enum Actor<'a> {
    Caller(&'a platform::auth::Caller),
    Service,
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

    /// A user activity about `bot` for the Logging service (on the queue, or spilled until
    /// it is back). It carries the bot's id and team, so Managers find their team's events,
    /// and a message that names the bot.
    pub async fn record(
        &self,
        actor: Actor<'_>,
        action: &str,
        bot: &BotRow,
        subject: &str,
        details: Value,
    ) {
        let activity = match actor {
            Actor::Caller(caller) => Activity::by(caller, action),
            Actor::Service => Activity::new(action).by_service(crate::NAME),
        };
        let named = match &bot.x_handle {
            Some(handle) => format!("{} (@{handle})", bot.name),
            None => bot.name.clone(),
        };
        let message = if subject == bot.bot_id {
            format!("{action}: bot {named}")
        } else {
            format!("{action} {subject}: bot {named}")
        };
        self.activity
            .record(
                activity
                    .subject(subject)
                    .bot(&bot.bot_id)
                    .team(bot.team.as_deref())
                    .message(message)
                    .details(details),
            )
            .await;
    }

    /// [`BotManager::record`] for this service's own workers, which hold the bot's id only.
    pub async fn record_for(&self, action: &str, bot_id: &str, subject: &str, details: Value) {
        match crate::store::bots::get(&self.db, bot_id).await {
            Ok(Some(bot)) => {
                self.record(Actor::Service, action, &bot, subject, details)
                    .await
            }
            // Gone or unreadable: the event still counts, with the id alone.
            _ => {
                self.activity
                    .record(
                        Activity::new(action)
                            .by_service(crate::NAME)
                            .subject(subject)
                            .bot(bot_id)
                            .details(details),
                    )
                    .await
            }
        }
    }
}
