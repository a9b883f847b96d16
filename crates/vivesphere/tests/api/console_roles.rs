//! The console adds no permission of its own: for a Viewer, an Editor and a Manager of one
//! team, each action is done once through the API and once through the console (on twin bots),
//! and the console allows exactly what the API allows — refusing with the API's own status.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::auth_helpers::PASSWORD;
use crate::bots_helpers::{BotEnv, spawn_bots};
use crate::console_helpers::Visitor;

/// What one role could do, through each door.
#[derive(Debug, PartialEq)]
struct Allowed {
    read_fleet: bool,
    read_logs: bool,
    read_settings: bool,
    pause: bool,
    write_post: bool,
    reveal: Result<(), StatusCode>,
}

async fn status_of(env: &BotEnv, token: &str, bot_id: &str) -> String {
    let bot: Value = env
        .get(&format!("/api/v1/bots/{bot_id}"), token)
        .await
        .json()
        .await
        .unwrap();
    bot["status"].as_str().unwrap().to_string()
}

/// Refused with 403 or 404 as the API answers it; anything else is a broken test.
fn outcome(status: StatusCode) -> Result<(), StatusCode> {
    if status.is_success() || status == StatusCode::SEE_OTHER {
        Ok(())
    } else {
        assert!(
            matches!(status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
            "{status}"
        );
        Err(status)
    }
}

async fn through_the_api(
    env: &BotEnv,
    token: &str,
    lead: &str,
    bot_id: &str,
    role: &str,
) -> Allowed {
    let ok = |response: reqwest::Response| response.status().is_success();
    let paused = env
        .send(
            Method::POST,
            &format!("/api/v1/bots/{bot_id}/status"),
            token,
            json!({"status": "paused"}),
        )
        .await;
    let posted = env
        .send(
            Method::POST,
            &format!("/api/v1/bots/{bot_id}/posts"),
            token,
            json!({"text": format!("An API post by the {role}."), "run_at": env.in_ms(3_600_000)}),
        )
        .await;
    let revealed = env
        .send(
            Method::POST,
            &format!("/api/v1/botdata/bots/{bot_id}/fields/oauth_access_token/reveal"),
            token,
            json!({}),
        )
        .await;
    Allowed {
        read_fleet: ok(env.get("/api/v1/bots", token).await),
        read_logs: ok(env.get("/api/v1/logs/events", token).await),
        read_settings: ok(env.get("/api/v1/config/catalog", token).await),
        pause: ok(paused) && status_of(env, lead, bot_id).await == "paused",
        write_post: ok(posted),
        reveal: outcome(revealed.status()),
    }
}

async fn through_the_console(
    env: &BotEnv,
    username: &str,
    lead: &str,
    bot_id: &str,
    role: &str,
) -> Allowed {
    let mut visitor = Visitor::new(&env.app);
    let fleet = visitor.sign_in(username, PASSWORD).await;
    let csrf = fleet.csrf();
    let read_fleet = fleet.status == StatusCode::OK && fleet.html.contains(bot_id);
    let logs = visitor.get("/console/logs").await;
    let settings = visitor.get("/console/settings").await;
    let batch = visitor
        .post(
            "/console/bots/batch",
            &[
                ("csrf", &csrf),
                ("bot_id", bot_id),
                ("action", "pause-selected"),
            ],
        )
        .await;
    assert_eq!(batch.status, StatusCode::OK, "{}", batch.html);
    let post = visitor
        .post(
            &format!("/console/bots/{bot_id}/posts"),
            &[
                ("csrf", &csrf),
                ("text", &format!("A console post by the {role}.")),
                ("when", "schedule"),
                ("run_at", "2031-03-14T11:00"),
            ],
        )
        .await;
    let reveal = format!("/console/bots/{bot_id}/secrets/oauth_access_token/reveal");
    let revealed = visitor.post(&reveal, &[("csrf", &csrf)]).await;
    Allowed {
        read_fleet,
        read_logs: logs.status == StatusCode::OK,
        read_settings: settings.status == StatusCode::OK,
        pause: status_of(env, lead, bot_id).await == "paused",
        write_post: post.status == StatusCode::SEE_OTHER,
        reveal: outcome(revealed.status),
    }
}

#[tokio::test]
async fn a_viewer_an_editor_and_a_manager_may_do_in_the_console_exactly_what_the_api_allows() {
    let env = spawn_bots(Default::default(), &[]).await;
    let lead = env.team_manager("north_lead", "north").await;
    let mut seen = Vec::new();
    for role in ["Viewer", "Editor", "Manager"] {
        let username = format!("north_{}", role.to_lowercase());
        let token = env.team_member(&username, role, "north").await;
        let (api_bot, _) = env.bot(&lead, &format!("api{}", role.to_lowercase())).await;
        let (console_bot, _) = env
            .bot(&lead, &format!("console{}", role.to_lowercase()))
            .await;
        let api = through_the_api(&env, &token, &lead, &api_bot, role).await;
        let console = through_the_console(&env, &username, &lead, &console_bot, role).await;
        assert_eq!(
            console, api,
            "{role}: the console allows what the API allows"
        );
        seen.push(api);
    }
    // The three roles differ, so the comparison above compared something.
    let [viewer, editor, manager] = &seen[..] else {
        unreachable!()
    };
    assert!(
        viewer.read_fleet && !viewer.pause && !viewer.write_post,
        "{viewer:?}"
    );
    assert!(editor.write_post && editor.reveal.is_err(), "{editor:?}");
    assert!(
        manager.pause && manager.write_post && manager.reveal.is_ok() && manager.read_logs,
        "{manager:?}"
    );
}
