//! Bot helpers both suites share (the one-process app and the local cluster behind its
//! gateway), included by path: each suite is its own test binary.

use fake_x::{FakeX, NewUser, UserTokens};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Creates a bot holding a new fake X user's OAuth 2.0 tokens through `bots_url` (the
/// `/api/v1/bots` of the app or of the gateway); its id and the X user.
pub async fn create_bot(
    http: &reqwest::Client,
    bots_url: &str,
    token: &str,
    fake: &FakeX,
    name: &str,
) -> (String, UserTokens) {
    let user = fake.add_user(NewUser::named(name));
    let response = http
        .post(bots_url)
        .bearer_auth(token)
        .json(&json!({
            "bot_name": name,
            "x_handle": name,
            "operator_account": "human_operator",
            "credentials": {
                "access_token": user.access_token,
                "refresh_token": user.refresh_token,
                "client_id": user.client_id,
            },
        }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), StatusCode::CREATED, "{name} is created");
    let body: Value = response.json().await.expect("a JSON body");
    let bot_id = body["bot_id"].as_str().expect("a bot id").to_string();
    confirm_disclosure(http, bots_url, token, &bot_id).await;
    (bot_id, user)
}

/// Confirms the bot's automation disclosure (X's label, the bio, the operator), which its
/// first post waits for.
pub async fn confirm_disclosure(http: &reqwest::Client, bots_url: &str, token: &str, bot_id: &str) {
    let response = http
        .put(format!("{bots_url}/{bot_id}/compliance"))
        .bearer_auth(token)
        .json(
            &json!({"automated_label": true, "bio_discloses_automation": true,
                      "operator_account": "human_operator"}),
        )
        .send()
        .await
        .expect("request sent");
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the disclosure is confirmed"
    );
}
