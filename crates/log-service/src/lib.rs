//! Logging service: every service's user_activity and debug events, browser console and
//! terminal logs, under `/api/v1/logs`. (Named log-service so it cannot be confused with the
//! `log` crate.)
//!
//! Events arrive through the queue (`logs.<category>.<service>`, a durable consumer that
//! writes in batches and acknowledges after the commit) and over HTTP (one event or a batch).
//! They are stored idempotently on their id — on PostgreSQL in day partitions per category,
//! so retention drops whole partitions; on SQLite in one table, with retention by delete —
//! and read back through a required time window, filters, full-text search and keyset pages,
//! or streamed as NDJSON or CSV. Who reads which category is decided on the server.

mod access;
mod api;
mod model;
mod ops;
mod service;
mod settings;
mod store;
mod webhooks;
mod writer;

use std::sync::Arc;

use anyhow::bail;
use async_trait::async_trait;
use platform::activity::ActivityLog;
use platform::db::{MigrationStep, Migrations};
use platform::sealing::Sealer;
use platform::target::{BuiltTarget, Target, TargetContext, TargetInfo};
use utoipa::OpenApi;

pub use settings::Settings;

use crate::service::{LogMetrics, Logs};
use crate::store::partitions::Partitions;
use crate::webhooks::{WebhookMetrics, Webhooks};

pub const NAME: &str = "logging";
pub const CONFIG_SECTION: &str = "logging";
pub const ROUTE_PREFIX: &str = "/api/v1/logs";
/// The durable consumer that writes queued events.
pub use writer::CONSUMER;

const ACTORS: MigrationStep = MigrationStep {
    version: 2,
    description: "actors, bots and teams",
    sql: include_str!("../migrations/0002_actors.sql"),
};

const WEBHOOKS: MigrationStep = MigrationStep {
    version: 3,
    description: "webhook subscriptions and deliveries",
    sql: include_str!("../migrations/0003_webhooks.sql"),
};

const SQLITE_STEPS: &[MigrationStep] = &[
    MigrationStep {
        version: 1,
        description: "logging",
        sql: include_str!("../migrations/0001_logging_sqlite.sql"),
    },
    ACTORS,
    WEBHOOKS,
    MigrationStep {
        version: 4,
        description: "event space ledger",
        sql: include_str!("../migrations/0004_event_space_sqlite.sql"),
    },
];

const POSTGRES_STEPS: &[MigrationStep] = &[
    MigrationStep {
        version: 1,
        description: "logging",
        sql: include_str!("../migrations/0001_logging_postgres.sql"),
    },
    ACTORS,
    WEBHOOKS,
];

const MIGRATIONS: Migrations = Migrations {
    sqlite: SQLITE_STEPS,
    postgres: POSTGRES_STEPS,
};

fn check_settings(settings: &Settings) -> anyhow::Result<()> {
    let r = &settings.retention;
    if [r.user_activity, r.debug, r.console, r.terminal].contains(&0) {
        bail!("logging.retention.* are at least 1 day");
    }
    if settings.batch_size == 0 || settings.batch_size > 10_000 {
        bail!("logging.batch_size is 1 to 10000");
    }
    if !(1024..=64 * 1024 * 1024).contains(&settings.batch_max_bytes) {
        bail!("logging.batch_max_bytes is 1024 to 67108864");
    }
    if settings.writers == 0 || settings.writers > 16 {
        bail!("logging.writers is 1 to 16");
    }
    if settings.max_batch_events == 0 {
        bail!("logging.max_batch_events is at least 1");
    }
    if settings.max_message_bytes < 64 {
        bail!("logging.max_message_bytes is at least 64");
    }
    let w = &settings.webhooks;
    if w.concurrency == 0 || w.concurrency > 1024 {
        bail!("logging.webhooks.concurrency is 1 to 1024");
    }
    if w.claim_batch == 0 || w.claim_batch > 10_000 {
        bail!("logging.webhooks.claim_batch is 1 to 10000");
    }
    if !(100..=60_000).contains(&w.timeout_ms) {
        bail!("logging.webhooks.timeout_ms is 100 to 60000");
    }
    if w.poll_interval_ms == 0 {
        bail!("logging.webhooks.poll_interval_ms is at least 1");
    }
    Ok(())
}

