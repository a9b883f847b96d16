//! The cluster backends: every service on PostgreSQL (each in its own schema) and the queue
//! on NATS JetStream. Skipped, loudly, when VIVESPHERE_TEST_DATABASE_URL /
//! VIVESPHERE_TEST_NATS_URL are not set.

use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Row;

use crate::helpers::spawn;
use platform::testing::{TestPostgres, nats_settings};

/// The whole app on a fresh PostgreSQL database and a private NATS namespace, or `None`
/// (after the loud skip notice) when either is not configured.
async fn spawn_cluster_shaped() -> Option<crate::helpers::TestApp> {
    let settings = nats_settings()?;
    let pg = TestPostgres::create().await?;
    Some(
        spawn(
            None,
            &[
                ("VIVESPHERE_QUEUE__KIND", "nats"),
                ("VIVESPHERE_QUEUE__URL", &settings.url),
                ("VIVESPHERE_QUEUE__NAMESPACE", &settings.namespace),
            ],
            Some(pg),
        )
        .await,
    )
}

#[tokio::test]
async fn every_service_runs_on_postgres_in_its_own_schema() {
    let Some(pg) = TestPostgres::create().await else {
        return;
    };
    let url = pg.url().to_string();
    let app = spawn(None, &[], Some(pg)).await;
    let response = app.get("/health/ready").await;
    assert_eq!(response.status(), StatusCode::OK);

    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let schemas: Vec<String> = sqlx::query(
        "SELECT schema_name::text AS schema_name FROM information_schema.schemata ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .map(|row| row.try_get("schema_name").unwrap())
    .collect();
    for schema in [
        "authentication",
        "bot_manager",
        "configuration",
        "logging",
        "secure_bot_data",
    ] {
        assert!(
            schemas.iter().any(|s| s == schema),
            "{schema} missing from {schemas:?}"
        );
        // Each service's migration history lives in its own schema.
        let history: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) AS n FROM information_schema.tables \
             WHERE table_schema = '{schema}' AND table_name = '_sqlx_migrations'"
        )))
        .fetch_one(&pool)
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
        assert_eq!(history, 1, "{schema}");
    }
    pool.close().await;
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_app_runs_on_nats_and_reports_it_ready() {
    let Some(settings) = nats_settings() else {
        return;
    };
    let app = spawn(
        None,
        &[
            ("VIVESPHERE_QUEUE__KIND", "nats"),
            ("VIVESPHERE_QUEUE__URL", &settings.url),
            ("VIVESPHERE_QUEUE__NAMESPACE", &settings.namespace),
        ],
        None,
    )
    .await;
    // The client connects in the background; readiness turns ok once it has.
    let mut last = Value::Null;
    for _ in 0..100 {
        let response = app.get("/health/ready").await;
        if response.status() == StatusCode::OK {
            return;
        }
        last = response.json().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("never ready on NATS: {last}");
}

/// Readiness means "can serve": with its database answering, a service stays ready while
/// the queue is away, reported as degraded in `/health` and in `vivesphere_queue_up`.
#[tokio::test]
async fn an_unreachable_nats_leaves_the_app_ready_but_degraded_naming_the_queue() {
    // Port 1 on loopback: nothing listens there, so the client keeps retrying.
    let app = spawn(
        Some("bot-manager"),
        &[
            ("VIVESPHERE_QUEUE__KIND", "nats"),
            ("VIVESPHERE_QUEUE__URL", "nats://127.0.0.1:1"),
        ],
        None,
    )
    .await;
    for path in ["/health/ready", "/api/v1/bots/health"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "degraded", "{body}");
        assert_eq!(body["checks"]["bot-manager.database"], "ok");
        assert!(
            body["checks"]["queue"]
                .as_str()
                .unwrap()
                .starts_with("degraded: "),
            "{body}"
        );
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("vivesphere_queue_up 0"), "{metrics}");
}

