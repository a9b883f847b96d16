//! The contract between a service crate and the binary that runs it.
//!
//! A service implements [`Target`]: its name, config section, route prefix, migrations, and
//! `build`, which turns a [`TargetContext`] (its own effective config, its own database,
//! the shared queue and metrics) into a [`BuiltTarget`] (a router and readiness checks).
//! Whether targets share a process is decided only by the binary's registry.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{ConfigError, LayeredConfig, PlatformSettings, SettingSpec};
use crate::db::{Database, Migrations};
use crate::http::health::ReadinessCheck;
use crate::http::metrics::MetricsRegistry;
use crate::queue::Queue;

/// How often a watched consumer's backlog is read (about Prometheus's scrape interval).
pub const BACKLOG_INTERVAL: Duration = Duration::from_secs(15);

/// What a target is given to build itself.
#[derive(Clone)]
pub struct TargetContext {
    /// The target's own effective configuration (global < its file < profile < env).
    pub config: Arc<LayeredConfig>,
    /// The platform sections of that configuration.
    pub platform: PlatformSettings,
    /// Its own database, when [`TargetInfo::uses_database`] says it owns data.
    pub database: Option<Database>,
    pub queue: Arc<dyn Queue>,
    /// Ships user_activity (never dropped) and debug events to the Logging service.
    pub events: crate::shipping::EventShipper,
    pub metrics: MetricsRegistry,
    /// What time it is, for every decision the target makes by time (the system clock in
    /// production, a settable one in tests).
    pub clock: crate::clock::Clock,
    /// Fires on shutdown; background work stops taking new work when it does.
    pub shutdown: CancellationToken,
    /// Background tasks spawned here are awaited (up to the drain timeout) at shutdown.
    pub tasks: TaskTracker,
    /// The first background failure, which makes the process exit non-zero.
    pub failure: Arc<OnceLock<String>>,
    /// Where the other services answer over HTTP.
    pub peers: Peers,
    /// The target's configuration as it changes at run time (`config` is its state at
    /// build); sections a service reads live come from here.
    pub live: crate::config::LiveConfig,
    /// The process's in-process link to the Configuration service.
    pub hub: crate::config::central::ConfigHub,
}

impl TargetContext {
    /// The target's own database; a target that owns data gets one (see
    /// [`TargetInfo::uses_database`]), so its absence is a wiring error named here.
    pub fn require_database(&self, target: &str) -> anyhow::Result<crate::db::Database> {
        self.database
            .clone()
            .ok_or_else(|| anyhow::anyhow!("the {target} target needs its database"))
    }
}

/// Where a target reaches another service: this very process when it runs that target too
/// (one-process mode), else the Kubernetes Service of that name on port 8000. A service's
/// own setting for a peer's URL beats both.
#[derive(Debug, Clone, Default)]
pub struct Peers {
    local_url: Option<String>,
    local_targets: Vec<&'static str>,
}

impl Peers {
    /// `local_url` is this process's own base URL; `local_targets` the targets it runs.
    pub fn new(local_url: impl Into<String>, local_targets: Vec<&'static str>) -> Self {
        Self {
            local_url: Some(local_url.into()),
            local_targets,
        }
    }

    /// Whether `target` runs in this very process.
    pub fn runs_here(&self, target: &str) -> bool {
        self.local_url.is_some() && self.local_targets.contains(&target)
    }

    /// The base URL (no trailing slash) of `target`.
    pub fn url(&self, target: &str) -> String {
        match &self.local_url {
            Some(url) if self.local_targets.contains(&target) => url.clone(),
            _ => format!("http://{target}:{}", crate::server::SERVICE_PORT),
        }
    }
}

