//! Users, roles and permissions: admins manage them, nobody else can, nobody can grant
//! themselves more, and no response ever carries a secret.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::auth_helpers::*;
use crate::helpers::spawn_app;

/// What must never appear in any response body.
fn assert_no_secrets(text: &str) {
    for needle in [
        "$argon2",
        "password_hash",
        "totp_secret",
        "secret_hash",
        "code_hash",
        "private_key",
    ] {
        assert!(!text.contains(needle), "{needle} leaked: {text}");
    }
}

#[tokio::test]
async fn admins_create_list_read_update_disable_and_delete_users() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let mut ids = Vec::new();
    for name in ["ann", "ben", "cat"] {
        ids.push(create_user(&app, &admin, name, &["Viewer"]).await);
    }
    // Keyset pages of two.
    let page: Value = get_json(&app, "/api/v1/auth/users?limit=2", &admin).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest: Value = get_json(
        &app,
        &format!("/api/v1/auth/users?limit=2&cursor={cursor}"),
        &admin,
    )
    .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 2);
    assert!(rest["next_cursor"].is_null());
    let names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["items"].as_array().unwrap())
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "ann", "ben", "cat"]);
    assert_no_secrets(&page.to_string());

    let ben_id = ids[1].clone();
    let ben_token = login_ok(&app, "ben", PASSWORD).await["token"]
        .as_str()
        .unwrap()
        .to_string();

    let response = send_json(
        &app,
        Method::PATCH,
        &format!("/api/v1/auth/users/{ben_id}"),
        &admin,
        json!({"display_name": "Ben B.", "roles": ["Editor"]}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let ben: Value = response.json().await.unwrap();
    assert_eq!(ben["roles"], json!(["Editor"]));
    assert_eq!(ben["display_name"], "Ben B.");
    assert_eq!(
        validate(&app, &ben_token).await,
        StatusCode::UNAUTHORIZED,
        "a role change revokes old tokens"
    );
    let fresh = login_ok(&app, "ben", PASSWORD).await;
    let valid: Value = get_json(
        &app,
        "/api/v1/auth/validate",
        fresh["token"].as_str().unwrap(),
    )
    .await;
    assert!(
        valid["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("bots:write"))
    );

    let response = send_json(
        &app,
        Method::PATCH,
        &format!("/api/v1/auth/users/{ben_id}"),
        &admin,
        json!({"disabled": true}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        validate(&app, fresh["token"].as_str().unwrap()).await,
        StatusCode::UNAUTHORIZED,
        "disabling ends sessions"
    );
    assert_eq!(
        login(&app, "ben", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let response = send_json(
        &app,
        Method::DELETE,
        &format!("/api/v1/auth/users/{ben_id}"),
        &admin,
        json!({}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        get(&app, &format!("/api/v1/auth/users/{ben_id}"), &admin)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn duplicate_and_invalid_users_are_refused_clearly() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    create_user(&app, &admin, "dora", &[]).await;
    let dup = send_json(
        &app,
        Method::POST,
        "/api/v1/auth/users",
        &admin,
        json!({"username": "dora", "password": PASSWORD}),
    )
    .await;
    assert_eq!(dup.status(), StatusCode::CONFLICT);
    for body in [
        json!({"username": "x", "password": PASSWORD}),
        json!({"username": "eve", "password": "short"}),
        json!({"username": "eve", "password": PASSWORD, "roles": ["Overlord"]}),
        json!({"username": "eve", "password": PASSWORD, "email": "not-an-email"}),
        json!({"username": "eve", "password": PASSWORD, "is_admin": true}),
    ] {
        let response = send_json(
            &app,
            Method::POST,
            "/api/v1/auth/users",
            &admin,
            body.clone(),
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error_code"], "INVALID_DATA");
    }
}

#[tokio::test]
async fn a_user_created_without_a_password_gets_a_one_time_one() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let response = send_json(
        &app,
        Method::POST,
        "/api/v1/auth/users",
        &admin,
        json!({"username": "fay", "roles": ["Viewer"]}),
    )
    .await;
    let body: Value = response.json().await.unwrap();
    let temporary = body["temporary_password"].as_str().unwrap();
    assert!(body["user"]["must_change_password"].as_bool().unwrap());
    assert_eq!(
        login(&app, "fay", temporary).await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn viewers_are_refused_on_every_admin_endpoint() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let viewer = token_of(&app, &admin, "vic", &["Viewer"]).await;
    let admin_id = subject_of(&admin);
    let calls = [
        (Method::GET, "/api/v1/auth/users".to_string(), json!(null)),
        (
            Method::POST,
            "/api/v1/auth/users".to_string(),
            json!({"username": "zed", "password": PASSWORD}),
        ),
        (
            Method::GET,
            format!("/api/v1/auth/users/{admin_id}"),
            json!(null),
        ),
        (
            Method::PATCH,
            format!("/api/v1/auth/users/{admin_id}"),
            json!({"disabled": true}),
        ),
        (
            Method::DELETE,
            format!("/api/v1/auth/users/{admin_id}"),
            json!(null),
        ),
        (
            Method::POST,
            format!("/api/v1/auth/users/{admin_id}/reset-password"),
            json!(null),
        ),
        (Method::GET, "/api/v1/auth/roles".to_string(), json!(null)),
        (
            Method::POST,
            "/api/v1/auth/roles".to_string(),
            json!({"name": "x", "permissions": ["users:admin"]}),
        ),
        (
            Method::DELETE,
            "/api/v1/auth/roles/Admin".to_string(),
            json!(null),
        ),
        (Method::GET, "/api/v1/auth/clients".to_string(), json!(null)),
        (
            Method::POST,
            "/api/v1/auth/clients".to_string(),
            json!({"client_id": "abc", "audiences": ["logging"], "scopes": []}),
        ),
    ];
    for (method, path, body) in calls {
        let response = send_json(&app, method.clone(), &path, &viewer, body).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method} {path}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error_code"], "FORBIDDEN");
    }
    // And the admin is still an admin.
    assert_eq!(
        get(&app, "/api/v1/auth/users", &admin).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn users_cannot_grant_themselves_roles() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let editor = token_of(&app, &admin, "eddie", &["Editor"]).await;
    for body in [
        json!({"roles": ["Admin"]}),
        json!({"display_name": "E", "disabled": false}),
        json!({"perms": ["users:admin"]}),
    ] {
        let response = send_json(
            &app,
            Method::PATCH,
            "/api/v1/auth/me",
            &editor,
            body.clone(),
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
    }
    let me: Value = send_json(
        &app,
        Method::PATCH,
        "/api/v1/auth/me",
        &editor,
        json!({"display_name": "Eddie"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(me["display_name"], "Eddie");
    assert_eq!(me["roles"], json!(["Editor"]));
    assert_no_secrets(&me.to_string());
    // An admin cannot lock themselves out either.
    let own = send_json(
        &app,
        Method::PATCH,
        &format!("/api/v1/auth/users/{}", subject_of(&admin)),
        &admin,
        json!({"roles": ["Viewer"]}),
    )
    .await;
    assert_eq!(own.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn custom_roles_carry_their_permissions_into_tokens() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let response = send_json(&app, Method::POST, "/api/v1/auth/roles", &admin,
        json!({"name": "Auditor", "description": "reads logs", "permissions": ["logs:read", "logs:read:debug"]})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let token = token_of(&app, &admin, "audrey", &["Auditor"]).await;
    let valid: Value = get_json(&app, "/api/v1/auth/validate", &token).await;
    assert_eq!(valid["roles"], json!(["Auditor"]));
    assert_eq!(
        valid["permissions"],
        json!(["logs:read", "logs:read:debug"])
    );

    let bad = send_json(
        &app,
        Method::POST,
        "/api/v1/auth/roles",
        &admin,
        json!({"name": "Bad", "permissions": ["LOGS"]}),
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let dup = send_json(
        &app,
        Method::POST,
        "/api/v1/auth/roles",
        &admin,
        json!({"name": "Auditor", "permissions": []}),
    )
    .await;
    assert_eq!(dup.status(), StatusCode::CONFLICT);
    let put = send_json(
        &app,
        Method::PUT,
        "/api/v1/auth/roles/Auditor",
        &admin,
        json!({"permissions": ["logs:read"]}),
    )
    .await;
    assert_eq!(put.status(), StatusCode::OK);
    assert_eq!(
        validate(&app, &token).await,
        StatusCode::UNAUTHORIZED,
        "holders' tokens go with the change"
    );
    let fresh = login_ok(&app, "audrey", PASSWORD).await;
    let valid: Value = get_json(
        &app,
        "/api/v1/auth/validate",
        fresh["token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(valid["permissions"], json!(["logs:read"]));
    let builtin = send_json(
        &app,
        Method::DELETE,
        "/api/v1/auth/roles/Admin",
        &admin,
        json!(null),
    )
    .await;
    assert_eq!(
        builtin.status(),
        StatusCode::NOT_FOUND,
        "built-in roles stay"
    );
    let gone = send_json(
        &app,
        Method::DELETE,
        "/api/v1/auth/roles/Auditor",
        &admin,
        json!(null),
    )
    .await;
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);
    let roles: Value = get_json(&app, "/api/v1/auth/roles", &admin).await;
    let names: Vec<&str> = roles
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Admin", "Editor", "Manager", "Viewer"]);
}

#[tokio::test]
async fn a_users_team_is_in_their_tokens_and_moving_them_revokes_the_old_ones() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let response = send_json(
        &app,
        Method::POST,
        "/api/v1/auth/users",
        &admin,
        json!({"username": "teamed", "password": PASSWORD, "roles": ["Editor"], "team": "growth"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["user"]["team"], "growth");
    let id = created["user"]["id"].as_str().unwrap().to_string();
    let token = login_ok(&app, "teamed", PASSWORD).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(claims_of(&token)["team"], "growth");

    let invalid = send_json(
        &app,
        Method::PATCH,
        &format!("/api/v1/auth/users/{id}"),
        &admin,
        json!({"team": "no spaces/slashes"}),
    )
    .await;
    assert_eq!(invalid.status(), StatusCode::BAD_REQUEST);
    let moved = send_json(
        &app,
        Method::PATCH,
        &format!("/api/v1/auth/users/{id}"),
        &admin,
        json!({"team": "support"}),
    )
    .await;
    assert_eq!(moved.status(), StatusCode::OK);
    // The old token named the old team: it no longer works, a new one names the new team.
    let old = get(&app, "/api/v1/auth/validate", &token).await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let token = login_ok(&app, "teamed", PASSWORD).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(claims_of(&token)["team"], "support");
    // An empty team takes the user out of any team.
    let cleared: Value = send_json(
        &app,
        Method::PATCH,
        &format!("/api/v1/auth/users/{id}"),
        &admin,
        json!({"team": ""}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(cleared["team"], Value::Null);
}
