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

mod authorize;
mod render;
mod uploads;
pub use authorize::{Consent, s256_challenge};
pub(crate) use render::{Rendered, View};
pub(crate) use uploads::{EXPIRES_AFTER_SECS, Finalized, UploadRefused};

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
    /// Report `post_count` instead of `tweet_count` in public_metrics, as newer X answers do
    /// (beyond X's document 2.98: the fake's contract check flags it).
    #[serde(default)]
    pub post_count_field: bool,
    /// The scopes the user granted the app; absent: every scope a posting bot asks for.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

/// What a posting bot asks a user to grant: post, read, refresh offline, upload media.
pub const BOT_SCOPES: [&str; 5] = [
    "tweet.read",
    "tweet.write",
    "users.read",
    "offline.access",
    "media.write",
];

impl NewUser {
    pub fn named(username: &str) -> Self {
        Self {
            username: username.to_string(),
            name: None,
            followers_count: 0,
            post_count_field: false,
            scopes: None,
        }
    }
}

/// What a test gets back for a new user: the OAuth 2.0 user-context tokens X would issue.
/// `refresh_token` is empty when `offline.access` was not granted (X issues none then).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserTokens {
    pub user_id: String,
    pub username: String,
    pub access_token: String,
    pub refresh_token: String,
    pub client_id: String,
}

/// Who a bearer token speaks for: a user (OAuth 2.0 user context) or the app alone.
#[derive(Debug, Clone)]
pub struct Principal {
    /// `None` for an app-only token.
    pub user_id: Option<String>,
    pub client_id: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone)]
struct AccessToken {
    principal: Principal,
    expires_at: u64,
}

/// A media upload's kind, and the prefix X puts on its media key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Photo,
    Video,
    AnimatedGif,
}

impl MediaKind {
    fn key_prefix(self) -> u8 {
        match self {
            Self::Photo => 3,
            Self::Video => 7,
            Self::AnimatedGif => 16,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Photo => "photo",
            Self::Video => "video",
            Self::AnimatedGif => "animated_gif",
        }
    }
}

/// An uploaded medium: whose it is, and its key.
#[derive(Debug, Clone, Serialize)]
pub struct Media {
    pub media_id: String,
    pub media_key: String,
    #[serde(rename = "type")]
    pub kind: MediaKind,
    #[serde(skip)]
    owner: String,
}

/// A poll as a post carries it.
#[derive(Debug, Clone)]
pub struct Poll {
    pub id: String,
    pub options: Vec<String>,
    pub duration_minutes: u64,
    pub end_at: u64,
}

