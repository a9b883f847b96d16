//! The soak: minutes of mixed load — the bots list, the audited secret retrieve and log
//! intake at once, as a fleet's day looks — against the release binary in both shapes (one
//! process on SQLite + the embedded queue; `vivesphere local-cluster` on PostgreSQL + NATS),
//! sampling every few seconds each process's memory (RssAnon) and open files, the storage
//! (the data directory; the PostgreSQL database and the namespace's JetStream streams), and
//! per route the rate, p99, errors and timeouts. It prints a table, writes an SVG plot of
//! each series, and exits non-zero when a threshold is crossed:
//!
//! - every process's RssAnon under load ≤ `SOAK_MAX_RSS_MB` (80);
//! - no growth under load: after warm-up (a sixth of the run, at most 5 minutes), the median
//!   of the last third ≤ the highest sample of the first third + `SOAK_MAX_GROWTH_PCT` (10);
//! - `SOAK_IDLE_SECONDS` (60) after the load, each process within `SOAK_RECOVERY_PCT` (20)
//!   of its idle figure before it (at least 8 MiB of slack);
//! - no errors and no timeouts (5 s); log intake p99 over the run ≤ `SOAK_MAX_LOG_P99_MS` (100);
//! - writers share fairly: log intake's median rate beside the other routes ≥
//!   `SOAK_MIN_LOG_SHARE_PCT` (80) % of its rate alone, measured for `SOAK_SOLO_SECONDS` (20)
//!   before the mixed load (0 skips the phase and the check).
//!
//! `cargo bench --bench soak`; `SOAK_MINUTES` (30), `SOAK_SHAPES` ("one cluster"; the cluster
//! needs VIVESPHERE_TEST_DATABASE_URL and VIVESPHERE_TEST_NATS_URL), `SOAK_CLIENTS` per route
//! (16), `SOAK_SAMPLE_SECONDS` (10), `SOAK_OUT` (the plots; default a directory under
//! target/).

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{ADMIN_PASSWORD, Server, env_number, ms, percentile};
use tokio_util::sync::CancellationToken;
use vivesphere::local_cluster::{ClusterOptions, LocalCluster};

const SOAK_USER: &str = "soak-manager";
const SOAK_PASSWORD: &str = "Quiet-Harbor-7731-x";
const BOTS: usize = 100;
const TIMEOUT: Duration = Duration::from_secs(5);
/// The route whose share of the machine under the mixed load is judged.
const LOG_ROUTE: &str = "logs/submit";

#[path = "soak/measure.rs"]
mod measure;
#[path = "soak/plot.rs"]
mod plot;

use measure::{Limits, Probe, Sample, Soak};

/// What one request of a route is, given a counter for variety.
type MakeRequest = Arc<dyn Fn(&reqwest::Client, u64) -> reqwest::RequestBuilder + Send + Sync>;

/// How often the load's users sign in again: well within an access token's 15 minutes.
const RENEW_EVERY: Duration = Duration::from_secs(300);

/// A signed-in user's token for the load, renewed by signing in again every `RENEW_EVERY`
/// until `stop` (a soak outlives any one access token).
#[derive(Clone)]
struct Session(Arc<std::sync::RwLock<String>>);

impl Session {
    async fn start(
        base: &str,
        username: &'static str,
        password: &'static str,
        stop: &CancellationToken,
    ) -> Self {
        let http = reqwest::Client::new();
        let token = support::login(&http, base, username, password).await;
        let session = Self(Arc::new(std::sync::RwLock::new(token)));
        let (renewed, base, stop) = (session.clone(), base.to_string(), stop.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(RENEW_EVERY) => {}
                }
                let token = support::login(&http, &base, username, password).await;
                *renewed.0.write().unwrap() = token;
            }
        });
        session
    }

    fn token(&self) -> String {
        self.0.read().unwrap().clone()
    }
}

