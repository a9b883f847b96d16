//! The sections of the configuration that the platform itself owns: `server`, `database`,
//! `queue` and `telemetry`. Service crates own one section each, named after the service.
//! Durations are whole seconds, as everywhere in the API.

use serde::{Deserialize, Serialize};

use super::{ConfigError, LayeredConfig, Secret};

/// The platform's sections, read from one [`LayeredConfig`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PlatformSettings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub queue: QueueSettings,
    pub telemetry: TelemetrySettings,
    pub auth: AuthSettings,
    pub config_client: super::ConfigClientSettings,
}

impl PlatformSettings {
    /// The names of the top-level sections the platform owns.
    pub const SECTIONS: [&'static str; 6] = [
        "server",
        "database",
        "queue",
        "telemetry",
        "auth",
        "config_client",
    ];

    pub fn from_config(config: &LayeredConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            server: config.section("server")?,
            database: config.section("database")?,
            queue: config.section("queue")?,
            telemetry: config.section("telemetry")?,
            auth: config.section("auth")?,
            config_client: config.section("config_client")?,
        })
    }

    /// The platform's settings that running processes apply live.
    pub fn declared_settings() -> Vec<super::SettingSpec> {
        vec![super::SettingSpec::live(
            "telemetry.log_level",
            super::SettingKind::LogFilter,
            "log filter such as `info` or `info,sqlx=warn` (RUST_LOG beats it)",
        )]
    }

    /// The platform's secret settings (`database.url`, …): its fields typed `Secret`.
    pub fn secret_keys() -> std::collections::BTreeSet<String> {
        super::secret_keys_of::<Self>("")
    }

    /// The defaults layer for the platform's sections.
    pub fn defaults() -> serde_json::Value {
        serde_json::to_value(Self::default()).expect("platform defaults serialize")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerSettings {
    /// Address to bind. Unset means 127.0.0.1:8000 for the all-in-one process and
    /// 0.0.0.0:8000 for a single target (as in Kubernetes); `--listen` beats both.
    pub listen: Option<String>,
    /// Seconds to drain in-flight requests and queue work after SIGTERM before exiting.
    pub shutdown_timeout: u64,
    /// Largest accepted request body in bytes; larger bodies get 413.
    pub body_limit: usize,
    /// Seconds a request may take before it is answered 503 `TIMEOUT`.
    pub request_timeout: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: None,
            shutdown_timeout: 30,
            body_limit: 1024 * 1024,
            request_timeout: 30,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// SQLite file used when `url` is unset; `{service}` becomes the service's name.
    pub path: String,
    /// PostgreSQL URL; when set, the service uses PostgreSQL instead of SQLite.
    pub url: Option<Secret>,
    /// PostgreSQL schema the service owns; unset means the service's config section name.
    pub schema: Option<String>,
    pub max_connections: u32,
    /// Seconds to wait for a connection before giving up.
    pub connect_timeout: u64,
    /// On PostgreSQL, milliseconds a request waits for a pooled connection before it is
    /// answered 503 NOT_READY with Retry-After: a lost or failing-over server is told to
    /// callers at once, rather than after the whole connect timeout (startup still waits
    /// `connect_timeout`).
    pub acquire_timeout_ms: u64,
    /// Seconds a pooled connection may sit unused before it is closed (0: kept until the
    /// pool closes). A burst opens up to `max_connections`, each with its own page and
    /// statement caches; closing the idle ones is how that memory leaves after the load
    /// (and PostgreSQL's backends with it). Closed within twice this after the last use.
    pub idle_timeout: u64,
    /// Seconds a pooled connection lives before it is closed once it is next free (0: for
    /// ever). The pool hands out its idle connections in turn, so a background task polling
    /// every second keeps every connection of a burst "used" and `idle_timeout` never
    /// fires; a lifetime lets the pool shrink back to what the load after needs.
    pub max_lifetime: u64,
    /// On SQLite, KiB of page cache each pooled connection may keep (SQLite's default is
    /// 2000). The cache is private memory that is never given back, once per pooled
    /// connection of every service, while the operating system's file cache (and
    /// `sqlite_mmap_mib`) holds the same pages shared (README: measured).
    pub sqlite_cache_kib: u32,
    /// On SQLite, MiB of each file read through a memory map instead of copied into the
    /// page cache (0: none).
    pub sqlite_mmap_mib: u32,
    /// What a server does with its migrations at start: `apply` them (one process, local
    /// clusters), or `verify` that they are applied and refuse to start otherwise (a release's
    /// migration Job applies them first, once, before any pod of the release starts).
    /// `vivesphere migrate` always applies.
    pub migrations: MigrationMode,
}

/// See [`DatabaseSettings::migrations`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MigrationMode {
    #[default]
    Apply,
    Verify,
}

