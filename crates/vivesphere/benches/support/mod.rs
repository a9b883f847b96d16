//! What the HTTP benchmarks share: the release binary started on a free port with its own
//! data directory (killed when dropped), readiness, the admin's token, percentiles.

#![allow(dead_code)] // each benchmark uses its own subset

use std::time::{Duration, Instant};

use serde_json::json;

pub const CONFIG_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config");
pub const ADMIN_PASSWORD: &str = "benchmark-operator-passphrase-1";

/// Every path the binary writes to, inside `dir`: with the process also started in `dir`,
/// a benchmark writes nothing into the source tree.
pub fn private_data_env(dir: &std::path::Path) -> Vec<(&'static str, std::path::PathBuf)> {
    vec![
        (
            "VIVESPHERE_CONFIG_DIR",
            std::path::PathBuf::from(CONFIG_DIR),
        ),
        ("VIVESPHERE_DATABASE__PATH", dir.join("{service}.db")),
        ("VIVESPHERE_QUEUE__PATH", dir.join("queue.db")),
        (
            "VIVESPHERE_AUTHENTICATION__DEVELOPMENT_KEY_PATH",
            dir.join("authentication.key"),
        ),
        (
            "VIVESPHERE_LOGGING__WEBHOOKS__DEVELOPMENT_KEY_PATH",
            dir.join("logging-webhooks.key"),
        ),
        ("VIVESPHERE_SECURE_BOT_DATA__KEK_DIR", dir.join("kek")),
        ("VIVESPHERE_TELEMETRY__SPILL_DIR", dir.join("spill")),
        (
            "VIVESPHERE_CONFIG_CLIENT__CACHE_DIR",
            dir.join("config-cache"),
        ),
        (
            "VIVESPHERE_AUTH__SERVICE_SECRETS_DIR",
            dir.join("service-clients"),
        ),
    ]
}

/// The release binary serving every target; killed when dropped, however the bench ends.
pub struct Server {
    child: std::process::Child,
    pub base: String,
    _data: tempfile::TempDir,
}

impl Server {
    /// `vivesphere serve` on a free port, with `extra_env` on top of a private data directory.
    pub fn start(extra_env: &[(String, String)]) -> Self {
        Self::start_target(None, extra_env)
    }

    /// `vivesphere serve --target <target>` (every target when `None`).
    pub fn start_target(target: Option<&str>, extra_env: &[(String, String)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_vivesphere"));
        command
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(
                target
                    .map(|target| ["--target", target])
                    .into_iter()
                    .flatten(),
            )
            .envs(private_data_env(dir.path()))
            .current_dir(dir.path())
            .env(
                "VIVESPHERE_AUTHENTICATION__INITIAL_ADMIN_PASSWORD",
                ADMIN_PASSWORD,
            )
            .env("VIVESPHERE_TELEMETRY__LOG_LEVEL", "warn")
            .stdout(match std::env::var("BENCH_SERVER_LOG") {
                // The server's log lines, to see why a figure is what it is.
                Ok(path) => std::fs::File::create(path).unwrap().into(),
                Err(_) => std::process::Stdio::null(),
            });
        for (key, value) in extra_env {
            command.env(key, value);
        }
        Self {
            child: command.spawn().unwrap(),
            base: format!("http://127.0.0.1:{port}"),
            _data: dir,
        }
    }

    /// The server's process id (for its memory and open files).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its private data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self._data.path()
    }

    /// Waits until `/health/ready` answers 200.
    pub async fn wait_ready(&self, client: &reqwest::Client) {
        let started = Instant::now();
        while client
            .get(format!("{}/health/ready", self.base))
            .send()
            .await
            .map(|r| r.status().is_success())
            .ok()
            != Some(true)
        {
            assert!(started.elapsed() < Duration::from_secs(30), "never ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for readiness, then logs the admin in and returns the access token.
    pub async fn ready_admin_token(&self, client: &reqwest::Client) -> String {
        self.wait_ready(client).await;
        login(client, &self.base, "admin", ADMIN_PASSWORD).await
    }
}

/// Logs `username` in at `base` (a server or a gateway) and returns the access token.
pub async fn login(client: &reqwest::Client, base: &str, username: &str, password: &str) -> String {
    let body: serde_json::Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["token"]
        .as_str()
        .unwrap_or_else(|| panic!("login of {username}: {body}"))
        .to_string()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A number from the environment variable `name` (a bench's knob), else `default`.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `p` quantile of sorted latencies.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Environment variables for a [`Server`].
pub type ServerEnv = Vec<(String, String)>;

/// The cluster-shaped backends for a second run: a fresh PostgreSQL database and, when
/// `VIVESPHERE_TEST_NATS_URL` is set, a private NATS namespace. Returns the database (keep it
/// until the run ends: dropping it drops the database), the environment for the server, and
/// a label; `None` (after saying so) without `VIVESPHERE_TEST_DATABASE_URL`.
pub fn cluster_backends() -> Option<(platform::testing::TestPostgres, ServerEnv, &'static str)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(postgres) = runtime.block_on(platform::testing::TestPostgres::create()) else {
        println!("postgres: skipped (set VIVESPHERE_TEST_DATABASE_URL)");
        return None;
    };
    let mut env = vec![(
        "VIVESPHERE_DATABASE__URL".to_string(),
        postgres.url().to_string(),
    )];
    if let Ok(nats) = std::env::var("VIVESPHERE_TEST_NATS_URL") {
        env.push(("VIVESPHERE_QUEUE__KIND".into(), "nats".into()));
        env.push(("VIVESPHERE_QUEUE__URL".into(), nats));
        env.push((
            "VIVESPHERE_QUEUE__NAMESPACE".into(),
            platform::testing::unique_name(),
        ));
    }
    let label = if env.len() > 1 {
        "postgres + nats"
    } else {
        "postgres + embedded queue"
    };
    Some((postgres, env, label))
}

/// Runs `run` on SQLite with the embedded queue, then on PostgreSQL with NATS JetStream when
/// the test servers are set; `<only_var>=sqlite|postgres` runs one of them.
pub fn on_each_backend(only_var: &str, run: impl Fn(&str, &[(String, String)])) {
    let only = std::env::var(only_var).unwrap_or_default();
    if only != "postgres" {
        run("sqlite + embedded queue", &[]);
    }
    if only == "sqlite" {
        return;
    }
    let Some((postgres, env, label)) = cluster_backends() else {
        return;
    };
    run(label, &env);
    drop(postgres);
}
