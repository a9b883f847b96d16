//! A bot's page in the console over HTTP: its profile edited (a stale page refused, slots
//! written as people write them), a failed post sent again, its followers and posts drawn as
//! SVG charts from the API's snapshots, and its activity as far as the person's role reads it.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::auth_helpers::PASSWORD;
use crate::bots_helpers::spawn_bots;
use crate::console_helpers::Visitor;

#[tokio::test]
async fn a_bots_profile_is_edited_from_its_page_unless_the_page_is_stale() {
    let env = spawn_bots(Default::default(), &[]).await;
    let lead = env.team_manager("north_lead", "north").await;
    let (bot_id, _) = env.bot(&lead, "editedbot").await;
    let mut visitor = Visitor::new(&env.app);
    visitor.sign_in("north_lead", PASSWORD).await;
    let page = visitor.get(&format!("/console/bots/{bot_id}")).await;
    let csrf = page.csrf();
    let version = env
        .get(&format!("/api/v1/bots/{bot_id}"), &lead)
        .await
        .json::<Value>()
        .await
        .unwrap()["version"]
        .as_i64()
        .unwrap()
        .to_string();
    let path = format!("/console/bots/{bot_id}/profile");
    let form = |version: &str, slots: &str| {
        vec![
            ("csrf".to_string(), csrf.clone()),
            ("version".to_string(), version.to_string()),
            ("name".to_string(), "Edited bot".to_string()),
            (
                "description".to_string(),
                "Harbour weather, posted automatically.".to_string(),
            ),
            ("time_zone".to_string(), "Europe/Lisbon".to_string()),
            ("posting_slots".to_string(), slots.to_string()),
        ]
    };

    let unreadable = form(&version, "mon 09:00-17:00, whenever");
    let answer = visitor.post(&path, &refs(&unreadable)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        answer.html.contains("&quot;whenever&quot;"),
        "{}",
        answer.html
    );

    let saved = form(&version, "mon 09:00-17:00, sat 10:00-11:30");
    let answer = visitor.post(&path, &refs(&saved)).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.html);
    let bot: Value = env
        .get(&format!("/api/v1/bots/{bot_id}"), &lead)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bot["name"], "Edited bot");
    assert_eq!(bot["time_zone"], "Europe/Lisbon");
    assert_eq!(
        bot["posting_slots"],
        json!([{"day": "mon", "start": "09:00", "end": "17:00"}, {"day": "sat", "start": "10:00", "end": "11:30"}])
    );
    let page = visitor.get(&format!("/console/bots/{bot_id}")).await;
    assert!(
        page.html.contains("mon 09:00-17:00, sat 10:00-11:30"),
        "{}",
        page.html
    );

    // The same form again, read before that change: the API refuses it, nothing is written.
    let stale = form(&version, "tue 08:00-09:00");
    let answer = visitor.post(&path, &refs(&stale)).await;
    assert_eq!(
        answer.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        answer.html
    );
    let bot: Value = env
        .get(&format!("/api/v1/bots/{bot_id}"), &lead)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bot["posting_slots"][0]["day"], "mon", "{bot}");
    // The API's own check of a zone.
    let zone = bot["version"].as_i64().unwrap().to_string();
    let mut wrong_zone = form(&zone, "");
    wrong_zone[4].1 = "Mars/Olympus".to_string();
    let answer = visitor.post(&path, &refs(&wrong_zone)).await;
    assert!(answer.status.is_client_error(), "{}", answer.status);
    assert!(
        answer.html.contains("IANA time zone"),
        "the API's reason: {}",
        answer.html
    );
}

fn refs(fields: &[(String, String)]) -> Vec<(&str, &str)> {
    fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[tokio::test]
async fn a_failed_post_is_sent_again_from_the_bots_page() {
    let env = spawn_bots(Default::default(), &[]).await;
    let lead = env.team_manager("north_lead", "north").await;
    let (bot_id, _) = env.bot(&lead, "retriedbot").await;
    env.fake.add_fault(fake_x::Fault {
        method: "POST".into(),
        path: "/2/tweets".into(),
        kind: fake_x::FaultKind::Status,
        status: Some(403),
        delay_ms: None,
        times: 1,
    });
    let post = env
        .post(
            &lead,
            &bot_id,
            json!({"text": "Second time lucky.", "publish_now": true}),
        )
        .await;
    let post_id = post["post_id"].as_str().unwrap().to_string();
    let failed = env
        .wait_for(&lead, &bot_id, &post_id, &["published", "failed"])
        .await;
    assert_eq!(failed["state"], "failed");

    let mut visitor = Visitor::new(&env.app);
    visitor.sign_in("north_lead", PASSWORD).await;
    let page = visitor.get(&format!("/console/bots/{bot_id}")).await;
    let retry = format!("/console/bots/{bot_id}/posts/{post_id}/retry");
    assert!(
        page.html.contains(&format!(r#"action="{retry}""#)),
        "{}",
        page.html
    );
    let answer = visitor.post(&retry, &[("csrf", &page.csrf())]).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.html);
    let sent = env
        .wait_for(&lead, &bot_id, &post_id, &["published", "failed"])
        .await;
    assert_eq!(sent["state"], "published", "{sent}");
    let again = visitor.post(&retry, &[("csrf", &page.csrf())]).await;
    assert_eq!(
        again.status,
        StatusCode::CONFLICT,
        "a published post is not sent again"
    );
}

#[tokio::test]
async fn a_bots_followers_are_charted_and_its_activity_shown_as_far_as_the_role_reads() {
    let env = spawn_bots(Default::default(), &[]).await;
    let lead = env.team_manager("north_lead", "north").await;
    env.team_member("north_editor", "Editor", "north").await;
    let (bot_id, _) = env.bot(&lead, "chartedbot").await;
    // The creation's record travels through the queue before the page can show it.
    env.recorded(&lead, "bot.created").await;
    let mut lead = lead;
    for _ in 0..3 {
        let taken = env.refresh_metrics(&lead, &bot_id).await;
        let status = taken.status();
        assert!(
            status.is_success(),
            "{status}: {}",
            taken.text().await.unwrap()
        );
        env.app.clock.advance(Duration::from_secs(86_400));
        // A day on, the access token has long expired.
        lead = env.login("north_lead").await;
    }

    let mut visitor = Visitor::new(&env.app);
    visitor.sign_in("north_lead", PASSWORD).await;
    let page = visitor.get(&format!("/console/bots/{bot_id}")).await;
    assert!(
        page.html
            .contains("<svg viewBox=\"0 0 600 180\" role=\"img\""),
        "{}",
        page.html
    );
    assert!(
        page.html.contains("<polyline class=\"series\""),
        "{}",
        page.html
    );
    assert!(page.html.contains("Followers: "), "{}", page.html);
    // The figures as a table too: one row a day, three days.
    let figures = page.html.split("The figures: Followers").nth(1).unwrap();
    let figures = &figures[..figures.find("</table>").unwrap()];
    assert_eq!(figures.matches("<tr><td>").count(), 3, "{figures}");
    let activity = page.html.split(r#"id="activity""#).nth(1).unwrap();
    assert!(activity.contains("bot.created"), "{activity}");

    let mut editor = Visitor::new(&env.app);
    editor.sign_in("north_editor", PASSWORD).await;
    let page = editor.get(&format!("/console/bots/{bot_id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let activity = page.html.split(r#"id="activity""#).nth(1).unwrap();
    assert!(
        activity.contains("Your role does not read this."),
        "{activity}"
    );
}
