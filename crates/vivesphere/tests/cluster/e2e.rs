//! The whole path of a post and a live setting, through the gateway only.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    ADMIN_PASSWORD, MID_PASSWORD, PASSWORD, SERIAL, eventually, in_ms, process_exists, start,
};

#[tokio::test]
async fn a_post_goes_from_login_to_x_and_a_setting_applies_live_through_the_gateway() {
    let _serial = SERIAL.lock().await;
    let Some(mut topology) = start().await else {
        return;
    };
    let t = &topology;
    assert_eq!(
        t.cluster.members().len(),
        9,
        "7 service processes, the console and the gateway"
    );
    // The console answers through the gateway (no token at the edge: its pages check their
    // own session), and signs in against the API through the gateway too.
    let sign_in = t
        .http
        .get(format!("{}/console/sign-in", t.cluster.gateway_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(sign_in.status(), StatusCode::OK);
    let cookie = sign_in.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let page = sign_in.text().await.unwrap();
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("a CSRF field") + marker.len();
    let csrf = &page[start..start + page[start..].find('"').unwrap()];
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed_in = no_redirects
        .post(format!("{}/console/sign-in", t.cluster.gateway_url()))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs([
                    ("csrf", csrf),
                    ("username", "admin"),
                    ("password", ADMIN_PASSWORD),
                ])
                .finish(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        signed_in.status(),
        StatusCode::SEE_OTHER,
        "the console signed in through the gateway"
    );
    let session = signed_in.headers()["set-cookie"].to_str().unwrap();
    let session = session.split(';').next().unwrap().to_string();
    let fleet = no_redirects
        .get(format!("{}/console/bots", t.cluster.gateway_url()))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert_eq!(fleet.status(), StatusCode::OK);
    assert!(
        fleet
            .text()
            .await
            .unwrap()
            .contains("Signed in as <strong>admin</strong>")
    );

    // The initial admin logs in and creates a Manager, who logs in.
    let admin = t.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(
        t.create_user(&admin, "manager", PASSWORD).await.0,
        StatusCode::CREATED
    );
    let manager = t.login("manager", PASSWORD).await;

    // The Manager creates a bot holding an X user's credentials and schedules a post.
    let (bot_id, x_user) = t.create_bot(&manager, "clusterbot").await;
    let text = "Hello from the multi-process topology";
    let response = t
        .send(
            Method::POST,
            &format!("/api/v1/bots/{bot_id}/posts"),
            &manager,
            json!({"text": text, "run_at": in_ms(1500)}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let post_id = response.json::<Value>().await.unwrap()["post_id"]
        .as_str()
        .unwrap()
        .to_string();

    // One of the two Bot Manager replicas publishes it to X, once.
    let post_path = format!("/api/v1/bots/{bot_id}/posts/{post_id}");
    let published = eventually(Duration::from_secs(30), "the post is published", || async {
        let post = t.get(&post_path, &manager).await;
        (post["state"] == "published").then_some(post)
    })
    .await;
    let sent: Vec<_> = t
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/2/tweets")
        .collect();
    assert_eq!(sent.len(), 1, "published exactly once");
    assert_eq!(sent[0].text.as_deref(), Some(text));
    assert_eq!(sent[0].user_id.as_deref(), Some(x_user.user_id.as_str()));
    assert!(published["x_post_id"].is_string());

    // The bot's metrics, read from X through the Bot Manager.
    t.fake.set_user_metrics(
        &x_user.user_id,
        [("followers_count".to_string(), 42)].into(),
    );
    let response = t
        .send(
            Method::POST,
            &format!("/api/v1/bots/{bot_id}/metrics/refresh"),
            &manager,
            json!({}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["followers"], 42);
    let series = t
        .get(&format!("/api/v1/bots/{bot_id}/metrics"), &manager)
        .await;
    assert_eq!(series["items"][0]["followers"], 42);

    // The activity reached the Logging service over the queue.
    eventually(
        Duration::from_secs(20),
        "post.published in the logs",
        || async {
            let events = t
                .get("/api/v1/logs/events?category=user_activity", &admin)
                .await;
            events["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|event| event.to_string().contains("post.published"))
                .then_some(())
        },
    )
    .await;

    // An admin raises the password minimum centrally; both Authentication replicas apply it.
    assert_eq!(
        t.create_user(&admin, "before", MID_PASSWORD).await.0,
        StatusCode::CREATED
    );
    let revision = t.raise_password_minimum(&admin).await;
    for replica in ["authentication-1", "authentication-2"] {
        t.applied_by(replica, revision).await;
    }
    // Through the gateway's round robin, every attempt now meets the new minimum.
    for attempt in 0..6 {
        let (status, error) = t
            .create_user(&admin, &format!("after{attempt}"), MID_PASSWORD)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
        assert!(error.contains("at least 20 characters"), "{error}");
    }

    // Stopping leaves nothing running.
    let pids: Vec<u32> = t.cluster.members().iter().filter_map(|m| m.pid()).collect();
    assert_eq!(pids.len(), 9);
    topology.cluster.stop().await;
    assert!(topology.cluster.members().iter().all(|m| !m.is_running()));
    for pid in pids {
        assert!(!process_exists(pid), "process {pid} still runs");
    }
}
