//! Webhooks with a local receiver: what the services do reaches the subscribed team's URL,
//! signed as Standard Webhooks describe (checked with the reference library); a receiver
//! that is down gets every event once it is back, with the same ids; a delivery that fails
//! for more than a day turns its subscription off; a rotated secret keeps deliveries
//! verifiable; only public HTTPS targets pass outside development, and redirects are never
//! followed.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::bots_helpers::{BotEnv, spawn_bots};
use crate::webhook_receiver::receiver;

/// The sender looks at the outbox often, so a test's clock moves show at once.
const QUICK_SENDER: (&str, &str) = ("VIVESPHERE_LOGGING__WEBHOOKS__POLL_INTERVAL_MS", "50");

async fn create(env: &BotEnv, token: &str, body: Value) -> (StatusCode, Value) {
    let response = env
        .send(Method::POST, "/api/v1/logs/webhooks", token, body)
        .await;
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn created(env: &BotEnv, token: &str, body: Value) -> (String, String) {
    let (status, body) = create(env, token, body).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        body["webhook"]["id"].as_str().unwrap().to_string(),
        body["secret"].as_str().unwrap().to_string(),
    )
}

async fn deliveries(env: &BotEnv, token: &str, id: &str) -> Vec<Value> {
    let response = env
        .get(&format!("/api/v1/logs/webhooks/{id}/deliveries"), token)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["items"].as_array().unwrap().clone()
}

