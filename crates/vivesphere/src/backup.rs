//! `vivesphere backup --out DIR` and `vivesphere restore --from DIR`: every service's
//! database (and the embedded queue) as one directory with a manifest of versions, migration
//! levels, sizes and SHA-256 checksums.
//!
//! On SQLite each file is copied with `VACUUM INTO`, a consistent snapshot taken while the
//! system keeps running (each database is consistent in itself; the services never join
//! across databases). On PostgreSQL (`database.url`, or `--database-url`) each service's
//! schema is dumped with `pg_dump --format=custom`; the queue there is NATS, which is not
//! backed up: jobs are re-driven from the Bot Manager's outbox and the log events a
//! consumer had not stored yet are the only loss.
//!
//! Never in a backup: the KEKs, the Authentication encryption key, the webhook signing
//! secrets' key and the service clients' secrets. They live outside the databases and are
//! backed up apart (docs/operations.md); the manifest names them.
//!
//! A restore goes into an empty data directory (or empty schemas) only, after every checksum
//! matches and no database is at a migration level newer than this binary knows.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, bail};
use platform::config::QueueKind;
use serde::{Deserialize, Serialize};
use sqlx::{ConnectOptions, Connection, Row};

use crate::app::{AppOptions, TargetConfig, load_config};

pub const MANIFEST: &str = "manifest.json";
const FORMAT: u32 = 1;

/// What a backup holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub format: u32,
    pub vivesphere_version: String,
    /// RFC 3339, from the platform clock.
    pub created_at: String,
    /// `sqlite` or `postgres`.
    pub backend: String,
    pub files: Vec<BackedUp>,
    /// What is not in it and must be backed up apart.
    pub kept_apart: Vec<String>,
}

/// One file of a backup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BackedUp {
    /// The service's config section (its SQLite file name, its PostgreSQL schema), or
    /// `queue` for the embedded queue.
    pub service: String,
    pub file: String,
    pub bytes: u64,
    pub sha256: String,
    /// The highest migration applied.
    pub migration_level: i64,
}

const QUEUE: &str = "queue";

/// The key material a backup never holds, by the settings that locate it.
fn kept_apart() -> Vec<String> {
    [
        "secure_bot_data.kek_dir / secure_bot_data.keks: the key-encryption keys (without them \
         the restored Secure Bot Data stays sealed and names the versions it needs)",
        "authentication.encryption_key (development: authentication.development_key_path): \
         seals TOTP secrets and signing keys",
        "logging.webhooks.encryption_key (development: logging.webhooks.development_key_path): \
         seals the webhook signing secrets",
        "auth.service_secrets_dir: the service clients' secrets",
    ]
    .map(String::from)
    .to_vec()
}

/// Where each service keeps its data, as the configuration says.
struct Layout {
    services: Vec<TargetConfig>,
    /// PostgreSQL URL (all services share one database, a schema each), or SQLite.
    postgres_url: Option<String>,
    /// The embedded queue's file, when the process runs one.
    queue_file: Option<PathBuf>,
}

impl Layout {
    fn of(options: &AppOptions, database_url: Option<&str>) -> anyhow::Result<Self> {
        let mut loaded = load_config(options)?;
        let postgres_url = database_url.map(str::to_string).or_else(|| {
            loaded
                .process_platform
                .database
                .url
                .as_ref()
                .map(|u| u.expose().to_string())
        });
        let queue = &loaded.process_platform.queue;
        let queue_file = (postgres_url.is_none() && queue.kind == QueueKind::Embedded)
            .then(|| PathBuf::from(&queue.path));
        loaded.targets.retain(|t| t.info.uses_database);
        Ok(Self {
            services: loaded.targets,
            postgres_url,
            queue_file,
        })
    }

    /// Where the service keeps its data, as `Database::connect` finds it.
    fn sqlite_file(&self, service: &TargetConfig) -> PathBuf {
        PathBuf::from(
            service
                .platform
                .database
                .sqlite_path(service.info.config_section),
        )
    }

    fn schema(service: &TargetConfig) -> String {
        service
            .platform
            .database
            .schema_for(service.info.config_section)
    }

    /// The newest migration this binary knows for `service`.
    fn known_level(&self, service: &str) -> Option<i64> {
        if service == QUEUE {
            let steps = platform::queue::embedded::MIGRATIONS.sqlite;
            return Some(steps.iter().map(|s| s.version).max().unwrap_or(0));
        }
        let target = self
            .services
            .iter()
            .find(|t| t.info.config_section == service)?;
        let steps = match self.postgres_url {
            Some(_) => target.info.migrations.postgres,
            None => target.info.migrations.sqlite,
        };
        Some(steps.iter().map(|s| s.version).max().unwrap_or(0))
    }
}

