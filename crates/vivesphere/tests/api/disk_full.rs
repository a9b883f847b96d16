//! A full volume under the one-process shape (SQLite files and the embedded queue): writes
//! answer 503 with `Retry-After` and store nothing, reads go on, no file is damaged, and
//! writes go through again by themselves once space returns. The volume is a size-limited
//! tmpfs mounted for the test (root only; CI runs as root).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::Row;

use crate::auth_helpers::{admin_token, get, send_json};
use crate::helpers::{spawn_in, test_clock};
use crate::volume::{SmallVolume, filler_batch, send_until_refused};

#[tokio::test]
async fn a_full_volume_refuses_writes_keeps_reads_and_recovers_by_itself() {
    if crate::helpers::apps_on_postgres() {
        // This is the SQLite shape's volume; PostgreSQL's is the cluster suite's test.
        return;
    }
    let Some((volume, dir)) = SmallVolume::mount(32) else {
        return;
    };
    let app = spawn_in(dir, None, &[], None, test_clock()).await;
    let admin = admin_token(&app).await;
    let now = app.clock.now_millis();
    let filler = volume.fill(6 * 1024 * 1024);
    let send_batch = |round: usize| {
        send_json(
            &app,
            Method::POST,
            "/api/v1/logs/batch",
            &admin,
            filler_batch(round, |i| json!(now - (round * 100 + i) as i64)),
        )
    };

    // Log batches until the volume refuses one: 503 in the standard shape, Retry-After.
    let (accepted, body) = send_until_refused(200, send_batch).await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("storage is full")
    );
    // Other writes are refused alike; nothing is half-written.
    let store = |bot: &'static str| {
        send_json(
            &app,
            Method::POST,
            "/api/v1/botdata/store",
            &admin,
            json!({"bot_id": bot, "data": {"password": "while-full"}}),
        )
    };
    assert_eq!(
        store("full-bot").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let logging = crate::helpers::service_db(&app, "logging").await;
    let stored: i64 = sqlx::query("SELECT COUNT(*) AS n FROM events WHERE category = 'debug'")
        .fetch_one(&logging)
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
    assert_eq!(stored, accepted as i64 * 100, "whole batches or nothing");
    // Reads go on.
    for path in ["/api/v1/bots/list", "/health/ready"] {
        assert_eq!(
            get(&app, path, &admin).await.status(),
            StatusCode::OK,
            "{path}"
        );
    }
    let window = format!(
        "category=debug&from={}&to={}&limit=5",
        now - 60_000,
        now + 1
    );
    let read = get(&app, &format!("/api/v1/logs/events?{window}"), &admin).await;
    assert_eq!(read.status(), StatusCode::OK);

    // Space returns: writes go through without a restart, and every file is sound.
    std::fs::remove_file(filler).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let response = store("after-bot").await;
        if response.status() == StatusCode::CREATED {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "writes never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(send_batch(accepted).await.status(), StatusCode::CREATED);
    for file in [
        "authentication",
        "bot_manager",
        "configuration",
        "logging",
        "secure_bot_data",
    ] {
        let db = crate::helpers::service_db(&app, file).await;
        let check: String = sqlx::query("PRAGMA integrity_check")
            .fetch_one(&db)
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert_eq!(check, "ok", "{file}");
    }
}
