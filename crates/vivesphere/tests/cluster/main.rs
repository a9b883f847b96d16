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

const ADMIN_PASSWORD: &str = "correct-horse-battery-staple-42";
const PASSWORD: &str = "a-good-long-password-7";
/// Long enough by default (12), too short once the minimum is raised to 20.
const MID_PASSWORD: &str = "violet-raven-73-q";

struct Topology {
    cluster: LocalCluster,
    fake: Arc<FakeX>,
    http: reqwest::Client,
    _data: tempfile::TempDir,
    /// Dropped last: the database goes once every process has stopped.
    _postgres: TestPostgres,
}

async fn start() -> Option<Topology> {
    let nats = nats_settings()?;
    let postgres = TestPostgres::create().await?;
    platform::install_crypto_provider();
    let fake = Arc::new(FakeX::new(Default::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake_url = format!("http://{}", listener.local_addr().unwrap());
    let router = fake_x::router(fake.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let data = tempfile::tempdir().unwrap();
    let fast = [
        ("VIVESPHERE_BOT_MANAGER__X_API__TIMEOUT_MS", "1500"),
        ("VIVESPHERE_BOT_MANAGER__EXECUTION__BACKOFF_BASE_MS", "50"),
        ("VIVESPHERE_BOT_MANAGER__EXECUTION__BACKOFF_MAX_MS", "200"),
        ("VIVESPHERE_BOT_MANAGER__EXECUTION__LEASE_SECONDS", "5"),
        ("VIVESPHERE_BOT_MANAGER__METRICS_INTERVAL_SECONDS", "0"),
    ];
    let options = ClusterOptions {
        binary: PathBuf::from(env!("CARGO_BIN_EXE_vivesphere")),
        config_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config"),
        data_dir: data.path().to_path_buf(),
        database_url: postgres.url().to_string(),
        nats_url: nats.url.clone(),
        queue_namespace: nats.namespace.clone(),
        gateway_port: 0,
        initial_admin_password: Some(ADMIN_PASSWORD.into()),
        x_api_url: Some(fake_url),
        extra_env: fast
            .iter()
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
        assert_eq!(response.status(), StatusCode::OK, "{username} logs in");
        let body: Value = response.json().await.unwrap();
        body["token"].as_str().unwrap().to_string()
    }

    /// Creates a Manager; the status and the error code, if any.
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
async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
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

fn in_ms(ms: i64) -> String {
    let at = time::OffsetDateTime::now_utc() + time::Duration::milliseconds(ms);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn process_exists(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

#[tokio::test]
async fn a_post_goes_from_login_to_x_and_a_setting_applies_live_through_the_gateway() {
    let Some(mut topology) = start().await else {
        return;
    };
    let t = &topology;
    assert_eq!(
        t.cluster.members().len(),
        8,
        "7 service processes and the gateway"
    );

    // The initial admin logs in and creates a Manager, who logs in.
    let admin = t.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(
        t.create_user(&admin, "manager", PASSWORD).await.0,
        StatusCode::CREATED
    );
    let manager = t.login("manager", PASSWORD).await;

    // The Manager creates a bot holding an X user's credentials and schedules a post.
    let x_user = t.fake.add_user(fake_x::NewUser::named("clusterbot"));
    let response = t
        .send(
            Method::POST,
            "/api/v1/bots",
            &manager,
            json!({
                "bot_name": "clusterbot",
                "x_handle": "clusterbot",
                "operator_account": "human_operator",
                "credentials": {
                    "access_token": x_user.access_token,
                    "refresh_token": x_user.refresh_token,
                    "client_id": x_user.client_id,
                },
            }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let bot_id = response.json::<Value>().await.unwrap()["bot_id"]
        .as_str()
        .unwrap()
        .to_string();
    let text = "Hello from the multi-process topology";
    let response = t
        .send(
            Method::POST,
            &format!("/api/v1/bots/{bot_id}/posts"),
            &manager,
            json!({"text": text, "run_at": in_ms(1500)}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let post_id = response.json::<Value>().await.unwrap()["post_id"]
        .as_str()
        .unwrap()
        .to_string();

    // One of the two Bot Manager replicas publishes it to X, once.
    let post_path = format!("/api/v1/bots/{bot_id}/posts/{post_id}");
    let published = eventually(Duration::from_secs(30), "the post is published", || async {
        let post = t.get(&post_path, &manager).await;
        (post["state"] == "published").then_some(post)
    })
    .await;
    let sent: Vec<_> = t
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/2/tweets")
        .collect();
    assert_eq!(sent.len(), 1, "published exactly once");
    assert_eq!(sent[0].text.as_deref(), Some(text));
    assert_eq!(sent[0].user_id.as_deref(), Some(x_user.user_id.as_str()));
    assert!(published["x_post_id"].is_string());

    // The bot's metrics, read from X through the Bot Manager.
    t.fake.set_user_metrics(
        &x_user.user_id,
        [("followers_count".to_string(), 42)].into(),
    );
    let response = t
        .send(
            Method::POST,
            &format!("/api/v1/bots/{bot_id}/metrics/refresh"),
            &manager,
            json!({}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["followers"], 42);
    let series = t
        .get(&format!("/api/v1/bots/{bot_id}/metrics"), &manager)
        .await;
    assert_eq!(series["items"][0]["followers"], 42);

    // The activity reached the Logging service over the queue.
    eventually(
        Duration::from_secs(20),
        "post.published in the logs",
        || async {
            let events = t
                .get("/api/v1/logs/events?category=user_activity", &admin)
                .await;
            events["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|event| event.to_string().contains("post.published"))
                .then_some(())
        },
    )
    .await;

    // An admin raises the password minimum centrally; both Authentication replicas apply it.
    assert_eq!(
        t.create_user(&admin, "before", MID_PASSWORD).await.0,
        StatusCode::CREATED
    );
    let response = t
        .send(
            Method::POST,
            "/api/v1/config/update",
            &admin,
            json!({"service": "global", "settings": {"authentication.password.min_length": 20}}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let revision = response.json::<Value>().await.unwrap()["revision"].clone();
    for replica in ["authentication-1", "authentication-2"] {
        let url = format!("{}/health", t.cluster.member_named(replica).unwrap().url);
        eventually(
            Duration::from_secs(10),
            "the replica applies the change",
            || async {
                let health: Value = t.http.get(&url).send().await.ok()?.json().await.ok()?;
                let applied = health["config"]["authentication"]["revision"].as_i64()?;
                (applied >= revision.as_i64()?).then_some(())
            },
        )
        .await;
    }
    // Through the gateway's round robin, every attempt now meets the new minimum.
    for attempt in 0..6 {
        let (status, error) = t
            .create_user(&admin, &format!("after{attempt}"), MID_PASSWORD)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
        assert!(error.contains("at least 20 characters"), "{error}");
    }

    // Stopping leaves nothing running.
    let pids: Vec<u32> = t.cluster.members().iter().filter_map(|m| m.pid()).collect();
    assert_eq!(pids.len(), 8);
    topology.cluster.stop().await;
    assert!(topology.cluster.members().iter().all(|m| !m.is_running()));
    for pid in pids {
        assert!(!process_exists(pid), "process {pid} still runs");
    }
}