/// Takes a backup into `out` (created; it must not hold anything yet).
pub async fn backup(
    options: &AppOptions,
    out: &Path,
    database_url: Option<&str>,
) -> anyhow::Result<Manifest> {
    let layout = Layout::of(options, database_url)?;
    ensure_empty(out)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut files = Vec::new();
    match &layout.postgres_url {
        Some(url) => {
            for service in &layout.services {
                files.push(dump_schema(url, &Layout::schema(service), service, out).await?);
            }
        }
        None => {
            for service in &layout.services {
                let section = service.info.config_section;
                let source = layout.sqlite_file(service);
                if let Some(file) = snapshot_sqlite(&source, section, out).await? {
                    files.push(file);
                }
            }
            if let Some(queue) = &layout.queue_file
                && let Some(file) = snapshot_sqlite(queue, QUEUE, out).await?
            {
                files.push(file);
            }
        }
    }
    if files.is_empty() {
        bail!("no database found to back up: is this the configuration of a system that ran?");
    }
    let manifest = Manifest {
        format: FORMAT,
        vivesphere_version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: platform::time_fmt::rfc3339_from_millis(options.clock.now_millis()),
        backend: backend_name(&layout).to_string(),
        files,
        kept_apart: kept_apart(),
    };
    let written = out.join(format!("{MANIFEST}.partial"));
    std::fs::write(&written, serde_json::to_vec_pretty(&manifest)?)?;
    std::fs::rename(&written, out.join(MANIFEST))?;
    Ok(manifest)
}

fn backend_name(layout: &Layout) -> &'static str {
    match layout.postgres_url {
        Some(_) => "postgres",
        None => "sqlite",
    }
}

/// Refuses a directory that holds anything.
fn ensure_empty(dir: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} is not empty: a backup goes into a new directory, a restore into an empty data directory (move it aside first)",
                    dir.display()
                );
            }
            Ok(())
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", dir.display())),
    }
}

async fn sqlite_connection(path: &Path) -> anyhow::Result<sqlx::SqliteConnection> {
    sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .busy_timeout(std::time::Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| format!("cannot open {}", path.display()))
}

/// `VACUUM INTO` a file of `out`: a consistent copy while writers go on. `None` when the
/// service has no database yet (it never started).
async fn snapshot_sqlite(
    source: &Path,
    service: &str,
    out: &Path,
) -> anyhow::Result<Option<BackedUp>> {
    if !source.exists() {
        return Ok(None);
    }
    let file = format!("{service}.db");
    let target = out.join(&file);
    let mut conn = sqlite_connection(source).await?;
    // A path is not a bindable name here; quoted as an SQL string literal.
    let quoted = target.display().to_string().replace('\'', "''");
    sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM INTO '{quoted}'")))
        .execute(&mut conn)
        .await
        .with_context(|| format!("snapshot of {}", source.display()))?;
    conn.close().await?;
    let level = sqlite_migration_level(&target).await?;
    Ok(Some(describe(service, &file, &target, level)?))
}

