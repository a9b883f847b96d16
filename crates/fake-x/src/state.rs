//! The fake's memory: users, tokens, posts, rate windows, queued faults and the request log.
//! One mutex: the fake answers thousands of requests a second without contention mattering.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Settings;

fn random_token(prefix: &str) -> String {
    let a = uuid::Uuid::new_v4();
    let b = uuid::Uuid::new_v4();
    let mut bytes = a.as_bytes().to_vec();
    bytes.extend_from_slice(b.as_bytes());
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// A user to create.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub followers_count: u64,
    /// Report `post_count` instead of `tweet_count` in public_metrics, as newer X answers do.
    #[serde(default)]
    pub post_count_field: bool,
}

impl NewUser {
    pub fn named(username: &str) -> Self {
        Self {
            username: username.to_string(),
            name: None,
            followers_count: 0,
            post_count_field: false,
        }
    }
}

/// What a test gets back for a new user: the OAuth 2.0 user-context tokens X would issue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserTokens {
    pub user_id: String,
    pub username: String,
    pub access_token: String,
    pub refresh_token: String,
    pub client_id: String,
}

#[derive(Debug, Clone)]
struct User {
    id: String,
    username: String,
    name: String,
    metrics: HashMap<String, u64>,
    post_count_field: bool,
}

#[derive(Debug, Clone)]
struct Post {
    id: String,
    author_id: String,
    text: String,
    created_at: u64,
    deleted: bool,
    media_ids: Vec<String>,
    metrics: HashMap<String, u64>,
}

/// How a queued fault answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer this status with X's problem body, doing nothing.
    Status,
    /// Wait `delay_ms`, then answer normally.
    Delay,
    /// Do the work (a post is created), then drop the connection without an answer.
    DropAfterCommit,
}

/// A fault for the next `times` requests matching `method` and the `path` prefix.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub method: String,
    pub path: String,
    pub kind: FaultKind,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub delay_ms: Option<u64>,
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

/// One request the fake answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub user_id: Option<String>,
    pub status: u16,
    /// For `POST /2/tweets`: the text sent.
    pub text: Option<String>,
    pub at_ms: u64,
}

/// A rate window's state after counting a request.
#[derive(Debug, Clone, Copy)]
pub struct RateState {
    pub limit: u32,
    pub remaining: u32,
    pub reset: u64,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    reset: u64,
    used: u32,
}

#[derive(Default)]
struct Inner {
    users: HashMap<String, User>,
    /// access token → (user id, client id, expires at)
    access: HashMap<String, (String, String, u64)>,
    /// refresh token → (user id, client id); removed when used (rotation)
    refresh: HashMap<String, (String, String)>,
    spent_refresh: HashSet<String>,
    posts: HashMap<String, Post>,
    by_author: HashMap<String, Vec<String>>,
    windows: HashMap<(String, &'static str), Window>,
    faults: Vec<Fault>,
    log: Vec<LoggedRequest>,
}

/// Why a post was refused.
pub enum CreateError {
    TooLong,
    Empty,
    Duplicate,
}

/// The fake X.
pub struct FakeX {
    pub(crate) settings: Settings,
    /// X's time: in tests the app's own clock, so windows and token expiry move with it.
    clock: platform::Clock,
    inner: Mutex<Inner>,
    next_id: AtomicU64,
}

impl FakeX {
    pub fn new(settings: Settings, clock: platform::Clock) -> Self {
        Self {
            settings,
            clock,
            inner: Mutex::new(Inner::default()),
            // Snowflake-sized ids, as X's are.
            next_id: AtomicU64::new(1_860_000_000_000_000_000),
        }
    }

    pub(crate) fn unix_now(&self) -> u64 {
        self.clock.unix_seconds().max(0) as u64
    }

    pub(crate) fn now_millis(&self) -> u64 {
        self.clock.now_millis().max(0) as u64
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn issue_tokens(&self, inner: &mut Inner, user_id: &str, client_id: &str) -> (String, String) {
        let access = random_token("fxa-");
        let refresh = random_token("fxr-");
        inner.access.insert(
            access.clone(),
            (
                user_id.to_string(),
                client_id.to_string(),
                self.unix_now() + self.settings.access_token_ttl,
            ),
        );
        inner.refresh.insert(
            refresh.clone(),
            (user_id.to_string(), client_id.to_string()),
        );
        (access, refresh)
    }

    pub fn add_user(&self, new: NewUser) -> UserTokens {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed).to_string();
        let client_id = format!("fake-client-{}", &id[id.len() - 6..]);
        let mut metrics = HashMap::new();
        metrics.insert("followers_count".to_string(), new.followers_count);
        for key in [
            "following_count",
            "listed_count",
            "like_count",
            "media_count",
        ] {
            metrics.insert(key.to_string(), 0);
        }
        let mut inner = self.inner();
        inner.users.insert(
            id.clone(),
            User {
                id: id.clone(),
                username: new.username.clone(),
                name: new.name.unwrap_or_else(|| new.username.clone()),
                metrics,
                post_count_field: new.post_count_field,
            },
        );
        let (access_token, refresh_token) = self.issue_tokens(&mut inner, &id, &client_id);
        UserTokens {
            user_id: id,
            username: new.username,
            access_token,
            refresh_token,
            client_id,
        }
    }

