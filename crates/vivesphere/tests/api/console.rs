//! The operator console over HTTP: signing in and out (cookie, CSRF, fresh ids, the second
//! factor, timeouts on the app's clock), the headers every page carries, and the fleet —
//! scoped, filtered and paged as the API scopes, filters and pages, with batch actions whose
//! every change is the API's own, attributed to the person.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::auth_helpers::{PASSWORD, send_json, totp_code};
use crate::bots_helpers::spawn_bots;
use crate::console_helpers::Visitor;
use crate::helpers::spawn_app;

const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

#[tokio::test]
async fn the_root_sends_people_to_the_console_and_signed_out_visits_to_sign_in() {
    let app = spawn_app().await;
    let mut visitor = Visitor::new(&app);
    let root = visitor.get("/").await;
    assert_eq!(root.status, StatusCode::SEE_OTHER);
    assert_eq!(root.location.as_deref(), Some("/console/"));
    for path in ["/console/", "/console/bots", "/console/bots/anything"] {
        let page = visitor.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        let to = page.location.unwrap();
        assert!(
            to == "/console/sign-in" || to == "/console/bots",
            "{path} → {to}"
        );
    }
    let form = visitor.get("/console/sign-in").await;
    assert_eq!(form.status, StatusCode::OK);
    assert_eq!(form.headers["content-security-policy"], POLICY);
    assert_eq!(form.headers["x-frame-options"], "DENY");
    assert_eq!(form.headers["cache-control"], "no-store");
    assert!(
        !form.html.contains("<script>"),
        "no inline script: {}",
        form.html
    );
    assert!(
        form.html
            .contains("<script src=\"/console/assets/console.js\" defer>")
    );
    let script = visitor.get("/console/assets/console.js").await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(
        script.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(
        script.html.len() < 30 * 1024,
        "the script stays under 30 KB"
    );
    assert_eq!(
        visitor.get("/console/assets/nothing.js").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn signing_in_hands_out_a_fresh_httponly_strict_cookie_and_signing_out_ends_the_api_session()
{
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    let mut visitor = Visitor::new(&env.app);
    let form = visitor.get("/console/sign-in").await;
    let cookie = form.set_cookie.clone().unwrap();
    assert!(
        cookie.contains("; Path=/console; HttpOnly; SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let visit = visitor.cookie.clone().unwrap();
    let csrf = form.csrf();

    // A form without the session's token changes nothing.
    let forged = visitor
        .post(
            "/console/sign-in",
            &[
                ("csrf", "forged"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(
        forged.html.contains("Nothing was changed"),
        "{}",
        forged.html
    );
    let wrong = visitor
        .post(
            "/console/sign-in",
            &[
                ("csrf", &csrf),
                ("username", "alice"),
                ("password", "wrong"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.html.contains("Invalid credentials"), "{}", wrong.html);
    assert!(
        !wrong.html.contains("wrong"),
        "the password is never echoed"
    );

    let fleet = visitor.sign_in("alice", PASSWORD).await;
    assert_eq!(fleet.status, StatusCode::OK, "{}", fleet.html);
    assert!(fleet.html.contains("Signed in as <strong>alice</strong>"));
    let session = visitor.cookie.clone().unwrap();
    assert_ne!(session, visit, "signing in gives a new session id");
    // The id from before signing in is worth nothing now.
    let mut stale = Visitor::new(&env.app);
    stale.cookie = Some(visit);
    assert_eq!(
        stale.get("/console/bots").await.status,
        StatusCode::SEE_OTHER
    );

    // Behind TLS the cookie is Secure.
    let mut behind_tls = Visitor::new(&env.app);
    behind_tls.forwarded_proto = Some("https");
    let tls_form = behind_tls.get("/console/sign-in").await;
    assert!(tls_form.set_cookie.unwrap().ends_with("; Secure"));

    // Signing out needs the token too, then ends the session here and at the API.
    let sessions_before = api_sessions(&env.app, &alice).await;
    assert_eq!(sessions_before, 2, "the test's own login and the console's");
    let refused = visitor
        .post("/console/sign-out", &[("csrf", "forged")])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let csrf = fleet.csrf();
    let out = visitor.post("/console/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out.set_cookie.unwrap().contains("Max-Age=0"));
    assert_eq!(
        api_sessions(&env.app, &alice).await,
        1,
        "the console's API session ended"
    );
    let mut after = Visitor::new(&env.app);
    after.cookie = Some(session);
    assert_eq!(
        after.get("/console/bots").await.status,
        StatusCode::SEE_OTHER
    );
}

/// How many live sessions the holder of `token` has at the API.
async fn api_sessions(app: &crate::helpers::TestApp, token: &str) -> usize {
    let sessions: Value = crate::auth_helpers::get(app, "/api/v1/auth/sessions", token)
        .await
        .json()
        .await
        .unwrap();
    sessions["items"]
        .as_array()
        .or(sessions.as_array())
        .unwrap_or_else(|| panic!("{sessions}"))
        .len()
}

#[tokio::test]
async fn an_account_with_totp_signs_in_with_its_second_factor() {
    let app = spawn_app().await;
    let admin = crate::auth_helpers::admin_token(&app).await;
    let token = crate::auth_helpers::token_of(&app, &admin, "mallory", &["Manager"]).await;
    let enrolment: Value = send_json(
        &app,
        Method::POST,
        "/api/v1/auth/mfa/totp/enroll",
        &token,
        json!({}),
    )
    .await
    .json()
    .await
    .unwrap();
    let secret = enrolment["secret"].as_str().unwrap().to_string();
    let code = totp_code(&secret, app.clock.unix_seconds() as u64);
    let confirmed = send_json(
        &app,
        Method::POST,
        "/api/v1/auth/mfa/totp/confirm",
        &token,
        json!({"code": code}),
    )
    .await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    // The confirmation spent this period's code; the sign-in uses the next one.
    app.clock.advance(Duration::from_secs(30));

    let mut visitor = Visitor::new(&app);
    let form = visitor.get("/console/sign-in").await;
    let password_step = visitor
        .post(
            "/console/sign-in",
            &[
                ("csrf", &form.csrf()),
                ("username", "mallory"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(password_step.status, StatusCode::SEE_OTHER);
    assert_eq!(
        password_step.location.as_deref(),
        Some("/console/sign-in/second-factor")
    );
    // Half signed in is not signed in: pages lead back to the second step.
    let half = visitor.get("/console/bots").await;
    assert_eq!(half.status, StatusCode::SEE_OTHER);
    assert_eq!(
        half.location.as_deref(),
        Some("/console/sign-in/second-factor")
    );
    let step = visitor.get("/console/sign-in/second-factor").await;
    let wrong = visitor
        .post(
            "/console/sign-in/second-factor",
            &[("csrf", &step.csrf()), ("code", "000000")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.html);
    let code = totp_code(&secret, app.clock.unix_seconds() as u64);
    let done = visitor
        .post(
            "/console/sign-in/second-factor",
            &[("csrf", &wrong.csrf()), ("code", &code)],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    assert_eq!(done.location.as_deref(), Some("/console/bots"));
    let fleet = visitor.get("/console/bots").await;
    assert!(
        fleet.html.contains("Signed in as <strong>mallory</strong>"),
        "{}",
        fleet.html
    );
}

#[tokio::test]
async fn a_session_outlives_its_access_tokens_but_not_its_idle_and_absolute_timeouts() {
    let app = spawn_app().await;
    let admin = crate::auth_helpers::admin_token(&app).await;
    crate::auth_helpers::create_user(&app, &admin, "busy", &["Manager"]).await;
    let mut visitor = Visitor::new(&app);
    assert_eq!(
        visitor.sign_in("busy", PASSWORD).await.status,
        StatusCode::OK
    );
    // Access tokens last 15 minutes: a page every 10 minutes for an hour and a half
    // keeps working on refreshed tokens.
    for _ in 0..9 {
        app.clock.advance(Duration::from_secs(600));
        let page = visitor.get("/console/bots").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    }
    // Idle for more than 30 minutes: signed out.
    app.clock.advance(Duration::from_secs(31 * 60));
    let idle = visitor.get("/console/bots").await;
    assert_eq!(idle.status, StatusCode::SEE_OTHER);
    assert_eq!(idle.location.as_deref(), Some("/console/sign-in"));

    // However busy, 12 hours end it.
    let mut visitor = Visitor::new(&app);
    visitor.sign_in("busy", PASSWORD).await;
    for _ in 0..(12 * 3) {
        app.clock.advance(Duration::from_secs(20 * 60));
        if visitor.get("/console/bots").await.status != StatusCode::OK {
            break;
        }
    }
    assert_eq!(
        visitor.get("/console/bots").await.status,
        StatusCode::SEE_OTHER
    );
}

/// Creates `count` bots named `{prefix}-{n}` with `team`'s manager token.
async fn bots(
    env: &crate::bots_helpers::BotEnv,
    token: &str,
    prefix: &str,
    count: usize,
) -> Vec<String> {
    let mut ids = Vec::new();
    for n in 0..count {
        ids.push(env.bot(token, &format!("{prefix}{n:02}")).await.0);
    }
    ids
}

#[tokio::test]
async fn the_fleet_shows_the_bots_the_api_lets_the_person_reach_filtered_and_paged() {
    let env = spawn_bots(Default::default(), &[]).await;
    let north = env.team_manager("north_lead", "north").await;
    let south = env.team_manager("south_lead", "south").await;
    bots(&env, &north, "harbour", 52).await;
    let (lighthouse, _) = env.bot(&north, "lighthouse").await;
    let (southern, _) = env.bot(&south, "southbot").await;
    env.send(
        Method::POST,
        &format!("/api/v1/bots/{lighthouse}/status"),
        &north,
        json!({"status": "paused"}),
    )
    .await;

    let mut visitor = Visitor::new(&env.app);
    let first = visitor.sign_in("north_lead", PASSWORD).await;
    assert_eq!(
        first.html.matches("name=\"bot_id\"").count(),
        50,
        "a page holds 50 rows"
    );
    assert!(
        !first.html.contains("southbot"),
        "another team's bot is not shown"
    );
    let next = first.html.split("href=\"").find_map(|rest| {
        let link = &rest[..rest.find('"').unwrap()];
        link.contains("cursor=").then(|| link.replace("&amp;", "&"))
    });
    let second = visitor.get(&next.expect("a next-page link")).await;
    assert_eq!(
        second.html.matches("name=\"bot_id\"").count(),
        3,
        "52 + 1 = 53 bots"
    );

    let paused = visitor.get("/console/bots?status=paused").await;
    assert_eq!(paused.html.matches("name=\"bot_id\"").count(), 1);
    assert!(paused.html.contains(&lighthouse));
    let text = visitor.get("/console/bots?q=harbour1").await;
    assert_eq!(
        text.html.matches("name=\"bot_id\"").count(),
        10,
        "harbour10 … harbour19"
    );
    let bad = visitor.get("/console/bots?status=sleeping").await;
    assert_eq!(
        bad.status,
        StatusCode::BAD_REQUEST,
        "the API's own refusal, as a page"
    );
    assert!(bad.html.contains("role=\"alert\""), "{}", bad.html);

    // A bot of another team is the API's 404, not a console error.
    let hidden = visitor.get(&format!("/console/bots/{southern}")).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    let own = visitor.get(&format!("/console/bots/{lighthouse}")).await;
    assert_eq!(own.status, StatusCode::OK);
    assert!(own.html.contains("Resume this bot"), "{}", own.html);
}

#[tokio::test]
async fn a_batch_pauses_the_ticked_bots_or_every_bot_the_filter_matches_with_a_result_per_bot() {
    let env = spawn_bots(Default::default(), &[]).await;
    let north = env.team_manager("north_lead", "north").await;
    let south = env.team_manager("south_lead", "south").await;
    let alphas = bots(&env, &north, "alpha", 10).await;
    let betas = bots(&env, &north, "beta", 2).await;
    let (southern, _) = env.bot(&south, "southbot").await;
    let mut visitor = Visitor::new(&env.app);
    let fleet = visitor.sign_in("north_lead", PASSWORD).await;
    let csrf = fleet.csrf();

    let forged = visitor
        .post(
            "/console/bots/batch",
            &[("csrf", "x"), ("action", "pause-matching"), ("q", "alpha")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let result = visitor
        .post(
            "/console/bots/batch",
            &[
                ("csrf", &csrf),
                ("action", "pause-matching"),
                ("q", "alpha"),
            ],
        )
        .await;
    assert_eq!(result.status, StatusCode::OK, "{}", result.html);
    assert!(
        result.html.contains("10 of 10 bots now paused."),
        "{}",
        result.html
    );
    for id in &alphas {
        assert_eq!(status_of(&env, &north, id).await, "paused");
    }
    for id in &betas {
        assert_eq!(
            status_of(&env, &north, id).await,
            "active",
            "the filter did not match it"
        );
    }
    // Every change is the API's, recorded as the person's.
    let of_alphas = |events: Vec<Value>| -> Vec<Value> {
        events
            .into_iter()
            .filter(|e| alphas.iter().any(|id| e["bot_id"] == json!(id)))
            .collect()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let changed = loop {
        // The events travel through the queue; they arrive in their own time.
        let changed = of_alphas(env.events(&env.admin, "bot.status_changed").await);
        if changed.len() >= 10 || tokio::time::Instant::now() > deadline {
            break changed;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(changed.len(), 10, "{changed:#?}");
    assert!(
        changed.iter().all(|e| e["actor_name"] == "north_lead"),
        "{changed:#?}"
    );

    // Ticked rows; a bot the person cannot reach is refused alone, with the API's reason.
    let ticked = visitor
        .post(
            "/console/bots/batch",
            &[
                ("csrf", &csrf),
                ("action", "resume-selected"),
                ("bot_id", &alphas[0]),
                ("bot_id", &southern),
            ],
        )
        .await;
    assert!(
        ticked.html.contains("1 of 2 bots now active. 1 refused"),
        "{}",
        ticked.html
    );
    assert_eq!(status_of(&env, &north, &alphas[0]).await, "active");
    assert_eq!(
        status_of(&env, &south, &southern).await,
        "active",
        "untouched"
    );
    let nothing = visitor
        .post(
            "/console/bots/batch",
            &[("csrf", &csrf), ("action", "pause-selected")],
        )
        .await;
    assert_eq!(nothing.status, StatusCode::BAD_REQUEST);
    let unknown = visitor
        .post(
            "/console/bots/batch",
            &[("csrf", &csrf), ("action", "delete-all")],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
}

async fn status_of(env: &crate::bots_helpers::BotEnv, token: &str, bot_id: &str) -> String {
    let bot: Value = env
        .get(&format!("/api/v1/bots/{bot_id}"), token)
        .await
        .json()
        .await
        .unwrap();
    bot["status"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_composer_schedules_in_the_bots_zone_publishes_now_and_cancels() {
    let env = spawn_bots(Default::default(), &[]).await;
    let lead = env.team_manager("north_lead", "north").await;
    let (bot_id, _) = env.bot(&lead, "berlinbot").await;
    let zone = env
        .send(
            Method::PATCH,
            &format!("/api/v1/bots/{bot_id}"),
            &lead,
            json!({"time_zone": "Europe/Berlin"}),
        )
        .await;
    assert_eq!(zone.status(), StatusCode::OK);
    let mut visitor = Visitor::new(&env.app);
    visitor.sign_in("north_lead", PASSWORD).await;
    let page = visitor.get(&format!("/console/bots/{bot_id}")).await;
    assert!(page.html.contains("Time (Europe/Berlin)"), "{}", page.html);
    let csrf = page.csrf();
    let posts = format!("/console/bots/{bot_id}/posts");

    let forged = visitor
        .post(
            &posts,
            &[("csrf", "x"), ("text", "Forged."), ("when", "now")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let no_time = visitor
        .post(
            &posts,
            &[("csrf", &csrf), ("text", "When?"), ("when", "schedule")],
        )
        .await;
    assert_eq!(no_time.status, StatusCode::BAD_REQUEST);
    let too_long = "x".repeat(281);
    let refused = visitor
        .post(
            &posts,
            &[("csrf", &csrf), ("text", &too_long), ("when", "now")],
        )
        .await;
    assert!(refused.status.is_client_error(), "{}", refused.status);
    assert!(
        refused.html.contains("280"),
        "the API's reason: {}",
        refused.html
    );
    assert_eq!(
        listed_posts(&env, &lead, &bot_id).await.len(),
        0,
        "nothing was created"
    );

    // 10:30 in Berlin on 20 March 2031 is 09:30 UTC (CET, before the change to summer time).
    let scheduled = visitor
        .post(
            &posts,
            &[
                ("csrf", &csrf),
                ("text", "Guten Morgen."),
                ("when", "schedule"),
                ("run_at", "2031-03-20T10:30"),
            ],
        )
        .await;
    assert_eq!(
        scheduled.status,
        StatusCode::SEE_OTHER,
        "{}",
        scheduled.html
    );
    let made = listed_posts(&env, &lead, &bot_id).await;
    assert_eq!(made[0]["run_at"], "2031-03-20T09:30:00Z", "{made:#?}");
    assert_eq!(made[0]["state"], "scheduled");
    let page = visitor.get(&format!("/console/bots/{bot_id}")).await;
    assert!(page.html.contains("2031-03-20 10:30 CET"), "{}", page.html);
    let post_id = made[0]["post_id"].as_str().unwrap();
    let cancelled = visitor
        .post(&format!("{posts}/{post_id}/cancel"), &[("csrf", &csrf)])
        .await;
    assert_eq!(
        cancelled.status,
        StatusCode::SEE_OTHER,
        "{}",
        cancelled.html
    );
    assert_eq!(
        listed_posts(&env, &lead, &bot_id).await[0]["state"],
        "cancelled"
    );

    let now = visitor
        .post(
            &posts,
            &[("csrf", &csrf), ("text", "Right now."), ("when", "now")],
        )
        .await;
    assert_eq!(now.status, StatusCode::SEE_OTHER, "{}", now.html);
    let latest = listed_posts(&env, &lead, &bot_id).await;
    let now_id = latest.iter().find(|p| p["text"] == "Right now.").unwrap()["post_id"]
        .as_str()
        .unwrap()
        .to_string();
    let done = env
        .wait_for(&lead, &bot_id, &now_id, &["published", "failed"])
        .await;
    assert_eq!(done["state"], "published", "{done}");
}

/// The bot's posts as the API lists them, newest first.
async fn listed_posts(env: &crate::bots_helpers::BotEnv, token: &str, bot_id: &str) -> Vec<Value> {
    let listing: Value = env
        .get(&format!("/api/v1/bots/{bot_id}/posts"), token)
        .await
        .json()
        .await
        .unwrap();
    listing["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn the_counter_answers_only_the_session_and_live_states_stream_as_they_change() {
    let env = spawn_bots(Default::default(), &[]).await;
    let lead = env.team_manager("north_lead", "north").await;
    let (bot_id, _) = env.bot(&lead, "livebot").await;
    let mut visitor = Visitor::new(&env.app);
    let fleet = visitor.sign_in("north_lead", PASSWORD).await;
    let csrf = fleet.csrf();
    let http = reqwest::Client::new();
    let check = |csrf: String, cookie: Option<String>| {
        let mut request = http
            .post(env.app.url("/console/check-text"))
            .json(&json!({"csrf": csrf, "text": "Read https://example.com/a-very-long-path 🌍"}));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send()
    };
    let counted = check(csrf.clone(), visitor.cookie.clone()).await.unwrap();
    assert_eq!(counted.status(), StatusCode::OK);
    let counted: Value = counted.json().await.unwrap();
    // "Read " 5 + a URL 23 + " " 1 + an emoji 2.
    assert_eq!(counted["weighted_length"], 31, "{counted}");
    assert_eq!(counted["max_weighted_length"], 280);
    assert_eq!(
        check("forged".into(), visitor.cookie.clone())
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        check(csrf, None).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    let run_at = env.in_ms(60_000);
    let post = env
        .post(&lead, &bot_id, json!({"text": "Soon.", "run_at": run_at}))
        .await;
    let post_id = post["post_id"].as_str().unwrap().to_string();
    let mut live = http
        .get(env.app.url(&format!("/console/bots/{bot_id}/posts/live")))
        .header("cookie", visitor.cookie.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    assert_eq!(live.headers()["content-type"], "text/event-stream");
    let first = next_event(&mut live).await;
    assert!(
        first.contains(&post_id) && first.contains("\"scheduled\""),
        "{first}"
    );
    env.app.clock.advance(Duration::from_secs(61));
    // Only changes follow: the next event is the post leaving `scheduled`.
    let mut states = Vec::new();
    while !states.iter().any(|s: &String| s.contains("\"published\"")) {
        let event = next_event(&mut live).await;
        assert!(!event.contains("\"scheduled\""), "{event}");
        states.push(event);
    }
}

/// The next `posts` Server-Sent Event (waits at most 15 s).
async fn next_event(stream: &mut reqwest::Response) -> String {
    next_sse(stream, "posts").await
}

/// The next Server-Sent Event named `name` (waits at most 15 s).
async fn next_sse(stream: &mut reqwest::Response, name: &str) -> String {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("an event within 15 s")
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
        if let Some(end) = text.find("\n\n") {
            let event = &text[..end];
            if event.starts_with(&format!("event: {name}")) {
                return event.to_string();
            }
            text = text[end + 2..].to_string();
        }
    }
}

#[tokio::test]
async fn logs_are_searched_exported_and_tailed_as_far_as_the_person_may_read() {
    let env = spawn_bots(Default::default(), &[]).await;
    let north = env.team_manager("north_lead", "north").await;
    let south = env.team_manager("south_lead", "south").await;
    env.bot(&north, "northern").await;
    env.bot(&south, "southern").await;
    env.recorded(&env.admin, "bot.created").await;
    let mut visitor = Visitor::new(&env.app);
    visitor.sign_in("north_lead", PASSWORD).await;
    let created = wait_for_page(&mut visitor, "/console/logs?action=bot.created", "northern").await;
    assert!(
        !created.html.contains("southern"),
        "another team's events stay hidden"
    );
    let searched = visitor
        .get("/console/logs?q=northern&category=user_activity")
        .await;
    assert_eq!(searched.status, StatusCode::OK);
    assert!(searched.html.contains("bot.created"), "{}", searched.html);
    let nothing = visitor.get("/console/logs?q=no-such-words-anywhere").await;
    assert!(nothing.html.contains("No event you may read matches."));
    let bad = visitor.get("/console/logs?level=loud").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.html
            .contains("level: trace, debug, info, warn, error or fatal"),
        "{}",
        bad.html
    );

    let csv = visitor
        .get("/console/logs/export?format=csv&action=bot.created")
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(
        csv.headers["content-disposition"],
        "attachment; filename=\"events.csv\""
    );
    assert!(
        csv.html.lines().next().unwrap().contains("action"),
        "a header row: {}",
        csv.html
    );
    assert!(
        csv.html.contains("northern") && !csv.html.contains("southern"),
        "{}",
        csv.html
    );

    // The tail sends what happens after it opened, and nothing from before.
    let mut tail = reqwest::Client::new()
        .get(env.app.url("/console/logs/live?action=bot.created"))
        .header("cookie", visitor.cookie.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(tail.status(), StatusCode::OK);
    env.bot(&north, "latecomer").await;
    let event = next_sse(&mut tail, "events").await;
    assert!(
        event.contains("latecomer") && !event.contains("northern"),
        "{event}"
    );
}

/// The page at `path` once it shows `text` (events travel through the queue).
async fn wait_for_page(
    visitor: &mut Visitor,
    path: &str,
    text: &str,
) -> crate::console_helpers::Answer {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let page = visitor.get(path).await;
        if page.html.contains(text) || tokio::time::Instant::now() > deadline {
            assert!(
                page.html.contains(text),
                "{path} never showed {text}: {}",
                page.html
            );
            return page;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Secure Bot Data's audit entries for `bot_id`, as an admin reads them.
async fn audit_of(env: &crate::bots_helpers::BotEnv, bot_id: &str) -> Vec<Value> {
    let listing: Value = env
        .get(
            &format!("/api/v1/botdata/audit?bot_id={bot_id}"),
            &env.admin,
        )
        .await
        .json()
        .await
        .unwrap();
    listing["items"].as_array().unwrap().clone()
}

fn reveals(entries: &[Value]) -> Vec<&Value> {
    entries.iter().filter(|e| e["action"] == "reveal").collect()
}

#[tokio::test]
async fn a_credential_is_revealed_only_when_confirmed_and_every_reveal_is_audited() {
    let env = spawn_bots(Default::default(), &[]).await;
    let lead = env.team_manager("north_lead", "north").await;
    env.team_member("north_viewer", "Viewer", "north").await;
    let (bot_id, x_user) = env.bot(&lead, "vaulted").await;
    let mut visitor = Visitor::new(&env.app);
    visitor.sign_in("north_lead", PASSWORD).await;
    let page = visitor.get(&format!("/console/bots/{bot_id}")).await;
    assert!(
        page.html.contains("<code>oauth_access_token</code>"),
        "{}",
        page.html
    );
    assert!(
        !page.html.contains(&x_user.access_token),
        "no value on the bot's page"
    );

    let reveal = format!("/console/bots/{bot_id}/secrets/oauth_access_token/reveal");
    let asked = visitor.get(&reveal).await;
    assert_eq!(asked.status, StatusCode::OK);
    assert!(asked.html.contains("audit trail") && !asked.html.contains(&x_user.access_token));
    let forged = visitor.post(&reveal, &[("csrf", "forged")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(
        reveals(&audit_of(&env, &bot_id).await).is_empty(),
        "asking reveals nothing"
    );

    let shown = visitor.post(&reveal, &[("csrf", &asked.csrf())]).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.html);
    assert!(shown.html.contains(&x_user.access_token), "{}", shown.html);
    assert_eq!(shown.headers["cache-control"], "no-store");
    let audit = audit_of(&env, &bot_id).await;
    let recorded = reveals(&audit);
    assert_eq!(recorded.len(), 1, "{audit:#?}");
    assert_eq!(recorded[0]["field"], "oauth_access_token");
    assert_eq!(recorded[0]["result"], "ok");

    // A Viewer may see that the field exists, never its value; the refusal is audited too.
    let mut viewer = Visitor::new(&env.app);
    viewer.sign_in("north_viewer", PASSWORD).await;
    let asked = viewer.get(&reveal).await;
    let refused = viewer.post(&reveal, &[("csrf", &asked.csrf())]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(!refused.html.contains(&x_user.access_token));
    let denied: Vec<Value> = audit_of(&env, &bot_id)
        .await
        .into_iter()
        .filter(|e| e["result"] == "denied")
        .collect();
    assert_eq!(denied.len(), 1, "{denied:#?}");

    // The admin finds the reveal in the system page's audit trail.
    let mut admin = Visitor::new(&env.app);
    admin.sign_in("admin", crate::helpers::ADMIN_PASSWORD).await;
    let trail = admin.get(&format!("/console/system?bot_id={bot_id}")).await;
    assert!(
        trail.html.contains("<td>reveal</td><td>ok</td>"),
        "{}",
        trail.html
    );
    // A Manager's system page says the audit trail is not theirs to read.
    let own = visitor.get("/console/system").await;
    assert_eq!(own.status, StatusCode::OK);
    assert!(!own.html.contains("<td>reveal</td>"), "{}", own.html);

    // New credentials replace the old as a new version.
    let page = visitor.get(&format!("/console/bots/{bot_id}")).await;
    let replaced = visitor
        .post(
            &format!("/console/bots/{bot_id}/credentials"),
            &[
                ("csrf", &page.csrf()),
                ("access_token", &x_user.access_token),
                ("refresh_token", &x_user.refresh_token),
                ("client_id", &x_user.client_id),
            ],
        )
        .await;
    assert_eq!(replaced.status, StatusCode::SEE_OTHER, "{}", replaced.html);
    let metadata: Value = env
        .get(&format!("/api/v1/botdata/bots/{bot_id}"), &lead)
        .await
        .json()
        .await
        .unwrap();
    let fields = metadata["fields"].as_array().unwrap();
    let access = fields
        .iter()
        .find(|f| f["field"] == "oauth_access_token")
        .unwrap();
    assert_eq!(access["current_version"], 2, "{metadata}");
}

#[tokio::test]
async fn the_system_page_shows_health_and_the_vault_and_the_banner_says_what_needs_attention() {
    let env = spawn_bots(Default::default(), &[]).await;
    let mut admin = Visitor::new(&env.app);
    let fleet = admin.sign_in("admin", crate::helpers::ADMIN_PASSWORD).await;
    assert!(
        !fleet.html.contains("role=\"alert\""),
        "nothing needs attention: {}",
        fleet.html
    );
    let system = admin.get("/console/system").await;
    assert_eq!(system.status, StatusCode::OK);
    assert_eq!(
        system.html.matches("status status-ready").count(),
        5,
        "{}",
        system.html
    );
    assert!(system.html.contains("<dd>unsealed</dd>"), "{}", system.html);

    // A bot made without credentials waits for them; a sealed vault stops every post.
    let waiting = env
        .send(Method::POST, "/api/v1/bots", &env.admin, json!({"bot_name": "waiting", "x_handle": "waiting", "operator_account": "human_operator"}))
        .await;
    assert_eq!(waiting.status(), StatusCode::CREATED);
    let sealed = env
        .send(
            Method::POST,
            "/api/v1/botdata/sys/seal",
            &env.admin,
            json!({}),
        )
        .await;
    assert_eq!(sealed.status(), StatusCode::OK);
    let fleet = admin.get("/console/bots").await;
    assert!(
        fleet.html.contains("1 bots need new credentials from X"),
        "{}",
        fleet.html
    );
    assert!(
        fleet.html.contains("Secure Bot Data is sealed"),
        "{}",
        fleet.html
    );
    let system = admin.get("/console/system").await;
    assert!(system.html.contains("<dd>sealed ("), "{}", system.html);
}

/// `key`'s effective central value for the Bot Manager, as the API reads it.
async fn central(app: &crate::helpers::TestApp, token: &str, key: &str) -> Value {
    let effective: Value = crate::auth_helpers::get(
        app,
        "/api/v1/config/settings?service_name=bot-manager",
        token,
    )
    .await
    .json()
    .await
    .unwrap();
    effective["settings"][key].clone()
}

const MAX_ATTEMPTS: &str = "bot_manager.execution.max_attempts";

/// Saves the Bot Manager's max_attempts through the settings page's form.
async fn save_max_attempts(
    visitor: &mut Visitor,
    csrf: &str,
    value: &str,
    reason: &str,
) -> crate::console_helpers::Answer {
    let fields = [
        ("csrf", csrf),
        ("service", "bot-manager"),
        ("key", MAX_ATTEMPTS),
        ("kind", "integer"),
        ("value", value),
        ("reason", reason),
    ];
    visitor.post("/console/settings", &fields).await
}

#[tokio::test]
async fn a_setting_is_edited_refused_with_the_services_reason_and_rolled_back() {
    let app = spawn_app().await;
    let admin_token = crate::auth_helpers::admin_token(&app).await;
    let mut admin = Visitor::new(&app);
    admin.sign_in("admin", crate::helpers::ADMIN_PASSWORD).await;
    let page = admin.get("/console/settings?service=bot-manager").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(
        page.html.contains(&format!("<code>{MAX_ATTEMPTS}</code>")),
        "{}",
        page.html
    );
    assert!(
        page.html
            .contains("from the files and defaults the service started with")
    );
    let csrf = page.csrf();

    let saved = save_max_attempts(&mut admin, &csrf, "7", "more retries while X is slow").await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    assert_eq!(central(&app, &admin_token, MAX_ATTEMPTS).await, 7);
    let page = admin.get("/console/settings?service=bot-manager").await;
    assert!(
        page.html.contains("from this service's central settings"),
        "{}",
        page.html
    );
    assert!(
        page.html.contains("more retries while X is slow"),
        "the history: {}",
        page.html
    );

    // Out of range: the service's own reason, beside the setting; nothing changes.
    let refused = save_max_attempts(&mut admin, &csrf, "1000", "too many").await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.html
    );
    assert!(
        refused
            .html
            .contains("must be a whole number from 1 to 100"),
        "{}",
        refused.html
    );
    assert!(
        refused
            .html
            .contains("id=\"s-bot_manager-execution-max_attempts-problem\"")
    );
    let typo = save_max_attempts(&mut admin, &csrf, "seven", "").await;
    assert_eq!(typo.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(central(&app, &admin_token, MAX_ATTEMPTS).await, 7);

    save_max_attempts(&mut admin, &csrf, "9", "even more").await;
    assert_eq!(central(&app, &admin_token, MAX_ATTEMPTS).await, 9);
    let history = admin.get("/console/settings?service=bot-manager").await;
    assert!(history.html.contains("7 → 9"), "the diff: {}", history.html);
    // Restore the release that set 7.
    let releases: Value = crate::auth_helpers::get(
        &app,
        "/api/v1/config/releases?scope=bot-manager",
        &admin_token,
    )
    .await
    .json()
    .await
    .unwrap();
    let seven = releases["releases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["reason"] == "more retries while X is slow")
        .unwrap()["revision"]
        .to_string();
    let restore = [
        ("csrf", csrf.as_str()),
        ("service", "bot-manager"),
        ("revision", &seven),
    ];
    let restored = admin.post("/console/settings/rollback", &restore).await;
    assert_eq!(restored.status, StatusCode::SEE_OTHER, "{}", restored.html);
    assert_eq!(central(&app, &admin_token, MAX_ATTEMPTS).await, 7);

    // A Manager reads the settings; the change is the API's to refuse.
    crate::auth_helpers::create_user(&app, &admin_token, "reader", &["Manager"]).await;
    let mut reader = Visitor::new(&app);
    reader.sign_in("reader", PASSWORD).await;
    let page = reader.get("/console/settings?service=bot-manager").await;
    assert_eq!(page.status, StatusCode::OK);
    let denied = save_max_attempts(&mut reader, &page.csrf(), "3", "").await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{}", denied.html);
    assert_eq!(central(&app, &admin_token, MAX_ATTEMPTS).await, 7);
}

#[tokio::test]
async fn the_edge_limit_counts_each_person_behind_the_console_not_the_console() {
    let app = crate::helpers::spawn(
        None,
        &[("VIVESPHERE_GATEWAY__RATE_LIMIT__PER_MINUTE", "30")],
        None,
    )
    .await;
    let admin = crate::auth_helpers::admin_token(&app).await;
    crate::auth_helpers::create_user(&app, &admin, "busy", &["Manager"]).await;
    crate::auth_helpers::create_user(&app, &admin, "calm", &["Manager"]).await;
    // Two people reach the console through a proxy on this host, which names each.
    let mut busy = Visitor::new(&app);
    busy.forwarded_for = Some("203.0.113.1");
    let mut calm = Visitor::new(&app);
    calm.forwarded_for = Some("203.0.113.2");
    busy.sign_in("busy", PASSWORD).await;
    let mut pages = 0;
    while busy.get("/console/bots").await.status != StatusCode::TOO_MANY_REQUESTS {
        pages += 1;
        assert!(pages < 30, "the busy person's allowance runs out");
    }
    // The other person, and the API's direct callers, still have theirs.
    let fleet = calm.sign_in("calm", PASSWORD).await;
    assert_eq!(fleet.status, StatusCode::OK, "{}", fleet.html);
    assert!(fleet.html.contains("Signed in as <strong>calm</strong>"));
    let direct = crate::auth_helpers::get(&app, "/api/v1/bots", &admin).await;
    assert_eq!(direct.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_temporary_password_is_changed_in_the_console_before_the_account_signs_in() {
    let app = spawn_app().await;
    let admin = crate::auth_helpers::admin_token(&app).await;
    let created: Value = send_json(
        &app,
        Method::POST,
        "/api/v1/auth/users",
        &admin,
        json!({"username": "fay", "roles": ["Viewer"]}),
    )
    .await
    .json()
    .await
    .unwrap();
    let temporary = created["temporary_password"].as_str().unwrap().to_string();
    let mut visitor = Visitor::new(&app);
    let form = visitor.get("/console/sign-in").await;
    let step = visitor
        .post(
            "/console/sign-in",
            &[
                ("csrf", &form.csrf()),
                ("username", "fay"),
                ("password", &temporary),
            ],
        )
        .await;
    assert_eq!(
        step.location.as_deref(),
        Some("/console/sign-in/password"),
        "{}",
        step.html
    );
    let elsewhere = visitor.get("/console/bots").await;
    assert_eq!(
        elsewhere.location.as_deref(),
        Some("/console/sign-in/password")
    );
    let page = visitor.get("/console/sign-in/password").await;
    let csrf = page.csrf();
    let differ = new_password(
        &mut visitor,
        &csrf,
        &temporary,
        "my-own-new-passphrase-7",
        "my-own-new-passphrase-8",
    )
    .await;
    assert_eq!(differ.status, StatusCode::BAD_REQUEST);
    assert!(differ.html.contains("The two new passwords differ."));
    let weak = new_password(&mut visitor, &csrf, &temporary, "short", "short").await;
    assert_eq!(
        weak.status,
        StatusCode::BAD_REQUEST,
        "the API's own rule: {}",
        weak.html
    );
    let good = "my-own-new-passphrase-7";
    let done = new_password(&mut visitor, &csrf, &temporary, good, good).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    assert_eq!(done.location.as_deref(), Some("/console/bots"));
    let fleet = visitor.get("/console/bots").await;
    assert!(
        fleet.html.contains("Signed in as <strong>fay</strong>"),
        "{}",
        fleet.html
    );
    crate::auth_helpers::login_ok(&app, "fay", "my-own-new-passphrase-7").await;
}

/// Sends the forced password change's form.
async fn new_password(
    visitor: &mut Visitor,
    csrf: &str,
    current: &str,
    new: &str,
    repeat: &str,
) -> crate::console_helpers::Answer {
    let fields = [
        ("csrf", csrf),
        ("current_password", current),
        ("new_password", new),
        ("repeat_password", repeat),
    ];
    visitor.post("/console/sign-in/password", &fields).await
}

#[tokio::test]
async fn an_admin_who_must_have_a_second_factor_sets_it_up_in_the_console() {
    let app = crate::helpers::spawn(
        None,
        &[("VIVESPHERE_AUTHENTICATION__REQUIRE_MFA_FOR_ADMINS", "true")],
        None,
    )
    .await;
    let mut visitor = Visitor::new(&app);
    let form = visitor.get("/console/sign-in").await;
    let fields = [
        ("csrf", form.csrf()),
        ("username", "admin".to_string()),
        ("password", crate::helpers::ADMIN_PASSWORD.to_string()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let step = visitor.post("/console/sign-in", &fields).await;
    assert_eq!(
        step.location.as_deref(),
        Some("/console/sign-in/enrol"),
        "{}",
        step.html
    );
    let page = visitor.get("/console/sign-in/enrol").await;
    assert!(
        page.html.contains("<svg role=\"img\" aria-label=\"QR code"),
        "{}",
        page.html
    );
    assert!(!page.html.contains("<?xml"), "inline SVG");
    let marker = "<code class=\"secret\">";
    let start = page.html.find(marker).unwrap() + marker.len();
    let secret = &page.html[start..start + page.html[start..].find('<').unwrap()];
    // The same page again shows the same secret (one enrolment, not a new one per view).
    assert!(
        visitor
            .get("/console/sign-in/enrol")
            .await
            .html
            .contains(secret)
    );
    let csrf = page.csrf();

    let wrong = visitor
        .post(
            "/console/sign-in/enrol",
            &[("csrf", &csrf), ("code", "000000")],
        )
        .await;
    assert!(wrong.status.is_client_error(), "{}", wrong.status);
    assert_eq!(
        visitor.get("/console/bots").await.location.as_deref(),
        Some("/console/sign-in/enrol")
    );
    let code = totp_code(secret, app.clock.unix_seconds() as u64);
    let done = visitor
        .post(
            "/console/sign-in/enrol",
            &[("csrf", &csrf), ("code", &code)],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.html);
    assert_eq!(
        done.html.matches("<li><code>").count(),
        10,
        "ten recovery codes, once: {}",
        done.html
    );
    let fleet = visitor.get("/console/bots").await;
    assert!(
        fleet.html.contains("Signed in as <strong>admin</strong>"),
        "{}",
        fleet.html
    );
}

#[tokio::test]
async fn people_are_the_admins_to_see_and_each_person_keeps_their_own_account() {
    let app = spawn_app().await;
    let admin_token = crate::auth_helpers::admin_token(&app).await;
    crate::auth_helpers::create_user(&app, &admin_token, "maria", &["Manager"]).await;
    let mut admin = Visitor::new(&app);
    admin.sign_in("admin", crate::helpers::ADMIN_PASSWORD).await;
    let people = admin.get("/console/people").await;
    assert_eq!(people.status, StatusCode::OK);
    assert!(people.html.contains(">maria</a></td>"), "{}", people.html);
    assert!(
        people.html.contains("<dt>Manager</dt>"),
        "roles: {}",
        people.html
    );
    assert!(
        people.html.contains("<code>bot-manager</code>"),
        "clients: {}",
        people.html
    );

    // A Manager sees the API's refusal instead of the accounts.
    let maria_api = crate::auth_helpers::login_ok(&app, "maria", PASSWORD).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut maria = Visitor::new(&app);
    maria.sign_in("maria", PASSWORD).await;
    let refused = maria.get("/console/people").await;
    assert!(!refused.html.contains("<td>admin</td>"), "{}", refused.html);

    // Her account: two sessions (the console's and her own API login); she ends the other.
    let account = maria.get("/console/account").await;
    assert_eq!(account.status, StatusCode::OK, "{}", account.html);
    assert!(account.html.contains("this console"), "{}", account.html);
    assert_eq!(
        account.html.matches("/end\"").count(),
        1,
        "{}",
        account.html
    );
    let end = account
        .html
        .split("action=\"")
        .find(|a| a.starts_with("/console/account/sessions/"))
        .unwrap();
    let end = &end[..end.find('"').unwrap()];
    let ended = maria.post(end, &[("csrf", &account.csrf())]).await;
    assert_eq!(ended.status, StatusCode::SEE_OTHER, "{}", ended.html);
    assert_eq!(
        crate::auth_helpers::validate(&app, &maria_api).await,
        StatusCode::UNAUTHORIZED
    );

    let wrong = maria
        .post(
            "/console/account/password",
            &[
                ("csrf", &account.csrf()),
                ("current_password", "not-it"),
                ("new_password", "harbour-lights-passphrase-42"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.html);
    let changed = maria
        .post(
            "/console/account/password",
            &[
                ("csrf", &account.csrf()),
                ("current_password", PASSWORD),
                ("new_password", "harbour-lights-passphrase-42"),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.html);
    crate::auth_helpers::login_ok(&app, "maria", "harbour-lights-passphrase-42").await;
}

#[tokio::test]
async fn requests_that_find_the_token_expiring_at_once_refresh_it_once() {
    let app = spawn_app().await;
    let admin = crate::auth_helpers::admin_token(&app).await;
    crate::auth_helpers::create_user(&app, &admin, "racer", &["Manager"]).await;
    let mut visitor = Visitor::new(&app);
    visitor.sign_in("racer", PASSWORD).await;
    let cookie = visitor.cookie.clone().unwrap();
    // The access token (15 minutes) has 10 s left: every request now wants a fresh one, and
    // a refresh token used twice ends the whole session at the API.
    app.clock.advance(Duration::from_secs(890));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let pages = (0..8).map(|_| {
        http.get(app.url("/console/bots"))
            .header("cookie", &cookie)
            .send()
    });
    for page in futures::future::join_all(pages).await {
        assert_eq!(page.unwrap().status(), StatusCode::OK);
    }
    let later = visitor.get("/console/bots").await;
    assert_eq!(later.status, StatusCode::OK, "the session lives on");
}

#[tokio::test]
async fn an_open_live_page_does_not_keep_its_session_from_the_idle_timeout() {
    let env = spawn_bots(Default::default(), &[]).await;
    let lead = env.team_manager("north_lead", "north").await;
    let (bot_id, _) = env.bot(&lead, "watchedbot").await;
    let mut visitor = Visitor::new(&env.app);
    visitor.sign_in("north_lead", PASSWORD).await;
    let mut live = reqwest::Client::new()
        .get(env.app.url(&format!("/console/bots/{bot_id}/posts/live")))
        .header("cookie", visitor.cookie.clone().unwrap())
        .send()
        .await
        .unwrap();
    let at = |env: &crate::bots_helpers::BotEnv| env.in_ms(3_600_000);
    let one = env
        .post(&lead, &bot_id, json!({"text": "One.", "run_at": at(&env)}))
        .await["post_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(next_event(&mut live).await.contains(&one));

    // 1,000 s on, the stream reads the posts again (a new one shows)...
    env.app.clock.advance(Duration::from_secs(1_000));
    let lead = env.login("north_lead").await;
    let two = env
        .post(&lead, &bot_id, json!({"text": "Two.", "run_at": at(&env)}))
        .await["post_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(next_event(&mut live).await.contains(&two));
    // ...and 900 s after that the person has been away for 1,900 s (the idle timeout is
    // 1,800): the stream's reading was no activity, so the session is over and so is the stream.
    env.app.clock.advance(Duration::from_secs(900));
    let lead = env.login("north_lead").await;
    let three = env
        .post(
            &lead,
            &bot_id,
            json!({"text": "Three.", "run_at": at(&env)}),
        )
        .await["post_id"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut after = String::new();
    while let Some(chunk) = tokio::time::timeout_at(deadline, live.chunk())
        .await
        .expect("the stream ends within 15 s")
        .unwrap()
    {
        after.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(!after.contains(&three), "{after}");
    let page = visitor.get(&format!("/console/bots/{bot_id}")).await;
    assert_eq!(page.location.as_deref(), Some("/console/sign-in"));
}
