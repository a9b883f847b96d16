//! `vivesphere local-cluster`: the topology of the Kubernetes manifests as processes on one
//! machine. Every service runs as its own `vivesphere serve --target` process — two
//! replicas each of the Authentication service and the Bot Manager, as the HPA's minimum —
//! with the gateway in front, on PostgreSQL (a schema per service) and NATS JetStream:
//! a NATS server given by URL, or (`--nats-nodes 3`) its own nats-servers clustered on
//! loopback, as the staging and production manifests run them, every stream kept on each.
//!
//! The gateway is also what a Kubernetes Service is to the other services: they reach the
//! replicated Authentication service through it. The shared secrets a cluster mounts
//! (service-client secrets, the Authentication service's encryption key, Secure Bot Data's
//! KEK) are files under the data directory, written before any process starts so replicas
//! never race to create them.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use platform::config::{Profile, env_var};
use tokio::process::{Child, Command};

use crate::registry;

/// The services run twice, as the HPA's minimum in a cluster: the one that signs every
/// token, and the one whose workers must never publish twice.
pub const REPLICATED: [&str; 2] = [authentication::NAME, bot_manager::NAME];

/// Each service of the registry (the gateway comes last, apart) and how many processes it
/// runs as; the Authentication service first, since its first replica creates the signing
/// key and the first admin alone.
pub fn topology() -> Vec<(&'static str, usize)> {
    let mut services: Vec<(&'static str, usize)> = registry::targets()
        .iter()
        .map(|target| target.info().name)
        .filter(|name| *name != gateway::NAME)
        .map(|name| (name, if REPLICATED.contains(&name) { 2 } else { 1 }))
        .collect();
    services.sort_by_key(|(name, _)| *name != authentication::NAME);
    services
}

/// The order processes start in, each after what it reads at start: the first
/// Authentication replica alone (it creates the signing key and the first admin), then the
/// Configuration service (every other process reads its central settings from it), then the
/// gateway (through which the rest reach the Authentication service), then all the rest at
/// once. `processes` are (name, target), the first Authentication replica first.
fn start_waves(processes: &[(String, &str)]) -> Vec<Vec<String>> {
    let names_of = |wanted: &dyn Fn(usize, &str) -> bool| -> Vec<String> {
        processes
            .iter()
            .enumerate()
            .filter(|(index, (_, target))| wanted(*index, target))
            .map(|(_, (name, _))| name.clone())
            .collect()
    };
    let early = [configuration::NAME, gateway::NAME];
    vec![
        names_of(&|index, _| index == 0),
        names_of(&|_, target| target == configuration::NAME),
        names_of(&|_, target| target == gateway::NAME),
        names_of(&|index, target| index != 0 && !early.contains(&target)),
    ]
}

/// Settings for a process's environment, by their dotted keys.
#[derive(Debug, Clone, Default)]
struct Settings(Vec<(String, String)>);

impl Settings {
    fn set(&mut self, key: &str, value: impl ToString) {
        self.0.push((env_var(key), value.to_string()));
    }

    fn with(mut self, key: &str, value: impl ToString) -> Self {
        self.set(key, value);
        self
    }
}

/// A process to start: its name (`bot-manager-2`), target and port.
struct Planned {
    name: String,
    target: &'static str,
    port: u16,
}

impl Planned {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A name and a free port for every service process.
fn plan() -> anyhow::Result<Vec<Planned>> {
    let mut planned = Vec::new();
    for (target, replicas) in topology() {
        for replica in 1..=replicas {
            let name = match replicas {
                1 => target.to_string(),
                _ => format!("{target}-{replica}"),
            };
            planned.push(Planned {
                name,
                target,
                port: free_port()?,
            });
        }
    }
    Ok(planned)
}

fn urls_of<'a>(planned: &'a [Planned], target: &'a str) -> impl Iterator<Item = String> + 'a {
    planned
        .iter()
        .filter(move |p| p.target == target)
        .map(Planned::url)
}

/// Where and on what the cluster runs.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The `vivesphere` binary every process runs.
    pub binary: PathBuf,
    pub config_dir: PathBuf,
    /// Secrets, per-process state and logs (`logs/<process>.log`).
    pub data_dir: PathBuf,
    /// The PostgreSQL database every service keeps its schema in.
    pub database_url: String,
    /// The NATS server to use when `nats_nodes` is 0.
    pub nats_url: String,
    /// When above 0, this many private nats-servers (`nats_server`) are started under
    /// `data_dir/nats/`, clustered when more than one, and every stream and durable consumer
    /// keeps that many copies (`queue.stream_replicas`).
    pub nats_nodes: usize,
    pub nats_server: PathBuf,
    /// First token of every subject and stream (tests give each run its own).
    pub queue_namespace: String,
    /// The gateway's port on 127.0.0.1; 0 picks a free one.
    pub gateway_port: u16,
    /// The first admin's password; unset, a random one is written once into
    /// `<data_dir>/initial-admin-password` (owner-only) and kept across restarts.
    pub initial_admin_password: Option<String>,
    /// X's API for the Bot Manager (the fake X in demos and tests).
    pub x_api_url: Option<String>,
    /// More environment for every process (`VIVESPHERE_…` settings).
    pub extra_env: Vec<(String, String)>,
    /// How long each process may take to become ready.
    pub ready_timeout: Duration,
}

/// What the nats-server processes of the cluster are called (`nats-1`, …) as members.
pub const NATS_NODE: &str = "nats";

/// What a member runs.
#[derive(Debug, Clone)]
enum Launch {
    /// `vivesphere serve --target <target>`.
    Service,
    /// `nats-server` with these arguments.
    NatsNode(Vec<String>),
}

/// One running (or stopped) process of the cluster.
pub struct Member {
    /// `authentication-1`, `bot-manager-2`, `gateway`, `nats-1`, …
    pub name: String,
    /// The service's target, or [`NATS_NODE`].
    pub target: &'static str,
    /// `http://127.0.0.1:<port>` (a NATS node's client URL, `nats://127.0.0.1:<port>`).
    pub url: String,
    /// What answers 200 once the process can serve (a NATS node's on its monitoring port).
    pub ready_url: String,
    launch: Launch,
    env: Vec<(String, String)>,
    port: u16,
    child: Option<Child>,
    /// When the running process was started.
    started_at: Option<tokio::time::Instant>,
    /// Exits in a row without a minute of running since, for the restart backoff.
    crashes: u32,
    /// When a process that died on its own is started again.
    restart_at: Option<tokio::time::Instant>,
}

impl Member {
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

/// A process that ran this long before it died starts its restart backoff over.
const STABLE_AFTER: Duration = Duration::from_secs(60);

/// 1 s, 2 s, 4 s, … at most 30 s, by exits in a row.
fn restart_delay(crashes: u32) -> Duration {
    Duration::from_secs((1u64 << crashes.saturating_sub(1).min(5)).min(30))
}

pub struct LocalCluster {
    options: ClusterOptions,
    members: Vec<Member>,
    http: reqwest::Client,
}

/// A free port on 127.0.0.1 (released at once; the process binds it moments later).
/// Never the same port twice in one process: two calls in a row may otherwise get the same
/// one back (it was released), and two members planned on one port would have one of them
/// answering for the other.
pub fn free_port() -> anyhow::Result<u16> {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    for _ in 0..100 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        if GIVEN.lock().unwrap().insert(port) {
            return Ok(port);
        }
    }
    anyhow::bail!("no free port that was not given out already")
}

/// Writes a secret only the owner can read, unless the file exists: keys must outlive a
/// restart, since what they sealed stays in the database.
fn write_secret_once(path: &Path, contents: impl FnOnce() -> String) -> anyhow::Result<()> {
    if path.exists() {
        return Ok(());
    }
    write_private(path, &contents())
}

/// Writes `contents` to `path`, readable by the owner only.
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

impl LocalCluster {
    /// Writes the shared secrets, starts every process and waits until each is ready. On any
    /// failure everything started so far is stopped.
    pub async fn start(options: ClusterOptions) -> anyhow::Result<Self> {
        let mut cluster = Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()?,
            members: Vec::new(),
            options,
        };
        match cluster.start_all().await {
            Ok(()) => Ok(cluster),
            Err(err) => {
                cluster.stop().await;
                Err(err)
            }
        }
    }

    async fn start_all(&mut self) -> anyhow::Result<()> {
        let secrets = self.prepare_data_dir()?;
        let queue_url = self.plan_nats_nodes()?;
        let gateway_port = match self.options.gateway_port {
            0 => free_port()?,
            port => port,
        };
        let planned = plan()?;
        let common = self.common_settings(&secrets, &planned, &queue_url);
        // The replicated Authentication service is reached through the gateway, as a
        // Kubernetes Service would spread the calls; it itself answers its own. The
        // Configuration service starts before the gateway, so it asks the replicas in turn.
        let through_gateway = common.clone().with(
            "auth.authentication_url",
            format!("http://127.0.0.1:{gateway_port}"),
        );
        let configuration_settings = common
            .clone()
            .with("auth.authentication_url", authentication_replicas(&planned));
        for (index, process) in planned.iter().enumerate() {
            let settings = match process.target {
                // The first process of all: nothing can answer its first read of the central
                // settings, so it starts on its saved copy at once and catches up.
                authentication::NAME if index == 0 => {
                    common.clone().with("config_client.startup_timeout_ms", 0)
                }
                authentication::NAME => common.clone(),
                configuration::NAME => configuration_settings.clone(),
                // The console calls the public API as a browser's client would: at the edge.
                console::NAME => through_gateway.clone().with(
                    "console.api_url",
                    format!("http://127.0.0.1:{gateway_port}"),
                ),
                _ => through_gateway.clone(),
            };
            let member = self.member(process.name.clone(), process.target, process.port, settings);
            self.members.push(member);
        }
        let gateway = self.member(
            gateway::NAME.to_string(),
            gateway::NAME,
            gateway_port,
            gateway_settings(common, &planned),
        );
        self.members.push(gateway);
        self.start_in_order().await
    }

    /// The private NATS nodes as members, each with its client, cluster and monitoring port
    /// and its own store, routed to every other; the queue URL the services are given (every
    /// node's, so a client starts on whichever answers), or `nats_url` without nodes.
    fn plan_nats_nodes(&mut self) -> anyhow::Result<String> {
        let nodes = self.options.nats_nodes;
        if nodes == 0 {
            return Ok(self.options.nats_url.clone());
        }
        anyhow::ensure!(
            nodes <= 5,
            "at most 5 NATS nodes (JetStream keeps at most 5 copies)"
        );
        let ports: Vec<(u16, u16, u16)> = (0..nodes)
            .map(|_| Ok((free_port()?, free_port()?, free_port()?)))
            .collect::<anyhow::Result<_>>()?;
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, cluster, _)| format!("nats://127.0.0.1:{cluster}"))
            .collect();
        for (index, (client, cluster, monitor)) in ports.iter().enumerate() {
            let name = format!("{NATS_NODE}-{}", index + 1);
            let store = self.options.data_dir.join("nats").join(&name);
            std::fs::create_dir_all(&store)
                .with_context(|| format!("cannot create {}", store.display()))?;
            let mut args: Vec<String> = [
                "--server_name",
                &name,
                "-a",
                "127.0.0.1",
                "-p",
                &client.to_string(),
                "-m",
                &monitor.to_string(),
                "-js",
                "-sd",
                &store.display().to_string(),
            ]
            .map(str::to_string)
            .into();
            if nodes > 1 {
                args.extend([
                    "--cluster_name".to_string(),
                    "vivesphere".into(),
                    "--cluster".into(),
                    format!("nats://127.0.0.1:{cluster}"),
                    "--routes".into(),
                    routes.join(","),
                ]);
            }
            self.members.push(Member {
                url: format!("nats://127.0.0.1:{client}"),
                // Without a JetStream meta leader (a cluster still forming) this is 503.
                ready_url: format!("http://127.0.0.1:{monitor}/healthz"),
                launch: Launch::NatsNode(args),
                // A nats-server reads no VIVESPHERE_ settings.
                env: Vec::new(),
                ..self.member(name, NATS_NODE, *client, Settings::default())
            });
        }
        Ok(self.queue_url())
    }

    /// The queue URL the services are given: every private NATS node's (so a client starts
    /// on whichever answers), or the NATS server named by URL when there are none.
    pub fn queue_url(&self) -> String {
        let nodes: Vec<&str> = self
            .members
            .iter()
            .filter(|m| m.target == NATS_NODE)
            .map(|m| m.url.as_str())
            .collect();
        if nodes.is_empty() {
            self.options.nats_url.clone()
        } else {
            nodes.join(",")
        }
    }

    /// The private NATS nodes' names (none when the cluster uses a NATS server by URL).
    pub fn nats_nodes(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| m.target == NATS_NODE)
            .map(|m| m.name.clone())
            .collect()
    }

    /// What every process is told: the database, the queue, the shared secrets, where the
    /// Configuration service and Secure Bot Data answer, and the options' extras.
    fn common_settings(
        &self,
        secrets: &SharedSecrets,
        planned: &[Planned],
        queue_url: &str,
    ) -> Settings {
        let first = |target| {
            urls_of(planned, target)
                .next()
                .expect("every target is planned")
        };
        let mut settings = Settings(vec![("ENV".into(), Profile::Development.as_str().into())]);
        settings.set("database.url", &self.options.database_url);
        settings.set("queue.kind", "nats");
        settings.set("queue.url", queue_url);
        settings.set("queue.stream_replicas", self.options.nats_nodes.max(1));
        settings.set("queue.namespace", &self.options.queue_namespace);
        settings.set(
            "auth.service_secrets_dir",
            secrets.service_clients.display(),
        );
        settings.set("config_client.url", first(configuration::NAME));
        settings.set(
            "authentication.encryption_key_file",
            secrets.encryption_key.display(),
        );
        settings.set(
            "logging.webhooks.encryption_key_file",
            secrets.webhook_key.display(),
        );
        settings.set("secure_bot_data.kek_dir", secrets.kek_dir.display());
        settings.set(
            "bot_manager.secure_bot_data_url",
            first(secure_bot_data::NAME),
        );
        settings.set(
            "authentication.initial_admin_password_file",
            secrets.admin_password.display(),
        );
        if let Some(url) = &self.options.x_api_url {
            settings.set("bot_manager.x_api.base_url", url);
        }
        // The Authentication replicas share this machine's cores: one hash per core in all,
        // not per replica (more at once only thrash the caches).
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let authentication_replicas = urls_of(planned, authentication::NAME).count();
        settings.set(
            "authentication.hashing_threads",
            (cores / authentication_replicas.max(1)).max(1),
        );
        settings.0.extend(self.options.extra_env.iter().cloned());
        settings
    }

    /// The NATS nodes first, then each wave of [`start_waves`], each started and ready
    /// before the next.
    async fn start_in_order(&mut self) -> anyhow::Result<()> {
        let nats = self.nats_nodes();
        let processes: Vec<(String, &str)> = self
            .members
            .iter()
            .filter(|m| m.target != NATS_NODE)
            .map(|m| (m.name.clone(), m.target))
            .collect();
        for wave in std::iter::once(nats).chain(start_waves(&processes)) {
            for name in &wave {
                self.spawn(name)?;
            }
            self.wait_ready(&wave).await?;
        }
        Ok(())
    }

    fn member(
        &self,
        name: String,
        target: &'static str,
        port: u16,
        mut settings: Settings,
    ) -> Member {
        let state = self.options.data_dir.join("state").join(&name);
        settings.set("telemetry.spill_dir", state.join("spill").display());
        settings.set(
            "config_client.cache_dir",
            state.join("config-cache").display(),
        );
        Member {
            url: format!("http://127.0.0.1:{port}"),
            ready_url: format!(
                "http://127.0.0.1:{port}{}",
                platform::http::health::READY_PATH
            ),
            launch: Launch::Service,
            name,
            target,
            env: settings.0,
            port,
            child: None,
            started_at: None,
            crashes: 0,
            restart_at: None,
        }
    }

    /// The files a cluster mounts from Secrets, written once.
    fn prepare_data_dir(&self) -> anyhow::Result<SharedSecrets> {
        let dir = &self.options.data_dir;
        let secrets = SharedSecrets {
            service_clients: dir.join("service-clients"),
            encryption_key: dir.join("authentication.key"),
            webhook_key: dir.join("webhooks.key"),
            kek_dir: dir.join("botdata-kek"),
            admin_password: self.admin_password_file(),
        };
        for folder in [dir.join("logs"), secrets.kek_dir.clone()] {
            std::fs::create_dir_all(&folder)
                .with_context(|| format!("cannot create {}", folder.display()))?;
        }
        let clients_dir = secrets.service_clients.display().to_string();
        for client in authentication::Settings::default().service_clients {
            platform::auth::service_secret(&clients_dir, &client.client_id, Profile::Development)?;
        }
        write_secret_once(&secrets.encryption_key, platform::sealing::new_key)?;
        write_secret_once(&secrets.webhook_key, platform::sealing::new_key)?;
        write_secret_once(&secrets.kek_dir.join("1"), platform::sealing::new_key)?;
        match &self.options.initial_admin_password {
            Some(password) => write_private(&secrets.admin_password, password)?,
            None => write_secret_once(
                &secrets.admin_password,
                authentication::crypto::random_token,
            )?,
        }
        Ok(secrets)
    }

    /// Where the first admin's password is (readable by the owner only): what the option
    /// gave, or a random one written on the first start.
    pub fn admin_password_file(&self) -> PathBuf {
        self.options.data_dir.join("initial-admin-password")
    }

    pub fn gateway_url(&self) -> &str {
        &self.member_named(gateway::NAME).expect("the gateway").url
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn member_named(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    /// The log file of a process.
    pub fn log_of(&self, name: &str) -> PathBuf {
        self.options
            .data_dir
            .join("logs")
            .join(format!("{name}.log"))
    }

    /// Starts (or restarts) the named process on its port with its environment.
    pub fn spawn(&mut self, name: &str) -> anyhow::Result<()> {
        let log_path = self.log_of(name);
        let options = self.options.clone();
        let member = self
            .members
            .iter_mut()
            .find(|m| m.name == name)
            .with_context(|| format!("no process {name}"))?;
        anyhow::ensure!(member.child.is_none(), "{name} is running already");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let mut command = match &member.launch {
            Launch::Service => {
                let mut command = Command::new(&options.binary);
                command
                    .arg("--config-dir")
                    .arg(&options.config_dir)
                    .args(["serve", "--target", member.target, "--listen"])
                    .arg(format!("127.0.0.1:{}", member.port));
                command
            }
            Launch::NatsNode(args) => {
                let mut command = Command::new(&options.nats_server);
                command.args(args);
                command
            }
        };
        let child = command
            .envs(member.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        member.child = Some(child);
        member.started_at = Some(tokio::time::Instant::now());
        member.restart_at = None;
        Ok(())
    }

    /// What Kubernetes does for a pod's container: a process that died on its own (not one
    /// stopped with [`LocalCluster::kill`] or [`LocalCluster::stop`]) is started again, after
    /// 1 s, then 2, 4, … up to 30 s while it keeps dying within a minute of its start. Says
    /// what it saw and did, one line each.
    pub fn supervise_once(&mut self) -> anyhow::Result<Vec<String>> {
        let now = tokio::time::Instant::now();
        let mut said = Vec::new();
        let mut due = Vec::new();
        for member in &mut self.members {
            if let Some(child) = member.child.as_mut() {
                let Some(status) = child.try_wait()? else {
                    continue;
                };
                member.child = None;
                let ran_long = member
                    .started_at
                    .is_some_and(|at| now.duration_since(at) >= STABLE_AFTER);
                member.crashes = if ran_long { 1 } else { member.crashes + 1 };
                let delay = restart_delay(member.crashes);
                member.restart_at = Some(now + delay);
                said.push(format!(
                    "{} exited ({status}); restarting it in {} s (exit {} in a row)",
                    member.name,
                    delay.as_secs(),
                    member.crashes
                ));
            } else if member.restart_at.is_some_and(|at| now >= at) {
                due.push(member.name.clone());
            }
        }
        for name in due {
            self.spawn(&name)?;
            said.push(format!("{name} restarted"));
        }
        Ok(said)
    }

    /// Waits until every named process answers `/health/ready` with 200.
    pub async fn wait_ready(&mut self, names: &[String]) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + self.options.ready_timeout;
        for name in names {
            loop {
                let log = self.log_of(name);
                let member = self
                    .members
                    .iter_mut()
                    .find(|m| &m.name == name)
                    .with_context(|| format!("no process {name}"))?;
                if let Some(child) = member.child.as_mut()
                    && let Some(status) = child.try_wait()?
                {
                    member.child = None;
                    bail!("{name} exited ({status}) while starting:\n{}", tail(&log));
                }
                let ready = self
                    .http
                    .get(&member.ready_url)
                    .send()
                    .await
                    .is_ok_and(|response| response.status().is_success());
                if ready {
                    break;
                }
                if tokio::time::Instant::now() > deadline {
                    bail!("{name} was not ready in time:\n{}", tail(&log));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// SIGKILL: the process dies at once, mid-request, as in a node failure.
    pub async fn kill(&mut self, name: &str) -> anyhow::Result<()> {
        let member = self
            .members
            .iter_mut()
            .find(|m| m.name == name)
            .with_context(|| format!("no process {name}"))?;
        member.restart_at = None;
        if let Some(mut child) = member.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// SIGTERM to every service (the gateway first), a drain of up to
    /// `server.shutdown_timeout` plus a margin each, then SIGKILL for any still running; the
    /// private NATS nodes last, once nothing needs them to settle its work. Leaves nothing
    /// running.
    pub async fn stop(&mut self) {
        let services: Vec<usize> = (0..self.members.len())
            .filter(|&i| self.members[i].target != NATS_NODE)
            .collect();
        let nats: Vec<usize> = (0..self.members.len())
            .filter(|&i| self.members[i].target == NATS_NODE)
            .collect();
        for mut group in [services, nats] {
            group.sort_by_key(|&i| self.members[i].target != gateway::NAME);
            for &i in &group {
                if let Some(pid) = self.members[i].pid() {
                    // SAFETY: kill(2) with a pid this process spawned and still owns.
                    unsafe {
                        libc::kill(pid as libc::pid_t, libc::SIGTERM);
                    }
                }
            }
            for &i in &group {
                let member = &mut self.members[i];
                member.restart_at = None;
                if let Some(mut child) = member.child.take() {
                    let exited = tokio::time::timeout(Duration::from_secs(40), child.wait()).await;
                    if exited.is_err() {
                        tracing::warn!(process = %member.name, "did not stop after SIGTERM; killing it");
                        let _ = child.kill().await;
                    }
                }
            }
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for member in &mut self.members {
            if let Some(child) = member.child.as_mut() {
                let _ = child.start_kill();
            }
        }
    }
}

/// Every Authentication replica's URL, comma-separated: whoever reads keys or asks for a
/// service token goes to whichever answers (`auth.authentication_url`).
fn authentication_replicas(planned: &[Planned]) -> String {
    urls_of(planned, authentication::NAME)
        .collect::<Vec<_>>()
        .join(",")
}

/// The gateway's: every service's replicas as its upstreams, and the keys read from the
/// Authentication replicas directly (it cannot ask itself while it starts), any that answers.
fn gateway_settings(mut settings: Settings, planned: &[Planned]) -> Settings {
    settings.set("auth.authentication_url", authentication_replicas(planned));
    for (target, _) in topology() {
        let urls: Vec<String> = urls_of(planned, target).collect();
        let key = format!("gateway.upstreams.{}", target.replace('-', "_"));
        settings.set(&key, format!("[{}]", urls.join(", ")));
    }
    settings
}

struct SharedSecrets {
    service_clients: PathBuf,
    encryption_key: PathBuf,
    /// Seals the Logging service's webhook signing secrets.
    webhook_key: PathBuf,
    kek_dir: PathBuf,
    admin_password: PathBuf,
}

/// The last lines of a log, for an error message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_and_the_gateway_start_before_the_services_that_read_them() {
        let processes: Vec<(String, &str)> = plan()
            .unwrap()
            .into_iter()
            .map(|p| (p.name, p.target))
            .chain([(gateway::NAME.to_string(), gateway::NAME)])
            .collect();
        let waves = start_waves(&processes);
        assert_eq!(waves[0], vec!["authentication-1"]);
        assert_eq!(waves[1], vec![configuration::NAME]);
        assert_eq!(waves[2], vec![gateway::NAME]);
        let mut rest = waves[3].clone();
        rest.sort();
        assert_eq!(
            rest,
            vec![
                "authentication-2",
                "bot-manager-1",
                "bot-manager-2",
                "console",
                "logging",
                "secure-bot-data"
            ]
        );
    }

    #[test]
    fn the_topology_is_every_service_of_the_registry_authentication_first() {
        let topology = topology();
        assert_eq!(topology[0], (authentication::NAME, 2));
        let services: Vec<&str> = topology.iter().map(|(name, _)| *name).collect();
        for target in registry::targets() {
            let name = target.info().name;
            assert_eq!(services.contains(&name), name != gateway::NAME, "{name}");
        }
        assert!(topology.contains(&(bot_manager::NAME, 2)));
    }

    /// Every key the launcher sets is a setting of the typed configuration, so a renamed
    /// setting fails here rather than being silently ignored by a process.
    fn unstarted(data_dir: &Path, initial_admin_password: Option<&str>) -> LocalCluster {
        // The HTTP client needs TLS's crypto provider, whichever test runs first.
        platform::install_crypto_provider();
        LocalCluster {
            options: ClusterOptions {
                binary: PathBuf::from("vivesphere"),
                config_dir: PathBuf::from("config"),
                data_dir: data_dir.to_path_buf(),
                database_url: "postgres://db/x".into(),
                nats_url: "nats://n:4222".into(),
                nats_nodes: 0,
                nats_server: PathBuf::from("nats-server"),
                queue_namespace: "t".into(),
                gateway_port: 0,
                initial_admin_password: initial_admin_password.map(str::to_string),
                x_api_url: Some("http://x".into()),
                extra_env: Vec::new(),
                ready_timeout: Duration::from_secs(1),
            },
            members: Vec::new(),
            http: reqwest::Client::new(),
        }
    }

    #[test]
    fn restarts_back_off_from_one_second_to_thirty() {
        let delays: Vec<u64> = (1..=8).map(|n| restart_delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
    }

    /// A process that dies on its own is started again after its backoff; one stopped on
    /// purpose is not. The "binary" here is a script that exits at once.
    #[tokio::test(start_paused = true)]
    async fn a_process_that_dies_is_restarted_with_backoff_and_a_killed_one_is_not() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("dies");
        std::fs::write(&script, "#!/bin/sh\nexit 3\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        let mut cluster = unstarted(dir.path(), None);
        cluster.options.binary = script;
        for name in ["crashing", "stopped"] {
            let member = cluster.member(name.into(), "logging", 1, Settings::default());
            cluster.members.push(member);
            cluster.spawn(name).unwrap();
        }
        cluster.kill("stopped").await.unwrap();
        let said = exits_seen(&mut cluster).await;
        assert!(
            said[0].starts_with("crashing exited (exit status: 3)"),
            "{said:?}"
        );
        assert!(said[0].contains("in 1 s (exit 1 in a row)"), "{said:?}");
        assert!(
            cluster.supervise_once().unwrap().is_empty(),
            "not before its time"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(cluster.supervise_once().unwrap(), ["crashing restarted"]);
        let said = exits_seen(&mut cluster).await;
        assert!(said[0].contains("in 2 s (exit 2 in a row)"), "{said:?}");
        assert!(!cluster.member_named("stopped").unwrap().is_running());
        assert!(
            cluster
                .member_named("stopped")
                .unwrap()
                .restart_at
                .is_none()
        );
    }

    /// Supervises until an exit is seen (the child exits on its own time, not the paused
    /// clock's).
    async fn exits_seen(cluster: &mut LocalCluster) -> Vec<String> {
        for _ in 0..500 {
            let said = cluster.supervise_once().unwrap();
            if !said.is_empty() {
                return said;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("no exit seen");
    }

    #[test]
    fn without_a_password_the_first_admins_is_written_once_for_the_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cluster = unstarted(dir.path(), None);
        let secrets = cluster.prepare_data_dir().unwrap();
        assert_eq!(secrets.admin_password, cluster.admin_password_file());
        let written = std::fs::read_to_string(&secrets.admin_password).unwrap();
        assert!(written.len() >= 32, "{written:?}");
        let mode = std::fs::metadata(&secrets.admin_password)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // A restart keeps it: the admin it made is still the admin.
        cluster.prepare_data_dir().unwrap();
        let again = std::fs::read_to_string(&secrets.admin_password).unwrap();
        assert_eq!(again, written);
        // A password given is the one written.
        unstarted(dir.path(), Some("given-passphrase-1"))
            .prepare_data_dir()
            .unwrap();
        let given = std::fs::read_to_string(&secrets.admin_password).unwrap();
        assert_eq!(given, "given-passphrase-1");
    }

    #[test]
    fn every_setting_the_launcher_writes_exists() {
        platform::install_crypto_provider();
        let cluster = unstarted(Path::new("/tmp/unused"), Some("p"));
        let secrets = SharedSecrets {
            service_clients: PathBuf::from("/s"),
            encryption_key: PathBuf::from("/k"),
            webhook_key: PathBuf::from("/w"),
            kek_dir: PathBuf::from("/kek"),
            admin_password: PathBuf::from("/p"),
        };
        let planned = plan().unwrap();
        let settings = gateway_settings(
            cluster.common_settings(&secrets, &planned, "nats://n:4222"),
            &planned,
        );
        let member = cluster.member("x".into(), gateway::NAME, 1, settings);
        let defaults = registry::config_defaults();
        for (var, _) in member.env.iter().filter(|(var, _)| var != "ENV") {
            let path: Vec<String> = var
                .trim_start_matches("VIVESPHERE_")
                .split("__")
                .map(str::to_ascii_lowercase)
                .collect();
            let mut node = &defaults;
            for (i, part) in path.iter().enumerate() {
                let last = i == path.len() - 1;
                let part = match last {
                    true => part.trim_end_matches("_file"),
                    false => part,
                };
                node = match node.get(part) {
                    Some(next) => next,
                    // A map of names (the gateway's upstreams) takes any key.
                    None if node.as_object().is_some_and(|m| m.is_empty()) => break,
                    None => panic!("{var} sets no known setting"),
                };
            }
        }
    }
}
