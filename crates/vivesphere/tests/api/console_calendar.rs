//! The console's calendar over HTTP: a week and a month of the posts a person reaches, placed
//! on the day they fall on in the zone chosen; filtered by bot; posts moved and cancelled,
//! and written for any bot, each through the API as the person; the composer's warning when
//! another bot has the same text.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::auth_helpers::PASSWORD;
use crate::bots_helpers::{BotEnv, spawn_bots};
use crate::console_helpers::Visitor;

/// The text between the headings of two days of a calendar page.
fn day<'a>(html: &'a str, heading: &str, next_heading: &str) -> &'a str {
    let start = html
        .find(&format!("<h3>{heading}</h3>"))
        .unwrap_or_else(|| panic!("no day {heading}: {html}"));
    let rest = &html[start..];
    let end = rest
        .find(&format!("<h3>{next_heading}</h3>"))
        .unwrap_or(rest.len());
    &rest[..end]
}

/// Owned form fields as the visitor sends them.
fn fields(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

async fn post_of(env: &BotEnv, token: &str, bot_id: &str, post_id: &str) -> Value {
    env.get(&format!("/api/v1/bots/{bot_id}/posts/{post_id}"), token)
        .await
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_calendar_places_each_reachable_post_on_its_day_in_the_zone_chosen() {
    let env = spawn_bots(Default::default(), &[]).await;
    let north = env.team_manager("north_lead", "north").await;
    let south = env.team_manager("south_lead", "south").await;
    let (early, _) = env.bot(&north, "earlybird").await;
    let (later, _) = env.bot(&north, "laterbird").await;
    let (southern, _) = env.bot(&south, "southbird").await;
    // The test clock starts on Friday 14 March 2031, 09:00 UTC.
    let late_saturday = json!({"text": "Saturday night, UTC.", "run_at": "2031-03-15T23:30:00Z"});
    env.post(&north, &early, late_saturday).await;
    let next_week = json!({"text": "Next Thursday.", "run_at": "2031-03-20T08:00:00Z"});
    env.post(&north, &later, next_week).await;
    let theirs = json!({"text": "Southern news.", "run_at": "2031-03-15T10:00:00Z"});
    env.post(&south, &southern, theirs).await;

    let mut visitor = Visitor::new(&env.app);
    visitor.sign_in("north_lead", PASSWORD).await;
    let week = visitor.get("/console/calendar").await;
    assert_eq!(week.status, StatusCode::OK, "{}", week.html);
    assert!(
        week.html.contains("Week of 10 March 2031 (UTC)"),
        "{}",
        week.html
    );
    let saturday = day(&week.html, "Sat 15 Mar", "Sun 16 Mar");
    assert!(saturday.contains("Saturday night, UTC."), "{saturday}");
    assert!(saturday.contains("23:30"), "{saturday}");
    assert!(!week.html.contains("Next Thursday."), "not this week");
    assert!(!week.html.contains("Southern news."), "another team's post");
    assert!(!week.html.contains("southbird"), "another team's bot");

    // In Berlin (CET, UTC+1) the same post is half past midnight on Sunday.
    let berlin = visitor
        .get("/console/calendar?zone=Europe/Berlin&on=2031-03-14")
        .await;
    let sunday = day(&berlin.html, "Sun 16 Mar", "</ol>");
    assert!(sunday.contains("Saturday night, UTC."), "{}", berlin.html);
    assert!(sunday.contains("00:30"), "{sunday}");

    let month = visitor
        .get("/console/calendar?view=month&on=2031-03-02")
        .await;
    assert!(month.html.contains("March 2031 (UTC)"), "{}", month.html);
    assert!(month.html.contains("Saturday night, UTC.") && month.html.contains("Next Thursday."));
    // A month's grid runs from the Monday before the 1st to the Sunday after the 31st.
    assert!(
        month.html.contains("<h3>Mon 24 Feb</h3>") && month.html.contains("<h3>Sun 6 Apr</h3>")
    );

    let one_bot = visitor
        .get(&format!("/console/calendar?view=month&bot_id={later}"))
        .await;
    assert!(one_bot.html.contains("Next Thursday."), "{}", one_bot.html);
    assert!(
        !one_bot.html.contains("Saturday night, UTC."),
        "{}",
        one_bot.html
    );

    let next = visitor.get("/console/calendar?on=2031-03-17").await;
    assert!(next.html.contains("Next Thursday.") && !next.html.contains("Saturday night"));
    let nonsense = visitor
        .get("/console/calendar?zone=Mars/Olympus&on=soon")
        .await;
    assert_eq!(nonsense.status, StatusCode::OK);
    assert!(
        nonsense.html.contains("Week of 10 March 2031 (UTC)"),
        "today, in UTC"
    );
}

#[tokio::test]
async fn posts_are_moved_cancelled_and_written_from_the_calendar_as_the_api_allows() {
    let env = spawn_bots(Default::default(), &[]).await;
    let north = env.team_manager("north_lead", "north").await;
    let south = env.team_manager("south_lead", "south").await;
    let (bot_id, _) = env.bot(&north, "moverbot").await;
    let (southern, _) = env.bot(&south, "southbird").await;
    let post = env
        .post(
            &north,
            &bot_id,
            json!({"text": "Move me.", "run_at": "2031-03-15T10:00:00Z"}),
        )
        .await;
    let post_id = post["post_id"].as_str().unwrap().to_string();

    let mut visitor = Visitor::new(&env.app);
    visitor.sign_in("north_lead", PASSWORD).await;
    let page = visitor.get("/console/calendar?zone=Europe/Berlin").await;
    let csrf = page.csrf();
    assert!(
        page.html.contains(r#"value="2031-03-15T11:00""#),
        "the current time, in Berlin: {}",
        page.html
    );
    let back = "/console/calendar?zone=Europe/Berlin";
    let move_to = |csrf: &str, at: &str, back: &str| {
        vec![
            ("csrf".to_string(), csrf.to_string()),
            ("bot_id".to_string(), bot_id.clone()),
            ("post_id".to_string(), post_id.clone()),
            ("zone".to_string(), "Europe/Berlin".to_string()),
            ("run_at".to_string(), at.to_string()),
            ("back".to_string(), back.to_string()),
        ]
    };

    let forged = move_to("forged", "2031-03-17T09:15", back);
    let refused = visitor
        .post("/console/calendar/reschedule", &fields(&forged))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        post_of(&env, &north, &bot_id, &post_id).await["run_at"],
        "2031-03-15T10:00:00Z"
    );

    let moved = move_to(&csrf, "2031-03-17T09:15", back);
    let answer = visitor
        .post("/console/calendar/reschedule", &fields(&moved))
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.html);
    assert_eq!(answer.location.as_deref(), Some(back));
    let stored = post_of(&env, &north, &bot_id, &post_id).await;
    assert_eq!(
        stored["run_at"], "2031-03-17T08:15:00Z",
        "09:15 in Berlin: {stored}"
    );
    assert_eq!(stored["state"], "scheduled");

    // A `back` that leaves the calendar is not followed.
    let elsewhere = move_to(&csrf, "2031-03-18T09:15", "https://example.com/phish");
    let answer = visitor
        .post("/console/calendar/reschedule", &fields(&elsewhere))
        .await;
    assert_eq!(answer.location.as_deref(), Some("/console/calendar"));

    let into_the_past = move_to(&csrf, "2031-03-01T09:15", back);
    let answer = visitor
        .post("/console/calendar/reschedule", &fields(&into_the_past))
        .await;
    assert!(
        answer.status.is_client_error(),
        "{}: {}",
        answer.status,
        answer.html
    );
    assert_eq!(
        post_of(&env, &north, &bot_id, &post_id).await["run_at"],
        "2031-03-18T08:15:00Z"
    );

    let cancel = [
        ("csrf", csrf.as_str()),
        ("bot_id", &bot_id),
        ("post_id", &post_id),
        ("back", back),
    ];
    let answer = visitor.post("/console/calendar/cancel", &cancel).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.html);
    assert_eq!(
        post_of(&env, &north, &bot_id, &post_id).await["state"],
        "cancelled"
    );

    // The composer writes for the bot chosen, at a time in the calendar's zone (New York is
    // on summer time, UTC-4, from 9 March 2031).
    let written = [
        ("csrf", csrf.as_str()),
        ("bot_id", bot_id.as_str()),
        ("zone", "America/New_York"),
        ("text", "From the calendar."),
        ("when", "schedule"),
        ("run_at", "2031-03-18T12:00"),
        ("back", back),
    ];
    let answer = visitor.post("/console/calendar/posts", &written).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.html);
    let listing: Value = env
        .get(&format!("/api/v1/bots/{bot_id}/posts"), &north)
        .await
        .json()
        .await
        .unwrap();
    let made = listing["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["text"] == "From the calendar.")
        .expect("the post was made")
        .clone();
    assert_eq!(made["run_at"], "2031-03-18T16:00:00Z", "{made}");

    let for_them = [
        ("csrf", csrf.as_str()),
        ("bot_id", southern.as_str()),
        ("zone", "UTC"),
        ("text", "Not my bot."),
        ("when", "now"),
    ];
    let answer = visitor.post("/console/calendar/posts", &for_them).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.html);
}

