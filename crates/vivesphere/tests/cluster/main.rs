//! The cluster's topology on one machine (`vivesphere local-cluster`): every service its own
//! process — two Authentication and two Bot Manager replicas — behind the gateway, on
//! PostgreSQL and NATS JetStream, driven end to end through the gateway only. Needs
//! VIVESPHERE_TEST_DATABASE_URL and VIVESPHERE_TEST_NATS_URL; without them it prints
//! `=== SKIPPED`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fake_x::FakeX;
use platform::testing::{TestPostgres, nats_settings};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vivesphere::local_cluster::{ClusterOptions, LocalCluster};

#[path = "../common/bots.rs"]
mod common;
mod e2e;
mod faults;
mod rotation;
#[path = "../common/volume.rs"]
mod volume;

pub(crate) const ADMIN_PASSWORD: &str = "correct-horse-battery-staple-42";
pub(crate) const PASSWORD: &str = "a-good-long-password-7";
/// Long enough by default (12), too short once the minimum is raised to 20.
pub(crate) const MID_PASSWORD: &str = "violet-raven-73-q";

pub struct Topology {
    pub cluster: LocalCluster,
    pub fake: Arc<FakeX>,
    pub http: reqwest::Client,
    /// The PostgreSQL database the services keep their schemas in.
    pub database_url: String,
    /// The queue's namespace on the test NATS.
    pub queue_namespace: String,
    _data: tempfile::TempDir,
    /// Dropped last: the database goes once every process has stopped.
    _postgres: Option<TestPostgres>,
}

/// One test at a time: each runs eight processes on a two-core machine.
pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Whether the test PostgreSQL and NATS are configured (each test prints SKIPPED if not).
pub(crate) fn backends_configured() -> bool {
    let postgres = std::env::var("VIVESPHERE_TEST_DATABASE_URL").is_ok();
    nats_settings().is_some() && postgres
}

pub(crate) async fn start() -> Option<Topology> {
    start_on(Setup::default()).await
}

pub(crate) async fn start_with(nats_url: Option<String>) -> Option<Topology> {
    start_on(Setup {
        nats_url,
        ..Setup::default()
    })
    .await
}

/// What a test changes about the topology.
#[derive(Default)]
pub(crate) struct Setup {
    /// A PostgreSQL server of the test's own, instead of a fresh test database.
    pub database_url: Option<String>,
    /// A NATS server of the test's own, instead of the test NATS.
    pub nats_url: Option<String>,
    /// Private nats-servers started by the cluster, instead of either.
    pub nats_nodes: usize,
    /// More settings for every process.
    pub env: Vec<(&'static str, &'static str)>,
}

/// The nats-server binary, where Debian or a manual install puts it.
pub(crate) fn nats_server_binary() -> Option<PathBuf> {
    let found = [
        "/usr/sbin/nats-server",
        "/usr/local/bin/nats-server",
        "/usr/bin/nats-server",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|path| path.exists());
    if found.is_none() {
        eprintln!("=== SKIPPED: no nats-server binary for private NATS servers");
    }
    found
}

