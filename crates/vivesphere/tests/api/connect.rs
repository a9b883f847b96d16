//! Connecting a bot's X account with OAuth 2.0 Authorization Code and PKCE, against the fake
//! X's consent page and token endpoint: the bot learns its account and posts as it; a wrong
//! state, a code issued for another verifier, another person, a late return, a declined
//! consent and another account are each refused, storing nothing.

use std::collections::HashMap;
use std::time::Duration;

use fake_x::NewUser;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::bots_helpers::{BotEnv, spawn_bots};

const REDIRECT: &str = "https://console.example.org/x/callback";

/// Starts a connection for the bot (asserting 201); its answer.
async fn start(env: &BotEnv, token: &str, bot_id: &str) -> Value {
    let path = format!("/api/v1/bots/{bot_id}/x-connect");
    let body = json!({"client_id": "harbour-app", "redirect_uri": REDIRECT});
    let response = env.send(Method::POST, &path, token, body).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

fn query_of(url: &str) -> HashMap<String, String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The person signs in to X as `username` and consents: where X sends their browser back.
async fn consent(authorize_url: &str, username: &str) -> HashMap<String, String> {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = browser
        .get(authorize_url)
        .header("x-fake-user", username)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(REDIRECT), "{location}");
    query_of(&location)
}

