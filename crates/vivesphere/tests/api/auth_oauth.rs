//! Service clients: client_credentials tokens, introspection, revocation, and revocations
//! reaching every service's verifier.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use platform::auth::{HttpKeySource, TokenVerifier};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::auth_helpers::*;
use crate::helpers::{ADMIN_PASSWORD, TestApp, spawn_app};

/// A form body as name/value pairs.
type Form<'a> = Vec<(&'a str, &'a str)>;

async fn create_client(app: &TestApp, admin: &str) -> String {
    let response = send_json(
        app,
        Method::POST,
        "/api/v1/auth/clients",
        admin,
        json!({"client_id": "bot-runner", "audiences": ["logging", "authentication"], "scopes": ["logs:write", "bots:read"]}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["client_secret"].as_str().unwrap().to_string()
}

async fn form(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    let body = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace('+', "%2B").replace(' ', "+")))
        .collect::<Vec<_>>()
        .join("&");
    app.client
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn client_credentials_give_short_scoped_tokens_for_one_audience() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let secret = create_client(&app, &admin).await;
    let response = form(
        &app,
        "/api/v1/auth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "bot-runner"),
            ("client_secret", &secret),
            ("audience", "authentication"),
            ("scope", "bots:read"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let token: Value = response.json().await.unwrap();
    assert_eq!(token["token_type"], "Bearer");
    assert!(token["expires_in"].as_u64().unwrap() <= 300);
    assert_eq!(token["scope"], "bots:read");
    let access = token["access_token"].as_str().unwrap();
    let valid: Value = get_json(&app, "/api/v1/auth/validate", access).await;
    assert_eq!(valid["user_id"], "client:bot-runner");
    assert_eq!(valid["permissions"], json!(["bots:read"]));

    // A token for another service is refused here.
    let logging: Value = form(
        &app,
        "/api/v1/auth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "bot-runner"),
            ("client_secret", &secret),
            ("audience", "logging"),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        validate(&app, logging["access_token"].as_str().unwrap()).await,
        StatusCode::UNAUTHORIZED
    );

    // HTTP Basic works too.
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("bot-runner:{secret}"));
    let response = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .header("authorization", format!("Basic {basic}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&audience=logging")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn bad_client_requests_get_oauth_errors_in_our_shape() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let secret = create_client(&app, &admin).await;
    let cases: Vec<(Form, StatusCode, &str)> = vec![
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "bot-runner"),
                ("client_secret", "wrong"),
                ("audience", "logging"),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "nobody"),
                ("client_secret", "x"),
                ("audience", "logging"),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("client_id", "bot-runner"),
                ("client_secret", &secret),
            ],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "bot-runner"),
                ("client_secret", &secret),
                ("audience", "logging"),
                ("scope", "users:admin"),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "bot-runner"),
                ("client_secret", &secret),
                ("audience", "bot-manager"),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_target",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "bot-runner"),
                ("client_secret", &secret),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_target",
        ),
    ];
    for (fields, status, error) in cases {
        let response = form(&app, "/api/v1/auth/token", &fields).await;
        assert_eq!(response.status(), status, "{fields:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], error, "{body}");
        assert_eq!(body["status"], "error");
    }
    let json_body = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn client_secrets_are_stored_hashed() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let secret = create_client(&app, &admin).await;
    if app.postgres_url.is_none() {
        // The raw SQLite files, write-ahead log included.
        for file in ["authentication.db", "authentication.db-wal"] {
            let bytes = std::fs::read(app.data_dir.path().join(file)).unwrap_or_default();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(&secret),
                "plaintext secret in {file}"
            );
        }
    }
    let pool = crate::auth_helpers::authentication_db(&app).await;
    let rows = sqlx::query(
        // The one this test registered (the configuration declares others).
        "SELECT client_id, secret_hash, audiences, scopes, description FROM service_clients \
         WHERE client_id = 'bot-runner'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 1);
    for column in [
        "client_id",
        "secret_hash",
        "audiences",
        "scopes",
        "description",
    ] {
        let value: String = sqlx::Row::try_get(&rows[0], column).unwrap();
        assert!(!value.contains(&secret), "plaintext secret in {column}");
    }
    pool.close().await;
    let listed = get(&app, "/api/v1/auth/clients", &admin)
        .await
        .text()
        .await
        .unwrap();
    assert!(!listed.contains(&secret));
}

