//! Storage: one API over SQLite (the embedded default) and PostgreSQL (a cluster).
//!
//! Each service owns its data: its own SQLite file, or its own PostgreSQL schema (every
//! pooled connection has `search_path` set to it, so the same SQL runs on both). Migrations
//! are embedded in the service's crate, one list per backend, and run at start and by
//! `vivesphere migrate`. SQL shared by both backends uses `$1`-style parameters, which
//! SQLite accepts too.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::{Migrate, Migration, MigrationType, Migrator};
use sqlx::{AnyPool, AssertSqlSafe, Executor, SqlSafeStr, SqlStr};

use crate::config::DatabaseSettings;

/// Which engine a [`Database`] talks to, for the rare SQL that must differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One migration step, embedded with `include_str!`.
#[derive(Debug, Clone, Copy)]
pub struct MigrationStep {
    pub version: i64,
    pub description: &'static str,
    pub sql: &'static str,
}

/// A service's migrations for both backends (their SQL differs in types).
#[derive(Debug, Clone, Copy, Default)]
pub struct Migrations {
    pub sqlite: &'static [MigrationStep],
    pub postgres: &'static [MigrationStep],
}

impl Migrations {
    pub fn is_empty(&self) -> bool {
        self.sqlite.is_empty() && self.postgres.is_empty()
    }

    fn for_backend(&self, backend: Backend) -> &'static [MigrationStep] {
        match backend {
            Backend::Sqlite => self.sqlite,
            Backend::Postgres => self.postgres,
        }
    }
}

/// A pool of connections to one service's own storage.
#[derive(Debug, Clone)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
    /// The SQLite file, or the PostgreSQL schema, for messages.
    location: String,
    /// The turn to write a SQLite file (see [`Database::write_turn`]).
    write_turn: Arc<tokio::sync::Mutex<()>>,
}

/// How long a migration statement on PostgreSQL may wait for a table lock before the
/// migration fails (and is retried by the next run) rather than stalling live traffic.
pub const MIGRATION_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// sqlx's record of applied migrations, in each service's own schema or file.
const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

/// The advisory lock key that serialises schema creation across processes.
const SCHEMA_CREATION_LOCK: i64 = 0x7669_7665_7370;

/// A PostgreSQL identifier we create ourselves; kept to a safe alphabet because it is
/// spliced into `CREATE SCHEMA` and `SET search_path`.
fn validate_schema(schema: &str) -> anyhow::Result<()> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        bail!("database schema {schema:?} must be lowercase letters, digits and _ (at most 63)");
    }
    Ok(())
}

/// A duration in seconds from a setting where 0 means none.
fn seconds(setting: u64) -> Option<Duration> {
    (setting > 0).then(|| Duration::from_secs(setting))
}

impl Database {
    /// Connects `service` to its storage as `settings` say: PostgreSQL when `url` is set,
    /// otherwise the SQLite file at `path` (`{service}` replaced), created if missing.
    pub async fn connect(service: &str, settings: &DatabaseSettings) -> anyhow::Result<Self> {
        install_default_drivers();
        let connect_timeout = Duration::from_secs(settings.connect_timeout.max(1));
        let options = AnyPoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .idle_timeout(seconds(settings.idle_timeout))
            .max_lifetime(seconds(settings.max_lifetime))
            .acquire_timeout(connect_timeout);
        match &settings.url {
            Some(url) => {
                let schema = settings.schema_for(service);
                validate_schema(&schema)?;
                // Requests wait briefly for a connection: a server that is gone is a quick
                // 503, not one after the whole connect timeout.
                let options = options.acquire_timeout(Duration::from_millis(
                    settings
                        .acquire_timeout_ms
                        .clamp(100, connect_timeout.as_millis() as u64),
                ));
                Self::connect_postgres(url.expose(), &schema, options, connect_timeout).await
            }
            None => {
                let path = settings.sqlite_path(service);
                Self::connect_sqlite(Path::new(&path), options, settings).await
            }
        }
    }

