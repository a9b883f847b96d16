//! The X API v2 client: posts, deletes, the bot's own profile and posts, post metrics, and
//! OAuth 2.0 tokens (an authorization code's, and their refresh). Every answer carries what its rate-limit headers said, and
//! errors are read from both of X's shapes (problem+json and `{"errors":[...]}`).
//!
//! The one distinction the caller cannot do without: did a failure happen before the
//! request left (safe to retry) or after (the post may exist: verify before retrying)?

use std::time::Duration;

use base64::Engine;
use platform::config::Secret;
use platform::http::form::form_body;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::model::PostOptions;
use crate::settings::XApiSettings;

/// One rate-limit window as X's headers describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateWindow {
    /// `tweets.create`, or `tweets.create:24h-user` / `:24h-app` for the daily windows.
    pub endpoint: String,
    pub limit: i64,
    pub remaining: i64,
    /// Unix seconds.
    pub reset: i64,
}

/// X's error, whichever shape it came in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XProblem {
    pub status: u16,
    pub title: String,
    pub detail: String,
    pub kind: String,
}

/// X's problem type for a spent usage cap (a 429 that no rate window explains).
const USAGE_CAPPED: &str = "https://api.twitter.com/2/problems/usage-capped";

impl XProblem {
    pub fn is_duplicate_content(&self) -> bool {
        self.status == 403 && self.detail.to_lowercase().contains("duplicate content")
    }

    /// A 429 for the project's usage cap (monthly or daily), not a rate window: waiting for
    /// `x-rate-limit-reset` does not help, only the cap's next period does.
    pub fn is_usage_capped(&self) -> bool {
        self.kind == USAGE_CAPPED
    }
}

/// An answer from X.
#[derive(Debug)]
pub struct XAnswer {
    pub status: u16,
    pub body: Value,
    pub windows: Vec<RateWindow>,
}

impl XAnswer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The error, parsed from problem+json or the older `errors` array.
    pub fn problem(&self) -> XProblem {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let first = self
            .body
            .pointer("/errors/0")
            .cloned()
            .unwrap_or(Value::Null);
        let detail = match self.body.get("detail") {
            Some(detail) => text(detail),
            None => first
                .get("detail")
                .or_else(|| first.get("message"))
                .map(text)
                .unwrap_or_default(),
        };
        XProblem {
            status: self
                .body
                .get("status")
                .and_then(Value::as_u64)
                .map(|s| s as u16)
                .unwrap_or(self.status),
            title: self
                .body
                .get("title")
                .or_else(|| first.get("title"))
                .map(text)
                .unwrap_or_default(),
            detail,
            kind: self
                .body
                .get("type")
                .or_else(|| first.get("type"))
                .map(text)
                .unwrap_or_default(),
        }
    }

    /// When the endpoint's window opens again (unix seconds), from `x-rate-limit-reset`.
    pub fn reset_of(&self, endpoint: &str) -> Option<i64> {
        self.windows
            .iter()
            .filter(|w| w.endpoint.starts_with(endpoint) && w.remaining <= 0)
            .map(|w| w.reset)
            .max()
            .or_else(|| {
                self.windows
                    .iter()
                    .find(|w| w.endpoint == endpoint)
                    .map(|w| w.reset)
            })
    }
}

/// X's answer to `GET /2/usage/tweets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectUsage {
    pub project_id: String,
    /// 0 when X states no cap.
    pub cap: i64,
    pub used: i64,
    /// The day of the month the cap's count starts again.
    pub reset_day: i64,
}

impl ProjectUsage {
    /// Read from X's `data`; X sends the cap's numbers as strings (its reference shows them
    /// so, and live answers do), older answers as numbers: both are read.
    pub fn from_body(body: &Value) -> Option<Self> {
        let data = body.get("data")?;
        let number = |name: &str| match data.get(name)? {
            Value::String(s) => s.parse::<i64>().ok(),
            other => other.as_i64(),
        };
        Some(Self {
            project_id: match data.get("project_id") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            },
            cap: number("project_cap").unwrap_or(0),
            used: number("project_usage")?,
            reset_day: number("cap_reset_day").unwrap_or(1),
        })
    }
}

