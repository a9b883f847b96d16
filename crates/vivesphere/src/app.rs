//! Builds and runs the app: loads each selected target's configuration, opens the shared
//! queue once and each target's own database, runs migrations, builds the routers, and
//! serves them on one listener with the process's health and metrics routes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use axum::routing::get;
use axum::{Extension, Router};
use platform::auth::{HttpKeySource, TokenVerifier};
use platform::config::{ConfigLoader, LayeredConfig, PlatformSettings};
use platform::db::Database;
use platform::http::health::{Health, ReadinessCheck, health_routes, service_health_route};
use platform::http::metrics::{MetricsRegistry, metrics_handler};
use platform::http::openapi::docs_routes;
use platform::http::{finish_router, with_request_limits};
use platform::queue::{self, Queue};
use platform::shipping::EventShipper;
use platform::target::{Peers, Target, TargetContext, TargetInfo};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::registry;

/// What to run and where its configuration comes from.
#[derive(Debug, Clone)]
pub struct AppOptions {
    pub config_dir: PathBuf,
    /// The environment snapshot the configuration is read from.
    pub env: Vec<(String, String)>,
    /// `None` or `all`: every target in one process.
    pub target: Option<String>,
    /// Beats `server.listen`.
    pub listen: Option<String>,
}

impl AppOptions {
    /// Options reading this process's environment.
    pub fn from_process_env(
        config_dir: PathBuf,
        target: Option<String>,
        listen: Option<String>,
    ) -> Self {
        Self {
            config_dir,
            env: std::env::vars().collect(),
            target,
            listen,
        }
    }

    fn runs_everything(&self) -> bool {
        matches!(self.target.as_deref(), None | Some(registry::ALL))
    }
}

/// One selected target with its own effective configuration.
pub struct TargetConfig {
    pub target: Arc<dyn Target>,
    pub info: TargetInfo,
    pub config: Arc<LayeredConfig>,
    pub platform: PlatformSettings,
}

/// The configuration of a whole run: the process's and each target's.
pub struct LoadedConfig {
    /// For the all-in-one process: global < profile < env (no service file). For one
    /// target: that target's configuration.
    pub process: Arc<LayeredConfig>,
    pub process_platform: PlatformSettings,
    pub targets: Vec<TargetConfig>,
}

/// Loads and checks every layer for the selected targets. Any bad key, type or secret
/// reference is an error naming the file and key.
pub fn load_config(options: &AppOptions) -> anyhow::Result<LoadedConfig> {
    let selected = registry::select(options.target.as_deref())?;
    let loader = ConfigLoader::new(
        &options.config_dir,
        options.env.iter().cloned(),
        registry::config_defaults(),
    )?;
    let known = registry::known_sections();
    let check = |config: &LayeredConfig| -> anyhow::Result<PlatformSettings> {
        config.check_sections(&known)?;
        for target in registry::targets() {
            target.info().check_config(config)?;
        }
        Ok(PlatformSettings::from_config(config)?)
    };
    let mut targets = Vec::new();
    for target in selected {
        let info = target.info();
        let config = loader.load(Some(info.name))?;
        let platform = check(&config)?;
        targets.push(TargetConfig {
            target,
            info,
            config: Arc::new(config),
            platform,
        });
    }
    let (process, process_platform) = if options.runs_everything() {
        let config = loader.load(None)?;
        let platform = check(&config)?;
        (Arc::new(config), platform)
    } else {
        (targets[0].config.clone(), targets[0].platform.clone())
    };
    Ok(LoadedConfig {
        process,
        process_platform,
        targets,
    })
}

/// Opens a target's database and applies its migrations.
async fn open_database(entry: &TargetConfig) -> anyhow::Result<Database> {
    let name = entry.info.name;
    let database = Database::connect(entry.info.config_section, &entry.platform.database)
        .await
        .with_context(|| format!("target {name}"))?;
    database
        .migrate(&entry.target.migrations())
        .await
        .with_context(|| format!("target {name}"))?;
    Ok(database)
}

