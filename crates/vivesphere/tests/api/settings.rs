//! The Configuration service: the contract, releases with check-and-set and rollback,
//! validation against what services declare, the audit trail, the long poll, and running
//! services following central changes live — in one process, over NATS, and from their
//! disk copy while the service is down.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::auth_helpers::{admin_token, get, get_json, send_json, token_of};
use crate::helpers::{TestApp, spawn, spawn_app, spawn_with_clock};
use platform::testing::{TestPostgres, nats_settings};

const P: &str = "/api/v1/config";

async fn update(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    send_json(app, Method::POST, &format!("{P}/update"), token, body).await
}

async fn update_ok(app: &TestApp, token: &str, service: &str, settings: Value) -> i64 {
    let response = update(
        app,
        token,
        json!({"service": service, "settings": settings}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json::<Value>().await.unwrap()["revision"]
        .as_i64()
        .unwrap()
}

async fn error_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// Polls `check` until it holds or `limit` passes; returns how long it took.
async fn eventually<F, Fut>(limit: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("not true within {limit:?}");
}

/// A 15-character password that is not a common one.
const MID_PASSWORD: &str = "violet-raven-73";

async fn create_user_with(app: &TestApp, admin: &str, username: &str) -> reqwest::Response {
    send_json(
        app,
        Method::POST,
        "/api/v1/auth/users",
        admin,
        json!({"username": username, "password": MID_PASSWORD, "roles": ["Viewer"]}),
    )
    .await
}

#[tokio::test]
async fn the_contract_endpoints_answer_as_specified() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;

    let response = get(
        &app,
        &format!("{P}/settings?service_name=bot-manager"),
        &admin,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["etag"], "\"0\"");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["service"], "bot-manager");
    assert_eq!(body["settings"], json!({}));

    let response = get(&app, &format!("{P}/settings?service_name=nope"), &admin).await;
    let (status, body) = error_of(response).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error_code"], "NOT_FOUND");

    let anonymous = app
        .client
        .get(app.url(&format!("{P}/settings?service_name=bot-manager")))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    let response = update(
        &app,
        &admin,
        json!({"service": "bot-manager", "settings": {"bot_manager.grace_seconds": 120}}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "updated");
    assert_eq!(
        body["updated_settings"],
        json!({"bot_manager.grace_seconds": 120})
    );
    let revision = body["revision"].as_i64().unwrap();
    assert!(revision >= 1);

    let body = get_json(
        &app,
        &format!("{P}/settings?service_name=bot-manager"),
        &admin,
    )
    .await;
    assert_eq!(body["settings"]["bot_manager.grace_seconds"], 120);
    assert_eq!(body["revision"], revision);

    for bad in [
        json!({"settings": {"bot_manager.grace_seconds": 1}}),
        json!({"service": "bot-manager"}),
        json!({"service": "bot-manager", "settings": "grace=1"}),
        json!({"service": "bot-manager", "settings": {}}),
        json!({"service": "no-such-service", "settings": {"x.y": 1}}),
        json!({"service": "bot-manager", "settings": {"Not A Key": 1}}),
    ] {
        let (status, body) = error_of(update(&app, &admin, bad.clone()).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(body["error_code"], "INVALID_DATA", "{bad}");
    }

    let viewer = token_of(&app, &admin, "vera", &["Viewer"]).await;
    assert_eq!(
        get(&app, &format!("{P}/settings?service_name=logging"), &viewer)
            .await
            .status(),
        StatusCode::OK,
        "readers read"
    );
    let (status, body) = error_of(
        update(
            &app,
            &viewer,
            json!({"service": "logging", "settings": {"logging.retention.debug": 3}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error_code"], "FORBIDDEN");
    let manager = token_of(&app, &admin, "mona", &["Manager"]).await;
    let response = update(
        &app,
        &manager,
        json!({"service": "global", "settings": {"telemetry.log_level": "debug"}}),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "only admins write"
    );
    let body = get_json(&app, &format!("{P}/settings?service_name=global"), &admin).await;
    assert!(
        body["settings"].get("telemetry.log_level").is_none(),
        "nothing written"
    );
}

#[tokio::test]
async fn a_stale_if_match_is_a_conflict_and_changes_nothing() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let scope = get(&app, &format!("{P}/scopes/logging"), &admin).await;
    let etag = scope.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(etag, "\"0\"");
    let with_if_match = |value: &str, days: u32| {
        app.client
            .post(app.url(&format!("{P}/update")))
            .bearer_auth(&admin)
            .header("if-match", value)
            .json(&json!({"service": "logging", "settings": {"logging.retention.debug": days}}))
            .send()
    };
    let first = with_if_match(&etag, 3).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let new_etag = first.headers()["etag"].to_str().unwrap().to_string();
    // A second writer who read the same revision loses.
    let (status, body) = error_of(with_if_match(&etag, 5).await.unwrap()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error_code"], "CONFLICT");
    let scope = get_json(&app, &format!("{P}/scopes/logging"), &admin).await;
    assert_eq!(scope["settings"]["logging.retention.debug"], 3);
    // With the current ETag it goes through.
    let third = with_if_match(&new_etag, 5).await.unwrap();
    assert_eq!(third.status(), StatusCode::OK);
    let (status, _) = error_of(with_if_match("\"x\"", 5).await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn concurrent_writers_without_if_match_all_land_in_order() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let categories = ["user_activity", "debug", "console", "terminal"];
    let writes = (0..8).map(|i| {
        let (app, admin) = (&app, &admin);
        let key = if i < 4 {
            format!("logging.retention.{}", categories[i])
        } else {
            format!("telemetry.log_level_{i}")
        };
        async move {
            let settings = if i < 4 {
                json!({key.clone(): 20 + i})
            } else {
                // Not a key any service has: refused, and it must not block the others.
                json!({key.clone(): "debug"})
            };
            let response = update(
                app,
                admin,
                json!({"service": "logging", "settings": settings}),
            )
            .await;
            (i, response.status())
        }
    });
    let results = futures::future::join_all(writes).await;
    for (i, status) in results {
        let expected = if i < 4 {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        assert_eq!(status, expected, "writer {i}");
    }
    let scope = get_json(&app, &format!("{P}/scopes/logging"), &admin).await;
    for (i, category) in categories.iter().enumerate() {
        assert_eq!(
            scope["settings"][format!("logging.retention.{category}")],
            20 + i
        );
    }
    let history = get_json(&app, &format!("{P}/releases?scope=logging"), &admin).await;
    let revisions: Vec<i64> = history["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["revision"].as_i64().unwrap())
        .collect();
    assert_eq!(revisions.len(), 4);
    assert!(revisions.windows(2).all(|w| w[0] > w[1]), "{revisions:?}");
}

#[tokio::test]
async fn releases_keep_history_diffs_and_roll_back_as_a_new_release() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let first = app
        .client
        .post(app.url(&format!("{P}/update")))
        .bearer_auth(&admin)
        .header("x-request-id", "req-config-1")
        .json(&json!({"service": "bot-manager", "reason": "quieter retries",
            "settings": {"bot_manager": {"execution": {"max_attempts": 3}}, "bot_manager.grace_seconds": 600}}))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let r1 = first.json::<Value>().await.unwrap()["revision"]
        .as_i64()
        .unwrap();
    let r2 = update_ok(
        &app,
        &admin,
        "bot-manager",
        json!({"bot_manager.grace_seconds": 900, "bot_manager.execution.max_attempts": null}),
    )
    .await;
    assert!(r2 > r1);

    let release = get_json(&app, &format!("{P}/releases/{r1}"), &admin).await;
    assert_eq!(release["author"], "admin");
    assert_eq!(release["reason"], "quieter retries");
    assert_eq!(release["request_id"], "req-config-1");
    assert_eq!(release["kind"], "update");
    // Times in API answers are RFC 3339, as everywhere else.
    let written = release["created_at"].as_str().expect("an RFC 3339 time");
    let written =
        time::OffsetDateTime::parse(written, &time::format_description::well_known::Rfc3339)
            .unwrap();
    let age = app.clock.now() - written;
    assert!(
        age >= time::Duration::ZERO && age < time::Duration::minutes(1),
        "written {age} ago"
    );
    assert_eq!(
        release["snapshot"],
        json!({"bot_manager.execution.max_attempts": 3, "bot_manager.grace_seconds": 600})
    );

    let diff = get_json(
        &app,
        &format!("{P}/releases/diff?from={r1}&to={r2}"),
        &admin,
    )
    .await;
    assert_eq!(
        diff["diff"]["changed"]["bot_manager.grace_seconds"],
        json!({"from": 600, "to": 900})
    );
    assert_eq!(
        diff["diff"]["removed"]["bot_manager.execution.max_attempts"],
        3
    );

    let response = send_json(
        &app,
        Method::POST,
        &format!("{P}/rollback"),
        &admin,
        json!({"revision": r1, "reason": "900 was too long"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let r3 = body["release"]["revision"].as_i64().unwrap();
    assert!(r3 > r2, "a rollback is a new release");
    assert_eq!(body["release"]["kind"], "rollback");
    assert_eq!(body["release"]["rollback_of"], r1);
    let current = get_json(
        &app,
        &format!("{P}/settings?service_name=bot-manager"),
        &admin,
    )
    .await;
    assert_eq!(current["settings"], release["snapshot"]);
    assert_eq!(current["revision"], r3);
    // The rolled-back release is still there, unchanged.
    let old = get_json(&app, &format!("{P}/releases/{r2}"), &admin).await;
    assert_eq!(old["snapshot"]["bot_manager.grace_seconds"], 900);

    let history = get_json(
        &app,
        &format!("{P}/releases?scope=bot-manager&limit=2"),
        &admin,
    )
    .await;
    let revisions: Vec<i64> = history["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["revision"].as_i64().unwrap())
        .collect();
    assert_eq!(revisions, vec![r3, r2]);
    let next = history["next"].as_i64().unwrap();
    let rest = get_json(
        &app,
        &format!("{P}/releases?scope=bot-manager&before={next}"),
        &admin,
    )
    .await;
    assert_eq!(rest["releases"][0]["revision"], r1);

    let (status, _) = error_of(
        send_json(
            &app,
            Method::POST,
            &format!("{P}/rollback"),
            &admin,
            json!({"revision": 9999}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A rollback names no other scope than its release's, and its body takes no unknown field.
    for (body, expected) in [
        (
            json!({"revision": r1, "service": "logging"}),
            StatusCode::CONFLICT,
        ),
        (
            json!({"revision": r1, "colour": "red"}),
            StatusCode::BAD_REQUEST,
        ),
        (json!({"revision": 0}), StatusCode::BAD_REQUEST),
        (
            json!({"revision": 0, "service": "nonsense"}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let response = send_json(
            &app,
            Method::POST,
            &format!("{P}/rollback"),
            &admin,
            body.clone(),
        )
        .await;
        assert_eq!(response.status(), expected, "{body}");
    }
    // Revision 0 is the defaults: the scope's own settings are gone, as a new release.
    let response = send_json(
        &app,
        Method::POST,
        &format!("{P}/rollback"),
        &admin,
        json!({"revision": 0, "service": "bot-manager", "reason": "back to the defaults"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let r4 = body["release"]["revision"].as_i64().unwrap();
    assert!(r4 > r3);
    assert_eq!(
        (
            body["release"]["rollback_of"].clone(),
            body["release"]["snapshot"].clone()
        ),
        (json!(0), json!({}))
    );
    let current = get_json(
        &app,
        &format!("{P}/settings?service_name=bot-manager"),
        &admin,
    )
    .await;
    assert_eq!(
        (current["settings"].clone(), current["revision"].clone()),
        (json!({}), json!(r4))
    );
}

#[tokio::test]
async fn invalid_settings_are_refused_with_the_key_named() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let cases = [
        (
            "bot-manager",
            json!({"bot_manager.grace_seconds": 0}),
            "bot_manager.grace_seconds",
        ),
        (
            "bot-manager",
            json!({"bot_manager.execution.max_attempts": "many"}),
            "bot_manager.execution.max_attempts",
        ),
        (
            "bot-manager",
            json!({"bot_manager.no_such_setting": 1}),
            "bot_manager.no_such_setting",
        ),
        (
            "global",
            json!({"telemetry.log_level": "info,[[["}),
            "telemetry.log_level",
        ),
        (
            "global",
            json!({"database.url": "postgres://u:p@db/x"}),
            "database.url",
        ),
        (
            "logging",
            json!({"bot_manager.grace_seconds": 60}),
            "bot_manager.grace_seconds",
        ),
        (
            "authentication",
            json!({"authentication.initial_admin_password": "plain-text-secret-1"}),
            "authentication.initial_admin_password",
        ),
        (
            "global",
            json!({"gateway.rate_limit.per_minute": -1}),
            "gateway.rate_limit.per_minute",
        ),
        (
            "logging",
            json!({"logging.retention.debug": "x".repeat(5000)}),
            "logging.retention.debug",
        ),
        // Secret by declaration (its type), not by its name.
        (
            "secure-bot-data",
            json!({"secure_bot_data.keks": "1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}),
            "secure_bot_data.keks",
        ),
        (
            "authentication",
            json!({"authentication.encryption_key_file": "/etc/hostname"}),
            "authentication.encryption_key_file",
        ),
        (
            "bot-manager",
            json!({"bot_manager.x_api.base_url": "https://user:pa55@api.x.com"}),
            "bot_manager.x_api.base_url",
        ),
    ];
    for (service, settings, key) in cases {
        let (status, body) = error_of(
            update(
                &app,
                &admin,
                json!({"service": service, "settings": settings}),
            )
            .await,
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{settings}: {body}"
        );
        assert_eq!(body["error_code"], "VALIDATION_FAILED");
        assert_eq!(body["key"], key, "{body}");
        assert!(body["message"].as_str().unwrap().contains(key));
    }
    // A near miss is named with the setting meant.
    let (_, body) = error_of(
        update(
            &app,
            &admin,
            json!({"service": "bot-manager", "settings": {"bot_manager.grace_secnds": 60}}),
        )
        .await,
    )
    .await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `bot_manager.grace_seconds`?"),
        "{body}"
    );
    // Nothing was written by any of them.
    let history = get_json(&app, &format!("{P}/releases"), &admin).await;
    assert_eq!(history["releases"], json!([]));

    // A secret may be referred to, and a setting without live support is marked.
    let response = update(
        &app,
        &admin,
        json!({"service": "authentication", "settings": {
            "authentication.initial_admin_password": "${secret:ADMIN_PASSWORD}",
            "authentication.access_token_ttl": 600,
            "authentication.password.min_length": 14}}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let restart: Vec<&str> = body["restart_required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        restart.contains(&"authentication.access_token_ttl"),
        "{body}"
    );
    assert!(
        !restart.contains(&"authentication.password.min_length"),
        "{body}"
    );
    let catalog = get_json(&app, &format!("{P}/catalog"), &admin).await;
    assert_eq!(
        catalog["secrets"],
        json!([
            "authentication.encryption_key",
            "authentication.initial_admin_password",
            "database.url",
            "logging.webhooks.encryption_key",
            "secure_bot_data.keks"
        ])
    );
    let live: Vec<&str> = catalog["settings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["live"] == true)
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    for key in [
        "telemetry.log_level",
        "gateway.rate_limit.per_minute",
        "authentication.password.min_length",
        "authentication.brute_force.lock_after",
        "bot_manager.grace_seconds",
        "bot_manager.execution.max_attempts",
        "logging.retention.debug",
    ] {
        assert!(live.contains(&key), "{key} is live");
    }
}

#[tokio::test]
async fn a_declared_secret_is_taken_only_as_a_reference_and_no_viewer_sees_one() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let kek = "1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let refused = update(
        &app,
        &admin,
        json!({"service": "secure-bot-data", "settings": {"secure_bot_data.keks": kek}}),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = refused.text().await.unwrap();
    assert!(body.contains("${secret:NAME}"), "{body}");
    assert!(
        !body.contains("AAECAwQF"),
        "the refusal does not echo the value: {body}"
    );
    update_ok(
        &app,
        &admin,
        "secure-bot-data",
        json!({"secure_bot_data.keks": "${secret:BOTDATA_KEKS}"}),
    )
    .await;
    let viewer = token_of(&app, &admin, "vera", &["Viewer"]).await;
    for path in [
        format!("{P}/settings?service_name=secure-bot-data"),
        format!("{P}/releases"),
        format!("{P}/scopes/secure-bot-data"),
    ] {
        let text = get(&app, &path, &viewer).await.text().await.unwrap();
        assert!(!text.contains("AAECAwQF"), "{path}: {text}");
        assert!(text.contains("${secret:BOTDATA_KEKS}"), "{path}: {text}");
    }
}

#[tokio::test]
async fn central_validation_reads_nothing_on_the_host() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let existing = app.data_dir.path().join("present.key");
    std::fs::write(&existing, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap();
    let mut answers = Vec::new();
    for path in [existing.display().to_string(), "/no/such/file".to_string()] {
        let (status, body) = error_of(
            update(
                &app,
                &admin,
                json!({"service": "authentication",
                       "settings": {"authentication.encryption_key_file": path}}),
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        answers.push(body["message"].as_str().unwrap().to_string());
    }
    assert_eq!(
        answers[0], answers[1],
        "a file that exists and one that does not get the same answer"
    );
    assert!(!answers[0].contains("read"), "{}", answers[0]);
    // Placeholders are not expanded from the host's environment either.
    let (status, body) = error_of(
        update(
            &app,
            &admin,
            json!({"service": "bot-manager",
                   "settings": {"bot_manager.x_api.base_url": "${HOME}"}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

/// Writes a release as an older version did, with a secret in clear (today's updates refuse
/// that), so there is history to redact.
async fn legacy_release_with_a_plaintext_secret(app: &TestApp, kek: &str) {
    let db = crate::helpers::service_db(app, "configuration").await;
    let snapshot = json!({"secure_bot_data.keks": kek, "secure_bot_data.max_versions": 5});
    let diff = json!({"added": snapshot, "changed": {}, "removed": {}});
    sqlx::query(
        "INSERT INTO releases (revision, scope, profile, kind, snapshot, diff, author, reason, request_id, rollback_of, created_at)
         VALUES (1, 'secure-bot-data', 'development', 'update', $1, $2, 'admin', 'legacy', NULL, NULL, 0)",
    )
    .bind(snapshot.to_string())
    .bind(diff.to_string())
    .execute(&db)
    .await
    .unwrap();
    db.close().await;
}

#[tokio::test]
async fn a_secret_written_in_clear_is_redacted_from_history_by_an_admin() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let kek = "1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    legacy_release_with_a_plaintext_secret(&app, kek).await;
    let redact = |token: String| {
        let app = &app;
        async move {
            send_json(
                app,
                Method::POST,
                &format!("{P}/releases/redact"),
                &token,
                json!({"service": "secure-bot-data", "key": "secure_bot_data.keks",
                       "reason": "a KEK was pasted in clear"}),
            )
            .await
        }
    };
    let manager = token_of(&app, &admin, "mona", &["Manager"]).await;
    assert_eq!(redact(manager).await.status(), StatusCode::FORBIDDEN);
    // While the newest release still holds it in clear, removing it comes first.
    let (status, body) = error_of(redact(admin.clone()).await).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("/update"),
        "{body}"
    );
    update_ok(
        &app,
        &admin,
        "secure-bot-data",
        json!({"secure_bot_data.keks": null}),
    )
    .await;
    let history = get(&app, &format!("{P}/releases"), &admin)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        history.contains("AAECAwQF"),
        "the removal's diff still shows it: {history}"
    );

    let response = redact(admin.clone()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "redacted");
    assert_eq!(body["revisions"], json!([1, 2]));
    let history = get_json(&app, &format!("{P}/releases"), &admin).await;
    let text = history.to_string();
    assert!(!text.contains("AAECAwQF"), "{text}");
    let releases = history["releases"].as_array().unwrap();
    assert_eq!(releases.len(), 2, "the releases stay");
    let first = releases.iter().find(|r| r["revision"] == 1).unwrap();
    assert_eq!(first["snapshot"]["secure_bot_data.keks"], "[redacted]");
    assert_eq!(first["snapshot"]["secure_bot_data.max_versions"], 5);
    // A release with a redacted value cannot come back by rollback.
    let (status, body) = error_of(
        send_json(
            &app,
            Method::POST,
            &format!("{P}/rollback"),
            &admin,
            json!({"revision": 1}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // And the redaction is on the audit trail, without the value.
    eventually(Duration::from_secs(10), || async {
        let body = get_json(
            &app,
            "/api/v1/logs/events?action=settings.redacted&service=configuration",
            &admin,
        )
        .await;
        let text = body.to_string();
        !text.contains("AAECAwQF")
            && text.contains("secure_bot_data.keks")
            && text.contains("a KEK was pasted in clear")
    })
    .await;
}

#[tokio::test]
async fn writes_are_audited_as_user_activity() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let revision = update_ok(
        &app,
        &admin,
        "logging",
        json!({"logging.retention.console": 3}),
    )
    .await;
    let path = "/api/v1/logs/events?action=settings.updated&service=configuration";
    eventually(Duration::from_secs(10), || async {
        let body = get_json(&app, path, &admin).await;
        body["items"].as_array().is_some_and(|items| {
            items.iter().any(|item| {
                let text = item.to_string();
                text.contains("logging.retention.console")
                    && text.contains(&format!("\"revision\":{revision}"))
                    && text.contains("\"admin\"")
            })
        })
    })
    .await;
}

#[tokio::test]
async fn the_long_poll_answers_on_a_change_and_304_on_timeout() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let idle = get(
        &app,
        &format!("{P}/watch?service_name=logging&since=0&wait=300ms"),
        &admin,
    )
    .await;
    assert_eq!(idle.status(), StatusCode::NOT_MODIFIED);

    let watcher = {
        let (client, url, admin) = (
            app.client.clone(),
            app.url(&format!("{P}/watch?service_name=logging&since=0&wait=20s")),
            admin.clone(),
        );
        tokio::spawn(async move {
            let started = Instant::now();
            let response = client.get(url).bearer_auth(admin).send().await.unwrap();
            (
                response.status(),
                response.json::<Value>().await.ok(),
                started,
            )
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A global change reaches the logging service too.
    let revision = update_ok(
        &app,
        &admin,
        "global",
        json!({"telemetry.log_level": "info"}),
    )
    .await;
    let (status, body, started) = watcher.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.unwrap()["revision"], revision);
    assert!(started.elapsed() < Duration::from_secs(10));
    let (status, _) = error_of(
        get(
            &app,
            &format!("{P}/watch?service_name=logging&wait=soon"),
            &admin,
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_running_process_applies_a_rate_limit_and_a_password_policy_live() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    // Development runs without an edge limit: many requests pass.
    for _ in 0..30 {
        assert_eq!(
            app.get("/api/v1/auth/.well-known/jwks.json").await.status(),
            StatusCode::OK
        );
    }
    assert_eq!(
        create_user_with(&app, &admin, "before").await.status(),
        StatusCode::CREATED
    );

    let revision = update_ok(
        &app,
        &admin,
        "global",
        json!({"authentication.password.min_length": 20}),
    )
    .await;
    eventually(Duration::from_secs(5), || async {
        let response = create_user_with(&app, &admin, &format!("u{}", rand_suffix())).await;
        response.status() == StatusCode::UNPROCESSABLE_ENTITY
            || response.status() == StatusCode::BAD_REQUEST
    })
    .await;
    let health = get_json(&app, "/api/v1/auth/health", &admin).await;
    assert_eq!(health["config"]["revision"], revision, "{health}");

    update_ok(
        &app,
        &admin,
        "global",
        json!({"gateway.rate_limit.per_minute": 5}),
    )
    .await;
    let started = Instant::now();
    let limited = loop {
        let response = app.get("/api/v1/auth/.well-known/jwks.json").await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            break response;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "never limited");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_eq!(limited.headers()["ratelimit-limit"], "5");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error_code"], "RATE_LIMITED");
    // Health probes are never limited.
    assert_eq!(app.get("/health").await.status(), StatusCode::OK);
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[tokio::test]
async fn the_environment_beats_the_central_configuration() {
    let app = spawn(
        None,
        &[("VIVESPHERE_AUTHENTICATION__PASSWORD__MIN_LENGTH", "12")],
        None,
    )
    .await;
    let admin = admin_token(&app).await;
    let revision = update_ok(
        &app,
        &admin,
        "authentication",
        json!({"authentication.password.min_length": 20}),
    )
    .await;
    eventually(Duration::from_secs(5), || async {
        get_json(&app, "/api/v1/auth/health", &admin).await["config"]["revision"] == revision
    })
    .await;
    assert_eq!(
        create_user_with(&app, &admin, "envwins").await.status(),
        StatusCode::CREATED,
        "the environment's 12 still applies"
    );
}

/// A debug event `days` old, for the Logging service's retention check.
async fn submit_old_debug(app: &TestApp, token: &str, days: i64) -> StatusCode {
    let ts = app.clock.now_millis() - days * 86_400_000;
    send_json(
        app,
        Method::POST,
        "/api/v1/logs/submit",
        token,
        json!({"log_type": "debug", "log_data": {"timestamp": ts, "message": "old", "source": "test"}}),
    )
    .await
    .status()
}

/// The cluster path: a Logging process of its own follows the Configuration service over
/// NATS notices and HTTP, then restarts while the Configuration service is unreachable and
/// runs on its disk copy.
#[tokio::test]
async fn a_separate_service_follows_changes_over_nats_and_starts_on_its_disk_copy() {
    let Some(nats) = nats_settings() else { return };
    let Some(pg) = TestPostgres::create().await else {
        return;
    };
    let database_url = pg.url().to_string();
    let queue_env = [
        ("VIVESPHERE_QUEUE__KIND", "nats".to_string()),
        ("VIVESPHERE_QUEUE__URL", nats.url.clone()),
        ("VIVESPHERE_QUEUE__NAMESPACE", nats.namespace.clone()),
    ];
    let env: Vec<(&str, &str)> = queue_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let everything = spawn(None, &env, Some(pg)).await;
    let admin = admin_token(&everything).await;
    let first_url = format!("http://{}", everything.addr);
    let secrets = everything.data_dir.path().join("service-clients");
    let cache = tempfile::tempdir().unwrap();
    let (secrets, cache_dir) = (
        secrets.display().to_string(),
        cache.path().display().to_string(),
    );
    let logging_env = |config_url: &str| -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = queue_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        env.extend([
            ("VIVESPHERE_DATABASE__URL".into(), database_url.clone()),
            (
                "VIVESPHERE_AUTH__AUTHENTICATION_URL".into(),
                first_url.clone(),
            ),
            (
                "VIVESPHERE_AUTH__SERVICE_SECRETS_DIR".into(),
                secrets.clone(),
            ),
            (
                "VIVESPHERE_CONFIG_CLIENT__URL".into(),
                config_url.to_string(),
            ),
            (
                "VIVESPHERE_CONFIG_CLIENT__CACHE_DIR".into(),
                cache_dir.clone(),
            ),
            // Long enough that only a notice explains a quick apply.
            (
                "VIVESPHERE_CONFIG_CLIENT__RESYNC_SECONDS".into(),
                "3600".into(),
            ),
            (
                "VIVESPHERE_CONFIG_CLIENT__STARTUP_TIMEOUT_MS".into(),
                "500".into(),
            ),
        ]);
        env
    };
    let owned = logging_env(&first_url);
    let env: Vec<(&str, &str)> = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let logging = spawn_with_clock(Some("logging"), &env, None, everything.clock.clone()).await;
    let accepted = status_of_accept(&logging, &admin).await;
    assert!(accepted.is_success(), "{accepted}");
    assert_eq!(
        submit_old_debug(&logging, &admin, 3).await,
        accepted,
        "14 days by default"
    );

    let revision = update_ok(
        &everything,
        &admin,
        "logging",
        json!({"logging.retention.debug": 1}),
    )
    .await;
    let took = eventually(Duration::from_secs(5), || async {
        submit_old_debug(&logging, &admin, 3).await == StatusCode::BAD_REQUEST
    })
    .await;
    eprintln!("applied over NATS in {took:?}");
    let health = get_json(&logging, "/api/v1/logs/health", &admin).await;
    assert_eq!(health["config"]["revision"], revision);
    logging.stop().await.unwrap();

    // Restart with the Configuration service unreachable: the disk copy applies.
    let owned = logging_env("http://127.0.0.1:9");
    let env: Vec<(&str, &str)> = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let offline = spawn_with_clock(Some("logging"), &env, None, everything.clock.clone()).await;
    let health = get_json(&offline, "/api/v1/logs/health", &admin).await;
    assert_eq!(health["status"], "ready", "{health}");
    assert_eq!(health["config"]["revision"], revision);
    assert_eq!(
        submit_old_debug(&offline, &admin, 3).await,
        StatusCode::BAD_REQUEST
    );
}

/// What the Logging service answers to an acceptable submission.
async fn status_of_accept(app: &TestApp, token: &str) -> StatusCode {
    submit_old_debug(app, token, 0).await
}
