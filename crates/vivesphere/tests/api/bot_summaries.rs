//! `GET /api/v1/bots/summaries` and the fleet's columns built on it: each reachable bot's
//! last and next post, failures in the last day, the rate window running lowest (as X's
//! headers said) and its credentials' state.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::auth_helpers::PASSWORD;
use crate::bots_helpers::{BotEnv, spawn_bots};
use crate::console_helpers::Visitor;

async fn summaries(env: &BotEnv, token: &str, ids: &[&str]) -> Vec<Value> {
    let path = format!("/api/v1/bots/summaries?ids={}", ids.join(","));
    let response = env.get(&path, token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["items"].as_array().unwrap().clone()
}

fn of<'a>(items: &'a [Value], bot_id: &str) -> &'a Value {
    items
        .iter()
        .find(|item| item["bot_id"] == bot_id)
        .unwrap_or_else(|| panic!("{bot_id} in {items:#?}"))
}

#[tokio::test]
async fn a_fleet_line_says_last_and_next_post_failures_rate_room_and_credentials() {
    // Two posts a window: the second leaves none, and the Bot Manager saves a window then.
    let fake = fake_x::Settings {
        post_limit: 2,
        ..Default::default()
    };
    let env = spawn_bots(fake, &[]).await;
    let north = env.team_manager("north_lead", "north").await;
    let south = env.team_manager("south_lead", "south").await;
    let (busy, _) = env.bot(&north, "busybot").await;
    let (failing, _) = env.bot(&north, "failingbot").await;
    let (quiet, _) = env.bot(&north, "quietbot").await;
    let (theirs, _) = env.bot(&south, "theirbot").await;

    env.publish_now(&north, &busy, "First light.").await;
    let second = env.publish_now(&north, &busy, "Second light.").await;
    let second = env.read_post(&north, &busy, &second).await;
    let sooner = env.in_ms(3_600_000);
    let later = env.in_ms(7_200_000);
    env.post(&north, &busy, json!({"text": "Later.", "run_at": later}))
        .await;
    let sooner = env
        .post(&north, &busy, json!({"text": "Sooner.", "run_at": sooner}))
        .await["run_at"]
        .clone();
    // X refuses the same text twice from one account: the second post fails.
    env.publish_now(&north, &failing, "Echo.").await;
    let again = env
        .post(
            &north,
            &failing,
            json!({"text": "Echo.", "publish_now": true}),
        )
        .await;
    let again = again["post_id"].as_str().unwrap();
    let again = env
        .wait_for(&north, &failing, again, &["published", "failed"])
        .await;
    assert_eq!(again["state"], "failed", "{again}");

    let items = summaries(&env, &north, &[&busy, &failing, &quiet, &theirs]).await;
    assert_eq!(items.len(), 3, "another team's bot is left out: {items:#?}");
    let line = of(&items, &busy);
    assert_eq!(line["last_published_at"], second["published_at"], "{line}");
    assert_eq!(line["next_run_at"], sooner, "{line}");
    assert_eq!(line["failed_24h"], 0);
    let window = &line["lowest_rate_window"];
    assert_eq!(
        (window["remaining"].as_i64(), window["limit"].as_i64()),
        (Some(0), Some(2)),
        "{line}"
    );
    assert!(
        window["endpoint"]
            .as_str()
            .unwrap()
            .starts_with("tweets.create"),
        "{line}"
    );
    assert_eq!(line["credentials"], "ok");
    assert_eq!(of(&items, &failing)["failed_24h"], 1);
    let line = of(&items, &quiet);
    assert!(
        line["last_published_at"].is_null() && line["next_run_at"].is_null(),
        "{line}"
    );
    assert!(line["lowest_rate_window"].is_null(), "{line}");
    assert_eq!(
        of(&summaries(&env, &env.admin, &[&theirs]).await, &theirs)["credentials"],
        "ok"
    );

    // The fleet shows the same lines.
    let mut visitor = Visitor::new(&env.app);
    let fleet = visitor.sign_in("north_lead", PASSWORD).await;
    assert!(fleet.html.contains("0 of 2 left"), "{}", fleet.html);
    assert!(
        fleet.html.contains(r#"<td class="optional failed">1</td>"#),
        "{}",
        fleet.html
    );

    // A failure older than a day no longer counts.
    env.app.clock.advance(Duration::from_secs(25 * 3600));
    let north = env.login("north_lead").await;
    let items = summaries(&env, &north, &[&failing]).await;
    assert_eq!(items[0]["failed_24h"], 0, "{items:#?}");

    let too_many: Vec<String> = (0..101).map(|i| format!("bot{i}")).collect();
    let refused = env
        .get(
            &format!("/api/v1/bots/summaries?ids={}", too_many.join(",")),
            &north,
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error_code"], "VALIDATION_FAILED", "{body}");
}

#[tokio::test]
async fn the_backlog_counts_work_waiting_and_jobs_that_gave_up_and_the_console_flags_them() {
    let env = spawn_bots(
        Default::default(),
        &[("VIVESPHERE_BOT_MANAGER__EXECUTION__MAX_ATTEMPTS", "1")],
    )
    .await;
    let north = env.team_manager("north_lead", "north").await;
    let south = env.team_manager("south_lead", "south").await;
    let (bot_id, _) = env.bot(&north, "backlogbot").await;
    let later = env.in_ms(3_600_000);
    env.post(
        &north,
        &bot_id,
        json!({"text": "Later on.", "run_at": later}),
    )
    .await;
    // X answers 500 to its one attempt: the job gives up, the post fails.
    env.fake.add_fault(fake_x::Fault {
        method: "POST".into(),
        path: "/2/tweets".into(),
        kind: fake_x::FaultKind::Status,
        status: Some(500),
        delay_ms: None,
        times: 5,
    });
    let post = env
        .post(
            &north,
            &bot_id,
            json!({"text": "Gives up.", "publish_now": true}),
        )
        .await;
    let post_id = post["post_id"].as_str().unwrap();
    let failed = env
        .wait_for(&north, &bot_id, post_id, &["failed", "published"])
        .await;
    assert_eq!(failed["state"], "failed", "{failed}");

    let backlog: Value = env
        .get("/api/v1/bots/backlog", &north)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(backlog["dead_24h"], 1, "{backlog}");
    assert_eq!(backlog["scheduled_later"], 1, "{backlog}");
    assert_eq!(backlog["due"], 0, "{backlog}");
    assert!(backlog["oldest_due_seconds"].is_null(), "{backlog}");
    let theirs: Value = env
        .get("/api/v1/bots/backlog", &south)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            theirs["dead_24h"].as_i64(),
            theirs["scheduled_later"].as_i64()
        ),
        (Some(0), Some(0)),
        "{theirs}"
    );

    let mut visitor = Visitor::new(&env.app);
    let fleet = visitor.sign_in("north_lead", PASSWORD).await;
    assert!(
        fleet.html.contains("1 publishing jobs gave up"),
        "{}",
        fleet.html
    );
    let system = visitor.get("/console/system").await;
    assert!(
        system.html.contains("Publishing backlog"),
        "{}",
        system.html
    );
    assert!(
        system
            .html
            .contains("<dt>Gave up in the last 24 h (dead-lettered)</dt><dd>1</dd>"),
        "{}",
        system.html
    );

    // A day later the failure is no longer news.
    env.app.clock.advance(Duration::from_secs(25 * 3600));
    let north = env.login("north_lead").await;
    let backlog: Value = env
        .get("/api/v1/bots/backlog", &north)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(backlog["dead_24h"], 0, "{backlog}");
}
