//! Recurring posts end to end against the fake X: occurrences become posts a week ahead, in
//! the bot's time zone; a paused rule resumed, or one left through an outage, never fires the
//! occurrences it missed; a rule whose occurrences would repeat a text is refused (X refuses
//! the same text from one account while the first is up).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::bots_helpers::{BotEnv, spawn_bots};

async fn create(env: &BotEnv, token: &str, bot_id: &str, body: Value) -> (StatusCode, Value) {
    let path = format!("/api/v1/bots/{bot_id}/recurrences");
    let response = env.send(Method::POST, &path, token, body).await;
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn act(env: &BotEnv, token: &str, rule: &Value, method: Method, action: &str) -> Value {
    let path = format!(
        "/api/v1/bots/{}/recurrences/{}{action}",
        rule["bot_id"].as_str().unwrap(),
        rule["recurrence_id"].as_str().unwrap()
    );
    let response = env.send(method, &path, token, json!({})).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{action}: {body}");
    body
}

fn noon_daily(count: u32) -> Value {
    json!({"texts": ["Noon tide table for {date}."],
           "rule": {"every": "day", "at": "12:00", "starts_on": "2031-03-14", "count": count}})
}

fn made(rule: &Value) -> Vec<(i64, String, String)> {
    rule["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["occurrence"].as_i64().unwrap(),
                o["post"]["run_at"].as_str().unwrap().to_string(),
                o["post"]["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// What X published (a send X refused, such as one with an expired token, is not).
fn sent_texts(env: &BotEnv) -> Vec<String> {
    env.x_requests("POST", "/2/tweets")
        .iter()
        .filter(|r| r.status == 201)
        .map(|r| r.text.clone().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn a_paused_recurring_post_resumed_does_not_fire_the_missed_occurrences() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    let (bot_id, _) = env.bot(&alice, "tidebot").await;
    let (status, rule) = create(&env, &alice, &bot_id, noon_daily(30)).await;
    assert_eq!(status, StatusCode::CREATED, "{rule}");
    assert_eq!(rule["state"], "active");
    assert_eq!(rule["occurrences"], 30);
    // A week ahead of 2031-03-14 09:00: the 14th to the 20th.
    let week = made(&rule);
    assert_eq!(week.len(), 7, "{rule}");
    assert_eq!(
        week[0],
        (1, "2031-03-14T12:00:00Z".into(), "scheduled".into())
    );
    assert_eq!(week[6].1, "2031-03-20T12:00:00Z");
    assert_eq!(
        rule["posts"][0]["post"]["text"],
        "Noon tide table for 2031-03-14."
    );
    assert_eq!(rule["next_occurrence_at"], "2031-03-21T12:00:00Z");

    env.app.clock.advance(Duration::from_secs(3 * 3600 + 60));
    let alice = env.login("alice").await;
    let first = rule["posts"][0]["post"]["post_id"].as_str().unwrap();
    env.wait_for(&alice, &bot_id, first, &["published"]).await;

    let paused = act(&env, &alice, &rule, Method::POST, "/pause").await;
    assert_eq!(paused["state"], "paused");
    assert_eq!(
        made(&paused),
        [(1, "2031-03-14T12:00:00Z".into(), "published".into())]
    );
    assert_eq!(paused["next_occurrence_at"], "2031-03-15T12:00:00Z");

    // Five days and a half later (past each missed occurrence's grace of an hour).
    env.app
        .clock
        .advance(Duration::from_secs(5 * 86_400 + 90 * 60));
    let alice = env.login("alice").await;
    let resumed = act(&env, &alice, &rule, Method::POST, "/resume").await;
    assert_eq!(resumed["state"], "active");
    assert_eq!(resumed["skipped"], 5, "the 15th to the 19th: {resumed}");
    let ahead = made(&resumed);
    assert_eq!(ahead.len(), 8, "{resumed}");
    assert_eq!(
        ahead[1],
        (7, "2031-03-20T12:00:00Z".into(), "scheduled".into())
    );
    assert_eq!(ahead[7].1, "2031-03-26T12:00:00Z");
    assert_eq!(sent_texts(&env), ["Noon tide table for 2031-03-14."]);

    // To the 20th, 12:01.
    env.app
        .clock
        .advance(Duration::from_secs(22 * 3600 + 30 * 60));
    let alice = env.login("alice").await;
    let next = resumed["posts"][1]["post"]["post_id"].as_str().unwrap();
    env.wait_for(&alice, &bot_id, next, &["published"]).await;
    assert_eq!(
        sent_texts(&env),
        [
            "Noon tide table for 2031-03-14.",
            "Noon tide table for 2031-03-20."
        ]
    );

    let ended = act(&env, &alice, &rule, Method::DELETE, "").await;
    assert_eq!(ended["state"], "ended");
    let states: Vec<String> = made(&ended).into_iter().map(|(_, _, s)| s).collect();
    assert_eq!(states[..2], ["published", "published"]);
    assert!(states[2..].iter().all(|s| s == "cancelled"), "{states:?}");
}

#[tokio::test]
async fn after_an_outage_a_recurring_post_carries_on_without_firing_in_bulk() {
    let env = spawn_bots(
        Default::default(),
        &[("VIVESPHERE_BOT_MANAGER__RECURRENCE_INTERVAL_SECONDS", "1")],
    )
    .await;
    let alice = env.manager("alice").await;
    let (bot_id, _) = env.bot(&alice, "outagebot").await;
    let (status, rule) = create(&env, &alice, &bot_id, noon_daily(20)).await;
    assert_eq!(status, StatusCode::CREATED, "{rule}");
    assert_eq!(made(&rule).len(), 7);

    // Nothing ran for three days: four occurrences are past their time and grace.
    env.app
        .clock
        .advance(Duration::from_secs(3 * 86_400 + 4 * 3600 + 30 * 60));
    let alice = env.login("alice").await;
    let path = format!(
        "/api/v1/bots/{bot_id}/recurrences/{}",
        rule["recurrence_id"].as_str().unwrap()
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    // The rule and its posts are two reads: a round of the materialiser between them shows
    // the new post beside the old next occurrence, so wait for both to have moved on.
    let now = loop {
        let now: Value = env.get(&path, &alice).await.json().await.unwrap();
        let states: Vec<String> = made(&now).into_iter().map(|(_, _, s)| s).collect();
        let missed = states.iter().filter(|s| *s == "missed").count();
        if states.len() == 11 && missed == 4 && now["next_occurrence_at"] == "2031-03-25T12:00:00Z"
        {
            break now;
        }
        assert!(tokio::time::Instant::now() < deadline, "{now}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The materialiser made the 21st to the 24th (a week ahead of the 17th, 13:30), and
    // never more: the 25th waits for its week.
    assert_eq!(made(&now)[10].1, "2031-03-24T12:00:00Z");
    assert!(sent_texts(&env).is_empty(), "nothing was sent late");
}

#[tokio::test]
async fn a_rule_that_would_repeat_a_text_or_never_end_is_refused() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    let (bot_id, _) = env.bot(&alice, "rulebot").await;
    let daily = |texts: Value, count: u32| {
        json!({"texts": texts,
               "rule": {"every": "day", "at": "08:00", "starts_on": "2031-03-15", "count": count}})
    };
    let (status, body) = create(&env, &alice, &bot_id, daily(json!(["Good morning!"]), 3)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("occurrences 1 and 2"),
        "{body}"
    );
    let two = json!(["Good morning!", "Morning, harbour!"]);
    let (status, body) = create(&env, &alice, &bot_id, daily(two.clone(), 3)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("occurrences 1 and 3")
    );
    let (status, body) = create(&env, &alice, &bot_id, daily(two, 2)).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "as many variants as occurrences: {body}"
    );

    for (rule, field) in [
        (
            json!({"every": "day", "at": "08:00", "starts_on": "2031-03-15"}),
            "rule:",
        ),
        (
            json!({"every": "day", "at": "8am", "starts_on": "2031-03-15", "count": 2}),
            "rule.at",
        ),
        (
            json!({"every": "week", "at": "08:00", "starts_on": "2031-03-15", "count": 2}),
            "rule.days",
        ),
        (
            json!({"every": "day", "at": "08:00", "starts_on": "2030-01-01", "count": 2}),
            "rule:",
        ),
        (
            json!({"every": "day", "at": "08:00", "starts_on": "2031-03-15", "until": "2035-01-01"}),
            "rule:",
        ),
    ] {
        let body = json!({"texts": ["Harbour report {date}"], "rule": rule});
        let (status, refused) = create(&env, &alice, &bot_id, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
        assert!(
            refused["message"].as_str().unwrap().starts_with(field),
            "{refused}"
        );
    }

    // The same text from another bot: X's automation rules refuse it, occurrence by
    // occurrence, and the rule says so.
    let (other, _) = env.bot(&alice, "otherbot").await;
    let shared = json!({"texts": ["Harbour opens at 06:00 on {date}."],
        "rule": {"every": "day", "at": "06:00", "starts_on": "2031-03-16", "count": 3}});
    let (status, first) = create(&env, &alice, &bot_id, shared.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(made(&first).len(), 3);
    let (status, copy) = create(&env, &alice, &other, shared).await;
    assert_eq!(status, StatusCode::CREATED, "{copy}");
    assert_eq!(copy["refused"], 3, "{copy}");
    assert!(made(&copy).is_empty());
    assert!(
        copy["last_refusal"]
            .as_str()
            .unwrap()
            .contains("another bot"),
        "{copy}"
    );

    let viewer = env.team_member("vera", "Viewer", "harbour").await;
    let (status, _) = create(&env, &viewer, &bot_id, noon_daily(2)).await;
    assert!(
        matches!(status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
        "{status}"
    );
}