/// A post to create, after the request passed X's schema.
#[derive(Debug, Clone, Default)]
pub struct NewPost {
    pub text: String,
    pub media_ids: Vec<String>,
    pub reply_to: Option<String>,
    pub quote_of: Option<String>,
    pub reply_settings: Option<String>,
    /// Options and duration in minutes.
    pub poll: Option<(Vec<String>, u64)>,
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
pub(crate) struct Post {
    pub(crate) id: String,
    pub(crate) author_id: String,
    pub(crate) text: String,
    pub(crate) created_at: u64,
    pub(crate) deleted: bool,
    pub(crate) media: Vec<Media>,
    pub(crate) metrics: HashMap<String, u64>,
    pub(crate) conversation_id: String,
    /// The post replied to, and its author.
    pub(crate) reply_to: Option<(String, String)>,
    pub(crate) quote_of: Option<String>,
    pub(crate) reply_settings: String,
    pub(crate) poll: Option<Poll>,
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
    access: HashMap<String, AccessToken>,
    /// refresh token → the principal it renews; removed when used (rotation)
    refresh: HashMap<String, Principal>,
    spent_refresh: HashSet<String>,
    /// authorization code → what its authorize step saw; removed when redeemed
    codes: HashMap<String, authorize::AuthCode>,
    /// chunked uploads by media id, open or finalized
    uploads: HashMap<String, uploads::Upload>,
    alt_texts: HashMap<String, String>,
    posts: HashMap<String, Post>,
    media: HashMap<String, Media>,
    /// Posts created per calendar month (UTC), for the project's usage cap.
    monthly_usage: HashMap<i64, u64>,
    /// The same per UTC day (days since 1970), for `GET /2/usage/tweets`'s daily view.
    daily_usage: HashMap<i64, u64>,
    contract_violations: Vec<String>,
    by_author: HashMap<String, Vec<String>>,
    windows: HashMap<(String, &'static str), Window>,
    faults: Vec<Fault>,
    log: Vec<LoggedRequest>,
}

/// The project's use of its monthly cap.
pub struct ProjectUsage {
    /// 0: no cap.
    pub cap: u64,
    pub used: u64,
    /// (the day's midnight in Unix seconds, uses that day), oldest first.
    pub daily: Vec<(i64, u64)>,
}

/// Why a post was refused.
pub enum CreateError {
    TooLong,
    Empty,
    Duplicate,
    /// A media id that was never uploaded, or was uploaded by someone else.
    UnknownMedia,
    /// The post replied to is deleted or was never there.
    ReplyTargetGone,
    /// The post quoted is deleted or was never there.
    QuoteTargetGone,
    /// A self-serve app replying where the author did not mention or quote the replier.
    ReplyNotAllowed,
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

    /// A new access token for `principal`, and a refresh token when `offline.access` was
    /// granted (empty otherwise, as X issues none).
    fn issue_tokens(&self, inner: &mut Inner, principal: Principal) -> (String, String) {
        let access = random_token("fxa-");
        let refresh = if principal.scopes.iter().any(|s| s == "offline.access") {
            let refresh = random_token("fxr-");
            inner.refresh.insert(refresh.clone(), principal.clone());
            refresh
        } else {
            String::new()
        };
        let expires_at = self.unix_now() + self.settings.access_token_ttl;
        inner.access.insert(
            access.clone(),
            AccessToken {
                principal,
                expires_at,
            },
        );
        (access, refresh)
    }

    /// An app-only bearer token (OAuth 2.0 client credentials): reads public data, acts for no
    /// user.
    pub fn add_app_token(&self) -> String {
        let token = random_token("fxapp-");
        let principal = Principal {
            user_id: None,
            client_id: "fake-app".into(),
            scopes: Vec::new(),
        };
        self.inner().access.insert(
            token.clone(),
            AccessToken {
                principal,
                expires_at: u64::MAX,
            },
        );
        token
    }

    /// Uploads a medium for a user (X's media upload, reduced to what a post needs).
    pub fn add_media(&self, user_id: &str, kind: MediaKind) -> Option<Media> {
        let mut inner = self.inner();
        inner.users.get(user_id)?;
        let media_id = self.next_id.fetch_add(1, Ordering::Relaxed).to_string();
        let media = Media {
            media_key: format!("{}_{media_id}", kind.key_prefix()),
            media_id: media_id.clone(),
            kind,
            owner: user_id.to_string(),
        };
        inner.media.insert(media_id, media.clone());
        Some(media)
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
        let scopes = new
            .scopes
            .unwrap_or_else(|| BOT_SCOPES.map(String::from).to_vec());
        let principal = Principal {
            user_id: Some(id.clone()),
            client_id: client_id.clone(),
            scopes,
        };
        let (access_token, refresh_token) = self.issue_tokens(&mut inner, principal);
        UserTokens {
            user_id: id,
            username: new.username,
            access_token,
            refresh_token,
            client_id,
        }
    }

    /// Who a live access token speaks for.
    pub(crate) fn authenticate(&self, token: &str) -> Option<Principal> {
        let inner = self.inner();
        let access = inner.access.get(token)?;
        (access.expires_at > self.unix_now()).then(|| access.principal.clone())
    }