/// Why a call got no answer.
#[derive(Debug, thiserror::Error)]
pub enum XCallError {
    /// Nothing reached X (no connection): safe to retry.
    #[error("X could not be reached: {0}")]
    NotSent(String),
    /// Sent, but no (complete) answer: X may have acted.
    #[error("no answer from X after sending: {0}")]
    NoAnswer(String),
    /// Not sent: the request breaks X's published API document, so X would refuse it
    /// whenever it was sent. A defect here, not a reason to retry.
    #[error("the request breaks X's published API contract (not sent): {0}")]
    Malformed(String),
}

/// New tokens from a refresh.
pub struct Refreshed {
    pub access_token: Secret,
    pub refresh_token: Secret,
}

/// Why a refresh failed.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// X refused the refresh token: the bot must be authorised again by a person.
    #[error("X refused the refresh token: {0}")]
    Refused(String),
    #[error(transparent)]
    Call(#[from] XCallError),
    #[error("X answered the refresh with {0}")]
    Unexpected(u16),
}

pub struct XClient {
    http: reqwest::Client,
    base: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    refresh_token: Option<String>,
    scope: Option<String>,
}

/// Tokens from an authorization code: what the person granted.
pub struct Granted {
    pub access_token: Secret,
    /// Absent when `offline.access` was not granted.
    pub refresh_token: Option<Secret>,
    pub scopes: Vec<String>,
}

fn header_i64(headers: &HeaderMap, name: &str) -> Option<i64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Every rate window the headers describe.
pub fn rate_windows(endpoint: &str, headers: &HeaderMap) -> Vec<RateWindow> {
    let mut windows = Vec::new();
    let mut read = |prefix: &str, name: String| {
        if let (Some(limit), Some(remaining), Some(reset)) = (
            header_i64(headers, &format!("{prefix}-limit")),
            header_i64(headers, &format!("{prefix}-remaining")),
            header_i64(headers, &format!("{prefix}-reset")),
        ) {
            windows.push(RateWindow {
                endpoint: name,
                limit,
                remaining,
                reset,
            });
        }
    };
    read("x-rate-limit", endpoint.to_string());
    read("x-user-limit-24hour", format!("{endpoint}:24h-user"));
    read("x-app-limit-24hour", format!("{endpoint}:24h-app"));
    windows
}

