//! Why configuration could not be loaded. Every variant names the file or variable and the
//! key, because an operator reading a crash-looping pod's log has nothing else to go on.

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {message}")]
    Read { file: String, message: String },
    #[error("{file}: invalid YAML: {message}")]
    Parse { file: String, message: String },
    #[error("unknown config key `{key}` (set in {origin}); check its spelling or remove it")]
    UnknownKey { key: String, origin: String },
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
