//! A bot's automation disclosure (X's automated-account label, a bio that says so, the
//! operator's account): a bot's first post waits until a person confirmed it, every part of
//! it; with the setting off (a deployment's choice) it does not.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::bots_helpers::spawn_bots;

#[tokio::test]
async fn a_bots_first_post_waits_for_its_confirmed_disclosure() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.team_manager("alice", "harbour").await;
    // Made without the helper, which confirms the disclosure.
    let user = env.fake.add_user(fake_x::NewUser::named("labelbot"));
    let credentials = json!({"access_token": user.access_token,
        "refresh_token": user.refresh_token, "client_id": user.client_id});
    let body = json!({"bot_name": "Label bot", "x_handle": "labelbot", "credentials": credentials});
    let created = env.send(Method::POST, "/api/v1/bots", &alice, body).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let bot_id = created.json::<Value>().await.unwrap()["bot_id"]
        .as_str()
        .unwrap()
        .to_string();
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

#[tokio::test]
async fn with_the_requirement_off_a_first_post_does_not_wait() {
    let env = spawn_bots(
        Default::default(),
        &[(
            "VIVESPHERE_BOT_MANAGER__COMPLIANCE__RECORD_REQUIRED",
            "false",
        )],
    )
    .await;
    let alice = env.manager("alice").await;
    let user = env.fake.add_user(fake_x::NewUser::named("plainbot"));
    let body = json!({"bot_name": "Plain", "credentials": {"access_token": user.access_token}});
    let created = env.send(Method::POST, "/api/v1/bots", &alice, body).await;
    let bot_id = created.json::<Value>().await.unwrap()["bot_id"]
        .as_str()
        .unwrap()
        .to_string();
    env.publish_now(&alice, &bot_id, "No disclosure asked for.")
        .await;
}

#[tokio::test]
async fn an_import_of_timed_posts_for_an_undisclosed_bot_names_the_rows() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    let user = env.fake.add_user(fake_x::NewUser::named("quietbot"));
    let body = json!({"bot_name": "Quiet", "credentials": {"access_token": user.access_token}});
    let created = env.send(Method::POST, "/api/v1/bots", &alice, body).await;
    let bot_id = created.json::<Value>().await.unwrap()["bot_id"]
        .as_str()
        .unwrap()
        .to_string();
    let rows = json!({"posts": [
        {"bot_id": bot_id, "text": "A draft is fine."},
        {"bot_id": bot_id, "text": "A timed one waits.", "run_at": "2031-03-20T10:00:00Z"},
    ]});
    let response = env
        .send(
            Method::POST,
            "/api/v1/bots/posts/import?dry_run=true",
            &alice,
            rows,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["valid"], 1, "{report}");
    assert_eq!(report["errors"][0]["row"], 2);
    let message = report["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("automation disclosure"), "{report}");
}
