//! `spawn_app`: the whole app, or one target, in this process on a random port.

use std::net::SocketAddr;
use std::path::PathBuf;

use platform::Clock;
use platform::testing::TestPostgres;
use time::OffsetDateTime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vivesphere::app::{App, AppOptions};

pub const ADMIN_PASSWORD: &str = "correct-horse-battery-staple-42";

/// Where every test app's clock starts: a fixed instant years away from any day the suite
/// runs on, so a test cannot lean on today's date (and code that reads the system time
/// instead of the platform clock shows up as a failure).
pub const TEST_START: OffsetDateTime = time::macros::datetime!(2031-03-14 09:00 UTC);

/// A fresh test clock at [`TEST_START`], moving on with real time.
pub fn test_clock() -> Clock {
    Clock::settable(TEST_START)
}

/// The configuration shipped in the repository, so the tests also prove it loads.
pub fn repo_config_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config")
}

/// `vivesphere demo` in this process, on a random port and the test clock.
pub async fn start_demo() -> vivesphere::demo::Demo {
    vivesphere::demo::Demo::start(vivesphere::demo::DemoOptions {
        config_dir: repo_config_dir(),
        listen: "127.0.0.1:0".into(),
        data_dir: None,
        clock: test_clock(),
    })
    .await
    .expect("the demo starts")
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub shutdown: CancellationToken,
    pub served: Option<JoinHandle<anyhow::Result<()>>>,
    pub data_dir: tempfile::TempDir,
    /// The app's queue, for tests that act as another service.
    pub queue: Option<std::sync::Arc<dyn platform::queue::Queue>>,
    /// Set when the app runs on PostgreSQL.
    pub postgres_url: Option<String>,
    /// The app's clock: tests move it instead of sleeping.
    pub clock: Clock,
    _postgres: Option<TestPostgres>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// Shuts the app down as SIGTERM would and returns how serving ended.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.served.take().unwrap().await.unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Options for an app whose data lives in `data_dir`.
pub fn options(
    data_dir: &tempfile::TempDir,
    target: Option<&str>,
    extra_env: &[(&str, &str)],
) -> AppOptions {
    let mut env = vec![
        (
            "VIVESPHERE_DATABASE__PATH".to_string(),
            data_dir.path().join("{service}.db").display().to_string(),
        ),
        (
            "VIVESPHERE_QUEUE__PATH".to_string(),
            data_dir.path().join("queue.db").display().to_string(),
        ),
        (
            "VIVESPHERE_SERVER__SHUTDOWN_TIMEOUT".to_string(),
            "5".to_string(),
        ),
        (
            "VIVESPHERE_LOGGING__WEBHOOKS__DEVELOPMENT_KEY_PATH".to_string(),
            data_dir
                .path()
                .join("logging-webhooks.key")
                .display()
                .to_string(),
        ),
        (
            "VIVESPHERE_AUTHENTICATION__DEVELOPMENT_KEY_PATH".to_string(),
            data_dir
                .path()
                .join("authentication.key")
                .display()
                .to_string(),
        ),
        (
            "VIVESPHERE_AUTHENTICATION__INITIAL_ADMIN_PASSWORD".to_string(),
            ADMIN_PASSWORD.to_string(),
        ),
        (
            "VIVESPHERE_SECURE_BOT_DATA__KEK_DIR".to_string(),
            data_dir.path().join("kek").display().to_string(),
        ),
        (
            "VIVESPHERE_AUTH__SERVICE_SECRETS_DIR".to_string(),
            data_dir
                .path()
                .join("service-clients")
                .display()
                .to_string(),
        ),
        (
            "VIVESPHERE_CONFIG_CLIENT__CACHE_DIR".to_string(),
            data_dir.path().join("config-cache").display().to_string(),
        ),
        (
            "VIVESPHERE_TELEMETRY__SPILL_DIR".to_string(),
            data_dir.path().join("spill").display().to_string(),
        ),
        // Streams a shared test NATS can reserve by the hundred.
        (
            "VIVESPHERE_QUEUE__STREAM_MAX_BYTES".to_string(),
            platform::testing::TEST_STREAM_MAX_BYTES.to_string(),
        ),
    ];
    env.extend(
        extra_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    AppOptions {
        config_dir: repo_config_dir(),
        env,
        target: target.map(str::to_string),
        listen: Some("127.0.0.1:0".into()),
        file_root: None,
        log_level: None,
        clock: test_clock(),
    }
}

pub fn client() -> reqwest::Client {
    platform::install_crypto_provider();
    reqwest::Client::new()
}

/// With `VIVESPHERE_TEST_APP_DATABASE=postgres` every app test runs on PostgreSQL (CI runs
/// the suite once per backend).
pub fn apps_on_postgres() -> bool {
    std::env::var("VIVESPHERE_TEST_APP_DATABASE").is_ok_and(|v| v == "postgres")
}

/// Builds and serves an app; `postgres` puts every service on a fresh test database.
pub async fn spawn(
    target: Option<&str>,
    extra_env: &[(&str, &str)],
    postgres: Option<TestPostgres>,
) -> TestApp {
    spawn_with_clock(target, extra_env, postgres, test_clock()).await
}

/// [`spawn`] on a given clock: apps of one test that talk to each other share one.
pub async fn spawn_with_clock(
    target: Option<&str>,
    extra_env: &[(&str, &str)],
    postgres: Option<TestPostgres>,
    clock: Clock,
) -> TestApp {
    let data_dir = tempfile::tempdir().unwrap();
    spawn_in(data_dir, target, extra_env, postgres, clock).await
}

/// [`spawn_with_clock`] over a data directory the test prepared (a restored one).
pub async fn spawn_in(
    data_dir: tempfile::TempDir,
    target: Option<&str>,
    extra_env: &[(&str, &str)],
    postgres: Option<TestPostgres>,
    clock: Clock,
) -> TestApp {
    let postgres =
        match postgres {
            Some(pg) => Some(pg),
            // An app given its database URL (a second replica of another app) keeps it.
            None if apps_on_postgres()
                && !extra_env
                    .iter()
                    .any(|(k, _)| *k == "VIVESPHERE_DATABASE__URL") =>
            {
                Some(TestPostgres::create().await.expect(
                    "VIVESPHERE_TEST_APP_DATABASE=postgres needs VIVESPHERE_TEST_DATABASE_URL",
                ))
            }
            None => None,
        };
    let postgres_url = postgres.as_ref().map(|pg| pg.url().to_string());
    let mut env: Vec<(&str, &str)> = extra_env.to_vec();
    if let Some(pg) = &postgres {
        env.push(("VIVESPHERE_DATABASE__URL", pg.url()));
    }
    let mut options = options(&data_dir, target, &env);
    options.clock = clock.clone();
    let app = App::build(options).await.expect("the app builds");
    let addr = app.local_addr();
    let shutdown = app.shutdown_token();
    let queue = Some(app.queue());
    let served = tokio::spawn(app.run());
    TestApp {
        addr,
        client: client(),
        shutdown,
        served: Some(served),
        data_dir,
        queue,
        postgres_url,
        clock,
        _postgres: postgres,
    }
}

/// The whole app on SQLite and the embedded queue.
pub async fn spawn_app() -> TestApp {
    spawn(None, &[], None).await
}

/// A connection to one service's own tables (`section`: its config section, which names its
/// SQLite file and its PostgreSQL schema), on whichever backend the app runs.
pub async fn service_db(app: &TestApp, section: &'static str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    match &app.postgres_url {
        Some(url) => sqlx::any::AnyPoolOptions::new()
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    sqlx::Executor::execute(
                        conn,
                        sqlx::AssertSqlSafe(format!("SET search_path TO {section}")),
                    )
                    .await?;
                    Ok(())
                })
            })
            .connect(url)
            .await
            .unwrap(),
        None => {
            let path = app.data_dir.path().join(format!("{section}.db"));
            sqlx::AnyPool::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap()
        }
    }
}
