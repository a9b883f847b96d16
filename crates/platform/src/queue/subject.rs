//! Subjects and filters, with NATS's rules: dot-separated tokens, `*` matches exactly one
//! token and `>` (last token only) one or more.

use anyhow::bail;

fn valid_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A subject to publish on: at least two tokens (the first names its stream), no wildcards.
pub fn validate_subject(subject: &str) -> anyhow::Result<()> {
    if subject.split('.').count() >= 2 && subject.split('.').all(valid_token) {
        Ok(())
    } else {
        bail!(
            "invalid subject {subject:?}: use two or more dot-separated tokens of letters, digits, _ and -"
        )
    }
}

/// A filter: a literal first token (its stream), then tokens, `*` anywhere, `>` only last.
/// What every backend checks before it publishes: a concrete subject and a dedupe id.
pub fn validate_publish(subject: &str, dedupe_id: &str) -> anyhow::Result<()> {
    validate_subject(subject)?;
    anyhow::ensure!(!dedupe_id.is_empty(), "a dedupe id is required");
    Ok(())
}

pub fn validate_filter(filter: &str) -> anyhow::Result<()> {
    let tokens: Vec<&str> = filter.split('.').collect();
    if !valid_token(tokens[0]) {
        bail!(
            "invalid subject filter {filter:?}: the first token must be a stream name, not a wildcard"
        );
    }
    for (i, token) in tokens.iter().enumerate() {
        let ok = valid_token(token) || *token == "*" || (*token == ">" && i == tokens.len() - 1);
        if !ok {
            bail!("invalid subject filter {filter:?}");
        }
    }
    Ok(())
}

/// Whether `subject` matches `filter`.
pub fn matches(filter: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    for token in filter.split('.') {
        match (token, subject_tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (literal, Some(actual)) if literal == actual => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}

/// The first token of a subject or filter: the stream it lives in.
pub fn root(subject: &str) -> &str {
    subject.split('.').next().unwrap_or(subject)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_follow_nats_rules() {
        assert!(matches("bots.post.created", "bots.post.created"));
        assert!(matches("bots.*.created", "bots.post.created"));
        assert!(matches("bots.>", "bots.post.created"));
        assert!(!matches("bots.>", "bots"));
        assert!(!matches("bots.*", "bots.post.created"));
        assert!(!matches("bots.post", "bots.post.created"));
        assert!(!matches("bots.post.created", "bots.post"));
        assert!(!matches("logs.>", "bots.post"));
    }

    #[test]
    fn filters_and_subjects_are_validated() {
        assert!(validate_subject("logs.user_activity.auth").is_ok());
        assert!(validate_subject("logs.*").is_err());
        assert!(validate_subject("logs..x").is_err());
        assert!(validate_subject("").is_err());
        assert!(validate_subject("logs").is_err());
        assert!(validate_filter(">").is_err());
        assert!(validate_filter("*.x").is_err());
        assert!(validate_filter("logs.*.auth").is_ok());
        assert!(validate_filter("logs.>").is_ok());
        assert!(validate_filter("logs.>.x").is_err());
        assert!(validate_filter("lo gs").is_err());
    }
}
