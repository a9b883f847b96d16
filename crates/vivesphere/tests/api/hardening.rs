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
