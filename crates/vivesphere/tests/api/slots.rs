//! Posting slots on the bot's wall clock (its IANA time zone) and "add to queue", across a
//! daylight-saving change. The test clock starts on Friday 2031-03-14; Europe/Berlin leaves
//! winter time on Sunday 2031-03-30 (02:00 → 03:00).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::bots_helpers::spawn_bots;

#[tokio::test]
async fn a_slot_across_a_daylight_saving_change_lands_at_the_right_local_time() {
    // The Sundays below follow from where the platform clock of every test app starts.
    assert_eq!(
        crate::helpers::TEST_START,
        time::macros::datetime!(2031-03-14 09:00 UTC),
        "the test clock moved: move this test's Sundays with it"
    );
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    let (bot_id, _) = env.bot(&alice, "berlinbot").await;
    let path = format!("/api/v1/bots/{bot_id}");
    let set = env
        .send(
            Method::PATCH,
            &path,
            &alice,
            json!({"time_zone": "Europe/Berlin", "posting_slots": [{"day": "sun", "start": "09:00", "end": "10:00"}]}),
        )
        .await;
    assert_eq!(set.status(), StatusCode::OK);
    let bot: Value = set.json().await.unwrap();
    assert_eq!(bot["time_zone"], "Europe/Berlin");

    // Three posts added to the queue take the next three Sundays at 09:00 Berlin time:
    // 08:00Z in winter time, 07:00Z once summer time began.
    let mut queued = Vec::new();
    for text in ["first sunday", "second sunday", "third sunday"] {
        let post = env.post(&alice, &bot_id, json!({"text": text})).await;
        let path = format!(
            "/api/v1/bots/{bot_id}/posts/{}/queue",
            post["post_id"].as_str().unwrap()
        );
        let response = env.send(Method::POST, &path, &alice, json!({})).await;
        assert_eq!(response.status(), StatusCode::OK);
        let post: Value = response.json().await.unwrap();
        assert_eq!(post["state"], "scheduled", "{post}");
        queued.push(post["run_at"].as_str().unwrap().to_string());
    }
    assert_eq!(
        queued,
        [
            "2031-03-16T08:00:00Z",
            "2031-03-23T08:00:00Z",
            "2031-03-30T07:00:00Z"
        ]
    );

    // A time is held to the slot on the same wall clock: 09:30 Berlin on the 30th (07:30Z) is
    // in it, 10:30 Berlin (08:30Z) — which was in it the Sunday before — is not.
    let posts = format!("/api/v1/bots/{bot_id}/posts");
    let inside = env
        .send(
            Method::POST,
            &posts,
            &alice,
            json!({"text": "inside", "run_at": "2031-03-30T07:30:00Z"}),
        )
        .await;
    assert_eq!(inside.status(), StatusCode::CREATED);
    let outside = env
        .send(
            Method::POST,
            &posts,
            &alice,
            json!({"text": "outside", "run_at": "2031-03-30T08:30:00Z"}),
        )
        .await;
    assert_eq!(outside.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = outside.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("Europe/Berlin"),
        "{body}"
    );
}

#[tokio::test]
async fn a_bad_time_zone_or_no_slots_are_clear_answers() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    let (bot_id, _) = env.bot(&alice, "plainbot").await;
    let bad = env
        .send(
            Method::PATCH,
            &format!("/api/v1/bots/{bot_id}"),
            &alice,
            json!({"time_zone": "Mars/Olympus"}),
        )
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let post = env
        .post(&alice, &bot_id, json!({"text": "no slots here"}))
        .await;
    let path = format!(
        "/api/v1/bots/{bot_id}/posts/{}/queue",
        post["post_id"].as_str().unwrap()
    );
    let response = env.send(Method::POST, &path, &alice, json!({})).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("no posting slots"),
        "{body}"
    );
}