impl TargetContext {
    /// Keeps the `queue_consumer_backlog` gauge of the durable consumer `spec` current: read
    /// at once (retried every second until the consumer exists), then every
    /// [`BACKLOG_INTERVAL`], until shutdown. A failed read keeps the last value.
    pub fn watch_backlog(&self, spec: crate::queue::ConsumerSpec) {
        let queue = self.queue.clone();
        let gauge = self
            .metrics
            .queue_backlog
            .get_or_create(&crate::http::metrics::ConsumerLabels {
                consumer: spec.name.clone(),
            })
            .clone();
        let shutdown = self.shutdown.clone();
        self.tasks.spawn(async move {
            let mut read_once = false;
            loop {
                match queue.backlog(&spec).await {
                    Ok(backlog) => {
                        gauge.set(i64::try_from(backlog).unwrap_or(i64::MAX));
                        read_once = true;
                    }
                    Err(err) if read_once => {
                        tracing::debug!(consumer = %spec.name, error = %format!("{err:#}"), "cannot read the queue backlog");
                    }
                    Err(_) => {}
                }
                let wait = if read_once {
                    BACKLOG_INTERVAL
                } else {
                    Duration::from_secs(1)
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        });
    }

    /// Runs `work` in the background until shutdown. If it fails, the whole process stops:
    /// a target that lost a worker must not keep answering as if healthy.
    pub fn spawn_critical<F>(&self, name: &'static str, work: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let shutdown = self.shutdown.clone();
        let failure = self.failure.clone();
        self.tasks.spawn(async move {
            if let Err(err) = work.await {
                let cause = format!("background task {name} failed: {err:#}");
                tracing::error!(task = name, error = %cause, "stopping the process");
                let _ = failure.set(cause);
                shutdown.cancel();
            }
        });
    }
}

/// What a target hands back.
pub struct BuiltTarget {
    /// Its routes, under its prefix. The platform adds `<prefix>/health`,
    /// `<prefix>/openapi.json` and `<prefix>/docs` around them.
    pub router: Router,
    /// Its OpenAPI document (start from [`crate::http::openapi::service_document`]).
    pub openapi: Option<utoipa::openapi::OpenApi>,
    /// Readiness checks beyond its database and the queue, which the platform adds.
    pub checks: Vec<ReadinessCheck>,
    /// How its routes verify tokens, if not from the JWKS over HTTP (the Authentication
    /// service reads its own keys). The platform puts it in the request extensions and
    /// feeds it revocation events.
    pub verifier: Option<crate::auth::TokenVerifier>,
    /// Wraps the process's whole API (every target's routes, not health or metrics) when
    /// this target runs in the process: the gateway's edge rate limit in one-process mode.
    pub edge: Option<EdgeLayer>,
}

impl BuiltTarget {
    /// A service: its routes, and its OpenAPI document — the platform's health path for
    /// `title` under `prefix`, merged with the service's own paths.
    pub fn service(
        router: Router,
        title: &str,
        prefix: &str,
        paths: utoipa::openapi::OpenApi,
    ) -> Self {
        let mut openapi = crate::http::openapi::service_document(title, prefix);
        openapi.merge(paths);
        Self {
            openapi: Some(openapi),
            ..Self::routes(router)
        }
    }

    /// Routes without an API document of their own (the gateway, the fake X).
    pub fn routes(router: Router) -> Self {
        Self {
            router,
            openapi: None,
            checks: Vec::new(),
            verifier: None,
            edge: None,
        }
    }

    pub fn with_check(mut self, check: ReadinessCheck) -> Self {
        self.checks.push(check);
        self
    }

    pub fn with_verifier(mut self, verifier: crate::auth::TokenVerifier) -> Self {
        self.verifier = Some(verifier);
        self
    }

    pub fn with_edge(mut self, edge: EdgeLayer) -> Self {
        self.edge = Some(edge);
        self
    }
}

/// A function that wraps a router in middleware.
pub type EdgeLayer = Arc<dyn Fn(Router) -> Router + Send + Sync>;

/// What the registry needs to know about a target before building it.
#[derive(Clone, Copy)]
pub struct TargetInfo {
    /// Kebab-case name used by `--target` and for `config/<name>.yaml`.
    pub name: &'static str,
    /// Top-level config section the target owns (snake_case).
    pub config_section: &'static str,
    /// Route prefix (`/api/v1/bots`), for targets that serve an API.
    pub route_prefix: Option<&'static str>,
    /// Whether the target owns data (its own SQLite file or PostgreSQL schema).
    pub uses_database: bool,
    /// Its embedded migrations, applied at start and by `vivesphere migrate`.
    pub migrations: Migrations,
    defaults: fn() -> serde_json::Value,
    check: fn(&LayeredConfig, &str) -> Result<(), ConfigError>,
    settings: fn() -> Vec<SettingSpec>,
    secrets: fn(&str) -> BTreeSet<String>,
}

impl TargetInfo {
    /// A target whose config section is read as `S`; it owns a database and no routes until
    /// told otherwise.
    pub fn new<S: Default + Serialize + DeserializeOwned>(
        name: &'static str,
        config_section: &'static str,
    ) -> Self {
        Self {
            name,
            config_section,
            route_prefix: None,
            uses_database: true,
            migrations: Migrations::default(),
            defaults: section_defaults::<S>,
            check: check_section::<S>,
            settings: Vec::new,
            secrets: crate::config::secret_keys_of::<S>,
        }
    }

    /// The settings the target declares, with their types and ranges and whether it applies
    /// them live (see [`crate::config::Catalog`]).
    pub fn with_settings(mut self, settings: fn() -> Vec<SettingSpec>) -> Self {
        self.settings = settings;
        self
    }

    pub fn declared_settings(&self) -> Vec<SettingSpec> {
        (self.settings)()
    }

    /// The keys of its section that hold secrets: the fields of its settings typed `Secret`.
    pub fn secret_keys(&self) -> BTreeSet<String> {
        (self.secrets)(self.config_section)
    }

    pub fn with_routes(mut self, prefix: &'static str) -> Self {
        self.route_prefix = Some(prefix);
        self
    }

    pub fn with_migrations(mut self, migrations: Migrations) -> Self {
        self.migrations = migrations;
        self
    }

    pub fn without_database(mut self) -> Self {
        self.uses_database = false;
        self
    }

    /// Defaults of the target's section, for the defaults layer.
    pub fn config_defaults(&self) -> serde_json::Value {
        (self.defaults)()
    }

    /// Reads the target's section to report bad keys or types before anything starts.
    pub fn check_config(&self, config: &LayeredConfig) -> Result<(), ConfigError> {
        (self.check)(config, self.config_section)
    }
}

/// One runnable piece of the system.
#[async_trait]
pub trait Target: Send + Sync + 'static {
    fn info(&self) -> TargetInfo;

    async fn build(&self, ctx: TargetContext) -> anyhow::Result<BuiltTarget>;
}

fn section_defaults<T: Default + Serialize>() -> serde_json::Value {
    serde_json::to_value(T::default()).expect("settings defaults serialize")
}

fn check_section<T: DeserializeOwned>(
    config: &LayeredConfig,
    section: &str,
) -> Result<(), ConfigError> {
    config.section::<T>(section).map(|_| ())
}