    /// Ends every access token of the user now (refresh tokens stay valid).
    pub fn expire_access_tokens(&self, user_id: &str) -> bool {
        let mut inner = self.inner();
        let mut found = false;
        for access in inner.access.values_mut() {
            if access.principal.user_id.as_deref() == Some(user_id) {
                access.expires_at = 0;
                found = true;
            }
        }
        found
    }

    /// Revokes an access or refresh token issued to `client_id` (RFC 7009: an unknown token is
    /// not an error); false when the token is another client's.
    pub(crate) fn revoke(&self, token: &str, client_id: Option<&str>) -> bool {
        let mut inner = self.inner();
        let owner = inner
            .access
            .get(token)
            .map(|a| a.principal.client_id.clone())
            .or_else(|| inner.refresh.get(token).map(|p| p.client_id.clone()));
        match owner {
            Some(owner) if client_id.is_some_and(|c| c != owner) => false,
            Some(_) => {
                inner.access.remove(token);
                inner.refresh.remove(token);
                true
            }
            None => true,
        }
    }

    /// Whether an access or refresh token still works (never issued: false).
    pub fn token_is_live(&self, token: &str) -> bool {
        self.authenticate(token).is_some() || self.inner().refresh.contains_key(token)
    }

    /// Exchanges a refresh token (once, and only by the client it was issued to) for new
    /// tokens with the same scopes.
    pub(crate) fn refresh(
        &self,
        token: &str,
        client_id: Option<&str>,
    ) -> Option<(String, String, Vec<String>)> {
        let mut inner = self.inner();
        let principal = inner.refresh.get(token)?.clone();
        if client_id.is_some_and(|c| c != principal.client_id) {
            return None;
        }
        inner.refresh.remove(token);
        inner.spent_refresh.insert(token.to_string());
        let scopes = principal.scopes.clone();
        let (access, refresh) = self.issue_tokens(&mut inner, principal);
        Some((access, refresh, scopes))
    }

    /// Counts a post against the project's monthly usage cap; `Err` when it is spent.
    pub(crate) fn take_monthly_usage(&self) -> Result<(), ()> {
        let cap = self.settings.monthly_post_cap;
        if cap == 0 {
            return Ok(());
        }
        let month = month_index(self.unix_now());
        let mut inner = self.inner();
        let used = inner.monthly_usage.entry(month).or_insert(0);
        if *used >= cap {
            return Err(());
        }
        *used += 1;
        *inner
            .daily_usage
            .entry(day_index(self.unix_now()))
            .or_insert(0) += 1;
        Ok(())
    }

    /// Gives back a post counted against the monthly cap that was then refused.
    pub(crate) fn return_monthly_usage(&self) {
        if self.settings.monthly_post_cap == 0 {
            return;
        }
        let month = month_index(self.unix_now());
        let mut inner = self.inner();
        if let Some(used) = inner.monthly_usage.get_mut(&month) {
            *used = used.saturating_sub(1);
        }
        if let Some(used) = inner.daily_usage.get_mut(&day_index(self.unix_now())) {
            *used = used.saturating_sub(1);
        }
    }

    /// The project's use of its cap, as `GET /2/usage/tweets` reports it: the cap, what this
    /// month used, and the uses of each of the last `days` UTC days (oldest first, each with
    /// its day's midnight in Unix seconds).
    pub(crate) fn project_usage(&self, days: u32) -> ProjectUsage {
        let now = self.unix_now();
        let inner = self.inner();
        let today = day_index(now);
        let daily = (0..i64::from(days))
            .rev()
            .map(|back| {
                let day = today - back;
                (
                    day * 86_400,
                    inner.daily_usage.get(&day).copied().unwrap_or(0),
                )
            })
            .collect();
        ProjectUsage {
            cap: self.settings.monthly_post_cap,
            used: inner
                .monthly_usage
                .get(&month_index(now))
                .copied()
                .unwrap_or(0),
            daily,
        }
    }

