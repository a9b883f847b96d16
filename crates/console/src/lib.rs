//! The operator console: a web application for the people who run the bots, rendered on the
//! server. It is a client of the public REST API (a backend-for-frontend): every page calls
//! the API with the signed-in person's own token, so permissions, team scope and audit
//! records are exactly the API's. It keeps nothing of its own but sessions, which hold the
//! tokens on the server; the browser holds an opaque, HttpOnly cookie.

mod api;
mod assets;
mod pages;
mod security;
mod session;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use platform::target::{BuiltTarget, Target, TargetContext, TargetInfo};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "console";
pub const CONFIG_SECTION: &str = "console";
/// Where the console answers.
pub const PREFIX: &str = "/console";

/// The `console` config section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Base URL of the public API (the gateway). Unset: this process when it runs the
    /// gateway, else the gateway's Service.
    pub api_url: Option<String>,
    /// Seconds a session may go unused before it ends; the Authentication service's own
    /// default, so the console never outlives the API's session.
    pub session_idle_timeout: u64,
    /// Seconds a session lasts at most, however busy.
    pub session_absolute_timeout: u64,
    /// Sessions held at once; past it the oldest signed-out visits go first.
    pub max_sessions: usize,
    /// Mark the cookie `Secure` on every answer (it is always marked when the request came
    /// over TLS, as `X-Forwarded-Proto: https` says).
    pub secure_cookie: bool,
    /// Believe `X-Forwarded-For` from any peer: only for a console that nothing but its
    /// proxy can reach (Kubernetes, by network policy). From loopback it is always believed.
    pub trust_forwarded_for: bool,
    /// Milliseconds the API may take to answer a page's call.
    pub api_timeout_ms: u64,
    /// Live pages open at once (each reads the API every second); more answer 503.
    pub max_live_streams: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            api_url: None,
            session_idle_timeout: 1800,
            session_absolute_timeout: 12 * 3600,
            max_sessions: 10_000,
            secure_cookie: false,
            trust_forwarded_for: false,
            api_timeout_ms: 10_000,
            max_live_streams: 500,
        }
    }
}

/// The console target.
pub struct ConsoleService;

#[async_trait]
impl Target for ConsoleService {
    /// The console keeps no data of its own: sessions live in its memory.
    fn info(&self) -> TargetInfo {
        TargetInfo::new::<Settings>(NAME, CONFIG_SECTION)
            .without_database()
            .with_routes(PREFIX)
    }

    async fn build(&self, ctx: TargetContext) -> anyhow::Result<BuiltTarget> {
        let settings: Settings = ctx.config.section(CONFIG_SECTION)?;
        let api_url = settings
            .api_url
            .clone()
            .unwrap_or_else(|| ctx.peers.url("gateway"));
        platform::install_crypto_provider();
        let api = api::Api::new(&api_url, Duration::from_millis(settings.api_timeout_ms))?;
        let sessions = session::Sessions::new(
            ctx.clock.clone(),
            session::Limits {
                idle: Duration::from_secs(settings.session_idle_timeout),
                absolute: Duration::from_secs(settings.session_absolute_timeout),
                max_sessions: settings.max_sessions.max(1),
            },
        );
        let state = pages::Console {
            api: Arc::new(api),
            sessions: Arc::new(sessions),
            secure_cookie: settings.secure_cookie,
            trust_forwarded_for: settings.trust_forwarded_for,
            live_streams: Arc::new(tokio::sync::Semaphore::new(settings.max_live_streams)),
            refreshing: Arc::default(),
        };
        Ok(BuiltTarget::routes(pages::router(state)))
    }
}