/// `vivesphere migrate`: applies every selected target's migrations; one line per target.
pub async fn migrate(options: &AppOptions) -> anyhow::Result<Vec<String>> {
    let loaded = load_config(options)?;
    let mut report = Vec::new();
    for entry in loaded.targets.iter().filter(|e| e.info.uses_database) {
        let database = open_database(entry).await?;
        report.push(format!(
            "{}: {} migration(s) applied or already current on {}",
            entry.info.name,
            match database.backend() {
                platform::db::Backend::Sqlite => entry.target.migrations().sqlite.len(),
                platform::db::Backend::Postgres => entry.target.migrations().postgres.len(),
            },
            database.location()
        ));
        database.close().await;
    }
    Ok(report)
}

/// Where the verifiers fetch keys and revocations: `auth.authentication_url` if set; this
/// very process when it runs the Authentication service; else the Kubernetes Service name.
fn authentication_url(
    options: &AppOptions,
    loaded: &LoadedConfig,
    listener: &TcpListener,
) -> anyhow::Result<String> {
    if let Some(url) = &loaded.process_platform.auth.authentication_url {
        return Ok(url.clone());
    }
    let runs_authentication = loaded
        .targets
        .iter()
        .any(|entry| entry.info.name == authentication::NAME);
    if options.runs_everything() || runs_authentication {
        return local_url(listener);
    }
    Ok("http://authentication:8000".to_string())
}

/// This process's own base URL, as its other targets reach it.
fn local_url(listener: &TcpListener) -> anyhow::Result<String> {
    let mut addr = listener.local_addr()?;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    Ok(format!("http://{addr}"))
}

/// One target's configuration and migrated database, for operator commands.
pub async fn open_target(
    options: &AppOptions,
    target: &str,
) -> anyhow::Result<(TargetConfig, Database)> {
    let mut options = options.clone();
    options.target = Some(target.to_string());
    let mut loaded = load_config(&options)?;
    let entry = loaded.targets.remove(0);
    let database = open_database(&entry).await?;
    Ok((entry, database))
}

/// `vivesphere auth rotate-keys`: opens the Authentication service's database and starts a
/// new signing key. Returns its key id.
pub async fn rotate_signing_keys(options: &AppOptions) -> anyhow::Result<String> {
    let (entry, database) = open_target(options, authentication::NAME).await?;
    let entry = &entry;
    let queue = queue::connect(&entry.platform.queue).await?;
    let metrics = MetricsRegistry::new();
    let ctx = TargetContext {
        config: entry.config.clone(),
        platform: entry.platform.clone(),
        database: Some(database.clone()),
        // Operator commands ship nothing in the background; an event they cannot publish
        // waits in the spill file for the next server start.
        events: EventShipper::new(queue.clone(), &entry.platform.telemetry, &metrics),
        queue,
        metrics,
        shutdown: CancellationToken::new(),
        tasks: TaskTracker::new(),
        failure: Arc::new(OnceLock::new()),
        peers: Peers::default(),
    };
    let kid = authentication::rotate_keys(&ctx).await;
    database.close().await;
    kid
}

/// A built app, bound and ready to serve.
pub struct App {
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    drain: Duration,
    databases: Vec<Database>,
    queue: Arc<dyn Queue>,
    failure: Arc<OnceLock<String>>,
}

impl App {
    /// Loads the configuration and builds the app.
    pub async fn build(options: AppOptions) -> anyhow::Result<Self> {
        let loaded = load_config(&options)?;
        Self::build_with(&options, loaded).await
    }