    /// The user a live access token belongs to.
    pub(crate) fn authenticate(&self, token: &str) -> Option<String> {
        let inner = self.inner();
        let (user, _, expires) = inner.access.get(token)?;
        (*expires > self.unix_now()).then(|| user.clone())
    }

    /// Ends every access token of the user now (refresh tokens stay valid).
    pub fn expire_access_tokens(&self, user_id: &str) -> bool {
        let mut inner = self.inner();
        let mut found = false;
        for (user, _, expires) in inner.access.values_mut() {
            if user == user_id {
                *expires = 0;
                found = true;
            }
        }
        found
    }

    /// Exchanges a refresh token (once) for new tokens.
    pub(crate) fn refresh(&self, token: &str, client_id: Option<&str>) -> Option<(String, String)> {
        let mut inner = self.inner();
        let (user, client) = inner.refresh.get(token)?.clone();
        if client_id.is_some_and(|c| c != client) {
            return None;
        }
        inner.refresh.remove(token);
        inner.spent_refresh.insert(token.to_string());
        Some(self.issue_tokens(&mut inner, &user, &client))
    }

    /// Counts a request in the (key, endpoint) window; `None` when the window is spent.
    pub(crate) fn count(
        &self,
        key: &str,
        endpoint: &'static str,
        limit: u32,
        window_seconds: u64,
    ) -> Result<RateState, RateState> {
        let now = self.unix_now();
        let mut inner = self.inner();
        let window = inner
            .windows
            .entry((key.to_string(), endpoint))
            .or_insert(Window {
                reset: now + window_seconds,
                used: 0,
            });
        if window.reset <= now {
            *window = Window {
                reset: now + window_seconds,
                used: 0,
            };
        }
        if window.used >= limit {
            return Err(RateState {
                limit,
                remaining: 0,
                reset: window.reset,
            });
        }
        window.used += 1;
        Ok(RateState {
            limit,
            remaining: limit - window.used,
            reset: window.reset,
        })
    }

    /// Gives a window's count back (a request refused after it was counted, e.g. by the
    /// 24-hour cap, does not spend the 15-minute one twice).
    pub(crate) fn uncount(&self, key: &str, endpoint: &'static str) {
        if let Some(window) = self.inner().windows.get_mut(&(key.to_string(), endpoint)) {
            window.used = window.used.saturating_sub(1);
        }
    }

    pub(crate) fn create_post(
        &self,
        author_id: &str,
        text: &str,
        media_ids: Vec<String>,
    ) -> Result<(String, String), CreateError> {
        let text = x_text::normalize(text);
        if text.trim().is_empty() && media_ids.is_empty() {
            return Err(CreateError::Empty);
        }
        if !x_text::fits(&text) {
            return Err(CreateError::TooLong);
        }
        let mut inner = self.inner();
        let duplicate = inner
            .by_author
            .get(author_id)
            .into_iter()
            .flatten()
            .filter_map(|id| inner.posts.get(id))
            .any(|post| !post.deleted && post.text == text);
        if duplicate && !text.is_empty() {
            return Err(CreateError::Duplicate);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed).to_string();
        inner.posts.insert(
            id.clone(),
            Post {
                id: id.clone(),
                author_id: author_id.to_string(),
                text: text.clone(),
                created_at: self.unix_now(),
                deleted: false,
                media_ids,
                metrics: HashMap::new(),
            },
        );
        inner
            .by_author
            .entry(author_id.to_string())
            .or_default()
            .push(id.clone());
        Ok((id, text))
    }

