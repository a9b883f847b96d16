//! Settings as this service keeps them: dotted keys per scope, the diff between two
//! snapshots, and the rules a change must pass before it becomes a release.

use std::collections::BTreeMap;

use platform::config::central::{GLOBAL_SCOPE, flatten};
use platform::config::{
    BOOTSTRAP_SECTIONS, Catalog, ConfigError, Profile, is_secret_reference, url_has_credentials,
};
use platform::http::error::{ApiError, ErrorCode};
use serde::Serialize;
use serde_json::{Value, json};

use crate::Settings;

/// One scope's settings: dotted key → value.
pub type Snapshot = BTreeMap<String, Value>;

/// What changed between two snapshots.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Diff {
    #[schema(value_type = Object)]
    pub added: BTreeMap<String, Value>,
    /// key → `{"from": old, "to": new}`.
    #[schema(value_type = Object)]
    pub changed: BTreeMap<String, Value>,
    #[schema(value_type = Object)]
    pub removed: BTreeMap<String, Value>,
}

impl Diff {
    pub fn between(old: &Snapshot, new: &Snapshot) -> Self {
        let mut diff = Self::default();
        for (key, value) in new {
            match old.get(key) {
                None => {
                    diff.added.insert(key.clone(), value.clone());
                }
                Some(before) if before != value => {
                    diff.changed
                        .insert(key.clone(), json!({"from": before, "to": value}));
                }
                Some(_) => {}
            }
        }
        for (key, value) in old {
            if !new.contains_key(key) {
                diff.removed.insert(key.clone(), value.clone());
            }
        }
        diff
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }

    /// Every key the diff touches.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .added
            .keys()
            .chain(self.changed.keys())
            .chain(self.removed.keys())
            .cloned()
            .collect();
        keys.sort();
        keys
    }
}

/// A scope name: `global` or a service the catalogue knows.
pub fn check_scope(catalog: &Catalog, scope: &str) -> bool {
    scope == GLOBAL_SCOPE || catalog.section_of(scope).is_some()
}

pub fn parse_profile(value: Option<&str>, default: Profile) -> Result<Profile, ApiError> {
    match value {
        None | Some("") => Ok(default),
        Some(text) => Profile::parse(text).map_err(|_| {
            ApiError::invalid_data("profile: one of development, staging, production")
                .with_field("field", "profile")
        }),
    }
}

/// The settings of an update as dotted keys (nested objects are flattened; `null` removes a
/// key). A malformed body is 400.
pub fn normalize_update(settings: &Value) -> Result<BTreeMap<String, Value>, ApiError> {
    let Some(object) = settings.as_object() else {
        return Err(
            ApiError::invalid_data("settings: an object of setting keys and values")
                .with_field("field", "settings"),
        );
    };
    if object.is_empty() {
        return Err(ApiError::invalid_data("settings: at least one setting")
            .with_field("field", "settings"));
    }
    let mut out = BTreeMap::new();
    for (key, value) in flatten(object) {
        check_key_syntax(&key)?;
        out.insert(key, value);
    }
    Ok(out)
}

pub fn check_key_syntax(key: &str) -> Result<(), ApiError> {
    let valid = key.len() <= 200
        && key.contains('.')
        && key.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        });
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid_data(format!(
            "settings: {key:?} is not a setting key such as `telemetry.log_level` (lowercase words joined by dots)"
        ))
        .with_field("key", key))
    }
}

/// 422 naming the key.
pub fn invalid_setting(key: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        ErrorCode::ValidationFailed,
        format!("setting `{key}`: {message}"),
    )
    .with_field("key", key)
}

/// Rules each written key and value must pass, before the whole snapshot is type-checked.
pub fn check_entry(
    catalog: &Catalog,
    settings: &Settings,
    scope: &str,
    key: &str,
    value: &Value,
) -> Result<(), ApiError> {
    let section = key.split('.').next().unwrap_or(key);
    if BOOTSTRAP_SECTIONS.contains(&section) {
        return Err(invalid_setting(
            key,
            format!(
                "`{section}` says how a process reaches its storage, queue and this service; set it in files or the environment"
            ),
        ));
    }
    if scope != GLOBAL_SCOPE
        && let Some(owner) = catalog.owner_of_section(section)
        && owner != scope
    {
        return Err(invalid_setting(
            key,
            format!("belongs to the {owner} service; set it in that scope or in global"),
        ));
    }
    if !catalog.is_platform_section(section) && catalog.owner_of_section(section).is_none() {
        return Err(invalid_setting(
            key,
            format!("`{section}` is not a config section"),
        ));
    }
    let bytes = serde_json::to_vec(value).map(|v| v.len()).unwrap_or(0);
    if bytes > settings.max_value_bytes {
        return Err(invalid_setting(
            key,
            format!(
                "the value is {bytes} bytes; at most {} are allowed",
                settings.max_value_bytes
            ),
        ));
    }
    if key.ends_with(FILE_SUFFIX) {
        return Err(invalid_setting(
            key,
            "a `*_file` key names a file on the host that runs a service, which is part of its deployment: set it in files or the environment; centrally, refer to a secret as ${secret:NAME}",
        ));
    }
    check_no_secret(catalog.is_secret(key), key, value)
}

