//! `vivesphere local-cluster`: the topology of the Kubernetes manifests as processes on one
//! machine. Every service runs as its own `vivesphere serve --target` process — two
//! replicas each of the Authentication service and the Bot Manager, as the HPA's minimum —
//! with the gateway in front, on PostgreSQL (a schema per service) and NATS JetStream.
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
use platform::config::Profile;
use tokio::process::{Child, Command};

/// How many processes of each target, in start order after the first Authentication
/// replica (which creates the signing key and the first admin alone).
pub const TOPOLOGY: [(&str, usize); 5] = [
    (authentication::NAME, 2),
    (configuration::NAME, 1),
    (log_service::NAME, 1),
    (secure_bot_data::NAME, 1),
    (bot_manager::NAME, 2),
];

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
    pub nats_url: String,
    /// First token of every subject and stream (tests give each run its own).
    pub queue_namespace: String,
    /// The gateway's port on 127.0.0.1; 0 picks a free one.
    pub gateway_port: u16,
    /// The first admin's password; unset, the first start prints a one-time one into the
    /// first Authentication replica's log.
    pub initial_admin_password: Option<String>,
    /// X's API for the Bot Manager (the fake X in demos and tests).
    pub x_api_url: Option<String>,
    /// More environment for every process (`VIVESPHERE_…` settings).
    pub extra_env: Vec<(String, String)>,
    /// How long each process may take to become ready.
    pub ready_timeout: Duration,
}

/// One running (or stopped) process of the cluster.
pub struct Member {
    /// `authentication-1`, `bot-manager-2`, `gateway`, …
    pub name: String,
    pub target: &'static str,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    env: Vec<(String, String)>,
    port: u16,
    child: Option<Child>,
}

impl Member {
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

pub struct LocalCluster {
    options: ClusterOptions,
    members: Vec<Member>,
    http: reqwest::Client,
}

/// A free port on 127.0.0.1 (released at once; the process binds it moments later).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
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
        let gateway_port = match self.options.gateway_port {
            0 => free_port()?,
            port => port,
        };
        let gateway_url = format!("http://127.0.0.1:{gateway_port}");
        let mut planned: Vec<(String, &'static str, u16)> = Vec::new();
        for (target, replicas) in TOPOLOGY {
            for replica in 1..=replicas {
                let name = if replicas == 1 {
                    target.to_string()
                } else {
                    format!("{target}-{replica}")
                };
                planned.push((name, target, free_port()?));
            }
        }
        let url_of = |target: &str| -> Vec<String> {
            planned
                .iter()
                .filter(|(_, t, _)| *t == target)
                .map(|(_, _, port)| format!("http://127.0.0.1:{port}"))
                .collect()
        };
        let single = |target: &str| url_of(target).remove(0);
        let mut common = vec![
            ("ENV".to_string(), "development".to_string()),
            (
                "VIVESPHERE_DATABASE__URL".to_string(),
                self.options.database_url.clone(),
            ),
            ("VIVESPHERE_QUEUE__KIND".to_string(), "nats".to_string()),
            (
                "VIVESPHERE_QUEUE__URL".to_string(),
                self.options.nats_url.clone(),
            ),
            (
                "VIVESPHERE_QUEUE__NAMESPACE".to_string(),
                self.options.queue_namespace.clone(),
            ),
            (
                "VIVESPHERE_AUTH__SERVICE_SECRETS_DIR".to_string(),
                secrets.service_clients.display().to_string(),
            ),
            (
                "VIVESPHERE_CONFIG_CLIENT__URL".to_string(),
                single(configuration::NAME),
            ),
            (
                "VIVESPHERE_AUTHENTICATION__ENCRYPTION_KEY_FILE".to_string(),
                secrets.encryption_key.display().to_string(),
            ),
            (
                "VIVESPHERE_SECURE_BOT_DATA__KEK_DIR".to_string(),
                secrets.kek_dir.display().to_string(),
            ),
            (
                "VIVESPHERE_BOT_MANAGER__SECURE_BOT_DATA_URL".to_string(),
                single(secure_bot_data::NAME),
            ),
        ];
        if let Some(file) = &secrets.admin_password {
            common.push((
                "VIVESPHERE_AUTHENTICATION__INITIAL_ADMIN_PASSWORD_FILE".to_string(),
                file.display().to_string(),
            ));
        }
        if let Some(url) = &self.options.x_api_url {
            common.push((
                "VIVESPHERE_BOT_MANAGER__X_API__BASE_URL".to_string(),
                url.clone(),
            ));
        }
        common.extend(self.options.extra_env.iter().cloned());

        for (name, target, port) in &planned {
            let mut env = common.clone();
            // The replicated Authentication service is reached through the gateway, as a
            // Kubernetes Service would spread the calls; it itself answers its own.
            if *target != authentication::NAME {
                env.push((
                    "VIVESPHERE_AUTH__AUTHENTICATION_URL".to_string(),
                    gateway_url.clone(),
                ));
            }
            self.members
                .push(self.member(name.clone(), target, *port, env));
        }
        let mut gateway_env = common.clone();
        // The gateway reads keys from a replica directly: it cannot ask itself while it starts.
        gateway_env.push((
            "VIVESPHERE_AUTH__AUTHENTICATION_URL".to_string(),
            single(authentication::NAME),
        ));
        for (target, _) in TOPOLOGY {
            gateway_env.push((
                format!(
                    "VIVESPHERE_GATEWAY__UPSTREAMS__{}",
                    target.replace('-', "_").to_uppercase()
                ),
                format!("[{}]", url_of(target).join(", ")),
            ));
        }
        self.members.push(self.member(
            gateway::NAME.to_string(),
            gateway::NAME,
            gateway_port,
            gateway_env,
        ));

        // The first Authentication replica alone, then every other service, then the gateway.
        let first = self.members[0].name.clone();
        self.spawn(&first)?;
        self.wait_ready(&[first]).await?;
        let services: Vec<String> = self.members[1..self.members.len() - 1]
            .iter()
            .map(|m| m.name.clone())
            .collect();
        for name in &services {
            self.spawn(name)?;
        }
        self.wait_ready(&services).await?;
        let gateway = gateway::NAME.to_string();
        self.spawn(&gateway)?;
        self.wait_ready(&[gateway]).await
    }