    /// `Ok(true)` deleted, `Ok(false)` no such live post, `Err(())` someone else's.
    pub(crate) fn delete_post(&self, user_id: &str, id: &str) -> Result<bool, ()> {
        let mut inner = self.inner();
        match inner.posts.get_mut(id) {
            Some(post) if post.deleted => Ok(false),
            Some(post) if post.author_id != user_id => Err(()),
            Some(post) => {
                post.deleted = true;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// A post as `GET /2/tweets/:id` shows it with the requested fields.
    pub(crate) fn post_json(&self, viewer: &str, id: &str, fields: &[&str]) -> Option<Value> {
        let inner = self.inner();
        let post = inner.posts.get(id).filter(|p| !p.deleted)?;
        Some(post_value(post, viewer, fields))
    }

    /// A user's live posts, newest first.
    pub(crate) fn timeline(
        &self,
        user_id: &str,
        max: usize,
        fields: &[&str],
    ) -> Option<Vec<Value>> {
        let inner = self.inner();
        inner.users.get(user_id)?;
        Some(
            inner
                .by_author
                .get(user_id)
                .into_iter()
                .flatten()
                .rev()
                .filter_map(|id| inner.posts.get(id))
                .filter(|p| !p.deleted)
                .take(max)
                .map(|p| post_value(p, "", fields))
                .collect(),
        )
    }

    pub(crate) fn user_json(&self, user_id: &str, with_metrics: bool) -> Option<Value> {
        let inner = self.inner();
        let user = inner.users.get(user_id)?;
        let mut data = json!({"id": user.id, "name": user.name, "username": user.username});
        if with_metrics {
            let live = inner
                .by_author
                .get(user_id)
                .into_iter()
                .flatten()
                .filter(|id| inner.posts.get(*id).is_some_and(|p| !p.deleted))
                .count() as u64;
            let mut metrics = serde_json::Map::new();
            for (key, value) in &user.metrics {
                metrics.insert(key.clone(), json!(value));
            }
            let count_key = if user.post_count_field {
                "post_count"
            } else {
                "tweet_count"
            };
            metrics.insert(count_key.into(), json!(live));
            data["public_metrics"] = Value::Object(metrics);
        }
        Some(data)
    }

    /// Sets counters of a user (`followers_count`, …); false if there is no such user.
    pub fn set_user_metrics(&self, user_id: &str, metrics: HashMap<String, u64>) -> bool {
        let mut inner = self.inner();
        let Some(user) = inner.users.get_mut(user_id) else {
            return false;
        };
        user.metrics.extend(metrics);
        true
    }

    /// Sets counters of a post (`like_count`, `impression_count`, …).
    pub fn set_post_metrics(&self, id: &str, metrics: HashMap<String, u64>) -> bool {
        let mut inner = self.inner();
        let Some(post) = inner.posts.get_mut(id) else {
            return false;
        };
        post.metrics.extend(metrics);
        true
    }

    pub fn add_fault(&self, fault: Fault) {
        self.inner().faults.push(fault);
    }

    /// The first queued fault for this request, counted down.
    pub(crate) fn take_fault(&self, method: &str, path: &str) -> Option<Fault> {
        let mut inner = self.inner();
        let index = inner
            .faults
            .iter()
            .position(|f| f.method.eq_ignore_ascii_case(method) && path.starts_with(&f.path))?;
        let fault = inner.faults[index].clone();
        inner.faults[index].times -= 1;
        if inner.faults[index].times == 0 {
            inner.faults.remove(index);
        }
        Some(fault)
    }

    pub(crate) fn log(&self, entry: LoggedRequest) {
        self.inner().log.push(entry);
    }

    /// Every request answered so far, oldest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.inner().log.clone()
    }

    /// How many live posts carry exactly `text` (after NFC), across all users.
    pub fn live_posts_with_text(&self, text: &str) -> usize {
        let text = x_text::normalize(text);
        self.inner()
            .posts
            .values()
            .filter(|p| !p.deleted && p.text == text)
            .count()
    }

    pub(crate) fn window_seconds(&self) -> u64 {
        self.settings.window_seconds
    }

    /// How long a `delay` fault waits by default.
    pub(crate) fn default_delay() -> Duration {
        Duration::from_secs(5)
    }
}

fn post_value(post: &Post, viewer: &str, fields: &[&str]) -> Value {
    let mut data = json!({
        "id": post.id,
        "text": post.text,
        "edit_history_tweet_ids": [post.id],
    });
    let metric = |key: &str| post.metrics.get(key).copied().unwrap_or(0);
    if fields.contains(&"created_at") {
        data["created_at"] = json!(platform::time_fmt::rfc3339_from_unix(
            post.created_at as i64
        ));
    }
    if fields.contains(&"author_id") {
        data["author_id"] = json!(post.author_id);
    }
    if !post.media_ids.is_empty() {
        data["attachments"] = json!({"media_keys": post.media_ids});
    }
    if fields.contains(&"public_metrics") {
        data["public_metrics"] = json!({
            "retweet_count": metric("retweet_count"),
            "reply_count": metric("reply_count"),
            "like_count": metric("like_count"),
            "quote_count": metric("quote_count"),
            "bookmark_count": metric("bookmark_count"),
            "impression_count": metric("impression_count"),
        });
    }
    // Private metrics are the author's alone, as on X.
    let own = viewer == post.author_id;
    if own && fields.contains(&"non_public_metrics") {
        data["non_public_metrics"] = json!({
            "impression_count": metric("impression_count"),
            "url_link_clicks": metric("url_link_clicks"),
            "user_profile_clicks": metric("user_profile_clicks"),
        });
    }
    if own && fields.contains(&"organic_metrics") {
        data["organic_metrics"] = json!({
            "impression_count": metric("impression_count"),
            "like_count": metric("like_count"),
            "reply_count": metric("reply_count"),
            "retweet_count": metric("retweet_count"),
            "url_link_clicks": metric("url_link_clicks"),
            "user_profile_clicks": metric("user_profile_clicks"),
        });
    }
    data
}
