//! Secure Bot Data operations through the real `vivesphere botdata` CLI against a running
//! app's store: KEK rotation, rewrap, retiring old KEKs, backup and restore, and the canary
//! check on a PostgreSQL dump.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;

use crate::auth_helpers::{admin_token, get_json};
use crate::botdata_helpers::*;
use crate::helpers::{TestApp, spawn};

/// Reloading the keyring every second, so tests see a new KEK version quickly.
async fn spawn_fast_reload() -> TestApp {
    spawn(
        None,
        &[("VIVESPHERE_SECURE_BOT_DATA__KEK_RELOAD_INTERVAL", "1")],
        None,
    )
    .await
}

async fn kek_versions_in_store(app: &TestApp) -> Vec<i64> {
    let db = raw_store(app).await;
    let rows = sqlx::query("SELECT kek_version FROM secret_versions WHERE kek_version IS NOT NULL ORDER BY bot_id, field, version")
        .fetch_all(&db)
        .await
        .unwrap();
    db.close().await;
    rows.iter()
        .map(|r| r.get::<i64, _>("kek_version"))
        .collect()
}

async fn active_kek(app: &TestApp, token: &str) -> Value {
    let status: Value = get_json(app, &format!("{PREFIX}/sys/status"), token).await;
    status["active_kek_version"].clone()
}

#[tokio::test]
async fn rotate_then_rewrap_then_retire_the_old_kek() {
    let app = spawn_fast_reload().await;
    let admin = admin_token(&app).await;
    for i in 0..5 {
        store_ok(&app, &admin, &format!("bot-{i}"), json!({"password": format!("password-of-bot-{i}"), "email": format!("bot{i}@example.com")})).await;
    }
    assert_eq!(kek_versions_in_store(&app).await, vec![1; 10]);

    // Rotate: new writes use version 2 once the service has reread its keys.
    let (ok, out, err) = botdata_cli(&app, &["rotate-kek"]).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("KEK version 2"), "{out}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while active_kek(&app, &admin).await != json!(2) {
        assert!(
            std::time::Instant::now() < deadline,
            "the new KEK was not picked up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    store_ok(
        &app,
        &admin,
        "bot-new",
        json!({"password": "written-under-kek-2"}),
    )
    .await;
    let versions = kek_versions_in_store(&app).await;
    assert_eq!(
        versions.iter().filter(|v| **v == 2).count(),
        1,
        "{versions:?}"
    );

    // Retiring version 1 is refused while data keys still need it.
    let (ok, _, err) = botdata_cli(&app, &["retire-keks", "--below", "2"]).await;
    assert!(!ok);
    assert!(err.contains("rewrap"), "{err}");

    // Rewrap moves every data key to version 2; the values do not change.
    let ciphertexts_before = ciphertexts(&app).await;
    let (ok, out, err) = botdata_cli(&app, &["rewrap", "--batch", "4"]).await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("rewrapped 4, 6 to go"),
        "progress is shown: {out}"
    );
    assert!(
        out.contains("done: 10 data key(s) now under KEK version 2"),
        "{out}"
    );
    assert_eq!(kek_versions_in_store(&app).await, vec![2; 11]);
    assert_eq!(
        ciphertexts(&app).await,
        ciphertexts_before,
        "rewrap touched the ciphertexts"
    );
    // Running it again finds nothing left: resumable and idempotent.
    let (ok, out, _) = botdata_cli(&app, &["rewrap"]).await;
    assert!(ok && out.contains("done: 0 data key(s)"), "{out}");

    let (ok, out, err) = botdata_cli(&app, &["retire-keks", "--below", "2"]).await;
    assert!(ok, "{out}{err}");
    // With version 1 retired, its file can go; every value still opens.
    std::fs::remove_file(app.data_dir.path().join("kek/1")).unwrap();
    let unsealed = post(&app, &format!("{PREFIX}/sys/unseal"), &admin).await;
    assert_eq!(unsealed.status(), StatusCode::OK);
    let status: Value = unsealed.json().await.unwrap();
    assert_eq!(status["kek_versions"], json!([2]));
    assert_eq!(status["min_decryption_version"], 2);
    for i in 0..5 {
        assert_eq!(
            revealed_value(&app, &admin, &format!("bot-{i}"), "password").await,
            format!("password-of-bot-{i}")
        );
    }
    let (ok, out, _) = botdata_cli(&app, &["status"]).await;
    assert!(ok);
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["data_keys_by_kek_version"], json!({"2": 11}));

    let actions = audit_actions(&app, &admin).await;
    for action in ["rotate", "rewrap", "retire"] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} not audited: {actions:?}"
        );
    }
}