/// The Logging target.
pub struct LoggingService;

#[async_trait]
impl Target for LoggingService {
    fn info(&self) -> TargetInfo {
        TargetInfo::new::<Settings>(NAME, CONFIG_SECTION)
            .with_routes(ROUTE_PREFIX)
            .with_settings(settings::declared_settings)
            .with_migrations(MIGRATIONS)
    }

    async fn build(&self, ctx: TargetContext) -> anyhow::Result<BuiltTarget> {
        let live = ctx.live.section::<Settings>(CONFIG_SECTION, |settings| {
            check_settings(settings).map_err(|err| err.to_string())
        })?;
        let settings: Settings = live.get().as_ref().clone();
        let db = ctx.require_database(NAME)?;
        // Retention's deletes on SQLite then give the space back to the file system.
        db.reclaim_space_from_now_on().await.map_err(|err| {
            err.context("cannot turn on incremental vacuum for the logging database")
        })?;
        let sealer = Sealer::from_settings(
            settings.webhooks.encryption_key.as_ref(),
            ctx.config.profile(),
            &settings.webhooks.development_key_path,
            "logging.webhooks.encryption_key",
        )?;
        let webhooks = Webhooks::new(
            &settings.webhooks,
            sealer,
            WebhookMetrics::register(&ctx.metrics),
        )?;
        let logs = Arc::new(Logs {
            metrics: LogMetrics::register(&ctx.metrics),
            activity: ActivityLog::new(ctx.events.clone(), NAME),
            partitions: Partitions::default(),
            clock: ctx.clock.clone(),
            settings,
            live,
            db,
            webhooks,
            group_commit: Default::default(),
        });
        writer::spawn(&ctx, logs.clone());
        webhooks::worker::spawn(&ctx, logs.clone());
        ops::retention::spawn(&ctx, logs.clone());
        Ok(BuiltTarget::service(
            api::router(logs),
            "Logging",
            ROUTE_PREFIX,
            api::LogsApi::openapi(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use platform::config::DatabaseSettings;
    use platform::db::Database;
    use sqlx::Row;

    use super::*;

    /// Events stored before migration 2 held user ids, usernames, service names and client
    /// ids alike in `user_id`; the migration sorts each into its field.
    #[tokio::test]
    async fn the_actors_migration_sorts_what_user_id_held_into_the_new_fields() {
        let dir = tempfile::tempdir().unwrap();
        let settings = DatabaseSettings {
            path: dir.path().join("logging.db").display().to_string(),
            ..Default::default()
        };
        let db = Database::connect(NAME, &settings).await.unwrap();
        let first = Migrations {
            sqlite: &SQLITE_STEPS[..1],
            postgres: &POSTGRES_STEPS[..1],
        };
        db.migrate(&first).await.unwrap();
        for (id, service, user_id, action) in [
            ("a", "bot-manager", "bot-manager", "post.published"),
            ("b", "logging", "client:gateway", "logs.deleted"),
            ("c", "authentication", "operator:root", "password.reset"),
            ("d", "configuration", "admin", "settings.updated"),
            ("e", "authentication", "u-1", "login.succeeded"),
        ] {
            sqlx::query(
                "INSERT INTO events (id, ts, category, service, level, user_id, action, message, data) \
                 VALUES ($1, 1, 'user_activity', $2, 'info', $3, $4, 'm', '{}')",
            )
            .bind(id)
            .bind(service)
            .bind(user_id)
            .bind(action)
            .execute(db.pool())
            .await
            .unwrap();
        }
        db.migrate(&MIGRATIONS).await.unwrap();
        let rows =
            sqlx::query("SELECT id, actor_id, actor_name, actor_service FROM events ORDER BY id")
                .fetch_all(db.pool())
                .await
                .unwrap();
        let sorted: Vec<[Option<String>; 3]> = rows
            .iter()
            .map(|row| ["actor_id", "actor_name", "actor_service"].map(|c| row.try_get(c).unwrap()))
            .collect();
        let some = |s: &str| Some(s.to_string());
        assert_eq!(
            sorted,
            vec![
                [None, None, some("bot-manager")],
                [None, None, some("gateway")],
                [None, some("operator:root"), None],
                [None, some("admin"), None],
                [some("u-1"), None, None],
            ]
        );
    }
}