#[tokio::test]
async fn secret_reveals_reach_nats_as_user_activity_from_a_postgres_store() {
    let Some(app) = spawn_cluster_shaped().await else {
        return;
    };
    let admin = crate::auth_helpers::admin_token(&app).await;
    crate::botdata_helpers::store_ok(
        &app,
        &admin,
        "nats-bot",
        serde_json::json!({"password": "nats-canary-password"}),
    )
    .await;
    crate::botdata_helpers::revealed_value(&app, &admin, "nats-bot", "password").await;
    let mut consumer = app
        .queue
        .clone()
        .unwrap()
        .consumer(platform::queue::ConsumerSpec::new(
            "botdata-nats-test",
            "logs.user_activity.secure_bot_data",
        ))
        .await
        .unwrap();
    let mut actions = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    while !actions.contains(&"botdata.reveal".to_string()) {
        let delivery = tokio::time::timeout_at(deadline, consumer.next())
            .await
            .expect("the reveal event arrives on NATS")
            .unwrap();
        for event in crate::botdata_helpers::cloudevents_of(&delivery.message) {
            assert!(!event.to_string().contains("nats-canary-password"));
            actions.push(event["data"]["action"].as_str().unwrap().to_string());
        }
        delivery.ack().await.unwrap();
    }
    assert!(
        actions.contains(&"botdata.write".to_string()),
        "{actions:?}"
    );
}

#[tokio::test]
async fn secret_audit_events_wait_in_the_outbox_while_the_queue_is_down() {
    // Port 1 on loopback: nothing listens, so every publish fails.
    let app = spawn(
        None,
        &[
            ("VIVESPHERE_QUEUE__KIND", "nats"),
            ("VIVESPHERE_QUEUE__URL", "nats://127.0.0.1:1"),
        ],
        None,
    )
    .await;
    let admin = crate::auth_helpers::admin_token(&app).await;
    crate::botdata_helpers::store_ok(
        &app,
        &admin,
        "queue-down-bot",
        serde_json::json!({"email": "down@example.com"}),
    )
    .await;
    // The reveal is audited in the database even though its event cannot leave yet.
    assert_eq!(
        crate::botdata_helpers::revealed_value(&app, &admin, "queue-down-bot", "email").await,
        "down@example.com"
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let db = crate::botdata_helpers::raw_store(&app).await;
    let waiting: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM audit WHERE bot_id = 'queue-down-bot' AND published = 0",
    )
    .fetch_one(&db)
    .await
    .unwrap()
    .try_get("n")
    .unwrap();
    assert_eq!(waiting, 2, "the write and the reveal wait to be relayed");
}

#[tokio::test]
async fn log_events_travel_through_nats_into_postgres_partitions() {
    let Some(app) = spawn_cluster_shaped().await else {
        return;
    };
    let admin = crate::auth_helpers::admin_token(&app).await;
    let queue = app.queue.clone().unwrap();
    let event = serde_json::json!({
        "specversion": "1.0", "id": "nats-debug-1", "source": "vivesphere/bot-manager",
        "type": "vivesphere.bot-manager.debug", "time": app.clock.now_rfc3339(),
        "data": {"level": "warn", "message": "rate limit close for bot 7"}
    });
    queue
        .publish(
            "logs.debug.bot_manager",
            "nats-debug-1",
            event.to_string().into(),
        )
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    let found = loop {
        let body: Value = crate::auth_helpers::get_json(
            &app,
            "/api/v1/logs/events?category=debug&q=rate%20limit",
            &admin,
        )
        .await;
        if !body["items"].as_array().unwrap().is_empty() {
            break body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never stored: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let stored = &found["items"][0];
    assert_eq!(stored["id"], "nats-debug-1");
    assert_eq!(stored["service"], "bot-manager");
    assert_eq!(stored["level"], "warn");
    // It landed in today's day partition of the debug category.
    let db = crate::helpers::service_db(&app, "logging").await;
    let partitions: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent \
         WHERE p.relname = 'events_debug'",
    )
    .fetch_one(&db)
    .await
    .unwrap()
    .try_get("n")
    .unwrap();
    assert_eq!(partitions, 1);
}
