//! Bot Manager service: bots, posts and their lifecycle, schedules, action jobs, the X API
//! client and metric snapshots, under `/api/v1/bots`.
//!
//! The path of a post: the API writes the post, its job and an outbox row in one
//! transaction; the relay hands due rows to the queue; a worker (any replica) takes the
//! bot's lease, re-reads the job and post, and acts on X through the official API v2,
//! classifying the answer (published, failed, retry with backoff, wait for the rate-limit
//! reset, refresh the token, or unknown until verified by reading the bot's own posts).
//! Credentials live in Secure Bot Data, never in this service's tables. Bots act openly:
//! nothing here disguises automation, and X's rule against the same content from several
//! accounts is enforced before a post is accepted.

mod api;
mod botdata;
mod fingerprint;
mod materialiser;
mod metering;
mod model;
mod ops;
mod recurrence;
mod relay;
mod service;
mod settings;
mod snapshots;
mod store;
mod tokens;
mod worker;
mod x_usage;
mod xapi;

#[cfg(test)]
mod x_agreement;

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use platform::activity::ActivityLog;
use platform::auth::ServiceTokens;
use platform::db::{MigrationStep, Migrations};
use platform::target::{BuiltTarget, Target, TargetContext, TargetInfo};
use utoipa::OpenApi;

pub use relay::{SUBJECT as DUE_SUBJECT, envelope as due_envelope};
pub use settings::Settings;
pub use store::execution::{Due, doubt_due_sends};
pub use worker::{CONSUMER, DEAD_LETTER_SUBJECT, consumer_spec};

use crate::botdata::BotDataClient;
use crate::service::{BotManager, BotMetrics};
use crate::tokens::Tokens;
use crate::xapi::XClient;

pub const NAME: &str = "bot-manager";
pub const CONFIG_SECTION: &str = "bot_manager";
pub const ROUTE_PREFIX: &str = "/api/v1/bots";
/// The queue subject of due jobs.
pub const JOBS_SUBJECT: &str = relay::SUBJECT;

const STEPS: &[MigrationStep] = &[
    MigrationStep {
        version: 1,
        description: "bot manager",
        sql: include_str!("../migrations/0001_bot_manager.sql"),
    },
    MigrationStep {
        version: 2,
        description: "post options",
        sql: include_str!("../migrations/0002_post_options.sql"),
    },
    MigrationStep {
        version: 3,
        description: "usage and cost",
        sql: include_str!("../migrations/0003_usage.sql"),
    },
    MigrationStep {
        version: 4,
        description: "budgets",
        sql: include_str!("../migrations/0004_budgets.sql"),
    },
    MigrationStep {
        version: 5,
        description: "publish windows",
        sql: include_str!("../migrations/0005_publish_windows.sql"),
    },
    MigrationStep {
        version: 6,
        description: "x apps",
        sql: include_str!("../migrations/0006_x_apps.sql"),
    },
    MigrationStep {
        version: 7,
        description: "reviews",
        sql: include_str!("../migrations/0007_reviews.sql"),
    },
    MigrationStep {
        version: 8,
        description: "content claims",
        sql: include_str!("../migrations/0008_content_claims.sql"),
    },
    MigrationStep {
        version: 9,
        description: "threads",
        sql: include_str!("../migrations/0009_threads.sql"),
    },
    MigrationStep {
        version: 10,
        description: "bot time zone",
        sql: include_str!("../migrations/0010_bot_time_zone.sql"),
    },
    MigrationStep {
        version: 11,
        description: "x connections",
        sql: include_str!("../migrations/0011_x_connections.sql"),
    },
    MigrationStep {
        version: 12,
        description: "recurrences",
        sql: include_str!("../migrations/0012_recurrences.sql"),
    },
    MigrationStep {
        version: 13,
        description: "media",
        sql: include_str!("../migrations/0013_media.sql"),
    },
    MigrationStep {
        version: 14,
        description: "compliance records",
        sql: include_str!("../migrations/0014_compliance_records.sql"),
    },
    MigrationStep {
        version: 15,
        description: "job backlog indexes",
        sql: include_str!("../migrations/0015_job_backlog.sql"),
    },
];

