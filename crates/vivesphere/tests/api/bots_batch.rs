//! `POST /api/v1/bots/batch` and the console's batch buttons on it: one action on many bots,
//! each bot's change made as its own request would be (its permission, scope and checks),
//! an outcome per bot, and one activity record for the batch naming the person.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::auth_helpers::PASSWORD;
use crate::bots_helpers::{BotEnv, spawn_bots};
use crate::console_helpers::Visitor;

async fn batch(env: &BotEnv, token: &str, body: Value) -> (StatusCode, Value) {
    let response = env
        .send(Method::POST, "/api/v1/bots/batch", token, body)
        .await;
    let status = response.status();
    (status, response.json().await.unwrap())
}

fn refused_once() -> fake_x::Fault {
    fake_x::Fault {
        method: "POST".into(),
        path: "/2/tweets".into(),
        kind: fake_x::FaultKind::Status,
        status: Some(403),
        delay_ms: None,
        times: 1,
    }
}

#[tokio::test]
async fn a_batch_retries_failed_posts_and_cancels_scheduled_ones_bot_by_bot_and_is_recorded_once() {
    let env = spawn_bots(Default::default(), &[]).await;
    let north = env.team_manager("north_lead", "north").await;
    let south = env.team_manager("south_lead", "south").await;
    let viewer = env.team_member("north_viewer", "Viewer", "north").await;
    let (first, _) = env.bot(&north, "firstbot").await;
    let (second, _) = env.bot(&north, "secondbot").await;
    let (theirs, _) = env.bot(&south, "theirbot").await;
    for (bot, text) in [
        (&first, "Morning."),
        (&first, "Noon."),
        (&second, "Evening."),
    ] {
        let at = env.in_ms(3_600_000);
        env.post(&north, bot, json!({"text": text, "run_at": at}))
            .await;
    }
    // X refuses one post once: it fails, and a retry sends it again.
    env.fake.add_fault(refused_once());
    let failed = env
        .post(
            &north,
            &second,
            json!({"text": "Refused once.", "publish_now": true}),
        )
        .await;
    let failed_id = failed["post_id"].as_str().unwrap().to_string();
    let failed = env
        .wait_for(&north, &second, &failed_id, &["published", "failed"])
        .await;
    assert_eq!(failed["state"], "failed", "{failed}");

    let (status, answer) = batch(
        &env,
        &viewer,
        json!({"action": "cancel_scheduled", "bot_ids": [first]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["items"][0]["ok"], false,
        "a Viewer may not: {answer}"
    );
    assert_eq!(answer["items"][0]["error_code"], "FORBIDDEN", "{answer}");

    let body = json!({"action": "cancel_scheduled", "bot_ids": [first, theirs, second]});
    let (status, answer) = batch(&env, &north, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        (answer["succeeded"].as_u64(), answer["refused"].as_u64()),
        (Some(2), Some(1))
    );
    let cancel_batch = answer["batch_id"].clone();
    let items = answer["items"].as_array().unwrap();
    assert_eq!(items[0]["changed"], 2, "{answer}");
    assert_eq!(
        items[1]["error_code"], "NOT_FOUND",
        "another team's bot is not found: {answer}"
    );
    assert_eq!(items[2]["changed"], 1, "{answer}");
    let scheduled: Value = env
        .get("/api/v1/bots/posts?state=scheduled", &north)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        scheduled["items"].as_array().unwrap().len(),
        0,
        "{scheduled}"
    );

    let (_, answer) = batch(
        &env,
        &north,
        json!({"action": "retry_failed", "bot_ids": [second]}),
    )
    .await;
    assert_eq!(answer["items"][0]["changed"], 1, "{answer}");
    let sent = env
        .wait_for(&north, &second, &failed_id, &["published", "failed"])
        .await;
    assert_eq!(sent["state"], "published", "sent again: {sent}");
    let again = env
        .send(
            Method::POST,
            &format!("/api/v1/bots/{second}/posts/{failed_id}/retry"),
            &north,
            json!({}),
        )
        .await;
    assert_eq!(
        again.status(),
        StatusCode::CONFLICT,
        "only a failed post is sent again"
    );

    // One record per batch, naming the person, the action and how it went.
    // The records travel through the queue; they arrive in their own time.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    let cancel = loop {
        let records = env.events(&env.admin, "bots.batch").await;
        if let Some(found) = records
            .iter()
            .find(|r| r["data"]["subject"] == cancel_batch)
        {
            break found.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{cancel_batch} in {records:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(
        cancel["data"]["details"]["action"], "cancel_scheduled",
        "{cancel}"
    );
    assert_eq!(cancel["data"]["details"]["bots"], 3, "{cancel}");
    assert_eq!(cancel["actor_name"], "north_lead", "{cancel}");
    assert_eq!(
        cancel["data"]["details"]["refused_bot_ids"],
        json!([theirs]),
        "{cancel}"
    );
    assert_eq!(cancel["data"]["details"]["changes"], 3, "{cancel}");

    // The console's buttons are this route: its summary is the API's answer.
    let at = env.in_ms(3_600_000);
    env.post(&north, &first, json!({"text": "Dusk.", "run_at": at}))
        .await;
    let mut visitor = Visitor::new(&env.app);
    let csrf = visitor.sign_in("north_lead", PASSWORD).await.csrf();
    let fields = [
        ("csrf", csrf.as_str()),
        ("action", "cancel-selected"),
        ("bot_id", first.as_str()),
    ];
    let page = visitor.post("/console/bots/batch", &fields).await;
    assert!(
        page.html
            .contains("1 of 1 bots done: 1 scheduled posts cancelled."),
        "{}",
        page.html
    );

    let (status, body) = batch(
        &env,
        &north,
        json!({"action": "explode", "bot_ids": [first]}),
    )
    .await;
    assert!(status.is_client_error(), "{status}: {body}");
    let (status, _) = batch(&env, &north, json!({"action": "pause", "bot_ids": []})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}