impl DatabaseSettings {
    /// The SQLite file `service` keeps its data in.
    pub fn sqlite_path(&self, service: &str) -> String {
        self.path.replace("{service}", service)
    }

    /// The PostgreSQL schema `service` owns: `schema`, else its name with `_` for `-`.
    pub fn schema_for(&self, service: &str) -> String {
        self.schema
            .clone()
            .unwrap_or_else(|| service.replace('-', "_"))
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            path: "./data/{service}.db".into(),
            url: None,
            schema: None,
            max_connections: 10,
            connect_timeout: 5,
            acquire_timeout_ms: 1_000,
            idle_timeout: 20,
            max_lifetime: 60,
            sqlite_cache_kib: 512,
            sqlite_mmap_mib: 0,
            migrations: MigrationMode::Apply,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueKind {
    /// The in-process queue backed by SQLite, for the all-in-one process.
    Embedded,
    /// NATS JetStream, for a cluster.
    Nats,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct QueueSettings {
    pub kind: QueueKind,
    /// NATS server URL, used when `kind` is `nats`; several, comma-separated, for a cluster
    /// (the client connects to any that answers and learns the others from the server).
    pub url: String,
    /// SQLite file of the embedded queue.
    pub path: String,
    /// First token of every subject and prefix of every stream name; tests use their own.
    pub namespace: String,
    /// Seconds a published message is kept, acknowledged or not.
    pub max_age: u64,
    /// Seconds within which a second publish with the same dedupe id is dropped.
    pub duplicate_window: u64,
    /// Copies JetStream keeps of every stream and durable consumer (1–5): 1 on one server,
    /// 3 on a three-node cluster, so losing a node loses no message and stops no consumer.
    /// Unused by the embedded queue.
    pub stream_replicas: usize,
    /// Most bytes one JetStream stream keeps (besides `max_age`). A full stream of work or
    /// events refuses new messages, which then wait where they came from (the Bot Manager's
    /// outbox, a process's spill file) — nothing is dropped; a full stream of notices
    /// (`config`, `auth`) drops its oldest, which a resync replaces.
    pub stream_max_bytes: u64,
    /// Most messages one JetStream stream keeps, with the same rule.
    pub stream_max_msgs: u64,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            kind: QueueKind::Embedded,
            url: "nats://127.0.0.1:4222".into(),
            path: "./data/queue.db".into(),
            namespace: "vivesphere".into(),
            max_age: 7 * 24 * 3600,
            duplicate_window: 120,
            stream_replicas: 1,
            // The two streams of work and events (and the small notice streams) reserve about
            // 4.1 GiB of a NATS server's store: under the manifests' 8 GB `max_file_store`.
            stream_max_bytes: 2 * 1024 * 1024 * 1024,
            stream_max_msgs: 5_000_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line, for `kubectl logs` and log shippers.
    Json,
    /// Human-readable lines for a terminal.
    Pretty,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct TelemetrySettings {
    /// A tracing filter such as `info` or `info,sqlx=warn`; `RUST_LOG` overrides it.
    pub log_level: String,
    pub log_format: LogFormat,
    /// Where user_activity events wait on disk while the queue does not take them.
    pub spill_dir: String,
    /// Largest spill file; when it is full, recording user_activity waits.
    pub spill_max_bytes: u64,
    /// Debug events buffered in memory before they are dropped (and counted).
    pub debug_buffer: usize,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            log_level: "info".into(),
            log_format: LogFormat::Json,
            spill_dir: "./data/spill".into(),
            spill_max_bytes: 64 * 1024 * 1024,
            debug_buffer: 10_000,
        }
    }
}

/// How every service checks the tokens the Authentication service issues.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthSettings {
    /// The `iss` every token must carry.
    pub issuer: String,
    /// The `aud` of user access tokens; service tokens carry `<audience>:<service>`.
    pub audience: String,
    /// Base URL of the Authentication service, where the JWKS, the revocation list and
    /// service tokens are had; several comma-separated (its replicas) are tried in turn.
    /// Unset: the process's own address when it runs the authentication target or
    /// everything, else `http://authentication:8000` (the Kubernetes Service).
    pub authentication_url: Option<String>,
    /// Seconds of clock skew tolerated on `exp` and `nbf`.
    pub leeway: u64,
    /// Verified tokens remembered (by hash) so each is checked once until it expires.
    pub verified_cache_size: usize,
    /// Service clients' secrets, one `<client_id>.secret` file each (a mounted Secret in a
    /// cluster; generated on first use in development).
    pub service_secrets_dir: String,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            issuer: "vivesphere".into(),
            audience: "vivesphere".into(),
            authentication_url: None,
            leeway: 30,
            verified_cache_size: 10_000,
            service_secrets_dir: "./data/service-clients".into(),
        }
    }
}