    fn member(
        &self,
        name: String,
        target: &'static str,
        port: u16,
        env: Vec<(String, String)>,
    ) -> Member {
        let state = self.options.data_dir.join("state").join(&name);
        let mut env = env;
        env.extend([
            (
                "VIVESPHERE_TELEMETRY__SPILL_DIR".to_string(),
                state.join("spill").display().to_string(),
            ),
            (
                "VIVESPHERE_CONFIG_CLIENT__CACHE_DIR".to_string(),
                state.join("config-cache").display().to_string(),
            ),
        ]);
        Member {
            url: format!("http://127.0.0.1:{port}"),
            name,
            target,
            env,
            port,
            child: None,
        }
    }

    /// The files a cluster mounts from Secrets, written once.
    fn prepare_data_dir(&self) -> anyhow::Result<SharedSecrets> {
        let dir = &self.options.data_dir;
        let secrets = SharedSecrets {
            service_clients: dir.join("service-clients"),
            encryption_key: dir.join("authentication.key"),
            kek_dir: dir.join("botdata-kek"),
            admin_password: self
                .options
                .initial_admin_password
                .as_ref()
                .map(|_| dir.join("initial-admin-password")),
        };
        for folder in [dir.join("logs"), secrets.kek_dir.clone()] {
            std::fs::create_dir_all(&folder)
                .with_context(|| format!("cannot create {}", folder.display()))?;
        }
        let clients_dir = secrets.service_clients.display().to_string();
        for client in authentication::Settings::default().service_clients {
            platform::auth::service_secret(&clients_dir, &client.client_id, Profile::Development)?;
        }
        write_secret_once(
            &secrets.encryption_key,
            authentication::crypto::new_encryption_key,
        )?;
        write_secret_once(
            &secrets.kek_dir.join("1"),
            authentication::crypto::new_encryption_key,
        )?;
        if let (Some(path), Some(password)) = (
            &secrets.admin_password,
            &self.options.initial_admin_password,
        ) {
            write_private(path, password)?;
        }
        Ok(secrets)
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
        let child = Command::new(&options.binary)
            .arg("--config-dir")
            .arg(&options.config_dir)
            .args(["serve", "--target", member.target, "--listen"])
            .arg(format!("127.0.0.1:{}", member.port))
            .envs(member.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        member.child = Some(child);
        Ok(())
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
                    .get(format!(
                        "{}{}",
                        member.url,
                        platform::http::health::READY_PATH
                    ))
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
        if let Some(mut child) = member.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// SIGTERM to every process (the gateway first), a drain of up to `server.shutdown_timeout`
    /// plus a margin each, then SIGKILL for any still running. Leaves nothing running.
    pub async fn stop(&mut self) {
        let mut order: Vec<usize> = (0..self.members.len()).collect();
        order.sort_by_key(|&i| self.members[i].target != gateway::NAME);
        for &i in &order {
            if let Some(pid) = self.members[i].pid() {
                // SAFETY: kill(2) with a pid this process spawned and still owns.
                unsafe {
                    libc::kill(pid as libc::pid_t, libc::SIGTERM);
                }
            }
        }
        for member in &mut self.members {
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

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for member in &mut self.members {
            if let Some(child) = member.child.as_mut() {
                let _ = child.start_kill();
            }
        }
    }
}

struct SharedSecrets {
    service_clients: PathBuf,
    encryption_key: PathBuf,
    kek_dir: PathBuf,
    admin_password: Option<PathBuf>,
}

/// The last lines of a log, for an error message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
