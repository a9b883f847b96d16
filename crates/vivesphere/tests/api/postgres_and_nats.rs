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
    // The Logging service is the one consumer of the log stream (a work queue on NATS):
    // what it stored is what travelled. Patience for one redelivery (the log consumer's ack
    // deadline is 20 s): an event handed to a pull that died comes back after it.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let events = loop {
        let response = crate::auth_helpers::get(
            &app,
            "/api/v1/logs/events?category=user_activity&service=secure-bot-data&limit=500",
            &admin,
        )
        .await;
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        let body: serde_json::Value = response.json().await.unwrap();
        let actions: Vec<String> = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|event| event["action"].as_str().map(str::to_string))
            .collect();
        if ["botdata.write", "botdata.reveal"]
            .iter()
            .all(|action| actions.iter().any(|a| a == action))
        {
            break body;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!(
                "the write and the reveal never arrived through NATS: {body}; the outbox: {:?}",
                audit_outbox(&app).await
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(!events.to_string().contains("nats-canary-password"));
}

/// Secure Bot Data's audit rows and whether its relay has published them, to tell a
/// failure to send from a failure to receive.
async fn audit_outbox(app: &crate::helpers::TestApp) -> Vec<(String, i64)> {
    let pool = sqlx::AnyPool::connect(app.postgres_url.as_deref().unwrap())
        .await
        .unwrap();
    sqlx::query("SELECT action, published FROM secure_bot_data.audit ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .map(|row| {
            (
                row.try_get("action").unwrap(),
                row.try_get("published").unwrap(),
            )
        })
        .collect()
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

/// What a PostgreSQL switchover does to a running service: every connection it holds is
/// ended by the server (SQLSTATE 57P01, as the old primary stops). The service reconnects by
/// itself without a restart: requests in flight at that moment may be answered 503 with
/// Retry-After (never 500), and the next ones are served again.
#[tokio::test]
async fn every_connection_ended_by_the_server_is_replaced_without_a_restart() {
    let Some(pg) = TestPostgres::create().await else {
        return;
    };
    let url = pg.url().to_string();
    let app = spawn(None, &[], Some(pg)).await;
    let token = crate::auth_helpers::admin_token(&app).await;
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    let database: String = sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(&admin)
        .await
        .unwrap();
    let mut answers = std::collections::BTreeMap::<u16, usize>::new();
    for round in 0..5 {
        // A few requests, then every server connection of the app's database ended.
        for _ in 0..20 {
            let status = app
                .client
                .get(app.url("/api/v1/bots/list"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .status();
            *answers.entry(status.as_u16()).or_default() += 1;
        }
        let ended: i64 = sqlx::query_scalar(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&database)
        .fetch_one(&admin)
        .await
        .unwrap();
        assert!(ended > 0, "round {round}: the app held no connection");
    }
    // Right after the last cut, the service answers without being restarted.
    let response = app
        .client
        .get(app.url("/api/v1/bots/list"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.get("/health/ready").await.status(), StatusCode::OK);
    let unexpected: Vec<(&u16, &usize)> = answers
        .iter()
        .filter(|(status, _)| **status != 200 && **status != 503)
        .collect();
    assert!(unexpected.is_empty(), "{answers:?}");
    assert!(answers.get(&200).copied().unwrap_or(0) >= 90, "{answers:?}");
    admin.close().await;
    app.stop().await.unwrap();
}