async fn sqlite_migration_level(path: &Path) -> anyhow::Result<i64> {
    let mut conn = sqlite_connection(path).await?;
    let has_table = sqlx::query(
        "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_one(&mut conn)
    .await?
    .try_get::<i64, _>("n")?
        > 0;
    let level = if has_table {
        sqlx::query("SELECT COALESCE(MAX(version), 0) AS level FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut conn)
            .await?
            .try_get("level")?
    } else {
        0
    };
    conn.close().await?;
    Ok(level)
}

fn describe(service: &str, file: &str, path: &Path, level: i64) -> anyhow::Result<BackedUp> {
    let (bytes, sha256) = checksum(path)?;
    Ok(BackedUp {
        service: service.to_string(),
        file: file.to_string(),
        bytes,
        sha256,
        migration_level: level,
    })
}

/// Size and SHA-256 (hex) of a file, read in blocks.
fn checksum(path: &Path) -> anyhow::Result<(u64, String)> {
    use std::io::Read;
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buffer = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        digest.update(&buffer[..n]);
        bytes += n as u64;
    }
    let hex = digest
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((bytes, hex))
}

/// A PostgreSQL URL split for the client tools: the URL without its password, and the
/// password (handed over in `PGPASSWORD`, never on a command line others can read).
fn pg_connection(url: &str) -> anyhow::Result<(String, Option<String>)> {
    let mut parsed = reqwest::Url::parse(url).context("database URL")?;
    let password = parsed.password().map(str::to_string);
    if password.is_some() {
        parsed
            .set_password(None)
            .map_err(|_| anyhow::anyhow!("database URL: cannot take the password out"))?;
    }
    Ok((parsed.to_string(), password))
}

fn pg_tool(tool: &str, url: &str) -> anyhow::Result<tokio::process::Command> {
    let (url, password) = pg_connection(url)?;
    let mut command = tokio::process::Command::new(tool);
    command
        .arg(format!("--dbname={url}"))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    Ok(command)
}

async fn run_tool(mut command: tokio::process::Command, what: &str) -> anyhow::Result<()> {
    let output = command.output().await.with_context(|| {
        format!("{what}: cannot run it (install the PostgreSQL client, Debian's postgresql-client)")
    })?;
    if !output.status.success() {
        bail!(
            "{what} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

async fn pg_pool(url: &str) -> anyhow::Result<sqlx::PgPool> {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .context("cannot connect to PostgreSQL")
}

/// The schema's highest migration; `None` when the schema has no migrations table.
async fn pg_migration_level(pool: &sqlx::PgPool, schema: &str) -> anyhow::Result<Option<i64>> {
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.tables \
         WHERE table_schema = $1 AND table_name = '_sqlx_migrations')",
    )
    .bind(schema)
    .fetch_one(pool)
    .await?;
    if !exists {
        return Ok(None);
    }
    let sql = format!(
        "SELECT COALESCE(MAX(version), 0) FROM \"{schema}\"._sqlx_migrations WHERE success"
    );
    let level: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(pool)
        .await?;
    Ok(Some(level))
}

async fn dump_schema(
    url: &str,
    schema: &str,
    service: &TargetConfig,
    out: &Path,
) -> anyhow::Result<BackedUp> {
    let pool = pg_pool(url).await?;
    let level = pg_migration_level(&pool, schema).await?;
    pool.close().await;
    let Some(level) = level else {
        bail!("schema {schema} holds no service's tables: is this the right database?");
    };
    let section = service.info.config_section;
    let file = format!("{section}.pgdump");
    let target = out.join(&file);
    let mut command = pg_tool("pg_dump", url)?;
    command
        .arg("--format=custom")
        .arg(format!("--schema={schema}"))
        .arg("--no-owner")
        .arg("--no-privileges")
        .arg(format!("--file={}", target.display()));
    run_tool(command, &format!("pg_dump of schema {schema}")).await?;
    describe(section, &file, &target, level)
}

/// Restores a backup: checks everything first, writes only into empty places.
pub async fn restore(
    options: &AppOptions,
    from: &Path,
    database_url: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let layout = Layout::of(options, database_url)?;
    let manifest = read_manifest(from)?;
    check(&layout, &manifest, from)?;
    let mut report = match &layout.postgres_url {
        Some(url) => restore_postgres(&layout, &manifest, from, url).await?,
        None => restore_sqlite(&layout, &manifest, from)?,
    };
    if manifest.files.iter().any(|f| f.service == "bot_manager") {
        report.extend(doubt_due_sends(&layout, options.clock.now_millis()).await?);
    }
    Ok(report)
}

/// Posts due by now may have gone out between the backup and the loss: the Bot Manager
/// looks for each on X before sending it (and marks it missed past its grace if X does not
/// have it), so none is published twice.
async fn doubt_due_sends(layout: &Layout, now: i64) -> anyhow::Result<Option<String>> {
    let Some(target) = layout
        .services
        .iter()
        .find(|t| t.info.name == bot_manager::NAME)
    else {
        return Ok(None);
    };
    let mut settings = target.platform.database.clone();
    if let Some(url) = &layout.postgres_url {
        settings.url = Some(platform::config::Secret::new(url.clone()));
    }
    let db = platform::db::Database::connect(target.info.config_section, &settings).await?;
    let doubted = bot_manager::doubt_due_sends(&db, now).await;
    db.close().await;
    Ok(Some(format!(
        "{}: {} post(s) due by now will be looked for on X before they are sent",
        target.info.config_section, doubted?
    )))
}

fn read_manifest(from: &Path) -> anyhow::Result<Manifest> {
    let path = from.join(MANIFEST);
    let text = std::fs::read(&path).with_context(|| {
        format!(
            "{} has no {MANIFEST}: not a backup, or one that did not finish",
            from.display()
        )
    })?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a backup manifest", path.display()))?;
    if manifest.format != FORMAT {
        bail!(
            "backup format {} is not one this version reads ({FORMAT})",
            manifest.format
        );
    }
    Ok(manifest)
}

/// Every file is there with its checksum, the backend matches, and no database is newer
/// than this binary.
fn check(layout: &Layout, manifest: &Manifest, from: &Path) -> anyhow::Result<()> {
    if manifest.backend != backend_name(layout) {
        bail!(
            "the backup is of a {} system; this configuration runs {}",
            manifest.backend,
            backend_name(layout)
        );
    }
    for file in &manifest.files {
        let Some(known) = layout.known_level(&file.service) else {
            bail!("{}: no such service in this configuration", file.service);
        };
        if file.migration_level > known {
            bail!(
                "{} is at migration {}, newer than this binary knows ({known}): restore with vivesphere {} or later",
                file.service,
                file.migration_level,
                manifest.vivesphere_version
            );
        }
        let (bytes, sha256) = checksum(&from.join(&file.file))?;
        if bytes != file.bytes || sha256 != file.sha256 {
            bail!(
                "{} does not match the manifest (size or SHA-256 differs): the backup is damaged",
                file.file
            );
        }
    }
    Ok(())
}

fn restore_sqlite(
    layout: &Layout,
    manifest: &Manifest,
    from: &Path,
) -> anyhow::Result<Vec<String>> {
    let destination = |service: &str| -> Option<PathBuf> {
        if service == QUEUE {
            return layout.queue_file.clone();
        }
        layout
            .services
            .iter()
            .find(|t| t.info.config_section == service)
            .map(|t| layout.sqlite_file(t))
    };
    let mut plan = Vec::new();
    for file in &manifest.files {
        let target = destination(&file.service)
            .with_context(|| format!("{}: nowhere to restore it", file.service))?;
        plan.push((file, target));
    }
    let mut directories: Vec<&Path> = plan.iter().filter_map(|(_, t)| t.parent()).collect();
    directories.sort();
    directories.dedup();
    for dir in &directories {
        ensure_empty(dir)?;
    }
    let mut report = Vec::new();
    for (file, target) in plan {
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let partial = target.with_extension("restoring");
        std::fs::copy(from.join(&file.file), &partial)?;
        std::fs::File::open(&partial)?.sync_all()?;
        std::fs::rename(&partial, &target)?;
        report.push(format!(
            "{}: restored {} (migration {}) to {}",
            file.service,
            file.file,
            file.migration_level,
            target.display()
        ));
    }
    Ok(report)
}

async fn restore_postgres(
    layout: &Layout,
    manifest: &Manifest,
    from: &Path,
    url: &str,
) -> anyhow::Result<Vec<String>> {
    let pool = pg_pool(url).await?;
    let mut plan = Vec::new();
    for file in &manifest.files {
        let target = layout
            .services
            .iter()
            .find(|t| t.info.config_section == file.service)
            .with_context(|| format!("{}: nowhere to restore it", file.service))?;
        let schema = Layout::schema(target);
        let tables: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = $1",
        )
        .bind(&schema)
        .fetch_one(&pool)
        .await?;
        if tables > 0 {
            bail!(
                "schema {schema} is not empty: a restore goes into empty schemas (drop or rename it first)"
            );
        }
        plan.push((file, schema));
    }
    let mut report = Vec::new();
    for (file, schema) in plan {
        // An empty schema left by a service that started and stopped: the dump creates it.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS \"{schema}\""
        )))
        .execute(&pool)
        .await?;
        let mut command = pg_tool("pg_restore", url)?;
        command
            .arg("--no-owner")
            .arg("--no-privileges")
            .arg("--exit-on-error")
            .arg(from.join(&file.file));
        run_tool(command, &format!("pg_restore of schema {schema}")).await?;
        report.push(format!(
            "{}: restored {} (migration {}) into schema {schema}",
            file.service, file.file, file.migration_level
        ));
    }
    pool.close().await;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_never_reaches_the_command_line() {
        let (url, password) =
            pg_connection("postgres://vive:s3cret@db.example:5432/vive?sslmode=require").unwrap();
        assert_eq!(url, "postgres://vive@db.example:5432/vive?sslmode=require");
        assert_eq!(password.as_deref(), Some("s3cret"));
        let (url, password) = pg_connection("postgres://postgres@127.0.0.1/postgres").unwrap();
        assert_eq!(url, "postgres://postgres@127.0.0.1/postgres");
        assert_eq!(password, None);
    }

    #[test]
    fn checksums_are_sha256_of_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(
            checksum(&path).unwrap(),
            (
                3,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".to_string()
            )
        );
    }
}
