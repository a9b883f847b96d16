//! Login, validate, refresh rotation and reuse detection, logout, password changes and
//! brute-force protection, on SQLite and (where it matters) PostgreSQL.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::auth_helpers::*;
use crate::helpers::{ADMIN_PASSWORD, TestApp, spawn, spawn_app};
use platform::testing::TestPostgres;

#[tokio::test]
async fn login_and_validate_follow_the_contract() {
    let app = spawn_app().await;
    let body = login_ok(&app, "admin", ADMIN_PASSWORD).await;
    let token = body["token"].as_str().unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert!(
        body["refresh_token"].as_str().unwrap().len() >= 43,
        "≥ 256 bits"
    );
    assert_eq!(token.split('.').count(), 3, "a JWT");

    let response = get(&app, "/api/v1/auth/validate", token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let valid: Value = response.json().await.unwrap();
    assert_eq!(valid["status"], "valid");
    assert_eq!(valid["user_id"], subject_of(token));
    assert_eq!(valid["roles"], json!(["Admin"]));
    assert!(
        valid["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("users:admin"))
    );

    // The compatibility form: ?token=.
    let response = app
        .client
        .get(app.url(&format!("/api/v1/auth/validate?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn bad_credentials_are_401_auth_failed_and_unknown_users_look_the_same() {
    let app = spawn_app().await;
    let wrong = login(&app, "admin", "not-the-password-at-all").await;
    let unknown = login(&app, "nobody-here", "not-the-password-at-all").await;
    let mut bodies = Vec::new();
    for response in [wrong, unknown] {
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let mut body: Value = response.json().await.unwrap();
        assert_eq!(body["error_code"], "AUTH_FAILED");
        assert_eq!(body["message"], "Invalid credentials");
        body.as_object_mut().unwrap().remove("request_id");
        bodies.push(body);
    }
    assert_eq!(
        bodies[0], bodies[1],
        "nothing tells an unknown user from a wrong password"
    );
}

#[tokio::test]
async fn unknown_users_cost_as_much_time_as_wrong_passwords() {
    let app = spawn(
        None,
        &[("VIVESPHERE_AUTHENTICATION__BRUTE_FORCE__ENABLED", "false")],
        None,
    )
    .await;
    let mut timings = [Duration::ZERO; 2];
    for _ in 0..4 {
        for (i, user) in ["admin", "ghost-user"].iter().enumerate() {
            let started = Instant::now();
            assert_eq!(
                login(&app, user, "wrong-password-123").await.status(),
                StatusCode::UNAUTHORIZED
            );
            timings[i] += started.elapsed();
        }
    }
    // Both run one argon2 verification; without the decoy the unknown user would answer in
    // about a fortieth of the time. The band is wide because tests run side by side.
    let ratio = timings[1].as_secs_f64() / timings[0].as_secs_f64();
    assert!(
        (0.33..3.0).contains(&ratio),
        "unknown/known = {ratio:.2} ({timings:?})"
    );
}

#[tokio::test]
async fn missing_or_garbage_tokens_are_401_invalid_token() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/api/v1/auth/validate"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error_code"], "INVALID_TOKEN");
    for garbage in ["x", "a.b.c", "eyJhbGciOiJFZERTQSJ9.e30.AAAA"] {
        assert_eq!(
            validate(&app, garbage).await,
            StatusCode::UNAUTHORIZED,
            "{garbage}"
        );
    }
    // Other routes answer UNAUTHORIZED.
    let body: Value = get_json(&app, "/api/v1/auth/me", "x").await;
    assert_eq!(body["error_code"], "UNAUTHORIZED");
}

async fn refresh(app: &TestApp, refresh_token: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({"refresh_token": refresh_token}))
        .send()
        .await
        .unwrap()
}

async fn refresh_rotates_and_reuse_revokes_the_family(app: TestApp) {
    let first = login_ok(&app, "admin", ADMIN_PASSWORD).await;
    let first_refresh = first["refresh_token"].as_str().unwrap();
    let response = refresh(&app, first_refresh).await;
    assert_eq!(response.status(), StatusCode::OK);
    let second: Value = response.json().await.unwrap();
    let second_refresh = second["refresh_token"].as_str().unwrap();
    let second_access = second["token"].as_str().unwrap();
    assert_ne!(first_refresh, second_refresh);
    assert_eq!(validate(&app, second_access).await, StatusCode::OK);

    // The spent token comes back: the whole session dies, including what it issued.
    let reuse = refresh(&app, first_refresh).await;
    assert_eq!(reuse.status(), StatusCode::UNAUTHORIZED);
    let body: Value = reuse.json().await.unwrap();
    assert_eq!(body["error_code"], "INVALID_TOKEN");
    assert_eq!(
        refresh(&app, second_refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        validate(&app, second_access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        validate(&app, first["token"].as_str().unwrap()).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family_on_sqlite() {
    refresh_rotates_and_reuse_revokes_the_family(spawn_app().await).await;
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family_on_postgres() {
    let Some(pg) = TestPostgres::create().await else {
        return;
    };
    refresh_rotates_and_reuse_revokes_the_family(spawn(None, &[], Some(pg)).await).await;
}

async fn parallel_refreshes_with_one_token_have_one_winner(app: TestApp) {
    for _ in 0..3 {
        let pair = login_ok(&app, "admin", ADMIN_PASSWORD).await;
        let token = pair["refresh_token"].as_str().unwrap();
        let (a, b) = tokio::join!(refresh(&app, token), refresh(&app, token));
        let statuses = [a.status(), b.status()];
        assert_eq!(
            statuses.iter().filter(|s| **s == StatusCode::OK).count(),
            1,
            "exactly one wins: {statuses:?}"
        );
        assert!(statuses.contains(&StatusCode::UNAUTHORIZED));
    }
}

#[tokio::test]
async fn parallel_refreshes_with_one_token_have_one_winner_on_sqlite() {
    parallel_refreshes_with_one_token_have_one_winner(spawn_app().await).await;
}

#[tokio::test]
async fn parallel_refreshes_with_one_token_have_one_winner_on_postgres() {
    let Some(pg) = TestPostgres::create().await else {
        return;
    };
    parallel_refreshes_with_one_token_have_one_winner(spawn(None, &[], Some(pg)).await).await;
}

#[tokio::test]
async fn idle_sessions_end() {
    // The default: a session ends after 30 minutes without a refresh.
    let app = spawn_app().await;
    let pair = login_ok(&app, "admin", ADMIN_PASSWORD).await;
    app.clock.advance(Duration::from_secs(29 * 60));
    let response = refresh(&app, pair["refresh_token"].as_str().unwrap()).await;
    assert_eq!(response.status(), StatusCode::OK, "29 minutes idle is fine");
    let pair: Value = response.json().await.unwrap();
    app.clock.advance(Duration::from_secs(31 * 60));
    assert_eq!(
        refresh(&app, pair["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED,
        "31 minutes after the last refresh the session has ended"
    );
}

#[tokio::test]
async fn logout_revokes_the_access_and_refresh_tokens_of_the_session() {
    let app = spawn_app().await;
    let pair = login_ok(&app, "admin", ADMIN_PASSWORD).await;
    let other = login_ok(&app, "admin", ADMIN_PASSWORD).await;
    let token = pair["token"].as_str().unwrap();
    let response = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(validate(&app, token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh(&app, pair["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // Another session of the same user lives on.
    assert_eq!(
        validate(&app, other["token"].as_str().unwrap()).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn users_list_and_end_their_own_sessions_only() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let other_session = login_ok(&app, "admin", ADMIN_PASSWORD).await;
    let sessions: Value = get_json(&app, "/api/v1/auth/sessions", &admin).await;
    let items = sessions["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let other_id = items
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .find(|id| Some(*id) != sessions["current"].as_str())
        .unwrap()
        .to_string();

    let viewer = token_of(&app, &admin, "victor", &["Viewer"]).await;
    let foreign = send_json(
        &app,
        Method::DELETE,
        &format!("/api/v1/auth/sessions/{other_id}"),
        &viewer,
        json!({}),
    )
    .await;
    assert_eq!(
        foreign.status(),
        StatusCode::NOT_FOUND,
        "someone else's session is 404"
    );

    let own = send_json(
        &app,
        Method::DELETE,
        &format!("/api/v1/auth/sessions/{other_id}"),
        &admin,
        json!({}),
    )
    .await;
    assert_eq!(own.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        validate(&app, other_session["token"].as_str().unwrap()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(validate(&app, &admin).await, StatusCode::OK);
}

async fn change_password(app: &TestApp, token: Option<&str>, body: Value) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/api/v1/auth/password"))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn changing_a_password_needs_the_current_one_and_ends_every_session() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let token = token_of(&app, &admin, "paula", &["Editor"]).await;

    let wrong = change_password(
        &app,
        Some(&token),
        json!({"current_password": "nope-nope-nope", "new_password": "fresh-and-long-password-1"}),
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let weak = change_password(
        &app,
        Some(&token),
        json!({"current_password": PASSWORD, "new_password": "short"}),
    )
    .await;
    assert_eq!(weak.status(), StatusCode::BAD_REQUEST);
    let common = change_password(
        &app,
        Some(&token),
        json!({"current_password": PASSWORD, "new_password": "1qaz2wsx3edc"}),
    )
    .await;
    assert_eq!(common.status(), StatusCode::BAD_REQUEST);
    let with_name = change_password(
        &app,
        Some(&token),
        json!({"current_password": PASSWORD, "new_password": "paula-rules-forever-1"}),
    )
    .await;
    assert_eq!(with_name.status(), StatusCode::BAD_REQUEST);

    let ok = change_password(
        &app,
        Some(&token),
        json!({"current_password": PASSWORD, "new_password": "fresh-and-long-password-1"}),
    )
    .await;
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        validate(&app, &token).await,
        StatusCode::UNAUTHORIZED,
        "old sessions end"
    );
    assert_eq!(
        login(&app, "paula", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    login_ok(&app, "paula", "fresh-and-long-password-1").await;
}

#[tokio::test]
async fn an_admin_reset_forces_a_change_at_next_login() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let id = create_user(&app, &admin, "rita", &["Viewer"]).await;
    let user_token = login_ok(&app, "rita", PASSWORD).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let reset: Value = send_json(
        &app,
        Method::POST,
        &format!("/api/v1/auth/users/{id}/reset-password"),
        &admin,
        json!({}),
    )
    .await
    .json()
    .await
    .unwrap();
    let temporary = reset["temporary_password"].as_str().unwrap();
    assert_eq!(
        validate(&app, &user_token).await,
        StatusCode::UNAUTHORIZED,
        "sessions end on reset"
    );

    let response = login(&app, "rita", temporary).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error_code"], "PASSWORD_CHANGE_REQUIRED");

    let changed = change_password(
        &app,
        None,
        json!({"username": "rita", "current_password": temporary, "new_password": "my-own-new-passphrase-7"}),
    )
    .await;
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    login_ok(&app, "rita", "my-own-new-passphrase-7").await;
}

/// Fewer failures before the backoff and the lock than the defaults; the delays are the
/// defaults (backoff from 1 s, doubling; a 15-minute lock), which the test clock skips.
const FAST_LOCKOUT: [(&str, &str); 2] = [
    ("VIVESPHERE_AUTHENTICATION__BRUTE_FORCE__BACKOFF_AFTER", "3"),
    ("VIVESPHERE_AUTHENTICATION__BRUTE_FORCE__LOCK_AFTER", "4"),
];

/// Asserts a 429 `RATE_LIMITED` and returns its `Retry-After` in seconds.
async fn assert_throttled(response: reqwest::Response) -> u64 {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error_code"], "RATE_LIMITED");
    retry_after
}

#[tokio::test]
async fn repeated_failures_back_off_then_lock_and_the_lock_expires() {
    // A clock that stands still between steps, so each wait is exact.
    let clock = platform::Clock::frozen(crate::helpers::TEST_START);
    let app = crate::helpers::spawn_with_clock(None, &FAST_LOCKOUT, None, clock).await;
    for _ in 0..3 {
        assert_eq!(
            login(&app, "admin", "wrong-guess-123").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Three failures: the next attempt must wait, even with the right password.
    let backoff = assert_throttled(login(&app, "admin", ADMIN_PASSWORD).await).await;
    assert_eq!(backoff, 1, "the first backoff is backoff_base");
    app.clock.advance(Duration::from_secs(backoff));
    assert_eq!(
        login(&app, "admin", "wrong-guess-123").await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Four failures: locked for lock_duration, whatever the password.
    let lock = assert_throttled(login(&app, "admin", ADMIN_PASSWORD).await).await;
    assert_eq!(lock, 900, "a 15-minute lock");
    app.clock.advance(Duration::from_secs(lock - 1));
    assert_throttled(login(&app, "admin", ADMIN_PASSWORD).await).await;
    app.clock.advance(Duration::from_secs(1));
    login_ok(&app, "admin", ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn unknown_accounts_are_throttled_like_real_ones() {
    // A clock that stands still: on a busy machine the backoff must not expire between the
    // third failure and the fourth attempt.
    let clock = platform::Clock::frozen(crate::helpers::TEST_START);
    let app = crate::helpers::spawn_with_clock(None, &FAST_LOCKOUT, None, clock).await;
    for _ in 0..3 {
        assert_eq!(
            login(&app, "ghost", "wrong-guess-123").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_throttled(login(&app, "ghost", "wrong-guess-123").await).await;
}

#[tokio::test]
async fn login_bodies_of_the_wrong_shape_are_400() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = login(&app, "admin", &"x".repeat(5000)).await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "over-long passwords are simply wrong"
    );
}

#[tokio::test]
async fn the_openapi_document_describes_every_auth_route() {
    let app = spawn_app().await;
    let doc: Value = app
        .get("/api/v1/auth/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/v1/auth/login",
        "/api/v1/auth/login/mfa",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/auth/validate",
        "/api/v1/auth/password",
        "/api/v1/auth/me",
        "/api/v1/auth/sessions/{session_id}",
        "/api/v1/auth/mfa/totp/enroll",
        "/api/v1/auth/users/{user_id}/reset-password",
        "/api/v1/auth/roles/{name}",
        "/api/v1/auth/clients",
        "/api/v1/auth/token",
        "/api/v1/auth/revoke",
        "/api/v1/auth/introspect",
        "/api/v1/auth/.well-known/jwks.json",
        "/api/v1/auth/revocations",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn logins_failures_and_throttling_are_emitted_as_user_activity_events() {
    // A long backoff, so the fourth attempt is throttled however slow the machine is.
    let app = spawn(
        None,
        &[
            ("VIVESPHERE_AUTHENTICATION__BRUTE_FORCE__BACKOFF_AFTER", "3"),
            ("VIVESPHERE_AUTHENTICATION__BRUTE_FORCE__BACKOFF_BASE", "60"),
        ],
        None,
    )
    .await;
    login_ok(&app, "admin", ADMIN_PASSWORD).await;
    for _ in 0..4 {
        login(&app, "mallory", "wrong-guess-123").await;
    }
    let queue = app.queue.clone().unwrap();
    let mut consumer = queue
        .consumer(platform::queue::ConsumerSpec::new(
            "activity-test",
            "logs.user_activity.>",
        ))
        .await
        .unwrap();
    let mut actions = Vec::new();
    while let Ok(Ok(delivery)) =
        tokio::time::timeout(Duration::from_millis(500), consumer.next()).await
    {
        let event: Value = serde_json::from_slice(&delivery.message.payload).unwrap();
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(
            event["id"], delivery.message.id,
            "the CloudEvents id is the dedupe id"
        );
        assert_eq!(event["source"], "vivesphere/authentication");
        assert!(event["request_id"].is_string(), "{event}");
        assert!(
            !event.to_string().contains("wrong-guess-123"),
            "a password reached an event"
        );
        actions.push(event["data"]["action"].as_str().unwrap().to_string());
        delivery.ack().await.unwrap();
    }
    assert!(
        actions.contains(&"login.succeeded".to_string()),
        "{actions:?}"
    );
    assert_eq!(
        actions.iter().filter(|a| *a == "login.failed").count(),
        3,
        "{actions:?}"
    );
    assert!(
        actions.contains(&"login.throttled".to_string()),
        "{actions:?}"
    );
}

#[tokio::test]
async fn user_administration_runs_on_postgres() {
    let Some(pg) = TestPostgres::create().await else {
        return;
    };
    let app = spawn(None, &[], Some(pg)).await;
    let admin = admin_token(&app).await;
    let id = create_user(&app, &admin, "pgrid", &["Manager"]).await;
    let token = login_ok(&app, "pgrid", PASSWORD).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let valid: Value = get_json(&app, "/api/v1/auth/validate", &token).await;
    assert!(
        valid["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("botdata:reveal"))
    );
    let disabled = send_json(
        &app,
        Method::PATCH,
        &format!("/api/v1/auth/users/{id}"),
        &admin,
        json!({"disabled": true}),
    )
    .await;
    assert_eq!(disabled.status(), StatusCode::OK);
    assert_eq!(validate(&app, &token).await, StatusCode::UNAUTHORIZED);
    let users: Value = get_json(&app, "/api/v1/auth/users", &admin).await;
    assert_eq!(users["items"].as_array().unwrap().len(), 2);
}
