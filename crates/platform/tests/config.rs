//! The configuration layers, their order, and the messages of bad configuration.

use std::path::Path;

use platform::config::{ConfigError, ConfigLoader, LayerKind, PlatformSettings};
use serde_json::json;

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Loads `dir` for `target` with exactly the variables `vars`.
fn load(
    dir: &tempfile::TempDir,
    vars: &[(&str, &str)],
    target: Option<&str>,
) -> Result<platform::config::LayeredConfig, ConfigError> {
    ConfigLoader::new(dir.path(), env(vars), defaults())?.load(target)
}

fn defaults() -> serde_json::Value {
    let mut value = PlatformSettings::defaults();
    value["authentication"] = json!({"access_token_ttl": 900});
    value
}

/// A config dir where every layer sets `server.shutdown_timeout` to its own number.
fn every_layer_sets_the_timeout() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "global.yaml",
        "server:\n  shutdown_timeout: 11\n",
    );
    write(
        dir.path(),
        "authentication.yaml",
        "server:\n  shutdown_timeout: 12\n",
    );
    write(
        dir.path(),
        "profiles/staging.yaml",
        "server:\n  shutdown_timeout: 13\n",
    );
    dir
}

fn timeout(config: &platform::config::LayeredConfig) -> u64 {
    PlatformSettings::from_config(config)
        .unwrap()
        .server
        .shutdown_timeout
}

#[test]
fn each_layer_overrides_the_one_below_and_the_environment_beats_all() {
    let dir = tempfile::tempdir().unwrap();
    let load = |vars: &[(&str, &str)], target: Option<&str>| {
        ConfigLoader::new(dir.path(), env(vars), defaults())
            .unwrap()
            .load(target)
            .unwrap()
    };
    // Defaults only.
    assert_eq!(timeout(&load(&[], Some("authentication"))), 30);

    write(
        dir.path(),
        "global.yaml",
        "server:\n  shutdown_timeout: 11\n",
    );
    assert_eq!(timeout(&load(&[], Some("authentication"))), 11);

    write(
        dir.path(),
        "authentication.yaml",
        "server:\n  shutdown_timeout: 12\n",
    );
    assert_eq!(timeout(&load(&[], Some("authentication"))), 12);
    // Another target does not read authentication.yaml, nor does the all-in-one process.
    assert_eq!(timeout(&load(&[], Some("logging"))), 11);
    assert_eq!(timeout(&load(&[], None)), 11);

    write(
        dir.path(),
        "profiles/staging.yaml",
        "server:\n  shutdown_timeout: 13\n",
    );
    assert_eq!(
        timeout(&load(&[], Some("authentication"))),
        12,
        "development is the default profile"
    );
    assert_eq!(
        timeout(&load(&[("ENV", "staging")], Some("authentication"))),
        13
    );

    let config = ConfigLoader::new(dir.path(), env(&[("ENV", "staging")]), defaults())
        .unwrap()
        .with_central_layer(
            "central configuration (revision 7)",
            json!({"server": {"shutdown_timeout": 14}})
                .as_object()
                .unwrap()
                .clone(),
        )
        .load(Some("authentication"))
        .unwrap();
    assert_eq!(timeout(&config), 14);
    assert_eq!(
        config.origin_of("server.shutdown_timeout").unwrap().layer,
        LayerKind::Central
    );

    let config = ConfigLoader::new(
        dir.path(),
        env(&[
            ("ENV", "staging"),
            ("VIVESPHERE_SERVER__SHUTDOWN_TIMEOUT", "15"),
        ]),
        defaults(),
    )
    .unwrap()
    .with_central_layer(
        "central",
        json!({"server": {"shutdown_timeout": 14}})
            .as_object()
            .unwrap()
            .clone(),
    )
    .load(Some("authentication"))
    .unwrap();
    assert_eq!(timeout(&config), 15);
    let origin = config.origin_of("server.shutdown_timeout").unwrap();
    assert_eq!(origin.layer, LayerKind::Env);
    assert_eq!(origin.source, "env VIVESPHERE_SERVER__SHUTDOWN_TIMEOUT");
}

