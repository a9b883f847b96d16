//! The settings catalogue: which keys a service declares as changeable at run time, their
//! types and ranges. The Configuration service checks every central update against it (422
//! naming the key), and each service's config client checks again before applying, so a
//! value outside its range never reaches running code. Keys not declared live still take
//! central values, at the next start ("restart required").

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::central::unflatten;
use super::{ConfigError, ConfigLoader, LayeredConfig, Profile, is_secret_reference};

/// The type and range of one setting.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SettingKind {
    Bool,
    Integer {
        min: i64,
        max: i64,
    },
    /// One of a fixed set of words.
    OneOf {
        values: &'static [&'static str],
    },
    /// A tracing filter such as `info` or `info,sqlx=warn`.
    LogFilter,
}

impl SettingKind {
    /// Why `value` is not of this kind, if it is not.
    pub fn check(&self, value: &Value) -> Result<(), String> {
        match self {
            Self::Bool => value
                .as_bool()
                .map(|_| ())
                .ok_or_else(|| "must be true or false".to_string()),
            Self::Integer { min, max } => match value.as_i64() {
                Some(n) if (*min..=*max).contains(&n) => Ok(()),
                _ => Err(format!("must be a whole number from {min} to {max}")),
            },
            Self::OneOf { values } => match value.as_str() {
                Some(word) if values.contains(&word) => Ok(()),
                _ => Err(format!("must be one of {}", values.join(", "))),
            },
            Self::LogFilter => {
                let text = value
                    .as_str()
                    .ok_or_else(|| "must be a log filter such as `info`".to_string())?;
                tracing_subscriber::EnvFilter::try_new(text)
                    .map(|_| ())
                    .map_err(|err| format!("is not a log filter: {err}"))
            }
        }
    }
}

/// One declared setting.
#[derive(Debug, Clone, Serialize)]
pub struct SettingSpec {
    /// Dotted key path, `bot_manager.grace_seconds`.
    pub key: &'static str,
    #[serde(flatten)]
    pub kind: SettingKind,
    /// Applied by running processes without a restart.
    pub live: bool,
    pub description: &'static str,
}

impl SettingSpec {
    /// A setting running processes apply as soon as it changes.
    pub const fn live(key: &'static str, kind: SettingKind, description: &'static str) -> Self {
        Self {
            key,
            kind,
            live: true,
            description,
        }
    }
}

/// Sections that configure how a process reaches its storage, queue and the Configuration
/// service itself: they come from files and the environment only.
pub const BOOTSTRAP_SECTIONS: [&str; 3] = ["database", "queue", "config_client"];

type CheckFn = dyn Fn(&LayeredConfig) -> Result<(), ConfigError> + Send + Sync;

/// Every service's declared settings, and the typed check of a whole configuration.
#[derive(Clone)]
pub struct Catalog {
    /// Service name → its config section.
    services: BTreeMap<String, String>,
    /// The platform's own sections (`server`, `telemetry`, …).
    platform_sections: Vec<String>,
    specs: BTreeMap<&'static str, SettingSpec>,
    /// Keys that hold secrets (key material, passwords, tokens, URLs with credentials):
    /// centrally they take only `${secret:NAME}` references, and nothing shows their values.
    secrets: BTreeSet<String>,
    check: Arc<CheckFn>,
    /// The defaults layer, the base a central candidate is checked on.
    defaults: Value,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("services", &self.services)
            .field("specs", &self.specs.len())
            .finish()
    }
}