    /// The state of a window without counting a request in it.
    pub(crate) fn peek(
        &self,
        key: &str,
        endpoint: &'static str,
        limit: u32,
        window_seconds: u64,
    ) -> RateState {
        let now = self.unix_now();
        let inner = self.inner();
        match inner.windows.get(&(key.to_string(), endpoint)) {
            Some(window) if window.reset > now => RateState {
                limit,
                remaining: limit.saturating_sub(window.used),
                reset: window.reset,
            },
            _ => RateState {
                limit,
                remaining: limit,
                reset: now + window_seconds,
            },
        }
    }

    pub(crate) fn record_contract_violation(&self, violation: String) {
        self.inner().contract_violations.push(violation);
    }

    /// Every answer of the fake that broke X's published document, as "METHOD path: why".
    pub fn contract_violations(&self) -> Vec<String> {
        self.inner().contract_violations.clone()
    }

    /// The violations so far, forgotten: for a test that makes the fake answer beyond the
    /// document on purpose (as newer X does) and checks that only that was flagged.
    pub fn take_contract_violations(&self) -> Vec<String> {
        std::mem::take(&mut self.inner().contract_violations)
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
        new: NewPost,
    ) -> Result<(String, String), CreateError> {
        let text = x_text::normalize(&new.text);
        if text.trim().is_empty() && new.media_ids.is_empty() {
            return Err(CreateError::Empty);
        }
        if !x_text::fits(&text) {
            return Err(CreateError::TooLong);
        }
        let mut inner = self.inner();
        let media = owned_media(&inner, author_id, &new.media_ids)?;
        let live = |id: &Option<String>| {
            id.as_ref()
                .map(|id| inner.posts.get(id).filter(|p| !p.deleted))
        };
        let reply_to = match live(&new.reply_to) {
            Some(None) => return Err(CreateError::ReplyTargetGone),
            Some(Some(target)) => Some(target.clone()),
            None => None,
        };
        if let Some(None) = live(&new.quote_of) {
            return Err(CreateError::QuoteTargetGone);
        }
        if let Some(target) = &reply_to
            && self.settings.restrict_replies
            && !may_reply(&inner, author_id, target)
        {
            return Err(CreateError::ReplyNotAllowed);
        }
        if !text.is_empty() && is_duplicate(&inner, author_id, &text) {
            return Err(CreateError::Duplicate);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed).to_string();
        let now = self.unix_now();
        let poll = new.poll.map(|(options, duration_minutes)| Poll {
            id: self.next_id.fetch_add(1, Ordering::Relaxed).to_string(),
            options,
            duration_minutes,
            end_at: now + duration_minutes * 60,
        });
        let post = Post {
            id: id.clone(),
            author_id: author_id.to_string(),
            text: text.clone(),
            created_at: now,
            deleted: false,
            media,
            metrics: HashMap::new(),
            conversation_id: reply_to
                .as_ref()
                .map_or(id.clone(), |t| t.conversation_id.clone()),
            reply_to: reply_to.map(|t| (t.id, t.author_id)),
            quote_of: new.quote_of,
            reply_settings: new.reply_settings.unwrap_or_else(|| "everyone".into()),
            poll,
        };
        inner.posts.insert(id.clone(), post);
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

    /// A post as `GET /2/tweets/:id` shows it: `data`, and `includes` for the expansions.
    pub(crate) fn post_json(&self, viewer: &str, id: &str, view: &View) -> Option<Rendered> {
        let inner = self.inner();
        let post = inner.posts.get(id).filter(|p| !p.deleted)?;
        Some(render::render(
            &inner,
            std::slice::from_ref(post),
            viewer,
            view,
            self.unix_now(),
        ))
    }

    /// A user's live posts, newest first, as `data` and `includes`; `None`: no such user.
    pub(crate) fn timeline(&self, user_id: &str, max: usize, view: &View) -> Option<Rendered> {
        let inner = self.inner();
        inner.users.get(user_id)?;
        let posts: Vec<Post> = inner
            .by_author
            .get(user_id)
            .into_iter()
            .flatten()
            .rev()
            .filter_map(|id| inner.posts.get(id))
            .filter(|p| !p.deleted)
            .take(max)
            .cloned()
            .collect();
        Some(render::render(&inner, &posts, "", view, self.unix_now()))
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
            .position(|f| f.method.eq_ignore_ascii_case(method) && path_matches(&f.path, path))?;
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

    /// The id of the post that post `id` replies to, if it is a reply.
    pub fn reply_target(&self, id: &str) -> Option<String> {
        let inner = self.inner();
        inner
            .posts
            .get(id)?
            .reply_to
            .as_ref()
            .map(|(to, _)| to.clone())
    }

    /// The media ids a post carries, in order.
    pub fn post_media(&self, id: &str) -> Vec<String> {
        let inner = self.inner();
        inner
            .posts
            .get(id)
            .map(|p| p.media.iter().map(|m| m.media_id.clone()).collect())
            .unwrap_or_default()
    }

    pub(crate) fn window_seconds(&self) -> u64 {
        self.settings.window_seconds
    }

    /// How long a `delay` fault waits by default.
    pub(crate) fn default_delay() -> Duration {
        Duration::from_secs(5)
    }
}

/// The media ids as the author's uploads, in order.
fn owned_media(inner: &Inner, author_id: &str, ids: &[String]) -> Result<Vec<Media>, CreateError> {
    ids.iter()
        .map(|id| {
            inner
                .media
                .get(id)
                .filter(|m| m.owner == author_id)
                .cloned()
                .ok_or(CreateError::UnknownMedia)
        })
        .collect()
}

/// X's reply restriction for self-serve apps: a reply to one's own post, or to a post whose
/// author mentioned the replier or quoted one of the replier's posts.
fn may_reply(inner: &Inner, replier_id: &str, target: &Post) -> bool {
    if target.author_id == replier_id {
        return true;
    }
    let Some(replier) = inner.users.get(replier_id) else {
        return false;
    };
    let mentioned = x_text::mentions(&target.text)
        .iter()
        .any(|m| m.list_slug.is_empty() && m.value.eq_ignore_ascii_case(&replier.username));
    let quoted = target
        .quote_of
        .as_ref()
        .and_then(|id| inner.posts.get(id))
        .is_some_and(|quoted| quoted.author_id == replier_id);
    mentioned || quoted
}

/// A fault's path: a prefix of the request's, where a `*` segment stands for any one segment
/// (`/2/media/upload/*/append`, whatever the upload's id).
fn path_matches(pattern: &str, path: &str) -> bool {
    if !pattern.contains('*') {
        return path.starts_with(pattern);
    }
    let (wanted, given): (Vec<&str>, Vec<&str>) =
        (pattern.split('/').collect(), path.split('/').collect());
    wanted.len() <= given.len()
        && wanted
            .iter()
            .zip(&given)
            .enumerate()
            .all(|(i, (w, g))| *w == "*" || w == g || (i == wanted.len() - 1 && g.starts_with(w)))
}

/// X refuses the same text twice from one user while the first is live.
fn is_duplicate(inner: &Inner, author_id: &str, text: &str) -> bool {
    inner
        .by_author
        .get(author_id)
        .into_iter()
        .flatten()
        .filter_map(|id| inner.posts.get(id))
        .any(|post| !post.deleted && post.text == text)
}

/// Months since year 0 (UTC), the usage cap's period.
fn day_index(unix_seconds: u64) -> i64 {
    unix_seconds as i64 / 86_400
}

fn month_index(unix_seconds: u64) -> i64 {
    let at = time::OffsetDateTime::from_unix_timestamp(unix_seconds as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    i64::from(at.year()) * 12 + i64::from(u8::from(at.month())) - 1
}
