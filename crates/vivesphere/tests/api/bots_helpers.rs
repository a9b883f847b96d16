//! Helpers for the Bot Manager tests: the app with a fake X beside it, bots with fake X
//! users' tokens, posts, and waiting for a post to reach a state.

use std::sync::Arc;
use std::time::Duration;

use fake_x::{FakeX, UserTokens};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::auth_helpers::{PASSWORD, admin_token, login_ok, send_json, token_of};
use crate::helpers::{TestApp, spawn_with_clock, test_clock};

pub struct BotEnv {
    pub app: TestApp,
    pub fake: Arc<FakeX>,
    pub fake_url: String,
    pub admin: String,
}

/// Every answer the fake X gave in a test kept to X's published document (the fake checks
/// each as it leaves); a test that made it break the contract fails here, naming how.
impl Drop for BotEnv {
    fn drop(&mut self) {
        let violations = self.fake.contract_violations();
        if !std::thread::panicking() {
            assert!(
                violations.is_empty(),
                "the fake X broke X's published contract:\n{}",
                violations.join("\n")
            );
        }
    }
}

/// A fake X on a random port, serving until the test ends.
/// X's clock is the app's (`clock`), so rate windows and token expiry move together.
pub async fn spawn_fake(
    settings: fake_x::Settings,
    clock: platform::Clock,
) -> (Arc<FakeX>, String) {
    let fake = Arc::new(FakeX::new(settings, clock));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = fake_x::router(fake.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (fake, url)
}

/// Quick retries and a short X timeout, so the outcome classes show within a test.
pub fn fast_env(fake_url: &str) -> Vec<(String, String)> {
    [
        ("VIVESPHERE_BOT_MANAGER__X_API__BASE_URL", fake_url),
        ("VIVESPHERE_BOT_MANAGER__X_API__TIMEOUT_MS", "1500"),
        ("VIVESPHERE_BOT_MANAGER__EXECUTION__BACKOFF_BASE_MS", "50"),
        ("VIVESPHERE_BOT_MANAGER__EXECUTION__BACKOFF_MAX_MS", "200"),
        (
            "VIVESPHERE_BOT_MANAGER__EXECUTION__RATE_LIMIT_JITTER_MS",
            "100",
        ),
        ("VIVESPHERE_BOT_MANAGER__EXECUTION__LEASE_SECONDS", "5"),
        ("VIVESPHERE_BOT_MANAGER__METRICS_INTERVAL_SECONDS", "0"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The whole app beside a fake X with `fake_settings`; `extra` env on top.
pub async fn spawn_bots(fake_settings: fake_x::Settings, extra: &[(&str, &str)]) -> BotEnv {
    let clock = test_clock();
    let (fake, url) = spawn_fake(fake_settings, clock.clone()).await;
    let owned = fast_env(&url);
    let mut env: Vec<(&str, &str)> = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    env.extend_from_slice(extra);
    let app = spawn_with_clock(None, &env, None, clock).await;
    let admin = admin_token(&app).await;
    BotEnv {
        app,
        fake,
        fake_url: url,
        admin,
    }
}

impl BotEnv {
    pub fn from_parts(app: TestApp, fake: Arc<FakeX>, fake_url: String, admin: String) -> Self {
        Self {
            app,
            fake,
            fake_url,
            admin,
        }
    }

    /// The fake X's base URL, for tests that act on X behind the Bot Manager's back.
    pub fn fake_base(&self) -> &str {
        &self.fake_url
    }

    pub async fn manager(&self, username: &str) -> String {
        token_of(&self.app, &self.admin, username, &["Manager"]).await
    }

    /// A Manager in `team`, logged in; their token.
    pub async fn team_manager(&self, username: &str, team: &str) -> String {
        self.team_member(username, "Manager", team).await
    }

    /// A user with `role` in `team`, logged in; their token.
    pub async fn team_member(&self, username: &str, role: &str, team: &str) -> String {
        let response = self
            .send(
                Method::POST,
                "/api/v1/auth/users",
                &self.admin,
                json!({"username": username, "password": PASSWORD, "roles": [role], "team": team}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        self.login(username).await
    }

    /// A fresh token for a user made here (after the clock moved past the last one).
    pub async fn login(&self, username: &str) -> String {
        login_ok(&self.app, username, PASSWORD).await["token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Value,
    ) -> reqwest::Response {
        send_json(&self.app, method, path, token, body).await
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        crate::auth_helpers::get(&self.app, path, token).await
    }

    /// A fake X user and a bot holding its OAuth 2.0 tokens; returns (bot id, X user).
    pub async fn bot(&self, token: &str, name: &str) -> (String, UserTokens) {
        let bots_url = self.app.url("/api/v1/bots");
        crate::common::create_bot(&self.app.client, &bots_url, token, &self.fake, name).await
    }

    /// Confirms a bot's automation disclosure (for bots made without `bot`).
    pub async fn confirm_disclosure(&self, token: &str, bot_id: &str) {
        let bots_url = self.app.url("/api/v1/bots");
        crate::common::confirm_disclosure(&self.app.client, &bots_url, token, bot_id).await
    }

    /// Moves the bot to another X app (asserting 200).
    pub async fn set_x_app(&self, token: &str, bot_id: &str, app: &str) {
        let path = format!("/api/v1/bots/{bot_id}");
        let response = self
            .send(Method::PATCH, &path, token, json!({"x_app": app}))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    /// Creates a post and returns its body (asserting 201).
    pub async fn post(&self, token: &str, bot_id: &str, body: Value) -> Value {
        let response = self
            .send(
                Method::POST,
                &format!("/api/v1/bots/{bot_id}/posts"),
                token,
                body,
            )
            .await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Creates a post to go out now and waits until it is published; its id.
    pub async fn publish_now(&self, token: &str, bot_id: &str, text: &str) -> String {
        let post = self
            .post(token, bot_id, json!({"text": text, "publish_now": true}))
            .await;
        let post_id = post["post_id"].as_str().unwrap().to_string();
        self.wait_for(token, bot_id, &post_id, &["published"]).await;
        post_id
    }

    /// Asks for a post to be deleted from X (the answer, unchecked).
    pub async fn delete_post(&self, token: &str, bot_id: &str, post_id: &str) -> reqwest::Response {
        let path = format!("/api/v1/bots/{bot_id}/posts/{post_id}");
        self.send(Method::DELETE, &path, token, json!({})).await
    }

    /// Asks for a bot's metrics to be read from X now (the answer, unchecked).
    pub async fn refresh_metrics(&self, token: &str, bot_id: &str) -> reqwest::Response {
        let path = format!("/api/v1/bots/{bot_id}/metrics/refresh");
        self.send(Method::POST, &path, token, json!({})).await
    }

    pub async fn read_post(&self, token: &str, bot_id: &str, post_id: &str) -> Value {
        self.get(&format!("/api/v1/bots/{bot_id}/posts/{post_id}"), token)
            .await
            .json()
            .await
            .unwrap()
    }

    /// Polls the post until its state is one of `states` (panics after 20 s).
    pub async fn wait_for(
        &self,
        token: &str,
        bot_id: &str,
        post_id: &str,
        states: &[&str],
    ) -> Value {
        self.wait_until(
            token,
            bot_id,
            post_id,
            &format!("reached {states:?}"),
            |post| states.contains(&post["state"].as_str().unwrap_or_default()),
        )
        .await
    }

    /// Reads the post until `done` holds of it (20 s at most); returns it.
    pub async fn wait_until(
        &self,
        token: &str,
        bot_id: &str,
        post_id: &str,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let post = self.read_post(token, bot_id, post_id).await;
            if done(&post) {
                return post;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "post never {what}: {post}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Requests the fake X saw for `method` on paths starting with `path`.
    pub fn x_requests(&self, method: &str, path: &str) -> Vec<fake_x::LoggedRequest> {
        self.fake
            .requests()
            .into_iter()
            .filter(|r| r.method == method && r.path.starts_with(path))
            .collect()
    }

    /// The user_activity events with `action` the caller may read.
    pub async fn events(&self, token: &str, action: &str) -> Vec<Value> {
        let response = self
            .get(
                &format!("/api/v1/logs/events?category=user_activity&action={action}&limit=500"),
                token,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        body["items"].as_array().unwrap().clone()
    }

    /// Waits until `action` has been recorded at least once (the queue is asynchronous).
    pub async fn recorded(&self, token: &str, action: &str) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let found = self.events(token, action).await;
            if !found.is_empty() {
                return found;
            }
            assert!(tokio::time::Instant::now() < deadline, "no {action} event");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The Bot Manager's own tables.
    pub async fn db(&self) -> sqlx::AnyPool {
        crate::helpers::service_db(&self.app, "bot_manager").await
    }
}

impl BotEnv {
    /// An RFC 3339 time `ms` milliseconds from now, by the app's clock.
    pub fn in_ms(&self, ms: i64) -> String {
        platform::time_fmt::rfc3339(self.app.clock.now() + time::Duration::milliseconds(ms))
    }
}
