//! A faithful local fake of the X API v2, because X cannot be reached from here: the only
//! fake the system allows. It answers what the Bot Manager calls — `POST /2/tweets`,
//! `DELETE /2/tweets/:id`, `GET /2/tweets/:id`, `GET /2/users/me`, `GET /2/users/:id/tweets`,
//! `POST /2/oauth2/token`, `POST /2/media/upload` — with X's status codes, bodies and
//! `x-rate-limit-*` headers, and enforces what X enforces: X's published document (request
//! bodies, parameters and field lists validated against it with `x_contract`, and its own
//! answers checked against it as they leave), bearer tokens that expire and carry scopes,
//! app-only tokens where the document allows them, rotating refresh tokens, the weighted 280
//! limit, duplicate text per user, per-(user, endpoint) 15-minute windows, a 24-hour post cap
//! and a monthly usage cap.
//!
//! Tests steer it under `/_fake/…`: create users, app-only tokens and media, inject faults (a
//! status, a delay, or commit then drop the connection), expire tokens, change follower
//! counts, and read the log of every request it saw and any contract violation. It keeps
//! everything in memory. Run it alone with `vivesphere serve --target fake-x`.

mod api;
mod state;

use std::sync::Arc;

use async_trait::async_trait;
use platform::target::{BuiltTarget, Target, TargetContext, TargetInfo};
use serde::{Deserialize, Serialize};

pub use api::router;
pub use state::{
    BOT_SCOPES, FakeX, Fault, FaultKind, LoggedRequest, Media, MediaKind, NewUser, UserTokens,
    s256_challenge,
};

pub const NAME: &str = "fake-x";
pub const CONFIG_SECTION: &str = "fake_x";

/// The `fake_x` config section: X's limits, smaller when a test wants to reach them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Posts per user per window (X: 100 per 15 minutes for `POST /2/tweets`).
    pub post_limit: u32,
    /// Reads per user per window for the lookup endpoints (X: 900).
    pub read_limit: u32,
    /// `GET /2/users/me` per user per window (X: 75).
    pub me_limit: u32,
    /// The window, in seconds (X: 900).
    pub window_seconds: u64,
    /// Posts per user per 24 hours.
    pub daily_post_limit: u32,
    /// Posts per user per 3 hours (X: 300, posts and reposts); no header reports it.
    pub user_3h_post_limit: u32,
    /// Posts per app (all its users) per 24 hours (X: 10,000); no header reports it.
    pub app_daily_post_limit: u32,
    /// Lifetime of an access token, in seconds (X: 7200).
    pub access_token_ttl: u64,
    /// Posts per calendar month (UTC) for the whole project, X's usage cap; 0: none.
    pub monthly_post_cap: u64,
    /// The project's id, as `GET /2/usage/tweets` reports it.
    pub project_id: String,
    /// `GET /2/usage/tweets` per app per window (X: 50 per 15 minutes).
    pub usage_limit: u32,
    /// Users created at start for demos (their tokens are printed once).
    pub demo_users: Vec<String>,
    /// X's reply restriction for self-serve apps: a reply to another account's post is
    /// refused (403) unless that post's author mentioned the replying account or quoted one
    /// of its posts. Off: an enterprise app.
    pub restrict_replies: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            post_limit: 100,
            read_limit: 900,
            me_limit: 75,
            window_seconds: 900,
            daily_post_limit: 2400,
            user_3h_post_limit: 300,
            app_daily_post_limit: 10_000,
            access_token_ttl: 7200,
            monthly_post_cap: 0,
            project_id: "1369785403853424".into(),
            usage_limit: 50,
            demo_users: Vec::new(),
            restrict_replies: true,
        }
    }
}

/// The fake X target; not part of `all`.
pub struct FakeXService;

#[async_trait]
impl Target for FakeXService {
    fn info(&self) -> TargetInfo {
        TargetInfo::new::<Settings>(NAME, CONFIG_SECTION).without_database()
    }

    async fn build(&self, ctx: TargetContext) -> anyhow::Result<BuiltTarget> {
        let settings: Settings = ctx.config.section(CONFIG_SECTION)?;
        let fake = Arc::new(FakeX::new(settings.clone(), ctx.clock.clone()));
        for username in &settings.demo_users {
            let tokens = fake.add_user(NewUser::named(username));
            println!(
                "fake X user @{username}: id {}, access token {}, refresh token {}, client id {}",
                tokens.user_id, tokens.access_token, tokens.refresh_token, tokens.client_id
            );
        }
        Ok(BuiltTarget::routes(router(fake)))
    }
}
