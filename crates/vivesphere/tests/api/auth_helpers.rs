//! Helpers for the Authentication tests: logging in, creating users, and forging tokens with
//! the service's real signing key (read back from its database, as only a test can).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;

use crate::helpers::{ADMIN_PASSWORD, TestApp};

pub const PASSWORD: &str = "a-long-and-unusual-passphrase-9";

pub async fn login(app: &TestApp, username: &str, password: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
}

/// Logs in and returns the whole 200 body.
pub async fn login_ok(app: &TestApp, username: &str, password: &str) -> Value {
    let response = login(app, username, password).await;
    assert_eq!(response.status(), StatusCode::OK, "login of {username}");
    response.json().await.unwrap()
}

pub async fn admin_token(app: &TestApp) -> String {
    login_ok(app, "admin", ADMIN_PASSWORD).await["token"]
        .as_str()
        .unwrap()
        .to_string()
}

pub async fn get(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// A GET with a token, its body as JSON (whatever the status).
pub async fn get_json(app: &TestApp, path: &str, token: &str) -> Value {
    get(app, path, token).await.json().await.unwrap()
}

pub async fn send_json(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Value,
) -> reqwest::Response {
    app.client
        .request(method, app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Creates a user with `roles` and returns its id.
pub async fn create_user(app: &TestApp, admin: &str, username: &str, roles: &[&str]) -> String {
    let response = send_json(
        app,
        reqwest::Method::POST,
        "/api/v1/auth/users",
        admin,
        json!({"username": username, "password": PASSWORD, "roles": roles}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["user"]["id"].as_str().unwrap().to_string()
}

/// A user's access token.
pub async fn token_of(app: &TestApp, admin: &str, username: &str, roles: &[&str]) -> String {
    create_user(app, admin, username, roles).await;
    login_ok(app, username, PASSWORD).await["token"]
        .as_str()
        .unwrap()
        .to_string()
}

pub async fn validate(app: &TestApp, token: &str) -> StatusCode {
    get(app, "/api/v1/auth/validate", token).await.status()
}

/// A connection to the Authentication service's own tables, on whichever backend it runs.
pub async fn authentication_db(app: &TestApp) -> sqlx::AnyPool {
    crate::helpers::service_db(app, "authentication").await
}

/// The service's active signing key, unsealed from its SQLite database with the
/// development key file.
pub async fn signing_key(app: &TestApp) -> (String, Vec<u8>) {
    let key = std::fs::read_to_string(app.data_dir.path().join("authentication.key")).unwrap();
    let sealer =
        authentication::crypto::Sealer::from_base64(&key, "authentication.encryption_key").unwrap();
    let pool = authentication_db(app).await;
    let row = sqlx::query(
        "SELECT kid, private_key_sealed FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let kid: String = row.try_get("kid").unwrap();
    let sealed: String = row.try_get("private_key_sealed").unwrap();
    pool.close().await;
    let pkcs8 = sealer.open(&sealed, &format!("signing-key:{kid}")).unwrap();
    (kid, pkcs8)
}

/// Valid access-token claims for `sub` at `app`'s time, to be bent by each test.
pub fn claims(app: &TestApp, sub: &str) -> Value {
    let now = app.clock.unix_seconds();
    json!({
        "iss": "vivesphere", "aud": "vivesphere", "sub": sub, "exp": now + 600, "nbf": now - 5,
        "iat": now - 5, "jti": app.clock.uuid_v7().to_string(), "token_use": "access",
        "roles": ["Admin"], "perms": ["users:admin"], "username": "admin",
    })
}

/// Signs `claims` with EdDSA under `kid` and `pkcs8`, with optional extra header fields.
pub fn sign(kid: &str, pkcs8: &[u8], claims: &Value, extra_header: Value) -> String {
    let mut header = json!({"alg": "EdDSA", "typ": "JWT", "kid": kid});
    for (k, v) in extra_header.as_object().unwrap() {
        header[k] = v.clone();
    }
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8).unwrap();
    let signature = pair.sign(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.as_ref())
    )
}

/// The claims inside a token (no verification).
pub fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The user id inside a token (no verification).
pub fn subject_of(token: &str) -> String {
    claims_of(token)["sub"].as_str().unwrap().to_string()
}

/// The current TOTP code for a base32 secret.
pub fn totp_code(secret_base32: &str, at: u64) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret_base32).unwrap();
    totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret)
        .build()
        .unwrap()
        .generate(at)
        .to_string()
}
