//! The gateway target (`serve --target gateway`) in front of the real services and of fake
//! upstreams that record what reaches them: routing by the one route table, the token
//! checked at the edge, public paths, request ids, streamed bodies, health-checked round
//! robin, and the 502/503/504 answers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode as AxumStatus;
use axum::response::IntoResponse;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::auth_helpers::{admin_token, claims, sign, signing_key};
use crate::helpers::{TestApp, spawn_app, spawn_with_clock};

/// What a fake upstream saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    request_id: Option<String>,
    request_ids: usize,
    authorization: bool,
    forwarded_for: Option<String>,
}

#[derive(Default)]
struct FakeState {
    ready: AtomicBool,
    seen: Mutex<Vec<Seen>>,
}

/// A stand-in service: `/health/ready` as told, anything else recorded and echoed.
async fn fake_upstream(name: &'static str) -> (String, Arc<FakeState>) {
    let state = Arc::new(FakeState::default());
    state.ready.store(true, Ordering::SeqCst);
    async fn ready(State(state): State<Arc<FakeState>>) -> AxumStatus {
        if state.ready.load(Ordering::SeqCst) {
            AxumStatus::OK
        } else {
            AxumStatus::SERVICE_UNAVAILABLE
        }
    }
    let echo = move |State(state): State<Arc<FakeState>>, request: Request| async move {
        let (parts, body) = request.into_parts();
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        state.seen.lock().unwrap().push(Seen {
            path: parts.uri.path().to_string(),
            request_id: header("x-request-id"),
            request_ids: parts.headers.get_all("x-request-id").iter().count(),
            authorization: parts.headers.contains_key("authorization"),
            forwarded_for: header("x-forwarded-for"),
        });
        if parts.uri.path().ends_with("/slow") {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        let bytes: Bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        axum::Json(
            json!({"upstream": name, "path": parts.uri.path(), "received_bytes": bytes.len()}),
        )
        .into_response()
    };
    let router = Router::new()
        .route("/health/ready", axum::routing::get(ready))
        .fallback(echo)
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, state)
}

/// A port nothing listens on.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

/// The gateway alone, verifying tokens from `services` (the one-process app) and sending
/// each service to `upstreams` (service key → URLs), or to `services` when not named.
pub(crate) async fn gateway(
    services: &TestApp,
    upstreams: &[(&str, Vec<String>)],
    extra: &[(&str, &str)],
) -> TestApp {
    let services_url = format!("http://{}", services.addr);
    let mut owned: Vec<(String, String)> = vec![
        (
            "VIVESPHERE_AUTH__AUTHENTICATION_URL".into(),
            services_url.clone(),
        ),
        ("VIVESPHERE_CONFIG_CLIENT__ENABLED".into(), "false".into()),
        (
            "VIVESPHERE_GATEWAY__HEALTH_INTERVAL_MS".into(),
            "100".into(),
        ),
        (
            "VIVESPHERE_GATEWAY__UPSTREAM_TIMEOUT_MS".into(),
            "500".into(),
        ),
    ];
    for key in [
        "authentication",
        "bot_manager",
        "configuration",
        "logging",
        "secure_bot_data",
    ] {
        let urls = upstreams
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, urls)| urls.clone())
            .unwrap_or_else(|| vec![services_url.clone()]);
        owned.push((
            format!("VIVESPHERE_GATEWAY__UPSTREAMS__{}", key.to_uppercase()),
            serde_json::to_string(&urls).unwrap(),
        ));
    }
    owned.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let env: Vec<(&str, &str)> = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    spawn_with_clock(Some("gateway"), &env, None, services.clock.clone()).await
}

