//! The HTTP conventions on a real socket: the error shape for every kind of bad request,
//! request ids, panics, and draining on shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use platform::Json;
use platform::http::metrics::MetricsRegistry;
use platform::http::{finish_router, with_request_limits};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Deserialize)]
struct Greeting {
    name: String,
    times: u8,
}

async fn greet(Json(greeting): Json<Greeting>) -> Json<Value> {
    Json(json!({"text": greeting.name.repeat(greeting.times as usize)}))
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_millis(300)).await;
    "finished"
}

async fn too_slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(5)).await;
    "never seen"
}

async fn explode() -> &'static str {
    panic!("a bug in a handler")
}

fn client() -> reqwest::Client {
    platform::install_crypto_provider();
    reqwest::Client::new()
}

struct TestServer {
    addr: SocketAddr,
    shutdown: CancellationToken,
    served: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn serve(drain: Duration) -> TestServer {
    let routes = Router::new()
        .route("/greet", post(greet))
        .route("/slow", get(slow))
        .route("/too-slow", get(too_slow))
        .route("/explode", get(explode));
    let router = finish_router(
        with_request_limits(routes, 1024, Duration::from_millis(400)),
        MetricsRegistry::new().http,
        platform::http::headers::ResponsePolicy::default(),
    );
    let listener = platform::server::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let served = tokio::spawn(platform::server::serve(
        listener,
        router,
        shutdown.clone(),
        TaskTracker::new(),
        drain,
    ));
    TestServer {
        addr,
        shutdown,
        served,
    }
}

fn url(server: &TestServer, path: &str) -> String {
    format!("http://{}{path}", server.addr)
}

/// Checks the standard error shape and that the body's request id is the header's.
async fn assert_error(response: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status);
    let header = response
        .headers()
        .get("x-request-id")
        .expect("every response carries x-request-id")
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["status"], "error", "{body}");
    assert_eq!(body["error_code"], code, "{body}");
    assert!(!body["message"].as_str().unwrap().is_empty(), "{body}");
    assert_eq!(body["request_id"], header, "{body}");
    body
}

#[tokio::test]
async fn valid_json_is_accepted() {
    let server = serve(Duration::from_secs(5)).await;
    let response = client()
        .post(url(&server, "/greet"))
        .json(&json!({"name": "ab", "times": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"text": "abab"})
    );
}

#[tokio::test]
async fn malformed_json_is_400_malformed_json() {
    let server = serve(Duration::from_secs(5)).await;
    let response = client()
        .post(url(&server, "/greet"))
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::BAD_REQUEST, "MALFORMED_JSON").await;
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_400_invalid_data_naming_the_field() {
    let server = serve(Duration::from_secs(5)).await;
    let response = client()
        .post(url(&server, "/greet"))
        .json(&json!({"name": "ab", "times": 999}))
        .send()
        .await
        .unwrap();
    let body = assert_error(response, StatusCode::BAD_REQUEST, "INVALID_DATA").await;
    assert!(
        body["message"].as_str().unwrap().contains("times"),
        "{body}"
    );
}

#[tokio::test]
async fn a_body_without_a_json_content_type_is_415() {
    let server = serve(Duration::from_secs(5)).await;
    let response = client()
        .post(url(&server, "/greet"))
        .header("content-type", "text/plain")
        .body("{\"name\":\"a\",\"times\":1}")
        .send()
        .await
        .unwrap();
    assert_error(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    .await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_with_or_without_a_length() {
    let server = serve(Duration::from_secs(5)).await;
    let big = json!({"name": "x".repeat(4096), "times": 1}).to_string();
    let response = client()
        .post(url(&server, "/greet"))
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE").await;

    // Chunked: no Content-Length to look at, the limit applies while reading.
    let chunks = futures::stream::iter(
        big.into_bytes()
            .chunks(512)
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let response = client()
        .post(url(&server, "/greet"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE").await;
}

#[tokio::test]
async fn unknown_routes_and_methods_get_the_error_shape() {
    let server = serve(Duration::from_secs(5)).await;
    let client = client();
    let response = client
        .get(url(&server, "/no/such/route"))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let response = client.delete(url(&server, "/greet")).send().await.unwrap();
    assert_error(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
    )
    .await;
}

#[tokio::test]
async fn a_panicking_handler_is_a_500_that_says_nothing_specific() {
    let server = serve(Duration::from_secs(5)).await;
    let response = client().get(url(&server, "/explode")).send().await.unwrap();
    let body = assert_error(
        response,
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL_ERROR",
    )
    .await;
    assert!(!body["message"].as_str().unwrap().contains("bug"), "{body}");
    // The server is still serving.
    let response = client().get(url(&server, "/nope")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_callers_request_id_is_propagated_and_a_bad_one_replaced() {
    let server = serve(Duration::from_secs(5)).await;
    let client = client();
    let response = client
        .get(url(&server, "/missing"))
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-abc-123");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["request_id"], "trace-abc-123");

    let response = client
        .get(url(&server, "/missing"))
        .header("x-request-id", "x".repeat(300))
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_ne!(id, "x".repeat(300));
    assert!(
        uuid::Uuid::parse_str(&id).is_ok(),
        "a generated UUID, got {id}"
    );

    let first = client.get(url(&server, "/missing")).send().await.unwrap();
    let second = client.get(url(&server, "/missing")).send().await.unwrap();
    assert_ne!(
        first.headers()["x-request-id"],
        second.headers()["x-request-id"]
    );
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish_then_stops_accepting() {
    let server = serve(Duration::from_secs(5)).await;
    let in_flight = tokio::spawn(client().get(url(&server, "/slow")).send());
    tokio::time::sleep(Duration::from_millis(150)).await;
    server.shutdown.cancel();
    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "finished");
    let after = url(&server, "/slow");
    server.served.await.unwrap().expect("a clean drain");
    assert!(
        client().get(after).send().await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn shutdown_reports_a_drain_that_overran_its_timeout() {
    let server = serve(Duration::from_millis(100)).await;
    let in_flight = tokio::spawn(client().get(url(&server, "/slow")).send());
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.shutdown.cancel();
    let err = server.served.await.unwrap().unwrap_err();
    assert!(err.to_string().contains("drain timeout"), "{err}");
    in_flight.abort();
}

#[tokio::test]
async fn a_request_over_the_timeout_gets_503_timeout() {
    let server = serve(Duration::from_secs(5)).await;
    let started = std::time::Instant::now();
    let response = client()
        .get(url(&server, "/too-slow"))
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    let body = assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "TIMEOUT").await;
    assert!(body["message"].as_str().unwrap().contains("0.4"), "{body}");
}
