//! `vivesphere config check`: the effective configuration as YAML, each value followed by a
//! comment saying where it came from, with every secret redacted.

use std::fmt::Write;

use serde_json::{Map, Value};

use super::LayeredConfig;

const REDACTED: &str = "[redacted]";

/// Key names that hold secrets even when written inline (which they should not be).
pub(crate) fn is_secret_name(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "_key",
        "credentials",
        "passphrase",
    ]
    .iter()
    .any(|suffix| key.ends_with(suffix))
        || key == "key"
}

/// Whether the last segment of a dotted key names a secret (`…password`, `…_key`, …).
pub fn is_secret_key(dotted: &str) -> bool {
    is_secret_name(dotted.rsplit('.').next().unwrap_or(dotted))
}

/// Hides the password in `scheme://user:password@host/...`.
fn redact_url_password(text: &str) -> Option<String> {
    let scheme_end = text.find("://")? + 3;
    let authority_end = text[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(text.len(), |i| scheme_end + i);
    let at = text[scheme_end..authority_end].rfind('@')? + scheme_end;
    let colon = text[scheme_end..at].find(':')? + scheme_end;
    Some(format!("{}{REDACTED}{}", &text[..colon + 1], &text[at..]))
}

impl LayeredConfig {
    /// The value as it may be shown to people.
    fn display_value(&self, path: &str, key: &str, value: &Value) -> Value {
        if value.is_null() {
            return Value::Null;
        }
        if self.secret_paths.contains(path) || is_secret_name(key) {
            return Value::from(REDACTED);
        }
        match value {
            Value::String(text) => redact_url_password(text)
                .map(Value::from)
                .unwrap_or_else(|| value.clone()),
            _ => value.clone(),
        }
    }

    /// Renders the whole effective configuration.
    pub fn render_with_origins(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# effective configuration of target `{}`, profile {}",
            self.target().unwrap_or("all"),
            self.profile().as_str()
        );
        let _ = writeln!(out, "# each value is followed by the layer it came from");
        self.render_object(&self.tree, "", 0, &mut out);
        out
    }

    fn render_object(
        &self,
        map: &Map<String, Value>,
        prefix: &str,
        depth: usize,
        out: &mut String,
    ) {
        let indent = "  ".repeat(depth);
        for (key, value) in map {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match value {
                Value::Object(child) if !child.is_empty() => {
                    let _ = writeln!(out, "{indent}{key}:");
                    self.render_object(child, &path, depth + 1, out);
                }
                _ => {
                    let shown = self.display_value(&path, key, value);
                    // JSON scalars and flow collections are valid YAML.
                    let origin = self
                        .origin_of(&path)
                        .map(ToString::to_string)
                        .unwrap_or_else(|| "default".into());
                    let _ = writeln!(out, "{indent}{key}: {shown}  # {origin}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_hidden_but_the_rest_stays() {
        assert_eq!(
            redact_url_password("postgres://app:pa55@db:5432/vs?sslmode=require").unwrap(),
            "postgres://app:[redacted]@db:5432/vs?sslmode=require"
        );
        assert!(redact_url_password("nats://nats:4222").is_none());
        assert!(redact_url_password("postgres://app@db/vs").is_none());
    }

    #[test]
    fn secret_names_are_recognised_without_catching_ttls() {
        assert!(is_secret_name("password"));
        assert!(is_secret_name("initial_admin_password"));
        assert!(is_secret_name("signing_key"));
        assert!(is_secret_name("refresh_token"));
        assert!(!is_secret_name("access_token_ttl"));
        assert!(!is_secret_name("path"));
    }
}
