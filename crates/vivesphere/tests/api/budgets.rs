//! Team budgets against the fake X: crossing the soft threshold and the whole budget is
//! announced once a month; a hard stop holds back the sends that would overrun it, saying
//! why, and lets them go once the budget is raised; only admins set budgets, a team reads
//! its own.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::bots_helpers::{BotEnv, spawn_bots};

async fn set_budget(env: &BotEnv, token: &str, body: Value) -> reqwest::Response {
    env.send(Method::PUT, "/api/v1/bots/budgets/blue", token, body)
        .await
}

#[tokio::test]
async fn a_hard_stop_holds_back_what_would_overrun_and_crossings_are_told_once() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.team_manager("alice", "blue").await;
    let bob = env.team_manager("bob", "red").await;
    let (bot_id, _) = env.bot(&alice, "bluebot").await;
    // The team is told by webhook too.
    let hook = crate::webhook_receiver::receiver().await;
    let subscribed = env
        .send(
            Method::POST,
            "/api/v1/logs/webhooks",
            &alice,
            json!({"url": hook.url(), "event_types": ["usage.threshold", "budget.exceeded"]}),
        )
        .await;
    assert_eq!(subscribed.status(), StatusCode::CREATED);
    // Only admins set budgets: $0.05 a month, told at 80 %, a hard stop.
    let budget = json!({"monthly_micros": 50_000, "soft_threshold_percent": 80, "hard_stop": true});
    assert_eq!(
        set_budget(&env, &alice, budget.clone()).await.status(),
        StatusCode::FORBIDDEN
    );
    let set: Value = set_budget(&env, &env.admin, budget)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (set["monthly"].as_str(), set["standing"].as_str()),
        (Some("0.050000"), Some("ok"))
    );

    // Three posts at $0.015: $0.045 is past 80 % — one usage.threshold.
    for i in 0..3 {
        env.publish_now(&alice, &bot_id, &format!("post {i}")).await;
    }
    let told = env.recorded(&alice, "usage.threshold").await;
    assert_eq!(told.len(), 1);
    assert_eq!(told[0]["team"], "blue");
    assert!(
        told[0]["message"]
            .as_str()
            .unwrap()
            .contains("0.045000 spent"),
        "{}",
        told[0]
    );

    // A fourth would make $0.060: it waits, saying why, and X never sees it; so does a fifth.
    // The budget's month is the platform clock's, in UTC.
    let now = env.app.clock.now();
    let month = format!("{}-{:02}", now.year(), u8::from(now.month()));
    let mut held = Vec::new();
    for i in 3..5 {
        let post = env
            .post(
                &alice,
                &bot_id,
                json!({"text": format!("post {i}"), "publish_now": true}),
            )
            .await;
        let post_id = post["post_id"].as_str().unwrap().to_string();
        let waiting = env
            .wait_until(&alice, &bot_id, &post_id, "held back", |p| {
                p["error"].is_string()
            })
            .await;
        assert_eq!(waiting["state"], "scheduled", "{waiting}");
        let why = waiting["error"].as_str().unwrap();
        assert!(
            why.contains(&format!("team blue's budget for {month}")),
            "{why}"
        );
        held.push(post_id);
    }
    assert_eq!(env.x_requests("POST", "/2/tweets").len(), 3);
    let exceeded = env.recorded(&alice, "budget.exceeded").await;
    assert_eq!(exceeded.len(), 1, "told once: {exceeded:?}");
    hook.wait_for(2).await;
    let told = hook.of_type("budget.exceeded");
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].json()["data"]["team"], "blue");
    assert_eq!(hook.of_type("usage.threshold").len(), 1);

    // The team reads its budget and where it stands; another team does not see it.
    let own: Value = env
        .get("/api/v1/bots/budgets", &alice)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(own["items"][0]["spent_micros"], 45_000);
    assert_eq!(own["items"][0]["standing"], "soft");
    let other: Value = env
        .get("/api/v1/bots/budgets", &bob)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(other["items"], json!([]));

    // Raised, the held posts go at their next look (a quarter of an hour on).
    let raised = json!({"monthly_micros": 100_000, "hard_stop": true});
    assert_eq!(
        set_budget(&env, &env.admin, raised).await.status(),
        StatusCode::OK
    );
    env.app.clock.advance(Duration::from_secs(16 * 60));
    let alice = env.login("alice").await;
    let admin = crate::auth_helpers::admin_token(&env.app).await;
    for post_id in &held {
        env.wait_for(&alice, &bot_id, post_id, &["published"]).await;
    }
    assert_eq!(env.x_requests("POST", "/2/tweets").len(), 5);
    assert_eq!(env.events(&alice, "budget.exceeded").await.len(), 1);
    assert_eq!(hook.hits().len(), 2, "one notice each: {:?}", hook.hits());

    // Bad budgets are refused; removing one is for admins.
    for bad in [
        json!({"monthly_micros": -1}),
        json!({"monthly_micros": 10, "soft_threshold_percent": 0}),
        json!({"monthly_micros": 10, "surprise": true}),
    ] {
        let status = set_budget(&env, &admin, bad.clone()).await.status();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let removed = env
        .send(
            Method::DELETE,
            "/api/v1/bots/budgets/blue",
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    let again = env
        .send(
            Method::DELETE,
            "/api/v1/bots/budgets/blue",
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
}