#[test]
fn merging_keeps_sibling_keys_from_lower_layers() {
    let dir = every_layer_sets_the_timeout();
    write(
        dir.path(),
        "global.yaml",
        "server:\n  shutdown_timeout: 11\n  body_limit: 2048\n",
    );
    let config = load(&dir, &[], Some("authentication")).unwrap();
    let settings = PlatformSettings::from_config(&config).unwrap();
    assert_eq!(settings.server.shutdown_timeout, 12);
    assert_eq!(settings.server.body_limit, 2048);
    assert_eq!(settings.database.max_connections, 10, "untouched default");
    assert!(
        config
            .origin_of("server.body_limit")
            .unwrap()
            .source
            .ends_with("global.yaml")
    );
}

#[test]
fn environment_variables_reach_service_sections() {
    let dir = tempfile::tempdir().unwrap();
    let config = ConfigLoader::new(
        dir.path(),
        env(&[("VIVESPHERE_AUTHENTICATION__ACCESS_TOKEN_TTL", "600")]),
        defaults(),
    )
    .unwrap()
    .load(Some("authentication"))
    .unwrap();
    assert_eq!(
        config.get("authentication.access_token_ttl"),
        Some(&json!(600))
    );
}

#[test]
fn unknown_key_names_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "global.yaml", "server:\n  shutdown_timout: 5\n");
    let config = load(&dir, &[], None).unwrap();
    let err = PlatformSettings::from_config(&config).unwrap_err();
    assert!(matches!(err, ConfigError::UnknownKey { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("server.shutdown_timout"), "{message}");
    assert!(message.contains("global.yaml"), "{message}");
    assert!(
        message.contains("did you mean `server.shutdown_timeout`?"),
        "{message}"
    );
}

#[test]
fn a_misspelt_section_is_named_with_the_one_meant_and_a_stranger_is_not() {
    let known: Vec<String> = defaults().as_object().unwrap().keys().cloned().collect();
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    assert!(known.contains(&"database"));
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "global.yaml", "databse:\n  url: x\n");
    let config = load(&dir, &[], None).unwrap();
    let message = config.check_sections(&known).unwrap_err().to_string();
    assert!(message.contains("did you mean `database`?"), "{message}");
    write(dir.path(), "global.yaml", "kubernetes:\n  url: x\n");
    let config = load(&dir, &[], None).unwrap();
    let message = config.check_sections(&known).unwrap_err().to_string();
    assert!(!message.contains("did you mean"), "{message}");
}

#[test]
fn unknown_section_names_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "profiles/production.yaml",
        "databse:\n  path: x\n",
    );
    let config = load(&dir, &[("ENV", "production")], None).unwrap();
    let mut known = PlatformSettings::SECTIONS.to_vec();
    known.push("authentication");
    let message = config.check_sections(&known).unwrap_err().to_string();
    assert!(message.contains("`databse`"), "{message}");
    assert!(message.contains("profiles/production.yaml"), "{message}");
}

#[test]
fn wrong_type_names_file_key_and_expectation() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "logging.yaml", "server:\n  body_limit: lots\n");
    let config = load(&dir, &[], Some("logging")).unwrap();
    let message = PlatformSettings::from_config(&config)
        .unwrap_err()
        .to_string();
    assert!(message.contains("server.body_limit"), "{message}");
    assert!(message.contains("logging.yaml"), "{message}");
    assert!(message.contains("invalid type"), "{message}");
}

#[test]
fn wrong_type_from_the_environment_names_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let config = ConfigLoader::new(
        dir.path(),
        env(&[("VIVESPHERE_QUEUE__KIND", "kafka")]),
        defaults(),
    )
    .unwrap()
    .load(None)
    .unwrap();
    let message = PlatformSettings::from_config(&config)
        .unwrap_err()
        .to_string();
    assert!(message.contains("queue.kind"), "{message}");
    assert!(message.contains("VIVESPHERE_QUEUE__KIND"), "{message}");
}

#[test]
fn invalid_yaml_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "global.yaml", "server: [unclosed\n");
    let err = load(&dir, &[], None).unwrap_err();
    assert!(matches!(err, ConfigError::Parse { .. }));
    assert!(err.to_string().contains("global.yaml"));
}

#[test]
fn unknown_profile_is_refused() {
    let err = ConfigLoader::new("/nonexistent", env(&[("ENV", "prod")]), defaults()).unwrap_err();
    assert!(err.to_string().contains("ENV=\"prod\""), "{err}");
}

