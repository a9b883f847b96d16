//! Who acted, on which bot, in which team: every event names its actor in separate fields
//! (a user's id and name, or the service that acted), carries the bot it concerns and a
//! message naming it, shows its time in RFC 3339, and Managers read only their own and
//! their team's events, as the Bot Manager scopes bots; admins read everything.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::auth_helpers::subject_of;
use crate::bots_helpers::{BotEnv, spawn_bots};

async fn events(env: &BotEnv, token: &str, query: &str) -> Vec<Value> {
    let response = env
        .get(&format!("/api/v1/logs/events?limit=500&{query}"), token)
        .await;
    assert_eq!(response.status(), StatusCode::OK, "events?{query}");
    let body: Value = response.json().await.unwrap();
    body["items"].as_array().unwrap().clone()
}

/// Polls until the admin sees at least one event for `query` (the queue is asynchronous).
async fn first_event(env: &BotEnv, query: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(event) = events(env, &env.admin, query).await.into_iter().next() {
            return event;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no event for {query}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn events_name_actor_and_bot_and_managers_read_their_team_only() {
    let env = spawn_bots(fake_x::Settings::default(), &[]).await;
    let blue = env.team_manager("blue_lead", "blue").await;
    let red = env.team_manager("red_lead", "red").await;
    let blue_id = subject_of(&blue);
    let (bot_id, _) = env.bot(&blue, "blue_herald").await;
    let post = env
        .post(
            &blue,
            &bot_id,
            json!({"text": "Hello from blue", "publish_now": true}),
        )
        .await;
    let post_id = post["post_id"].as_str().unwrap();
    env.wait_for(&blue, &bot_id, post_id, &["published"]).await;

    // A person acted: their id and name, the bot, its team, a message naming the bot.
    let created = first_event(&env, &format!("bot_id={bot_id}&action=bot.created")).await;
    assert_eq!(created["actor_id"], blue_id.as_str(), "{created}");
    assert_eq!(created["actor_name"], "blue_lead");
    assert_eq!(created["actor_service"], Value::Null);
    assert_eq!(created["team"], "blue");
    assert!(
        created["message"]
            .as_str()
            .unwrap()
            .contains("blue_herald (@blue_herald)"),
        "{created}"
    );
    let time = created["time"].as_str().expect("an RFC 3339 time");
    let time = OffsetDateTime::parse(time, &Rfc3339).unwrap();
    let age = env.app.clock.now() - time;
    assert!(
        age >= time::Duration::ZERO && age < time::Duration::minutes(1),
        "{age}"
    );
    // The service acted: its name, and no user.
    let published = first_event(&env, &format!("bot_id={bot_id}&action=post.published")).await;
    assert_eq!(published["actor_service"], "bot-manager", "{published}");
    assert_eq!(published["actor_id"], Value::Null);
    assert_eq!(published["team"], "blue");
    assert!(
        published["message"]
            .as_str()
            .unwrap()
            .contains("blue_herald")
    );
    // Logins carry the user's team too.
    let login = first_event(&env, &format!("actor_id={blue_id}&action=login.succeeded")).await;
    assert_eq!(
        (&login["actor_name"], &login["team"]),
        (&json!("blue_lead"), &json!("blue"))
    );

    // Blue's Manager reads the bot's events; red's reads none of them, nor blue's logins,
    // nor the admin's; the admin reads everything.
    let of_the_bot = format!("bot_id={bot_id}");
    assert!(events(&env, &blue, &of_the_bot).await.len() >= 2);
    assert_eq!(events(&env, &red, &of_the_bot).await, Vec::<Value>::new());
    let red_view = events(&env, &red, "category=user_activity").await;
    assert!(!red_view.is_empty(), "red's Manager sees its own login");
    for event in &red_view {
        assert!(
            event["team"] == "red" || event["actor_name"] == "red_lead",
            "{event}"
        );
    }
    let everything = events(&env, &env.admin, "category=user_activity").await;
    assert!(everything.iter().any(|e| e["team"] == "blue"));
    assert!(everything.iter().any(|e| e["team"] == "red"));
    assert!(everything.iter().any(|e| e["actor_name"] == "admin"));
    // The export is scoped the same way.
    let export = env
        .get(
            &format!("/api/v1/logs/export?format=ndjson&{of_the_bot}"),
            &red,
        )
        .await;
    let text = export.text().await.unwrap();
    assert!(!text.contains(&bot_id), "{text}");
}
