//! A bot's automation disclosure (X's automated-account label, a bio that says so, the
//! operator's account): where required, a bot's first post waits until a person confirmed it,
//! every part of it.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::bots_helpers::spawn_bots;

#[tokio::test]
async fn a_bots_first_post_waits_for_its_confirmed_disclosure() {
    let env = spawn_bots(
        Default::default(),
        &[(
            "VIVESPHERE_BOT_MANAGER__COMPLIANCE__RECORD_REQUIRED",
            "true",
        )],
    )
    .await;
    let alice = env.team_manager("alice", "harbour").await;
    let (bot_id, _) = env.bot(&alice, "labelbot").await;
    let posts = format!("/api/v1/bots/{bot_id}/posts");
    let first = json!({"text": "Hello, harbour.", "publish_now": true});
    let response = env.send(Method::POST, &posts, &alice, first.clone()).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("automation disclosure"),
        "{body}"
    );
    // A draft may wait for it.
    let draft = env.post(&alice, &bot_id, json!({"text": "A draft"})).await;
    assert_eq!(draft["state"], "draft");

    let path = format!("/api/v1/bots/{bot_id}/compliance");
    let unconfirmed: Value = env.get(&path, &alice).await.json().await.unwrap();
    assert_eq!(unconfirmed["confirmed"], false);
    for (body, field) in [
        (
            json!({"automated_label": false, "bio_discloses_automation": true, "operator_account": "ada"}),
            "automated_label",
        ),
        (
            json!({"automated_label": true, "bio_discloses_automation": false, "operator_account": "ada"}),
            "bio_discloses_automation",
        ),
        (
            json!({"automated_label": true, "bio_discloses_automation": true, "operator_account": "not a handle"}),
            "operator_account",
        ),
    ] {
        let response = env.send(Method::PUT, &path, &alice, body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let refused: Value = response.json().await.unwrap();
        assert!(
            refused["message"].as_str().unwrap().starts_with(field),
            "{refused}"
        );
    }
    let viewer = env.team_member("vera", "Viewer", "harbour").await;
    let full = json!({"automated_label": true, "bio_discloses_automation": true, "operator_account": "ada_operator"});
    let response = env.send(Method::PUT, &path, &viewer, full.clone()).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let response = env.send(Method::PUT, &path, &alice, full).await;
    assert_eq!(response.status(), StatusCode::OK);
    let confirmed: Value = env.get(&path, &alice).await.json().await.unwrap();
    assert_eq!(confirmed["confirmed"], true);
    assert_eq!(confirmed["operator_url"], "https://x.com/ada_operator");
    assert!(confirmed["confirmed_by"].is_string());

    let response = env.send(Method::POST, &posts, &alice, first).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let post: Value = response.json().await.unwrap();
    let done = env
        .wait_for(
            &alice,
            &bot_id,
            post["post_id"].as_str().unwrap(),
            &["published"],
        )
        .await;
    assert_eq!(done["state"], "published");
}
