//! Threads end to end against the fake X: parts go out in order, each replying to the one
//! before; a failure midway stops the rest and keeps what was published; resuming sends
//! nothing twice.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::bots_helpers::{BotEnv, spawn_bots};

async fn create_thread(
    env: &BotEnv,
    token: &str,
    bot_id: &str,
    body: Value,
) -> (StatusCode, Value) {
    let path = format!("/api/v1/bots/{bot_id}/threads");
    let response = env.send(Method::POST, &path, token, body).await;
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn thread_action(
    env: &BotEnv,
    token: &str,
    thread: &Value,
    action: &str,
) -> (StatusCode, Value) {
    let path = format!(
        "/api/v1/bots/{}/threads/{}/{action}",
        thread["bot_id"].as_str().unwrap(),
        thread["thread_id"].as_str().unwrap()
    );
    let response = env.send(Method::POST, &path, token, json!({})).await;
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// Reads the thread until its state is one of `states` (20 s at most).
async fn wait_thread(env: &BotEnv, token: &str, thread: &Value, states: &[&str]) -> Value {
    let path = format!(
        "/api/v1/bots/{}/threads/{}",
        thread["bot_id"].as_str().unwrap(),
        thread["thread_id"].as_str().unwrap()
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let now: Value = env.get(&path, token).await.json().await.unwrap();
        if states.contains(&now["state"].as_str().unwrap_or_default()) {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "thread never reached {states:?}: {now}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn parts(texts: &[&str]) -> Value {
    json!(texts.iter().map(|t| json!({"text": t})).collect::<Vec<_>>())
}

fn x_ids(thread: &Value) -> Vec<String> {
    thread["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["x_post_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_thread_goes_out_in_order_each_part_replying_to_the_one_before() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    let (bot_id, _) = env.bot(&alice, "threadbot").await;
    let texts = [
        "Storm update (1/4)",
        "Winds to 90 km/h (2/4)",
        "Piers closed (3/4)",
        "Next update 21:00 (4/4)",
    ];
    let (status, thread) = create_thread(
        &env,
        &alice,
        &bot_id,
        json!({"parts": parts(&texts), "publish_now": true, "reply_settings": "following"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{thread}");
    assert_eq!(thread["parts"].as_array().unwrap().len(), 4);
    let done = wait_thread(&env, &alice, &thread, &["published", "stopped"]).await;
    assert_eq!(done["state"], "published", "{done}");
    let ids = x_ids(&done);
    assert_eq!(env.fake.reply_target(&ids[0]), None);
    for pair in ids.windows(2) {
        assert_eq!(
            env.fake.reply_target(&pair[1]).as_deref(),
            Some(pair[0].as_str())
        );
    }
    let sent: Vec<String> = env
        .x_requests("POST", "/2/tweets")
        .iter()
        .map(|r| r.text.clone().unwrap())
        .collect();
    assert_eq!(sent, texts);
}

#[tokio::test]
async fn a_thread_failing_at_part_3_resumes_without_duplicating_parts_1_and_2() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    let (bot_id, _) = env.bot(&alice, "resumebot").await;
    // The bot already has "Rain by noon." live on X: X refuses the same text again (part 3).
    let earlier = env.publish_now(&alice, &bot_id, "Rain by noon.").await;
    let texts = [
        "Forecast thread (1/4)",
        "Cloudy morning (2/4)",
        "Rain by noon.",
        "Clearing by evening (4/4)",
    ];
    let (_, thread) = create_thread(
        &env,
        &alice,
        &bot_id,
        json!({"parts": parts(&texts), "publish_now": true}),
    )
    .await;
    let stopped = wait_thread(&env, &alice, &thread, &["stopped", "published"]).await;
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    let states: Vec<&str> = stopped["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["published", "published", "failed", "scheduled"]);
    assert!(
        stopped["parts"][2]["error"]
            .as_str()
            .unwrap()
            .contains("duplicate"),
        "{stopped}"
    );
    // Part 4 does not go on its own, however long it waits.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.x_requests("POST", "/2/tweets").len(), 4);

    // The cause goes away (the earlier post is deleted from X); the thread resumes.
    let deleting = env.delete_post(&alice, &bot_id, &earlier).await;
    assert_eq!(deleting.status(), StatusCode::ACCEPTED);
    env.wait_for(&alice, &bot_id, &earlier, &["deleted"]).await;
    let (status, resumed) = thread_action(&env, &alice, &thread, "resume").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{resumed}");
    let done = wait_thread(&env, &alice, &thread, &["published"]).await;
    let ids = x_ids(&done);
    for pair in ids.windows(2) {
        assert_eq!(
            env.fake.reply_target(&pair[1]).as_deref(),
            Some(pair[0].as_str())
        );
    }
    // Parts 1 and 2 went to X once each; part 3 twice (refused, then sent) after the earlier
    // post with its text; part 4 once.
    let sent: Vec<String> = env
        .x_requests("POST", "/2/tweets")
        .iter()
        .map(|r| r.text.clone().unwrap())
        .collect();
    for (text, times) in [(texts[0], 1), (texts[1], 1), (texts[2], 3), (texts[3], 1)] {
        assert_eq!(
            sent.iter().filter(|s| *s == text).count(),
            times,
            "{text}: {sent:?}"
        );
    }
    for text in texts {
        assert_eq!(env.fake.live_posts_with_text(text), 1, "{text}");
    }
    // Resuming a finished thread is refused.
    let (status, _) = thread_action(&env, &alice, &thread, "resume").await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_scheduled_thread_waits_for_its_time_and_cancels_as_one() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    let (bot_id, _) = env.bot(&alice, "laterbot").await;
    let (status, drafts) = create_thread(
        &env,
        &alice,
        &bot_id,
        json!({"parts": parts(&["One (1/2)", "Two (2/2)"])}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(drafts["state"], "draft");
    let path = format!(
        "/api/v1/bots/{bot_id}/threads/{}/schedule",
        drafts["thread_id"].as_str().unwrap()
    );
    let scheduled = env
        .send(
            Method::POST,
            &path,
            &alice,
            json!({"run_at": env.in_ms(3_600_000)}),
        )
        .await;
    assert_eq!(scheduled.status(), StatusCode::OK);
    let scheduled: Value = scheduled.json().await.unwrap();
    assert_eq!(scheduled["state"], "scheduled");
    // One part alone cannot be published, scheduled or cancelled: the thread acts as one.
    let part = scheduled["parts"][1]["post_id"].as_str().unwrap();
    let path = format!("/api/v1/bots/{bot_id}/posts/{part}/publish");
    let alone = env.send(Method::POST, &path, &alice, json!({})).await;
    assert_eq!(alone.status(), StatusCode::CONFLICT);
    let body: Value = alone.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("thread"),
        "{body}"
    );
    let (status, cancelled) = thread_action(&env, &alice, &scheduled, "cancel").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cancelled["state"], "cancelled");
    env.app.clock.advance(Duration::from_secs(3_600));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(env.x_requests("POST", "/2/tweets").is_empty());
}

#[tokio::test]
async fn a_thread_needs_two_to_25_parts_and_waits_for_review_where_required() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    let (bot_id, _) = env.bot(&alice, "shapebot").await;
    for count in [0usize, 1, 26] {
        let texts: Vec<String> = (0..count).map(|i| format!("part {i}")).collect();
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        let (status, body) =
            create_thread(&env, &alice, &bot_id, json!({"parts": parts(&texts)})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{count}: {body}");
    }
    let require = env
        .send(
            Method::PUT,
            &format!("/api/v1/bots/{bot_id}/review-policy"),
            &alice,
            json!({"approval_required": true}),
        )
        .await;
    assert_eq!(require.status(), StatusCode::OK);
    let (status, body) = create_thread(
        &env,
        &alice,
        &bot_id,
        json!({"parts": parts(&["a (1/2)", "b (2/2)"]), "publish_now": true}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("review"),
        "{body}"
    );
    let (status, drafts) = create_thread(
        &env,
        &alice,
        &bot_id,
        json!({"parts": parts(&["a (1/2)", "b (2/2)"])}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = thread_action(&env, &alice, &drafts, "publish").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(env.x_requests("POST", "/2/tweets").is_empty());
}

#[tokio::test]
async fn a_thread_on_a_reviewed_bot_goes_out_once_every_part_is_approved() {
    let env = spawn_bots(Default::default(), &[]).await;
    let mia = env.team_member("mia", "Manager", "news").await;
    let eli = env.team_member("eli", "Editor", "news").await;
    let (bot_id, _) = env.bot(&mia, "reviewedthreads").await;
    let path = format!("/api/v1/bots/{bot_id}/review-policy");
    let require = json!({"approval_required": true});
    assert_eq!(
        env.send(Method::PUT, &path, &mia, require).await.status(),
        StatusCode::OK
    );
    let texts = [
        "Road works (1/3)",
        "Harbour Street closed (2/3)",
        "Until Friday (3/3)",
    ];
    let (status, thread) =
        create_thread(&env, &eli, &bot_id, json!({"parts": parts(&texts)})).await;
    assert_eq!(status, StatusCode::CREATED, "{thread}");
    let (status, refused) = thread_action(&env, &eli, &thread, "publish").await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("1 (draft), 2 (draft), 3 (draft)"),
        "{refused}"
    );

    let review = |part: &Value, action: &str| {
        format!(
            "/api/v1/bots/{bot_id}/posts/{}/{action}",
            part["post_id"].as_str().unwrap()
        )
    };
    let mut submitted = Vec::new();
    for part in thread["parts"].as_array().unwrap() {
        let response = env
            .send(Method::POST, &review(part, "submit"), &eli, json!({}))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        submitted.push(response.json::<Value>().await.unwrap());
    }
    for part in &submitted[..2] {
        let body = json!({"content_version": part["content_version"]});
        let response = env
            .send(Method::POST, &review(part, "approve"), &mia, body)
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let (status, refused) = thread_action(&env, &eli, &thread, "publish").await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("3 (pending_review)"),
        "{refused}"
    );
    let path = format!(
        "/api/v1/bots/{bot_id}/threads/{}",
        thread["thread_id"].as_str().unwrap()
    );
    let now: Value = env.get(&path, &eli).await.json().await.unwrap();
    assert_eq!(now["state"], "in_review");

    let body = json!({"content_version": submitted[2]["content_version"]});
    let response = env
        .send(Method::POST, &review(&submitted[2], "approve"), &mia, body)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let now: Value = env.get(&path, &eli).await.json().await.unwrap();
    assert_eq!(now["state"], "approved");
    let (status, scheduled) = thread_action(&env, &eli, &thread, "publish").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{scheduled}");
    let done = wait_thread(&env, &eli, &thread, &["published", "stopped"]).await;
    assert_eq!(done["state"], "published", "{done}");
    let ids = x_ids(&done);
    assert_eq!(
        env.fake.reply_target(&ids[2]).as_deref(),
        Some(ids[1].as_str())
    );
    let sent: Vec<String> = env
        .x_requests("POST", "/2/tweets")
        .iter()
        .map(|r| r.text.clone().unwrap())
        .collect();
    assert_eq!(sent, texts);
}
