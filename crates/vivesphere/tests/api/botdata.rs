//! Secure Bot Data: the contract routes, versions and check-and-set, the delete / undelete /
//! destroy lifecycle, object-level authorization, sealing, audit, and the encryption at rest.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Row;

use crate::auth_helpers::{admin_token, get, get_json, send_json};
use crate::botdata_helpers::*;
use crate::helpers::{spawn, spawn_app};

#[tokio::test]
async fn store_and_retrieve_keep_the_contract() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let (_, manager) = user(&app, &admin, "mgr", &["Manager"], None).await;

    let response = store(
        &app,
        &manager,
        "bot-1",
        json!({"email": "bot1@example.com", "password": "pa55-word-for-bot-1"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        response.headers()["cache-control"],
        "no-store",
        "responses about secrets must not be cached"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"status": "stored", "bot_id": "bot-1"}));

    let response = retrieve(&app, &manager, "bot-1").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"bot_id": "bot-1", "data": {"email": "bot1@example.com", "password": "pa55-word-for-bot-1"}})
    );

    // A second store adds and replaces fields as new versions.
    store_ok(
        &app,
        &manager,
        "bot-1",
        json!({"password": "rotated-password-2"}),
    )
    .await;
    let body: Value = retrieve(&app, &manager, "bot-1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["data"]["password"], "rotated-password-2");
    assert_eq!(body["data"]["email"], "bot1@example.com");

    let (status, code) = error_of(retrieve(&app, &manager, "no-such-bot").await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "NOT_FOUND")
    );
}

/// One retrieve, one audit row: it names every field revealed with its version and value
/// HMAC (never the value), so the audit trail grows by request, not by field.
#[tokio::test]
async fn a_retrieve_is_one_audit_row_naming_its_fields() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let (manager_id, manager) = user(&app, &admin, "mgr", &["Manager"], None).await;
    let secrets = json!({"email": "c@example.com", "password": "compact-canary-1",
        "api_key": "compact-canary-2", "api_secret": "compact-canary-3"});
    store_ok(&app, &manager, "bot-c", secrets).await;
    assert_eq!(
        retrieve(&app, &manager, "bot-c").await.status(),
        StatusCode::OK
    );
    let audit: Value = get_json(&app, &format!("{PREFIX}/audit?bot_id=bot-c"), &admin).await;
    let reveals: Vec<&Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "reveal")
        .collect();
    assert_eq!(reveals.len(), 1, "{audit}");
    let reveal = reveals[0];
    assert_eq!(reveal["actor"], manager_id.as_str());
    assert_eq!(reveal["field"], Value::Null);
    let mut fields: Vec<&str> = reveal["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!(f["version"], 1, "{f}");
            assert!(f["value_hmac"].as_str().unwrap().len() >= 32, "{f}");
            f["field"].as_str().unwrap()
        })
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["api_key", "api_secret", "email", "password"]);
    assert!(!audit.to_string().contains("compact-canary"), "{audit}");
}

#[tokio::test]
async fn the_contract_refuses_bad_input_and_missing_tokens() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;

    for body in [
        json!({"bot_id": "b", "data": {}}),
        json!({"bot_id": "b"}),
        json!({"data": {"email": "x"}}),
        json!({"bot_id": "b", "data": {"email": 5}}),
        json!({"bot_id": "b", "data": {"email": ""}}),
        json!({"bot_id": "b", "data": {"Bad-Name": "x"}}),
        json!({"bot_id": "../etc", "data": {"email": "x"}}),
        json!({"bot_id": "b", "data": "not an object"}),
        json!({"bot_id": "b", "data": {"email": "x".repeat(16 * 1024 + 1)}}),
    ] {
        let response = send_json(
            &app,
            Method::POST,
            &format!("{PREFIX}/store"),
            &admin,
            body.clone(),
        )
        .await;
        let (status, code) = error_of(response).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "INVALID_DATA"),
            "{body}"
        );
    }
    let (status, code) = error_of(
        app.client
            .get(app.url(&format!("{PREFIX}/retrieve")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "INVALID_DATA")
    );

    let unauthenticated = app
        .client
        .post(app.url(&format!("{PREFIX}/store")))
        .json(&json!({"bot_id": "b", "data": {"email": "x"}}))
        .send()
        .await
        .unwrap();
    let (status, code) = error_of(unauthenticated).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "UNAUTHORIZED")
    );
    for token in ["", "not-a-jwt", "eyJhbGciOiJub25lIn0.e30."] {
        let (status, code) = error_of(retrieve(&app, token, "b").await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
            "{token:?}"
        );
    }
    // Nothing was stored by any refused request.
    let listing: Value = get_json(&app, &format!("{PREFIX}/bots"), &admin).await;
    assert_eq!(listing["items"], json!([]));
}