#[test]
fn placeholders_resolve_from_the_environment_and_are_secret() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "global.yaml",
        "database:\n  url: postgres://app:${DB_PASSWORD}@db:5432/vivesphere\n",
    );
    let config = load(&dir, &[("DB_PASSWORD", "pa55-w0rd")], None).unwrap();
    let settings = PlatformSettings::from_config(&config).unwrap();
    assert_eq!(
        settings.database.url.unwrap().expose(),
        "postgres://app:pa55-w0rd@db:5432/vivesphere"
    );
    let rendered = config.render_with_origins(&PlatformSettings::secret_keys());
    assert!(!rendered.contains("pa55-w0rd"), "{rendered}");
    assert!(rendered.contains("url: \"[redacted]\""), "{rendered}");
}

#[test]
fn unresolved_placeholder_stops_loading_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "global.yaml",
        "database:\n  url: ${NOT_SET_ANYWHERE}\n",
    );
    let message = load(&dir, &[], None).unwrap_err().to_string();
    assert!(message.contains("database.url"), "{message}");
    assert!(message.contains("NOT_SET_ANYWHERE"), "{message}");
    assert!(message.contains("global.yaml"), "{message}");
}

#[test]
fn file_keys_read_mounted_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("database-url");
    std::fs::write(&secret, "postgres://app:from-a-file@db/vs\n").unwrap();
    write(
        dir.path(),
        "global.yaml",
        &format!("database:\n  url_file: {}\n", secret.display()),
    );
    let config = load(&dir, &[], None).unwrap();
    let settings = PlatformSettings::from_config(&config).unwrap();
    assert_eq!(
        settings.database.url.unwrap().expose(),
        "postgres://app:from-a-file@db/vs",
        "trailing newline trimmed"
    );
    assert!(
        config.get("database.url_file").is_none(),
        "the _file key is consumed"
    );
    let rendered = config.render_with_origins(&PlatformSettings::secret_keys());
    assert!(!rendered.contains("from-a-file"), "{rendered}");
    assert!(
        rendered.contains(&secret.display().to_string()),
        "{rendered}"
    );
}

#[test]
fn missing_secret_file_stops_loading_naming_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "global.yaml",
        "database:\n  url_file: /no/such/secret\n",
    );
    let message = load(&dir, &[], None).unwrap_err().to_string();
    assert!(message.contains("database.url_file"), "{message}");
    assert!(message.contains("/no/such/secret"), "{message}");
}

#[test]
fn a_value_from_a_higher_layer_beats_a_file_reference_from_a_lower_one() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "global.yaml",
        "database:\n  url_file: /no/such/secret\n",
    );
    let config = ConfigLoader::new(
        dir.path(),
        env(&[("VIVESPHERE_DATABASE__URL", "postgres://env@db/vs")]),
        defaults(),
    )
    .unwrap()
    .load(None)
    .unwrap();
    let settings = PlatformSettings::from_config(&config).unwrap();
    assert_eq!(
        settings.database.url.unwrap().expose(),
        "postgres://env@db/vs"
    );
}

#[test]
fn rendering_shows_every_value_with_its_origin() {
    let dir = every_layer_sets_the_timeout();
    let config = ConfigLoader::new(
        dir.path(),
        env(&[
            ("ENV", "staging"),
            ("VIVESPHERE_DATABASE__URL", "postgres://u:topsecret@h/db"),
        ]),
        defaults(),
    )
    .unwrap()
    .load(Some("authentication"))
    .unwrap();
    let rendered = config.render_with_origins(&PlatformSettings::secret_keys());
    assert!(
        rendered.contains("target `authentication`, profile staging"),
        "{rendered}"
    );
    assert!(
        rendered.contains("shutdown_timeout: 13  # ") && rendered.contains("profiles/staging.yaml"),
        "{rendered}"
    );
    assert!(
        rendered.contains("body_limit: 1048576  # default"),
        "{rendered}"
    );
    assert!(
        rendered.contains("url: \"[redacted]\"  # env VIVESPHERE_DATABASE__URL"),
        "a declared secret is hidden whole: {rendered}"
    );
    assert!(!rendered.contains("topsecret"));
    // What is printed parses back as YAML.
    let reparsed: serde_json::Value = serde_norway::from_str(&rendered).unwrap();
    assert_eq!(reparsed["server"]["shutdown_timeout"], json!(13));
}