/// Logs in as admin, makes the Manager and its bots (credentials in Secure Bot Data), and
/// returns the three routes of the mixed load, whose tokens are renewed until `stop`.
async fn routes(base: &str, stop: &CancellationToken) -> Vec<(&'static str, MakeRequest)> {
    let http = reqwest::Client::new();
    let admin_session = Session::start(base, "admin", ADMIN_PASSWORD, stop).await;
    let admin = admin_session.token();
    let made = http
        .post(format!("{base}/api/v1/auth/users"))
        .bearer_auth(&admin)
        .json(&json!({"username": SOAK_USER, "password": SOAK_PASSWORD, "roles": ["Manager"]}))
        .send()
        .await
        .unwrap();
    assert!(made.status().is_success(), "{}", made.status());
    let manager_session = Session::start(base, SOAK_USER, SOAK_PASSWORD, stop).await;
    let manager = manager_session.token();
    let mut ids = Vec::new();
    for i in 0..BOTS {
        let body: Value = http
            .post(format!("{base}/api/v1/bots/create"))
            .bearer_auth(&manager)
            .json(
                &json!({"bot_name": format!("soak-bot-{i:03}"), "credentials": {
                "email": format!("bot{i}@example.com"), "password": format!("pw-{i}-xxxxxxxx"),
                "access_token": format!("at-{i}-{}", "x".repeat(40)),
                "refresh_token": format!("rt-{i}-{}", "y".repeat(40))}}),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(body["bot_id"].as_str().expect("a bot id").to_string());
    }
    let ids = Arc::new(ids);
    let base = base.to_string();
    vec![
        ("bots/list", {
            let (base, session) = (base.clone(), manager_session.clone());
            Arc::new(move |http: &reqwest::Client, _| {
                http.get(format!("{base}/api/v1/bots/list"))
                    .bearer_auth(session.token())
            })
        }),
        ("botdata/retrieve", {
            let (base, session) = (base.clone(), manager_session.clone());
            Arc::new(move |http: &reqwest::Client, n| {
                let id = &ids[(n as usize).wrapping_mul(7919) % ids.len()];
                http.get(format!("{base}/api/v1/botdata/retrieve?bot_id={id}"))
                    .bearer_auth(session.token())
            })
        }),
        (LOG_ROUTE, {
            let (base, session) = (base.clone(), admin_session);
            Arc::new(move |http: &reqwest::Client, n| {
                http.post(format!("{base}/api/v1/logs/submit"))
                    .bearer_auth(session.token())
                    .json(&json!({"log_type": "user_activity", "log_data": {
                        "timestamp": platform::Clock::system().now_rfc3339(),
                        "message": "bot.post", "source": "soak", "action": "bot.post",
                        "bot": format!("bot-{}", n % 100), "ok": true}}))
            })
        }),
    ]
}

/// `clients` loops per route (every route, or only the one named) until `stop`, each answer
/// counted in its route's window.
fn start_load(
    routes: &[(&'static str, MakeRequest)],
    only: Option<&str>,
    clients: usize,
    soak: &Soak,
    stop: &CancellationToken,
) {
    let http = reqwest::Client::builder().timeout(TIMEOUT).build().unwrap();
    for (index, (name, make)) in routes.iter().enumerate() {
        if only.is_some_and(|only| only != *name) {
            continue;
        }
        for client in 0..clients {
            let (http, make, stop) = (http.clone(), make.clone(), stop.clone());
            let window = soak.windows[index].clone();
            tokio::spawn(async move {
                let mut n = client as u64 * 1_000_000_007;
                while !stop.is_cancelled() {
                    n += 1;
                    let sent = Instant::now();
                    let answer = make(&http, n).send().await;
                    let outcome = match answer {
                        Ok(response) if response.status().is_success() => {
                            let _ = response.bytes().await;
                            Ok(sent.elapsed())
                        }
                        Ok(_) => Err(false),
                        Err(err) => Err(err.is_timeout()),
                    };
                    window.lock().unwrap().count(outcome);
                }
            });
        }
    }
}

/// Log intake alone for `SOAK_SOLO_SECONDS`: the rate the mixed load's log intake is held
/// to (writers share fairly). Nothing when the phase is set to 0 seconds.
async fn solo_log_rate(
    routes: &[(&'static str, MakeRequest)],
    clients: usize,
    soak: &mut Soak,
) -> Option<f64> {
    let seconds: f64 = env_number("SOAK_SOLO_SECONDS", 20.0);
    if seconds <= 0.0 {
        return None;
    }
    let stop = CancellationToken::new();
    start_load(routes, Some(LOG_ROUTE), clients, soak, &stop);
    // The first seconds warm the connections and the caches; the rate is what follows.
    tokio::time::sleep(Duration::from_secs_f64(seconds / 4.0)).await;
    soak.sample(0.0).await;
    tokio::time::sleep(Duration::from_secs_f64(seconds * 3.0 / 4.0)).await;
    stop.cancel();
    let solo = soak.sample(0.0).await;
    let logs = solo.routes.iter().find(|r| r.name == LOG_ROUTE)?;
    println!(
        "{LOG_ROUTE} alone: {:.0}/s, p99 {:.1} ms",
        logs.rate, logs.p99_ms
    );
    // Let the last requests of the phase drain before the mixed load starts.
    tokio::time::sleep(Duration::from_secs(2)).await;
    soak.sample(0.0).await;
    Some(logs.rate)
}

/// One shape's soak: idle figure, log intake alone, the mixed load with a sample per period,
/// the idle after it.
async fn soak_one(shape: &str, probe: Probe, base: &str, out: &Path) -> Vec<String> {
    let minutes: f64 = env_number("SOAK_MINUTES", 30.0);
    let period = Duration::from_secs(env_number("SOAK_SAMPLE_SECONDS", 10));
    let idle = Duration::from_secs(env_number("SOAK_IDLE_SECONDS", 60));
    let clients = env_number("SOAK_CLIENTS", 16);
    let stop = CancellationToken::new();
    let routes = routes(base, &stop).await;
    let names: Vec<&str> = routes.iter().map(|(name, _)| *name).collect();
    let mut soak = Soak::new(shape, probe, &names);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_before = soak.sample(0.0).await;
    println!("{} (idle, before the load)", idle_before.row());
    soak.solo_log_rate = solo_log_rate(&routes, clients, &mut soak).await;
    soak.log_latencies.clear();
    start_load(&routes, None, clients, &soak, &stop);
    let started = Instant::now();
    let load = Duration::from_secs_f64(minutes * 60.0);
    while started.elapsed() < load {
        tokio::time::sleep(period.min(load - started.elapsed())).await;
        let sample = soak.sample(started.elapsed().as_secs_f64()).await;
        println!("{}", sample.row());
        soak.samples.push(sample);
    }
    stop.cancel();
    tokio::time::sleep(idle).await;
    let idle_after = soak.sample(started.elapsed().as_secs_f64()).await;
    println!("{} (after {} s idle)", idle_after.row(), idle.as_secs());
    let parts: Vec<String> = soak
        .storage_by_part()
        .await
        .iter()
        .take(8)
        .map(|(name, mib)| format!("{name} {mib:.1}"))
        .collect();
    println!("{shape}: storage by part, MiB: {}", parts.join(", "));
    plot::write_all(out, &soak).expect("the plots are written");
    println!("{shape}: plots in {}", out.display());
    soak.problems(&idle_before, &idle_after, &Limits::from_env())
}

fn one_process(runtime: &tokio::runtime::Runtime, out: &Path) -> Vec<String> {
    let server = Server::start(&[(
        "VIVESPHERE_GATEWAY__RATE_LIMIT__PER_MINUTE".into(),
        "0".into(),
    )]);
    runtime.block_on(async {
        server.wait_ready(&reqwest::Client::new()).await;
        let probe = Probe {
            processes: vec![("vivesphere".into(), server.pid())],
            data_dir: Some(server.data_dir().to_path_buf()),
            postgres_url: None,
            jetstream: None,
        };
        soak_one("one process", probe, &server.base, &out.join("one-process")).await
    })
}

fn cluster(runtime: &tokio::runtime::Runtime, out: &Path) -> Vec<String> {
    let Ok(nats) = std::env::var("VIVESPHERE_TEST_NATS_URL") else {
        println!(
            "cluster: skipped (set VIVESPHERE_TEST_DATABASE_URL and VIVESPHERE_TEST_NATS_URL)"
        );
        return Vec::new();
    };
    runtime.block_on(async {
        let Some(postgres) = platform::testing::TestPostgres::create().await else {
            println!("cluster: skipped (set VIVESPHERE_TEST_DATABASE_URL)");
            return Vec::new();
        };
        let data = tempfile::tempdir().unwrap();
        let namespace = platform::testing::unique_name();
        let extra_env = [
            ("VIVESPHERE_TELEMETRY__LOG_LEVEL", "warn".to_string()),
            (
                "VIVESPHERE_GATEWAY__RATE_LIMIT__PER_MINUTE",
                "0".to_string(),
            ),
            (
                "VIVESPHERE_QUEUE__STREAM_MAX_BYTES",
                platform::testing::TEST_STREAM_MAX_BYTES.to_string(),
            ),
        ];
        let mut cluster = LocalCluster::start(ClusterOptions {
            binary: PathBuf::from(env!("CARGO_BIN_EXE_vivesphere")),
            config_dir: PathBuf::from(support::CONFIG_DIR),
            data_dir: data.path().to_path_buf(),
            database_url: postgres.url().to_string(),
            nats_url: nats.clone(),
            nats_nodes: 0,
            nats_server: PathBuf::from("nats-server"),
            queue_namespace: namespace.clone(),
            gateway_port: 0,
            initial_admin_password: Some(ADMIN_PASSWORD.into()),
            x_api_url: None,
            extra_env: extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            ready_timeout: Duration::from_secs(60),
        })
        .await
        .expect("the local cluster starts");
        let probe = Probe {
            processes: cluster
                .members()
                .iter()
                .filter_map(|m| Some((m.name.clone(), m.pid()?)))
                .collect(),
            data_dir: None,
            postgres_url: Some(postgres.url().to_string()),
            jetstream: Some((nats, namespace)),
        };
        let base = cluster.gateway_url().to_string();
        let problems = soak_one("cluster", probe, &base, &out.join("cluster")).await;
        cluster.stop().await;
        drop(postgres);
        problems
    })
}

fn main() -> std::process::ExitCode {
    platform::install_crypto_provider();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let out = std::env::var("SOAK_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("soak"));
    let shapes = std::env::var("SOAK_SHAPES").unwrap_or_else(|_| "one cluster".into());
    let mut problems = Vec::new();
    for shape in shapes.split_whitespace() {
        problems.extend(match shape {
            "one" => one_process(&runtime, &out),
            "cluster" => cluster(&runtime, &out),
            other => vec![format!("unknown shape {other:?} (one, cluster)")],
        });
    }
    if problems.is_empty() {
        println!("soak: every threshold held");
        std::process::ExitCode::SUCCESS
    } else {
        for problem in &problems {
            println!("THRESHOLD CROSSED: {problem}");
        }
        std::process::ExitCode::FAILURE
    }
}

/// Milliseconds, for the table.
fn p99_ms(latencies: &mut [Duration]) -> f64 {
    if latencies.is_empty() {
        return 0.0;
    }
    latencies.sort();
    ms(percentile(latencies, 0.99))
}