#[tokio::test]
async fn reads_are_masked_unless_revealed_and_versions_are_kept() {
    let app = spawn(
        None,
        &[("VIVESPHERE_SECURE_BOT_DATA__MAX_VERSIONS", "3")],
        None,
    )
    .await;
    let admin = admin_token(&app).await;
    let (_, manager) = user(&app, &admin, "mgr", &["Manager"], None).await;
    for i in 1..=4 {
        store_ok(
            &app,
            &manager,
            "bot-v",
            json!({"api_key": format!("api-key-value-000{i}")}),
        )
        .await;
    }
    let response = get(
        &app,
        &format!("{PREFIX}/bots/bot-v/fields/api_key"),
        &manager,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["etag"], "\"4\"");
    let masked: Value = response.json().await.unwrap();
    assert_eq!(masked["value"], "••••0004");
    assert_eq!(masked["masked"], true);
    assert_eq!(masked["version"], 4);

    let old: Value = post(
        &app,
        &format!("{PREFIX}/bots/bot-v/fields/api_key/reveal?version=2"),
        &manager,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(old["value"], "api-key-value-0002");
    assert_eq!(old["masked"], false);

    // Only the newest three versions are kept.
    let metadata: Value = get_json(&app, &format!("{PREFIX}/bots/bot-v"), &manager).await;
    let field = &metadata["fields"][0];
    assert_eq!(field["field"], "api_key");
    assert_eq!(field["current_version"], 4);
    let versions: Vec<i64> = field["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, vec![2, 3, 4]);
    assert!(
        !metadata.to_string().contains("api-key-value"),
        "metadata carries a value"
    );
    let (status, _) = error_of(
        post(
            &app,
            &format!("{PREFIX}/bots/bot-v/fields/api_key/reveal?version=1"),
            &manager,
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn put_field(
    app: &crate::helpers::TestApp,
    token: &str,
    path: &str,
    body: Value,
    header: Option<(&str, &str)>,
) -> reqwest::Response {
    let mut request = app.client.put(app.url(path)).bearer_auth(token).json(&body);
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn writes_check_and_set_on_the_version() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let (_, manager) = user(&app, &admin, "mgr", &["Manager"], None).await;
    let path = format!("{PREFIX}/bots/bot-c/fields/password");

    // Create-only, by body and by header.
    let created = put_field(
        &app,
        &manager,
        &path,
        json!({"value": "first-password", "cas": 0}),
        None,
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(created.headers()["etag"], "\"1\"");
    let (status, code) = error_of(
        put_field(
            &app,
            &manager,
            &path,
            json!({"value": "again", "cas": 0}),
            None,
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (StatusCode::CONFLICT, "CONFLICT"));
    let (status, _) = error_of(
        put_field(
            &app,
            &manager,
            &path,
            json!({"value": "again"}),
            Some(("if-none-match", "*")),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // If-Match with the current ETag wins; with a stale one it loses and says the current one.
    let updated = put_field(
        &app,
        &manager,
        &path,
        json!({"value": "second-password"}),
        Some(("if-match", "\"1\"")),
    )
    .await;
    assert_eq!(updated.status(), StatusCode::OK);
    assert_eq!(updated.headers()["etag"], "\"2\"");
    let stale = put_field(
        &app,
        &manager,
        &path,
        json!({"value": "lost-update"}),
        Some(("if-match", "\"1\"")),
    )
    .await;
    assert_eq!(stale.status(), StatusCode::CONFLICT);
    let body: Value = stale.json().await.unwrap();
    assert_eq!(body["current_version"], 2);
    let (status, _) = error_of(
        put_field(
            &app,
            &manager,
            &path,
            json!({"value": "lost", "cas": 7}),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, code) = error_of(
        put_field(
            &app,
            &manager,
            &path,
            json!({"value": "x", "cas": 2}),
            Some(("if-match", "\"1\"")),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "INVALID_DATA")
    );
    assert_eq!(
        revealed_value(&app, &manager, "bot-c", "password").await,
        "second-password"
    );

    // Two writers with the same expectation: exactly one wins.
    let (a, b) = tokio::join!(
        put_field(
            &app,
            &manager,
            &path,
            json!({"value": "writer-a", "cas": 2}),
            None
        ),
        put_field(
            &app,
            &manager,
            &path,
            json!({"value": "writer-b", "cas": 2}),
            None
        ),
    );
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT]);
}

#[tokio::test]
async fn a_store_with_expected_versions_writes_all_fields_or_none() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let (_, manager) = user(&app, &admin, "mgr", &["Manager"], None).await;
    store_ok(
        &app,
        &manager,
        "bot-pair",
        json!({"access": "a1", "refresh": "r1"}),
    )
    .await;
    let store_with = |data: Value, expect: Value| {
        app.client
            .post(app.url(&format!("{PREFIX}/store")))
            .bearer_auth(&manager)
            .json(&json!({"bot_id": "bot-pair", "data": data, "expect": expect}))
            .send()
    };
    // A rotated pair saved only if the refresh token is still the one that was read.
    let saved = store_with(
        json!({"access": "a2", "refresh": "r2"}),
        json!({"refresh": 1}),
    )
    .await
    .unwrap();
    assert_eq!(saved.status(), StatusCode::CREATED);
    let stale = store_with(
        json!({"access": "a3", "refresh": "r3"}),
        json!({"refresh": 1}),
    )
    .await
    .unwrap();
    assert_eq!(error_of(stale).await.0, StatusCode::CONFLICT);
    assert_eq!(
        revealed_value(&app, &manager, "bot-pair", "access").await,
        "a2"
    );
    assert_eq!(
        revealed_value(&app, &manager, "bot-pair", "refresh").await,
        "r2"
    );
    for expect in [
        json!({"refresh": "one"}),
        json!({"other": 1}),
        json!({"refresh": -1}),
    ] {
        let bad = store_with(json!({"refresh": "r4"}), expect.clone())
            .await
            .unwrap();
        assert_eq!(error_of(bad).await.0, StatusCode::BAD_REQUEST, "{expect}");
    }
    assert_eq!(
        revealed_value(&app, &manager, "bot-pair", "refresh").await,
        "r2"
    );
}

#[tokio::test]
async fn delete_undelete_and_destroy_follow_their_permissions() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let (_, manager) = user(&app, &admin, "mgr", &["Manager"], Some("growth")).await;
    let (_, editor) = user(&app, &admin, "editor", &["Editor"], Some("growth")).await;
    store_ok(
        &app,
        &manager,
        "bot-d",
        json!({"oauth_refresh_token": "refresh-token-abcdef"}),
    )
    .await;
    let field = format!("{PREFIX}/bots/bot-d/fields/oauth_refresh_token");

    // Editors may read (masked) but not delete.
    assert_eq!(get(&app, &field, &editor).await.status(), StatusCode::OK);
    let (status, code) = error_of(delete(&app, &field, &editor).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "FORBIDDEN")
    );

    let deleted: Value = delete(&app, &field, &manager).await.json().await.unwrap();
    assert_eq!(
        deleted,
        json!({"bot_id": "bot-d", "field": "oauth_refresh_token", "status": "deleted", "versions": [1]})
    );
    assert_eq!(
        reveal(&app, &manager, "bot-d", "oauth_refresh_token")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let all: Value = retrieve(&app, &manager, "bot-d")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["data"], json!({}), "a deleted field is not retrieved");

    let undeleted = post(&app, &format!("{field}/undelete"), &manager).await;
    assert_eq!(undeleted.status(), StatusCode::OK);
    assert_eq!(
        revealed_value(&app, &manager, "bot-d", "oauth_refresh_token").await,
        "refresh-token-abcdef"
    );

    // Destroy is for admins only, even with the permission's neighbours.
    let (status, _) = error_of(post(&app, &format!("{field}/destroy"), &manager).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let destroyed: Value = post(&app, &format!("{field}/destroy?versions=1"), &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(destroyed["status"], "destroyed");
    assert_eq!(destroyed["versions"], json!([1]));
    assert_eq!(
        reveal(&app, &admin, "bot-d", "oauth_refresh_token")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let undelete_destroyed = post(&app, &format!("{field}/undelete?versions=1"), &admin).await;
    let body: Value = undelete_destroyed.json().await.unwrap();
    assert_eq!(
        body["versions"],
        json!([]),
        "a destroyed version never comes back"
    );

    // The ciphertext and wrapped key are gone from the store, not just hidden.
    let db = raw_store(&app).await;
    let row =
        sqlx::query("SELECT ciphertext, wrapped_dek FROM secret_versions WHERE bot_id = 'bot-d'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert!(
        row.try_get::<Option<String>, _>("ciphertext")
            .unwrap()
            .is_none()
    );
    assert!(
        row.try_get::<Option<String>, _>("wrapped_dek")
            .unwrap()
            .is_none()
    );

    let (status, _) =
        error_of(post(&app, &format!("{field}/destroy?versions=9"), &admin).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, code) = error_of(delete(&app, &format!("{field}?versions=x"), &admin).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "INVALID_DATA")
    );
}

#[tokio::test]
async fn users_reach_only_their_own_and_their_teams_bots() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let (alice_id, alice) = user(&app, &admin, "alice", &["Manager"], Some("red")).await;
    let (_, bob) = user(&app, &admin, "bob", &["Manager"], Some("blue")).await;
    let (_, carol) = user(&app, &admin, "carol", &["Viewer"], Some("red")).await;
    store_ok(
        &app,
        &alice,
        "alice-bot",
        json!({"password": "alice-secret-password"}),
    )
    .await;

    // Bob cannot list, read, reveal, write or delete Alice's bot: every answer is the 404 of a
    // bot that does not exist.
    let listing: Value = get_json(&app, &format!("{PREFIX}/bots"), &bob).await;
    assert_eq!(listing["items"], json!([]));
    let missing = error_of(retrieve(&app, &bob, "no-such-bot").await).await;
    let attempts = vec![
        retrieve(&app, &bob, "alice-bot").await,
        get(&app, &format!("{PREFIX}/bots/alice-bot"), &bob).await,
        get(
            &app,
            &format!("{PREFIX}/bots/alice-bot/fields/password"),
            &bob,
        )
        .await,
        reveal(&app, &bob, "alice-bot", "password").await,
        store(&app, &bob, "alice-bot", json!({"password": "hijacked"})).await,
        put_field(
            &app,
            &bob,
            &format!("{PREFIX}/bots/alice-bot/fields/password"),
            json!({"value": "hijacked"}),
            None,
        )
        .await,
        delete(
            &app,
            &format!("{PREFIX}/bots/alice-bot/fields/password"),
            &bob,
        )
        .await,
    ];
    for response in attempts {
        assert_eq!(error_of(response).await, missing);
    }
    // Walking ids finds nothing either.
    for guess in ["alice-bot-2", "bot-1", "admin", "0"] {
        assert_eq!(error_of(retrieve(&app, &bob, guess).await).await, missing);
    }
    assert_eq!(
        revealed_value(&app, &alice, "alice-bot", "password").await,
        "alice-secret-password"
    );

    // Carol shares Alice's team: she sees the bot masked, but a Viewer cannot reveal.
    let listing: Value = get_json(&app, &format!("{PREFIX}/bots"), &carol).await;
    assert_eq!(listing["items"][0]["bot_id"], "alice-bot");
    assert_eq!(listing["items"][0]["owner_id"], alice_id.as_str());
    let masked: Value = get_json(
        &app,
        &format!("{PREFIX}/bots/alice-bot/fields/password"),
        &carol,
    )
    .await;
    assert_eq!(masked["value"], "••••word");
    for response in [
        reveal(&app, &carol, "alice-bot", "password").await,
        retrieve(&app, &carol, "alice-bot").await,
    ] {
        let (status, code) = error_of(response).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::FORBIDDEN, "FORBIDDEN")
        );
    }
    // Admins reach every bot.
    assert_eq!(
        revealed_value(&app, &admin, "alice-bot", "password").await,
        "alice-secret-password"
    );

    // The refusals are in the audit trail, without values.
    let audit: Value = get_json(
        &app,
        &format!("{PREFIX}/audit?bot_id=alice-bot&limit=100"),
        &admin,
    )
    .await;
    let denied = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["result"] == "denied")
        .count();
    assert!(denied >= 9, "{audit}");
    assert!(!audit.to_string().contains("alice-secret-password"));
    assert!(!audit.to_string().contains("hijacked"));
    let (status, _) = error_of(get(&app, &format!("{PREFIX}/audit"), &alice).await).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "only admins read the audit trail"
    );
}

#[tokio::test]
async fn a_user_cannot_register_a_bot_for_someone_else_but_an_admin_can() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let (viewer_id, viewer) = user(&app, &admin, "vic", &["Viewer"], None).await;
    let (_, manager) = user(&app, &admin, "mgr", &["Manager"], None).await;
    let response = send_json(
        &app,
        Method::POST,
        &format!("{PREFIX}/store"),
        &manager,
        json!({"bot_id": "b", "data": {"email": "e@example.com"}, "owner_id": viewer_id}),
    )
    .await;
    assert_eq!(error_of(response).await.0, StatusCode::FORBIDDEN);
    let response = send_json(
        &app,
        Method::POST,
        &format!("{PREFIX}/store"),
        &admin,
        json!({"bot_id": "vic-bot", "data": {"email": "vic-bot@example.com"}, "owner_id": viewer_id}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let listing: Value = get_json(&app, &format!("{PREFIX}/bots"), &viewer).await;
    assert_eq!(listing["items"][0]["bot_id"], "vic-bot");
    let (status, _) =
        error_of(store(&app, &viewer, "vic-bot", json!({"email": "x@example.com"})).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a Viewer cannot write");
}

async fn service_token(app: &crate::helpers::TestApp, admin: &str, scopes: &[&str]) -> String {
    let response = send_json(
        app,
        Method::POST,
        "/api/v1/auth/clients",
        admin,
        json!({"client_id": "botdata-test-client", "audiences": ["secure-bot-data"], "scopes": scopes}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let secret: Value = response.json().await.unwrap();
    let token: Value = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(platform::http::form::form_body(&[
            ("grant_type", "client_credentials"),
            ("client_id", "botdata-test-client"),
            ("client_secret", secret["client_secret"].as_str().unwrap()),
            ("audience", "secure-bot-data"),
        ]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    token["access_token"]
        .as_str()
        .expect("a service token")
        .to_string()
}

#[tokio::test]
async fn the_bot_manager_reads_with_a_narrow_service_token() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let (owner_id, owner) = user(&app, &admin, "owner", &["Manager"], None).await;
    store_ok(
        &app,
        &owner,
        "managed",
        json!({"oauth_refresh_token": "rt-1234567890"}),
    )
    .await;
    let service = service_token(&app, &admin, &["botdata:reveal"]).await;
    let body: Value = retrieve(&app, &service, "managed")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["data"]["oauth_refresh_token"], "rt-1234567890");
    // Its scope does not include writing.
    let (status, _) =
        error_of(store(&app, &service, "managed", json!({"email": "x@example.com"})).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let audit: Value = get_json(&app, &format!("{PREFIX}/audit?bot_id=managed"), &admin).await;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"] == "client:botdata-test-client" && e["action"] == "reveal"),
        "{audit}"
    );
    let _ = owner_id;
}

#[tokio::test]
async fn a_service_client_registers_bots_for_their_owner() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let (owner_id, owner) = user(&app, &admin, "owner", &["Manager"], None).await;
    let service = service_token(&app, &admin, &["botdata:write"]).await;
    let (status, code) =
        error_of(store(&app, &service, "new-bot", json!({"email": "n@example.com"})).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "INVALID_DATA"),
        "owner_id is required"
    );
    let response = send_json(
        &app,
        Method::POST,
        &format!("{PREFIX}/store"),
        &service,
        json!({"bot_id": "new-bot", "data": {"email": "n@example.com"}, "owner_id": owner_id}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        revealed_value(&app, &owner, "new-bot", "email").await,
        "n@example.com"
    );
}

#[tokio::test]
async fn reveals_and_writes_are_audited_and_relayed_as_user_activity() {
    let app = spawn_app().await;
    let queue = app.queue.clone().unwrap();
    let admin = admin_token(&app).await;
    let (manager_id, manager) = user(&app, &admin, "mgr", &["Manager"], None).await;
    store_ok(
        &app,
        &manager,
        "bot-a",
        json!({"password": "audited-canary-value"}),
    )
    .await;
    revealed_value(&app, &manager, "bot-a", "password").await;

    let audit: Value = get_json(&app, &format!("{PREFIX}/audit?bot_id=bot-a"), &admin).await;
    let items = audit["items"].as_array().unwrap();
    let reveal = items
        .iter()
        .find(|e| e["action"] == "reveal")
        .expect("a reveal entry");
    let write = items
        .iter()
        .find(|e| e["action"] == "write")
        .expect("a write entry");
    assert_eq!(reveal["actor"], manager_id.as_str());
    assert_eq!(reveal["field"], "password");
    assert_eq!(reveal["version"], 1);
    assert_eq!(reveal["result"], "ok");
    assert!(reveal["request_id"].is_string());
    assert!(
        reveal["value_hmac"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:v1:")
    );
    assert_eq!(
        reveal["value_hmac"], write["value_hmac"],
        "the same value has the same HMAC"
    );
    assert!(!audit.to_string().contains("audited-canary-value"));

    let mut consumer = queue
        .consumer(platform::queue::ConsumerSpec::new(
            "botdata-activity-test",
            "logs.user_activity.secure_bot_data",
        ))
        .await
        .unwrap();
    let mut actions = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !(actions.contains(&"botdata.write".to_string())
        && actions.contains(&"botdata.reveal".to_string()))
    {
        let delivery = tokio::time::timeout_at(deadline, consumer.next())
            .await
            .expect("the audit events arrive")
            .unwrap();
        for event in cloudevents_of(&delivery.message) {
            assert_eq!(event["specversion"], "1.0");
            assert_eq!(event["source"], "vivesphere/secure-bot-data");
            assert_eq!(event["subject"], "bot-a");
            assert!(!event.to_string().contains("audited-canary-value"));
            actions.push(event["data"]["action"].as_str().unwrap().to_string());
        }
        delivery.ack().await.unwrap();
    }
}

#[tokio::test]
async fn the_same_plaintext_is_sealed_differently_and_never_stored_in_clear() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let canary = "CANARY-7f3a9c-plaintext-must-not-leak";
    store_ok(&app, &admin, "bot-x", json!({"password": canary})).await;
    store_ok(&app, &admin, "bot-y", json!({"password": canary})).await;
    store_ok(&app, &admin, "bot-x", json!({"password": canary})).await;
    assert_eq!(
        revealed_value(&app, &admin, "bot-y", "password").await,
        canary
    );

    let db = raw_store(&app).await;
    let rows =
        sqlx::query("SELECT ciphertext, wrapped_dek FROM secret_versions ORDER BY bot_id, version")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(rows.len(), 3);
    let ciphertexts: std::collections::HashSet<String> = rows
        .iter()
        .map(|r| r.get::<String, _>("ciphertext"))
        .collect();
    let deks: std::collections::HashSet<String> = rows
        .iter()
        .map(|r| r.get::<String, _>("wrapped_dek"))
        .collect();
    assert_eq!(
        ciphertexts.len(),
        3,
        "identical plaintexts gave identical ciphertexts"
    );
    assert_eq!(deks.len(), 3, "data keys were reused");
    db.close().await;

    // Not in any file the app wrote (SQLite databases, WAL, queue, KEK files).
    if app.postgres_url.is_none() {
        let mut checked = 0;
        for entry in walk(app.data_dir.path()) {
            let bytes = std::fs::read(&entry).unwrap();
            assert!(
                !contains(&bytes, canary.as_bytes()),
                "{} holds the plaintext",
                entry.display()
            );
            checked += 1;
        }
        assert!(checked >= 3, "no files checked");
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_record_does_not_decrypt() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    store_ok(
        &app,
        &admin,
        "bot-s",
        json!({"email": "swap-a@example.com", "password": "swap-b-password"}),
    )
    .await;
    let db = raw_store(&app).await;
    // Copy the email's sealed value (ciphertext and wrapped key) over the password's.
    let email = sqlx::query("SELECT ciphertext, wrapped_dek FROM secret_versions WHERE bot_id = 'bot-s' AND field = 'email'")
        .fetch_one(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE secret_versions SET ciphertext = $1, wrapped_dek = $2 WHERE bot_id = 'bot-s' AND field = 'password'")
        .bind(email.get::<String, _>("ciphertext"))
        .bind(email.get::<String, _>("wrapped_dek"))
        .execute(&db)
        .await
        .unwrap();
    let response = reveal(&app, &admin, "bot-s", "password").await;
    assert!(response.status().is_server_error());
    let body = response.text().await.unwrap();
    assert!(
        !body.contains("swap-a@example.com"),
        "the moved ciphertext decrypted"
    );
    // The failure reaches the Logging service as a debug event of level error.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let found: Value = get_json(
            &app,
            "/api/v1/logs/events?category=debug&level=error&service=secure-bot-data",
            &admin,
        )
        .await;
        if let Some(event) = found["items"].as_array().unwrap().first() {
            assert!(
                event["message"]
                    .as_str()
                    .unwrap()
                    .contains("integrity failure"),
                "{event}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no debug event: {found}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        revealed_value(&app, &admin, "bot-s", "email").await,
        "swap-a@example.com"
    );
}

#[tokio::test]
async fn without_a_kek_the_service_is_sealed() {
    let app = spawn(
        None,
        &[(
            "VIVESPHERE_SECURE_BOT_DATA__GENERATE_DEVELOPMENT_KEK",
            "false",
        )],
        None,
    )
    .await;
    let admin = admin_token(&app).await;
    let (status, code) =
        error_of(store(&app, &admin, "b", json!({"email": "e@example.com"})).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "SEALED")
    );
    let ready = app.get("/api/v1/botdata/health").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(ready.text().await.unwrap().contains("sealed"));
    let status: Value = get_json(&app, &format!("{PREFIX}/sys/status"), &admin).await;
    assert_eq!(status["sealed"], true);
    assert_eq!(status["reason"], "no_keys");

    // A key mounted later is picked up by an unseal.
    let (ok, out, err) = botdata_cli(&app, &["rotate-kek"]).await;
    assert!(ok, "{out}{err}");
    let unsealed = post(&app, &format!("{PREFIX}/sys/unseal"), &admin).await;
    assert_eq!(unsealed.status(), StatusCode::OK);
    store_ok(&app, &admin, "b", json!({"email": "e@example.com"})).await;
    assert_eq!(
        app.get("/api/v1/botdata/health").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_admin_seals_and_unseals_at_run_time() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let (_, manager) = user(&app, &admin, "mgr", &["Manager"], None).await;
    store_ok(&app, &manager, "bot-z", json!({"email": "z@example.com"})).await;

    let (status, _) = error_of(post(&app, &format!("{PREFIX}/sys/seal"), &manager).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only admins seal");
    let sealed: Value = post(&app, &format!("{PREFIX}/sys/seal"), &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sealed["sealed"], true);
    assert_eq!(sealed["reason"], "sealed_by_admin");
    assert_eq!(sealed["kek_versions"], json!([]));
    for response in [
        retrieve(&app, &manager, "bot-z").await,
        reveal(&app, &manager, "bot-z", "email").await,
        store(&app, &manager, "bot-z", json!({"email": "y@example.com"})).await,
        get(&app, &format!("{PREFIX}/bots/bot-z/fields/email"), &manager).await,
    ] {
        let (status, code) = error_of(response).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "SEALED")
        );
    }
    assert_eq!(
        app.get("/api/v1/botdata/health").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("vivesphere_botdata_sealed 1"), "{metrics}");
    // Metadata holds no secrets and stays readable.
    assert_eq!(
        get(&app, &format!("{PREFIX}/bots/bot-z"), &manager)
            .await
            .status(),
        StatusCode::OK
    );

    let unsealed = post(&app, &format!("{PREFIX}/sys/unseal"), &admin).await;
    assert_eq!(unsealed.status(), StatusCode::OK);
    assert_eq!(
        revealed_value(&app, &manager, "bot-z", "email").await,
        "z@example.com"
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("vivesphere_botdata_sealed 0"), "{metrics}");
    assert!(
        metrics
            .contains(r#"vivesphere_botdata_operations_total{operation="reveal",result="ok"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics
            .contains(r#"vivesphere_botdata_operations_total{operation="seal",result="denied"} 1"#),
        "{metrics}"
    );
    let actions = audit_actions(&app, &admin).await;
    assert!(
        actions.iter().any(|a| a == "seal") && actions.iter().any(|a| a == "unseal"),
        "{actions:?}"
    );
}

#[tokio::test]
async fn limits_on_fields_refuse_the_whole_write() {
    let app = spawn(
        None,
        &[("VIVESPHERE_SECURE_BOT_DATA__MAX_FIELDS_PER_BOT", "2")],
        None,
    )
    .await;
    let admin = admin_token(&app).await;
    let response = store(
        &app,
        &admin,
        "bot-l",
        json!({"email": "l@example.com", "handle": "@bot_l", "password": "third-field-pw"}),
    )
    .await;
    assert_eq!(
        error_of(response).await,
        (StatusCode::BAD_REQUEST, "INVALID_DATA".to_string())
    );
    // Nothing of the refused write remains, not even the bot.
    let listing: Value = get_json(&app, &format!("{PREFIX}/bots"), &admin).await;
    assert_eq!(listing["items"], json!([]));
    store_ok(
        &app,
        &admin,
        "bot-l",
        json!({"email": "l@example.com", "handle": "@bot_l"}),
    )
    .await;
}

#[tokio::test]
async fn the_openapi_document_covers_every_route() {
    let app = spawn_app().await;
    let doc: Value = app
        .get(&format!("{PREFIX}/openapi.json"))
        .await
        .json()
        .await
        .unwrap();
    for (path, method) in [
        ("/store", "post"),
        ("/retrieve", "get"),
        ("/bots", "get"),
        ("/bots/{bot_id}", "get"),
        ("/bots/{bot_id}/fields/{field}", "get"),
        ("/bots/{bot_id}/fields/{field}", "put"),
        ("/bots/{bot_id}/fields/{field}", "delete"),
        ("/bots/{bot_id}/fields/{field}/reveal", "post"),
        ("/bots/{bot_id}/fields/{field}/undelete", "post"),
        ("/bots/{bot_id}/fields/{field}/destroy", "post"),
        ("/audit", "get"),
        ("/sys/status", "get"),
        ("/sys/seal", "post"),
        ("/sys/unseal", "post"),
    ] {
        let operation = &doc["paths"][format!("{PREFIX}{path}")][method];
        assert!(operation.is_object(), "{method} {path} is not documented");
        assert!(
            operation["security"].is_array(),
            "{method} {path} does not say it needs a token"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

/// The audit trail keeps an entry `audit_retention_days` once it has been relayed to the
/// Logging service; younger entries, and any not yet relayed, stay.
#[tokio::test]
async fn audit_entries_past_their_retention_are_removed_once_relayed() {
    let app = spawn(
        None,
        &[
            ("VIVESPHERE_SECURE_BOT_DATA__AUDIT_RETENTION_DAYS", "30"),
            ("VIVESPHERE_SECURE_BOT_DATA__AUDIT_TRIM_INTERVAL", "1"),
        ],
        None,
    )
    .await;
    let admin = admin_token(&app).await;
    store_ok(&app, &admin, "old-bot", json!({"password": "trim-canary"})).await;
    revealed_value(&app, &admin, "old-bot", "password").await;
    let db = crate::helpers::service_db(&app, "secure_bot_data").await;
    let count = async |sql: &str| -> i64 {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(&db)
            .await
            .unwrap()
            .try_get("n")
            .unwrap()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while count("SELECT COUNT(*) AS n FROM audit WHERE published = 0").await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "never relayed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let old = count("SELECT COUNT(*) AS n FROM audit").await;
    assert!(old >= 2, "the write and the reveal");

    // 31 days later: a new reveal, and the next pass removes only what is past 30 days.
    app.clock.advance(Duration::from_secs(31 * 86_400));
    let admin = admin_token(&app).await;
    revealed_value(&app, &admin, "old-bot", "password").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let actions = audit_actions(&app, &admin).await;
        if actions == ["reveal"] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the old entries stayed: {actions:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