impl Catalog {
    /// `services`: (service name, its config section); `secrets`: the secret keys of every
    /// section; `check`: reads every section of a configuration as its typed settings
    /// (unknown keys and wrong types are errors).
    pub fn new(
        services: Vec<(String, String)>,
        platform_sections: Vec<String>,
        specs: Vec<SettingSpec>,
        secrets: BTreeSet<String>,
        defaults: Value,
        check: impl Fn(&LayeredConfig) -> Result<(), ConfigError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            services: services.into_iter().collect(),
            platform_sections,
            specs: specs.into_iter().map(|spec| (spec.key, spec)).collect(),
            secrets,
            check: Arc::new(check),
            defaults,
        }
    }

    /// An empty catalogue that accepts any configuration (operator commands, unit tests).
    pub fn permissive() -> Self {
        Self::new(
            Vec::new(),
            Vec::new(),
            Vec::new(),
            BTreeSet::new(),
            Value::Null,
            |_| Ok(()),
        )
    }

    /// Whether `key` holds a secret.
    pub fn is_secret(&self, key: &str) -> bool {
        self.secrets.contains(key)
    }

    /// Every secret key.
    pub fn secret_keys(&self) -> &BTreeSet<String> {
        &self.secrets
    }

    /// Checks central settings for `service` (`None`: the all-in-one process) in `profile`
    /// on top of the defaults, as a service would before applying them. Nothing is read from
    /// this host: secret references and `*_file` keys are not resolved here (the consuming
    /// service resolves them), only type-checked as text.
    pub fn check_central(
        &self,
        service: Option<&str>,
        profile: Profile,
        central: &BTreeMap<String, Value>,
    ) -> Result<(), ConfigError> {
        let central: BTreeMap<String, Value> = central
            .iter()
            .map(|(key, value)| {
                let value = match value {
                    Value::String(text) if is_secret_reference(text) => {
                        Value::String("[secret reference]".into())
                    }
                    other => other.clone(),
                };
                (key.clone(), value)
            })
            .collect();
        let config = ConfigLoader::offline(profile, self.defaults.clone())
            .with_central_layer("the central configuration", unflatten(&central))
            .load(service)?;
        self.check(&config)?;
        self.check_ranges(&config)
    }

    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.services.keys().map(String::as_str)
    }

    pub fn section_of(&self, service: &str) -> Option<&str> {
        self.services.get(service).map(String::as_str)
    }

    /// The service that owns a top-level section, if a service (not the platform) does.
    pub fn owner_of_section(&self, section: &str) -> Option<&str> {
        self.services
            .iter()
            .find(|(_, owned)| owned.as_str() == section)
            .map(|(service, _)| service.as_str())
    }

    pub fn is_platform_section(&self, section: &str) -> bool {
        self.platform_sections.iter().any(|s| s == section)
    }

    pub fn specs(&self) -> impl Iterator<Item = &SettingSpec> {
        self.specs.values()
    }

    pub fn spec(&self, key: &str) -> Option<&SettingSpec> {
        self.specs.get(key)
    }

    pub fn is_live(&self, key: &str) -> bool {
        self.specs.get(key).is_some_and(|spec| spec.live)
    }

    /// Types and unknown keys, as at start-up.
    pub fn check(&self, config: &LayeredConfig) -> Result<(), ConfigError> {
        (self.check)(config)
    }

    /// Ranges of the declared keys present in `config`.
    pub fn check_ranges(&self, config: &LayeredConfig) -> Result<(), ConfigError> {
        for spec in self.specs.values() {
            if let Some(value) = config.get(spec.key) {
                spec.kind
                    .check(value)
                    .map_err(|message| ConfigError::Invalid {
                        key: spec.key.to_string(),
                        origin: config
                            .origin_of(spec.key)
                            .map(ToString::to_string)
                            .unwrap_or_else(|| "default".into()),
                        message,
                    })?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integer_ranges_are_inclusive_and_reject_other_types() {
        let kind = SettingKind::Integer { min: 1, max: 10 };
        assert!(kind.check(&json!(1)).is_ok());
        assert!(kind.check(&json!(10)).is_ok());
        assert!(kind.check(&json!(0)).unwrap_err().contains("from 1 to 10"));
        assert!(kind.check(&json!(11)).is_err());
        assert!(kind.check(&json!("5")).is_err());
        assert!(kind.check(&json!(2.5)).is_err());
    }

    #[test]
    fn log_filters_are_parsed_as_tracing_filters() {
        assert!(SettingKind::LogFilter.check(&json!("debug")).is_ok());
        assert!(
            SettingKind::LogFilter
                .check(&json!("info,sqlx=warn"))
                .is_ok()
        );
        assert!(SettingKind::LogFilter.check(&json!("info,[[[")).is_err());
        assert!(SettingKind::LogFilter.check(&json!(3)).is_err());
    }

    #[test]
    fn one_of_lists_the_allowed_words() {
        let kind = SettingKind::OneOf {
            values: &["json", "pretty"],
        };
        assert!(kind.check(&json!("json")).is_ok());
        assert!(
            kind.check(&json!("xml"))
                .unwrap_err()
                .contains("json, pretty")
        );
    }
}
