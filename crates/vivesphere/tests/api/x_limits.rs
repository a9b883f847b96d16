//! X's posting limits planned for instead of collected as 429s: a burst for one bot goes out
//! at most 100 per 15 minutes (the window X's headers report) and at most 300 per 3 hours
//! (which no header reports: counted from what this service published), the app's 24 hours
//! are kept across bots, and no request is sent into a window known to be spent.

use std::time::Duration;

use serde_json::{Value, json};

use crate::bots_helpers::{BotEnv, spawn_bots};

const MINUTE: Duration = Duration::from_secs(60);

/// Posts X created, and 429s it answered, so far.
fn sent(env: &BotEnv) -> (usize, usize) {
    let requests = env.x_requests("POST", "/2/tweets");
    let with = |status| requests.iter().filter(|r| r.status == status).count();
    (with(201), with(429))
}

/// Waits until X has created `expected` posts, then a moment more to see that no more go.
async fn settles_at(env: &BotEnv, expected: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while sent(env).0 < expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stuck at {:?}",
            sent(env)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(sent(env), (expected, 0), "created, 429s");
}

/// Waits until a post of the bot still scheduled says it waits for `reason` (the held posts
/// are looked at one after another; the first to be says it).
async fn told(env: &BotEnv, user: &str, bot_id: &str, reason: &str) {
    let token = env.login(user).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let page: Value = env
            .get(
                &format!("/api/v1/bots/{bot_id}/posts?state=scheduled&limit=500"),
                &token,
            )
            .await
            .json()
            .await
            .unwrap();
        let items = page["items"].as_array().unwrap();
        if items
            .iter()
            .any(|p| p["error"].as_str().is_some_and(|e| e.contains(reason)))
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no post told {reason:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Posts held back for a day are still wanted: a grace long enough to wait out X's windows.
const PATIENT: (&str, &str) = ("VIVESPHERE_BOT_MANAGER__GRACE_SECONDS", "172800");

fn long_lived_tokens() -> fake_x::Settings {
    fake_x::Settings {
        access_token_ttl: 3 * 86_400,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_burst_of_500_goes_out_within_x_limits_with_no_429() {
    let env = spawn_bots(long_lived_tokens(), &[PATIENT]).await;
    let alice = env.manager("alice").await;
    let (bot_id, _) = env.bot(&alice, "burstbot").await;
    let start = env.app.clock.now();
    for i in 0..500 {
        env.post(
            &alice,
            &bot_id,
            json!({"text": format!("burst post number {i}"), "publish_now": true}),
        )
        .await;
    }
    // X's 15-minute window, from its headers: 100 now, 100 at each reset.
    settles_at(&env, 100).await;
    for expected in [200, 300] {
        env.app.clock.advance(15 * MINUTE + Duration::from_secs(2));
        settles_at(&env, expected).await;
    }
    // 45 minutes in, X's window is open again but the account's 3 hours are spent.
    env.app.clock.advance(15 * MINUTE + Duration::from_secs(2));
    settles_at(&env, 300).await;
    told(&env, "alice", &bot_id, "300 posts per account in 3 hours").await;
    // Three hours after the first hundred they leave the window; then the next hundred.
    env.app.clock.set(start + time::Duration::minutes(190));
    settles_at(&env, 400).await;
    env.app.clock.advance(15 * MINUTE + Duration::from_secs(2));
    settles_at(&env, 500).await;
}

/// Each X app has its own 24 hours: a bot of another app posts while the first app's are
/// spent.
#[tokio::test]
async fn the_apps_24_hours_hold_across_bots_with_no_429() {
    let fake = fake_x::Settings {
        // X's own count is the projects' together; this one holds for both apps here.
        app_daily_post_limit: 10,
        ..long_lived_tokens()
    };
    let env = spawn_bots(
        fake,
        &[
            ("VIVESPHERE_BOT_MANAGER__X_LIMITS__APP_POSTS_PER_24H", "4"),
            PATIENT,
        ],
    )
    .await;
    let alice = env.manager("alice").await;
    let (first, _) = env.bot(&alice, "firstbot").await;
    let (second, _) = env.bot(&alice, "secondbot").await;
    for (bot_id, name) in [(&first, "first"), (&second, "second")] {
        for i in 0..3 {
            let text = format!("{name} bot post {i}");
            env.post(&alice, bot_id, json!({"text": text, "publish_now": true}))
                .await;
        }
        // One bot at a time, so which posts wait is certain.
        let expected = if name == "first" { 3 } else { 4 };
        settles_at(&env, expected).await;
    }
    told(
        &env,
        "alice",
        &second,
        "an app 4 posts in 24 hours; app default's",
    )
    .await;
    let (third, _) = env.bot(&alice, "otherappbot").await;
    env.set_x_app(&alice, &third, "second-app").await;
    env.post(
        &alice,
        &third,
        json!({"text": "from the other app", "publish_now": true}),
    )
    .await;
    settles_at(&env, 5).await;
    // A day later the first four leave the app's window.
    env.app.clock.advance(24 * 60 * MINUTE + MINUTE);
    settles_at(&env, 7).await;
}