impl XClient {
    pub fn new(settings: &XApiSettings) -> anyhow::Result<Self> {
        platform::install_crypto_provider();
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_millis(settings.timeout_ms))
                .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
                .pool_max_idle_per_host(256)
                .user_agent(concat!("ViveSphereBotManager/", env!("CARGO_PKG_VERSION")))
                .build()?,
            base: settings.base_url.trim_end_matches('/').to_string(),
        })
    }

    async fn call(
        &self,
        endpoint: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<XAnswer, XCallError> {
        let response = request.send().await.map_err(classify)?;
        let status = response.status().as_u16();
        let windows = rate_windows(endpoint, response.headers());
        let bytes = response
            .bytes()
            .await
            .map_err(|e| XCallError::NoAnswer(e.to_string()))?;
        // A body that is not JSON (a proxy's HTML page) still has a status to go by.
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(XAnswer {
            status,
            body,
            windows,
        })
    }

    /// A GET of `path` (after the base URL) with the token.
    async fn get(&self, endpoint: &str, path: &str, token: &Secret) -> Result<XAnswer, XCallError> {
        let request = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token.expose());
        self.call(endpoint, request).await
    }

    /// A POST of `path` (after the base URL) with the token and a JSON body, if any.
    async fn post(
        &self,
        endpoint: &str,
        path: &str,
        token: &Secret,
        body: Option<&Value>,
    ) -> Result<XAnswer, XCallError> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token.expose());
        if let Some(body) = body {
            request = request.json(body);
        }
        self.call(endpoint, request).await
    }

    /// `POST /2/tweets`.
    pub async fn create_post(
        &self,
        token: &Secret,
        post: &PostContent<'_>,
    ) -> Result<XAnswer, XCallError> {
        let body = create_body(post)?;
        let request = self
            .http
            .post(format!("{}/2/tweets", self.base))
            .bearer_auth(token.expose())
            .json(&body);
        self.call("tweets.create", request).await
    }

    /// `DELETE /2/tweets/:id`.
    pub async fn delete_post(&self, token: &Secret, id: &str) -> Result<XAnswer, XCallError> {
        let request = self
            .http
            .delete(format!("{}/2/tweets/{id}", self.base))
            .bearer_auth(token.expose());
        self.call("tweets.delete", request).await
    }

    /// `GET /2/users/me?user.fields=public_metrics`.
    pub async fn me(&self, token: &Secret) -> Result<XAnswer, XCallError> {
        self.get("users.me", "/2/users/me?user.fields=public_metrics", token)
            .await
    }

    /// `POST /2/media/upload/initialize`: a chunked upload of `total_bytes` of `media_type`.
    pub async fn media_initialize(
        &self,
        token: &Secret,
        (media_type, category, total_bytes): (&str, &str, u64),
    ) -> Result<XAnswer, XCallError> {
        let body = json!({"media_type": media_type, "media_category": category,
            "total_bytes": total_bytes});
        self.post(
            "media.upload",
            "/2/media/upload/initialize",
            token,
            Some(&body),
        )
        .await
    }

    /// `POST /2/media/upload/:id/append`: segment `index` (`multipart/form-data`).
    pub async fn media_append(
        &self,
        token: &Secret,
        media_id: &str,
        (index, bytes): (u32, Vec<u8>),
    ) -> Result<XAnswer, XCallError> {
        let form = reqwest::multipart::Form::new()
            .text("segment_index", index.to_string())
            .part("media", reqwest::multipart::Part::bytes(bytes));
        let request = self
            .http
            .post(format!("{}/2/media/upload/{media_id}/append", self.base))
            .bearer_auth(token.expose())
            .multipart(form);
        self.call("media.upload", request).await
    }

    /// `POST /2/media/upload/:id/finalize`.
    pub async fn media_finalize(
        &self,
        token: &Secret,
        media_id: &str,
    ) -> Result<XAnswer, XCallError> {
        let path = format!("/2/media/upload/{media_id}/finalize");
        self.post("media.upload", &path, token, None).await
    }

    /// `GET /2/media/upload?command=STATUS&media_id=:id`: a finalized upload's processing.
    pub async fn media_status(
        &self,
        token: &Secret,
        media_id: &str,
    ) -> Result<XAnswer, XCallError> {
        let path = format!("/2/media/upload?command=STATUS&media_id={media_id}");
        self.get("media.upload", &path, token).await
    }

    /// `POST /2/media/metadata`: the medium's alt text.
    pub async fn media_alt_text(
        &self,
        token: &Secret,
        media_id: &str,
        text: &str,
    ) -> Result<XAnswer, XCallError> {
        let body = json!({"id": media_id, "metadata": {"alt_text": {"text": text}}});
        self.post("media.metadata", "/2/media/metadata", token, Some(&body))
            .await
    }

    /// `GET /2/tweets/:id` with public, non-public and organic metrics.
    pub async fn lookup_post(&self, token: &Secret, id: &str) -> Result<XAnswer, XCallError> {
        let path = format!(
            "/2/tweets/{id}?tweet.fields=public_metrics,non_public_metrics,organic_metrics,created_at"
        );
        self.get("tweets.lookup", &path, token).await
    }

    /// `GET /2/tweets/:id` with what X's reply restriction looks at: the author, the
    /// mentions, and the post it quotes with that post's author.
    pub async fn reply_target(&self, token: &Secret, id: &str) -> Result<XAnswer, XCallError> {
        let path = format!(
            "/2/tweets/{id}?tweet.fields=author_id,entities,referenced_tweets\
             &expansions=referenced_tweets.id"
        );
        self.get("tweets.lookup", &path, token).await
    }

    /// `GET /2/usage/tweets` with an app-only bearer token: the project's monthly cap, its
    /// use so far and the day it resets.
    pub async fn project_usage(&self, app_token: &Secret) -> Result<XAnswer, XCallError> {
        self.get("usage.tweets", "/2/usage/tweets", app_token).await
    }

    /// `GET /2/users/:id/tweets`: the bot's latest posts, to find out whether a post whose
    /// answer was lost exists.
    pub async fn own_posts(&self, token: &Secret, user_id: &str) -> Result<XAnswer, XCallError> {
        let path = format!("/2/users/{user_id}/tweets?max_results=100&tweet.fields=created_at");
        self.get("users.tweets", &path, token).await
    }

    /// `POST /2/oauth2/token` with a refresh token. The refresh token rotates: the answer's
    /// one replaces it, and the old one is spent.
    pub async fn refresh(
        &self,
        refresh_token: &Secret,
        client_id: &str,
        client_secret: Option<&Secret>,
    ) -> Result<Refreshed, RefreshError> {
        let pairs = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
        ];
        let parsed = self.token_grant(&pairs, client_id, client_secret).await?;
        Ok(Refreshed {
            access_token: Secret::new(parsed.access_token),
            // X always rotates; if an answer ever lacks one, the old one stays.
            refresh_token: Secret::new(
                parsed
                    .refresh_token
                    .unwrap_or_else(|| refresh_token.expose().to_string()),
            ),
        })
    }

    /// `POST /2/oauth2/token` with an authorization code, the redirect URI it was issued
    /// for and the PKCE verifier of its challenge (RFC 7636).
    pub async fn exchange_code(
        &self,
        (code, verifier): (&str, &Secret),
        redirect_uri: &str,
        client_id: &str,
        client_secret: Option<&Secret>,
    ) -> Result<Granted, RefreshError> {
        let pairs = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier.expose()),
        ];
        let parsed = self.token_grant(&pairs, client_id, client_secret).await?;
        Ok(Granted {
            access_token: Secret::new(parsed.access_token),
            refresh_token: parsed.refresh_token.map(Secret::new),
            scopes: parsed
                .scope
                .unwrap_or_default()
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        })
    }

    /// A form POST to one of X's OAuth 2.0 endpoints as the client: a confidential client
    /// authenticates with HTTP Basic; a public one names itself in the form.
    fn oauth_form(
        &self,
        path: &str,
        pairs: &[(&str, &str)],
        (client_id, client_secret): (&str, Option<&Secret>),
    ) -> reqwest::RequestBuilder {
        let mut pairs = pairs.to_vec();
        if client_secret.is_none() {
            pairs.push(("client_id", client_id));
        }
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&pairs));
        if let Some(secret) = client_secret {
            let basic = base64::engine::general_purpose::STANDARD
                .encode(format!("{client_id}:{}", secret.expose()));
            request = request.header("authorization", format!("Basic {basic}"));
        }
        request
    }

    /// `POST /2/oauth2/revoke` (RFC 7009): the token stops working.
    pub async fn revoke(
        &self,
        token: &Secret,
        client_id: &str,
        client_secret: Option<&Secret>,
    ) -> Result<XAnswer, XCallError> {
        let pairs = [("token", token.expose())];
        let request = self.oauth_form("/2/oauth2/revoke", &pairs, (client_id, client_secret));
        self.call("oauth2.revoke", request).await
    }

    /// One grant at X's token endpoint.
    async fn token_grant(
        &self,
        pairs: &[(&str, &str)],
        client_id: &str,
        client_secret: Option<&Secret>,
    ) -> Result<TokenAnswer, RefreshError> {
        let request = self.oauth_form("/2/oauth2/token", pairs, (client_id, client_secret));
        let answer = self.call("oauth2.token", request).await?;
        match answer.status {
            200 => serde_json::from_value(answer.body).map_err(|_| RefreshError::Unexpected(200)),
            400 | 401 => Err(RefreshError::Refused(
                answer
                    .body
                    .get("error_description")
                    .and_then(Value::as_str)
                    .unwrap_or("invalid_grant")
                    .to_string(),
            )),
            status => Err(RefreshError::Unexpected(status)),
        }
    }
}