const MIGRATIONS: Migrations = Migrations {
    sqlite: STEPS,
    postgres: STEPS,
};

/// The replica's background work: the relay (and its redrive after a queue outage), the
/// worker, metric snapshots, recurring posts' occurrences, X usage reads.
fn spawn_background(ctx: &TargetContext, manager: &Arc<BotManager>) {
    let shutdown = || ctx.shutdown.clone();
    ctx.tasks.spawn(relay::run(manager.clone(), shutdown()));
    ctx.tasks
        .spawn(relay::redrive_on_recovery(manager.clone(), shutdown()));
    ctx.spawn_critical(
        "bot-manager-worker",
        worker::run(manager.clone(), shutdown()),
    );
    ctx.watch_backlog(worker::consumer_spec(&manager.settings.execution));
    ctx.tasks.spawn(snapshots::run(manager.clone(), shutdown()));
    ctx.tasks
        .spawn(materialiser::run(manager.clone(), shutdown()));
    ctx.tasks.spawn(x_usage::run(manager.clone(), shutdown()));
}

/// The Bot Manager target.
pub struct BotManagerService;

#[async_trait]
impl Target for BotManagerService {
    fn info(&self) -> TargetInfo {
        TargetInfo::new::<Settings>(NAME, CONFIG_SECTION)
            .with_routes(ROUTE_PREFIX)
            .with_settings(settings::declared_settings)
            .with_migrations(MIGRATIONS)
    }

    async fn build(&self, ctx: TargetContext) -> anyhow::Result<BuiltTarget> {
        let live = ctx.live.section::<Settings>(CONFIG_SECTION, |settings| {
            settings.check().map_err(|err| err.to_string())
        })?;
        let settings: Settings = live.get().as_ref().clone();
        let db = ctx.require_database(NAME)?;
        let secrets_dir = &ctx.platform.auth.service_secrets_dir;
        let secret =
            platform::auth::service_secret(secrets_dir, &settings.client_id, ctx.config.profile())?
                .with_context(|| {
                    format!(
                        "bot_manager needs its client secret in {} (a mounted Secret)",
                        platform::auth::service_secret_path(secrets_dir, &settings.client_id)
                            .display()
                    )
                })?;
        let authentication_url = ctx
            .platform
            .auth
            .authentication_url
            .clone()
            .unwrap_or_else(|| ctx.peers.url("authentication"));
        let tokens = ServiceTokens::new(
            &authentication_url,
            &settings.client_id,
            secret,
            "secure-bot-data",
            ctx.clock.clone(),
        )?;
        let botdata_url = settings
            .secure_bot_data_url
            .clone()
            .unwrap_or_else(|| ctx.peers.url("secure-bot-data"));
        let botdata = Arc::new(BotDataClient::new(&botdata_url, tokens)?);
        let x = Arc::new(XClient::new(&settings.x_api)?);
        let manager = Arc::new(BotManager {
            tokens: Tokens::new(botdata.clone(), x.clone()),
            botdata,
            x,
            activity: ActivityLog::new(ctx.events.clone(), NAME),
            queue: ctx.queue.clone(),
            relay_wake: tokio::sync::Notify::new(),
            metrics: BotMetrics::register(&ctx.metrics),
            instance: uuid::Uuid::now_v7().to_string(),
            clock: ctx.clock.clone(),
            settings,
            live,
            db,
        });
        spawn_background(&ctx, &manager);
        Ok(BuiltTarget::service(
            api::router(manager),
            "Bot Manager",
            ROUTE_PREFIX,
            api::BotsApi::openapi(),
        ))
    }
}
