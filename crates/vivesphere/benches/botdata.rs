//! `cargo bench --bench botdata`: the Secure Bot Data numbers the issue asks for.
//!
//! 1. AES-GCM envelope sealing in-process: seals and opens per second of a bot-sized secret
//!    (fresh DEK, value sealed, DEK wrapped), and bulk throughput in MiB/s.
//! 2. Store and reveal operations per second, with p50/p99, against the release binary over
//!    HTTP: on SQLite with the embedded queue (one-process mode), and on PostgreSQL with NATS
//!    JetStream when `VIVESPHERE_TEST_DATABASE_URL` (and `VIVESPHERE_TEST_NATS_URL`) are set.
//!    Every reveal is audited (group-committed) before it answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use secure_bot_data::crypto::{self, Kek, RecordRef};
use serde_json::json;

mod support;

use support::{Server, ms, percentile};

const BOTS: usize = 200;

fn envelope_rates() {
    let kek = Kek::new(1, crypto::random_key().as_ref()).unwrap();
    let record = RecordRef {
        bot_id: "0193a0c4-7b7e-7c4e-9a51-1d2e3f405060",
        field: "oauth_refresh_token",
        version: 7,
    };
    let secret = b"dGhpcyBpcyBhIHR5cGljYWwgT0F1dGggMi4wIHJlZnJlc2ggdG9rZW4gdmFsdWU";
    let count = 200_000;
    let started = Instant::now();
    let mut sealed = None;
    for _ in 0..count {
        sealed = Some(crypto::seal(&kek, record, secret));
    }
    let seal_rate = count as f64 / started.elapsed().as_secs_f64();
    let sealed = sealed.unwrap();
    let started = Instant::now();
    for _ in 0..count {
        let opened = crypto::open(&kek, record, &sealed).unwrap();
        assert_eq!(opened.len(), secret.len());
    }
    let open_rate = count as f64 / started.elapsed().as_secs_f64();
    println!(
        "envelope, {}-byte secret: seal {seal_rate:>9.0}/s  open {open_rate:>9.0}/s (one core)",
        secret.len()
    );

    let bulk = vec![0x5au8; 1024 * 1024];
    let rounds = 200;
    let started = Instant::now();
    let mut last = None;
    for _ in 0..rounds {
        last = Some(crypto::seal(&kek, record, &bulk));
    }
    let seal_mib = rounds as f64 / started.elapsed().as_secs_f64();
    let last = last.unwrap();
    let started = Instant::now();
    for _ in 0..rounds {
        crypto::open(&kek, record, &last).unwrap();
    }
    let open_mib = rounds as f64 / started.elapsed().as_secs_f64();
    println!(
        "AES-256-GCM bulk (1 MiB values): seal {seal_mib:>7.0} MiB/s  open {open_mib:>7.0} MiB/s"
    );
}

/// Runs `make_request` from `clients` concurrent loops for `duration`; returns the rate and
/// the sorted latencies. Every response must be a success.
async fn load<F, Fut>(clients: usize, duration: Duration, make_request: F) -> (f64, Vec<Duration>)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = reqwest::StatusCode> + Send,
{
    let make_request = Arc::new(make_request);
    let running = Arc::new(AtomicBool::new(true));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|worker| {
            let (make_request, running) = (make_request.clone(), running.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut i = worker;
                while running.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let status = make_request(i).await;
                    assert!(status.is_success(), "{status}");
                    latencies.push(sent.elapsed());
                    i += clients;
                }
                latencies
            })
        })
        .collect();
    tokio::time::sleep(duration).await;
    running.store(false, Ordering::Relaxed);
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap());
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort();
    (rate, all)
}

fn http_numbers(label: &str, extra_env: &[(String, String)]) {
    let server = Server::start(extra_env);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        platform::install_crypto_provider();
        let client = reqwest::Client::new();
        let base = server.base.clone();
        let token = Arc::new(server.ready_admin_token(&client).await);
        for bot in 0..BOTS {
            let response = client
                .post(format!("{base}/api/v1/botdata/store"))
                .bearer_auth(token.as_str())
                .json(&json!({"bot_id": format!("bench-{bot}"), "data": {
                    "email": format!("bench-{bot}@example.com"),
                    "oauth_refresh_token": "dGhpcyBpcyBhIHR5cGljYWwgT0F1dGggMi4wIHJlZnJlc2g",
                }}))
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success());
        }

        let (client_s, base_s, token_s) = (client.clone(), base.clone(), token.clone());
        let (store_rate, store_lat) = load(16, Duration::from_secs(5), move |i| {
            let (client, base, token) = (client_s.clone(), base_s.clone(), token_s.clone());
            async move {
                client
                    .put(format!(
                        "{base}/api/v1/botdata/bots/bench-{}/fields/password",
                        i % BOTS
                    ))
                    .bearer_auth(token.as_str())
                    .json(&json!({"value": format!("rotated-password-{i}")}))
                    .send()
                    .await
                    .unwrap()
                    .status()
            }
        })
        .await;
        let (client_r, base_r, token_r) = (client.clone(), base.clone(), token.clone());
        let (reveal_rate, reveal_lat) = load(32, Duration::from_secs(6), move |i| {
            let (client, base, token) = (client_r.clone(), base_r.clone(), token_r.clone());
            async move {
                client
                    .post(format!(
                        "{base}/api/v1/botdata/bots/bench-{}/fields/oauth_refresh_token/reveal",
                        i % BOTS
                    ))
                    .bearer_auth(token.as_str())
                    .send()
                    .await
                    .unwrap()
                    .status()
            }
        })
        .await;
        println!(
            "{label}: store (PUT, 16 clients)  {store_rate:>7.0}/s  p50 {:6.2} ms  p99 {:6.2} ms",
            ms(percentile(&store_lat, 0.5)),
            ms(percentile(&store_lat, 0.99)),
        );
        println!(
            "{label}: reveal (audited, 32 cl.) {reveal_rate:>7.0}/s  p50 {:6.2} ms  p99 {:6.2} ms",
            ms(percentile(&reveal_lat, 0.5)),
            ms(percentile(&reveal_lat, 0.99)),
        );
    });
}

fn main() {
    envelope_rates();
    http_numbers("sqlite + embedded queue", &[]);
    let Some((postgres, env, label)) = support::cluster_backends() else {
        return;
    };
    http_numbers(label, &env);
    drop(postgres);
}
