//! The `logging` config section. Durations are seconds, retention is days.
//! `webhooks.allow_loopback` is a startup setting on purpose: opening the sender to this
//! machine's addresses is not something a central change should do.

use platform::config::{Secret, SettingKind, SettingSpec};
use serde::{Deserialize, Serialize};

/// Retention applies live: a change runs a retention pass at once.
pub fn declared_settings() -> Vec<SettingSpec> {
    let days = SettingKind::Integer { min: 1, max: 3650 };
    let bytes = SettingKind::Integer {
        min: 0,
        max: 1 << 50,
    };
    vec![
        SettingSpec::live(
            "logging.retention.user_activity",
            days.clone(),
            "days user_activity events are kept",
        ),
        SettingSpec::live(
            "logging.retention.debug",
            days.clone(),
            "days debug events are kept",
        ),
        SettingSpec::live(
            "logging.retention.console",
            days.clone(),
            "days browser console logs are kept",
        ),
        SettingSpec::live(
            "logging.retention.terminal",
            days,
            "days terminal logs are kept",
        ),
        SettingSpec::live(
            "logging.retention_bytes.user_activity",
            bytes.clone(),
            "most bytes user_activity events take; the oldest days go first (0: no budget)",
        ),
        SettingSpec::live(
            "logging.retention_bytes.debug",
            bytes.clone(),
            "most bytes debug events take; the oldest days go first (0: no budget)",
        ),
        SettingSpec::live(
            "logging.retention_bytes.console",
            bytes.clone(),
            "most bytes browser console logs take; the oldest days go first (0: no budget)",
        ),
        SettingSpec::live(
            "logging.retention_bytes.terminal",
            bytes,
            "most bytes terminal logs take; the oldest days go first (0: no budget)",
        ),
        SettingSpec::live(
            "logging.webhooks.delivery_log_days",
            SettingKind::Integer { min: 1, max: 365 },
            "days finished webhook deliveries stay in the delivery log",
        ),
    ]
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub retention: Retention,
    /// Bytes each category may take, besides its days.
    pub retention_bytes: RetentionBytes,
    /// How often retention runs.
    pub retention_interval: u64,
    /// Most events one queue batch (one insert transaction) takes.
    pub batch_size: usize,
    /// Writer loops per replica, each pulling its own batches, so that pulling, inserting and
    /// acknowledging overlap.
    pub writers: usize,
    /// How long the writer waits to fill a batch once it has one event.
    pub batch_linger_ms: u64,
    /// Most queue payload bytes one batch takes, whatever `batch_size` says: a queued
    /// message may carry a whole batch of events, and a writer holds its batch (and the
    /// events parsed from it) in memory.
    pub batch_max_bytes: usize,
    /// Most events in one HTTP batch.
    pub max_batch_events: usize,
    /// Longest message, in bytes; longer ones are cut (and marked).
    pub max_message_bytes: usize,
    pub webhooks: WebhookSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            retention: Retention::default(),
            retention_bytes: RetentionBytes::default(),
            retention_interval: 3600,
            batch_size: 2000,
            writers: 3,
            batch_linger_ms: 50,
            batch_max_bytes: 1024 * 1024,
            max_batch_events: 10_000,
            max_message_bytes: 16 * 1024,
            webhooks: WebhookSettings::default(),
        }
    }
}

/// Days each category is kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Retention {
    pub user_activity: u32,
    pub debug: u32,
    pub console: u32,
    pub terminal: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            user_activity: 365,
            debug: 14,
            console: 7,
            terminal: 30,
        }
    }
}

/// Bytes each category may take (0: no budget). When a category holds more, its oldest
/// days go, whole, until it fits; the current day only loses its oldest events, and only on
/// SQLite (PostgreSQL drops a day partition whole). The defaults together (7 GiB)
/// leave room on the 20 Gi volume the manifests give PostgreSQL (config/logging.yaml).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RetentionBytes {
    pub user_activity: u64,
    pub debug: u64,
    pub console: u64,
    pub terminal: u64,
}

const GIB: u64 = 1024 * 1024 * 1024;

impl Default for RetentionBytes {
    fn default() -> Self {
        Self {
            user_activity: 4 * GIB,
            debug: 2 * GIB,
            console: GIB / 2,
            terminal: GIB / 2,
        }
    }
}

/// Signed webhook notifications: where their secrets are sealed, which targets are allowed,
/// and how deliveries are paced.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookSettings {
    /// 32 bytes, base64: seals subscriptions' signing secrets at rest. Unset in development:
    /// generated into `development_key_path`. Required in staging and production.
    pub encryption_key: Option<Secret>,
    /// Where a development key is kept when `encryption_key` is unset.
    pub development_key_path: String,
    /// Allow `http://` URLs on loopback addresses (a receiver on this machine). Off outside
    /// development: then only public HTTPS targets are called.
    pub allow_loopback: bool,
    /// Deliveries sent at once by one replica.
    pub concurrency: usize,
    /// Most deliveries one replica claims per round.
    pub claim_batch: usize,
    /// How long one attempt may take, connect to last byte, in milliseconds.
    pub timeout_ms: u64,
    /// How often the outbox is looked at when nothing woke the sender, in milliseconds.
    pub poll_interval_ms: u64,
    /// Seconds a rotated-out secret still signs, beside the new one.
    pub rotation_overlap_seconds: u64,
    /// Days a finished delivery (delivered or given up) stays readable in the delivery log.
    pub delivery_log_days: u32,
    /// Most subscriptions per team (and for the global ones).
    pub max_subscriptions_per_team: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            encryption_key: None,
            development_key_path: "./data/logging-webhooks.key".into(),
            allow_loopback: false,
            concurrency: 64,
            claim_batch: 256,
            timeout_ms: 15_000,
            poll_interval_ms: 1_000,
            rotation_overlap_seconds: 24 * 3600,
            delivery_log_days: 30,
            max_subscriptions_per_team: 50,
        }
    }
}