async fn get(app: &TestApp, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// The status of a GET sent with `path` exactly as written.
async fn raw_status(app: &TestApp, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    socket
        .write_all(
            format!("GET {path} HTTP/1.1\r\nhost: gateway\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await.unwrap();
    answer.split(' ').nth(1).unwrap().parse().unwrap()
}

async fn error_code(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error_code"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn every_prefix_reaches_its_service_through_the_gateway() {
    let services = spawn_app().await;
    // Checks far apart: this test is about routing, not about health.
    let gw = gateway(
        &services,
        &[],
        &[("VIVESPHERE_GATEWAY__HEALTH_INTERVAL_MS", "5000")],
    )
    .await;
    // A public route: logging in through the gateway.
    let login = gw
        .client
        .post(gw.url("/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": crate::helpers::ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let token = login.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    for (path, field) in [
        ("/api/v1/auth/me", "username"),
        ("/api/v1/bots/list", "bots"),
        ("/api/v1/config/settings?service_name=global", "settings"),
        ("/api/v1/logs/events", "items"),
        ("/api/v1/botdata/bots", "items"),
    ] {
        let response = get(&gw, path, Some(&token)).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let body: Value = response.json().await.unwrap();
        assert!(body.get(field).is_some(), "{path}: {body}");
    }
    let (status, code) = error_code(get(&gw, "/api/v1/nothing-here", Some(&token)).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "NOT_FOUND")
    );
    let metrics = get(&gw, "/metrics", None).await.text().await.unwrap();
    assert!(
        metrics.contains("gateway_upstream_requests_total"),
        "{metrics}"
    );
    assert!(metrics.contains("service=\"bot-manager\""), "{metrics}");
    assert!(metrics.contains("gateway_upstream_healthy"), "{metrics}");
}

#[tokio::test]
async fn the_edge_refuses_bad_tokens_before_the_upstream_sees_them() {
    let services = spawn_app().await;
    let (fake_url, fake) = fake_upstream("logging").await;
    let gw = gateway(&services, &[("logging", vec![fake_url])], &[]).await;
    let (kid, pkcs8) = signing_key(&services).await;
    let mut expired = claims(&services, "someone");
    expired["exp"] = json!(services.clock.unix_seconds() - 120);
    expired["iat"] = json!(services.clock.unix_seconds() - 1000);
    expired["nbf"] = json!(services.clock.unix_seconds() - 1000);
    let expired = sign(&kid, &pkcs8, &expired, json!({}));
    let forger =
        ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let forged = sign(
        &kid,
        forger.as_ref(),
        &claims(&services, "someone"),
        json!({}),
    );
    for token in [
        None,
        Some(expired.as_str()),
        Some(forged.as_str()),
        Some("not-a-jwt"),
    ] {
        let (status, code) = error_code(get(&gw, "/api/v1/logs/events", token).await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(code, "UNAUTHORIZED");
    }
    assert!(
        fake.seen.lock().unwrap().is_empty(),
        "the upstream saw a refused request"
    );

    // Public paths pass without a token.
    assert_eq!(
        get(&gw, "/api/v1/logs/health", None).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        get(&gw, "/api/v1/logs/openapi.json", None).await.status(),
        StatusCode::OK
    );

    // A valid token passes with the request id and the caller's address.
    let admin = admin_token(&services).await;
    let response = gw
        .client
        .get(gw.url("/api/v1/logs/events?category=debug"))
        .bearer_auth(&admin)
        .header("x-request-id", "edge-req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-request-id"], "edge-req-42");
    // A body is passed on whole, without the gateway holding it.
    let big = vec![b'x'; 3 * 1024 * 1024];
    let response = gw
        .client
        .post(gw.url("/api/v1/logs/batch"))
        .bearer_auth(&admin)
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap()["received_bytes"],
        3 * 1024 * 1024
    );

    let seen = fake.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(seen[0].path, "/api/v1/logs/health");
    assert!(!seen[0].authorization);
    assert_eq!(seen[2].request_id.as_deref(), Some("edge-req-42"));
    assert_eq!(
        seen[2].request_ids, 1,
        "one request id, not the caller's and ours"
    );
    assert!(seen[2].authorization);
    assert_eq!(seen[2].forwarded_for.as_deref(), Some("127.0.0.1"));
    // A dot segment never passes the edge, even under a public path. (Sent raw: HTTP
    // clients normalise such paths away before sending.)
    for path in [
        "/api/v1/logs/docs/../events",
        "/api/v1/logs/docs/%2e%2E/events",
    ] {
        assert_eq!(raw_status(&gw, path).await, 400, "{path}");
    }
    assert_eq!(fake.seen.lock().unwrap().len(), 4);
}

/// An upstream that passes its health checks but drops every other request unanswered.
async fn dropping_upstream() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let n = socket.read(&mut buffer).await.unwrap_or(0);
                if String::from_utf8_lossy(&buffer[..n]).starts_with("GET /health/ready ") {
                    let _ = socket
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                }
                // Anything else: closed without an answer.
            });
        }
    });
    url
}