#[tokio::test]
async fn introspection_and_revocation_follow_rfc_7662_and_7009() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let secret = create_client(&app, &admin).await;
    let auth = [
        ("client_id", "bot-runner"),
        ("client_secret", secret.as_str()),
    ];
    let pair = login_ok(&app, "admin", ADMIN_PASSWORD).await;
    let access = pair["token"].as_str().unwrap();
    let refresh = pair["refresh_token"].as_str().unwrap();

    let mut fields = auth.to_vec();
    fields.push(("token", access));
    let active: Value = form(&app, "/api/v1/auth/introspect", &fields)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(active["active"], true);
    assert_eq!(active["sub"], subject_of(access));
    assert!(active["scope"].as_str().unwrap().contains("users:admin"));

    let no_client = form(&app, "/api/v1/auth/introspect", &[("token", access)]).await;
    assert_eq!(no_client.status(), StatusCode::UNAUTHORIZED);

    let revoked = form(&app, "/api/v1/auth/revoke", &fields).await;
    assert_eq!(revoked.status(), StatusCode::OK);
    let inactive: Value = form(&app, "/api/v1/auth/introspect", &fields)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(inactive, json!({"active": false}));
    assert_eq!(validate(&app, access).await, StatusCode::UNAUTHORIZED);

    let mut fields = auth.to_vec();
    fields.push(("token", refresh));
    fields.push(("token_type_hint", "refresh_token"));
    let active: Value = form(&app, "/api/v1/auth/introspect", &fields)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(active["token_type"], "refresh_token");
    form(&app, "/api/v1/auth/revoke", &fields).await;
    let inactive: Value = form(&app, "/api/v1/auth/introspect", &fields)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(inactive["active"], false);

    let garbage = form(
        &app,
        "/api/v1/auth/revoke",
        &[
            ("client_id", "bot-runner"),
            ("client_secret", &secret),
            ("token", "nonsense"),
        ],
    )
    .await;
    assert_eq!(
        garbage.status(),
        StatusCode::OK,
        "RFC 7009: unknown tokens are not an error"
    );
}

#[tokio::test]
async fn a_revoked_token_is_refused_by_every_service_verifier_before_it_expires() {
    let app = spawn_app().await;
    let pair = login_ok(&app, "admin", ADMIN_PASSWORD).await;
    let access = pair["token"].as_str().unwrap().to_string();
    // The verifier another service (here: bot-manager) runs, fed by the JWKS over HTTP and
    // by revocation events on the queue.
    let verifier = TokenVerifier::new(
        Arc::new(HttpKeySource::new(&app.url("")).unwrap()),
        &platform::config::AuthSettings::default(),
        "bot-manager",
        app.clock.clone(),
    );
    let queue = app.queue.clone().expect("the test app exposes its queue");
    verifier.follow_revocations(queue, app.shutdown.clone());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        verifier.verify(&access).await.is_ok(),
        "valid before logout"
    );

    let response = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let mut refused = false;
    for _ in 0..50 {
        if verifier.verify(&access).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "the other service still accepts a revoked token");

    // A verifier that starts later learns it from the revocation list.
    let late = TokenVerifier::new(
        Arc::new(HttpKeySource::new(&app.url("")).unwrap()),
        &platform::config::AuthSettings::default(),
        "logging",
        app.clock.clone(),
    );
    assert!(late.verify(&access).await.is_err());
}

#[tokio::test]
async fn services_get_reuse_and_present_client_credentials_tokens() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let secret = create_client(&app, &admin).await;
    let tokens = platform::auth::ServiceTokens::new(
        &app.url(""),
        "bot-runner",
        platform::config::Secret::new(secret),
        "logging",
        app.clock.clone(),
    )
    .unwrap();
    let first = tokens.token().await.unwrap();
    assert_eq!(tokens.token().await.unwrap(), first, "reused while fresh");
    // The logging service's verifier accepts it; another service's does not.
    let verifier_for = |service: &str| {
        TokenVerifier::new(
            Arc::new(HttpKeySource::new(&app.url("")).unwrap()),
            &platform::config::AuthSettings::default(),
            service,
            app.clock.clone(),
        )
    };
    let claims = verifier_for("logging").verify(&first).await.unwrap();
    assert_eq!(claims.sub, "client:bot-runner");
    assert_eq!(claims.perms, ["logs:write", "bots:read"]);
    assert!(verifier_for("bot-manager").verify(&first).await.is_err());

    let wrong = platform::auth::ServiceTokens::new(
        &app.url(""),
        "bot-runner",
        platform::config::Secret::new("nope"),
        "logging",
        app.clock.clone(),
    )
    .unwrap();
    assert!(wrong.token().await.is_err());
}
