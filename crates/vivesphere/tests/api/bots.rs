//! The Bot Manager's API: the contract routes exactly, bots' CRUD and status rules,
//! object-level authorization, and the rules a post must follow before anything is sent.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Row;

use crate::auth_helpers::create_user;
use crate::botdata_helpers::{error_of, revealed_value};
use crate::bots_helpers::spawn_bots;

/// The body of the contract's bot list at `path`, as `token` sees it.
async fn contract_list(env: &crate::bots_helpers::BotEnv, path: &str, token: &str) -> Value {
    env.get(path, token).await.json().await.unwrap()
}

/// Many bots come back whole, each once, in id order (the store joins them in one row).
#[tokio::test]
async fn the_contract_list_answers_every_own_bot_in_id_order() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    let bob = env.manager("bob").await;
    let mut created = Vec::new();
    for n in 0..12 {
        let body: Value = env
            .send(
                Method::POST,
                "/api/v1/bots/create",
                &alice,
                json!({"bot_name": format!("Bot {n}"), "credentials": {"email": format!("b{n}@example.com")}}),
            )
            .await
            .json()
            .await
            .unwrap();
        created.push(body["bot_id"].as_str().unwrap().to_string());
    }
    env.send(
        Method::POST,
        "/api/v1/bots/create",
        &bob,
        json!({"bot_name": "Not Alice's", "credentials": {"email": "bob@example.com"}}),
    )
    .await;
    created.sort();
    let list = contract_list(&env, "/api/v1/bots/list", &alice).await;
    assert_eq!(list, json!({ "bots": created }));
}

#[tokio::test]
async fn contract_create_and_list_answer_exactly() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    let response = env
        .send(
            Method::POST,
            "/api/v1/bots/create",
            &alice,
            json!({"bot_name": "Daily Weather", "credentials": {"access_token": "contract-canary-access-token", "email": "bot@example.com"}}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    let object = body.as_object().unwrap();
    assert_eq!(object.len(), 2, "{body}");
    assert_eq!(body["status"], "created");
    let bot_id = body["bot_id"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&bot_id).is_ok());

    let list = contract_list(&env, "/api/v1/bots/list", &alice).await;
    assert_eq!(list, json!({"bots": [bot_id]}));
    // The caller's bots come from the token: another user sees none of them.
    let bob = env.manager("bob").await;
    let list = contract_list(&env, "/api/v1/bots/list", &bob).await;
    assert_eq!(list, json!({"bots": []}));
    // A query parameter does not choose whose bots.
    let chosen = format!(
        "/api/v1/bots/list?owner_id={}",
        crate::auth_helpers::subject_of(&alice)
    );
    let list = contract_list(&env, &chosen, &bob).await;
    assert_eq!(list, json!({"bots": []}));

    // The credentials are in Secure Bot Data, readable by the owner's reveal...
    assert_eq!(
        revealed_value(&env.app, &alice, &bot_id, "oauth_access_token").await,
        "contract-canary-access-token"
    );
    assert_eq!(
        revealed_value(&env.app, &alice, &bot_id, "email").await,
        "bot@example.com"
    );
    // ...and nowhere in the Bot Manager's tables.
    let db = env.db().await;
    for table in ["bots", "posts", "jobs", "outbox"] {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM {table}")))
            .fetch_all(&db)
            .await
            .unwrap();
        for row in rows {
            for i in 0..row.len() {
                if let Ok(Some(text)) = row.try_get::<Option<String>, _>(i) {
                    assert!(
                        !text.contains("contract-canary"),
                        "{table} holds a credential"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn contract_errors_are_400_invalid_data_and_401_unauthorized() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    for body in [
        json!({"bot_name": "x"}),
        json!({"credentials": {"access_token": "t"}}),
        json!({"bot_name": "", "credentials": {"access_token": "t"}}),
        json!({"bot_name": "x", "credentials": "a-secret-string"}),
        json!({"bot_name": "x", "credentials": {}}),
        json!({"bot_name": "x", "credentials": {"access_token": 42}}),
        json!({"bot_name": "x", "credentials": {"Bad Name": "v"}}),
        json!({"bot_name": "x", "credentials": {"access_token": "t"}, "unknown": 1}),
    ] {
        let response = env
            .send(Method::POST, "/api/v1/bots/create", &alice, body.clone())
            .await;
        let (status, code) = error_of(response).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "INVALID_DATA"),
            "{body}"
        );
    }
    // A secret given with the wrong type is never quoted back.
    let response = env
        .send(
            Method::POST,
            "/api/v1/bots/create",
            &alice,
            json!({"bot_name": "x", "credentials": "do-not-echo-me"}),
        )
        .await;
    assert!(!response.text().await.unwrap().contains("do-not-echo-me"));
    for token in ["", "not-a-jwt"] {
        let response = env
            .app
            .client
            .post(env.app.url("/api/v1/bots/create"))
            .bearer_auth(token)
            .json(&json!({"bot_name": "x", "credentials": {"access_token": "t"}}))
            .send()
            .await
            .unwrap();
        let (status, code) = error_of(response).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "UNAUTHORIZED")
        );
    }
    let response = env
        .app
        .client
        .get(env.app.url("/api/v1/bots/list"))
        .send()
        .await
        .unwrap();
    let (status, code) = error_of(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "UNAUTHORIZED")
    );
    // Nothing was created by any of it.
    let list = contract_list(&env, "/api/v1/bots/list", &alice).await;
    assert_eq!(list["bots"], json!([]));
}

