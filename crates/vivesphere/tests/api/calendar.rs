//! The calendar across bots (`GET /api/v1/bots/posts`): every post of the bots a caller
//! reaches, by its time, filtered by time range, team, bot and state, with keyset paging —
//! and, with `state=pending_review`, the reviewers' queue.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::bots_helpers::{BotEnv, spawn_bots};

async fn calendar(env: &BotEnv, token: &str, query: &str) -> (StatusCode, Value) {
    let response = env.get(&format!("/api/v1/bots/posts?{query}"), token).await;
    let status = response.status();
    (status, response.json().await.unwrap())
}

fn texts(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["text"].as_str().unwrap().to_string())
        .collect()
}

/// Every page of a query, following `next_cursor`.
async fn all_pages(env: &BotEnv, token: &str, query: &str) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let with_cursor = match &cursor {
            Some(c) => format!("{query}&cursor={c}"),
            None => query.to_string(),
        };
        let (status, page) = calendar(env, token, &with_cursor).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages.push(texts(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return pages,
        }
    }
}

fn encode(time: &str) -> String {
    time.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn the_calendar_spans_the_bots_a_caller_reaches_in_time_order_with_keyset_paging() {
    let env = spawn_bots(Default::default(), &[]).await;
    let mia = env.team_member("mia", "Manager", "news").await;
    let bob = env.team_member("bob", "Manager", "sports").await;
    let (morning, _) = env.bot(&mia, "morningbot").await;
    let (evening, _) = env.bot(&mia, "eveningbot").await;
    let (scores, _) = env.bot(&bob, "scoresbot").await;
    // Created out of time order, across two bots of the team and one of another team.
    for (bot, hours, text) in [
        (&evening, 5, "e5"),
        (&morning, 1, "m1"),
        (&scores, 2, "s2"),
        (&evening, 3, "e3"),
        (&morning, 4, "m4"),
        (&morning, 2, "m2"),
    ] {
        let at = env.in_ms(hours * 3_600_000);
        let owner = if bot == &scores { &bob } else { &mia };
        env.post(owner, bot, json!({"text": text, "run_at": at}))
            .await;
    }
    let window = format!(
        "from={}&to={}",
        encode(&env.in_ms(0)),
        encode(&env.in_ms(10 * 3_600_000))
    );
    let pages = all_pages(&env, &mia, &format!("{window}&limit=2")).await;
    assert_eq!(
        pages,
        vec![vec!["m1", "m2"], vec!["e3", "m4"], vec!["e5"]],
        "the team's posts in time order, two per page; never the other team's"
    );
    let everyone = all_pages(&env, &env.admin, &window).await;
    // s2 was asked for before m2 (both two hours ahead of their create): it is earlier.
    assert_eq!(everyone, vec![vec!["m1", "s2", "m2", "e3", "m4", "e5"]]);
    // A narrower window, one bot, and a team the caller does not reach.
    let narrow = format!(
        "from={}&to={}&bot_id={morning}",
        encode(&env.in_ms(90 * 60_000)),
        encode(&env.in_ms(10 * 3_600_000))
    );
    assert_eq!(all_pages(&env, &mia, &narrow).await, vec![vec!["m2", "m4"]]);
    assert_eq!(
        all_pages(&env, &mia, "team=sports").await,
        vec![Vec::<String>::new()]
    );
}

#[tokio::test]
async fn the_review_queue_is_the_calendar_of_posts_pending_review() {
    let env = spawn_bots(
        Default::default(),
        &[("VIVESPHERE_BOT_MANAGER__APPROVALS__REQUIRED", "true")],
    )
    .await;
    let mia = env.team_member("mia", "Manager", "news").await;
    let eli = env.team_member("eli", "Editor", "news").await;
    let (first, _) = env.bot(&mia, "firstbot").await;
    let (second, _) = env.bot(&mia, "secondbot").await;
    env.post(
        &eli,
        &first,
        json!({"text": "later", "run_at": env.in_ms(7_200_000)}),
    )
    .await;
    env.post(
        &eli,
        &second,
        json!({"text": "now please", "publish_now": true}),
    )
    .await;
    let draft = env
        .post(&eli, &second, json!({"text": "just a draft"}))
        .await;
    assert_eq!(draft["state"], "draft");
    let (status, queue) = calendar(&env, &mia, "state=pending_review").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(texts(&queue), ["now please", "later"]);
    let (status, both) = calendar(&env, &mia, "state=pending_review,draft").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(texts(&both).len(), 3);
}

#[tokio::test]
async fn bad_calendar_queries_are_clear_400s() {
    let env = spawn_bots(Default::default(), &[]).await;
    for query in [
        "from=yesterday",
        "to=2026-13-01T00:00:00Z",
        "state=bogus",
        "state=scheduled,,draft",
        "cursor=nonsense",
        "cursor=12.not-a-post",
        "team=no%20spaces",
        "unknown=1",
    ] {
        let (status, body) = calendar(&env, &env.admin, query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(body["message"].is_string(), "{query}: {body}");
    }
    let viewer_only = env
        .send(
            Method::POST,
            "/api/v1/auth/users",
            &env.admin,
            json!({"username": "val", "password": crate::auth_helpers::PASSWORD, "roles": []}),
        )
        .await;
    assert_eq!(viewer_only.status(), StatusCode::CREATED);
    let val = env.login("val").await;
    let (status, _) = calendar(&env, &val, "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
