//! The `authentication` config section. Durations are seconds.

use platform::config::{Secret, SettingKind, SettingSpec};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Lifetime of a user access token.
    pub access_token_ttl: u64,
    /// A rotated signing key is published this long before it signs, so every verifier and
    /// every copy of the keys (Kong's) has it first; longer than their key refresh.
    pub signing_key_lead_seconds: u64,
    /// Lifetime of the token that the password step gives an MFA user.
    pub mfa_token_ttl: u64,
    /// A session ends after this long without a refresh.
    pub session_idle_timeout: u64,
    /// A session ends this long after login, however active.
    pub session_absolute_timeout: u64,
    /// Lifetime of a service (client_credentials) token; at most 300.
    pub service_token_ttl: u64,
    /// Admins must enrol TOTP before they get a token.
    pub require_mfa_for_admins: bool,
    pub password: PasswordSettings,
    pub brute_force: BruteForceSettings,
    /// Username of the admin created on first start.
    pub initial_admin_username: String,
    /// Its password; unset: a random one is printed once on stdout.
    pub initial_admin_password: Option<Secret>,
    /// 32 bytes, base64: encrypts signing keys and TOTP secrets at rest. Unset in
    /// development: generated into `development_key_path`. Required in staging and production.
    pub encryption_key: Option<Secret>,
    /// Where a development encryption key is kept when `encryption_key` is unset.
    pub development_key_path: String,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// Password hashes computed at once (each ~20 ms of one core and 19 MiB); 0: one per
    /// core this process may use (its cgroup's CPU limit counts). Set it lower when several
    /// Authentication processes share one machine's cores (`local-cluster` does).
    pub hashing_threads: usize,
    /// Service clients registered at start, each with the secret in
    /// `auth.service_secrets_dir/<client_id>.secret` (skipped, with a warning, when that file
    /// is missing outside development).
    pub service_clients: Vec<DeclaredClient>,
}

/// The settings the service applies live: the password policy and the brute-force
/// thresholds are read on every request.
pub fn declared_settings() -> Vec<SettingSpec> {
    let int = |min, max| SettingKind::Integer { min, max };
    vec![
        SettingSpec::live(
            "authentication.password.min_length",
            int(8, 128),
            "shortest password accepted when one is set or changed",
        ),
        SettingSpec::live(
            "authentication.password.min_strength",
            int(0, 4),
            "least zxcvbn strength (0 to 4) of a new password",
        ),
        SettingSpec::live(
            "authentication.brute_force.enabled",
            SettingKind::Bool,
            "slow down and lock out repeated failed logins",
        ),
        SettingSpec::live(
            "authentication.brute_force.backoff_after",
            int(1, 1000),
            "failed logins (per account and per address) before each attempt must wait",
        ),
        SettingSpec::live(
            "authentication.brute_force.lock_after",
            int(1, 10_000),
            "failed logins before the account or address is locked",
        ),
        SettingSpec::live(
            "authentication.brute_force.lock_duration",
            int(1, 7 * 86_400),
            "seconds a lock lasts",
        ),
        SettingSpec::live(
            "authentication.brute_force.backoff_base",
            int(1, 3600),
            "first backoff delay in seconds",
        ),
        SettingSpec::live(
            "authentication.brute_force.window",
            int(1, 7 * 86_400),
            "seconds after which failures are forgotten",
        ),
    ]
}

/// A service client the configuration declares.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredClient {
    pub client_id: String,
    /// Services it may get tokens for.
    pub audiences: Vec<String>,
    /// Permissions its tokens may carry.
    pub scopes: Vec<String>,
    #[serde(default)]
    pub description: String,
}

/// Every service's client: the Bot Manager's, and one per other service that reads its
/// central settings from the Configuration service.
fn default_service_clients() -> Vec<DeclaredClient> {
    let mut clients = vec![bot_manager_client()];
    for service in [
        "authentication",
        "secure-bot-data",
        "logging",
        "gateway",
        "console",
    ] {
        clients.push(DeclaredClient {
            client_id: service.into(),
            audiences: vec!["configuration".into()],
            scopes: vec!["config:read".into()],
            description: format!("{service}: reads its central settings"),
        });
    }
    clients
}

/// The Bot Manager keeps bots' X credentials in Secure Bot Data and refreshes their tokens.
fn bot_manager_client() -> DeclaredClient {
    DeclaredClient {
        client_id: "bot-manager".into(),
        audiences: vec!["secure-bot-data".into(), "configuration".into()],
        scopes: [
            "botdata:read",
            "botdata:write",
            "botdata:reveal",
            "botdata:delete",
            "config:read",
        ]
        .map(String::from)
        .to_vec(),
        description: "Bot Manager: bots' X credentials and token refresh".into(),
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            access_token_ttl: 900,
            signing_key_lead_seconds: 600,
            mfa_token_ttl: 300,
            session_idle_timeout: 1800,
            session_absolute_timeout: 12 * 3600,
            service_token_ttl: 300,
            require_mfa_for_admins: false,
            password: PasswordSettings::default(),
            brute_force: BruteForceSettings::default(),
            initial_admin_username: "admin".into(),
            initial_admin_password: None,
            encryption_key: None,
            development_key_path: "./data/authentication.key".into(),
            trust_forwarded_for: false,
            hashing_threads: 0,
            service_clients: default_service_clients(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct PasswordSettings {
    pub min_length: usize,
    /// At least 128; longer passwords are refused, never truncated.
    pub max_length: usize,
    /// The least zxcvbn strength (0 to 4) a new password must reach; 3 means it takes more
    /// than 10^8 guesses.
    pub min_strength: u8,
    /// More words no password may be built from: the organisation's name, its domains, the
    /// public host name of the deployment.
    pub context_words: Vec<String>,
}

impl Default for PasswordSettings {
    fn default() -> Self {
        Self {
            min_length: 12,
            max_length: 128,
            min_strength: 3,
            context_words: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct BruteForceSettings {
    pub enabled: bool,
    /// Failures (per account and per client address) before each attempt must wait.
    pub backoff_after: u32,
    /// Failures before the account or address is locked.
    pub lock_after: u32,
    /// Seconds a lock lasts.
    pub lock_duration: u64,
    /// First backoff delay in seconds; it doubles with each further failure.
    pub backoff_base: u64,
    /// Failures older than this many seconds are forgotten.
    pub window: u64,
}

impl Default for BruteForceSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            backoff_after: 5,
            lock_after: 10,
            lock_duration: 900,
            backoff_base: 1,
            window: 900,
        }
    }
}
