//! TOTP: enrolment, the two-step login, replay refusal, recovery codes, and admins required
//! to enrol.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::auth_helpers::*;
use crate::helpers::{ADMIN_PASSWORD, TestApp, spawn, spawn_app};

/// Enrols TOTP for the holder of `token`; returns the base32 secret and the recovery codes.
async fn enrol(app: &TestApp, token: &str) -> (String, Vec<String>, Value) {
    let enrolment: Value = send_json(
        app,
        Method::POST,
        "/api/v1/auth/mfa/totp/enroll",
        token,
        json!({}),
    )
    .await
    .json()
    .await
    .unwrap();
    let secret = enrolment["secret"].as_str().unwrap().to_string();
    assert!(
        enrolment["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/vivesphere:")
    );
    let code = totp_code(&secret, app.clock.unix_seconds() as u64);
    let response = send_json(
        app,
        Method::POST,
        "/api/v1/auth/mfa/totp/confirm",
        token,
        json!({"code": code}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let confirmed: Value = response.json().await.unwrap();
    let codes: Vec<String> = confirmed["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10);
    (secret, codes, confirmed)
}

async fn mfa_login(app: &TestApp, mfa_token: &str, body: Value) -> reqwest::Response {
    let mut body = body;
    body["mfa_token"] = json!(mfa_token);
    app.client
        .post(app.url("/api/v1/auth/login/mfa"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn totp_login_takes_two_steps_and_a_code_works_once() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let token = token_of(&app, &admin, "mia", &["Editor"]).await;
    let (secret, _, _) = enrol(&app, &token).await;

    let challenge = login_ok(&app, "mia", PASSWORD).await;
    assert_eq!(challenge["status"], "mfa_required");
    assert!(
        challenge.get("token").is_none(),
        "no access token before the second factor"
    );
    let mfa_token = challenge["mfa_token"].as_str().unwrap();
    // The pending token opens nothing else.
    assert_eq!(validate(&app, mfa_token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        get(&app, "/api/v1/auth/me", mfa_token).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let wrong = mfa_login(&app, mfa_token, json!({"code": "000000"})).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    // The code used at confirmation is spent already: wait for a fresh step's code.
    let code = totp_code(&secret, app.clock.unix_seconds() as u64 + 30);
    let ok = mfa_login(&app, mfa_token, json!({"code": code})).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let pair: Value = ok.json().await.unwrap();
    assert_eq!(
        validate(&app, pair["token"].as_str().unwrap()).await,
        StatusCode::OK
    );

    // Replay: same code, new challenge.
    let again = login_ok(&app, "mia", PASSWORD).await;
    let replay = mfa_login(
        &app,
        again["mfa_token"].as_str().unwrap(),
        json!({"code": code}),
    )
    .await;
    assert_eq!(
        replay.status(),
        StatusCode::UNAUTHORIZED,
        "a used time step is refused"
    );
    // The pending token is single use too.
    let reused = mfa_login(
        &app,
        mfa_token,
        json!({"code": totp_code(&secret, app.clock.unix_seconds() as u64 + 60)}),
    )
    .await;
    assert_eq!(reused.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn recovery_codes_work_once_each() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let token = token_of(&app, &admin, "rob", &["Viewer"]).await;
    let (_, codes, _) = enrol(&app, &token).await;
    let challenge = login_ok(&app, "rob", PASSWORD).await;
    let ok = mfa_login(
        &app,
        challenge["mfa_token"].as_str().unwrap(),
        json!({"recovery_code": codes[0]}),
    )
    .await;
    assert_eq!(ok.status(), StatusCode::OK);
    let challenge = login_ok(&app, "rob", PASSWORD).await;
    let again = mfa_login(
        &app,
        challenge["mfa_token"].as_str().unwrap(),
        json!({"recovery_code": codes[0]}),
    )
    .await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    let other = mfa_login(
        &app,
        challenge["mfa_token"].as_str().unwrap(),
        json!({"recovery_code": codes[1].to_uppercase()}),
    )
    .await;
    assert_eq!(other.status(), StatusCode::OK);
}

#[tokio::test]
async fn disabling_totp_needs_the_password() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let token = token_of(&app, &admin, "dan", &["Viewer"]).await;
    enrol(&app, &token).await;
    let wrong = send_json(
        &app,
        Method::DELETE,
        "/api/v1/auth/mfa/totp",
        &token,
        json!({"password": "guess-guess-guess"}),
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let ok = send_json(
        &app,
        Method::DELETE,
        "/api/v1/auth/mfa/totp",
        &token,
        json!({"password": PASSWORD}),
    )
    .await;
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    assert!(login_ok(&app, "dan", PASSWORD).await.get("token").is_some());
}

#[tokio::test]
async fn admins_can_be_required_to_enrol_before_they_get_a_token() {
    let app = spawn(
        None,
        &[("VIVESPHERE_AUTHENTICATION__REQUIRE_MFA_FOR_ADMINS", "true")],
        None,
    )
    .await;
    let challenge = login_ok(&app, "admin", ADMIN_PASSWORD).await;
    assert_eq!(challenge["status"], "mfa_enrollment_required");
    let enrolment_token = challenge["mfa_token"].as_str().unwrap();
    assert_eq!(
        get(&app, "/api/v1/auth/users", enrolment_token)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let (_, _, confirmed) = enrol(&app, enrolment_token).await;
    let token = confirmed["tokens"]["token"].as_str().unwrap();
    assert_eq!(
        get(&app, "/api/v1/auth/users", token).await.status(),
        StatusCode::OK
    );
    // From now on the admin logs in with the second factor.
    assert_eq!(
        login_ok(&app, "admin", ADMIN_PASSWORD).await["status"],
        "mfa_required"
    );
}

#[tokio::test]
async fn no_response_shows_the_totp_secret_again() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let token = token_of(&app, &admin, "sam", &["Viewer"]).await;
    let (secret, _, _) = enrol(&app, &token).await;
    let me = get(&app, "/api/v1/auth/me", &token)
        .await
        .text()
        .await
        .unwrap();
    assert!(!me.contains(&secret));
    assert!(me.contains("\"mfa_enabled\":true"), "{me}");
    let users = get(&app, "/api/v1/auth/users", &admin)
        .await
        .text()
        .await
        .unwrap();
    assert!(!users.contains(&secret));
}
