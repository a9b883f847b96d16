//! X's reply restriction for self-serve apps, against the fake X that enforces it: a reply
//! is accepted where the post's author mentioned the bot, quoted it, or is the bot, and
//! refused before scheduling (saying why) anywhere else; with the check off, X's own 403
//! fails the post with X's words.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::bots_helpers::{BotEnv, spawn_bots};

/// A post by another X user, straight at the fake X; its id.
async fn post_as(env: &BotEnv, user: &fake_x::UserTokens, body: Value) -> String {
    let response = env
        .app
        .client
        .post(format!("{}/2/tweets", env.fake_base()))
        .bearer_auth(&user.access_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["data"]["id"].as_str().unwrap().to_string()
}

async fn reply(
    env: &BotEnv,
    token: &str,
    bot_id: &str,
    to: &str,
    text: &str,
) -> (StatusCode, Value) {
    let path = format!("/api/v1/bots/{bot_id}/posts");
    let body = json!({"text": text, "reply_to_x_post_id": to, "publish_now": true});
    let response = env.send(Method::POST, &path, token, body).await;
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_self_serve_bot_replies_only_where_it_was_mentioned_or_quoted() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    let (bot_id, _) = env.bot(&alice, "replybot").await;
    let harbour = env.fake.add_user(fake_x::NewUser::named("harbourmaster"));
    let own_post = env
        .publish_now(&alice, &bot_id, "Ferry times updated.")
        .await;
    let own_x_id = env.read_post(&alice, &bot_id, &own_post).await["x_post_id"]
        .as_str()
        .unwrap()
        .to_string();
    let plain = post_as(
        &env,
        &harbour,
        json!({"text": "The 9:40 ferry is delayed."}),
    )
    .await;
    let mention = post_as(
        &env,
        &harbour,
        json!({"text": "Thanks @ReplyBot for the times!"}),
    )
    .await;
    let quote = post_as(
        &env,
        &harbour,
        json!({"text": "Worth a read", "quote_tweet_id": own_x_id}),
    )
    .await;

    let (status, refused) =
        reply(&env, &alice, &bot_id, &plain, "We will post the new time.").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("mentioned"),
        "{refused}"
    );

    for (to, text) in [
        (&mention, "You are welcome!"),
        (&quote, "Thanks for sharing."),
        (&own_x_id, "Also: the 18:10 runs late."),
    ] {
        let (status, post) = reply(&env, &alice, &bot_id, to, text).await;
        assert_eq!(status, StatusCode::CREATED, "{post}");
        let done = env
            .wait_for(
                &alice,
                &bot_id,
                post["post_id"].as_str().unwrap(),
                &["published", "failed"],
            )
            .await;
        assert_eq!(done["state"], "published", "{done}");
        assert_eq!(
            env.fake
                .reply_target(done["x_post_id"].as_str().unwrap())
                .as_deref(),
            Some(to.as_str())
        );
    }
}

#[tokio::test]
async fn with_the_check_off_x_refuses_the_reply_and_the_post_fails_with_xs_words() {
    let env = spawn_bots(
        Default::default(),
        &[(
            "VIVESPHERE_BOT_MANAGER__X_LIMITS__REPLIES_RESTRICTED",
            "false",
        )],
    )
    .await;
    let alice = env.manager("alice").await;
    let (bot_id, _) = env.bot(&alice, "enterprisebot").await;
    let harbour = env.fake.add_user(fake_x::NewUser::named("harbourmaster"));
    let plain = post_as(&env, &harbour, json!({"text": "Pier closed for repairs."})).await;
    let (status, post) = reply(&env, &alice, &bot_id, &plain, "Noted, thanks.").await;
    assert_eq!(status, StatusCode::CREATED, "not checked here: {post}");
    let done = env
        .wait_for(
            &alice,
            &bot_id,
            post["post_id"].as_str().unwrap(),
            &["published", "failed"],
        )
        .await;
    assert_eq!(done["state"], "failed", "{done}");
    assert!(
        done["error"]
            .as_str()
            .unwrap()
            .contains("not been mentioned"),
        "{done}"
    );
}
