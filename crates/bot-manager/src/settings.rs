//! The `bot_manager` config section. Durations are seconds unless the name says otherwise.

use platform::config::{SettingKind, SettingSpec};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub x_api: XApiSettings,
    /// Base URL of Secure Bot Data; unset: this process when it runs it, else its
    /// Kubernetes Service.
    pub secure_bot_data_url: Option<String>,
    /// The client id whose secret (`auth.service_secrets_dir/<id>.secret`) gets the service
    /// tokens for Secure Bot Data.
    pub client_id: String,
    pub execution: ExecutionSettings,
    /// Posts this much later than their `run_at` are not published but marked missed.
    pub grace_seconds: u64,
    /// Near-identical text from two different bots within this window is refused (X's
    /// automation rules).
    pub duplicate_window_seconds: u64,
    /// How often each active bot's metrics are snapshotted; 0 turns the poller off.
    pub metrics_interval_seconds: u64,
    /// How often recurring posts' next occurrences are made into posts (0: never, for tests
    /// that drive it).
    pub recurrence_interval_seconds: u64,
    /// The largest medium kept here until its post is published (X's own limits — images
    /// 5 MB, GIFs 15 MB, videos 512 MB — apply below it).
    pub media_max_bytes: u64,
    /// The size of the chunks media are kept in and uploaded to X in (X takes at most 5 MiB
    /// per segment).
    pub media_chunk_bytes: u64,
    /// How often X is asked for each registered app's project usage (`GET /2/usage/tweets`,
    /// which X allows 50 times per 15 minutes); 0 turns the reader off.
    pub x_usage_interval_seconds: u64,
    /// Published posts younger than this get their metrics snapshotted.
    pub metrics_post_age_days: u64,
    /// Most posts a bot may have scheduled and not yet published.
    pub max_pending_posts_per_bot: i64,
    /// What each billable use of X costs (live: a change prices what happens after it).
    pub pricing: Pricing,
    /// X's posting limits that no response header reports, kept from what this service
    /// published (live).
    pub x_limits: XLimits,
    /// Review before posting, for every bot (teams and bots can require it too) (live).
    pub approvals: ApprovalSettings,
    pub compliance: ComplianceSettings,
}

/// The automation disclosure a person confirms for each bot (`PUT /bots/{id}/compliance`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComplianceSettings {
    /// A bot's first post waits for its confirmed record (X's automation rules). A bot that
    /// has published is not asked again.
    pub record_required: bool,
}

impl Default for ComplianceSettings {
    fn default() -> Self {
        Self {
            record_required: true,
        }
    }
}

/// Review before posting. Any level that requires it requires it: this setting, the bot's
/// team's policy or the bot's own (`review_policies`), so no level below can waive it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApprovalSettings {
    /// Every bot's posts need an approval before they are scheduled.
    pub required: bool,
    /// An author may approve their own post (a team's policy can say otherwise for it).
    pub allow_self_approval: bool,
}

/// X's posting limits beyond the 15-minute window its headers report: per account over 3
/// hours and per app over 24 hours (X's published figures as defaults); 0 turns one off.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XLimits {
    pub user_posts_per_3h: i64,
    pub app_posts_per_24h: i64,
    /// The X app is on a self-serve tier, where X lets a bot reply to another account's post
    /// only if that post's author mentioned the bot or quoted one of its posts: a reply is
    /// checked against the post on X before it is approved or scheduled. Off for an
    /// enterprise app.
    pub replies_restricted: bool,
}

impl Default for XLimits {
    fn default() -> Self {
        Self {
            user_posts_per_3h: 300,
            app_posts_per_24h: 10_000,
            replies_restricted: true,
        }
    }
}

/// X's pay-per-use prices, in millionths of `currency` so that costs add up exactly.
/// Defaults: X's published prices when this was written (a post $0.015, a post with a URL
/// $0.20, a read of the app's own data $0.001); X published none for deletes and media
/// uploads, so they are 0 until set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pricing {
    /// ISO 4217 code the prices are in.
    pub currency: String,
    pub post_micros: i64,
    pub post_with_url_micros: i64,
    pub delete_micros: i64,
    pub read_micros: i64,
    pub media_upload_micros: i64,
}

