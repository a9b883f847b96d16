//! Why configuration could not be loaded. Every variant names the file or variable and the
//! key, because an operator reading a crash-looping pod's log has nothing else to go on.

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {message}")]
    Read { file: String, message: String },
    #[error("{file}: invalid YAML: {message}")]
    Parse { file: String, message: String },
    #[error("unknown config key `{key}` (set in {origin}){hint}; check its spelling or remove it", hint = did_you_mean(.suggestion))]
    UnknownKey {
        key: String,
        origin: String,
        /// The known key it is closest to, if one is close.
        suggestion: Option<String>,
    },
    #[error("config key `{key}` (set in {origin}): {message}")]
    Invalid {
        key: String,
        origin: String,
        message: String,
    },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("ENV={0:?} is not a profile: use development, staging or production")]
    Profile(String),
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map(|key| format!("; did you mean `{key}`?"))
        .unwrap_or_default()
}
