//! Faults on the multi-process topology, on loopback and bounded in time: a Bot Manager
//! replica killed mid-load, NATS stopped for 10 s, Logging down, Configuration down. Each
//! fails if a post is lost or published twice, or an event is lost.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{ADMIN_PASSWORD, MID_PASSWORD, SERIAL, eventually, in_ms, start, start_with};

/// Every text exactly once.
fn assert_each_once(published: &[String], expected: &[String]) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for text in published {
        *counts.entry(text.as_str()).or_default() += 1;
    }
    for text in expected {
        assert_eq!(
            counts.get(text.as_str()),
            Some(&1),
            "{text:?} published {:?} times",
            counts.get(text.as_str())
        );
    }
    assert_eq!(
        published.len(),
        expected.len(),
        "nothing else was published"
    );
}

#[tokio::test]
async fn killing_a_bot_manager_replica_mid_load_loses_and_repeats_no_post() {
    let _serial = SERIAL.lock().await;
    let Some(mut t) = start().await else { return };
    let admin = t.login("admin", ADMIN_PASSWORD).await;
    let mut bots = Vec::new();
    let mut texts = Vec::new();
    for b in 0..3 {
        let bot = t.create_bot(&admin, &format!("loadbot{b}")).await;
        for i in 0..20 {
            let text = format!("Load post {i} of bot {b}");
            let response = t
                .send(
                    Method::POST,
                    &format!("/api/v1/bots/{bot}/posts"),
                    &admin,
                    json!({"text": text, "run_at": in_ms(1500 + i * 100)}),
                )
                .await;
            assert_eq!(response.status(), StatusCode::CREATED);
            texts.push(text);
        }
        bots.push(bot);
    }
    eventually(Duration::from_secs(30), "publishing starts", || async {
        (t.published_texts().len() >= 5).then_some(())
    })
    .await;
    t.cluster.kill("bot-manager-1").await.unwrap();
    let at_kill = t.published_texts().len();
    assert!(at_kill < texts.len(), "the replica died with work left");
    // The other replica takes over what the dead one held once its lease and ack deadline
    // pass; a post it had sent is found on X instead of being sent again.
    eventually(
        Duration::from_secs(90),
        "every post is published",
        || async {
            let mut published = 0;
            for bot in &bots {
                published += t.published_count(&admin, bot).await;
            }
            (published == texts.len()).then_some(())
        },
    )
    .await;
    assert_each_once(&t.published_texts(), &texts);
    t.cluster.stop().await;
}