#[tokio::test]
async fn unreachable_down_and_slow_upstreams_answer_502_503_504() {
    let services = spawn_app().await;
    let (slow_url, _slow) = fake_upstream("bots").await;
    let gw = gateway(
        &services,
        &[
            ("logging", vec![closed_port_url()]),
            ("configuration", vec![dropping_upstream().await]),
            ("bot_manager", vec![slow_url]),
        ],
        &[],
    )
    .await;
    // The first health check finds nothing listening for logging.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, code) = error_code(get(&gw, "/api/v1/logs/health", None).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "NOT_READY")
    );

    let (status, code) = error_code(get(&gw, "/api/v1/config/health", None).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_GATEWAY, "BAD_GATEWAY")
    );

    let (status, code) = error_code(get(&gw, "/api/v1/bots/slow", None).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "UNAUTHORIZED")
    );
    let admin = admin_token(&services).await;
    let started = std::time::Instant::now();
    let (status, code) = error_code(get(&gw, "/api/v1/bots/slow", Some(&admin)).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::GATEWAY_TIMEOUT, "UPSTREAM_TIMEOUT")
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

/// A replica that died between health checks refuses connections: a request without a body
/// goes on to a live one (it never arrived), one with a body is not sent twice but answered
/// 502, and either way the dead replica is skipped from then on.
#[tokio::test]
async fn a_request_refused_by_a_dead_replica_goes_to_the_next_when_it_has_no_body() {
    let services = spawn_app().await;
    let (live_url, live) = fake_upstream("live").await;
    // The health checks run every 100 ms; a long interval keeps the dead one "healthy"
    // until a request finds out.
    let gw = gateway(
        &services,
        &[("configuration", vec![closed_port_url(), live_url])],
        &[("VIVESPHERE_GATEWAY__HEALTH_INTERVAL_MS", "600000")],
    )
    .await;
    for _ in 0..4 {
        let response = get(&gw, "/api/v1/config/openapi.json", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["upstream"], "live");
    }
    assert_eq!(live.seen.lock().unwrap().len(), 4);

    let gw = gateway(
        &services,
        &[(
            "configuration",
            vec![closed_port_url(), fake_upstream("b").await.0],
        )],
        &[("VIVESPHERE_GATEWAY__HEALTH_INTERVAL_MS", "600000")],
    )
    .await;
    let admin = admin_token(&services).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = gw
            .client
            .post(gw.url("/api/v1/config/echo"))
            .bearer_auth(&admin)
            .json(&json!({"a": 1}))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    // The first went to the dead replica and is not sent twice; then only the live one.
    assert_eq!(statuses, [502, 200, 200]);
}

/// A verifier that cannot read the keys does not call a valid token invalid (a 401 sends the
/// client to log in again for the server's trouble): 503 with Retry-After.
#[tokio::test]
async fn a_token_that_cannot_be_checked_for_want_of_keys_is_503_not_401() {
    let services = spawn_app().await;
    let admin = admin_token(&services).await;
    let dead = closed_port_url();
    let gw = gateway(
        &services,
        &[],
        &[("VIVESPHERE_AUTH__AUTHENTICATION_URL", dead.as_str())],
    )
    .await;
    let response = get(&gw, "/api/v1/bots/list", Some(&admin)).await;
    assert_eq!(response.headers()["retry-after"], "1");
    let (status, code) = error_code(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "NOT_READY")
    );
    let (status, code) = error_code(get(&gw, "/api/v1/bots/list", Some("not.a.jwt")).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
        "a malformed token is still refused as such"
    );
}

#[tokio::test]
async fn round_robin_skips_an_unhealthy_upstream_and_returns_to_it() {
    let services = spawn_app().await;
    let (a_url, a) = fake_upstream("a").await;
    let (b_url, b) = fake_upstream("b").await;
    let gw = gateway(&services, &[("configuration", vec![a_url, b_url])], &[]).await;
    let round = |n: usize| {
        let gw = &gw;
        async move {
            let mut names = Vec::new();
            for _ in 0..n {
                let body: Value = get(gw, "/api/v1/config/openapi.json", None)
                    .await
                    .json()
                    .await
                    .unwrap();
                names.push(body["upstream"].as_str().unwrap().to_string());
            }
            names
        }
    };
    let names = round(10).await;
    assert_eq!(names.iter().filter(|n| *n == "a").count(), 5, "{names:?}");
    assert_eq!(names.iter().filter(|n| *n == "b").count(), 5, "{names:?}");

    b.ready.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let before = b.seen.lock().unwrap().len();
    let names = round(6).await;
    assert!(names.iter().all(|n| n == "a"), "{names:?}");
    assert_eq!(b.seen.lock().unwrap().len(), before);

    b.ready.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let names = round(6).await;
    assert_eq!(names.iter().filter(|n| *n == "b").count(), 3, "{names:?}");
    assert!(a.seen.lock().unwrap().len() >= 11);
}