    async fn connect_postgres(
        url: &str,
        schema: &str,
        options: AnyPoolOptions,
        connect_timeout: Duration,
    ) -> anyhow::Result<Self> {
        if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            bail!("database.url must be a postgres:// URL");
        }
        // Create the schema once over a plain connection, then pin every pooled connection
        // to it, so that the service's unqualified table names land in its own schema.
        let setup = AnyPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(connect_timeout)
            .connect(url)
            .await
            .context("cannot connect to PostgreSQL (database.url)")?;
        // Replicas starting together would race inside CREATE SCHEMA IF NOT EXISTS (one of
        // them fails on the catalog's unique index); a transaction-scoped advisory lock lets
        // one create it while the others wait and then find it.
        let mut create = setup.begin().await.context("cannot begin on PostgreSQL")?;
        create
            .execute(AssertSqlSafe(format!(
                "SELECT pg_advisory_xact_lock({SCHEMA_CREATION_LOCK})"
            )))
            .await
            .context("cannot take the schema-creation lock")?;
        create
            .execute(AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
            )))
            .await
            .with_context(|| format!("cannot create schema {schema}"))?;
        create
            .commit()
            .await
            .with_context(|| format!("cannot create schema {schema}"))?;
        setup.close().await;
        let search_path: SqlStr =
            AssertSqlSafe(format!("SET search_path TO \"{schema}\"")).into_sql_str();
        let pool = options
            .after_connect(move |conn, _| {
                let sql = search_path.clone();
                Box::pin(async move {
                    conn.execute(sql).await?;
                    Ok(())
                })
            })
            .connect(url)
            .await
            .context("cannot connect to PostgreSQL (database.url)")?;
        Ok(Self {
            pool,
            backend: Backend::Postgres,
            location: format!("postgresql schema {schema}"),
            write_turn: Arc::default(),
        })
    }

    async fn connect_sqlite(
        path: &Path,
        options: AnyPoolOptions,
        settings: &DatabaseSettings,
    ) -> anyhow::Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create directory {}", parent.display()))?;
        }
        let url = format!("sqlite://{}?mode=rwc", path.display());
        // WAL lets readers run beside the writer; FULL sync makes a commit survive a crash
        // of the machine, not just of the process; the busy timeout turns write contention
        // into waiting instead of errors; the cache and the map bound each connection's
        // private memory (see `DatabaseSettings::sqlite_cache_kib`).
        let pragmas: SqlStr = AssertSqlSafe(format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; \
             PRAGMA cache_size = -{}; PRAGMA mmap_size = {};",
            settings.sqlite_cache_kib.max(64),
            u64::from(settings.sqlite_mmap_mib) * 1024 * 1024
        ))
        .into_sql_str();
        let pool = options
            .after_connect(move |conn, _| {
                let pragmas = pragmas.clone();
                Box::pin(async move {
                    conn.execute(pragmas).await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .with_context(|| format!("cannot open SQLite database {}", path.display()))?;
        Ok(Self {
            pool,
            backend: Backend::Sqlite,
            location: format!("sqlite file {}", path.display()),
            write_turn: Arc::default(),
        })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// On SQLite, the turn to write: held from before a write transaction begins until it
    /// ends, by every writer of a busy file. SQLite has one writer per file; without the
    /// turn, a writer that finds the file locked sleeps in SQLite's busy handler (1, 2, 5…
    /// up to 100 ms between tries) while others overtake it. The turn is handed out in
    /// order of arrival, so writers that keep each transaction short (a long batch written
    /// in parts) interleave fairly. On PostgreSQL, which has many writers, there is no turn
    /// (`None`).
    pub async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.write_turn.lock().await),
            Backend::Postgres => None,
        }
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    /// Applies the migrations not yet applied; refuses if an applied one was edited.
    ///
    /// Versions applied by a newer release are left alone: during a rolling update the
    /// previous release keeps running (and restarting) against the new schema, which every
    /// migration keeps compatible by only expanding it (docs/delivery.md). On PostgreSQL a
    /// statement that waits longer than [`MIGRATION_LOCK_TIMEOUT`] for a lock fails the
    /// migration instead of queueing every live query of the table behind it.
    pub async fn migrate(&self, migrations: &Migrations) -> anyhow::Result<()> {
        let mut migrator = Migrator::with_migrations(self.steps(migrations));
        migrator.set_ignore_missing(true);
        let mut conn = self.pool.acquire().await?;
        if self.backend == Backend::Postgres {
            conn.execute(AssertSqlSafe(format!(
                "SET lock_timeout = '{}ms'",
                MIGRATION_LOCK_TIMEOUT.as_millis()
            )))
            .await?;
        }
        let outcome = migrator.run(&mut *conn).await;
        if self.backend == Backend::Postgres {
            if outcome.is_ok() {
                conn.execute("RESET lock_timeout").await?;
            } else {
                // Its session may still hold the migrator's advisory lock.
                conn.close_on_drop();
            }
        }
        outcome.with_context(|| format!("migrations failed on {}", self.location))
    }

    /// Checks that every migration this build knows is applied, unedited, without applying
    /// any: `database.migrations = "verify"`, where a release's migration Job applies them
    /// before its pods start (`vivesphere migrate`). Versions from a newer release are fine.
    pub async fn verify_migrated(&self, migrations: &Migrations) -> anyhow::Result<()> {
        let mut conn = self.pool.acquire().await?;
        // No table yet (an error here): nothing is applied.
        let applied = conn
            .list_applied_migrations(MIGRATIONS_TABLE)
            .await
            .unwrap_or_default();
        let mut missing = Vec::new();
        for step in self.steps(migrations) {
            match applied.iter().find(|a| a.version == step.version) {
                Some(found) if found.checksum == step.checksum => {}
                Some(_) => bail!(
                    "migration {} on {} differs from this build's (edited after it was applied)",
                    step.version,
                    self.location
                ),
                None => missing.push(step.version.to_string()),
            }
        }
        if !missing.is_empty() {
            bail!(
                "{} lacks migration(s) {} of this build; database.migrations is \"verify\", so \
                 they are applied by `vivesphere migrate` (the release's migration Job) first",
                self.location,
                missing.join(", ")
            );
        }
        Ok(())
    }

    fn steps(&self, migrations: &Migrations) -> Vec<Migration> {
        migrations
            .for_backend(self.backend)
            .iter()
            .map(|step| {
                Migration::new(
                    step.version,
                    Cow::Borrowed(step.description),
                    MigrationType::Simple,
                    SqlStr::from_static(step.sql),
                    false,
                )
            })
            .collect()
    }

    /// On SQLite: makes deleting shrink the file from now on — incremental auto-vacuum, set
    /// once (a file made before it is rewritten by one VACUUM, on one connection, as SQLite
    /// requires); `PRAGMA incremental_vacuum` after deletes then hands pages back. Nothing
    /// on PostgreSQL.
    pub async fn reclaim_space_from_now_on(&self) -> anyhow::Result<()> {
        if self.backend != Backend::Sqlite {
            return Ok(());
        }
        let mut conn = self.pool.acquire().await?;
        let mode: i64 = sqlx::Row::try_get(
            &sqlx::query("PRAGMA auto_vacuum")
                .fetch_one(&mut *conn)
                .await?,
            0,
        )?;
        const INCREMENTAL: i64 = 2;
        if mode != INCREMENTAL {
            // Once per file: an upgraded installation's large file takes a while here.
            tracing::info!(database = %self.location, "rewriting the file once so that deletes give space back (incremental vacuum)");
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL").await?;
            conn.execute("VACUUM").await?;
        }
        Ok(())
    }

    /// A round trip to the database, for readiness.
    pub async fn ping(&self) -> Result<(), String> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|err| format!("database unreachable: {err}"))
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_restricted_to_a_safe_alphabet() {
        assert!(validate_schema("bot_manager").is_ok());
        assert!(validate_schema("t_0193abc").is_ok());
        assert!(validate_schema("Bad").is_err());
        assert!(validate_schema("x\"; DROP").is_err());
        assert!(validate_schema("").is_err());
        assert!(validate_schema("1abc").is_err());
    }
}

