//! The usage meter against the fake X: every post X created (dearer with a URL), every
//! delete and every read of the bot's own data, priced from the live price table when it
//! happened, summed exactly by kind, bot, team and day, scoped like bots, and as CSV.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::bots_helpers::{BotEnv, spawn_bots};

async fn usage(env: &BotEnv, token: &str, query: &str) -> Value {
    let response = env.get(&format!("/api/v1/bots/usage?{query}"), token).await;
    assert_eq!(response.status(), StatusCode::OK, "usage?{query}");
    response.json().await.unwrap()
}

/// `(units, cost_micros)` of `kind` in a report.
fn of_kind(report: &Value, kind: &str) -> (i64, i64) {
    report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|line| line["kind"] == kind)
        .fold((0, 0), |(units, cost), line| {
            (
                units + line["units"].as_i64().unwrap(),
                cost + line["cost_micros"].as_i64().unwrap(),
            )
        })
}

async fn publish(env: &BotEnv, token: &str, bot_id: &str, text: &str) -> Value {
    let post = env
        .post(token, bot_id, json!({"text": text, "publish_now": true}))
        .await;
    let post_id = post["post_id"].as_str().unwrap();
    env.wait_for(token, bot_id, post_id, &["published"]).await
}

/// Sets a central setting and waits until the Bot Manager has it in effect.
async fn set_price(env: &BotEnv, key: &str, micros: i64) {
    let written: Value = env
        .send(
            Method::POST,
            "/api/v1/config/update",
            &env.admin,
            json!({"service": "bot-manager", "settings": {key: micros}}),
        )
        .await
        .json()
        .await
        .unwrap();
    let revision = written["revision"].clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let health: Value = env
            .get("/api/v1/bots/health", &env.admin)
            .await
            .json()
            .await
            .unwrap();
        if health["config"]["revision"] == revision {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{health}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn costs_add_up_exactly_by_kind_and_follow_the_live_price_table() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.team_manager("alice", "blue").await;
    let bob = env.team_manager("bob", "red").await;
    let (bot_id, _) = env.bot(&alice, "bluebot").await;
    for i in 0..3 {
        publish(&env, &alice, &bot_id, &format!("plain post number {i}")).await;
    }
    let mut linked = Vec::new();
    for i in 0..2 {
        let text = format!("linked post {i}: https://example.com/{i}");
        linked.push(publish(&env, &alice, &bot_id, &text).await);
    }
    // 3 × $0.015 + 2 × $0.20, exactly.
    let report = usage(&env, &alice, "group=kind").await;
    assert_eq!(of_kind(&report, "post"), (3, 45_000), "{report}");
    assert_eq!(of_kind(&report, "post_with_url"), (2, 400_000), "{report}");
    assert_eq!(report["totals"][0]["currency"], "USD");
    assert_eq!(report["totals"][0]["cost_micros"], 445_000);
    assert_eq!(report["totals"][0]["cost"], "0.445000");

    // A new price applies to what happens after it, not to what was billed.
    set_price(&env, "bot_manager.pricing.post_micros", 20_000).await;
    publish(&env, &alice, &bot_id, "a post at the new price").await;
    let report = usage(&env, &alice, "group=kind").await;
    assert_eq!(of_kind(&report, "post"), (4, 65_000), "{report}");

    // A delete is metered once it is done; reads of the bot's own data per answer.
    let post_id = linked[0]["post_id"].as_str().unwrap();
    let deleted = env.delete_post(&alice, &bot_id, post_id).await;
    assert_eq!(deleted.status(), StatusCode::ACCEPTED);
    env.wait_for(&alice, &bot_id, post_id, &["deleted"]).await;
    let refreshed = env.refresh_metrics(&alice, &bot_id).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let report = usage(&env, &alice, "group=kind").await;
    assert_eq!(of_kind(&report, "delete"), (1, 0), "{report}");
    let (reads, read_cost) = of_kind(&report, "read");
    assert!(reads >= 1, "{report}");
    assert_eq!(read_cost, reads * 1_000);

    // By bot, by team, by UTC day (the test clock's), and scoped like bots.
    let by_bot = usage(&env, &alice, "group=bot").await;
    assert!(
        by_bot["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["key"] == bot_id.as_str())
    );
    let by_team = usage(&env, &env.admin, "group=team").await;
    assert!(
        by_team["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["key"] == "blue")
    );
    let by_day = usage(&env, &alice, "group=day").await;
    // The UTC day of the platform clock, on which everything above was billed.
    let today = env.app.clock.now().date().to_string();
    assert_eq!(by_day["items"][0]["key"], today.as_str(), "{by_day}");
    assert_eq!(usage(&env, &bob, "").await["items"], json!([]));
    let others = env
        .get(&format!("/api/v1/bots/usage?bot_id={bot_id}"), &bob)
        .await;
    assert_eq!(others.status(), StatusCode::NOT_FOUND);
    // A window before it all is empty; a bad group or format is a 400.
    const DAY_MS: i64 = 86_400_000;
    let window = format!("from={}&to={}", env.in_ms(-14 * DAY_MS), env.in_ms(-DAY_MS));
    let before = usage(&env, &alice, &window).await;
    assert_eq!(before["items"], json!([]));
    for bad in ["group=week", "format=xml", "from=yesterday"] {
        let response = env.get(&format!("/api/v1/bots/usage?{bad}"), &alice).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }

    // The same on /metrics, for the dashboards: what was billed, at the prices then.
    let metrics = env.app.get("/metrics").await.text().await.unwrap();
    for sample in [
        "vivesphere_bot_x_cost_micros_total{kind=\"post\",currency=\"USD\"} 65000",
        "vivesphere_bot_x_cost_micros_total{kind=\"post_with_url\",currency=\"USD\"} 400000",
        "vivesphere_bot_x_usage_units_total{kind=\"post\",currency=\"USD\"} 4",
    ] {
        assert!(metrics.contains(sample), "{sample} missing");
    }

    // The same as CSV.
    let csv = env
        .get("/api/v1/bots/usage?group=kind&format=csv", &alice)
        .await;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("key,kind,currency,units,cost"));
    assert!(
        text.contains("\"post_with_url\",\"post_with_url\",\"USD\",\"2\",\"0.400000\""),
        "{text}"
    );
}
