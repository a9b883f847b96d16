//! The app refuses to start on bad configuration, naming the file (or variable) and key.

use vivesphere::app::App;

use crate::helpers::options;

async fn build_error(target: Option<&str>, env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    match App::build(options(&dir, target, env)).await {
        Ok(_) => panic!("the app should not build"),
        Err(err) => format!("{err:#}"),
    }
}

#[tokio::test]
async fn unknown_target_lists_the_valid_ones() {
    let message = build_error(Some("bot_manager"), &[]).await;
    assert!(
        message.contains("unknown target \"bot_manager\""),
        "{message}"
    );
    for name in [
        "all",
        "authentication",
        "bot-manager",
        "configuration",
        "logging",
        "secure-bot-data",
        "gateway",
    ] {
        assert!(message.contains(name), "{message}");
    }
}

#[tokio::test]
async fn a_misspelt_service_key_stops_start_up() {
    let message = build_error(
        None,
        &[("VIVESPHERE_AUTHENTICATION__ACCESS_TOKEN_TLL", "60")],
    )
    .await;
    assert!(
        message.contains("authentication.access_token_tll"),
        "{message}"
    );
    assert!(
        message.contains("VIVESPHERE_AUTHENTICATION__ACCESS_TOKEN_TLL"),
        "{message}"
    );
}

#[tokio::test]
async fn a_wrong_type_stops_start_up() {
    let message = build_error(
        Some("authentication"),
        &[("VIVESPHERE_DATABASE__MAX_CONNECTIONS", "many")],
    )
    .await;
    assert!(message.contains("database.max_connections"), "{message}");
}

#[tokio::test]
async fn an_unresolved_secret_reference_stops_start_up() {
    let message = build_error(
        None,
        &[(
            "VIVESPHERE_DATABASE__URL",
            "${VIVESPHERE_TEST_UNSET_SECRET}",
        )],
    )
    .await;
    assert!(message.contains("database.url"), "{message}");
    assert!(
        message.contains("VIVESPHERE_TEST_UNSET_SECRET"),
        "{message}"
    );
}

#[tokio::test]
async fn the_staging_profile_needs_its_mounted_database_secret() {
    let message = build_error(Some("authentication"), &[("ENV", "staging")]).await;
    assert!(message.contains("database.url_file"), "{message}");
    assert!(
        message.contains("/var/run/secrets/vivesphere/database/url"),
        "{message}"
    );
}

#[tokio::test]
async fn a_taken_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(&dir, None, &[]);
    options.listen = Some(taken.local_addr().unwrap().to_string());
    let message = match App::build(options).await {
        Ok(_) => panic!("the port is taken"),
        Err(err) => format!("{err:#}"),
    };
    assert!(message.contains("cannot listen on"), "{message}");
}
