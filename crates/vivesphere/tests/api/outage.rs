//! A real NATS outage: the app runs against a private nats-server that is stopped and started
//! again. Nothing acknowledged or recorded while it was down is lost: user_activity waits in
//! the spill file, Secure Bot Data's audit events in their outbox, and both reach the Logging
//! service once NATS is back.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::auth_helpers::{admin_token, get, login_ok};
use crate::botdata_helpers::{revealed_value, store_ok, user};
use crate::helpers::spawn;

const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// A nats-server with JetStream on `port`, storing in `dir`; stopped when dropped.
struct NatsServer(Child);

impl NatsServer {
    fn start(port: u16, dir: &std::path::Path) -> Self {
        let child = Command::new(NATS_SERVER)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "nats-server did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self(child)
    }

    /// A clean stop (SIGTERM), as a restarted pod or a rolling upgrade would do.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_for_event(app: &crate::helpers::TestApp, token: &str, query: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
    loop {
        let response = get(app, &format!("/api/v1/logs/events?{query}"), token).await;
        if response.status() == StatusCode::OK {
            let body: Value = response.json().await.unwrap();
            if !body["items"].as_array().unwrap().is_empty() {
                return body;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never arrived after the outage: {query}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn events_recorded_while_nats_is_down_arrive_once_it_is_back() {
    if !std::path::Path::new(NATS_SERVER).exists() {
        eprintln!("=== SKIPPED: NATS outage test ({NATS_SERVER} not installed)");
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let port = free_port();
    let nats = NatsServer::start(port, store.path());
    let url = format!("nats://127.0.0.1:{port}");
    let app = spawn(
        None,
        &[
            ("VIVESPHERE_QUEUE__KIND", "nats"),
            ("VIVESPHERE_QUEUE__URL", &url),
            ("VIVESPHERE_QUEUE__NAMESPACE", "outage"),
        ],
        None,
    )
    .await;
    let admin = admin_token(&app).await;
    wait_for_event(&app, &admin, "action=login.succeeded").await;

    nats.stop();
    // While NATS is down: a user is created and logs in (user_activity goes to the spill
    // file), and a secret is stored and revealed (audit rows wait in the outbox).
    let (user_id, _) = user(&app, &admin, "during-outage", &["Manager"], None).await;
    login_ok(&app, "during-outage", crate::auth_helpers::PASSWORD).await;
    store_ok(
        &app,
        &admin,
        "outage-bot",
        json!({"email": "o@example.com"}),
    )
    .await;
    assert_eq!(
        revealed_value(&app, &admin, "outage-bot", "email").await,
        "o@example.com"
    );
    let spill = app.data_dir.path().join("spill/events.ndjson");
    assert!(
        std::fs::read_to_string(&spill).is_ok_and(|text| text.contains("user.created")),
        "user_activity waits on disk while NATS is down"
    );

    let _nats = NatsServer::start(port, store.path());
    // Two logins during the outage (the helper's and ours): both arrive, each once.
    let query = format!("action=login.succeeded&actor_id={user_id}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
    loop {
        let logins = wait_for_event(&app, &admin, &query).await;
        let n = logins["items"].as_array().unwrap().len();
        if n >= 2 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let settled = wait_for_event(&app, &admin, &query).await;
            assert_eq!(settled["items"].as_array().unwrap().len(), 2, "{settled}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{logins}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_for_event(&app, &admin, "action=user.created").await;
    let reveals = wait_for_event(&app, &admin, "action=botdata.reveal").await;
    assert_eq!(reveals["items"].as_array().unwrap().len(), 1, "stored once");
    assert!(!reveals.to_string().contains("o@example.com"));
}