#[tokio::test]
async fn the_edge_rate_limit_answers_429_with_retry_after() {
    let services = spawn_app().await;
    let (fake_url, fake) = fake_upstream("logging").await;
    let gw = gateway(
        &services,
        &[("logging", vec![fake_url])],
        &[("VIVESPHERE_GATEWAY__RATE_LIMIT__PER_MINUTE", "3")],
    )
    .await;
    for remaining in ["2", "1", "0"] {
        let response = get(&gw, "/api/v1/logs/openapi.json", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["ratelimit-remaining"], remaining);
    }
    let response = get(&gw, "/api/v1/logs/openapi.json", None).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    let (_, code) = error_code(response).await;
    assert_eq!(code, "RATE_LIMITED");
    assert_eq!(
        fake.seen.lock().unwrap().len(),
        3,
        "the limited request never left the gateway"
    );
    // Health probes are not limited.
    assert_eq!(get(&gw, "/health", None).await.status(), StatusCode::OK);
    assert_eq!(
        get(&gw, "/api/v1/logs/health", None).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_kong_export_carries_the_current_public_keys() {
    let services = spawn_app().await;
    let keys = vivesphere::kong::public_keys(&format!("http://{}", services.addr))
        .await
        .unwrap();
    let (kid, _) = signing_key(&services).await;
    assert!(keys.iter().any(|key| key.kid == kid), "{keys:?}");
    let text = gateway::kong::render(&keys, 100).unwrap();
    let document: Value = serde_norway::from_str(&text).unwrap();
    let secrets = &document["consumers"][0]["jwt_secrets"];
    assert_eq!(secrets[0]["algorithm"], "EdDSA");
    assert!(
        secrets[0]["rsa_public_key"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
}

/// Beside Kong (the `kong-keys` container of the manifests), `export-kong --kong-admin-url`
/// keeps a running DB-less Kong current: a rotated key is loaded through the Admin API
/// (`POST /config`, the whole declarative configuration) within one interval — well inside
/// the lead time before it signs — and the file Kong restarts from is the same; an unchanged
/// configuration is not loaded again.
#[tokio::test]
async fn the_kong_key_sync_loads_a_rotated_key_into_a_running_kong() {
    let services = spawn_app().await;
    // A stand-in for Kong's Admin API that records every configuration loaded.
    let loaded: Arc<Mutex<Vec<String>>> = Arc::default();
    let router = Router::new()
        .route(
            "/config",
            axum::routing::post(
                |State(loaded): State<Arc<Mutex<Vec<String>>>>,
                 axum::Json(body): axum::Json<Value>| async move {
                    loaded
                        .lock()
                        .unwrap()
                        .push(body["config"].as_str().unwrap().to_string());
                    AxumStatus::CREATED
                },
            ),
        )
        .with_state(loaded.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kong.yaml");
    let stop = tokio_util::sync::CancellationToken::new();
    let health: std::net::SocketAddr = format!(
        "127.0.0.1:{}",
        vivesphere::local_cluster::free_port().unwrap()
    )
    .parse()
    .unwrap();
    let export = vivesphere::kong::Export {
        // A replica that is gone first: the keys come from the one that answers.
        authentication_url: Some(format!("{},http://{}", closed_port_url(), services.addr)),
        rate_limit_per_minute: 100,
        output: Some(file.clone()),
        kong_admin_url: Some(admin_url),
        interval: Duration::from_millis(200),
        health_listen: Some(health),
    };
    let syncing = {
        let stop = stop.clone();
        tokio::spawn(async move { vivesphere::kong::export(&export, stop).await })
    };
    let kids_loaded = |loaded: &Arc<Mutex<Vec<String>>>| -> Vec<usize> {
        loaded
            .lock()
            .unwrap()
            .iter()
            .map(|text| text.matches("BEGIN PUBLIC KEY").count())
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while kids_loaded(&loaded).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing loaded into Kong"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Unchanged keys: nothing more is loaded.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(kids_loaded(&loaded), [1]);
    for probe in ["/health/live", "/health/ready"] {
        let response = reqwest::get(format!("http://{health}{probe}"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{probe}");
    }

    let url_env = services
        .postgres_url
        .as_deref()
        .map(|url| ("VIVESPHERE_DATABASE__URL", url));
    let options = crate::helpers::options(&services.data_dir, None, url_env.as_slice());
    vivesphere::app::rotate_signing_keys(&options)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while kids_loaded(&loaded).len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the rotated key never reached Kong"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    syncing.await.unwrap().unwrap();
    assert_eq!(kids_loaded(&loaded), [1, 2], "both keys, once");
    let last = loaded.lock().unwrap().last().unwrap().clone();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), last);
}
