//! The `secure_bot_data` config section.

use platform::config::Secret;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// A directory of KEK versions, one file per version named by its number (`1`, `2`, …),
    /// each holding base64 of 32 random bytes: how a Kubernetes Secret mounts. Missing or
    /// empty means no keys from files.
    pub kek_dir: String,
    /// KEK versions from the environment or a secret file: `1:<base64>,2:<base64>`.
    pub keks: Option<Secret>,
    /// In development only: create KEK version 1 in `kek_dir` when no key exists at all, so
    /// `vivesphere serve` works out of the box. Elsewhere the service starts sealed.
    pub generate_development_kek: bool,
    /// How often the keyring is reread, so a KEK version added by `rotate-kek` or a Secret
    /// update reaches every replica (an unknown version also triggers a reread).
    pub kek_reload_interval: u64,
    /// Versions kept per field; older ones are removed on write.
    pub max_versions: i64,
    /// Largest value, in bytes.
    pub max_value_bytes: usize,
    /// Most fields per bot.
    pub max_fields_per_bot: i64,
    /// Days the audit trail keeps an entry once it has been relayed to the Logging service
    /// (which keeps it as user_activity by its own retention); an entry not yet relayed is
    /// never removed.
    pub audit_retention_days: u32,
    /// Seconds between passes that remove audit entries past their days.
    pub audit_trim_interval: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            kek_dir: "./data/botdata-kek".to_string(),
            keks: None,
            generate_development_kek: true,
            kek_reload_interval: 10,
            max_versions: 10,
            max_value_bytes: 16 * 1024,
            max_fields_per_bot: 64,
            audit_retention_days: 400,
            audit_trim_interval: 3600,
        }
    }
}