#[tokio::test]
async fn the_composer_warns_while_typing_when_another_bot_has_the_same_text() {
    let env = spawn_bots(Default::default(), &[]).await;
    let north = env.team_manager("north_lead", "north").await;
    let south = env.team_manager("south_lead", "south").await;
    let (first, _) = env.bot(&north, "firstbot").await;
    let (second, _) = env.bot(&north, "secondbot").await;
    let (southern, _) = env.bot(&south, "southbird").await;
    let at = env.in_ms(3_600_000);
    env.post(
        &north,
        &first,
        json!({"text": "The same words.", "run_at": at}),
    )
    .await;

    let mut visitor = Visitor::new(&env.app);
    let csrf = visitor.sign_in("north_lead", PASSWORD).await.csrf();
    let http = reqwest::Client::new();
    let check = |bot_id: &str, text: &str| {
        http.post(env.app.url("/console/check-text"))
            .header("cookie", visitor.cookie.clone().unwrap())
            .json(&json!({"csrf": csrf, "text": text, "bot_id": bot_id}))
            .send()
    };
    let answer: Value = check(&second, "the SAME words!")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["duplicate_elsewhere"], true, "{answer}");
    let answer: Value = check(&first, "the SAME words!")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        answer["duplicate_elsewhere"], false,
        "its own post is no duplicate: {answer}"
    );
    let answer: Value = check(&second, "Other words.")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["duplicate_elsewhere"], false, "{answer}");
    let refused = check(&southern, "The same words.").await.unwrap();
    assert_eq!(
        refused.status(),
        StatusCode::NOT_FOUND,
        "another team's bot"
    );

    // The warning says what scheduling would meet.
    let scheduled = env
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/bots/{second}/posts"),
            &north,
            json!({"text": "the SAME words!", "run_at": at}),
        )
        .await;
    assert_eq!(scheduled.status(), StatusCode::CONFLICT);

    // Without a bot, the API counts and says nothing of duplicates.
    let plain: Value = env
        .send(
            reqwest::Method::POST,
            "/api/v1/bots/check-text",
            &north,
            json!({"text": "The same words."}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(plain.get("duplicate_elsewhere").is_none(), "{plain}");
}
