//! Review before posting, end to end against the fake X: who must have posts approved, the
//! approval pinned to the content it saw, separate permissions for drafting and approving, no
//! self-approval, the history of a post, and the worker holding back an unapproved post.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::bots_helpers::{BotEnv, spawn_bots};

/// A team `news` with a Manager (`mia`, a reviewer) and an Editor (`eli`, an author), a bot
/// of the team that requires review; (env, mia, eli, bot id).
async fn reviewed_team() -> (BotEnv, String, String, String) {
    let env = spawn_bots(Default::default(), &[]).await;
    let mia = env.team_member("mia", "Manager", "news").await;
    let eli = env.team_member("eli", "Editor", "news").await;
    let (bot_id, _) = env.bot(&mia, "newsbot").await;
    let set = env
        .send(
            Method::PUT,
            &format!("/api/v1/bots/{bot_id}/review-policy"),
            &mia,
            json!({"approval_required": true}),
        )
        .await;
    assert_eq!(set.status(), StatusCode::OK);
    let policy: Value = set.json().await.unwrap();
    assert_eq!(policy["approval_required"], true);
    assert_eq!(policy["required_by"], json!(["bot"]));
    (env, mia, eli, bot_id)
}

async fn act(env: &BotEnv, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let response = env.send(Method::POST, path, token, body).await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn post_path(bot_id: &str, post: &Value, action: &str) -> String {
    format!(
        "/api/v1/bots/{bot_id}/posts/{}/{action}",
        post["post_id"].as_str().unwrap()
    )
}

async fn history(env: &BotEnv, token: &str, bot_id: &str, post: &Value) -> Vec<Value> {
    let path = post_path(bot_id, post, "history");
    let response = env.get(&path, token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_edit_after_approval_returns_the_post_to_review_and_x_gets_the_approved_text() {
    let (env, mia, eli, bot_id) = reviewed_team().await;
    let post = env
        .post(
            &eli,
            &bot_id,
            json!({"text": "Storm warning for the coast tonight.", "run_at": env.in_ms(3_600_000)}),
        )
        .await;
    assert_eq!(post["state"], "pending_review", "{post}");
    assert_eq!(post["content_version"], 1);
    let (status, approved) = act(
        &env,
        &mia,
        &post_path(&bot_id, &post, "approve"),
        json!({"content_version": 1, "comment": "Matches the bulletin."}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(approved["state"], "scheduled");
    assert!(approved["approval"]["by"].is_string(), "{approved}");

    // The author changes the text after approval: back to review, the approval void.
    let path = format!(
        "/api/v1/bots/{bot_id}/posts/{}",
        post["post_id"].as_str().unwrap()
    );
    let edited = env
        .send(
            Method::PATCH,
            &path,
            &eli,
            json!({"text": "Storm warning for the coast tonight and tomorrow."}),
        )
        .await;
    assert_eq!(edited.status(), StatusCode::OK);
    let edited: Value = edited.json().await.unwrap();
    assert_eq!(edited["state"], "pending_review", "{edited}");
    assert_eq!(edited["content_version"], 2);
    assert!(edited.get("approval").is_none(), "{edited}");

    // An approval of the version the reviewer read before the edit is refused.
    let approve = post_path(&bot_id, &post, "approve");
    let (status, body) = act(&env, &mia, &approve, json!({"content_version": 1})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("changed"),
        "{body}"
    );

    // Approved again at version 2, then published now: X gets exactly the approved text.
    let (status, _) = act(&env, &mia, &approve, json!({"content_version": 2})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, publishing) =
        act(&env, &eli, &post_path(&bot_id, &post, "publish"), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{publishing}");
    let post_id = post["post_id"].as_str().unwrap();
    env.wait_for(&eli, &bot_id, post_id, &["published"]).await;
    let sent = env.x_requests("POST", "/2/tweets");
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].text.as_deref(),
        Some("Storm warning for the coast tonight and tomorrow.")
    );

    // The history names who wrote, edited and approved which version, with the comment.
    let steps: Vec<(String, i64)> = history(&env, &eli, &bot_id, &post)
        .await
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["content_version"].as_i64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("created", 1),
        ("approved", 1),
        ("edited", 2),
        ("approved", 2),
        ("publish_requested", 2),
    ];
    let expected: Vec<(String, i64)> = expected.iter().map(|(a, v)| (a.to_string(), *v)).collect();
    assert_eq!(steps, expected);
    let entries = history(&env, &mia, &bot_id, &post).await;
    assert_eq!(entries[1]["comment"], "Matches the bulletin.");
    assert_eq!(
        entries[2]["content"]["text"],
        "Storm warning for the coast tonight and tomorrow."
    );
    assert_ne!(entries[0]["actor_id"], entries[1]["actor_id"]);
}

#[tokio::test]
async fn nobody_approves_their_own_post_unless_the_team_allows_it() {
    let (env, mia, eli, bot_id) = reviewed_team().await;
    let own = env
        .post(
            &mia,
            &bot_id,
            json!({"text": "My own words.", "publish_now": true}),
        )
        .await;
    assert_eq!(own["state"], "pending_review");
    let approve = post_path(&bot_id, &own, "approve");
    let (status, body) = act(&env, &mia, &approve, json!({"content_version": 1})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("you wrote"),
        "{body}"
    );

    // A reviewer who edited someone else's post wrote part of it: not theirs to approve.
    let theirs = env
        .post(
            &eli,
            &bot_id,
            json!({"text": "Draft by eli.", "run_at": env.in_ms(3_600_000)}),
        )
        .await;
    let path = format!(
        "/api/v1/bots/{bot_id}/posts/{}",
        theirs["post_id"].as_str().unwrap()
    );
    let edit = env
        .send(
            Method::PATCH,
            &path,
            &mia,
            json!({"text": "Draft by eli, fixed by mia."}),
        )
        .await;
    assert_eq!(edit.status(), StatusCode::OK);
    let approve_theirs = post_path(&bot_id, &theirs, "approve");
    let (status, _) = act(&env, &mia, &approve_theirs, json!({"content_version": 2})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The team's policy allows self-approval: now it goes through, and out to X.
    let allow = env
        .send(
            Method::PUT,
            "/api/v1/bots/review-policies/news",
            &env.admin,
            json!({"approval_required": false, "allow_self_approval": true}),
        )
        .await;
    assert_eq!(allow.status(), StatusCode::OK);
    let (status, body) = act(&env, &mia, &approve, json!({"content_version": 1})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    env.wait_for(
        &mia,
        &bot_id,
        own["post_id"].as_str().unwrap(),
        &["published"],
    )
    .await;
}

#[tokio::test]
async fn drafting_and_approving_are_separate_permissions_and_authors_cannot_waive_review() {
    let (env, mia, eli, bot_id) = reviewed_team().await;
    let vic = env.team_member("vic", "Viewer", "news").await;
    let text = json!({"text": "Viewers do not write.", "publish_now": true});
    let path = format!("/api/v1/bots/{bot_id}/posts");
    let refused = env.send(Method::POST, &path, &vic, text).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    let post = env
        .post(
            &mia,
            &bot_id,
            json!({"text": "Reviewed by someone else.", "publish_now": true}),
        )
        .await;
    let approve = post_path(&bot_id, &post, "approve");
    let (status, body) = act(&env, &eli, &approve, json!({"content_version": 1})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("posts:approve"),
        "{body}"
    );

    // An author cannot turn review off for the bot, nor for the team.
    let waive = env
        .send(
            Method::PUT,
            &format!("/api/v1/bots/{bot_id}/review-policy"),
            &eli,
            json!({"approval_required": false}),
        )
        .await;
    assert_eq!(waive.status(), StatusCode::FORBIDDEN);
    let team = env
        .send(
            Method::PUT,
            "/api/v1/bots/review-policies/news",
            &mia,
            json!({"approval_required": false}),
        )
        .await;
    assert_eq!(team.status(), StatusCode::FORBIDDEN);

    // A bot that does not require review itself still does when its team does.
    let require_team = env
        .send(
            Method::PUT,
            "/api/v1/bots/review-policies/news",
            &env.admin,
            json!({"approval_required": true}),
        )
        .await;
    assert_eq!(require_team.status(), StatusCode::OK);
    let off = env
        .send(
            Method::PUT,
            &format!("/api/v1/bots/{bot_id}/review-policy"),
            &mia,
            json!({"approval_required": false}),
        )
        .await;
    let off: Value = off.json().await.unwrap();
    assert_eq!(off["approval_required"], true, "{off}");
    assert_eq!(off["required_by"], json!(["team"]));
    let still = env
        .post(
            &eli,
            &bot_id,
            json!({"text": "Still reviewed.", "publish_now": true}),
        )
        .await;
    assert_eq!(still["state"], "pending_review");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(env.x_requests("POST", "/2/tweets").is_empty());
}

#[tokio::test]
async fn changes_requested_need_a_comment_and_an_edit_resubmits() {
    let (env, mia, eli, bot_id) = reviewed_team().await;
    let post = env
        .post(
            &eli,
            &bot_id,
            json!({"text": "Fresh bread at 7.", "publish_now": true}),
        )
        .await;
    let ask = post_path(&bot_id, &post, "request-changes");
    let (status, body) = act(&env, &mia, &ask, json!({"content_version": 1})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("comment"),
        "{body}"
    );
    let (status, body) = act(
        &env,
        &mia,
        &ask,
        json!({"content_version": 1, "comment": "Say which bakery."}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "changes_requested");
    // Nothing to approve until the author acts.
    let approve = post_path(&bot_id, &post, "approve");
    let (status, _) = act(&env, &mia, &approve, json!({"content_version": 1})).await;
    assert_eq!(status, StatusCode::CONFLICT);

    let path = format!(
        "/api/v1/bots/{bot_id}/posts/{}",
        post["post_id"].as_str().unwrap()
    );
    let edited = env
        .send(
            Method::PATCH,
            &path,
            &eli,
            json!({"text": "Fresh bread at 7 at Rye & Co."}),
        )
        .await;
    let edited: Value = edited.json().await.unwrap();
    assert_eq!(edited["state"], "pending_review", "{edited}");
    let entries = history(&env, &eli, &bot_id, &post).await;
    let asked = entries
        .iter()
        .find(|e| e["action"] == "changes_requested")
        .expect("the request for changes is in the history");
    assert_eq!(asked["comment"], "Say which bakery.");
    assert_eq!(entries.last().unwrap()["action"], "edited");
}

#[tokio::test]
async fn a_draft_is_submitted_for_review_and_approved_without_a_time() {
    let (env, mia, eli, bot_id) = reviewed_team().await;
    let draft = env
        .post(&eli, &bot_id, json!({"text": "Weekend market opens at 9."}))
        .await;
    assert_eq!(draft["state"], "draft");
    let (status, submitted) =
        act(&env, &eli, &post_path(&bot_id, &draft, "submit"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(submitted["state"], "pending_review");
    let (status, approved) = act(
        &env,
        &mia,
        &post_path(&bot_id, &draft, "approve"),
        json!({"content_version": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(approved["state"], "approved", "{approved}");
    // Scheduling an approved post keeps the approval: the content did not change.
    let (status, scheduled) = act(
        &env,
        &eli,
        &post_path(&bot_id, &draft, "schedule"),
        json!({"run_at": env.in_ms(600_000)}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{scheduled}");
    assert_eq!(scheduled["state"], "scheduled");
    assert!(scheduled["approval"].is_object(), "{scheduled}");
}

#[tokio::test]
async fn the_worker_holds_back_a_post_scheduled_before_review_came_into_force() {
    let env = spawn_bots(Default::default(), &[]).await;
    let mia = env.team_member("mia", "Manager", "news").await;
    let (bot_id, _) = env.bot(&mia, "newsbot").await;
    let post = env
        .post(
            &mia,
            &bot_id,
            json!({"text": "Scheduled before review.", "run_at": env.in_ms(3_600_000)}),
        )
        .await;
    assert_eq!(post["state"], "scheduled");
    let team = env
        .send(
            Method::PUT,
            "/api/v1/bots/review-policies/news",
            &env.admin,
            json!({"approval_required": true}),
        )
        .await;
    assert_eq!(team.status(), StatusCode::OK);
    env.app.clock.advance(Duration::from_secs(3_600));
    let mia = env.login("mia").await;
    let held = env
        .wait_for(
            &mia,
            &bot_id,
            post["post_id"].as_str().unwrap(),
            &["pending_review", "published"],
        )
        .await;
    assert_eq!(held["state"], "pending_review", "{held}");
    assert!(
        held["error"].as_str().unwrap().contains("requires review"),
        "{held}"
    );
    assert!(env.x_requests("POST", "/2/tweets").is_empty());
}

#[tokio::test]
async fn more_than_one_cashtag_is_refused_before_it_can_go_out() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    let (bot_id, _) = env.bot(&alice, "tickerbot").await;
    let path = format!("/api/v1/bots/{bot_id}/posts");
    let response = env
        .send(
            Method::POST,
            &path,
            &alice,
            json!({"text": "Watching $ACME and $GLOBX today.", "publish_now": true}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("one cashtag") && message.contains("$ACME"),
        "{message}"
    );
    // A draft may hold it while it is being written; scheduling it is refused the same way.
    let draft = env
        .post(
            &alice,
            &bot_id,
            json!({"text": "Watching $ACME and $GLOBX today."}),
        )
        .await;
    let (status, _) = act(
        &env,
        &alice,
        &post_path(&bot_id, &draft, "schedule"),
        json!({"run_at": env.in_ms(600_000)}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let one = env
        .post(
            &alice,
            &bot_id,
            json!({"text": "Watching $ACME today.", "publish_now": true}),
        )
        .await;
    assert_eq!(one["state"], "scheduled");
}

/// Two bots' posts that both passed the duplicate check (as two creates committing at the
/// same moment do; here one post's text is swapped in behind the checks): when both fall due,
/// the worker lets exactly one reach X and fails the other, naming the rule.
#[tokio::test]
async fn the_worker_checks_duplicates_again_right_before_sending() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    let (first_bot, _) = env.bot(&alice, "firstbot").await;
    let (second_bot, _) = env.bot(&alice, "secondbot").await;
    let at = env.in_ms(3_600_000);
    let first = env
        .post(
            &alice,
            &first_bot,
            json!({"text": "Flash sale: 40% off today only!", "run_at": at}),
        )
        .await;
    let second = env
        .post(
            &alice,
            &second_bot,
            json!({"text": "Something else entirely.", "run_at": at}),
        )
        .await;
    let db = env.db().await;
    sqlx::query(
        "UPDATE posts SET text = (SELECT text FROM posts WHERE post_id = $1), \
         fingerprint = (SELECT fingerprint FROM posts WHERE post_id = $1) WHERE post_id = $2",
    )
    .bind(first["post_id"].as_str().unwrap())
    .bind(second["post_id"].as_str().unwrap())
    .execute(&db)
    .await
    .unwrap();
    env.app.clock.advance(Duration::from_secs(3_600));
    let alice = env.login("alice").await;
    let mut states = Vec::new();
    for (bot_id, post) in [(&first_bot, &first), (&second_bot, &second)] {
        let post_id = post["post_id"].as_str().unwrap();
        let done = env
            .wait_for(&alice, bot_id, post_id, &["published", "failed"])
            .await;
        states.push(done);
    }
    let published = states.iter().filter(|p| p["state"] == "published").count();
    assert_eq!(published, 1, "{states:?}");
    let failed = states.iter().find(|p| p["state"] == "failed").unwrap();
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("automation rules"),
        "{failed}"
    );
    assert_eq!(env.x_requests("POST", "/2/tweets").len(), 1);
}
