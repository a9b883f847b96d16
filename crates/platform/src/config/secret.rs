//! A configuration value that must never be printed: database passwords, key material, tokens.
//!
//! Being a secret is a declared property of a setting: its field has the type [`Secret`].
//! [`secret_keys_of`] reads that declaration off a settings type, so the catalogue, the
//! Configuration service (which takes only `${secret:NAME}` references for them) and
//! `vivesphere config check` (which redacts them) all follow the types, not key names.

use std::collections::BTreeSet;

use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// How a [`Secret`] serializes, and how redacted values are shown.
pub const REDACTED: &str = "[redacted]";

/// A secret string from configuration. `Debug` and `Serialize` print `[redacted]`; the
/// memory is zeroized when the value is dropped (by `secrecy`).
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    /// The plaintext, for the one place that needs it (a connection, a key derivation).
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

/// The dotted keys (`<section>.<field>…`; no prefix when `section` is empty) of the settings
/// type `S` that are secrets, found by
/// giving each leaf of its defaults a probe text and seeing which leaves serialize back as
/// [`REDACTED`]: exactly the fields of type `Secret` or `Option<Secret>`. (A secret inside a
/// list, or inside an optional sub-section that defaults to none, is not found; settings
/// keep secrets as plain fields.)
pub fn secret_keys_of<S: Default + Serialize + DeserializeOwned>(
    section: &str,
) -> BTreeSet<String> {
    let defaults = serde_json::to_value(S::default()).expect("settings defaults serialize");
    let mut keys = BTreeSet::new();
    let mut leaves = Vec::new();
    collect_leaves(&defaults, &mut Vec::new(), &mut leaves);
    for path in leaves {
        let mut probe = defaults.clone();
        *leaf_mut(&mut probe, &path) = Value::from("vivesphere-secret-probe");
        let Ok(parsed) = serde_json::from_value::<S>(probe) else {
            continue;
        };
        let Ok(back) = serde_json::to_value(parsed) else {
            continue;
        };
        if leaf(&back, &path).and_then(Value::as_str) == Some(REDACTED) {
            let path = path.join(".");
            keys.insert(if section.is_empty() {
                path
            } else {
                format!("{section}.{path}")
            });
        }
    }
    keys
}

/// Paths of the leaves a text could go in: nulls and strings, not inside lists.
fn collect_leaves(value: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                path.push(key.clone());
                collect_leaves(child, path, out);
                path.pop();
            }
        }
        Value::Null | Value::String(_) if !path.is_empty() => out.push(path.clone()),
        _ => {}
    }
}

fn leaf<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

fn leaf_mut<'a>(value: &'a mut Value, path: &[String]) -> &'a mut Value {
    path.iter().fold(value, |v, key| &mut v[key.as_str()])
}

/// `text` with the user-info of a URL (`scheme://user:password@host…` or a token in
/// `scheme://token@host…`) replaced by [`REDACTED`]; other text unchanged. For messages and
/// displays that name a URL which may carry credentials.
pub fn redact_url_credentials(text: &str) -> String {
    let Some(scheme_end) = text.find("://").map(|i| i + 3) else {
        return text.to_string();
    };
    let authority_end = text[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(text.len(), |i| scheme_end + i);
    match text[scheme_end..authority_end].rfind('@') {
        Some(at) => format!(
            "{}{REDACTED}{}",
            &text[..scheme_end],
            &text[scheme_end + at..]
        ),
        None => text.to_string(),
    }
}

/// Whether `text` is a URL that carries credentials (a password, or user-info that may be a
/// token) — a secret however its key is named.
pub fn url_has_credentials(text: &str) -> bool {
    redact_url_credentials(text) != text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default, Serialize, Deserialize)]
    #[serde(default)]
    struct Probed {
        name: String,
        token: Option<Secret>,
        count: u32,
        nested: Nested,
        list: Vec<String>,
    }

    #[derive(Default, Serialize, Deserialize)]
    #[serde(default)]
    struct Nested {
        key: Option<Secret>,
        url: Option<String>,
    }

    #[test]
    fn secret_keys_are_the_fields_typed_secret() {
        let keys = secret_keys_of::<Probed>("sec");
        assert_eq!(
            keys.into_iter().collect::<Vec<_>>(),
            vec!["sec.nested.key".to_string(), "sec.token".to_string()]
        );
    }

    #[test]
    fn url_credentials_are_found_and_hidden() {
        assert_eq!(
            redact_url_credentials("postgres://app:pa55@db:5432/vs?sslmode=require"),
            "postgres://[redacted]@db:5432/vs?sslmode=require"
        );
        assert_eq!(
            redact_url_credentials("nats://s3cr3t-token@nats:4222"),
            "nats://[redacted]@nats:4222"
        );
        assert_eq!(
            redact_url_credentials("nats://nats:4222"),
            "nats://nats:4222"
        );
        assert_eq!(
            redact_url_credentials("https://x.example/a@b"),
            "https://x.example/a@b",
            "an @ in the path is not user-info"
        );
        assert!(url_has_credentials("https://u:p@h"));
        assert!(!url_has_credentials("plain text with @ sign"));
    }

    #[test]
    fn debug_and_serialize_never_show_the_value() {
        let secret = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{secret:?}"), "Secret([redacted])");
        assert_eq!(
            serde_json::to_string(&secret).unwrap(),
            "\"[redacted]\"".to_string()
        );
        assert_eq!(secret.expose(), "hunter2-very-secret");
    }
}