/// The suffix of keys whose value is read from a file (`encryption_key_file`).
const FILE_SUFFIX: &str = "_file";

const REFERENCE_HINT: &str = "secrets are not stored in the central configuration; refer to one as ${secret:NAME}, which the service resolves from its environment or mounted secrets";

/// Secrets are never stored here: a declared secret (`secret`) takes only a
/// `${secret:NAME}` reference, no value may carry another placeholder, and no value may be
/// a URL with credentials, whatever its key.
fn check_no_secret(secret: bool, key: &str, value: &Value) -> Result<(), ApiError> {
    match value {
        Value::String(text) if is_secret_reference(text) => Ok(()),
        _ if secret => Err(invalid_setting(
            key,
            format!("this setting is a secret; {REFERENCE_HINT}"),
        )),
        Value::String(text) if text.contains("${") => Err(invalid_setting(key, REFERENCE_HINT)),
        Value::String(text) if url_has_credentials(text) => Err(invalid_setting(
            key,
            format!("a URL with credentials is a secret; {REFERENCE_HINT}"),
        )),
        Value::Array(items) => items
            .iter()
            .try_for_each(|item| check_no_secret(false, key, item)),
        Value::Object(map) => map
            .values()
            .try_for_each(|item| check_no_secret(false, key, item)),
        _ => Ok(()),
    }
}

/// A [`ConfigError`] from the typed check as a 422 naming the key.
pub fn config_error_to_api(err: ConfigError) -> ApiError {
    match err {
        ConfigError::UnknownKey {
            key, suggestion, ..
        } => match suggestion {
            Some(near) => invalid_setting(
                &key,
                format!("no service has this setting; did you mean `{near}`?"),
            ),
            None => invalid_setting(&key, "no service has this setting"),
        },
        ConfigError::Invalid { key, message, .. } => invalid_setting(&key, message),
        other => ApiError::new(ErrorCode::ValidationFailed, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_reports_added_changed_and_removed_keys() {
        let old: Snapshot = [("a.x", json!(1)), ("a.y", json!(2))]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let new: Snapshot = [("a.x", json!(5)), ("a.z", json!(true))]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let diff = Diff::between(&old, &new);
        assert_eq!(diff.added["a.z"], json!(true));
        assert_eq!(diff.changed["a.x"], json!({"from": 1, "to": 5}));
        assert_eq!(diff.removed["a.y"], json!(2));
        assert_eq!(diff.keys(), vec!["a.x", "a.y", "a.z"]);
        assert!(Diff::between(&old, &old).is_empty());
    }

    #[test]
    fn updates_flatten_nested_objects_and_reject_bad_keys() {
        let flat = normalize_update(
            &json!({"bot_manager": {"grace_seconds": 60}, "telemetry.log_level": "debug"}),
        )
        .unwrap();
        assert_eq!(flat["bot_manager.grace_seconds"], json!(60));
        assert_eq!(flat["telemetry.log_level"], json!("debug"));
        assert!(normalize_update(&json!({"Telemetry.Log": 1})).is_err());
        assert!(normalize_update(&json!({"nodot": 1})).is_err());
        assert!(normalize_update(&json!({})).is_err());
        assert!(normalize_update(&json!([1])).is_err());
    }

    #[test]
    fn secrets_must_be_references() {
        // A declared secret takes a reference and nothing else, whatever its name.
        assert!(check_no_secret(true, "x.keks", &json!("1:a2V5")).is_err());
        assert!(check_no_secret(true, "x.keks", &json!(["1:a2V5"])).is_err());
        assert!(check_no_secret(true, "x.keks", &json!("${secret:KEKS}")).is_ok());
        // Any other key: no placeholders, and no URL with credentials.
        assert!(check_no_secret(false, "x.url", &json!("postgres://${DB_PASS}@db")).is_err());
        assert!(check_no_secret(false, "x.url", &json!("https://u:p@host/")).is_err());
        assert!(check_no_secret(false, "x.list", &json!(["nats://tok@nats"])).is_err());
        assert!(check_no_secret(false, "x.url", &json!("https://host/a@b")).is_ok());
        assert!(check_no_secret(false, "x.level", &json!("debug")).is_ok());
    }
}