async fn callback(env: &BotEnv, token: &str, bot_id: &str, body: Value) -> (StatusCode, Value) {
    let path = format!("/api/v1/bots/{bot_id}/x-connect/callback");
    let response = env.send(Method::POST, &path, token, body).await;
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn bot_of(env: &BotEnv, token: &str, bot_id: &str) -> Value {
    env.get(&format!("/api/v1/bots/{bot_id}"), token)
        .await
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_bot_connected_with_pkce_learns_its_account_and_posts_as_it() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    let user = env.fake.add_user(NewUser::named("Harbour_News"));
    // A bot with neither tokens nor a handle waits for its account.
    let response = env
        .send(
            Method::POST,
            "/api/v1/bots",
            &alice,
            json!({"bot_name": "Harbour news"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let bot: Value = response.json().await.unwrap();
    assert_eq!(bot["status"], "needs_reauth", "{bot}");
    let bot_id = bot["bot_id"].as_str().unwrap();

    let started = start(&env, &alice, bot_id).await;
    let url = started["authorize_url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/i/oauth2/authorize?", env.fake_base())));
    let asked = query_of(url);
    assert_eq!(asked["response_type"], "code");
    assert_eq!(asked["client_id"], "harbour-app");
    assert_eq!(asked["redirect_uri"], REDIRECT);
    assert_eq!(asked["code_challenge_method"], "S256");
    assert_eq!(asked["code_challenge"].len(), 43, "BASE64URL(SHA-256)");
    assert_eq!(asked["state"], started["state"].as_str().unwrap());
    assert_eq!(
        asked["scope"],
        "tweet.read tweet.write users.read offline.access media.write"
    );

    let back = consent(url, "harbour_news").await;
    assert_eq!(back["state"], asked["state"]);
    let body = json!({"state": back["state"], "code": back["code"]});
    let (status, connected) = callback(&env, &alice, bot_id, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{connected}");
    assert_eq!(connected["status"], "active");
    assert_eq!(
        connected["x_handle"], "Harbour_News",
        "X's spelling of the handle"
    );
    assert_eq!(connected["x_user_id"], user.user_id.as_str());
    assert!(
        !connected.to_string().contains(&back["code"]),
        "no secret in the answer"
    );

    // The same state and code again: spent.
    let (status, again) = callback(&env, &alice, bot_id, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{again}");

    // The bot posts as the account that consented, with the tokens X issued to the app.
    env.confirm_disclosure(&alice, bot_id).await;
    env.publish_now(&alice, bot_id, "Ferry timetable changes from Monday.")
        .await;
    let posted = env.x_requests("POST", "/2/tweets");
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].user_id.as_deref(), Some(user.user_id.as_str()));
}

#[tokio::test]
async fn a_wrong_state_a_foreign_verifier_another_person_or_a_late_return_is_refused() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.team_manager("alice", "ops").await;
    let bob = env.team_manager("bob", "ops").await;
    let (bot_id, _) = env.bot(&alice, "quay_bot").await;
    let before = bot_of(&env, &alice, &bot_id).await;

    // A state nobody issued: refused, and the connection in progress is untouched.
    let started = start(&env, &alice, &bot_id).await;
    let url = started["authorize_url"].as_str().unwrap();
    let back = consent(url, "quay_bot").await;
    let wrong = json!({"state": "not-the-state-we-sent", "code": back["code"]});
    let (status, body) = callback(&env, &alice, &bot_id, wrong).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error_code"], "INVALID_DATA");

    // A code X issued for another verifier's challenge (an injected code): X refuses the
    // exchange, nothing is stored, and the connection is spent.
    let mut injected = reqwest::Url::parse(url).unwrap();
    let challenge = fake_x::s256_challenge("an-attackers-verifier-an-attackers-verifier-0");
    let pairs: Vec<(String, String)> = injected
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "code_challenge" {
                challenge.clone()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    injected.query_pairs_mut().clear().extend_pairs(pairs);
    let foreign = consent(injected.as_str(), "quay_bot").await;
    let body = json!({"state": started["state"], "code": foreign["code"]});
    let (status, refused) = callback(&env, &alice, &bot_id, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("code verifier"),
        "{refused}"
    );
    let (status, _) = callback(
        &env,
        &alice,
        &bot_id,
        json!({"state": started["state"], "code": back["code"]}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a refused connection is spent"
    );

    // Only the person who started it may complete it.
    let started = start(&env, &alice, &bot_id).await;
    let back = consent(started["authorize_url"].as_str().unwrap(), "quay_bot").await;
    let body = json!({"state": back["state"], "code": back["code"]});
    let (status, _) = callback(&env, &bob, &bot_id, body).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Ten minutes later the state is no good.
    let started = start(&env, &alice, &bot_id).await;
    let back = consent(started["authorize_url"].as_str().unwrap(), "quay_bot").await;
    env.app.clock.advance(Duration::from_secs(11 * 60));
    let body = json!({"state": back["state"], "code": back["code"]});
    let (status, late) = callback(&env, &alice, &bot_id, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{late}");
    assert!(late["message"].as_str().unwrap().contains("expired"));

    // Declined at X.
    let started = start(&env, &alice, &bot_id).await;
    let body = json!({"state": started["state"], "error": "access_denied"});
    let (status, declined) = callback(&env, &alice, &bot_id, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{declined}");

    let after = bot_of(&env, &alice, &bot_id).await;
    assert_eq!(after["version"], before["version"], "the bot never changed");
    let exchanged = env.x_requests("POST", "/2/oauth2/token");
    assert_eq!(
        exchanged.len(),
        1,
        "only the injected code reached X's token endpoint"
    );
    assert_eq!(exchanged[0].status, 400);
}

#[tokio::test]
async fn an_account_other_than_the_bots_is_refused() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    let (bot_id, _) = env.bot(&alice, "pier_bot").await;
    env.fake.add_user(NewUser::named("someone_else"));
    let started = start(&env, &alice, &bot_id).await;
    let back = consent(started["authorize_url"].as_str().unwrap(), "someone_else").await;
    let body = json!({"state": back["state"], "code": back["code"]});
    let (status, refused) = callback(&env, &alice, &bot_id, body).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("@someone_else")
    );
    // The tokens X issued for the wrong account were handed back (access and refresh).
    let revoked: Vec<u16> = env
        .x_requests("POST", "/2/oauth2/revoke")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(revoked, [200, 200]);
    let bot = bot_of(&env, &alice, &bot_id).await;
    assert_eq!(bot["x_handle"], "pier_bot");
    // The bot still posts as its own account, with its own tokens.
    env.publish_now(&alice, &bot_id, "Pier open until 22:00.")
        .await;
}

#[tokio::test]
async fn a_connection_is_asked_for_with_a_safe_redirect_and_by_someone_who_may() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    let (bot_id, _) = env.bot(&alice, "dock_bot").await;
    let path = format!("/api/v1/bots/{bot_id}/x-connect");
    for (body, field) in [
        (
            json!({"client_id": "app", "redirect_uri": "http://console.example.org/cb"}),
            "redirect_uri",
        ),
        (
            json!({"client_id": "app", "redirect_uri": "https://console.example.org/cb#x"}),
            "redirect_uri",
        ),
        (
            json!({"client_id": "app", "redirect_uri": "not a url"}),
            "redirect_uri",
        ),
        (
            json!({"client_id": "", "redirect_uri": REDIRECT}),
            "client_id",
        ),
    ] {
        let response = env.send(Method::POST, &path, &alice, body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.unwrap();
        assert!(
            body["message"].as_str().unwrap().starts_with(field),
            "{body}"
        );
    }
    let loopback = json!({"client_id": "app", "redirect_uri": "http://127.0.0.1:8400/cb"});
    let response = env.send(Method::POST, &path, &alice, loopback).await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "http on the loopback"
    );

    let viewer = env.team_member("vera", "Viewer", "ops").await;
    let body = json!({"client_id": "app", "redirect_uri": REDIRECT});
    let response = env.send(Method::POST, &path, &viewer, body).await;
    assert!(
        matches!(
            response.status(),
            StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
        ),
        "{}",
        response.status()
    );
}
