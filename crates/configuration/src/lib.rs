//! Configuration/Settings service, under `/api/v1/config`: settings per scope (global and
//! each service) and profile. Every change is an immutable release (one increasing revision,
//! the full snapshot, author, reason, diff, request id), checked against what each service
//! declares before it is written, written with check-and-set, audited as user_activity and
//! announced to every config client — through the in-process hub in one process, on
//! `config.changes.<scope>` otherwise — with an HTTP long poll for anything else.
//! No secret is stored: a value may only refer to one as `${secret:NAME}`.

mod api;
mod model;
mod ops;
mod service;
mod store;

use std::sync::Arc;

use async_trait::async_trait;
use platform::activity::ActivityLog;
use platform::db::{MigrationStep, Migrations};
use platform::target::{BuiltTarget, Target, TargetContext, TargetInfo};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use utoipa::OpenApi;

use crate::service::{ConfigService, InProcessProvider};

pub const NAME: &str = "configuration";
pub const CONFIG_SECTION: &str = "configuration";
pub const ROUTE_PREFIX: &str = "/api/v1/config";

const SQLITE_STEPS: &[MigrationStep] = &[MigrationStep {
    version: 1,
    description: "releases",
    sql: include_str!("../migrations/0001_configuration_sqlite.sql"),
}];

const POSTGRES_STEPS: &[MigrationStep] = &[MigrationStep {
    version: 1,
    description: "releases",
    sql: include_str!("../migrations/0001_configuration_postgres.sql"),
}];

const MIGRATIONS: Migrations = Migrations {
    sqlite: SQLITE_STEPS,
    postgres: POSTGRES_STEPS,
};

/// The `configuration` config section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Largest value of one setting, as JSON bytes.
    pub max_value_bytes: usize,
    /// Most settings one scope holds.
    pub max_keys: usize,
    /// Longest reason a change may give.
    pub max_reason_chars: usize,
    /// Longest long poll (`/watch?wait=`), in seconds.
    pub max_wait_seconds: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_value_bytes: 4096,
            max_keys: 500,
            max_reason_chars: 500,
            max_wait_seconds: 60,
        }
    }
}

fn check_settings(settings: &Settings) -> Result<(), String> {
    if settings.max_value_bytes < 64 || settings.max_keys == 0 || settings.max_wait_seconds == 0 {
        return Err(
            "max_value_bytes is at least 64; max_keys and max_wait_seconds at least 1".into(),
        );
    }
    Ok(())
}

/// The Configuration target.
pub struct ConfigurationService;

#[async_trait]
impl Target for ConfigurationService {
    fn info(&self) -> TargetInfo {
        TargetInfo::new::<Settings>(NAME, CONFIG_SECTION)
            .with_routes(ROUTE_PREFIX)
            .with_migrations(MIGRATIONS)
    }

    async fn build(&self, ctx: TargetContext) -> anyhow::Result<BuiltTarget> {
        let settings = ctx
            .live
            .section::<Settings>(CONFIG_SECTION, check_settings)?;
        let db = ctx.require_database(NAME)?;
        let service = Arc::new(ConfigService {
            db,
            catalog: ctx.live.catalog().clone(),
            settings,
            profile: ctx.config.profile(),
            queue: ctx.queue.clone(),
            hub: ctx.hub.clone(),
            activity: ActivityLog::new(ctx.events.clone(), NAME),
            head: watch::channel(0).0,
            request_timeout: std::time::Duration::from_secs(ctx.platform.server.request_timeout),
            clock: ctx.clock.clone(),
        });
        ctx.hub
            .provide(Arc::new(InProcessProvider(service.clone())));
        ctx.tasks
            .spawn(service.clone().follow_other_replicas(ctx.shutdown.clone()));
        Ok(BuiltTarget::service(
            api::router(service),
            "Configuration",
            ROUTE_PREFIX,
            api::ConfigApi::openapi(),
        ))
    }
}
