//! Throughput and latency of an authenticated GET (`/api/v1/bots/list`) sent straight to the
//! services and through the gateway target, side by side in one run: the release binary
//! serving every service, and a second one serving `--target gateway` in front of it
//! (token verified at the edge, then again by the service, proxied over loopback).
//!
//! `cargo bench --bench gateway`; GATEWAY_BENCH_SECONDS (default 10) and
//! GATEWAY_BENCH_CLIENTS (default 32) change the load, GATEWAY_BENCH_PATH the GET
//! (`/api/v1/auth/validate` shows the gateway's own cost best: the service does little).
//! Goal: through the gateway ≥ 60 % of the direct throughput.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{Server, env_number, ms, percentile};

/// `clients` loops sending the GET for `seconds`; returns requests/s and sorted latencies.
async fn load(
    base: &str,
    path: &str,
    token: &str,
    clients: u64,
    seconds: u64,
) -> (f64, Vec<Duration>) {
    let http = reqwest::Client::new();
    let url = format!("{base}{path}");
    // Warm the connections and caches.
    for _ in 0..50 {
        let response = http.get(&url).bearer_auth(token).send().await.unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (http, url, token) = (http.clone(), url.clone(), token.to_string());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let response = http.get(&url).bearer_auth(&token).send().await.unwrap();
                    assert!(response.status().is_success(), "{}", response.status());
                    response.bytes().await.unwrap();
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
    latencies.sort();
    (rate, latencies)
}

fn main() {
    let seconds = env_number("GATEWAY_BENCH_SECONDS", 10);
    let clients = env_number("GATEWAY_BENCH_CLIENTS", 32);
    let path = std::env::var("GATEWAY_BENCH_PATH").unwrap_or_else(|_| "/api/v1/bots/list".into());
    let secrets = tempfile::tempdir().unwrap();
    let secrets_dir = secrets.path().display().to_string();
    let services = Server::start(&[(
        "VIVESPHERE_AUTH__SERVICE_SECRETS_DIR".into(),
        secrets_dir.clone(),
    )]);
    let upstream = serde_json::to_string(&[&services.base]).unwrap();
    let mut gateway_env = vec![
        (
            "VIVESPHERE_AUTH__AUTHENTICATION_URL".to_string(),
            services.base.clone(),
        ),
        ("VIVESPHERE_CONFIG_CLIENT__ENABLED".into(), "false".into()),
        (
            "VIVESPHERE_GATEWAY__RATE_LIMIT__PER_MINUTE".into(),
            "0".into(),
        ),
    ];
    for key in [
        "AUTHENTICATION",
        "BOT_MANAGER",
        "CONFIGURATION",
        "LOGGING",
        "SECURE_BOT_DATA",
    ] {
        gateway_env.push((
            format!("VIVESPHERE_GATEWAY__UPSTREAMS__{key}"),
            upstream.clone(),
        ));
    }
    let gateway = Server::start_target(Some("gateway"), &gateway_env);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    platform::install_crypto_provider();
    runtime.block_on(async move {
        let http = reqwest::Client::new();
        let token = Arc::new(services.ready_admin_token(&http).await);
        gateway.wait_ready(&http).await;
        let (direct_rate, direct) = load(&services.base, &path, &token, clients, seconds).await;
        let (gateway_rate, through) = load(&gateway.base, &path, &token, clients, seconds).await;
        println!(
            "GET {path}, {clients} clients, {seconds} s each:\n  direct:          {direct_rate:>8.0} req/s  p50 {:6.2} ms  p99 {:6.2} ms\n  through gateway: {gateway_rate:>8.0} req/s  p50 {:6.2} ms  p99 {:6.2} ms\n  gateway keeps {:.0} % of direct throughput (goal >= 60 %)",
            ms(percentile(&direct, 0.5)),
            ms(percentile(&direct, 0.99)),
            ms(percentile(&through, 0.5)),
            ms(percentile(&through, 0.99)),
            100.0 * gateway_rate / direct_rate,
        );
    });
}
