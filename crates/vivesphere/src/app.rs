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
use platform::Clock;
use platform::auth::{HttpKeySource, TokenVerifier};
use platform::auth::{ServiceTokens, service_secret};
use platform::config::central::{ConfigHub, DiskCopy, GLOBAL_SCOPE};
use platform::config::{
    Catalog, CentralSource, ConfigClient, ConfigError, ConfigLoader, LayeredConfig, LiveConfig,
    MigrationMode, PlatformSettings, TelemetrySettings,
};
use platform::db::Database;
use platform::http::headers::ResponsePolicy;
use platform::http::health::{Health, ReadinessCheck, health_routes, service_health_route};
use platform::http::metrics::{METRICS_PATH, MetricsRegistry, metrics_handler};
use platform::http::openapi::docs_routes;
use platform::http::{finish_router, with_request_limits};
use platform::queue::{self, Queue};
use platform::shipping::EventShipper;
use platform::target::{Peers, Target, TargetContext, TargetInfo};
use platform::telemetry::LogLevelHandle;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::registry;

/// What to run and where its configuration comes from.
#[derive(Clone)]
pub struct AppOptions {
    pub config_dir: PathBuf,
    /// The environment snapshot the configuration is read from.
    pub env: Vec<(String, String)>,
    /// `None` or `all`: every target in one process.
    pub target: Option<String>,
    /// Beats `server.listen`.
    pub listen: Option<String>,
    /// Where `*_file` secrets are read from instead of `/` (`config check --root`).
    pub file_root: Option<PathBuf>,
    /// The installed log subscriber's filter, which follows `telemetry.log_level` live
    /// (`main` installs one; tests run without).
    pub log_level: Option<LogLevelHandle>,
    /// What time it is for every service of the app: the system clock, or a test's.
    pub clock: Clock,
}

impl std::fmt::Debug for AppOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppOptions")
            .field("config_dir", &self.config_dir)
            .field("target", &self.target)
            .field("listen", &self.listen)
            .finish_non_exhaustive()
    }
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
            file_root: None,
            log_level: None,
            clock: Clock::system(),
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
    /// The same configuration as it will change at run time.
    pub live: LiveConfig,
}

/// The configuration of a whole run: the process's and each target's.
pub struct LoadedConfig {
    /// For the all-in-one process: global < profile < env (no service file). For one
    /// target: that target's configuration.
    pub process: Arc<LayeredConfig>,
    pub process_platform: PlatformSettings,
    /// The process's configuration at run time; for one target, that target's.
    pub process_live: LiveConfig,
    pub targets: Vec<TargetConfig>,
    /// What loading noticed and could not log yet (`main` installs logging after loading).
    pub warnings: Vec<String>,
}

/// Loads and checks every layer for the selected targets. Any bad key, type or secret
/// reference is an error naming the file and key. The central layer is the last copy the
/// service saved (the config client replaces it once the service is running).
pub fn load_config(options: &AppOptions) -> anyhow::Result<LoadedConfig> {
    let selected = registry::select(options.target.as_deref())?;
    // Defaults alone are never what was meant: a wrong directory is an error, not a quiet
    // start on the defaults.
    if !options.config_dir.is_dir() {
        anyhow::bail!(
            "the configuration directory {} does not exist; pass --config-dir or set \
             VIVESPHERE_CONFIG_DIR (the repository's is ./config)",
            options.config_dir.display()
        );
    }
    let mut loader = ConfigLoader::new(
        &options.config_dir,
        options.env.iter().cloned(),
        registry::config_defaults(),
    )?;
    if let Some(root) = &options.file_root {
        loader = loader.with_file_root(root);
    }
    for target in registry::targets() {
        let info = target.info();
        if !info.uses_database {
            loader = loader.without_section_for(info.name, "database");
        }
    }
    let catalog = Arc::new(registry::catalog());
    let mut targets = Vec::new();
    let mut warnings = loader.ignored_env_vars();
    for target in selected {
        let info = target.info();
        let live = load_live(&loader, &catalog, info.name, Some(info.name), &mut warnings)?;
        let config = live.current();
        let platform = registry::check_config(&config)?;
        targets.push(TargetConfig {
            target,
            info,
            config,
            platform,
            live,
        });
    }
    let process_live = if options.runs_everything() {
        load_live(&loader, &catalog, GLOBAL_SCOPE, None, &mut warnings)?
    } else {
        targets[0].live.clone()
    };
    let process = process_live.current();
    let process_platform = registry::check_config(&process)?;
    Ok(LoadedConfig {
        process,
        process_platform,
        process_live,
        targets,
        warnings,
    })
}