/// What a post sends to X.
pub struct PostContent<'a> {
    pub text: &'a str,
    pub media_ids: &'a [String],
    pub options: &'a PostOptions,
}

/// The body of `POST /2/tweets`, checked against X's `TweetCreateRequest` before it leaves.
fn create_body(post: &PostContent<'_>) -> Result<Value, XCallError> {
    let mut body = json!({"text": post.text});
    if !post.media_ids.is_empty() {
        body["media"] = json!({"media_ids": post.media_ids});
    }
    let options = post.options;
    if let Some(id) = &options.reply_to_x_post_id {
        body["reply"] = json!({"in_reply_to_tweet_id": id});
    }
    if let Some(id) = &options.quote_x_post_id {
        body["quote_tweet_id"] = json!(id);
    }
    if let Some(poll) = &options.poll {
        body["poll"] = json!({"options": poll.options, "duration_minutes": poll.duration_minutes});
    }
    if let Some(settings) = options.reply_settings {
        body["reply_settings"] = json!(settings);
    }
    let violations = x_contract::check_request_body(x_contract::Operation::CreateTweet, &body);
    if let Some(first) = violations.first() {
        return Err(XCallError::Malformed(first.to_string()));
    }
    Ok(body)
}

/// A send error: before the request left, or after.
fn classify(err: reqwest::Error) -> XCallError {
    if err.is_connect() || err.is_builder() {
        XCallError::NotSent(err.to_string())
    } else {
        XCallError::NoAnswer(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_usage_reads_xs_strings_and_plain_numbers() {
        let as_x_sends_it = json!({"data": {"cap_reset_day": 10, "project_cap": "5000000000",
            "project_id": "1369785403853424", "project_usage": "43435"}});
        assert_eq!(
            ProjectUsage::from_body(&as_x_sends_it),
            Some(ProjectUsage {
                project_id: "1369785403853424".into(),
                cap: 5_000_000_000,
                used: 43_435,
                reset_day: 10,
            })
        );
        let numbers = json!({"data": {"project_cap": 1000, "project_usage": 250}});
        let read = ProjectUsage::from_body(&numbers).unwrap();
        assert_eq!((read.cap, read.used, read.reset_day), (1000, 250, 1));
        assert_eq!(ProjectUsage::from_body(&json!({"errors": []})), None);
    }

    fn answer(status: u16, body: Value) -> XAnswer {
        XAnswer {
            status,
            body,
            windows: Vec::new(),
        }
    }

    #[test]
    fn a_create_body_is_xs_shape_or_is_not_sent() {
        use crate::model::{Poll, ReplySettings};
        let options = PostOptions {
            reply_to_x_post_id: Some("1".into()),
            poll: Some(Poll {
                options: vec!["a".into(), "b".into()],
                duration_minutes: 5,
            }),
            reply_settings: Some(ReplySettings::MentionedUsers),
            ..PostOptions::default()
        };
        let post = PostContent {
            text: "t",
            media_ids: &[],
            options: &options,
        };
        assert_eq!(
            create_body(&post).unwrap(),
            json!({"text": "t", "reply": {"in_reply_to_tweet_id": "1"},
                   "poll": {"options": ["a", "b"], "duration_minutes": 5},
                   "reply_settings": "mentionedUsers"})
        );
        // What the post checks would have refused never leaves either.
        let media: Vec<String> = (1..=5).map(|i| i.to_string()).collect();
        let post = PostContent {
            text: "t",
            media_ids: &media,
            options: &PostOptions::default(),
        };
        assert!(
            matches!(create_body(&post), Err(XCallError::Malformed(m)) if m.contains("/media/media_ids"))
        );
    }

    #[test]
    fn problem_json_is_read() {
        let problem = answer(
            403,
            json!({"title":"Forbidden","type":"about:blank","status":403,
                   "detail":"You are not allowed to create a Tweet with duplicate content."}),
        )
        .problem();
        assert_eq!(problem.status, 403);
        assert_eq!(problem.title, "Forbidden");
        assert!(problem.is_duplicate_content());
    }

    #[test]
    fn the_older_errors_array_is_read() {
        let problem = answer(
            400,
            json!({"errors":[{"message":"Your Tweet text is too long.","parameters":{"text":[]}}]}),
        )
        .problem();
        assert_eq!(problem.status, 400);
        assert_eq!(problem.detail, "Your Tweet text is too long.");
        assert!(!problem.is_duplicate_content());
    }

    #[test]
    fn rate_headers_give_the_window_and_the_daily_ones() {
        let mut headers = HeaderMap::new();
        for (k, v) in [
            ("x-rate-limit-limit", "100"),
            ("x-rate-limit-remaining", "0"),
            ("x-rate-limit-reset", "1800000000"),
            ("x-user-limit-24hour-limit", "2400"),
            ("x-user-limit-24hour-remaining", "2300"),
            ("x-user-limit-24hour-reset", "1800050000"),
        ] {
            headers.insert(k, v.parse().unwrap());
        }
        let windows = rate_windows("tweets.create", &headers);
        assert_eq!(windows.len(), 2);
        assert_eq!(windows[0].remaining, 0);
        assert_eq!(windows[1].endpoint, "tweets.create:24h-user");
        let answer = XAnswer {
            status: 429,
            body: Value::Null,
            windows,
        };
        assert_eq!(answer.reset_of("tweets.create"), Some(1_800_000_000));
    }
}