#[tokio::test]
async fn user_activity_waits_while_logging_is_down_and_arrives_after() {
    let _serial = SERIAL.lock().await;
    let Some(mut t) = start().await else { return };
    let admin = t.login("admin", ADMIN_PASSWORD).await;
    t.cluster.kill("logging").await.unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        let response = t
            .send(
                Method::POST,
                "/api/v1/auth/users",
                &admin,
                json!({"username": format!("while-down-{i}"), "password": crate::PASSWORD, "roles": ["Viewer"]}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        ids.push(body["user"]["id"].as_str().unwrap().to_string());
    }
    t.cluster.spawn("logging").unwrap();
    t.cluster
        .wait_ready(&["logging".to_string()])
        .await
        .unwrap();
    eventually(
        Duration::from_secs(30),
        "every event reaches Logging",
        || async { t.activity_contains(&admin, &ids).await.then_some(()) },
    )
    .await;
    t.cluster.stop().await;
}

#[tokio::test]
async fn a_service_restarted_while_configuration_is_down_runs_on_its_last_good_copy() {
    let _serial = SERIAL.lock().await;
    let Some(mut t) = start().await else { return };
    let admin = t.login("admin", ADMIN_PASSWORD).await;
    let response = t
        .send(
            Method::POST,
            "/api/v1/config/update",
            &admin,
            json!({"service": "global", "settings": {"authentication.password.min_length": 20}}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let revision = response.json::<Value>().await.unwrap()["revision"]
        .as_i64()
        .unwrap();
    let replica_health = format!(
        "{}/health",
        t.cluster.member_named("authentication-2").unwrap().url
    );
    eventually(
        Duration::from_secs(10),
        "the replica applies it",
        || async {
            let health: Value = t
                .http
                .get(&replica_health)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (health["config"]["authentication"]["revision"].as_i64()? >= revision).then_some(())
        },
    )
    .await;

    t.cluster.kill("configuration").await.unwrap();
    t.cluster.kill("authentication-2").await.unwrap();
    t.cluster.spawn("authentication-2").unwrap();
    t.cluster
        .wait_ready(&["authentication-2".to_string()])
        .await
        .expect("starts without the Configuration service");
    // Straight to the restarted replica: the policy from its saved copy is in force.
    let response = t
        .send_to(
            "authentication-2",
            Method::POST,
            "/api/v1/auth/users",
            &admin,
            json!({"username": "short", "password": MID_PASSWORD, "roles": ["Viewer"]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("at least 20"),
        "{body}"
    );
    // And the system goes on serving through the gateway.
    let response = t
        .http
        .get(format!("{}/api/v1/bots/list", t.cluster.gateway_url()))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    t.cluster.stop().await;
}

/// A nats-server of this test's own, so stopping it disturbs no other test.
struct PrivateNats {
    binary: PathBuf,
    port: u16,
    store: tempfile::TempDir,
    child: Option<Child>,
}

impl PrivateNats {
    fn start() -> Option<Self> {
        let binary = [
            "/usr/sbin/nats-server",
            "/usr/local/bin/nats-server",
            "/usr/bin/nats-server",
        ]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.exists());
        let Some(binary) = binary else {
            eprintln!("=== SKIPPED: no nats-server binary for a private NATS");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut nats = Self {
            binary,
            port,
            store: tempfile::tempdir().unwrap(),
            child: None,
        };
        nats.run();
        Some(nats)
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server on its port and store, and waits until it takes connections.
    fn run(&mut self) {
        let child = Command::new(&self.binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on the server this test started.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test]
async fn work_and_events_accepted_while_nats_is_down_are_delivered_when_it_returns() {
    let _serial = SERIAL.lock().await;
    let Some(mut nats) = PrivateNats::start() else {
        return;
    };
    let Some(mut t) = start_with(Some(nats.url())).await else {
        return;
    };
    let admin = t.login("admin", ADMIN_PASSWORD).await;
    let bot = t.create_bot(&admin, "outagebot").await;

    nats.stop();
    let stopped = Instant::now();
    // The gateway sends nothing to services that are not ready, so these go straight to
    // the processes, which keep accepting: posts and their jobs are rows until the relay can
    // publish, events wait in each process's spill file.
    let mut texts = Vec::new();
    for i in 0..5 {
        let text = format!("Written while the queue was away {i}");
        let response = t
            .send_to(
                "bot-manager-2",
                Method::POST,
                &format!("/api/v1/bots/{bot}/posts"),
                &admin,
                json!({"text": text, "run_at": in_ms(500)}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        texts.push(text);
    }
    let mut ids = Vec::new();
    for i in 0..3 {
        let response = t
            .send_to(
                "authentication-1",
                Method::POST,
                "/api/v1/auth/users",
                &admin,
                json!({"username": format!("outage-{i}"), "password": crate::PASSWORD, "roles": ["Viewer"]}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        ids.push(body["user"]["id"].as_str().unwrap().to_string());
    }
    assert!(
        t.published_texts().is_empty(),
        "nothing can be published without the queue"
    );
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(stopped.elapsed())).await;
    nats.run();

    eventually(
        Duration::from_secs(60),
        "every post is published",
        || async { (t.published_count(&admin, &bot).await == texts.len()).then_some(()) },
    )
    .await;
    assert_each_once(&t.published_texts(), &texts);
    eventually(
        Duration::from_secs(60),
        "every event reaches Logging",
        || async { t.activity_contains(&admin, &ids).await.then_some(()) },
    )
    .await;
    t.cluster.stop().await;
}
