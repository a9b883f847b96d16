//! Routing of the running app: error shapes for unknown routes, request ids, OpenAPI and the
//! offline docs, and which routes a single target serves.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{spawn, spawn_app};

#[tokio::test]
async fn unknown_route_is_404_in_the_error_shape_with_the_request_id() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/api/v1/nothing-here"))
        .header("x-request-id", "probe-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()["x-request-id"], "probe-42");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "error");
    assert_eq!(body["error_code"], "NOT_FOUND");
    assert_eq!(body["request_id"], "probe-42");
}

#[tokio::test]
async fn wrong_method_is_405_in_the_error_shape() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error_code"], "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn every_response_gets_a_fresh_request_id() {
    let app = spawn_app().await;
    let first = app.get("/health/live").await;
    let second = app.get("/health/live").await;
    let a = first.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let b = second.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_ne!(a, b);
    assert_eq!(uuid::Uuid::parse_str(&a).unwrap().get_version_num(), 7);
}

#[tokio::test]
async fn each_service_serves_openapi_3_1_and_offline_docs() {
    let app = spawn_app().await;
    for prefix in [
        "/api/v1/auth",
        "/api/v1/bots",
        "/api/v1/config",
        "/api/v1/logs",
        "/api/v1/botdata",
    ] {
        let response = app.get(&format!("{prefix}/openapi.json")).await;
        assert_eq!(response.status(), StatusCode::OK, "{prefix}");
        let doc: Value = response.json().await.unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
        assert!(
            doc["paths"][format!("{prefix}/health")]["get"].is_object(),
            "{doc}"
        );
        assert!(
            doc["components"]["schemas"]["ErrorBody"].is_object(),
            "{doc}"
        );
        // What strict OpenAPI 3.1 validators (openapi-spec-validator in CI) require: a
        // description on every response, and operation ids unique in the document.
        let mut ids = std::collections::BTreeSet::new();
        for (method, path, operation) in operations(&doc) {
            let id = operation["operationId"].as_str().unwrap_or_default();
            assert!(
                ids.insert(id.to_string()),
                "{prefix}: operationId {id:?} twice"
            );
            for (status, response) in operation["responses"].as_object().unwrap() {
                let description = response["description"].as_str().unwrap_or_default();
                assert!(
                    !description.is_empty(),
                    "{method} {path} {status}: no description"
                );
            }
        }
        // The Authorize dialog says how to get a token.
        let bearer = &doc["components"]["securitySchemes"]["bearer"]["description"];
        assert!(
            bearer
                .as_str()
                .is_some_and(|d| d.contains("/api/v1/auth/login")),
            "{bearer}"
        );

        let page = app.get(&format!("{prefix}/docs/")).await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        assert!(html.contains("swagger-ui"), "{html}");
        // The UI's assets come from the binary, not from a CDN.
        assert!(!html.contains("https://"), "{html}");
        let bundle = app
            .get(&format!("{prefix}/docs/swagger-ui-bundle.js"))
            .await;
        assert_eq!(bundle.status(), StatusCode::OK);
        assert!(bundle.bytes().await.unwrap().len() > 100_000);
    }
}

#[tokio::test]
async fn a_single_target_serves_only_its_own_routes() {
    let app = spawn(Some("logging"), &[], None).await;
    assert_eq!(
        app.get("/api/v1/logs/health").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/v1/bots/health").await.status(),
        StatusCode::NOT_FOUND
    );
    let body: Value = app.get("/health/ready").await.json().await.unwrap();
    let checks = body["checks"].as_object().unwrap();
    assert_eq!(checks.len(), 2, "{body}");
    assert!(checks.contains_key("logging.database"));
    if app.postgres_url.is_none() {
        assert!(app.data_dir.path().join("logging.db").exists());
        assert!(!app.data_dir.path().join("authentication.db").exists());
    }
}

#[tokio::test]
async fn the_gateway_target_keeps_no_database() {
    let app = spawn(Some("gateway"), &[], None).await;
    let body: Value = app.get("/health/ready").await.json().await.unwrap();
    assert_eq!(
        body["checks"].as_object().unwrap().len(),
        1,
        "only the queue: {body}"
    );
    assert_eq!(app.get("/metrics").await.status(), StatusCode::OK);
}

/// Sends raw bytes and returns the status code of the answer (None if the connection closed).
async fn raw_status(addr: std::net::SocketAddr, request: &[u8]) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut answer),
    )
    .await;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test]
async fn malformed_requests_get_4xx_never_5xx() {
    let app = spawn_app().await;
    let long_path = format!(
        "GET /{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "a".repeat(20_000)
    );
    let cases: Vec<Vec<u8>> = vec![
        b"GET /api/v1/%ZZ%00%ff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        b"GET /health/ready?%%%=&&== HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        b"POST /api/v1/auth/health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello".to_vec(),
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Request-Id: \x01\x02\r\nConnection: close\r\n\r\n".to_vec(),
        b"BREW /coffee HTCPCP/1.0\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n".to_vec(),
        long_path.into_bytes(),
    ];
    for request in cases {
        if let Some(status) = raw_status(app.addr, &request).await {
            assert!(
                (400..500).contains(&status) || status == 200,
                "{status} for {:?}",
                String::from_utf8_lossy(&request[..request.len().min(80)])
            );
        }
    }
    // Still serving.
    assert_eq!(app.get("/health/live").await.status(), StatusCode::OK);
}

/// Every operation of an OpenAPI document: (method, path, operation).
pub fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if operation.get("responses").is_some() {
                found.push((method.to_uppercase(), path.clone(), operation));
            }
        }
    }
    found
}

#[tokio::test]
async fn the_root_page_links_every_service_this_process_answers_for() {
    let app = spawn_app().await;
    // Where the console runs, `/` is the console's; the index is at `/api/`.
    let page = app.get("/api/").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let html = page.text().await.unwrap();
    for prefix in [
        "/api/v1/auth",
        "/api/v1/bots",
        "/api/v1/config",
        "/api/v1/logs",
        "/api/v1/botdata",
    ] {
        let docs = format!("href=\"{prefix}/docs/\"");
        assert!(html.contains(&docs), "{docs} missing: {html}");
        // Every link on it answers.
        let answered = app.get(&format!("{prefix}/docs/")).await.status();
        assert_eq!(answered, StatusCode::OK, "{prefix}/docs/");
    }
    assert!(!html.contains("<script"), "{html}");
    // One service's process lists that service alone.
    let logging = spawn(Some("logging"), &[], None).await;
    let html = logging.get("/").await.text().await.unwrap();
    assert!(html.contains("href=\"/api/v1/logs/docs/\""), "{html}");
    assert!(!html.contains("/api/v1/bots"), "{html}");
}
