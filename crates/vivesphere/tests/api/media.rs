//! Media end to end against the fake X: a medium uploaded here is sent to X through the
//! chunked endpoints right before its post (a failed append is sent again), with its alt
//! text; a video waits for X's processing; the bytes go once the post is out; what X would
//! refuse is refused here first, in the standard error shape.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::bots_helpers::{BotEnv, spawn_bots};

fn png(len: usize) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend((0..len - 8).map(|i| (i % 251) as u8));
    bytes
}

fn mp4(len: usize) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0, 0x18];
    bytes.extend_from_slice(b"ftypmp42");
    bytes.resize(len, 7);
    bytes
}

fn fault(method: &str, path: &str, status: u16) -> fake_x::Fault {
    fake_x::Fault {
        method: method.into(),
        path: path.into(),
        kind: fake_x::FaultKind::Status,
        status: Some(status),
        delay_ms: None,
        times: 1,
    }
}

async fn upload(
    env: &BotEnv,
    token: &str,
    bot_id: &str,
    (media_type, bytes): (&str, Vec<u8>),
    alt_text: Option<&str>,
) -> (StatusCode, Value) {
    let mut url = env.app.url(&format!("/api/v1/bots/{bot_id}/media"));
    if let Some(alt) = alt_text {
        url = format!("{url}?alt_text={}", urlencode(alt));
    }
    let response = env
        .app
        .client
        .post(url)
        .bearer_auth(token)
        .header("content-type", media_type)
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn medium(env: &BotEnv, token: &str, bot_id: &str, media_id: &str) -> Value {
    env.get(&format!("/api/v1/bots/{bot_id}/media/{media_id}"), token)
        .await
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_stored_image_goes_to_x_in_chunks_and_a_failed_append_is_sent_again() {
    let env = spawn_bots(
        Default::default(),
        &[("VIVESPHERE_BOT_MANAGER__MEDIA_CHUNK_BYTES", "16384")],
    )
    .await;
    let alice = env.manager("alice").await;
    let (bot_id, _) = env.bot(&alice, "photobot").await;
    let image = png(40_000);
    let (status, stored) = upload(
        &env,
        &alice,
        &bot_id,
        ("image/png", image),
        Some("The harbour at dawn"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{stored}");
    assert_eq!(stored["state"], "stored");
    assert_eq!(stored["size_bytes"], 40_000);
    let media_id = stored["media_id"].as_str().unwrap();

    // X fails the first segment once.
    env.fake
        .add_fault(fault("POST", "/2/media/upload/*/append", 503));
    let post = env
        .post(
            &alice,
            &bot_id,
            json!({"text": "Dawn over the harbour.", "media_ids": [media_id], "publish_now": true}),
        )
        .await;
    let post_id = post["post_id"].as_str().unwrap();
    let done = env
        .wait_for(&alice, &bot_id, post_id, &["published", "failed"])
        .await;
    assert_eq!(done["state"], "published", "{done}");

    let kept = medium(&env, &alice, &bot_id, media_id).await;
    assert_eq!(kept["state"], "published", "the bytes are gone: {kept}");
    let x_media_id = kept["x_media_id"].as_str().unwrap();
    assert_eq!(
        env.fake.upload_segments(x_media_id),
        [(0, 16384), (1, 16384), (2, 40_000 - 2 * 16384)]
    );
    let appends: Vec<u16> = env
        .x_requests("POST", "/2/media/upload/")
        .iter()
        .filter(|r| r.path.ends_with("/append"))
        .map(|r| r.status)
        .collect();
    assert_eq!(
        appends,
        [503, 200, 200, 200],
        "segment 0 sent again after X failed it"
    );
    assert_eq!(
        env.fake.alt_text(x_media_id).as_deref(),
        Some("The harbour at dawn")
    );
    let x_post_id = done["x_post_id"].as_str().unwrap();
    assert_eq!(env.fake.post_media(x_post_id), [x_media_id]);
    // X was sent the post once, with X's id for the medium, never ours.
    let sends = env.x_requests("POST", "/2/tweets");
    assert_eq!(sends.len(), 1);
}

#[tokio::test]
async fn a_video_is_posted_once_x_has_processed_it() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    let (bot_id, _) = env.bot(&alice, "videobot").await;
    let (status, stored) = upload(&env, &alice, &bot_id, ("video/mp4", mp4(50_000)), None).await;
    assert_eq!(status, StatusCode::CREATED, "{stored}");
    let media_id = stored["media_id"].as_str().unwrap();
    let post = env
        .post(&alice, &bot_id, json!({"text": "Ferry leaving the quay.", "media_ids": [media_id], "publish_now": true}))
        .await;
    let done = env
        .wait_for(
            &alice,
            &bot_id,
            post["post_id"].as_str().unwrap(),
            &["published", "failed"],
        )
        .await;
    assert_eq!(done["state"], "published", "{done}");
    let polled = env.x_requests("GET", "/2/media/upload");
    assert!(
        !polled.is_empty(),
        "the worker asked X for the processing status"
    );
    let x_media_id = medium(&env, &alice, &bot_id, media_id).await["x_media_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        env.fake.post_media(done["x_post_id"].as_str().unwrap()),
        [x_media_id]
    );
}

#[tokio::test]
async fn x_refusing_an_upload_fails_the_post_saying_where() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    let (bot_id, _) = env.bot(&alice, "refusedbot").await;
    let (_, stored) = upload(&env, &alice, &bot_id, ("image/png", png(2_000)), None).await;
    env.fake
        .add_fault(fault("POST", "/2/media/upload/initialize", 400));
    let post = env
        .post(
            &alice,
            &bot_id,
            json!({"text": "Buoy map.", "media_ids": [stored["media_id"]], "publish_now": true}),
        )
        .await;
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
            .contains("media upload at initialize"),
        "{done}"
    );
    assert!(
        env.x_requests("POST", "/2/tweets").is_empty(),
        "no post without its media"
    );
}

#[tokio::test]
async fn media_x_would_refuse_are_refused_here_first() {
    let env = spawn_bots(
        Default::default(),
        &[("VIVESPHERE_BOT_MANAGER__MEDIA_MAX_BYTES", "65536")],
    )
    .await;
    let alice = env.manager("alice").await;
    let (bot_id, _) = env.bot(&alice, "strictbot").await;
    let (status, body) = upload(&env, &alice, &bot_id, ("image/png", png(70_000)), None).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error_code"], "PAYLOAD_TOO_LARGE");
    let (status, body) = upload(
        &env,
        &alice,
        &bot_id,
        ("text/plain", b"hello".to_vec()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    let (status, body) = upload(
        &env,
        &alice,
        &bot_id,
        ("image/png", vec![0xFF, 0xD8, 0xFF, 0xE0]),
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a JPEG sent as PNG: {body}"
    );
    let long = "a".repeat(1001);
    let (status, _) = upload(&env, &alice, &bot_id, ("image/png", png(100)), Some(&long)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A video goes alone; another bot's medium is not this bot's.
    let (_, video) = upload(&env, &alice, &bot_id, ("video/mp4", mp4(1_000)), None).await;
    let (_, image) = upload(&env, &alice, &bot_id, ("image/png", png(1_000)), None).await;
    let path = format!("/api/v1/bots/{bot_id}/posts");
    let both = json!({"text": "Both", "media_ids": [video["media_id"], image["media_id"]], "publish_now": true});
    let response = env.send(Method::POST, &path, &alice, both).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (other, _) = env.bot(&alice, "otherbot").await;
    let foreign =
        json!({"text": "Not mine", "media_ids": [image["media_id"]], "publish_now": true});
    let response = env
        .send(
            Method::POST,
            &format!("/api/v1/bots/{other}/posts"),
            &alice,
            foreign,
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // A medium a waiting post carries stays until the post goes or is cancelled.
    let later = json!({"text": "Later", "media_ids": [image["media_id"]], "run_at": "2031-03-20T10:00:00Z"});
    let waiting = env.post(&alice, &bot_id, later).await;
    let media_path = format!(
        "/api/v1/bots/{bot_id}/media/{}",
        image["media_id"].as_str().unwrap()
    );
    let response = env
        .send(Method::DELETE, &media_path, &alice, json!({}))
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let cancel = format!("{path}/{}/cancel", waiting["post_id"].as_str().unwrap());
    assert_eq!(
        env.send(Method::POST, &cancel, &alice, json!({}))
            .await
            .status(),
        StatusCode::OK
    );
    let response = env
        .send(Method::DELETE, &media_path, &alice, json!({}))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        env.get(&media_path, &alice).await.status(),
        StatusCode::NOT_FOUND
    );
}