async fn ciphertexts(app: &TestApp) -> Vec<String> {
    let db = raw_store(app).await;
    let rows = sqlx::query("SELECT ciphertext FROM secret_versions WHERE bot_id LIKE 'bot-_' ORDER BY bot_id, field, version")
        .fetch_all(&db)
        .await
        .unwrap();
    db.close().await;
    rows.iter()
        .map(|r| r.get::<String, _>("ciphertext"))
        .collect()
}

#[tokio::test]
async fn a_backup_holds_no_key_or_plaintext_and_restores_into_an_empty_store() {
    let canary = "CANARY-backup-5b1e-plaintext";
    let app = spawn_fast_reload().await;
    let admin = admin_token(&app).await;
    store_ok(
        &app,
        &admin,
        "bot-b",
        json!({"password": canary, "email": "b@example.com"}),
    )
    .await;
    store_ok(
        &app,
        &admin,
        "bot-b",
        json!({"password": "second-version-of-it"}),
    )
    .await;

    let backup_file = app.data_dir.path().join("botdata-backup.ndjson");
    let (ok, out, err) =
        botdata_cli(&app, &["backup", "--out", backup_file.to_str().unwrap()]).await;
    assert!(ok, "{out}{err}");
    let backup = std::fs::read_to_string(&backup_file).unwrap();
    assert!(!backup.contains(canary), "the backup holds a plaintext");
    let kek = std::fs::read_to_string(app.data_dir.path().join("kek/1")).unwrap();
    assert!(!backup.contains(kek.trim()), "the backup holds the KEK");
    assert_eq!(
        backup
            .lines()
            .filter(|l| l.contains("\"type\":\"version\""))
            .count(),
        3
    );

    // Restore into a second, empty app that has the same KEK mounted.
    let other = spawn_fast_reload().await;
    std::fs::create_dir_all(other.data_dir.path().join("kek")).unwrap();
    let other_kek = other.data_dir.path().join("kek/1");
    std::fs::remove_file(&other_kek).ok();
    std::fs::copy(app.data_dir.path().join("kek/1"), &other_kek).unwrap();
    let (ok, out, err) = botdata_cli(
        &other,
        &["restore", "--from", backup_file.to_str().unwrap()],
    )
    .await;
    assert!(ok, "{out}{err}");
    let other_admin = admin_token(&other).await;
    let unsealed = post(&other, &format!("{PREFIX}/sys/unseal"), &other_admin).await;
    assert_eq!(unsealed.status(), StatusCode::OK);
    let body: Value = retrieve(&other, &other_admin, "bot-b")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["data"],
        json!({"password": "second-version-of-it", "email": "b@example.com"})
    );
    let old: Value = post(
        &other,
        &format!("{PREFIX}/bots/bot-b/fields/password/reveal?version=1"),
        &other_admin,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(old["value"], canary);

    // A store that is not empty refuses a restore.
    let (ok, _, err) = botdata_cli(
        &other,
        &["restore", "--from", backup_file.to_str().unwrap()],
    )
    .await;
    assert!(!ok);
    assert!(err.contains("not empty"), "{err}");
}

#[tokio::test]
async fn a_postgres_dump_holds_no_plaintext() {
    let Some(pg) = platform::testing::TestPostgres::create().await else {
        return;
    };
    let canary = "CANARY-pgdump-91d2-plaintext";
    let app = spawn(None, &[], Some(pg)).await;
    let admin = admin_token(&app).await;
    store_ok(&app, &admin, "bot-pg", json!({"password": canary})).await;
    assert_eq!(
        revealed_value(&app, &admin, "bot-pg", "password").await,
        canary
    );
    let url = app.postgres_url.clone().unwrap();
    let dump = std::process::Command::new("pg_dump")
        .args(["--data-only", "--schema=secure_bot_data", &url])
        .output()
        .expect("pg_dump runs");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let text = String::from_utf8_lossy(&dump.stdout);
    assert!(text.contains("bot-pg"), "the dump is empty: {text}");
    assert!(
        text.contains("hmac-sha256:v1:"),
        "the audit rows are in the dump"
    );
    assert!(
        !text.contains(canary),
        "a PostgreSQL dump holds the plaintext"
    );
}
