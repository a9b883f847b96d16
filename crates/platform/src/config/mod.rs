//! Layered configuration: typed settings assembled from defaults, YAML files, the central
//! Configuration service and the environment, with the origin of every value kept so that
//! errors and `vivesphere config check` can say where a value came from.
//!
//! Layers, lowest to highest priority (see [`LayerKind`]):
//! defaults in code < `config/global.yaml` < `config/<target>.yaml` <
//! `config/profiles/<ENV>.yaml` < central Configuration service < environment variables.
//!
//! Environment variables name a key path with `__` between levels:
//! `VIVESPHERE_DATABASE__URL` sets `database.url`,
//! `VIVESPHERE_AUTHENTICATION__ACCESS_TOKEN_TTL` sets `authentication.access_token_ttl`.
//! Only variables with at least one `__` are read, so `VIVESPHERE_TEST_*` and friends
//! never collide with config keys.

mod catalog;
pub mod central;
mod client;
mod error;
mod layered;
mod live;
mod loader;
mod render;
mod secret;
mod settings;

pub use catalog::{BOOTSTRAP_SECTIONS, Catalog, SettingKind, SettingSpec};
pub use client::{CentralSource, ConfigClient, ConfigClientSettings};
pub use live::{Applied, Commit, Live, LiveConfig};

pub use error::ConfigError;
pub use layered::{LayerKind, LayeredConfig, Origin};
pub use loader::{ConfigLoader, Profile, env_var, is_secret_reference};
pub use secret::{REDACTED, Secret, redact_url_credentials, secret_keys_of, url_has_credentials};
pub use settings::{
    AuthSettings, DatabaseSettings, LogFormat, MigrationMode, PlatformSettings, QueueKind,
    QueueSettings, ServerSettings, TelemetrySettings,
};
