//! The service's domain words, parsed at the edge: bot ids, field names, secret values and
//! the masked form of a value.

use platform::ApiError;
use zeroize::Zeroizing;

/// A bot id: 1–64 of letters, digits, `-` and `_` (the Bot Manager's UUIDv7 ids fit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotId(String);

impl BotId {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let ok = (1..=64).contains(&raw.len())
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
        if ok {
            Ok(Self(raw.to_string()))
        } else {
            Err(ApiError::invalid_data(
                "bot_id: 1 to 64 letters, digits, '-' or '_'",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A secret field name: 1–64 of lowercase letters, digits and `_`, starting with a letter.
/// The usual ones are `email`, `handle`, `password`, `api_key`, `api_secret`,
/// `access_token`, `access_token_secret`, `bearer_token`, `oauth_access_token` and
/// `oauth_refresh_token`; any other name is a custom field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldName(String);

impl FieldName {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let mut chars = raw.chars();
        let ok = (1..=64).contains(&raw.len())
            && chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if ok {
            Ok(Self(raw.to_string()))
        } else {
            Err(ApiError::invalid_data(format!(
                "field name {:?}: 1 to 64 lowercase letters, digits or '_', starting with a letter",
                raw.chars().take(80).collect::<String>()
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A secret value: a non-empty string of at most `max_bytes`, wiped when dropped.
pub struct SecretValue(Zeroizing<String>);

impl SecretValue {
    /// Takes the value out of a JSON value, which is wiped either way.
    pub fn parse(
        field: &FieldName,
        value: serde_json::Value,
        max_bytes: usize,
    ) -> Result<Self, ApiError> {
        let serde_json::Value::String(text) = value else {
            return Err(ApiError::invalid_data(format!(
                "data.{}: a secret value is a string",
                field.as_str()
            )));
        };
        let text = Zeroizing::new(text);
        if text.is_empty() || text.len() > max_bytes {
            return Err(ApiError::invalid_data(format!(
                "data.{}: 1 to {max_bytes} bytes",
                field.as_str()
            )));
        }
        Ok(Self(text))
    }

    pub fn from_plaintext(bytes: Zeroizing<Vec<u8>>) -> anyhow::Result<Self> {
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| anyhow::anyhow!("a stored value is not UTF-8"))?;
        Ok(Self(Zeroizing::new(text)))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `••••` and the last four characters for values of 12 characters or more; just `••••`
    /// for shorter ones, where four characters would give away too much.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() >= 12 {
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("••••{tail}")
    } else {
        "••••".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bot_ids_are_short_and_url_safe() {
        assert!(BotId::parse("0193a0c4-7b7e-7c4e-9a51-1d2e3f405060").is_ok());
        assert!(BotId::parse("bot_1").is_ok());
        for bad in ["", "a/b", "a b", "a\0b", &"x".repeat(65), "é"] {
            assert!(BotId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn field_names_are_lowercase_identifiers() {
        let names = [
            "email",
            "handle",
            "password",
            "api_key",
            "oauth_refresh_token",
            "custom_2fa_seed",
        ];
        for name in names {
            assert!(FieldName::parse(name).is_ok(), "{name}");
        }
        for bad in ["", "Password", "1pass", "pass-word", "a\0", &"a".repeat(65)] {
            assert!(FieldName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn values_are_non_empty_strings_within_the_limit() {
        let field = FieldName::parse("password").unwrap();
        assert!(SecretValue::parse(&field, "x".into(), 4).is_ok());
        assert!(SecretValue::parse(&field, "".into(), 4).is_err());
        assert!(SecretValue::parse(&field, "xxxxx".into(), 4).is_err());
        assert!(SecretValue::parse(&field, 5.into(), 4).is_err());
        assert!(SecretValue::parse(&field, serde_json::json!({"a": "b"}), 4).is_err());
    }

    #[test]
    fn masks_show_at_most_the_last_four_characters_of_long_values() {
        assert_eq!(mask("0123456789abcdef"), "••••cdef");
        assert_eq!(mask("short"), "••••");
        assert_eq!(mask("12345678901é"), "••••901é");
    }
}