/// Loads files and environment, then puts the saved central copy on top if there is one
/// and it is still valid.
fn load_live(
    loader: &ConfigLoader,
    catalog: &Arc<Catalog>,
    scope: &str,
    target: Option<&str>,
    warnings: &mut Vec<String>,
) -> anyhow::Result<LiveConfig> {
    let base = Arc::new(loader.load(target)?);
    let settings = registry::check_config(&base)?.config_client;
    let live = LiveConfig::new(
        scope,
        loader.clone(),
        target.map(str::to_string),
        catalog.clone(),
        base,
        0,
    );
    if settings.enabled {
        match DiskCopy::new(&settings.cache_dir, scope, loader.profile()).load() {
            Ok(Some(copy)) => {
                if let Err(err) = live.apply(&copy) {
                    warnings.push(format!(
                        "{scope}: ignoring the saved central settings (revision {}): {err}",
                        copy.revision
                    ));
                }
            }
            Ok(None) => {}
            Err(err) => warnings.push(format!(
                "{scope}: ignoring the saved central settings: {err}"
            )),
        }
    }
    live.mark_in_effect();
    Ok(live)
}

/// Opens a target's database and applies its migrations, or with
/// `database.migrations = "verify"` checks that they were applied (unless `apply_always`).
async fn open_database(entry: &TargetConfig, apply_always: bool) -> anyhow::Result<Database> {
    let name = entry.info.name;
    let settings = &entry.platform.database;
    let database = Database::connect(entry.info.config_section, settings)
        .await
        .with_context(|| format!("target {name}"))?;
    let migrations = &entry.info.migrations;
    let outcome = if apply_always || settings.migrations == MigrationMode::Apply {
        database.migrate(migrations).await
    } else {
        database.verify_migrated(migrations).await
    };
    outcome.with_context(|| format!("target {name}"))?;
    Ok(database)
}

