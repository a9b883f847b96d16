//! Regression tests of the hardening issue, each named after what it guards (the sweep in
//! `sweep.rs` holds the same rules for every operation at once).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::auth_helpers::admin_token;
use crate::helpers::spawn_app;

async fn body_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_nul_in_a_login_is_a_400_naming_the_field_not_a_500() {
    let app = spawn_app().await;
    let (status, body) = body_of(
        app.client
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"username": "ad\u{0}min", "password": "whatever-it-is"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error_code"], "INVALID_DATA");
    assert_eq!(body["field"], "username");
}

#[tokio::test]
async fn a_nul_in_an_export_query_is_refused_before_the_export_starts() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let response = app
        .client
        .get(app.url("/api/v1/logs/export?format=csv&q=%00"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let (status, body) = body_of(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "query parameter q");
}

#[tokio::test]
async fn a_nul_in_a_path_segment_or_a_cursor_is_a_400() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    for path in [
        "/api/v1/auth/users/ab%00cd",
        "/api/v1/bots?cursor=%00",
        "/api/v1/botdata/bots?cursor=abc%00",
    ] {
        let response = app
            .client
            .get(app.url(path))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        let (status, body) = body_of(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["error_code"], "INVALID_DATA", "{path}");
    }
}

#[tokio::test]
async fn a_nul_in_a_form_body_is_a_400_with_the_oauth_error() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&client_id=bot%00manager&client_secret=x")
        .send()
        .await
        .unwrap();
    let (status, body) = body_of(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "client_id");
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn oversized_form_bodies_answer_413_in_the_error_shape() {
    let app = spawn_app().await;
    let huge = format!("token={}", "x".repeat(2 * 1024 * 1024));
    for route in ["token", "revoke", "introspect"] {
        let response = app
            .client
            .post(app.url(&format!("/api/v1/auth/{route}")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(huge.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{route}"
        );
        let (status, body) = body_of(response).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{route}");
        assert_eq!(body["error_code"], "PAYLOAD_TOO_LARGE", "{route}");
        assert!(!body["request_id"].as_str().unwrap().is_empty());
    }
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn answers_that_carry_tokens_are_never_stored() {
    let app = spawn_app().await;
    let login = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": crate::helpers::ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&login, "cache-control"), Some("no-store"));
    let pair: Value = login.json().await.unwrap();
    let refresh = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({"refresh_token": pair["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refresh.status(), StatusCode::OK);
    assert_eq!(header(&refresh, "cache-control"), Some("no-store"));
    let token = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&client_id=nobody&client_secret=x")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&token, "cache-control"), Some("no-store"));
    // Every Secure Bot Data answer: its health, an unknown path under it, a refusal.
    for path in [
        "/api/v1/botdata/health",
        "/api/v1/botdata/no-such-route",
        "/api/v1/botdata/bots",
    ] {
        let response = app.get(path).await;
        assert_eq!(
            header(&response, "cache-control"),
            Some("no-store"),
            "{path}"
        );
    }
    // Elsewhere, nothing is said about caching.
    let bots = app.get("/api/v1/bots/health").await;
    assert_eq!(header(&bots, "cache-control"), None);
}

#[tokio::test]
async fn the_gateways_own_refusals_on_secret_routes_are_never_stored() {
    let services = spawn_app().await;
    let gateway = crate::gateway::gateway(&services, &[], &[]).await;
    let refused = gateway.get("/api/v1/botdata/bots").await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&refused, "cache-control"), Some("no-store"));
    assert_eq!(header(&refused, "x-content-type-options"), Some("nosniff"));
}

#[tokio::test]
async fn every_answer_says_nosniff_and_no_referrer() {
    let app = spawn_app().await;
    for path in [
        "/health",
        "/api/v1/bots/health",
        "/no/such/path",
        "/metrics",
    ] {
        let response = app.get(path).await;
        assert_eq!(
            header(&response, "x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            header(&response, "referrer-policy"),
            Some("no-referrer"),
            "{path}"
        );
    }
}

/// Headless Chromium's DOM of `url` after its scripts ran, and what it logged; `None` (after
/// a notice) where Chromium is not installed.
fn rendered_in_chromium(url: &str) -> Option<(String, String)> {
    let profile = tempfile::tempdir().unwrap();
    let output = match std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .output()
    {
        Ok(output) => output,
        Err(_) => {
            eprintln!("=== SKIPPED browser test: chromium is not installed ===");
            return None;
        }
    };
    Some((
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

#[tokio::test]
async fn swagger_ui_works_under_the_content_security_policy() {
    let app = spawn_app().await;
    let page = app.get("/api/v1/auth/docs/").await;
    let policy = header(&page, "content-security-policy")
        .unwrap()
        .to_string();
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert!(policy.contains("script-src 'self'") && !policy.contains("unsafe-eval"));
    let url = app.url("/api/v1/auth/docs/");
    let Some((dom, log)) = tokio::task::spawn_blocking(move || rendered_in_chromium(&url))
        .await
        .unwrap()
    else {
        return;
    };
    assert!(
        dom.contains("data-path=\"/api/v1/auth/login\""),
        "Swagger UI did not render the operations: {dom:.2000}"
    );
    assert!(
        !log.contains("Content Security Policy"),
        "the page broke its policy: {log}"
    );
}

#[tokio::test]
async fn guessable_passwords_are_refused_with_the_reason() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    for (password, reason) in [
        ("123456789012", "Sequences like"),
        ("111111111111", "Repeats like"),
        ("vivesphere2026", "must not contain \"vivesphere\""),
        ("orbit-al-huda-2031", "must not contain \"huda\""),
        ("passwordpassword", "too easy to guess"),
    ] {
        let response = app
            .client
            .post(app.url("/api/v1/auth/users"))
            .bearer_auth(&admin)
            .json(&json!({"username": "noor", "display_name": "Noor al Huda",
                          "password": password, "roles": ["Viewer"]}))
            .send()
            .await
            .unwrap();
        let (status, body) = body_of(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{password}: {body}");
        assert_eq!(body["field"], "password");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(reason), "{password}: {message}");
    }
    let response = app
        .client
        .post(app.url("/api/v1/auth/users"))
        .bearer_auth(&admin)
        .json(&json!({"username": "noor", "display_name": "Noor al Huda",
                      "password": "tangerine-orbit-7-lanterns", "roles": ["Viewer"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}
