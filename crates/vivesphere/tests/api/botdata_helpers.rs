//! Helpers for the Secure Bot Data tests: users with roles and teams, stores and reveals, the
//! `vivesphere botdata` CLI against a running app's data, and reading the raw store.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::auth_helpers::{PASSWORD, login_ok, send_json};
use crate::helpers::{TestApp, repo_config_dir};

pub const PREFIX: &str = "/api/v1/botdata";

/// Creates a user with roles and an optional team, logs in, returns (user id, token).
pub async fn user(
    app: &TestApp,
    admin: &str,
    username: &str,
    roles: &[&str],
    team: Option<&str>,
) -> (String, String) {
    let mut body = json!({"username": username, "password": PASSWORD, "roles": roles});
    if let Some(team) = team {
        body["team"] = json!(team);
    }
    let response = send_json(app, Method::POST, "/api/v1/auth/users", admin, body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    let token = login_ok(app, username, PASSWORD).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    (created["user"]["id"].as_str().unwrap().to_string(), token)
}

pub async fn store(app: &TestApp, token: &str, bot_id: &str, data: Value) -> reqwest::Response {
    send_json(
        app,
        Method::POST,
        &format!("{PREFIX}/store"),
        token,
        json!({"bot_id": bot_id, "data": data}),
    )
    .await
}

pub async fn store_ok(app: &TestApp, token: &str, bot_id: &str, data: Value) {
    let response = store(app, token, bot_id, data).await;
    assert_eq!(response.status(), StatusCode::CREATED, "store {bot_id}");
}

pub async fn retrieve(app: &TestApp, token: &str, bot_id: &str) -> reqwest::Response {
    app.client
        .get(app.url(&format!(
            "{PREFIX}/retrieve?bot_id={}",
            platform::http::form::percent_encode(bot_id)
        )))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

pub async fn reveal(app: &TestApp, token: &str, bot_id: &str, field: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("{PREFIX}/bots/{bot_id}/fields/{field}/reveal")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

pub async fn revealed_value(app: &TestApp, token: &str, bot_id: &str, field: &str) -> String {
    let response = reveal(app, token, bot_id, field).await;
    assert_eq!(response.status(), StatusCode::OK, "reveal {bot_id}/{field}");
    let body: Value = response.json().await.unwrap();
    body["value"].as_str().unwrap().to_string()
}

pub async fn post(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

pub async fn delete(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.client
        .delete(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// An error response's status and code.
pub async fn error_of(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "error", "{body}");
    (status, body["error_code"].as_str().unwrap().to_string())
}

/// `vivesphere botdata <args>` on the app's data (its SQLite files or PostgreSQL database,
/// its KEK directory). Returns (success, stdout, stderr). Async, so the in-process app keeps
/// running (and finishing its transactions) while the command waits for the database.
pub async fn botdata_cli(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    let data = app.data_dir.path();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_vivesphere"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("USER", "ci-operator")
        .env("VIVESPHERE_CONFIG_DIR", repo_config_dir())
        .env("VIVESPHERE_DATABASE__PATH", data.join("{service}.db"))
        .env("VIVESPHERE_QUEUE__PATH", data.join("queue.db"))
        .env("VIVESPHERE_SECURE_BOT_DATA__KEK_DIR", data.join("kek"))
        .env("VIVESPHERE_TELEMETRY__SPILL_DIR", data.join("spill"))
        .env("VIVESPHERE_TELEMETRY__LOG_LEVEL", "warn")
        .arg("botdata")
        .args(args);
    if let Some(url) = &app.postgres_url {
        command.env("VIVESPHERE_DATABASE__URL", url);
    }
    let output = command.output().await.expect("the binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

/// A connection to the app's Secure Bot Data store, as only a test can open it.
pub async fn raw_store(app: &TestApp) -> sqlx::AnyPool {
    crate::helpers::service_db(app, "secure_bot_data").await
}

/// The CloudEvents of a queue message: one event, or a CloudEvents JSON batch (an array), as
/// Secure Bot Data's outbox relay sends them. A single event's id is the message's dedupe id.
pub fn cloudevents_of(message: &platform::queue::Message) -> Vec<Value> {
    match serde_json::from_slice::<Value>(&message.payload).unwrap() {
        Value::Array(events) => {
            assert!(
                message.id.starts_with("batch:"),
                "a batch carries a batch id: {}",
                message.id
            );
            events
        }
        event => {
            assert_eq!(
                event["id"],
                message.id.as_str(),
                "the CloudEvents id is the dedupe id"
            );
            vec![event]
        }
    }
}

/// The actions of the newest 500 audit entries (an admin's view).
pub async fn audit_actions(app: &TestApp, admin: &str) -> Vec<String> {
    let audit =
        crate::auth_helpers::get_json(app, &format!("{PREFIX}/audit?limit=500"), admin).await;
    audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect()
}
