//! Secure Bot Data Storage: what bots need to act (email, X handle, passwords, API and OAuth
//! tokens), under `/api/v1/botdata`, modelled on Vault's KV v2 (versions, check-and-set,
//! soft delete, destroy) and Transit (envelope encryption, versioned KEKs, rewrap).
//!
//! Values are sealed with a fresh AES-256-GCM data key per version, wrapped by a versioned
//! key-encryption key that never touches the database; without a usable KEK the service is
//! sealed. Every reveal, write, delete, denial and rotation is audited, and the audit trail
//! is relayed to the Logging service as user_activity events.

mod access;
mod api;
mod audit;
pub mod crypto;
mod keyring;
mod metrics;
mod model;
pub mod operator;
mod ops;
mod service;
mod settings;
mod store;

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use async_trait::async_trait;
use platform::config::Profile;
use platform::db::{MigrationStep, Migrations};
use platform::http::health::ReadinessCheck;
use platform::target::{BuiltTarget, Target, TargetContext, TargetInfo};
use utoipa::OpenApi;

pub use settings::Settings;

use crate::keyring::KeyVault;
use crate::service::BotData;

pub const NAME: &str = "secure-bot-data";
pub const CONFIG_SECTION: &str = "secure_bot_data";
pub const ROUTE_PREFIX: &str = "/api/v1/botdata";

const STEPS: &[MigrationStep] = &[MigrationStep {
    version: 1,
    description: "secure bot data",
    sql: include_str!("../migrations/0001_secure_bot_data.sql"),
}];

pub const MIGRATIONS: Migrations = Migrations {
    sqlite: STEPS,
    postgres: STEPS,
};

fn check_settings(settings: &Settings) -> anyhow::Result<()> {
    if !(1..=100).contains(&settings.max_versions) {
        bail!("secure_bot_data.max_versions is 1 to 100");
    }
    if !(1..=1024 * 1024).contains(&settings.max_value_bytes) {
        bail!("secure_bot_data.max_value_bytes is 1 to 1048576");
    }
    if settings.max_fields_per_bot < 1 {
        bail!("secure_bot_data.max_fields_per_bot is at least 1");
    }
    if settings.kek_reload_interval == 0 {
        bail!("secure_bot_data.kek_reload_interval is at least 1 second");
    }
    if !(1..=36_500).contains(&settings.audit_retention_days) {
        bail!("secure_bot_data.audit_retention_days is 1 to 36500");
    }
    if settings.audit_trim_interval == 0 {
        bail!("secure_bot_data.audit_trim_interval is at least 1 second");
    }
    Ok(())
}

/// In development, a first KEK so that `vivesphere serve` works out of the box — but never
/// over stored data keys (a restore whose KEKs are not back yet): a new key could open none
/// of them, so the service stays sealed and says which versions to restore.
async fn ensure_development_kek(
    settings: &Settings,
    profile: Profile,
    db: &platform::db::Database,
) -> anyhow::Result<()> {
    if profile != Profile::Development || !settings.generate_development_kek {
        return Ok(());
    }
    if !keyring::read_material(settings)?.is_empty() {
        return Ok(());
    }
    if !store::secrets::count_by_kek(db).await?.is_empty() {
        tracing::warn!("stored data keys need KEKs that are not here; generating none");
        return Ok(());
    }
    let dir = std::path::Path::new(&settings.kek_dir);
    keyring::write_new_version(dir, 1, crypto::random_key().as_ref())?;
    tracing::warn!(dir = %dir.display(), "generated development KEK version 1; mount real KEKs outside development");
    Ok(())
}

/// The Secure Bot Data target.
pub struct SecureBotDataService;

#[async_trait]
impl Target for SecureBotDataService {
    fn info(&self) -> TargetInfo {
        TargetInfo::new::<Settings>(NAME, CONFIG_SECTION)
            .with_routes(ROUTE_PREFIX)
            .with_migrations(MIGRATIONS)
    }

    async fn build(&self, ctx: TargetContext) -> anyhow::Result<BuiltTarget> {
        let settings: Settings = ctx.config.section(CONFIG_SECTION)?;
        check_settings(&settings)?;
        let db = ctx.require_database(NAME)?;
        // The audit trim's deletes on SQLite then give the space back to the file system.
        db.reclaim_space_from_now_on().await.map_err(|err| {
            err.context("cannot turn on incremental vacuum for the secure bot data database")
        })?;
        ensure_development_kek(&settings, ctx.config.profile(), &db).await?;
        let metrics = metrics::BotDataMetrics::register(&ctx.metrics);
        let vault = KeyVault::open(settings.clone(), db.clone(), metrics.sealed.clone()).await?;
        if let Some(why) = vault.sealed_because() {
            tracing::warn!(%why, "starting sealed");
        }
        let state = Arc::new(BotData {
            audit: audit::AuditLog::start(db.clone(), &ctx, NAME, &settings),
            db,
            settings: settings.clone(),
            vault,
            metrics,
            events: platform::activity::ActivityLog::new(ctx.events.clone(), NAME),
            clock: ctx.clock.clone(),
        });
        spawn_key_reloader(&ctx, state.clone(), settings.kek_reload_interval);
        let readiness_state = state.clone();
        let vault_check = ReadinessCheck::in_process(format!("{NAME}.vault"), move || {
            match readiness_state.vault.sealed_because() {
                None => Ok(()),
                Some(why) => Err(why),
            }
        });
        Ok(BuiltTarget::service(
            api::router(state),
            "Secure Bot Data",
            ROUTE_PREFIX,
            api::BotDataApi::openapi(),
        )
        .with_check(vault_check))
    }
}

/// Rereads the keyring now and then, so a KEK version added on disk (or to the mounted
/// Secret) reaches this replica without a restart.
fn spawn_key_reloader(ctx: &TargetContext, state: Arc<BotData>, every: u64) {
    let shutdown = ctx.shutdown.clone();
    ctx.spawn_critical("botdata-kek-reload", async move {
        let mut tick = tokio::time::interval(Duration::from_secs(every));
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(err) = state.vault.reload().await {
                        tracing::warn!(error = %format!("{err:#}"), "rereading the KEKs failed; keeping the loaded ones");
                    }
                }
                _ = shutdown.cancelled() => return Ok(()),
            }
        }
    });
}
