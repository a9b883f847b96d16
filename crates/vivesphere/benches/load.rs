//! Requests per second and p50/p99 latency for five operations — login, the authenticated
//! bots list, post create, log submit and botdata reveal — on the multi-process topology
//! (`vivesphere local-cluster`: every service its own process, two Authentication and two
//! Bot Manager replicas, the gateway in front) and in one-process mode, both on PostgreSQL
//! and NATS JetStream, with the release binary. Load generator, services, PostgreSQL and
//! NATS share the machine.
//!
//! `cargo bench --bench load` (needs VIVESPHERE_TEST_DATABASE_URL and
//! VIVESPHERE_TEST_NATS_URL); LOAD_BENCH_SECONDS (default 8) per operation and
//! LOAD_BENCH_CLIENTS (default 32; login uses a quarter, it is argon2-bound).

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use support::{ADMIN_PASSWORD, Server, env_number, ms, percentile};
use vivesphere::local_cluster::{ClusterOptions, LocalCluster};

/// One operation's request, built per call (`n` makes each body unique).
type MakeRequest = Arc<dyn Fn(&reqwest::Client, u64) -> reqwest::RequestBuilder + Send + Sync>;

struct Outcome {
    rate: f64,
    p50: Duration,
    p99: Duration,
    errors: u64,
}