/// The topology on the test PostgreSQL (a fresh database) and NATS (its own namespace), or
/// on what `setup` gives instead.
pub(crate) async fn start_on(setup: Setup) -> Option<Topology> {
    let Setup {
        database_url,
        nats_url,
        nats_nodes,
        env,
    } = setup;
    let mut nats = nats_settings()?;
    if let Some(url) = nats_url {
        nats.url = url;
    }
    let (postgres, database_url) = match database_url {
        Some(url) => (None, url),
        None => {
            let postgres = TestPostgres::create().await?;
            let url = postgres.url().to_string();
            (Some(postgres), url)
        }
    };
    platform::install_crypto_provider();
    let fake = Arc::new(FakeX::new(Default::default(), platform::Clock::system()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake_url = format!("http://{}", listener.local_addr().unwrap());
    let router = fake_x::router(fake.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let data = tempfile::tempdir().unwrap();
    let stream_max_bytes = platform::testing::TEST_STREAM_MAX_BYTES.to_string();
    let fast = [
        ("VIVESPHERE_BOT_MANAGER__X_API__TIMEOUT_MS", "1500"),
        ("VIVESPHERE_BOT_MANAGER__EXECUTION__BACKOFF_BASE_MS", "50"),
        ("VIVESPHERE_BOT_MANAGER__EXECUTION__BACKOFF_MAX_MS", "200"),
        ("VIVESPHERE_BOT_MANAGER__EXECUTION__LEASE_SECONDS", "5"),
        ("VIVESPHERE_BOT_MANAGER__METRICS_INTERVAL_SECONDS", "0"),
        // Streams a shared test NATS can reserve by the dozen.
        (
            "VIVESPHERE_QUEUE__STREAM_MAX_BYTES",
            stream_max_bytes.as_str(),
        ),
    ];
    let options = ClusterOptions {
        binary: PathBuf::from(env!("CARGO_BIN_EXE_vivesphere")),
        config_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config"),
        data_dir: data.path().to_path_buf(),
        database_url: database_url.clone(),
        nats_url: nats.url.clone(),
        nats_nodes,
        nats_server: nats_server_binary().unwrap_or_else(|| "nats-server".into()),
        queue_namespace: nats.namespace.clone(),
        gateway_port: 0,
        initial_admin_password: Some(ADMIN_PASSWORD.into()),
        x_api_url: Some(fake_url),
        extra_env: fast
            .iter()
            .chain(env.iter())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ready_timeout: Duration::from_secs(60),
    };
    let cluster = LocalCluster::start(options)
        .await
        .expect("the local cluster starts");
    Some(Topology {
        cluster,
        fake,
        http: reqwest::Client::new(),
        database_url,
        queue_namespace: nats.namespace.clone(),
        _data: data,
        _postgres: postgres,
    })
}

impl Topology {
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Value,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.cluster.gateway_url()));
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        request.json(&body).send().await.expect("request sent")
    }

    async fn get(&self, path: &str, token: &str) -> Value {
        let response = self
            .http
            .get(format!("{}{path}", self.cluster.gateway_url()))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.unwrap()
    }

    async fn login(&self, username: &str, password: &str) -> String {
        let response = self
            .send(
                Method::POST,
                "/api/v1/auth/login",
                "",
                json!({"username": username, "password": password}),
            )
            .await;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        assert_eq!(status, StatusCode::OK, "{username} logs in: {body}");
        body["token"].as_str().unwrap().to_string()
    }

    /// A request straight to one process, around the gateway.
    async fn send_to(
        &self,
        member: &str,
        method: Method,
        path: &str,
        token: &str,
        body: Value,
    ) -> reqwest::Response {
        let base = &self.cluster.member_named(member).expect("a member").url;
        self.http
            .request(method, format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request sent")
    }

    /// A bot holding a new fake X user's credentials: its id and the X user.
    async fn create_bot(&self, token: &str, name: &str) -> (String, fake_x::UserTokens) {
        let bots_url = format!("{}/api/v1/bots", self.cluster.gateway_url());
        common::create_bot(&self.http, &bots_url, token, &self.fake, name).await
    }

    /// Creates a Viewer through the gateway, or straight at `member`; its user id.
    async fn create_viewer(&self, admin: &str, username: &str, member: Option<&str>) -> String {
        let body = json!({"username": username, "password": PASSWORD, "roles": ["Viewer"]});
        let response = match member {
            Some(member) => {
                self.send_to(member, Method::POST, "/api/v1/auth/users", admin, body)
                    .await
            }
            None => {
                self.send(Method::POST, "/api/v1/auth/users", admin, body)
                    .await
            }
        };
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        body["user"]["id"].as_str().unwrap().to_string()
    }

    /// Raises `authentication.password.min_length` to 20 for everyone; the new revision.
    async fn raise_password_minimum(&self, admin: &str) -> i64 {
        let response = self
            .send(
                Method::POST,
                "/api/v1/config/update",
                admin,
                json!({"service": "global", "settings": {"authentication.password.min_length": 20}}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json::<Value>().await.unwrap()["revision"]
            .as_i64()
            .unwrap()
    }

    /// Waits until the Authentication process `member` has applied `revision`.
    async fn applied_by(&self, member: &str, revision: i64) {
        let url = format!("{}/health", self.cluster.member_named(member).unwrap().url);
        eventually(
            Duration::from_secs(10),
            &format!("{member} applies {revision}"),
            || async {
                let health: Value = self.http.get(&url).send().await.ok()?.json().await.ok()?;
                (health["config"]["authentication"]["revision"].as_i64()? >= revision).then_some(())
            },
        )
        .await;
    }

    /// The texts of the posts the fake X accepted, in order.
    fn published_texts(&self) -> Vec<String> {
        self.fake
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path == "/2/tweets" && r.status == 201)
            .filter_map(|r| r.text)
            .collect()
    }

    /// How many of `bot`'s posts are published (0 while the gateway has no ready replica).
    async fn published_count(&self, token: &str, bot: &str) -> usize {
        let response = self
            .http
            .get(format!(
                "{}/api/v1/bots/{bot}/posts?state=published&limit=100",
                self.cluster.gateway_url()
            ))
            .bearer_auth(token)
            .send()
            .await;
        let Ok(response) = response else { return 0 };
        let posts: Value = response.json().await.unwrap_or_default();
        posts["items"].as_array().map_or(0, Vec::len)
    }

    /// Whether every one of `needles` appears in the stored user_activity events.
    async fn activity_contains(&self, admin: &str, needles: &[String]) -> bool {
        let response = self
            .http
            .get(format!(
                "{}/api/v1/logs/events?category=user_activity&limit=500",
                self.cluster.gateway_url()
            ))
            .bearer_auth(admin)
            .send()
            .await;
        let Ok(response) = response else { return false };
        if !response.status().is_success() {
            return false;
        }
        let text = response.text().await.unwrap_or_default();
        needles.iter().all(|needle| text.contains(needle.as_str()))
    }

    /// Creates a Manager; the status and the error code and message, if any.
    async fn create_user(
        &self,
        admin: &str,
        username: &str,
        password: &str,
    ) -> (StatusCode, String) {
        let response = self
            .send(
                Method::POST,
                "/api/v1/auth/users",
                admin,
                json!({"username": username, "password": password, "roles": ["Manager"]}),
            )
            .await;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        let code = body["error_code"].as_str().unwrap_or_default().to_string();
        (status, format!("{code} {}", body["message"]))
    }
}

/// Polls `check` every 100 ms until it returns `Some` or `limit` passes.
pub(crate) async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) fn in_ms(ms: i64) -> String {
    let at = time::OffsetDateTime::now_utc() + time::Duration::milliseconds(ms);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

pub(crate) fn process_exists(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}
