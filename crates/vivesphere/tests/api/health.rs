//! Readiness, liveness, per-service health and metrics of the running app.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::spawn_app;

const SERVICES: [(&str, &str); 5] = [
    ("authentication", "/api/v1/auth"),
    ("bot-manager", "/api/v1/bots"),
    ("configuration", "/api/v1/config"),
    ("logging", "/api/v1/logs"),
    ("secure-bot-data", "/api/v1/botdata"),
];

#[tokio::test]
async fn ready_checks_every_database_and_the_queue() {
    let app = spawn_app().await;
    for path in ["/health/ready", "/health"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "ready");
        assert_eq!(body["checks"]["queue"], "ok");
        for (name, _) in SERVICES {
            assert_eq!(body["checks"][format!("{name}.database")], "ok", "{body}");
        }
    }
    let live: Value = app.get("/health/live").await.json().await.unwrap();
    assert_eq!(live["status"], "live");
}

#[tokio::test]
async fn each_service_reports_its_own_readiness_under_its_prefix() {
    let app = spawn_app().await;
    for (name, prefix) in SERVICES {
        let response = app.get(&format!("{prefix}/health")).await;
        assert_eq!(response.status(), StatusCode::OK, "{prefix}");
        let body: Value = response.json().await.unwrap();
        let checks = body["checks"].as_object().unwrap();
        // Its database and the queue, and Secure Bot Data's vault (sealed or not).
        let expected = if name == "secure-bot-data" { 3 } else { 2 };
        assert_eq!(checks.len(), expected, "{body}");
        assert_eq!(checks[&format!("{name}.database")], "ok");
        assert_eq!(checks["queue"], "ok");
        if name == "secure-bot-data" {
            assert_eq!(checks["secure-bot-data.vault"], "ok");
        }
    }
}

#[tokio::test]
async fn readiness_fails_while_draining() {
    let app = spawn_app().await;
    let health = app.get("/health/ready").await;
    assert_eq!(health.status(), StatusCode::OK);
    let addr = app.addr;
    let client = app.client.clone();
    app.shutdown.cancel();
    // Between the signal and the listener closing, a probe may still get through; if it
    // does, it must say "not ready" rather than "ready".
    if let Ok(response) = client
        .get(format!("http://{addr}/health/ready"))
        .send()
        .await
    {
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    app.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn metrics_count_requests_per_route_template_with_latency() {
    let app = spawn_app().await;
    for _ in 0..3 {
        app.get("/api/v1/bots/health").await;
    }
    app.get("/does/not/exist").await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(
        text.contains(r#"vivesphere_http_requests_total{method="GET",route="/api/v1/bots/health",status="200"} 3"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"vivesphere_http_requests_total{method="GET",route="unmatched",status="404"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"vivesphere_http_request_duration_seconds_count{method="GET",route="/api/v1/bots/health"} 3"#),
        "{text}"
    );
    assert!(
        text.contains("# TYPE vivesphere_http_requests_in_flight gauge"),
        "{text}"
    );
    // The /metrics request itself is in flight while it is being answered.
    assert!(
        text.contains(r#"vivesphere_http_requests_in_flight{method="GET",route="/metrics"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn every_queue_consumer_reports_its_backlog() {
    let app = spawn_app().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let wanted = [
        r#"vivesphere_queue_consumer_backlog{consumer="bot-manager-jobs"} 0"#,
        r#"vivesphere_queue_consumer_backlog{consumer="logging-writer"} "#,
    ];
    loop {
        let text = app.get("/metrics").await.text().await.unwrap();
        if wanted.iter().all(|line| text.contains(line)) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
