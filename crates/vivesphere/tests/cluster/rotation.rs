//! A signing-key rotation while the gateway and a service verify tokens continuously, with
//! one Authentication replica gone: the new key is published before it signs, and every
//! verifier reads keys from whichever replica answers, so no valid token is refused at any
//! point.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{ADMIN_PASSWORD, SERIAL, Setup, Topology, eventually, start_on};

/// The `kid` in a token's header.
fn kid_of(token: &str) -> String {
    let header = URL_SAFE_NO_PAD
        .decode(token.split('.').next().unwrap())
        .unwrap();
    serde_json::from_slice::<Value>(&header).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A login through the gateway, or `None` while it cannot answer (a replica just went).
async fn try_login(t: &Topology) -> Option<String> {
    let response = t
        .http
        .post(format!("{}/api/v1/auth/login", t.cluster.gateway_url()))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .ok()?;
    if response.status() != StatusCode::OK {
        return None;
    }
    let body: Value = response.json().await.ok()?;
    body["token"].as_str().map(str::to_string)
}

/// `vivesphere auth rotate-keys` against the cluster's database, as an operator runs it.
fn rotate_keys(t: &Topology, lead_seconds: &str) {
    let data_dir = t.cluster.admin_password_file();
    let data_dir = data_dir.parent().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_vivesphere"))
        .arg("--config-dir")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config"))
        .args(["auth", "rotate-keys"])
        .env("ENV", "development")
        .env("VIVESPHERE_DATABASE__URL", &t.database_url)
        // The cluster's own queue (its activity event goes where the services' go), and a
        // working directory of its own: nothing lands in the source tree.
        .env("VIVESPHERE_QUEUE__KIND", "nats")
        .env("VIVESPHERE_QUEUE__URL", t.cluster.queue_url())
        .env("VIVESPHERE_QUEUE__NAMESPACE", &t.queue_namespace)
        .env(
            "VIVESPHERE_QUEUE__STREAM_REPLICAS",
            t.cluster.nats_nodes().len().max(1).to_string(),
        )
        .env(
            "VIVESPHERE_QUEUE__STREAM_MAX_BYTES",
            platform::testing::TEST_STREAM_MAX_BYTES.to_string(),
        )
        .current_dir(data_dir)
        .env(
            "VIVESPHERE_AUTHENTICATION__ENCRYPTION_KEY_FILE",
            data_dir.join("authentication.key"),
        )
        .env(
            "VIVESPHERE_AUTHENTICATION__SIGNING_KEY_LEAD_SECONDS",
            lead_seconds,
        )
        .output()
        .expect("the vivesphere binary runs");
    assert!(
        output.status.success(),
        "rotate-keys: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn keys_rotate_while_the_gateway_and_a_service_verify_and_no_valid_token_is_refused() {
    let _serial = SERIAL.lock().await;
    // Longer than a verifier waits between two key refreshes (5 s), as the real lead is.
    const LEAD: &str = "8";
    let Some(mut t) = start_on(Setup {
        env: vec![
            ("VIVESPHERE_AUTHENTICATION__SIGNING_KEY_LEAD_SECONDS", LEAD),
            // Logins every moment, from one address.
            ("VIVESPHERE_GATEWAY__RATE_LIMIT__PER_MINUTE", "0"),
        ],
        ..Setup::default()
    })
    .await
    else {
        return;
    };
    let first = t.login("admin", ADMIN_PASSWORD).await;
    let old_kid = kid_of(&first);
    let tokens = Arc::new(Mutex::new(vec![first]));
    let refused = Arc::new(Mutex::new(Vec::<String>::new()));
    let checked = Arc::new(AtomicUsize::new(0));
    let stop = CancellationToken::new();
    // Every token so far, over and over: the gateway verifies it, then the Bot Manager.
    let verifying = {
        let (http, url) = (
            t.http.clone(),
            format!("{}/api/v1/bots/list", t.cluster.gateway_url()),
        );
        let (tokens, refused, checked, stop) = (
            tokens.clone(),
            refused.clone(),
            checked.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                let current = tokens.lock().unwrap().clone();
                for token in current {
                    let response = http.get(&url).bearer_auth(&token).send().await;
                    let status = response.as_ref().map(|r| r.status()).ok();
                    if status != Some(StatusCode::OK) {
                        let body = match response {
                            Ok(r) => r.text().await.unwrap_or_default(),
                            Err(err) => err.to_string(),
                        };
                        refused
                            .lock()
                            .unwrap()
                            .push(format!("{status:?} kid {}: {body}", kid_of(&token)));
                    }
                    checked.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    // The keys must now come from the other replica.
    t.cluster.kill("authentication-1").await.unwrap();
    rotate_keys(&t, LEAD);
    // New logins carry the old kid until the lead time has passed and each replica has
    // looked for a newer key (at most a minute), then the new one.
    let new_token = eventually(
        Duration::from_secs(90),
        "a token signed by the new key",
        || async {
            let token = try_login(&t).await?;
            let kid = kid_of(&token);
            tokens.lock().unwrap().push(token.clone());
            (kid != old_kid).then_some(token)
        },
    )
    .await;
    // A while of both kids in use.
    let settled = checked.load(Ordering::Relaxed);
    eventually(
        Duration::from_secs(20),
        "the new key is verified",
        || async { (checked.load(Ordering::Relaxed) > settled + 40).then_some(()) },
    )
    .await;
    stop.cancel();
    verifying.await.unwrap();
    let refused = refused.lock().unwrap().clone();
    let checked = checked.load(Ordering::Relaxed);
    eprintln!(
        "key rotation with authentication-1 down: {checked} verifications, {} refused; new kid {}",
        refused.len(),
        kid_of(&new_token)
    );
    if !refused.is_empty() {
        // Why, in the words of whoever refused.
        let reasons: Vec<String> = t
            .cluster
            .members()
            .iter()
            .flat_map(|m| {
                std::fs::read_to_string(t.cluster.log_of(&m.name))
                    .unwrap_or_default()
                    .lines()
                    .filter(|line| line.contains("token refused"))
                    .map(|line| format!("{}: {line}", m.name))
                    .collect::<Vec<_>>()
            })
            .collect();
        panic!(
            "a valid token was refused:\n{}\n{}",
            refused.join("\n"),
            reasons.join("\n")
        );
    }
    t.cluster.stop().await;
}