#[tokio::test]
async fn someone_elses_bot_and_its_posts_are_not_found_while_teammates_and_admins_reach_them() {
    let env = spawn_bots(Default::default(), &[]).await;
    // Alice and Carol share a team; Bob does not.
    let admin = env.admin.clone();
    let alice = env.team_manager("alice", "red").await;
    let carol = env.team_manager("carol", "red").await;
    let bob = env.team_manager("bob", "blue").await;
    let (bot_id, _) = env.bot(&alice, "alicebot").await;
    let post = env.post(&alice, &bot_id, json!({"text": "a draft"})).await;
    let post_id = post["post_id"].as_str().unwrap();

    let paths = [
        format!("/api/v1/bots/{bot_id}"),
        format!("/api/v1/bots/{bot_id}/posts"),
        format!("/api/v1/bots/{bot_id}/posts/{post_id}"),
        format!("/api/v1/bots/{bot_id}/metrics"),
        format!("/api/v1/bots/{bot_id}/posts/{post_id}/metrics"),
    ];
    for path in &paths {
        let (status, code) = error_of(env.get(path, &bob).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::NOT_FOUND, "NOT_FOUND"),
            "{path}"
        );
        assert_eq!(
            env.get(path, &carol).await.status(),
            StatusCode::OK,
            "{path}"
        );
        assert_eq!(
            env.get(path, &admin).await.status(),
            StatusCode::OK,
            "{path}"
        );
    }
    for (method, path, body) in [
        (
            Method::PATCH,
            format!("/api/v1/bots/{bot_id}"),
            json!({"name": "mine now"}),
        ),
        (
            Method::POST,
            format!("/api/v1/bots/{bot_id}/status"),
            json!({"status": "paused"}),
        ),
        (
            Method::PUT,
            format!("/api/v1/bots/{bot_id}/credentials"),
            json!({"credentials": {"access_token": "t"}}),
        ),
        (
            Method::POST,
            format!("/api/v1/bots/{bot_id}/posts"),
            json!({"text": "hijack", "publish_now": true}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/bots/{bot_id}/posts/{post_id}"),
            json!({"text": "hijack"}),
        ),
        (
            Method::POST,
            format!("/api/v1/bots/{bot_id}/posts/{post_id}/publish"),
            json!({}),
        ),
        (
            Method::POST,
            format!("/api/v1/bots/{bot_id}/posts/{post_id}/cancel"),
            json!({}),
        ),
        (Method::DELETE, format!("/api/v1/bots/{bot_id}"), json!({})),
    ] {
        let (status, _) = error_of(env.send(method.clone(), &path, &bob, body).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
    }
    // A post id under someone else's bot id is not found either, and nothing changed.
    let (bob_bot, _) = env.bot(&bob, "bobbot").await;
    let (status, _) = error_of(
        env.get(&format!("/api/v1/bots/{bob_bot}/posts/{post_id}"), &bob)
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let post = env.read_post(&alice, &bot_id, post_id).await;
    assert_eq!(
        (post["state"].as_str(), post["text"].as_str()),
        (Some("draft"), Some("a draft"))
    );
    let bot: Value = env
        .get(&format!("/api/v1/bots/{bot_id}"), &alice)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bot["status"], "active");
    assert_eq!(env.x_requests("POST", "/2/tweets").len(), 0);
    // A Viewer reads but cannot write.
    create_user(&env.app, &admin, "vera", &["Viewer"]).await;
    let vera = env.login("vera").await;
    let (status, code) = error_of(
        env.send(
            Method::POST,
            "/api/v1/bots",
            &vera,
            json!({"bot_name": "v", "credentials": {"access_token": "t"}}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "FORBIDDEN")
    );
}

#[tokio::test]
async fn bot_crud_keeps_to_the_allowed_status_transitions() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    let (bot_id, _) = env.bot(&alice, "statusbot").await;
    let path = format!("/api/v1/bots/{bot_id}");
    let bot: Value = env.get(&path, &alice).await.json().await.unwrap();
    assert_eq!(bot["operator_account"], "human_operator");
    assert_eq!(bot["x_handle"], "statusbot");

    // Edits need the current version when If-Match is sent.
    let stale = env
        .app
        .client
        .patch(env.app.url(&path))
        .bearer_auth(&alice)
        .header("if-match", "\"99\"")
        .json(&json!({"description": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(stale).await.0, StatusCode::PRECONDITION_FAILED);
    let response = env.app.client.patch(env.app.url(&path)).bearer_auth(&alice).header("if-match", format!("\"{}\"", bot["version"]))
        .json(&json!({"description": "Posts the weather at 7", "posting_slots": [{"day": "mon", "start": "07:00", "end": "08:00"}]}))
        .send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (status, _) = error_of(
        env.send(
            Method::PATCH,
            &path,
            &alice,
            json!({"x_handle": "not a handle!"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let status_of = |v: &Value| v["status"].as_str().unwrap().to_string();
    let set = |status: &'static str| {
        let env = &env;
        let alice = alice.clone();
        let bot_id = bot_id.clone();
        async move {
            env.send(
                Method::POST,
                &format!("/api/v1/bots/{bot_id}/status"),
                &alice,
                json!({"status": status}),
            )
            .await
        }
    };
    let paused: Value = set("paused").await.json().await.unwrap();
    assert_eq!(status_of(&paused), "paused");
    assert_eq!(error_of(set("paused").await).await.0, StatusCode::CONFLICT);
    // needs_reauth is the system's to set; suspension is for admins.
    assert_eq!(
        error_of(set("needs_reauth").await).await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        error_of(set("suspended").await).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        error_of(set("sleeping").await).await.0,
        StatusCode::BAD_REQUEST
    );
    let admin_suspends = env
        .send(
            Method::POST,
            &format!("/api/v1/bots/{bot_id}/status"),
            &env.admin,
            json!({"status": "suspended"}),
        )
        .await;
    assert_eq!(admin_suspends.status(), StatusCode::OK);
    assert_eq!(error_of(set("active").await).await.0, StatusCode::FORBIDDEN);
    // Archiving ends it: read-only from then on.
    assert_eq!(
        env.send(Method::DELETE, &path, &alice, json!({}))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let archived: Value = env.get(&path, &alice).await.json().await.unwrap();
    assert_eq!(status_of(&archived), "archived");
    assert_eq!(error_of(set("active").await).await.0, StatusCode::CONFLICT);
    let (status, _) = error_of(
        env.send(
            Method::POST,
            &format!("{path}/posts"),
            &alice,
            json!({"text": "late"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // The paged list shows it, with the list conventions.
    let page: Value = env
        .get("/api/v1/bots?limit=1", &alice)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"][0]["bot_id"], bot_id.as_str());
    assert_eq!(page["next_cursor"], Value::Null);
}

#[tokio::test]
async fn post_text_follows_xs_weighted_count_and_media_rules() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    let (bot_id, _) = env.bot(&alice, "textbot").await;
    let path = format!("/api/v1/bots/{bot_id}/posts");
    let ok = env
        .post(&alice, &bot_id, json!({"text": "a".repeat(280)}))
        .await;
    assert_eq!(ok["weighted_length"], 280);
    let response = env
        .send(
            Method::POST,
            &path,
            &alice,
            json!({"text": "a".repeat(281)}),
        )
        .await;
    assert_eq!(
        error_of(response).await,
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED".to_string()
        )
    );
    // 141 CJK characters weigh 282.
    let response = env
        .send(
            Method::POST,
            &path,
            &alice,
            json!({"text": "字".repeat(141)}),
        )
        .await;
    assert_eq!(error_of(response).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    // Eleven long URLs weigh 11 × 23 + 10 spaces = 263: accepted.
    let url = format!("https://example.com/{}", "p".repeat(100));
    let links = env
        .post(
            &alice,
            &bot_id,
            json!({"text": ([url.as_str(); 11]).join(" ")}),
        )
        .await;
    assert_eq!(links["weighted_length"], 263);
    // Bare domains are URLs too: eleven weigh 263 and are accepted, as X accepts them.
    let domains = env
        .post(
            &alice,
            &bot_id,
            json!({"text": (["example.com"; 11]).join(" ")}),
        )
        .await;
    assert_eq!(domains["weighted_length"], 263);
    // Thirteen weigh 13 × 23 + 12 = 311: too long here as at X, though only 155 characters.
    let response = env
        .send(
            Method::POST,
            &path,
            &alice,
            json!({"text": (["example.com"; 13]).join(" ")}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["weighted_length"], 311, "{error}");
    // NFC first: e + combining accent is stored as é.
    let nfc = env
        .post(&alice, &bot_id, json!({"text": "cafe\u{301}"}))
        .await;
    assert_eq!(nfc["text"], "café");
    for body in [
        json!({"text": "  "}),
        json!({"text": "x", "media_ids": ["1", "2", "3", "4", "5"]}),
        json!({"text": "x", "media_ids": ["abc"]}),
        // X's MediaId is 1 to 19 digits.
        json!({"text": "x", "media_ids": ["12345678901234567890"]}),
        json!({"text": "x", "run_at": "tomorrow"}),
    ] {
        let (status, _) = error_of(env.send(Method::POST, &path, &alice, body.clone()).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
    let (status, _) = error_of(
        env.send(
            Method::POST,
            &path,
            &alice,
            json!({"text": "past", "run_at": env.in_ms(-3_600_000)}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let media_only = env
        .post(
            &alice,
            &bot_id,
            json!({"text": "", "media_ids": ["1234567890"]}),
        )
        .await;
    assert_eq!(media_only["state"], "draft");
}

#[tokio::test]
async fn near_identical_text_from_another_bot_is_refused() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    let bob = env.manager("bob").await;
    let (first, _) = env.bot(&alice, "salebot1").await;
    let (second, _) = env.bot(&bob, "salebot2").await;
    env.post(
        &alice,
        &first,
        json!({"text": "Big sale today! https://shop.example.com/a", "run_at": env.in_ms(3_600_000)}),
    )
    .await;
    for text in [
        "big SALE today https://shop.example.com/other",
        "@someone Big   sale, today!!",
    ] {
        let response = env
            .send(
                Method::POST,
                &format!("/api/v1/bots/{second}/posts"),
                &bob,
                json!({"text": text, "run_at": env.in_ms(3_600_000)}),
            )
            .await;
        assert_eq!(
            error_of(response).await,
            (StatusCode::CONFLICT, "CONFLICT".to_string()),
            "{text}"
        );
    }
    // A draft is not posted, so it is not refused; scheduling it is.
    let draft = env
        .post(&bob, &second, json!({"text": "Big sale today"}))
        .await;
    let response = env
        .send(
            Method::POST,
            &format!(
                "/api/v1/bots/{second}/posts/{}/publish",
                draft["post_id"].as_str().unwrap()
            ),
            &bob,
            json!({}),
        )
        .await;
    assert_eq!(error_of(response).await.0, StatusCode::CONFLICT);
    // Different words are fine.
    env.post(
        &bob,
        &second,
        json!({"text": "Big sale tomorrow", "run_at": env.in_ms(3_600_000)}),
    )
    .await;
}

#[tokio::test]
async fn an_idempotency_key_returns_the_first_post_and_refuses_a_different_request() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    let (bot_id, _) = env.bot(&alice, "idembot").await;
    let path = format!("/api/v1/bots/{bot_id}/posts");
    let send = |body: Value| {
        env.app
            .client
            .post(env.app.url(&path))
            .bearer_auth(&alice)
            .header("idempotency-key", "create-42")
            .json(&body)
            .send()
    };
    let first = send(json!({"text": "only once", "publish_now": true}))
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again = send(json!({"text": "only once", "publish_now": true}))
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["post_id"], first["post_id"]);
    let other = send(json!({"text": "something else"})).await.unwrap();
    assert_eq!(error_of(other).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    env.wait_for(
        &alice,
        &bot_id,
        first["post_id"].as_str().unwrap(),
        &["published"],
    )
    .await;
    let posts: Value = env.get(&path, &alice).await.json().await.unwrap();
    assert_eq!(posts["items"].as_array().unwrap().len(), 1);
    assert_eq!(env.x_requests("POST", "/2/tweets").len(), 1);
}

#[tokio::test]
async fn posts_are_edited_and_cancelled_until_publishing_starts() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    let (bot_id, _) = env.bot(&alice, "editbot").await;
    let post = env
        .post(
            &alice,
            &bot_id,
            json!({"text": "first words", "run_at": env.in_ms(3_600_000)}),
        )
        .await;
    assert_eq!(post["state"], "scheduled");
    let post_id = post["post_id"].as_str().unwrap();
    let path = format!("/api/v1/bots/{bot_id}/posts/{post_id}");
    let stale = env
        .app
        .client
        .patch(env.app.url(&path))
        .bearer_auth(&alice)
        .header("if-match", "\"7\"")
        .json(&json!({"text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(stale).await.0, StatusCode::PRECONDITION_FAILED);
    let edited: Value = env
        .send(
            Method::PATCH,
            &path,
            &alice,
            json!({"text": "better words", "run_at": env.in_ms(7_200_000)}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(edited["text"], "better words");
    assert_eq!(edited["state"], "scheduled");
    let cancelled: Value = env
        .send(Method::POST, &format!("{path}/cancel"), &alice, json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cancelled["state"], "cancelled");
    for (method, suffix, body) in [
        (Method::PATCH, "", json!({"text": "again"})),
        (Method::POST, "/publish", json!({})),
        (
            Method::POST,
            "/schedule",
            json!({"run_at": env.in_ms(60_000)}),
        ),
        (Method::POST, "/cancel", json!({})),
        (Method::DELETE, "", json!({})),
    ] {
        let (status, _) = error_of(
            env.send(method.clone(), &format!("{path}{suffix}"), &alice, body)
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT, "{method} {suffix}");
    }
    // A published post can no longer be edited or cancelled.
    let live = env
        .post(
            &alice,
            &bot_id,
            json!({"text": "going out now", "publish_now": true}),
        )
        .await;
    let live_id = live["post_id"].as_str().unwrap();
    env.wait_for(&alice, &bot_id, live_id, &["published"]).await;
    let live_path = format!("/api/v1/bots/{bot_id}/posts/{live_id}");
    assert_eq!(
        error_of(
            env.send(Method::PATCH, &live_path, &alice, json!({"text": "x"}))
                .await
        )
        .await
        .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        error_of(
            env.send(
                Method::POST,
                &format!("{live_path}/cancel"),
                &alice,
                json!({})
            )
            .await
        )
        .await
        .0,
        StatusCode::CONFLICT
    );
    assert_eq!(env.x_requests("POST", "/2/tweets").len(), 1);
}

#[tokio::test]
async fn scheduling_outside_the_bots_posting_slots_is_refused() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    let (bot_id, _) = env.bot(&alice, "slotbot").await;
    // A slot of one minute, an hour from now (10:00 on the test clock's day): any other time
    // is outside it.
    let at = env.app.clock.now() + time::Duration::hours(1);
    let day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        [at.weekday().number_days_from_monday() as usize];
    let slot = format!("{:02}:{:02}", at.hour(), at.minute());
    let end = format!("{:02}:{:02}", at.hour(), at.minute() + 1);
    assert!(at.minute() < 59, "the slot must not cross the hour: {at}");
    let response = env
        .send(
            Method::PATCH,
            &format!("/api/v1/bots/{bot_id}"),
            &alice,
            json!({"posting_slots": [{"day": day, "start": slot, "end": end}]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = env
        .send(
            Method::POST,
            &format!("/api/v1/bots/{bot_id}/posts"),
            &alice,
            json!({"text": "off slot", "run_at": env.in_ms(7_200_000)}),
        )
        .await;
    assert_eq!(error_of(response).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    let inside = at
        .replace_second(30)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    env.post(
        &alice,
        &bot_id,
        json!({"text": "in slot", "run_at": inside}),
    )
    .await;
}

#[tokio::test]
async fn the_openapi_document_covers_every_route() {
    let env = spawn_bots(Default::default(), &[]).await;
    let doc: Value = env
        .app
        .get("/api/v1/bots/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    for (path, method) in [
        ("/create", "post"),
        ("/list", "get"),
        ("", "get"),
        ("", "post"),
        ("/{bot_id}", "get"),
        ("/{bot_id}", "patch"),
        ("/{bot_id}", "delete"),
        ("/{bot_id}/status", "post"),
        ("/{bot_id}/credentials", "put"),
        ("/{bot_id}/metrics", "get"),
        ("/{bot_id}/metrics/refresh", "post"),
        ("/{bot_id}/posts", "get"),
        ("/{bot_id}/posts", "post"),
        ("/{bot_id}/posts/{post_id}", "get"),
        ("/{bot_id}/posts/{post_id}", "patch"),
        ("/{bot_id}/posts/{post_id}", "delete"),
        ("/{bot_id}/posts/{post_id}/schedule", "post"),
        ("/{bot_id}/posts/{post_id}/publish", "post"),
        ("/{bot_id}/posts/{post_id}/cancel", "post"),
        ("/{bot_id}/posts/{post_id}/metrics", "get"),
    ] {
        let operation = &doc["paths"][format!("/api/v1/bots{path}")][method];
        assert!(operation.is_object(), "{method} {path} is not documented");
        assert!(
            operation["security"].is_array(),
            "{method} {path} does not say it needs a token"
        );
    }
}

#[tokio::test]
async fn the_fake_x_runs_as_its_own_target() {
    let app = crate::helpers::spawn(
        Some("fake-x"),
        &[("VIVESPHERE_FAKE_X__DEMO_USERS", "[]")],
        None,
    )
    .await;
    let response = app.get("/2/users/me").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let created: Value = app
        .client
        .post(app.url("/_fake/users"))
        .json(&json!({"username": "demo"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let me: Value = crate::auth_helpers::get_json(
        &app,
        "/2/users/me",
        created["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(me["data"]["username"], "demo");
}

/// The composer's counter is the post's rule: the same count, entities and verdict.
#[tokio::test]
async fn check_text_counts_as_posts_are_counted() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    let (bot_id, _) = env.bot(&alice, "counterbot").await;
    let text = "Hi @alice see example.com and https://t.co/x #rust $BTC 日本 😀 cafe\u{301}";
    let response = env
        .send(
            Method::POST,
            "/api/v1/bots/check-text",
            &alice,
            json!({"text": text}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let checked: Value = response.json().await.unwrap();
    let post = env.post(&alice, &bot_id, json!({"text": text})).await;
    assert_eq!(checked["weighted_length"], post["weighted_length"]);
    assert_eq!(checked["text"], post["text"]);
    // "Hi @alice see " 14, example.com 23, " and " 5, the t.co URL 23, " #rust $BTC " 12,
    // "日本 " 5, "😀 " 3, "café" 4 (after NFC): 89.
    assert_eq!(checked["weighted_length"], 89);
    assert_eq!(checked["remaining"], 191);
    assert_eq!(checked["valid"], true);
    let values = |key: &str| -> Vec<Value> {
        checked[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["value"].clone())
            .collect()
    };
    assert_eq!(
        values("urls"),
        [json!("example.com"), json!("https://t.co/x")]
    );
    assert_eq!(values("mentions"), [json!("alice")]);
    assert_eq!(values("hashtags"), [json!("rust")]);
    assert_eq!(values("cashtags"), [json!("BTC")]);
    assert_eq!(checked["mentions"][0]["start"], 3);
    // Over the limit: the count says by how much, and where the valid part ends.
    let long: Value = env
        .send(
            Method::POST,
            "/api/v1/bots/check-text",
            &alice,
            json!({"text": "a".repeat(290)}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (long["remaining"].clone(), long["valid"].clone()),
        (json!(-10), json!(false))
    );
    assert_eq!(long["valid_range"], json!([0, 279]));
    let anonymous = env
        .app
        .client
        .post(env.app.url("/api/v1/bots/check-text"))
        .json(&json!({"text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

/// `GET /bots` filters by status, team, handle and text, within what the caller reaches,
/// with the same keyset paging.
#[tokio::test]
async fn the_bot_list_filters_by_status_team_handle_and_text_within_reach() {
    let env = spawn_bots(Default::default(), &[]).await;
    let admin = env.admin.clone();
    let alice = env.team_manager("alice", "red").await;
    let bob = env.team_manager("bob", "blue").await;
    let (news, _) = env.bot(&alice, "NewsBot").await;
    // A name with LIKE's own characters (handles cannot have them).
    let user = env.fake.add_user(fake_x::NewUser::named("weather100"));
    let created: Value = env
        .send(
            Method::POST,
            "/api/v1/bots",
            &alice,
            json!({"bot_name": "weather_100%", "x_handle": "weather100",
                   "credentials": {"access_token": user.access_token}}),
        )
        .await
        .json()
        .await
        .unwrap();
    let weather = created["bot_id"].as_str().unwrap().to_string();
    let (sports, _) = env.bot(&bob, "sportsbot").await;
    let paused = env
        .send(
            Method::POST,
            &format!("/api/v1/bots/{weather}/status"),
            &alice,
            json!({"status": "paused"}),
        )
        .await;
    assert_eq!(paused.status(), StatusCode::OK);
    let ids = |token: String, query: &'static str| {
        let env = &env;
        async move {
            let page: Value = env
                .get(&format!("/api/v1/bots?{query}"), &token)
                .await
                .json()
                .await
                .unwrap();
            let mut ids: Vec<String> = page["items"]
                .as_array()
                .unwrap_or_else(|| panic!("{query}: {page}"))
                .iter()
                .map(|b| b["bot_id"].as_str().unwrap().to_string())
                .collect();
            ids.sort();
            ids
        }
    };
    let sorted = |mut v: Vec<&String>| {
        v.sort();
        v.into_iter().cloned().collect::<Vec<String>>()
    };
    assert_eq!(
        ids(admin.clone(), "").await,
        sorted(vec![&news, &weather, &sports])
    );
    assert_eq!(
        ids(admin.clone(), "status=paused").await,
        [weather.as_str()]
    );
    assert_eq!(ids(admin.clone(), "team=blue").await, [sports.as_str()]);
    assert_eq!(
        ids(admin.clone(), "handle=%40newsbot").await,
        [news.as_str()]
    );
    assert_eq!(
        ids(admin.clone(), "q=BOT").await,
        sorted(vec![&news, &sports])
    );
    // LIKE's own characters are searched for, not interpreted.
    assert_eq!(ids(admin.clone(), "q=100%25").await, [weather.as_str()]);
    assert!(ids(admin.clone(), "q=_").await.contains(&weather));
    assert_eq!(ids(admin.clone(), "q=_").await.len(), 1);
    // Filters never widen the reach: Bob sees only his team's bots, whatever he asks.
    assert_eq!(ids(bob.clone(), "q=bot").await, [sports.as_str()]);
    assert!(ids(bob.clone(), "team=red").await.is_empty());
    // Paging keeps the filter.
    let first: Value = env
        .get("/api/v1/bots?q=bot&limit=1", &admin)
        .await
        .json()
        .await
        .unwrap();
    let cursor = first["next_cursor"].as_str().unwrap();
    let second: Value = env
        .get(
            &format!("/api/v1/bots?q=bot&limit=1&cursor={cursor}"),
            &admin,
        )
        .await
        .json()
        .await
        .unwrap();
    let both = sorted(vec![
        &first["items"][0]["bot_id"].as_str().unwrap().to_string(),
        &second["items"][0]["bot_id"].as_str().unwrap().to_string(),
    ]);
    assert_eq!(both, sorted(vec![&news, &sports]));
    assert_eq!(second["next_cursor"], Value::Null);
    for bad in ["status=sleeping", "colour=red"] {
        let response = env.get(&format!("/api/v1/bots?{bad}"), &admin).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}