    /// Builds the app from configuration the caller already loaded (and, in `main`, used to
    /// set up logging first).
    pub async fn build_with(options: &AppOptions, loaded: LoadedConfig) -> anyhow::Result<Self> {
        let listen = options
            .listen
            .clone()
            .or_else(|| loaded.process_platform.server.listen.clone())
            .unwrap_or_else(|| {
                if options.runs_everything() {
                    "127.0.0.1:8000".into()
                } else {
                    "0.0.0.0:8000".into()
                }
            });
        let listener = platform::server::bind(&listen)
            .await
            .context("server.listen (or --listen)")?;
        let authentication_url = authentication_url(options, &loaded, &listener)?;
        let peers = Peers::new(
            local_url(&listener)?,
            loaded.targets.iter().map(|entry| entry.info.name).collect(),
        );
        let queue = queue::connect(&loaded.process_platform.queue)
            .await
            .context("cannot open the queue")?;
        let metrics = MetricsRegistry::new();
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let failure = Arc::new(OnceLock::new());
        let events = EventShipper::new(queue.clone(), &loaded.process_platform.telemetry, &metrics);
        events.spawn(&tasks, shutdown.clone());

        let queue_check = {
            let queue = queue.clone();
            ReadinessCheck::new("queue", move || {
                let queue = queue.clone();
                async move { queue.check().await }
            })
        };
        let mut all_checks = vec![queue_check.clone()];
        let mut router = Router::new();
        let mut databases = Vec::new();
        for entry in &loaded.targets {
            let info = entry.info;
            let database = if info.uses_database {
                Some(open_database(entry).await?)
            } else {
                None
            };
            let mut checks = vec![queue_check.clone()];
            if let Some(database) = &database {
                databases.push(database.clone());
                let database = database.clone();
                checks.push(ReadinessCheck::new(
                    format!("{}.database", info.name),
                    move || {
                        let database = database.clone();
                        async move { database.ping().await }
                    },
                ));
            }
            let built = entry
                .target
                .build(TargetContext {
                    config: entry.config.clone(),
                    platform: entry.platform.clone(),
                    database,
                    queue: queue.clone(),
                    events: events.clone(),
                    metrics: metrics.clone(),
                    shutdown: shutdown.clone(),
                    tasks: tasks.clone(),
                    failure: failure.clone(),
                    peers: peers.clone(),
                })
                .await
                .with_context(|| format!("target {} failed to build", info.name))?;
            checks.extend(built.checks);
            all_checks.extend(checks.iter().skip(1).cloned());
            let mut service_router = built.router;
            if let Some(prefix) = info.route_prefix {
                service_router = service_router.merge(service_health_route(
                    prefix,
                    Health::new(checks, shutdown.clone()),
                ));
                if let Some(doc) = built.openapi {
                    service_router = service_router.merge(docs_routes(prefix, doc));
                }
            }
            let verifier = match built.verifier {
                Some(verifier) => verifier,
                None => TokenVerifier::new(
                    Arc::new(HttpKeySource::new(&authentication_url)?),
                    &entry.platform.auth,
                    info.name,
                ),
            };
            verifier.follow_revocations(queue.clone(), shutdown.clone());
            let service_router = service_router.layer(Extension(verifier));
            router = router.merge(with_request_limits(
                service_router,
                entry.platform.server.body_limit,
                Duration::from_secs(entry.platform.server.request_timeout.max(1)),
            ));
            tracing::info!(service = info.name, "target built");
        }

        let process_health = Health::new(all_checks, shutdown.clone());
        router = router.merge(health_routes(process_health)).merge(
            Router::new()
                .route("/metrics", get(metrics_handler))
                .with_state(metrics.clone()),
        );
        let router = finish_router(router, metrics.http.clone());

        Ok(Self {
            listener,
            router,
            shutdown,
            tasks,
            drain: Duration::from_secs(loaded.process_platform.server.shutdown_timeout),
            databases,
            queue,
            failure,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Cancelling this token shuts the app down as SIGTERM does.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// The shared queue (tests publish through it).
    pub fn queue(&self) -> Arc<dyn Queue> {
        self.queue.clone()
    }

    /// Serves until shutdown, drains, closes the databases. An error if draining overran
    /// its timeout or a background task failed.
    pub async fn run(self) -> anyhow::Result<()> {
        let failure = self.failure.clone();
        let result = platform::server::serve(
            self.listener,
            self.router,
            self.shutdown,
            self.tasks,
            self.drain,
        )
        .await;
        for database in &self.databases {
            database.close().await;
        }
        if let Some(cause) = failure.get() {
            anyhow::bail!("{cause}");
        }
        result
    }
}