/// `vivesphere migrate`: applies every selected target's migrations; one line per target.
pub async fn migrate(options: &AppOptions) -> anyhow::Result<Vec<String>> {
    let loaded = load_config(options)?;
    let mut report = Vec::new();
    for entry in loaded.targets.iter().filter(|e| e.info.uses_database) {
        let database = open_database(entry, true).await?;
        report.push(format!(
            "{}: {} migration(s) applied or already current on {}",
            entry.info.name,
            match database.backend() {
                platform::db::Backend::Sqlite => entry.info.migrations.sqlite.len(),
                platform::db::Backend::Postgres => entry.info.migrations.postgres.len(),
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
    Ok(format!(
        "http://{}:{}",
        authentication::NAME,
        platform::server::SERVICE_PORT
    ))
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
    let database = open_database(&entry, false).await?;
    Ok((entry, database))
}

/// Runs an operator command on the Authentication service's database, in a target context
/// of its own. Operator commands ship nothing in the background: an event they cannot
/// publish waits in the spill file for the next server start.
async fn on_authentication<T>(
    options: &AppOptions,
    command: impl AsyncFnOnce(&TargetContext) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let (entry, database) = open_target(options, authentication::NAME).await?;
    let shared = Shared::open(&entry.platform, options.clock.clone(), Peers::default()).await?;
    let ctx = shared.context(
        &entry,
        entry.config.clone(),
        entry.platform.clone(),
        Some(database.clone()),
    );
    let outcome = command(&ctx).await;
    database.close().await;
    outcome
}

/// `vivesphere auth rotate-keys`: starts a new signing key. Returns its key id.
/// Returns the new key's id and when it starts signing (Unix seconds).
pub async fn rotate_signing_keys(options: &AppOptions) -> anyhow::Result<(String, i64)> {
    on_authentication(options, async |ctx| authentication::rotate_keys(ctx).await).await
}

/// `vivesphere auth reset-password --username U`: a new one-time password for the user;
/// their sessions end; audited as the operator. Returns the password.
pub async fn reset_user_password(options: &AppOptions, username: &str) -> anyhow::Result<String> {
    let operator = platform::activity::operator_actor();
    on_authentication(options, async |ctx| {
        authentication::reset_password(ctx, &operator, username).await
    })
    .await
}

/// What every target of a process shares, made once: the queue, the event shipper, the
/// metrics, the clock, shutdown and background tasks, where the peers answer, and the link
/// to the Configuration service.
struct Shared {
    queue: Arc<dyn Queue>,
    /// 1 while the queue answers, 0 while it does not (`vivesphere_queue_up`).
    queue_up: prometheus_client::metrics::gauge::Gauge,
    events: EventShipper,
    metrics: MetricsRegistry,
    clock: Clock,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    failure: Arc<OnceLock<String>>,
    peers: Peers,
    hub: ConfigHub,
}

impl Shared {
    async fn open(platform: &PlatformSettings, clock: Clock, peers: Peers) -> anyhow::Result<Self> {
        let queue = queue::connect(&platform.queue)
            .await
            .context("cannot open the queue")?;
        let metrics = MetricsRegistry::new();
        let events = EventShipper::new(queue.clone(), &platform.telemetry, &metrics, clock.clone());
        let queue_up = metrics.register(
            "queue_up",
            "1 while the queue (NATS JetStream or the embedded one) answers this process, 0 while it does not",
            prometheus_client::metrics::gauge::Gauge::default(),
        );
        queue_up.set(1);
        let (shutdown, tasks) = (CancellationToken::new(), TaskTracker::new());
        let usage = platform::queue::usage::UsageGauges::register(&metrics);
        tasks.spawn(usage.follow(queue.clone(), shutdown.clone()));
        Ok(Self {
            queue,
            queue_up,
            events,
            metrics,
            clock,
            shutdown,
            tasks,
            failure: Arc::new(OnceLock::new()),
            peers,
            hub: ConfigHub::default(),
        })
    }

    /// What `entry` is built from.
    fn context(
        &self,
        entry: &TargetConfig,
        config: Arc<LayeredConfig>,
        platform: PlatformSettings,
        database: Option<Database>,
    ) -> TargetContext {
        TargetContext {
            config,
            platform,
            database,
            queue: self.queue.clone(),
            events: self.events.clone(),
            metrics: self.metrics.clone(),
            clock: self.clock.clone(),
            shutdown: self.shutdown.clone(),
            tasks: self.tasks.clone(),
            failure: self.failure.clone(),
            peers: self.peers.clone(),
            live: entry.live.clone(),
            hub: self.hub.clone(),
        }
    }

    /// Degraded, not unready, while the queue does not answer: a service whose database
    /// answers can still serve (what needs the queue waits in its outbox or spill file).
    fn queue_check(&self) -> ReadinessCheck {
        let (queue, up) = (self.queue.clone(), self.queue_up.clone());
        ReadinessCheck::degrading("queue", move || {
            let (queue, up) = (queue.clone(), up.clone());
            async move {
                let answered = queue.check().await;
                up.set(i64::from(answered.is_ok()));
                answered
            }
        })
    }
}

/// One target, built: its routes (health, docs, token verification and limits around
/// them) and what the process keeps of it.
struct BuiltService {
    router: Router,
    /// Its own readiness checks (its database, what it added), not the queue's.
    checks: Vec<ReadinessCheck>,
    database: Option<Database>,
    client: Option<ConfigClient>,
    edge: Option<platform::target::EdgeLayer>,
}

/// Ready while `database` answers.
fn database_check(name: &str, database: &Database) -> ReadinessCheck {
    let database = database.clone();
    ReadinessCheck::new(format!("{name}.database"), move || {
        let database = database.clone();
        async move { database.ping().await }
    })
}

/// Builds one target on what the process shares: its central settings first (so it starts
/// on them), its database, then the target itself, wrapped in what every service gets.
async fn build_target(
    entry: &TargetConfig,
    shared: &Shared,
    central: &CentralLinks,
) -> anyhow::Result<BuiltService> {
    let info = entry.info;
    let client = central.client(&entry.live, &entry.platform)?;
    if let Some(client) = &client
        && central.reachable_now()
    {
        client.sync_at_start(&entry.platform.config_client).await;
    }
    let config = entry.live.current();
    let platform = registry::check_config(&config)?;
    let database = match info.uses_database {
        true => Some(open_database(entry, false).await?),
        false => None,
    };
    let mut checks: Vec<ReadinessCheck> = database
        .iter()
        .map(|db| database_check(info.name, db))
        .collect();
    let built = entry
        .target
        .build(shared.context(entry, config, platform.clone(), database.clone()))
        .await
        .with_context(|| format!("target {} failed to build", info.name))?;
    // Whatever the client applied so far is what the target was built with.
    entry.live.mark_in_effect();
    checks.extend(built.checks);
    let mut router = built.router;
    if let Some(prefix) = info.route_prefix {
        let live = entry.live.clone();
        let mut own = vec![shared.queue_check()];
        own.extend(checks.iter().cloned());
        let health =
            Health::new(own, shared.shutdown.clone()).with_fact("config", move || live.status());
        router = router.merge(service_health_route(prefix, health));
        if let Some(doc) = built.openapi {
            router = router.merge(docs_routes(prefix, doc));
        }
    }
    let verifier = match built.verifier {
        Some(verifier) => verifier,
        None => TokenVerifier::new(
            Arc::new(HttpKeySource::new(&central.authentication_url)?),
            &platform.auth,
            info.name,
            shared.clock.clone(),
        ),
    };
    verifier.follow_revocations(shared.queue.clone(), shared.shutdown.clone());
    let router = with_request_limits(
        router.layer(Extension(verifier)),
        platform.server.body_limit,
        Duration::from_secs(platform.server.request_timeout.max(1)),
    );
    tracing::info!(service = info.name, "target built");
    Ok(BuiltService {
        router,
        checks,
        database,
        client,
        edge: built.edge,
    })
}

/// The address to serve on: `--listen`, else `server.listen`, else port 8000 on loopback
/// for the all-in-one process and on every interface for one target (as in a pod).
/// The address the process listens on: `--listen`, else `server.listen`, else loopback for
/// the all-in-one process (a laptop) and every interface for one target (a container).
pub fn effective_listen(options: &AppOptions, loaded: &LoadedConfig) -> String {
    options
        .listen
        .clone()
        .or_else(|| loaded.process_platform.server.listen.clone())
        .unwrap_or_else(|| {
            let port = platform::server::SERVICE_PORT;
            if options.runs_everything() {
                format!("127.0.0.1:{port}")
            } else {
                format!("0.0.0.0:{port}")
            }
        })
}

/// `vivesphere config check`: what the selected target runs with — its own section and the
/// platform's (every section for the all-in-one process), with the listen address it will
/// use — each value with its origin, secrets redacted.
/// For `config check --target X`: reads the central settings as the Configuration service
/// has them now — with the target's own client secret, as the running service would — and
/// puts them into `loaded` in place of the saved copy. Returns the revision and where it came
/// from, or why it could not be read (the check then shows the saved copy, if any).
pub async fn read_current_central(
    loaded: &LoadedConfig,
    clock: Clock,
) -> anyhow::Result<(i64, String)> {
    let [entry] = loaded.targets.as_slice() else {
        anyhow::bail!("the central settings are read for one target (--target)");
    };
    let name = entry.info.name;
    if name == configuration::NAME {
        anyhow::bail!("the Configuration service keeps the central settings itself");
    }
    let platform = &loaded.process_platform;
    let client = &platform.config_client;
    if !client.enabled {
        anyhow::bail!("config_client.enabled is false");
    }
    let profile = loaded.process.profile();
    // Never generate a secret here (development would): a check reads, it does not write.
    let client_id = central_client_id(platform, name);
    let path = platform::auth::service_secret_path(&platform.auth.service_secrets_dir, &client_id);
    anyhow::ensure!(path.exists(), "no client secret at {}", path.display());
    let service_url = |target: &str| format!("http://{target}:{}", platform::server::SERVICE_PORT);
    let authentication_url = platform
        .auth
        .authentication_url
        .clone()
        .unwrap_or_else(|| service_url(authentication::NAME));
    let url = client
        .url
        .clone()
        .unwrap_or_else(|| service_url(configuration::NAME));
    let urls = (authentication_url.as_str(), url.as_str());
    let source =
        central_over_http(platform, name, profile, urls, clock)?.context("no client secret")?;
    let snapshot = tokio::time::timeout(Duration::from_secs(5), source.fetch(name, profile))
        .await
        .map_err(|_| anyhow::anyhow!("{url} did not answer within 5 s"))??;
    loaded.process_live.apply(&snapshot)?;
    Ok((snapshot.revision, url))
}

/// The client a service asks the Configuration service as: `config_client.client_id`, else
/// the service's own name.
fn central_client_id(platform: &PlatformSettings, service: &str) -> String {
    platform
        .config_client
        .client_id
        .clone()
        .unwrap_or_else(|| service.to_string())
}

/// The central settings over HTTP, as `service` reads them: a client_credentials token from
/// the Authentication service with its client secret, then the Configuration service.
/// `None` when the service has no client secret.
fn central_over_http(
    platform: &PlatformSettings,
    service: &str,
    profile: platform::config::Profile,
    (authentication_url, configuration_url): (&str, &str),
    clock: Clock,
) -> anyhow::Result<Option<CentralSource>> {
    let client_id = central_client_id(platform, service);
    let dir = &platform.auth.service_secrets_dir;
    let Some(secret) = service_secret(dir, &client_id, profile)? else {
        return Ok(None);
    };
    let tokens = ServiceTokens::new(
        authentication_url,
        client_id,
        secret,
        configuration::NAME,
        clock,
    )?;
    Ok(Some(CentralSource::http(
        configuration_url,
        Arc::new(tokens),
    )?))
}

pub fn render_config_check(options: &AppOptions, loaded: &LoadedConfig) -> String {
    let why = if options.runs_everything() {
        "the all-in-one process listens on loopback"
    } else {
        "one target listens on every interface, as in a container"
    };
    let config = loaded.process_live.current().as_ref().clone().with_derived(
        "server.listen",
        serde_json::Value::from(effective_listen(options, loaded)),
        why,
    );
    let secrets = registry::secret_keys();
    if options.runs_everything() {
        return config.render_with_origins(&secrets);
    }
    let platform_sections = PlatformSettings::defaults();
    let mut sections: Vec<&str> = platform_sections
        .as_object()
        .map(|map| map.keys().map(String::as_str).collect())
        .unwrap_or_default();
    sections.extend(loaded.targets.iter().map(|entry| entry.info.config_section));
    config.render_sections_with_origins(&sections, &secrets)
}

async fn bind_listener(options: &AppOptions, loaded: &LoadedConfig) -> anyhow::Result<TcpListener> {
    let listen = effective_listen(options, loaded);
    platform::server::bind(&listen)
        .await
        .context("server.listen (or --listen)")
}

/// The services whose routes this process answers: its own targets', and through a gateway
/// every route of the table.
fn listed_services(loaded: &LoadedConfig) -> Vec<crate::index_page::Listed> {
    use crate::index_page::Listed;
    let mut listed: Vec<Listed> = loaded
        .targets
        .iter()
        .filter_map(|entry| {
            entry.info.route_prefix.map(|prefix| Listed {
                service: entry.info.name,
                prefix,
            })
        })
        .collect();
    if loaded.targets.iter().any(|e| e.info.name == gateway::NAME) {
        listed.extend(gateway::routes::ROUTES.iter().map(|route| Listed {
            service: route.service,
            prefix: route.prefix,
        }));
    }
    // The index is of APIs; the console has its own link, `/`.
    listed.retain(|l| l.prefix.starts_with("/api/"));
    listed.sort_by_key(|l| l.prefix);
    listed.dedup();
    listed
}

/// The process's own `/health` (every check, and each service's applied configuration).
fn process_health(
    checks: Vec<ReadinessCheck>,
    loaded: &LoadedConfig,
    shutdown: &CancellationToken,
) -> Health {
    let mut lives = vec![loaded.process_live.clone()];
    lives.extend(loaded.targets.iter().map(|entry| entry.live.clone()));
    Health::new(checks, shutdown.clone()).with_fact("config", move || {
        let mut by_service = serde_json::Map::new();
        for live in &lives {
            by_service.insert(live.service().to_string(), live.status());
        }
        serde_json::Value::Object(by_service)
    })
}

/// How this process's config clients reach the Configuration service.
struct CentralLinks {
    hub: ConfigHub,
    /// The Configuration service runs in this process.
    in_process: bool,
    peers: Peers,
    authentication_url: String,
    revision: Family<ServiceLabel, Gauge>,
    clock: Clock,
}

impl CentralLinks {
    /// The links of a process running `loaded`'s targets; registers the applied-revision
    /// gauge.
    fn new(loaded: &LoadedConfig, shared: &Shared, authentication_url: String) -> Self {
        Self {
            hub: shared.hub.clone(),
            in_process: loaded
                .targets
                .iter()
                .any(|entry| entry.info.name == configuration::NAME),
            peers: shared.peers.clone(),
            authentication_url,
            revision: shared.metrics.register(
                "config_applied_revision",
                "Central configuration revision in effect",
                Family::default(),
            ),
            clock: shared.clock.clone(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabel {
    service: String,
}

impl CentralLinks {
    /// The client that keeps `live` current, or `None` when it follows nothing: turned
    /// off, or (outside development) no client secret to ask for a token with.
    fn client(
        &self,
        live: &LiveConfig,
        platform: &PlatformSettings,
    ) -> anyhow::Result<Option<ConfigClient>> {
        let settings = &platform.config_client;
        if !settings.enabled {
            return Ok(None);
        }
        let profile = live.current().profile();
        let source = if self.in_process {
            CentralSource::InProcess(self.hub.clone())
        } else {
            let url = settings
                .url
                .clone()
                .unwrap_or_else(|| self.peers.url(configuration::NAME));
            let urls = (self.authentication_url.as_str(), url.as_str());
            let over_http =
                central_over_http(platform, live.service(), profile, urls, self.clock.clone())?;
            let Some(source) = over_http else {
                tracing::warn!(
                    client_id = central_client_id(platform, live.service()),
                    dir = platform.auth.service_secrets_dir,
                    "no client secret for the Configuration service: central settings come only from the saved copy"
                );
                return Ok(None);
            };
            source
        };
        Ok(Some(ConfigClient::new(
            live.clone(),
            source,
            DiskCopy::new(&settings.cache_dir, live.service(), profile),
            profile,
            Duration::from_secs(settings.resync_seconds.max(1)),
        )))
    }

    /// Whether a read can succeed before anything serves: over HTTP, maybe; in-process, once
    /// the Configuration service (built first) has registered itself.
    fn reachable_now(&self) -> bool {
        !self.in_process || self.hub.provider().is_some()
    }

    /// Runs `client` until shutdown and mirrors its revision into the metrics.
    fn follow(
        &self,
        client: ConfigClient,
        queue: &Arc<dyn Queue>,
        tasks: &TaskTracker,
        shutdown: &CancellationToken,
    ) {
        let live = client.live().clone();
        let gauge = self
            .revision
            .get_or_create(&ServiceLabel {
                service: live.service().to_string(),
            })
            .clone();
        gauge.set(live.revision());
        let mut revisions = live.watch_revision();
        let stop = shutdown.clone();
        tasks.spawn(async move {
            loop {
                let changed = tokio::select! {
                    _ = stop.cancelled() => return,
                    changed = revisions.changed() => changed,
                };
                if changed.is_err() {
                    return;
                }
                let revision = *revisions.borrow_and_update();
                gauge.set(revision);
            }
        });
        tasks.spawn(client.run(queue.clone(), shutdown.clone()));
    }
}

/// Makes the installed log filter follow `telemetry.log_level`.
fn follow_log_level(live: &LiveConfig, handle: LogLevelHandle) {
    if handle.pinned() {
        return;
    }
    live.on_change(move |config| {
        let telemetry: TelemetrySettings = config.section("telemetry")?;
        let filter = LogLevelHandle::parse(&telemetry.log_level).map_err(|message| {
            ConfigError::Invalid {
                key: "telemetry.log_level".into(),
                origin: config
                    .origin_of("telemetry.log_level")
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                message,
            }
        })?;
        let handle = handle.clone();
        Ok(Box::new(move || handle.apply(filter)))
    });
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
    metrics: MetricsRegistry,
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
        let listener = bind_listener(options, &loaded).await?;
        let authentication_url = authentication_url(options, &loaded, &listener)?;
        let peers = Peers::new(
            local_url(&listener)?,
            loaded.targets.iter().map(|entry| entry.info.name).collect(),
        );
        let shared = Shared::open(&loaded.process_platform, options.clock.clone(), peers).await?;
        shared.events.spawn(&shared.tasks, shared.shutdown.clone());
        for warning in &loaded.warnings {
            tracing::warn!("{warning}");
        }
        let central = CentralLinks::new(&loaded, &shared, authentication_url);
        if let Some(handle) = &options.log_level {
            follow_log_level(&loaded.process_live, handle.clone());
        }
        let mut router = Router::new();
        let mut checks = vec![shared.queue_check()];
        let (mut databases, mut clients, mut edges) = (Vec::new(), Vec::new(), Vec::new());
        for entry in &loaded.targets {
            let built = build_target(entry, &shared, &central).await?;
            router = router.merge(built.router);
            checks.extend(built.checks);
            databases.extend(built.database);
            clients.extend(built.client);
            edges.extend(built.edge);
        }
        if options.runs_everything()
            && let Some(client) = central.client(&loaded.process_live, &loaded.process_platform)?
        {
            client
                .sync_at_start(&loaded.process_platform.config_client)
                .await;
            clients.push(client);
        }
        for client in clients {
            central.follow(client, &shared.queue, &shared.tasks, &shared.shutdown);
        }
        for edge in edges {
            router = edge(router);
        }
        let router = router
            .merge(crate::index_page::router(
                listed_services(&loaded),
                loaded.targets.iter().any(|e| e.info.name == console::NAME),
            ))
            .merge(health_routes(process_health(
                checks,
                &loaded,
                &shared.shutdown,
            )))
            .merge(
                Router::new()
                    .route(METRICS_PATH, get(metrics_handler))
                    .with_state(shared.metrics.clone()),
            );
        let router = finish_router(
            router,
            shared.metrics.http.clone(),
            ResponsePolicy::no_store_under(gateway::routes::no_store_prefixes()),
        );
        Ok(Self {
            listener,
            router,
            shutdown: shared.shutdown,
            tasks: shared.tasks,
            drain: Duration::from_secs(loaded.process_platform.server.shutdown_timeout),
            databases,
            queue: shared.queue,
            failure: shared.failure,
            metrics: shared.metrics,
        })
    }

    /// Every metric sample name the app can expose, with samples yet or not (the manifest
    /// tests check dashboards and alert rules against it).
    pub fn metric_sample_names(&self) -> std::collections::BTreeSet<String> {
        self.metrics.sample_names()
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
