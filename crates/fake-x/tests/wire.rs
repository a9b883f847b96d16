//! The fake X answers with X's wire format: status codes, bodies, rate-limit headers,
//! rotating refresh tokens, and the faults tests inject.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_x::{FakeX, Fault, FaultKind, NewUser, Settings};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The fake for one test; dropping it fails the test if any answer broke X's published
/// document (the fake checks each as it leaves).
struct Checked(Arc<FakeX>);

impl std::ops::Deref for Checked {
    type Target = FakeX;
    fn deref(&self) -> &FakeX {
        &self.0
    }
}

impl Drop for Checked {
    fn drop(&mut self) {
        let violations = self.0.contract_violations();
        if !std::thread::panicking() {
            assert!(violations.is_empty(), "{}", violations.join("\n"));
        }
    }
}

async fn serve(settings: Settings) -> (Checked, String, reqwest::Client) {
    serve_at(settings, platform::Clock::frozen(START)).await
}

/// X's clock in these tests: frozen at a fixed instant until a test moves it.
const START: time::OffsetDateTime = time::macros::datetime!(2031-03-14 09:00 UTC);

async fn serve_at(
    settings: Settings,
    clock: platform::Clock,
) -> (Checked, String, reqwest::Client) {
    platform::install_crypto_provider();
    let fake = Arc::new(FakeX::new(settings, clock));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = fake_x::router(fake.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (Checked(fake), url, reqwest::Client::new())
}

fn header(response: &reqwest::Response, name: &str) -> i64 {
    response.headers()[name].to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn bearer_auth_is_enforced_with_xs_401_body() {
    let (_, url, client) = serve(Settings::default()).await;
    for token in [None, Some("wrong")] {
        let mut request = client
            .post(format!("{url}/2/tweets"))
            .json(&json!({"text": "hi"}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"})
        );
    }
}

#[tokio::test]
async fn posts_follow_the_weighted_limit_and_the_duplicate_rule() {
    let (fake, url, client) = serve(Settings::default()).await;
    let user = fake.add_user(NewUser::named("writer"));
    let post = |text: String| {
        client
            .post(format!("{url}/2/tweets"))
            .bearer_auth(&user.access_token)
            .json(&json!({"text": text}))
            .send()
    };
    let created = post("hello".into()).await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let body: Value = created.json().await.unwrap();
    assert_eq!(body["data"]["text"], "hello");
    assert!(body["data"]["id"].as_str().unwrap().parse::<u64>().is_ok());
    let duplicate = post("hello".into()).await.unwrap();
    assert_eq!(duplicate.status(), StatusCode::FORBIDDEN);
    let body: Value = duplicate.json().await.unwrap();
    assert_eq!(
        body["detail"],
        "You are not allowed to create a Tweet with duplicate content."
    );
    assert_eq!(body["status"], 403);
    let too_long = post("字".repeat(141)).await.unwrap();
    assert_eq!(too_long.status(), StatusCode::BAD_REQUEST);
    let body: Value = too_long.json().await.unwrap();
    assert_eq!(body["title"], "Invalid Request");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("too long")
    );
    // 280 weighted characters are fine, URLs counting 23.
    let long_url = format!(
        "https://example.com/{} {}",
        "x".repeat(300),
        "a".repeat(256)
    );
    assert_eq!(post(long_url).await.unwrap().status(), StatusCode::CREATED);
}

#[tokio::test]
async fn windows_count_per_user_and_endpoint_then_answer_429() {
    let settings = Settings {
        post_limit: 2,
        ..Default::default()
    };
    let clock = platform::Clock::frozen(START);
    let (fake, url, client) = serve_at(settings, clock.clone()).await;
    let user = fake.add_user(NewUser::named("busy"));
    let other = fake.add_user(NewUser::named("calm"));
    let post = |token: &str, text: &str| {
        client
            .post(format!("{url}/2/tweets"))
            .bearer_auth(token)
            .json(&json!({"text": text}))
            .send()
    };
    let first = post(&user.access_token, "one").await.unwrap();
    assert_eq!(
        (
            header(&first, "x-rate-limit-limit"),
            header(&first, "x-rate-limit-remaining")
        ),
        (2, 1)
    );
    // The window is 15 minutes from the first call, in Unix seconds.
    let reset = START.unix_timestamp() + 900;
    assert_eq!(header(&first, "x-rate-limit-reset"), reset);
    assert!(
        first
            .headers()
            .contains_key("x-user-limit-24hour-remaining")
    );
    post(&user.access_token, "two").await.unwrap();
    let limited = post(&user.access_token, "three").await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&limited, "x-rate-limit-remaining"), 0);
    let body: Value = limited.json().await.unwrap();
    assert_eq!(
        body,
        json!({"title":"Too Many Requests","type":"about:blank","status":429,"detail":"Too Many Requests"})
    );
    // Another user's window and another endpoint's are their own.
    assert_eq!(
        post(&other.access_token, "three").await.unwrap().status(),
        StatusCode::CREATED
    );
    let me = client
        .get(format!("{url}/2/users/me"))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(header(&me, "x-rate-limit-limit"), 75);
    // A second before the reset the window is still spent; at the reset a new one opens.
    clock.advance(Duration::from_secs(899));
    assert_eq!(
        post(&user.access_token, "four").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    clock.advance(Duration::from_secs(1));
    let fresh = post(&user.access_token, "five").await.unwrap();
    assert_eq!(fresh.status(), StatusCode::CREATED);
    assert_eq!(header(&fresh, "x-rate-limit-remaining"), 1);
    assert_eq!(header(&fresh, "x-rate-limit-reset"), reset + 900);
}

#[tokio::test]
async fn refresh_tokens_rotate_and_work_once() {
    let (fake, url, client) = serve(Settings::default()).await;
    let user = fake.add_user(NewUser::named("rotating"));
    let refresh = |token: &str| {
        client
            .post(format!("{url}/2/oauth2/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=refresh_token&refresh_token={token}&client_id={}",
                user.client_id
            ))
            .send()
    };
    let answer = refresh(&user.refresh_token).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let tokens: Value = answer.json().await.unwrap();
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["expires_in"], 7200);
    assert_ne!(
        tokens["refresh_token"].as_str().unwrap(),
        user.refresh_token
    );
    let reused = refresh(&user.refresh_token).await.unwrap();
    assert_eq!(reused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        reused.json::<Value>().await.unwrap()["error"],
        "invalid_grant",
        "RFC 6749 §5.2: a spent refresh token is an invalid grant"
    );
    // The new access token works; an expired one does not.
    let new_access = tokens["access_token"].as_str().unwrap();
    let me = client
        .get(format!("{url}/2/users/me"))
        .bearer_auth(new_access)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    fake.expire_access_tokens(&user.user_id);
    let me = client
        .get(format!("{url}/2/users/me"))
        .bearer_auth(new_access)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn faults_answer_a_status_delay_or_drop_the_connection_after_committing() {
    let (fake, url, client) = serve(Settings::default()).await;
    let user = fake.add_user(NewUser::named("faulty"));
    let fault = |kind, status, delay_ms| Fault {
        method: "POST".into(),
        path: "/2/tweets".into(),
        kind,
        status,
        delay_ms,
        times: 1,
    };
    let post = |text: &str| {
        client
            .post(format!("{url}/2/tweets"))
            .bearer_auth(&user.access_token)
            .json(&json!({"text": text}))
            .send()
    };
    fake.add_fault(fault(FaultKind::Status, Some(503), None));
    let unavailable = post("a").await.unwrap();
    assert_eq!(unavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(unavailable.json::<Value>().await.unwrap()["status"], 503);
    assert_eq!(fake.live_posts_with_text("a"), 0);
    fake.add_fault(fault(FaultKind::Delay, None, Some(300)));
    let started = Instant::now();
    assert_eq!(post("b").await.unwrap().status(), StatusCode::CREATED);
    assert!(started.elapsed() >= Duration::from_millis(300));
    fake.add_fault(fault(FaultKind::DropAfterCommit, None, None));
    let dropped = match post("c").await {
        Ok(response) => response.bytes().await.is_err(),
        Err(_) => true,
    };
    assert!(dropped, "the client saw no complete answer");
    assert_eq!(fake.live_posts_with_text("c"), 1, "but the post exists");
    let log: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(log, vec![503, 201, 201]);
}

#[tokio::test]
async fn lookups_show_metrics_and_private_ones_only_to_the_author() {
    let (fake, url, client) = serve(Settings::default()).await;
    let author = fake.add_user(NewUser {
        followers_count: 9,
        ..NewUser::named("author")
    });
    let reader = fake.add_user(NewUser {
        post_count_field: true,
        ..NewUser::named("reader")
    });
    let created: Value = client
        .post(format!("{url}/2/tweets"))
        .bearer_auth(&author.access_token)
        .json(&json!({"text": "measured"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["data"]["id"].as_str().unwrap();
    fake.set_post_metrics(
        id,
        [
            ("like_count".to_string(), 4),
            ("url_link_clicks".to_string(), 2),
        ]
        .into(),
    );
    let fields = "tweet.fields=public_metrics,non_public_metrics,organic_metrics";
    let own: Value = client
        .get(format!("{url}/2/tweets/{id}?{fields}"))
        .bearer_auth(&author.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(own["data"]["public_metrics"]["like_count"], 4);
    assert_eq!(own["data"]["non_public_metrics"]["url_link_clicks"], 2);
    assert_eq!(own["data"]["organic_metrics"]["like_count"], 4);
    let theirs: Value = client
        .get(format!("{url}/2/tweets/{id}?{fields}"))
        .bearer_auth(&reader.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(theirs["data"].get("non_public_metrics").is_none());
    let missing: Value = client
        .get(format!("{url}/2/tweets/1?{fields}"))
        .bearer_auth(&reader.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(missing["errors"][0]["title"], "Not Found Error");
    let me: Value = client
        .get(format!("{url}/2/users/me?user.fields=public_metrics"))
        .bearer_auth(&author.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            me["data"]["public_metrics"]["followers_count"].as_u64(),
            me["data"]["public_metrics"]["tweet_count"].as_u64()
        ),
        (Some(9), Some(1))
    );
    let me: Value = client
        .get(format!("{url}/2/users/me?user.fields=public_metrics"))
        .bearer_auth(&reader.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["data"]["public_metrics"]["post_count"], 0);
    // Newer X's `post_count` is beyond document 2.98 (which requires `tweet_count`): the
    // fake's own check says so, and nothing else.
    let beyond = fake.take_contract_violations();
    assert_eq!(beyond.len(), 1, "{beyond:?}");
    assert!(beyond[0].contains("\"tweet_count\" is a required property"));
    let timeline: Value = client
        .get(format!(
            "{url}/2/users/{}/tweets?max_results=5",
            author.user_id
        ))
        .bearer_auth(&reader.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(timeline["data"][0]["id"], id);
    assert_eq!(timeline["meta"]["result_count"], 1);
}
