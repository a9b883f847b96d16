//! `vivesphere config check`: the effective configuration as YAML, each value followed by a
//! comment saying where it came from, with every secret redacted: every declared secret
//! (see [`super::secret::secret_keys_of`]), every value that came from a secret source
//! (`${VAR}`, `*_file`), and the credentials of any URL.

use std::collections::BTreeSet;
use std::fmt::Write;

use serde_json::{Map, Value};

use super::LayeredConfig;
use super::layered::dotted_key;
use super::secret::{REDACTED, redact_url_credentials};

impl LayeredConfig {
    /// The value as it may be shown to people.
    fn display_value(&self, path: &str, value: &Value, secrets: &BTreeSet<String>) -> Value {
        if value.is_null() {
            return Value::Null;
        }
        if self.secret_paths.contains(path) || secrets.contains(path) {
            return Value::from(REDACTED);
        }
        match value {
            Value::String(text) => Value::from(redact_url_credentials(text)),
            _ => value.clone(),
        }
    }

    /// Renders only the top-level `sections` named (a target's own and the platform's).
    pub fn render_sections_with_origins(
        &self,
        sections: &[&str],
        secrets: &BTreeSet<String>,
    ) -> String {
        let mut shown = self.clone();
        shown.tree.retain(|key, _| sections.contains(&key.as_str()));
        shown.render_with_origins(secrets)
    }

    /// Renders the whole effective configuration; `secrets` are the declared secret keys.
    pub fn render_with_origins(&self, secrets: &BTreeSet<String>) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# effective configuration of target `{}`, profile {}",
            self.target().unwrap_or("all"),
            self.profile().as_str()
        );
        let _ = writeln!(out, "# each value is followed by the layer it came from");
        self.render_object(&self.tree, "", 0, secrets, &mut out);
        out
    }

    fn render_object(
        &self,
        map: &Map<String, Value>,
        prefix: &str,
        depth: usize,
        secrets: &BTreeSet<String>,
        out: &mut String,
    ) {
        let indent = "  ".repeat(depth);
        for (key, value) in map {
            let path = dotted_key(prefix, key);
            match value {
                Value::Object(child) if !child.is_empty() => {
                    let _ = writeln!(out, "{indent}{key}:");
                    self.render_object(child, &path, depth + 1, secrets, out);
                }
                _ => {
                    let shown = self.display_value(&path, value, secrets);
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
    fn declared_secrets_are_redacted_whatever_their_name() {
        let config = LayeredConfig {
            tree: serde_json::json!({"secure_bot_data": {"keks": "1:a2V5", "kek_dir": "/k"},
                "bot_manager": {"x_api": {"base_url": "https://u:pw@api.example"}}})
            .as_object()
            .unwrap()
            .clone(),
            ..LayeredConfig::empty(super::super::Profile::Development, None)
        };
        let secrets = BTreeSet::from(["secure_bot_data.keks".to_string()]);
        let rendered = config.render_with_origins(&secrets);
        assert!(rendered.contains("keks: \"[redacted]\""), "{rendered}");
        assert!(!rendered.contains("a2V5"), "{rendered}");
        assert!(rendered.contains("kek_dir: \"/k\""), "{rendered}");
        assert!(
            rendered.contains("base_url: \"https://[redacted]@api.example\""),
            "{rendered}"
        );
    }
}