/// Whether an error comes from losing the database rather than from the request: the
/// connection broke (reset, closed, TLS), the pool found none in time, or the server said it
/// is going away or cannot take connections (SQLSTATE class 08, 57P01–57P03, 53300). Such a
/// failure is the service's 503, not a 500: the request may simply be sent again.
pub fn is_connection_loss(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|cause| match cause.downcast_ref::<sqlx::Error>() {
            Some(
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed,
            ) => true,
            Some(sqlx::Error::Database(db)) => db.code().is_some_and(|code| {
                code.starts_with("08")
                    || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
            }),
            _ => cause.downcast_ref::<std::io::Error>().is_some_and(|io| {
                matches!(
                    io.kind(),
                    std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::ConnectionRefused
                        | std::io::ErrorKind::BrokenPipe
                        | std::io::ErrorKind::UnexpectedEof
                )
            }),
        })
}

/// Whether an error says the storage under the database is full: SQLite's SQLITE_FULL
/// ("database or disk is full"), PostgreSQL's `disk_full` (SQLSTATE 53100), or the file
/// system's ENOSPC. Such a write is the service's 503: nothing was written, and it goes
/// through once space returns.
pub fn is_storage_full(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        if let Some(sqlx::Error::Database(db)) = cause.downcast_ref::<sqlx::Error>() {
            return db.code().as_deref() == Some("53100")
                || db.code().as_deref() == Some("13")
                || db.message().contains("database or disk is full")
                || db.message().contains("No space left on device");
        }
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::StorageFull)
            || cause.to_string().contains("No space left on device")
    })
}

/// Whether a database error is a unique-constraint violation (a duplicate key), on either
/// backend (the `Any` driver does not always carry the kind through).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                || db.message().contains("UNIQUE constraint failed")
                || db.code().as_deref() == Some("23505")
        }
        _ => false,
    }
}

/// A statement whose text changes with the number of rows or ids it carries (a multi-row
/// `INSERT … VALUES`, an `IN (…)` list): prepared for this one run and not kept in the
/// connection's statement cache. Kept, every variant would stay prepared on every pooled
/// connection until a hundred others pushed it out — a 200-row insert's program is hundreds
/// of KiB, and under sustained load the one-process shape's memory grew by hundreds of MiB.
pub fn one_off_query(
    sql: String,
) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(AssertSqlSafe(sql)).persistent(false)
}

/// `($1, $2), ($3, $4)` for a multi-row `INSERT … VALUES` of `rows` rows of `columns`
/// values each, numbered as both backends accept.
pub fn values_placeholders(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| {
            let params: Vec<String> = (1..=columns)
                .map(|col| format!("${}", row * columns + col))
                .collect();
            format!("({})", params.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod placeholder_tests {
    #[test]
    fn placeholders_number_every_value_once() {
        assert_eq!(
            super::values_placeholders(2, 3),
            "($1, $2, $3), ($4, $5, $6)"
        );
        assert_eq!(super::values_placeholders(1, 1), "($1)");
    }
}