/// `clients` loops sending requests for `seconds`; only 2xx answers count.
async fn load(clients: u64, seconds: u64, make: MakeRequest) -> Outcome {
    let http = reqwest::Client::new();
    for n in 0..20 {
        let response = make(&http, u64::MAX - n).send().await.unwrap();
        assert!(
            response.status().is_success(),
            "warm-up: {}",
            response.status()
        );
    }
    let counter = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (http, make, counter, errors) =
                (http.clone(), make.clone(), counter.clone(), errors.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let sent = Instant::now();
                    match make(&http, n).send().await {
                        Ok(response) if response.status().is_success() => {
                            let _ = response.bytes().await;
                            latencies.push(sent.elapsed());
                        }
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    Outcome {
        rate: latencies.len() as f64 / elapsed,
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        errors: errors.load(Ordering::Relaxed),
    }
}

async fn json_of(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or_default();
    assert!(status.is_success(), "{status}: {body}");
    body
}

/// Runs the five operations against `base` and prints a line each.
async fn measure(label: &str, base: &str, clients: u64, seconds: u64) {
    let http = reqwest::Client::new();
    let login = || async {
        json_of(
            http.post(format!("{base}/api/v1/auth/login"))
                .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
                .send()
                .await
                .unwrap(),
        )
        .await["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let token = login().await;
    let bot = json_of(
        http.post(format!("{base}/api/v1/bots"))
            .bearer_auth(&token)
            .json(&json!({"bot_name": "loadbot", "x_handle": "loadbot", "operator_account": "operator",
                "credentials": {"access_token": "load-access", "refresh_token": "load-refresh", "client_id": "load-client"}}))
            .send()
            .await
            .unwrap(),
    )
    .await["bot_id"]
        .as_str()
        .unwrap()
        .to_string();
    json_of(
        http.post(format!("{base}/api/v1/botdata/store"))
            .bearer_auth(&token)
            .json(&json!({"bot_id": "load-secrets", "data": {"api_key": "k-0123456789abcdef"}}))
            .send()
            .await
            .unwrap(),
    )
    .await;

    let base = base.to_string();
    let operations: Vec<(&str, u64, MakeRequest)> = vec![
        ("login", (clients / 4).max(1), {
            let base = base.clone();
            Arc::new(move |http: &reqwest::Client, _| {
                http.post(format!("{base}/api/v1/auth/login"))
                    .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
            })
        }),
        ("bots list", clients, {
            let (base, token) = (base.clone(), token.clone());
            Arc::new(move |http: &reqwest::Client, _| {
                http.get(format!("{base}/api/v1/bots/list"))
                    .bearer_auth(&token)
            })
        }),
        ("post create", clients, {
            let (base, token, bot) = (base.clone(), token.clone(), bot.clone());
            Arc::new(move |http: &reqwest::Client, n| {
                http.request(Method::POST, format!("{base}/api/v1/bots/{bot}/posts"))
                    .bearer_auth(&token)
                    .json(&json!({"text": format!("Load draft number {n}")}))
            })
        }),
        ("log submit", clients, {
            let (base, token) = (base.clone(), token.clone());
            Arc::new(move |http: &reqwest::Client, n| {
                http.post(format!("{base}/api/v1/logs/submit"))
                    .bearer_auth(&token)
                    .json(&json!({"log_type": "console", "log_data": {
                        "timestamp": platform::Clock::system().now_rfc3339(),
                        "message": format!("load event {n}"),
                        "source": "load-bench",
                    }}))
            })
        }),
        ("botdata reveal", clients, {
            let (base, token) = (base.clone(), token.clone());
            Arc::new(move |http: &reqwest::Client, _| {
                http.post(format!(
                    "{base}/api/v1/botdata/bots/load-secrets/fields/api_key/reveal"
                ))
                .bearer_auth(&token)
            })
        }),
    ];
    for (name, clients, make) in operations {
        let outcome = load(clients, seconds, make).await;
        println!(
            "{label:<30} {name:<15} {clients:>3} cl. {:>8.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  errors {}",
            outcome.rate,
            ms(outcome.p50),
            ms(outcome.p99),
            outcome.errors
        );
    }
}

fn main() {
    let seconds = env_number("LOAD_BENCH_SECONDS", 8);
    let clients = env_number("LOAD_BENCH_CLIENTS", 32);
    let (Ok(database), Ok(nats)) = (
        std::env::var("VIVESPHERE_TEST_DATABASE_URL"),
        std::env::var("VIVESPHERE_TEST_NATS_URL"),
    ) else {
        println!("load: skipped (set VIVESPHERE_TEST_DATABASE_URL and VIVESPHERE_TEST_NATS_URL)");
        return;
    };
    let _ = database;
    platform::install_crypto_provider();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Quiet processes: the bench measures requests, not log writing.
    let quiet = (
        "VIVESPHERE_TELEMETRY__LOG_LEVEL".to_string(),
        "warn".to_string(),
    );
    let no_edge_limit = (
        "VIVESPHERE_GATEWAY__RATE_LIMIT__PER_MINUTE".to_string(),
        "0".to_string(),
    );
    // Streams a shared NATS can reserve run after run.
    let small_streams = (
        "VIVESPHERE_QUEUE__STREAM_MAX_BYTES".to_string(),
        platform::testing::TEST_STREAM_MAX_BYTES.to_string(),
    );

    // One process on PostgreSQL and NATS.
    let Some((postgres, mut env, backends)) = support::cluster_backends() else {
        return;
    };
    env.push(quiet.clone());
    env.push(no_edge_limit.clone());
    env.push(small_streams.clone());
    {
        let server = Server::start(&env);
        runtime.block_on(async {
            server.ready_admin_token(&reqwest::Client::new()).await;
            measure(
                &format!("one process ({backends})"),
                &server.base,
                clients,
                seconds,
            )
            .await;
        });
    }
    drop(postgres);

    // The multi-process topology on a fresh database and namespace.
    runtime.block_on(async {
        let postgres = platform::testing::TestPostgres::create()
            .await
            .expect("a test database");
        let data = tempfile::tempdir().unwrap();
        let mut cluster = LocalCluster::start(ClusterOptions {
            binary: PathBuf::from(env!("CARGO_BIN_EXE_vivesphere")),
            config_dir: PathBuf::from(support::CONFIG_DIR),
            data_dir: data.path().to_path_buf(),
            database_url: postgres.url().to_string(),
            nats_url: nats,
            nats_nodes: 0,
            nats_server: PathBuf::from("nats-server"),
            queue_namespace: platform::testing::unique_name(),
            gateway_port: 0,
            initial_admin_password: Some(ADMIN_PASSWORD.into()),
            x_api_url: None,
            extra_env: vec![quiet, no_edge_limit, small_streams],
            ready_timeout: Duration::from_secs(60),
        })
        .await
        .expect("the local cluster starts");
        let base = cluster.gateway_url().to_string();
        measure("multi-process via gateway", &base, clients, seconds).await;
        cluster.stop().await;
        drop(postgres);
    });
}
