//! Change-to-applied latency of the central configuration across 50 subscribers, as a
//! cluster sees it: the release binary on PostgreSQL and NATS runs the Configuration service;
//! this process runs 50 config clients, each with its own NATS connection, token and live
//! configuration (as 50 service replicas would). Each round an admin changes a global
//! setting; the figure is the time from sending the change to each client having applied
//! it (notice over NATS, HTTP read, validate, swap).
//!
//! `cargo bench --bench config` with VIVESPHERE_TEST_DATABASE_URL and
//! VIVESPHERE_TEST_NATS_URL set. CONFIG_BENCH_SUBSCRIBERS and CONFIG_BENCH_ROUNDS change the
//! shape (default 50 and 40). Goal: p99 ≤ 200 ms.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use platform::auth::ServiceTokens;
use platform::config::central::DiskCopy;
use platform::config::{
    CentralSource, ConfigClient, ConfigLoader, LiveConfig, Profile, QueueKind, QueueSettings,
    Secret,
};
use serde_json::json;
use support::{Server, cluster_backends, env_number, ms, percentile};
use tokio_util::sync::CancellationToken;

fn main() {
    let subscribers = env_number("CONFIG_BENCH_SUBSCRIBERS", 50);
    let rounds = env_number("CONFIG_BENCH_ROUNDS", 40);
    let Some((_postgres, mut env, label)) = cluster_backends() else {
        return;
    };
    let Some(namespace) = env
        .iter()
        .find(|(k, _)| k == "VIVESPHERE_QUEUE__NAMESPACE")
        .map(|(_, v)| v.clone())
    else {
        println!("config: skipped (set VIVESPHERE_TEST_NATS_URL)");
        return;
    };
    let nats_url = std::env::var("VIVESPHERE_TEST_NATS_URL").unwrap();
    let secrets = tempfile::tempdir().unwrap();
    env.push((
        "VIVESPHERE_AUTH__SERVICE_SECRETS_DIR".into(),
        secrets.path().display().to_string(),
    ));
    let server = Server::start(&env);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    platform::install_crypto_provider();
    runtime.block_on(async move {
        let http = reqwest::Client::new();
        let admin = server.ready_admin_token(&http).await;
        let secret = std::fs::read_to_string(secrets.path().join("logging.secret"))
            .expect("the Authentication service wrote the logging client's secret");
        let secret = Secret::new(secret.trim().to_string());
        let loader = ConfigLoader::new(support::CONFIG_DIR, Vec::new(), vivesphere::registry::config_defaults())
            .unwrap();
        let catalog = Arc::new(vivesphere::registry::catalog());
        let caches = tempfile::tempdir().unwrap();
        let shutdown = CancellationToken::new();
        let mut lives = Vec::new();
        for i in 0..subscribers {
            let queue = platform::queue::connect(&QueueSettings {
                kind: QueueKind::Nats,
                url: nats_url.clone(),
                namespace: namespace.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
            let initial = Arc::new(loader.load(Some("logging")).unwrap());
            let live = LiveConfig::new("logging", loader.clone(), Some("logging".into()), catalog.clone(), initial, 0);
            let tokens = ServiceTokens::new(&server.base, "logging", secret.clone(), "configuration", platform::Clock::system()).unwrap();
            let client = ConfigClient::new(
                live.clone(),
                CentralSource::http(&server.base, Arc::new(tokens)).unwrap(),
                DiskCopy::new(caches.path().join(i.to_string()), "logging", Profile::Development),
                Profile::Development,
                Duration::from_secs(3600),
            );
            client.sync().await.unwrap();
            tokio::spawn(client.run(queue, shutdown.clone()));
            lives.push(live);
        }
        // Let every subscription reach the server before the first change.
        tokio::time::sleep(Duration::from_millis(500)).await;

        let mut applied = Vec::with_capacity(subscribers * rounds);
        let mut writes = Vec::with_capacity(rounds);
        for round in 0..rounds {
            let days = 2 + (round % 50) as i64;
            let mut watchers: Vec<_> = lives.iter().map(LiveConfig::watch_revision).collect();
            let sent = Instant::now();
            let response = http
                .post(format!("{}/api/v1/config/update", server.base))
                .bearer_auth(&admin)
                .json(&json!({"service": "global", "settings": {"logging.retention.debug": days}}))
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success(), "{}", response.status());
            writes.push(sent.elapsed());
            let revision = response.json::<serde_json::Value>().await.unwrap()["revision"]
                .as_i64()
                .unwrap();
            let waits = watchers.iter_mut().map(|watcher| async move {
                tokio::time::timeout(Duration::from_secs(10), watcher.wait_for(|r| *r >= revision))
                    .await
                    .expect("applied within 10 s")
                    .unwrap();
                sent.elapsed()
            });
            applied.extend(futures::future::join_all(waits).await);
        }
        shutdown.cancel();
        applied.sort();
        writes.sort();
        println!(
            "config ({label}): {subscribers} subscribers x {rounds} changes: change-to-applied p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (goal p99 <= 200 ms); the write itself p50 {:.1} ms, p99 {:.1} ms",
            ms(percentile(&applied, 0.50)),
            ms(percentile(&applied, 0.99)),
            ms(*applied.last().unwrap()),
            ms(percentile(&writes, 0.50)),
            ms(percentile(&writes, 0.99)),
        );
    });
}
