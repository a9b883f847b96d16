//! The fake X holds to X's published API document (`third_party/x-api/`): what X refuses it
//! refuses, with X's shapes; what X stores and shows it stores and shows. One test per
//! defect found when the fake was measured against the document (issue 29, items 1–7). Every
//! answer here is also validated against the document as it leaves the fake; `Fake`'s drop
//! fails the test on any violation.

use std::sync::Arc;

use fake_x::{FakeX, MediaKind, NewUser, Settings, UserTokens};
use reqwest::StatusCode;
use serde_json::{Value, json};

const START: time::OffsetDateTime = time::macros::datetime!(2031-03-14 09:00 UTC);

struct Fake {
    fake: Arc<FakeX>,
    url: String,
    client: reqwest::Client,
    clock: platform::Clock,
}

impl Drop for Fake {
    fn drop(&mut self) {
        let violations = self.fake.contract_violations();
        if !std::thread::panicking() {
            assert!(
                violations.is_empty(),
                "contract violations:\n{}",
                violations.join("\n")
            );
        }
    }
}

async fn serve(settings: Settings) -> Fake {
    platform::install_crypto_provider();
    let clock = platform::Clock::frozen(START);
    let fake = Arc::new(FakeX::new(settings, clock.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = fake_x::router(fake.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    Fake {
        fake,
        url,
        client: reqwest::Client::new(),
        clock,
    }
}

impl Fake {
    async fn create(&self, token: &str, body: Value) -> reqwest::Response {
        self.client
            .post(format!("{}/2/tweets", self.url))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, token: &str, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    fn media(&self, user: &UserTokens) -> String {
        self.fake
            .add_media(&user.user_id, MediaKind::Photo)
            .unwrap()
            .media_id
    }

    /// A post created, its id.
    async fn posted(&self, token: &str, body: Value) -> String {
        let response = self.create(token, body.clone()).await;
        assert_eq!(response.status(), StatusCode::CREATED, "{body}");
        response.json::<Value>().await.unwrap()["data"]["id"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

fn content_type(response: &reqwest::Response) -> String {
    response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string()
}

/// A 400 in X's invalid-request problem shape, sent as `application/problem+json`.
async fn assert_invalid_request(response: reqwest::Response, what: &str) -> Value {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{what}");
    assert_eq!(
        content_type(&response),
        "application/problem+json",
        "{what}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["type"], "https://api.twitter.com/2/problems/invalid-request",
        "{what}"
    );
    assert!(
        body["errors"].as_array().is_some_and(|e| !e.is_empty()),
        "{what}: {body}"
    );
    body
}

/// Item 1: `POST /2/tweets` bodies are validated as `TweetCreateRequest` and X's rules on
/// top, and nothing is created for a refused one.
#[tokio::test]
async fn create_requests_are_validated_as_x_validates_them() {
    let x = serve(Settings::default()).await;
    let user = x.fake.add_user(NewUser::named("writer"));
    let other = x.fake.add_user(NewUser::named("other"));
    let mine = x.media(&user);
    let theirs = x.media(&other);
    let poll = json!({"options": ["yes", "no"], "duration_minutes": 60});
    for (body, what) in [
        (json!({"text": "hi", "colour": "red"}), "an unknown member"),
        (json!({"text": 5}), "text as a number"),
        (
            json!({"text": "hi", "media": {"media_ids": ["12345678901234567890"]}}),
            "a 20-digit media id",
        ),
        (
            json!({"text": "hi", "media": {"media_ids": ["abc"]}}),
            "a media id that is not digits",
        ),
        (
            json!({"text": "hi", "media": {"media_ids": []}}),
            "no media ids",
        ),
        (
            json!({"text": "hi", "media": {"media_ids": [&mine, &mine, &mine, &mine, &mine]}}),
            "five media ids",
        ),
        (
            json!({"text": "hi", "media": {"media_ids": ["1234"]}}),
            "a media id never uploaded",
        ),
        (
            json!({"text": "hi", "media": {"media_ids": [&theirs]}}),
            "another user's media",
        ),
        (
            json!({"text": "hi", "poll": {"options": ["only"], "duration_minutes": 60}}),
            "a poll of one option",
        ),
        (
            json!({"text": "hi", "poll": {"options": ["a", "b"], "duration_minutes": 10081}}),
            "a poll over a week",
        ),
        (
            json!({"text": "hi", "poll": {"options": ["a", "x".repeat(26)], "duration_minutes": 60}}),
            "a 26-character option",
        ),
        (
            json!({"text": "hi", "poll": poll, "media": {"media_ids": [&mine]}}),
            "a poll with media",
        ),
        (
            json!({"text": "hi", "reply_settings": "everyone"}),
            "an unknown reply setting",
        ),
        (
            json!({"text": "hi", "reply": {"in_reply_to_tweet_id": "not-an-id"}}),
            "a malformed reply id",
        ),
        (
            json!({"text": "hi", "quote_tweet_id": "12x"}),
            "a malformed quote id",
        ),
        (json!({"text": "x".repeat(281)}), "281 characters"),
    ] {
        assert_invalid_request(x.create(&user.access_token, body).await, what).await;
    }
    assert!(
        x.fake.requests().iter().all(|r| r.status != 201),
        "nothing was created"
    );
    // What the document allows passes: media of one's own, a poll, a reply setting.
    x.posted(
        &user.access_token,
        json!({"text": "photo", "media": {"media_ids": [&mine]}}),
    )
    .await;
    x.posted(
        &user.access_token,
        json!({"text": "vote", "poll": poll, "reply_settings": "following"}),
    )
    .await;
}

/// Item 2: replies, quotes, reply settings and polls are stored and shown, with
/// `referenced_tweets`, `conversation_id` and `in_reply_to_user_id`.
#[tokio::test]
async fn replies_quotes_settings_and_polls_are_kept_and_shown() {
    let x = serve(Settings::default()).await;
    let user = x.fake.add_user(NewUser::named("threader"));
    let token = &user.access_token;
    let root = x.posted(token, json!({"text": "root"})).await;
    let reply = x
        .posted(
            token,
            json!({"text": "reply", "reply": {"in_reply_to_tweet_id": root}}),
        )
        .await;
    let second = x
        .posted(
            token,
            json!({"text": "deeper", "reply": {"in_reply_to_tweet_id": reply}}),
        )
        .await;
    let quote = x
        .posted(
            token,
            json!({"text": "quote", "quote_tweet_id": root, "reply_settings": "mentionedUsers"}),
        )
        .await;
    let fields =
        "?tweet.fields=conversation_id,referenced_tweets,in_reply_to_user_id,reply_settings";
    let shown: Value = x
        .get(token, &format!("/2/tweets/{second}{fields}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        shown["data"]["conversation_id"],
        root.as_str(),
        "a thread's conversation is its root"
    );
    assert_eq!(
        shown["data"]["referenced_tweets"],
        json!([{"type": "replied_to", "id": reply}])
    );
    assert_eq!(shown["data"]["in_reply_to_user_id"], user.user_id.as_str());
    assert_eq!(shown["data"]["reply_settings"], "everyone");
    let shown: Value = x
        .get(
            token,
            &format!("/2/tweets/{quote}{fields}&expansions=referenced_tweets.id"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        shown["data"]["referenced_tweets"],
        json!([{"type": "quoted", "id": root}])
    );
    assert_eq!(shown["data"]["reply_settings"], "mentionedUsers");
    assert_eq!(shown["includes"]["tweets"][0]["id"], root.as_str());
    let poll = x
        .posted(
            token,
            json!({"text": "vote", "poll": {"options": ["a", "b"], "duration_minutes": 60}}),
        )
        .await;
    let shown: Value = x.get(token, &format!("/2/tweets/{poll}?expansions=attachments.poll_ids&poll.fields=duration_minutes,voting_status")).await.json().await.unwrap();
    let included = &shown["includes"]["polls"][0];
    assert_eq!(shown["data"]["attachments"]["poll_ids"][0], included["id"]);
    assert_eq!(
        included["options"],
        json!([{"position": 1, "label": "a", "votes": 0}, {"position": 2, "label": "b", "votes": 0}])
    );
    assert_eq!(
        (
            included["duration_minutes"].clone(),
            included["voting_status"].clone()
        ),
        (json!(60), json!("open"))
    );
    // Replying to a deleted post is refused as X refuses it.
    let gone = x.posted(token, json!({"text": "soon gone"})).await;
    x.client
        .delete(format!("{}/2/tweets/{gone}", x.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let refused = x
        .create(
            token,
            json!({"text": "too late", "reply": {"in_reply_to_tweet_id": gone}}),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

/// Item 3: path ids and field lists are checked against the document.
#[tokio::test]
async fn path_ids_and_field_lists_are_checked() {
    let x = serve(Settings::default()).await;
    let user = x.fake.add_user(NewUser::named("reader"));
    let token = &user.access_token;
    let id = x.posted(token, json!({"text": "hello"})).await;
    let deleted = x
        .client
        .delete(format!("{}/2/tweets/not-an-id", x.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let body = assert_invalid_request(deleted, "DELETE a malformed id").await;
    assert_eq!(body["errors"][0]["parameters"]["id"], json!(["not-an-id"]));
    for path in [
        format!("/2/tweets/{id}?tweet.fields=created_at,bogus"),
        format!("/2/tweets/{id}?user.fields=bogus"),
        format!("/2/tweets/{id}?expansions=everything"),
        format!("/2/tweets/{id}?colour=red"),
        "/2/tweets/abc".to_string(),
        "/2/users/me?user.fields=nope".to_string(),
        format!("/2/users/{}/tweets?max_results=500", user.user_id),
        "/2/users/x1/tweets".to_string(),
    ] {
        assert_invalid_request(x.get(token, &path).await, &path).await;
    }
    let fine = x
        .get(
            token,
            &format!("/2/tweets/{id}?tweet.fields=created_at,author_id"),
        )
        .await;
    assert_eq!(fine.status(), StatusCode::OK);
}

/// Item 4: the request content type is X's: JSON only.
#[tokio::test]
async fn a_create_that_is_not_json_is_refused() {
    let x = serve(Settings::default()).await;
    let user = x.fake.add_user(NewUser::named("typist"));
    let response = x
        .client
        .post(format!("{}/2/tweets", x.url))
        .bearer_auth(&user.access_token)
        .header("content-type", "text/plain")
        .body(r#"{"text":"hi"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(content_type(&response), "application/problem+json");
    assert_eq!(x.fake.live_posts_with_text("hi"), 0);
}

/// Item 5: media keys are X's (`<type>_<id>`), and only come when asked for.
#[tokio::test]
async fn media_keys_are_xs_and_come_only_when_asked() {
    let x = serve(Settings::default()).await;
    let user = x.fake.add_user(NewUser::named("photographer"));
    let photo = x.fake.add_media(&user.user_id, MediaKind::Photo).unwrap();
    let video = x.fake.add_media(&user.user_id, MediaKind::Video).unwrap();
    assert_eq!(photo.media_key, format!("3_{}", photo.media_id));
    assert_eq!(video.media_key, format!("7_{}", video.media_id));
    let id = x
        .posted(
            &user.access_token,
            json!({"text": "album", "media": {"media_ids": [photo.media_id, video.media_id]}}),
        )
        .await;
    let plain: Value = x
        .get(&user.access_token, &format!("/2/tweets/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert!(plain["data"].get("attachments").is_none(), "{plain}");
    let asked: Value = x
        .get(
            &user.access_token,
            &format!("/2/tweets/{id}?tweet.fields=attachments"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        asked["data"]["attachments"]["media_keys"],
        json!([photo.media_key, video.media_key])
    );
    assert!(asked.get("includes").is_none());
    let expanded: Value = x
        .get(
            &user.access_token,
            &format!("/2/tweets/{id}?expansions=attachments.media_keys"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        expanded["includes"]["media"],
        json!([{"media_key": photo.media_key, "type": "photo"}, {"media_key": video.media_key, "type": "video"}])
    );
}

/// Item 6: problems go as `application/problem+json` with a problem type of the document.
#[tokio::test]
async fn errors_use_xs_shapes_and_content_types() {
    let x = serve(Settings::default()).await;
    let user = x.fake.add_user(NewUser::named("erring"));
    let unauthorized = x.create("nope", json!({"text": "hi"})).await;
    assert_eq!(content_type(&unauthorized), "application/problem+json");
    let duplicate_first = x.posted(&user.access_token, json!({"text": "same"})).await;
    assert!(!duplicate_first.is_empty());
    let duplicate = x.create(&user.access_token, json!({"text": "same"})).await;
    assert_eq!(duplicate.status(), StatusCode::FORBIDDEN);
    assert_eq!(content_type(&duplicate), "application/problem+json");
    let invalid = assert_invalid_request(
        x.create(&user.access_token, json!({"text": 1})).await,
        "text as a number",
    )
    .await;
    assert_eq!(invalid["errors"][0]["parameters"]["text"], json!(["1"]));
    // The fake's own check of its answers catches a drift: a made-up problem type fails it.
    let made_up = json!({"type": "https://example.com/nope", "title": "Nope", "status": 400});
    assert!(
        !x_contract::check_response(
            x_contract::Operation::CreateTweet,
            400,
            "application/problem+json",
            &made_up
        )
        .is_empty()
    );
}

async fn refresh(x: &Fake, user: &UserTokens, token: &str) -> (StatusCode, Value) {
    let response = x
        .client
        .post(format!("{}/2/oauth2/token", x.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=refresh_token&refresh_token={token}&client_id={}",
            user.client_id
        ))
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

/// Item 7: OAuth errors as RFC 6749 names them, scopes enforced, app-only tokens refused
/// for user actions.
#[tokio::test]
async fn oauth_errors_scopes_and_app_only_tokens_are_xs() {
    let x = serve(Settings::default()).await;
    let user = x.fake.add_user(NewUser::named("oauth"));
    let (status, tokens) = refresh(&x, &user, &user.refresh_token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        tokens["scope"],
        "tweet.read tweet.write users.read offline.access media.write"
    );
    let (status, spent) = refresh(&x, &user, &user.refresh_token).await;
    assert_eq!(
        (status, spent["error"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_grant"))
    );
    let other_grant = x
        .client
        .post(format!("{}/2/oauth2/token", x.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=password&client_id={}", user.client_id))
        .send()
        .await
        .unwrap();
    assert_eq!(
        other_grant.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
    // A user who granted reading only cannot post, and gets no refresh token.
    let reader = x.fake.add_user(NewUser {
        scopes: Some(vec!["tweet.read".into(), "users.read".into()]),
        ..NewUser::named("readonly")
    });
    assert!(reader.refresh_token.is_empty());
    let refused = x.create(&reader.access_token, json!({"text": "hi"})).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(
        refused.json::<Value>().await.unwrap()["detail"]
            .as_str()
            .unwrap()
            .contains("tweet.write")
    );
    assert_eq!(
        x.get(&reader.access_token, "/2/users/me").await.status(),
        StatusCode::OK
    );
    // An app-only token reads public posts but acts for nobody.
    let app = x.fake.add_app_token();
    let id = x
        .posted(&user.access_token, json!({"text": "public"}))
        .await;
    assert_eq!(
        x.get(&app, &format!("/2/tweets/{id}")).await.status(),
        StatusCode::OK
    );
    for response in [
        x.create(&app, json!({"text": "as the app"})).await,
        x.get(&app, "/2/users/me").await,
    ] {
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["type"],
            "https://api.twitter.com/2/problems/unsupported-authentication"
        );
    }
}

fn header(response: &reqwest::Response, name: &str) -> Option<i64> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().parse().unwrap())
}

/// Item 7: both kinds of 429 — a spent window carries the 24-hour user-limit headers too; a
/// spent usage cap is a `usage-capped` problem, and it lifts when the month turns.
#[tokio::test]
async fn the_two_kinds_of_429_can_be_told_apart() {
    let x = serve(Settings {
        post_limit: 1,
        monthly_post_cap: 2,
        access_token_ttl: 40 * 86_400,
        ..Settings::default()
    })
    .await;
    let user = x.fake.add_user(NewUser::named("busy"));
    x.posted(&user.access_token, json!({"text": "one"})).await;
    let window = x.create(&user.access_token, json!({"text": "two"})).await;
    assert_eq!(window.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&window, "x-rate-limit-remaining"), Some(0));
    assert_eq!(header(&window, "x-user-limit-24hour-limit"), Some(2400));
    assert_eq!(header(&window, "x-user-limit-24hour-remaining"), Some(2399));
    assert_eq!(window.json::<Value>().await.unwrap()["type"], "about:blank");
    x.clock.advance(std::time::Duration::from_secs(900));
    x.posted(&user.access_token, json!({"text": "two"})).await;
    x.clock.advance(std::time::Duration::from_secs(900));
    let capped = x.create(&user.access_token, json!({"text": "three"})).await;
    assert_eq!(capped.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = capped.json().await.unwrap();
    assert_eq!(
        body["type"],
        "https://api.twitter.com/2/problems/usage-capped"
    );
    assert_eq!(
        (body["period"].clone(), body["scope"].clone()),
        (json!("Monthly"), json!("Product"))
    );
    // A refused post does not spend the window: the next month, it goes through.
    x.clock.advance(std::time::Duration::from_secs(20 * 86_400));
    x.posted(&user.access_token, json!({"text": "three"})).await;
}

/// `GET /2/usage/tweets` reports the cap the usage-capped 429 enforces, as X's reference
/// shows the endpoint: app-only bearer (a user's token is refused), the cap's numbers as
/// strings, the reset day, `days` and `usage.fields` checked, 50 requests per 15 minutes.
#[tokio::test]
async fn the_usage_endpoint_reports_the_projects_cap_to_the_app() {
    let x = serve(Settings {
        monthly_post_cap: 5,
        usage_limit: 2,
        ..Settings::default()
    })
    .await;
    let user = x.fake.add_user(NewUser::named("counted"));
    let app = x.fake.add_app_token();
    x.posted(&user.access_token, json!({"text": "one"})).await;
    x.posted(&user.access_token, json!({"text": "two"})).await;
    let usage = x.get(&app, "/2/usage/tweets").await;
    assert_eq!(usage.status(), StatusCode::OK);
    assert_eq!(header(&usage, "x-rate-limit-limit"), Some(2));
    assert_eq!(
        usage.json::<Value>().await.unwrap(),
        json!({"data": {"cap_reset_day": 1, "project_cap": "5",
            "project_id": "1369785403853424", "project_usage": "2"}})
    );
    let daily = x
        .get(
            &app,
            "/2/usage/tweets?days=2&usage.fields=daily_project_usage",
        )
        .await;
    let body: Value = daily.json().await.unwrap();
    // The last two UTC days of the fake's clock (set by this test), oldest first.
    let day = |back: i64| {
        let date = (x.clock.now() - time::Duration::days(back)).date();
        format!("{date}T00:00:00.000Z")
    };
    assert_eq!(
        body["data"]["daily_project_usage"]["usage"],
        json!([{"date": day(1), "usage": "0"}, {"date": day(0), "usage": "2"}])
    );
    // The third call in the window is X's 429.
    let limited = x.get(&app, "/2/usage/tweets").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&limited, "x-rate-limit-remaining"), Some(0));
    x.clock.advance(std::time::Duration::from_secs(900));
    for bad in ["days=91", "days=0", "usage.fields=project_cost", "since=1"] {
        let refused = x.get(&app, &format!("/2/usage/tweets?{bad}")).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{bad}");
        let body: Value = refused.json().await.unwrap();
        assert_eq!(
            body["type"],
            "https://api.twitter.com/2/problems/invalid-request"
        );
        x.clock.advance(std::time::Duration::from_secs(900));
    }
    let as_user = x.get(&user.access_token, "/2/usage/tweets").await;
    assert_eq!(as_user.status(), StatusCode::FORBIDDEN);
    let body: Value = as_user.json().await.unwrap();
    assert_eq!(
        body["type"],
        "https://api.twitter.com/2/problems/unsupported-authentication"
    );
    // The month turns: the cap's count starts again.
    x.clock.advance(std::time::Duration::from_secs(20 * 86_400));
    let next: Value = x.get(&app, "/2/usage/tweets").await.json().await.unwrap();
    assert_eq!(next["data"]["project_usage"], "0");
}

/// A multipart body as X's media upload takes it, built by hand (the client needs no
/// multipart feature for one test).
fn upload_body(category: Option<&str>, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "fake-x-test-boundary";
    let mut body = Vec::new();
    let mut part = |name: &str, value: &[u8]| {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    };
    part("media", bytes);
    if let Some(category) = category {
        part("media_category", category.as_bytes());
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Media come from X's upload with `media.write`; the id it gives attaches to a post of the
/// same user, and only theirs.
#[tokio::test]
async fn media_upload_needs_media_write_and_gives_the_users_own_id() {
    let x = serve(Settings::default()).await;
    let user = x.fake.add_user(NewUser::named("uploader"));
    let upload = |token: &str, category: Option<&str>, bytes: &[u8]| {
        let (content_type, body) = upload_body(category, bytes);
        x.client
            .post(format!("{}/2/media/upload", x.url))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let response = upload(
        &user.access_token,
        Some("tweet_image"),
        b"\x89PNG fake bytes",
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let uploaded: Value = response.json().await.unwrap();
    let id = uploaded["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(uploaded["data"]["media_key"], format!("3_{id}"));
    assert_eq!(uploaded["data"]["size"], 15);
    x.posted(
        &user.access_token,
        json!({"text": "uploaded", "media": {"media_ids": [&id]}}),
    )
    .await;
    let other = x.fake.add_user(NewUser::named("borrower"));
    let borrowed = x
        .create(
            &other.access_token,
            json!({"text": "not mine", "media": {"media_ids": [&id]}}),
        )
        .await;
    assert_invalid_request(borrowed, "another user's upload").await;
    for (category, bytes, what) in [
        (Some("tweet_sound"), &b"x"[..], "an unknown category"),
        (None, &b"x"[..], "no category"),
        (Some("tweet_image"), &b""[..], "no bytes"),
    ] {
        assert_invalid_request(
            upload(&user.access_token, category, bytes).await.unwrap(),
            what,
        )
        .await;
    }
    let reader = x.fake.add_user(NewUser {
        scopes: Some(vec![
            "tweet.read".into(),
            "tweet.write".into(),
            "users.read".into(),
        ]),
        ..NewUser::named("no_media_write")
    });
    let refused = upload(&reader.access_token, Some("tweet_image"), b"x")
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let app = upload(&x.fake.add_app_token(), Some("tweet_image"), b"x")
        .await
        .unwrap();
    assert_eq!(app.status(), StatusCode::FORBIDDEN);
}