impl Default for Pricing {
    fn default() -> Self {
        Self {
            currency: "USD".into(),
            post_micros: 15_000,
            post_with_url_micros: 200_000,
            delete_micros: 0,
            read_micros: 1_000,
            media_upload_micros: 0,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            x_api: XApiSettings::default(),
            secure_bot_data_url: None,
            client_id: "bot-manager".into(),
            execution: ExecutionSettings::default(),
            grace_seconds: 3600,
            duplicate_window_seconds: 86_400,
            metrics_interval_seconds: 900,
            recurrence_interval_seconds: 60,
            media_max_bytes: 16 * 1024 * 1024,
            media_chunk_bytes: 1024 * 1024,
            x_usage_interval_seconds: 900,
            metrics_post_age_days: 7,
            max_pending_posts_per_bot: 10_000,
            pricing: Pricing::default(),
            x_limits: XLimits::default(),
            approvals: ApprovalSettings::default(),
            compliance: ComplianceSettings::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XApiSettings {
    /// X API v2 base URL (the fake X in tests and demos).
    pub base_url: String,
    /// X's OAuth 2.0 consent page, where a person connects an X account (empty: X's own,
    /// `https://x.com/i/oauth2/authorize`, for X's API; `{base_url}/i/oauth2/authorize` for
    /// any other, such as the fake X).
    pub authorize_url: String,
    /// A request to X that has not answered after this many milliseconds is given up; for a
    /// post that had been sent, the outcome is then unknown until verified.
    pub timeout_ms: u64,
    pub connect_timeout_ms: u64,
}

impl Default for XApiSettings {
    fn default() -> Self {
        Self {
            base_url: "https://api.x.com".into(),
            authorize_url: String::new(),
            timeout_ms: 10_000,
            connect_timeout_ms: 3_000,
        }
    }
}

impl XApiSettings {
    /// Where a person is sent to connect an X account.
    pub fn authorize_url(&self) -> String {
        if !self.authorize_url.is_empty() {
            return self.authorize_url.clone();
        }
        let base = self.base_url.trim_end_matches('/');
        if base == "https://api.x.com" || base == "https://api.twitter.com" {
            "https://x.com/i/oauth2/authorize".into()
        } else {
            format!("{base}/i/oauth2/authorize")
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutionSettings {
    /// Jobs one replica runs at once (across different bots: one write per bot at a time).
    pub concurrency: usize,
    /// Counted attempts (5xx, network errors, unknown outcomes) before a job is dead-lettered.
    pub max_attempts: u32,
    /// First retry delay in milliseconds; doubles each attempt, with full jitter.
    pub backoff_base_ms: u64,
    /// Longest retry delay in milliseconds.
    pub backoff_max_ms: u64,
    /// Extra random wait after a rate-limit reset, at most this many milliseconds.
    pub rate_limit_jitter_ms: u64,
    /// How often the relay looks for due jobs when nothing woke it, in milliseconds.
    pub relay_interval_ms: u64,
    /// Due jobs handed to the queue per relay round.
    pub relay_batch: i64,
    /// How long a worker holds a bot's lease at most (a crashed worker's lease lapses).
    pub lease_seconds: u64,
    /// When another worker holds the bot, try again after this many milliseconds.
    pub busy_retry_ms: u64,
}

impl Default for ExecutionSettings {
    fn default() -> Self {
        Self {
            concurrency: 64,
            max_attempts: 5,
            backoff_base_ms: 1_000,
            backoff_max_ms: 300_000,
            rate_limit_jitter_ms: 1_000,
            relay_interval_ms: 100,
            relay_batch: 500,
            lease_seconds: 60,
            busy_retry_ms: 50,
        }
    }
}

/// What the service applies live: each job reads them when it runs.
pub fn declared_settings() -> Vec<SettingSpec> {
    let int = |min, max| SettingKind::Integer { min, max };
    // Millionths of the currency: up to 100 per use.
    let price = || int(0, 100_000_000);
    vec![
        SettingSpec::live(
            "bot_manager.grace_seconds",
            int(1, 30 * 86_400),
            "seconds a post may be late before it is marked missed instead of published",
        ),
        SettingSpec::live(
            "bot_manager.execution.max_attempts",
            int(1, 100),
            "attempts before a failing job is dead-lettered",
        ),
        SettingSpec::live(
            "bot_manager.execution.backoff_base_ms",
            int(1, 3_600_000),
            "first retry delay (doubles per attempt, with full jitter)",
        ),
        SettingSpec::live(
            "bot_manager.execution.backoff_max_ms",
            int(1, 86_400_000),
            "longest retry delay",
        ),
        SettingSpec::live(
            "bot_manager.execution.rate_limit_jitter_ms",
            int(0, 600_000),
            "random extra wait after X's rate-limit reset, so bots do not retry at once",
        ),
        SettingSpec::live(
            "bot_manager.pricing.currency",
            SettingKind::OneOf {
                values: &["USD", "EUR", "GBP"],
            },
            "the currency X's prices are in",
        ),
        SettingSpec::live(
            "bot_manager.pricing.post_micros",
            price(),
            "a post without a URL",
        ),
        SettingSpec::live(
            "bot_manager.pricing.post_with_url_micros",
            price(),
            "a post with a URL",
        ),
        SettingSpec::live(
            "bot_manager.pricing.delete_micros",
            price(),
            "a deleted post",
        ),
        SettingSpec::live(
            "bot_manager.pricing.read_micros",
            price(),
            "a read of the bot's own data",
        ),
        SettingSpec::live(
            "bot_manager.pricing.media_upload_micros",
            price(),
            "a media upload",
        ),
    ]
    .into_iter()
    .chain(x_limit_settings())
    .chain(approval_settings())
    .collect()
}

/// X's limits and restrictions that no answer of X's states up front, live.
fn x_limit_settings() -> [SettingSpec; 3] {
    let int = |min, max| SettingKind::Integer { min, max };
    [
        SettingSpec::live(
            "bot_manager.x_limits.user_posts_per_3h",
            int(0, 1_000_000),
            "posts X allows one account over 3 hours (0: not checked here)",
        ),
        SettingSpec::live(
            "bot_manager.x_limits.app_posts_per_24h",
            int(0, 100_000_000),
            "posts X allows the app over 24 hours (0: not checked here)",
        ),
        SettingSpec::live(
            "bot_manager.x_limits.replies_restricted",
            SettingKind::Bool,
            "self-serve X app: a reply only where the post's author mentioned or quoted the bot",
        ),
    ]
}

/// Review before posting and the automation disclosure, live.
fn approval_settings() -> [SettingSpec; 3] {
    [
        SettingSpec::live(
            "bot_manager.compliance.record_required",
            SettingKind::Bool,
            "a bot's first post waits for its confirmed automation disclosure",
        ),
        SettingSpec::live(
            "bot_manager.approvals.required",
            SettingKind::Bool,
            "every bot's posts need a reviewer's approval before they are scheduled",
        ),
        SettingSpec::live(
            "bot_manager.approvals.allow_self_approval",
            SettingKind::Bool,
            "an author may approve their own post (a team's review policy can override)",
        ),
    ]
}

impl Settings {
    /// Refuses values that cannot work, naming the key.
    pub fn check(&self) -> anyhow::Result<()> {
        let e = &self.execution;
        let problems = [
            (
                e.concurrency == 0 || e.concurrency > 4096,
                "bot_manager.execution.concurrency is 1 to 4096",
            ),
            (
                e.max_attempts == 0,
                "bot_manager.execution.max_attempts is at least 1",
            ),
            (
                e.backoff_base_ms == 0 || e.backoff_max_ms < e.backoff_base_ms,
                "bot_manager.execution.backoff_base_ms is at least 1 and at most backoff_max_ms",
            ),
            (
                e.relay_interval_ms == 0,
                "bot_manager.execution.relay_interval_ms is at least 1",
            ),
            (
                !(1..=10_000).contains(&e.relay_batch),
                "bot_manager.execution.relay_batch is 1 to 10000",
            ),
            (
                e.lease_seconds * 1000 <= self.x_api.timeout_ms,
                "bot_manager.execution.lease_seconds must outlast x_api.timeout_ms",
            ),
            (
                self.x_api.timeout_ms == 0,
                "bot_manager.x_api.timeout_ms is at least 1",
            ),
            (
                !self.x_api.base_url.starts_with("http://")
                    && !self.x_api.base_url.starts_with("https://"),
                "bot_manager.x_api.base_url is an http(s) URL",
            ),
            (
                !self.x_api.authorize_url.is_empty()
                    && !self.x_api.authorize_url.starts_with("https://")
                    && !self.x_api.authorize_url.starts_with("http://"),
                "bot_manager.x_api.authorize_url is empty (X's own) or an http(s) URL",
            ),
            (
                !(1..=512 * 1024 * 1024).contains(&self.media_max_bytes),
                "bot_manager.media_max_bytes is 1 to 536870912 (X's largest video)",
            ),
            (
                !(16 * 1024..=5 * 1024 * 1024).contains(&self.media_chunk_bytes),
                "bot_manager.media_chunk_bytes is 16 KiB to 5 MiB (X's largest segment)",
            ),
            (
                self.grace_seconds == 0,
                "bot_manager.grace_seconds is at least 1",
            ),
            (
                self.max_pending_posts_per_bot < 1,
                "bot_manager.max_pending_posts_per_bot is at least 1",
            ),
        ];
        match problems.iter().find(|(bad, _)| *bad) {
            Some((_, message)) => anyhow::bail!("{message}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_key() {
        Settings::default().check().unwrap();
        let mut settings = Settings::default();
        settings.execution.lease_seconds = 5;
        let err = settings.check().unwrap_err().to_string();
        assert!(err.contains("lease_seconds"), "{err}");
        let mut settings = Settings::default();
        settings.x_api.base_url = "ftp://x".into();
        assert!(
            settings
                .check()
                .unwrap_err()
                .to_string()
                .contains("base_url")
        );
    }
}
