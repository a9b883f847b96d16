//! The `logging` config section. Durations are seconds, retention is days.

use platform::config::{SettingKind, SettingSpec};
use serde::{Deserialize, Serialize};

/// Retention applies live: a change runs a retention pass at once.
pub fn declared_settings() -> Vec<SettingSpec> {
    let days = SettingKind::Integer { min: 1, max: 3650 };
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
    ]
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub retention: Retention,
    /// How often retention runs.
    pub retention_interval: u64,
    /// Most events one queue batch (one insert transaction) takes.
    pub batch_size: usize,
    /// Writer loops per replica, each pulling its own batches, so that pulling, inserting and
    /// acknowledging overlap.
    pub writers: usize,
    /// How long the writer waits to fill a batch once it has one event.
    pub batch_linger_ms: u64,
    /// Most events in one HTTP batch.
    pub max_batch_events: usize,
    /// Longest message, in bytes; longer ones are cut (and marked).
    pub max_message_bytes: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            retention: Retention::default(),
            retention_interval: 3600,
            batch_size: 2000,
            writers: 3,
            batch_linger_ms: 50,
            max_batch_events: 10_000,
            max_message_bytes: 16 * 1024,
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