/// Reads the delivery log until `done` holds of it (20 s at most).
async fn log_until(
    env: &BotEnv,
    token: &str,
    id: &str,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let log = deliveries(env, token, id).await;
        if done(&log) {
            return log;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "delivery log never {what}: {log:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn ping(env: &BotEnv, token: &str, id: &str) -> Value {
    let response = env
        .send(
            Method::POST,
            &format!("/api/v1/logs/webhooks/{id}/ping"),
            token,
            json!({}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_team_s_events_reach_its_webhook_signed_and_other_teams_do_not() {
    let env = spawn_bots(Default::default(), &[QUICK_SENDER]).await;
    let alice = env.team_manager("alice", "blue").await;
    let bob = env.team_manager("bob", "red").await;
    let (blue_bot, _) = env.bot(&alice, "bluebot").await;
    let (red_bot, _) = env.bot(&bob, "redbot").await;
    let blue_hook = receiver().await;
    let global_hook = receiver().await;

    // Alice's team subscribes; the secret is shown once, in the Standard Webhooks form.
    let (blue_id, secret) = created(
        &env,
        &alice,
        json!({"url": blue_hook.url(), "event_types": ["post.published"], "description": "blue on-call"}),
    )
    .await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    let (global_id, global_secret) = created(
        &env,
        &env.admin,
        json!({"url": global_hook.url(), "event_types": ["post.published"]}),
    )
    .await;

    // Bob neither sees nor reaches it, nor creates one for another team; an Editor has no
    // webhooks; unknown event types are refused, naming the known ones.
    let listed: Value = env
        .get("/api/v1/logs/webhooks", &bob)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"], json!([]));
    let status = env
        .get(&format!("/api/v1/logs/webhooks/{blue_id}"), &bob)
        .await
        .status();
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = create(
        &env,
        &bob,
        json!({"url": blue_hook.url(), "event_types": ["post.failed"], "team": "blue"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let editor = crate::auth_helpers::token_of(&env.app, &env.admin, "eddie", &["Editor"]).await;
    let (status, _) = create(
        &env,
        &editor,
        json!({"url": blue_hook.url(), "event_types": ["post.failed"]}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = create(
        &env,
        &alice,
        json!({"url": blue_hook.url(), "event_types": ["post.exploded"]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap().contains("post.published"));
    let own: Value = env
        .get("/api/v1/logs/webhooks", &alice)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(own["items"].as_array().unwrap().len(), 1);
    assert!(own["items"][0].get("secret").is_none());

    // A blue post is published: one signed request to each subscriber.
    let blue_post = env.publish_now(&alice, &blue_bot, "blue news").await;
    let hits = blue_hook.wait_for(1).await;
    let hit = &hits[0];
    assert!(hit.signed_by(&secret), "{:?}", hit.headers);
    assert!(!hit.signed_by(&global_secret));
    let body = hit.json();
    assert_eq!(body["type"], "post.published");
    assert_eq!(body["data"]["team"], "blue");
    assert_eq!(body["data"]["bot_id"], blue_bot.as_str());
    assert_eq!(body["data"]["subject"], blue_post.as_str());
    assert!(body["data"]["details"]["x_post_id"].is_string(), "{body}");
    // The timestamp is the platform's clock at the attempt; the id is the event's.
    let sent_at: i64 = hit.header("webhook-timestamp").parse().unwrap();
    assert!((sent_at - env.app.clock.now().unix_timestamp()).abs() < 60);
    let event = env.recorded(&alice, "post.published").await;
    assert_eq!(
        hit.header("webhook-id"),
        format!("msg_{}", event[0]["id"].as_str().unwrap())
    );
    let global_hits = global_hook.wait_for(1).await;
    assert_eq!(
        global_hits[0].header("webhook-id"),
        hit.header("webhook-id")
    );
    assert!(global_hits[0].signed_by(&global_secret));

    // A red post reaches the global subscriber only.
    env.publish_now(&bob, &red_bot, "red news").await;
    let global_hits = global_hook.wait_for(2).await;
    assert_eq!(global_hits[1].json()["data"]["team"], "red");
    assert_eq!(blue_hook.hits().len(), 1);

    // A ping goes at once and says what the receiver answered.
    let pinged = ping(&env, &alice, &blue_id).await;
    assert_eq!(
        (pinged["state"].as_str(), pinged["last_status"].as_i64()),
        (Some("delivered"), Some(200))
    );
    let pings = blue_hook.of_type("webhook.ping");
    assert_eq!(pings.len(), 1);
    assert!(pings[0].signed_by(&secret));

    // The delivery log shows both, newest first, and pages.
    let log = deliveries(&env, &alice, &blue_id).await;
    let kinds: Vec<&str> = log
        .iter()
        .map(|d| d["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["webhook.ping", "post.published"]);
    assert!(
        log.iter()
            .all(|d| d["state"] == "delivered" && d["attempts"] == 1)
    );
    let page: Value = env
        .get(
            &format!("/api/v1/logs/webhooks/{blue_id}/deliveries?limit=1"),
            &alice,
        )
        .await
        .json()
        .await
        .unwrap();
    let cursor = page["next_cursor"].as_str().unwrap();
    let next: Value = env
        .get(
            &format!("/api/v1/logs/webhooks/{blue_id}/deliveries?limit=1&cursor={cursor}"),
            &alice,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(next["items"][0]["event_type"], "post.published");
    assert_eq!(next["next_cursor"], Value::Null);

    // Removed, it gets nothing more; removal is for those who manage it.
    let status = env
        .send(
            Method::DELETE,
            &format!("/api/v1/logs/webhooks/{blue_id}"),
            &bob,
            json!({}),
        )
        .await
        .status();
    assert_eq!(status, StatusCode::NOT_FOUND);
    let status = env
        .send(
            Method::DELETE,
            &format!("/api/v1/logs/webhooks/{blue_id}"),
            &alice,
            json!({}),
        )
        .await
        .status();
    assert_eq!(status, StatusCode::NO_CONTENT);
    env.publish_now(&alice, &blue_bot, "more blue news").await;
    global_hook.wait_for(3).await;
    assert_eq!(
        blue_hook.hits().len(),
        2,
        "only the first post and the ping"
    );
    let _ = global_id;
}

#[tokio::test]
async fn a_receiver_that_was_down_gets_every_event_with_the_same_ids_and_one_down_for_a_day_is_turned_off()
 {
    let env = spawn_bots(Default::default(), &[QUICK_SENDER]).await;
    let alice = env.team_manager("alice", "blue").await;
    let (bot_id, _) = env.bot(&alice, "bluebot").await;
    let hook = receiver().await;
    let (id, secret) = created(
        &env,
        &alice,
        json!({"url": hook.url(), "event_types": ["post.published"]}),
    )
    .await;

    // Down: three posts, three first attempts refused.
    hook.answer(503);
    for i in 0..3 {
        env.publish_now(&alice, &bot_id, &format!("post {i}")).await;
    }
    hook.wait_for(3).await;
    let log = log_until(&env, &alice, &id, "shows three retries", |log| {
        log.len() == 3 && log.iter().all(|d| d["attempts"] == 1)
    })
    .await;
    for d in &log {
        assert_eq!(
            (d["state"].as_str(), d["last_status"].as_i64()),
            (Some("pending"), Some(503)),
            "{d}"
        );
        assert!(d["next_attempt_at"].is_string());
    }
    let first_ids: BTreeSet<String> = hook
        .hits()
        .iter()
        .map(|h| h.header("webhook-id").to_string())
        .collect();
    assert_eq!(first_ids.len(), 3);

    // Nothing is tried again before its time (5 s, plus at most a fifth).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hook.hits().len(), 3);
    env.app.clock.advance(Duration::from_secs(7));
    hook.wait_for(6).await;
    // The next delay counts from when an attempt is recorded: wait for that before moving on.
    log_until(&env, &alice, &id, "recorded the second attempts", |log| {
        log.iter().all(|d| d["attempts"] == 2)
    })
    .await;

    // Back: at the next attempt (5 minutes on) every event arrives, with the ids it had.
    hook.answer(200);
    env.app.clock.advance(Duration::from_secs(6 * 60 + 1));
    let alice = env.login("alice").await;
    log_until(&env, &alice, &id, "delivered everything", |log| {
        log.iter()
            .all(|d| d["state"] == "delivered" && d["attempts"] == 3)
    })
    .await;
    let hits = hook.wait_for(9).await;
    let again: BTreeSet<String> = hits[6..]
        .iter()
        .map(|h| h.header("webhook-id").to_string())
        .collect();
    assert_eq!(again, first_ids);
    for hit in &hits {
        assert!(hit.signed_by(&secret));
    }
    // The body is the same on every attempt of a message.
    for hit in &hits[6..] {
        let first = hits
            .iter()
            .find(|h| h.header("webhook-id") == hit.header("webhook-id"))
            .unwrap();
        assert_eq!(first.body, hit.body);
    }

    // Down for good: after the last attempt (27.6 hours on) the delivery is given up and
    // the subscription turned off, which the log says.
    hook.answer(500);
    let post_id = env.publish_now(&alice, &bot_id, "into the void").await;
    let mut seen = 10;
    hook.wait_for(seen).await;
    let mut alice = alice;
    for (done, delay_s) in [5, 300, 1800, 7200, 18_000, 36_000, 36_000]
        .into_iter()
        .enumerate()
    {
        log_until(&env, &alice, &id, "recorded the attempt", |log| {
            log[0]["attempts"] == done + 1
        })
        .await;
        env.app
            .clock
            .advance(Duration::from_secs(delay_s + delay_s / 5 + 1));
        seen += 1;
        hook.wait_for(seen).await;
        alice = env.login("alice").await;
    }
    let admin = crate::auth_helpers::admin_token(&env.app).await;
    let log = log_until(&env, &alice, &id, "gave up", |log| {
        log.first().is_some_and(|d| d["state"] == "failed")
    })
    .await;
    assert_eq!(log[0]["attempts"], 8);
    let webhook: Value = env
        .get(&format!("/api/v1/logs/webhooks/{id}"), &alice)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(webhook["enabled"], false);
    assert!(
        webhook["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("answered 500"),
        "{webhook}"
    );
    let disabled = env.recorded(&admin, "webhook.disabled").await;
    assert_eq!(disabled.len(), 1);
    assert_eq!(disabled[0]["team"], "blue");
    let given_up = hook.hits().last().unwrap().header("webhook-id").to_string();
    assert_eq!(hook.hits().len(), seen, "no attempt after the last");

    // While it is off nothing is sent, not even by hand.
    let delivery_id = log[0]["id"].as_str().unwrap();
    let redeliver = format!("/api/v1/logs/webhooks/{id}/deliveries/{delivery_id}/redeliver");
    let status = env
        .send(Method::POST, &redeliver, &alice, json!({}))
        .await
        .status();
    assert_eq!(status, StatusCode::CONFLICT);

    // Turned on again and redelivered by hand, it arrives with its id.
    hook.answer(200);
    let response = env
        .send(
            Method::PATCH,
            &format!("/api/v1/logs/webhooks/{id}"),
            &alice,
            json!({"enabled": true}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = env.send(Method::POST, &redeliver, &alice, json!({})).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let hits = hook.wait_for(seen + 1).await;
    assert_eq!(hits[seen].header("webhook-id"), given_up);
    assert_eq!(hits[seen].json()["data"]["subject"], post_id.as_str());
    log_until(&env, &alice, &id, "delivered the redelivery", |log| {
        log[0]["state"] == "delivered"
    })
    .await;
    let status = env
        .send(
            Method::POST,
            &format!("/api/v1/logs/webhooks/{id}/deliveries/no-such/redeliver"),
            &alice,
            json!({}),
        )
        .await
        .status();
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_new_one_until_the_overlap_ends() {
    let env = spawn_bots(Default::default(), &[QUICK_SENDER]).await;
    let alice = env.team_manager("alice", "blue").await;
    let hook = receiver().await;
    let (id, old) = created(
        &env,
        &alice,
        json!({"url": hook.url(), "event_types": ["bot.needs_reauth"]}),
    )
    .await;
    let response = env
        .send(
            Method::POST,
            &format!("/api/v1/logs/webhooks/{id}/rotate-secret"),
            &alice,
            json!({}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let rotated: Value = response.json().await.unwrap();
    let new = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert!(rotated["webhook"]["previous_secret_valid_until"].is_string());

    // During the overlap a receiver holding either secret verifies.
    ping(&env, &alice, &id).await;
    let hit = &hook.wait_for(1).await[0];
    assert!(hit.signed_by(&new) && hit.signed_by(&old));

    // A day on, only the new one signs.
    env.app.clock.advance(Duration::from_secs(24 * 3600 + 60));
    let alice = env.login("alice").await;
    ping(&env, &alice, &id).await;
    let hit = &hook.wait_for(2).await[1];
    assert!(hit.signed_by(&new) && !hit.signed_by(&old));
    assert_eq!(hit.header("webhook-signature").split(' ').count(), 1);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let env = spawn_bots(Default::default(), &[QUICK_SENDER]).await;
    let hook = receiver().await;
    let (id, _) = created(
        &env,
        &env.admin,
        json!({"url": format!("{}/redirect", hook.base), "event_types": ["vault.sealed"]}),
    )
    .await;
    let pinged = ping(&env, &env.admin, &id).await;
    assert_eq!(pinged["state"], "failed");
    assert_eq!(pinged["last_status"], 307);
    assert!(
        pinged["last_error"]
            .as_str()
            .unwrap()
            .contains("redirects are not followed")
    );
    assert_eq!(hook.hits().len(), 1);
}

#[tokio::test]
async fn outside_development_only_public_https_targets_are_accepted() {
    let env = spawn_bots(
        Default::default(),
        &[("VIVESPHERE_LOGGING__WEBHOOKS__ALLOW_LOOPBACK", "false")],
    )
    .await;
    let hook = receiver().await;
    for url in [
        hook.url(),
        hook.url().replace("http://", "https://"),
        "https://localhost/hook".to_string(),
        "https://169.254.169.254/latest/meta-data/".to_string(),
        "https://10.1.2.3/hook".to_string(),
        "https://[::ffff:192.168.0.1]/hook".to_string(),
        "https://[fd12::1]/hook".to_string(),
        "http://hooks.example.com/hook".to_string(),
        "https://user:secret@hooks.example.com/hook".to_string(),
    ] {
        let (status, body) = create(
            &env,
            &env.admin,
            json!({"url": url, "event_types": ["vault.sealed"]}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        assert_eq!(body["error_code"], "INVALID_DATA", "{body}");
        assert!(!body.to_string().contains("secret@"), "{body}");
    }
    let (status, body) = create(
        &env,
        &env.admin,
        json!({"url": "https://hooks.example.com/vivesphere", "event_types": ["vault.sealed"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(hook.hits().is_empty());
}
