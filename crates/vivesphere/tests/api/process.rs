//! The real binary as an operator runs it: SIGTERM, `config check`, `migrate`,
//! `--list-targets`, and the unknown-target error.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{client, repo_config_dir};

fn vivesphere(data_dir: &tempfile::TempDir) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vivesphere"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("VIVESPHERE_CONFIG_DIR", repo_config_dir())
        .env(
            "VIVESPHERE_DATABASE__PATH",
            data_dir.path().join("{service}.db"),
        )
        .env("VIVESPHERE_QUEUE__PATH", data_dir.path().join("queue.db"))
        .env(
            "VIVESPHERE_AUTHENTICATION__DEVELOPMENT_KEY_PATH",
            data_dir.path().join("authentication.key"),
        )
        .env(
            "VIVESPHERE_LOGGING__WEBHOOKS__DEVELOPMENT_KEY_PATH",
            data_dir.path().join("logging-webhooks.key"),
        )
        .env(
            "VIVESPHERE_SECURE_BOT_DATA__KEK_DIR",
            data_dir.path().join("kek"),
        )
        .env(
            "VIVESPHERE_TELEMETRY__SPILL_DIR",
            data_dir.path().join("spill"),
        )
        .env(
            "VIVESPHERE_AUTH__SERVICE_SECRETS_DIR",
            data_dir.path().join("service-clients"),
        )
        .env(
            "VIVESPHERE_CONFIG_CLIENT__CACHE_DIR",
            data_dir.path().join("config-cache"),
        );
    command
}

/// Sends SIGTERM, as Kubernetes does to stop a pod.
fn sigterm(child: &std::process::Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Kills the child if the test fails before it stops it, so no server outlives its test.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn sigterm_drains_and_exits_zero_and_logs_carry_request_ids_not_queries() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = KillOnDrop(
        vivesphere(&dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("VIVESPHERE_SERVER__SHUTDOWN_TIMEOUT", "5")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The "listening" log line carries the bound address.
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut initial_admin_notice = None;
    let address = loop {
        let line = lines
            .next()
            .expect("the app logs until it listens")
            .unwrap();
        // The one non-JSON line: the initial admin's one-time password.
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
            initial_admin_notice = Some(line);
            continue;
        };
        if event["message"] == "listening" {
            break event["address"].as_str().unwrap().to_string();
        }
    };
    let notice = initial_admin_notice.expect("the initial admin's password is printed once");
    assert!(notice.starts_with("Initial admin created"), "{notice}");
    // The printed password works, but only to change it.
    let printed = notice.split('"').nth(3).unwrap();
    let login = client()
        .post(format!("http://{address}/api/v1/auth/login"))
        .json(&serde_json::json!({"username": "admin", "password": printed}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), reqwest::StatusCode::FORBIDDEN);
    let body: serde_json::Value = login.json().await.unwrap();
    assert_eq!(body["error_code"], "PASSWORD_CHANGE_REQUIRED");
    let ready = client()
        .get(format!(
            "http://{address}/health/ready?token=query-secret-123"
        ))
        .header("x-request-id", "trace-from-the-edge")
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), reqwest::StatusCode::OK);

    sigterm(&child.0);
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = child.0.try_wait().unwrap() {
            break exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "not stopped within the drain timeout"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(exit.code(), Some(0));
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|line| line.contains("\"stopped\"")),
        "{rest:?}"
    );
}

/// `vivesphere config check --target <target>` with `env`, in a fresh directory; its output
/// (it must succeed).
fn config_check(target: &str, env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let output = vivesphere(&dir)
        .args(["config", "check", "--target", target])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn config_check_prints_origins_and_hides_secrets() {
    let text = config_check(
        "logging",
        &[(
            "VIVESPHERE_DATABASE__URL",
            "postgres://app:very-secret-pw@db:5432/vs",
        )],
    );
    assert!(
        text.contains("target `logging`, profile development"),
        "{text}"
    );
    assert!(!text.contains("very-secret-pw"), "{text}");
    assert!(text.contains("env VIVESPHERE_DATABASE__URL"), "{text}");
    // logging.yaml raises the body limit for log batches.
    let body_limit = text
        .lines()
        .find(|l| l.trim_start().starts_with("body_limit:"))
        .unwrap();
    assert!(
        body_limit.contains("5242880") && body_limit.contains("logging.yaml"),
        "{body_limit}"
    );
    assert!(
        text.contains("shutdown_timeout: 30  # ") && text.contains("global.yaml"),
        "{text}"
    );
}

/// For one target, `config check` shows that target's settings and the platform's — not
/// every service's — and the address it will listen on, where it would have shown `null`.
#[test]
fn config_check_shows_one_targets_own_settings_and_the_address_it_will_use() {
    let text = config_check("gateway", &[]);
    let sections: Vec<&str> = text
        .lines()
        .filter(|line| !line.starts_with([' ', '#']) && line.ends_with(':'))
        .collect();
    assert!(sections.contains(&"gateway:"), "{text}");
    assert!(sections.contains(&"server:"), "{text}");
    for other in [
        "bot_manager:",
        "authentication:",
        "logging:",
        "secure_bot_data:",
    ] {
        assert!(!sections.contains(&other), "{other} in {text}");
    }
    let listen = text
        .lines()
        .find(|l| l.trim_start().starts_with("listen:"))
        .unwrap();
    assert!(
        listen.contains("\"0.0.0.0:8000\"") && listen.contains("computed: one target"),
        "{listen}"
    );
    // Set, it is shown as set.
    let text = config_check(
        "gateway",
        &[("VIVESPHERE_SERVER__LISTEN", "127.0.0.1:9100")],
    );
    let listen = text
        .lines()
        .find(|l| l.trim_start().starts_with("listen:"))
        .unwrap();
    assert!(
        listen.contains("127.0.0.1:9100") && listen.contains("env VIVESPHERE_SERVER__LISTEN"),
        "{listen}"
    );
}

#[test]
fn config_check_redacts_every_declared_secret_whatever_its_name() {
    let kek = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let text = config_check(
        "secure-bot-data",
        &[
            ("VIVESPHERE_SECURE_BOT_DATA__KEKS", &format!("1:{kek}")),
            (
                "VIVESPHERE_QUEUE__URL",
                "nats://nats-user:nats-pa55@nats:4222",
            ),
        ],
    );
    assert!(!text.contains(kek), "{text}");
    assert!(text.contains("keks: \"[redacted]\""), "{text}");
    assert!(!text.contains("nats-pa55"), "{text}");
    assert!(
        text.contains("url: \"nats://[redacted]@nats:4222\""),
        "{text}"
    );
}

#[test]
fn config_check_fails_on_a_bad_key_with_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let output = vivesphere(&dir)
        .args(["config", "check"])
        .env("VIVESPHERE_TELEMETRY__LOG_LEVELS", "debug")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("telemetry.log_levels"), "{stderr}");
    assert!(
        stderr.contains("VIVESPHERE_TELEMETRY__LOG_LEVELS"),
        "{stderr}"
    );
    assert!(
        stderr.contains("did you mean `telemetry.log_level`?"),
        "{stderr}"
    );
}

/// Mistakes that used to pass silently: a variable with one underscore where a setting needs
/// two is named with the one meant, and a configuration directory that is not there stops
/// the process instead of a quiet start on the defaults.
#[test]
fn a_near_miss_variable_is_named_and_a_missing_config_dir_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = vivesphere(&dir)
        .args(["config", "check", "--target", "gateway"])
        .env("VIVESPHERE_SERVER_LISTEN", "0.0.0.0:9000")
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("VIVESPHERE_SERVER_LISTEN is not read")
            && stderr.contains("did you mean VIVESPHERE_SERVER__LISTEN?"),
        "{stderr}"
    );
    for args in [
        vec!["--config-dir", "/nonexistent/config", "config", "check"],
        vec![
            "--config-dir",
            "/nonexistent/config",
            "serve",
            "--listen",
            "127.0.0.1:0",
        ],
    ] {
        let output = vivesphere(&dir).args(&args).output().unwrap();
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("the configuration directory /nonexistent/config does not exist"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn unknown_target_exits_non_zero_listing_valid_targets() {
    let dir = tempfile::tempdir().unwrap();
    let output = vivesphere(&dir)
        .args(["serve", "--target", "kong"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown target \"kong\""), "{stderr}");
    assert!(stderr.contains("secure-bot-data"), "{stderr}");
}

#[test]
fn list_targets_prints_every_name() {
    let dir = tempfile::tempdir().unwrap();
    let output = vivesphere(&dir).arg("--list-targets").output().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let names: Vec<&str> = text.lines().collect();
    assert_eq!(
        names,
        [
            "all",
            "configuration",
            "authentication",
            "secure-bot-data",
            "logging",
            "bot-manager",
            "gateway",
            "console",
            "fake-x"
        ]
    );
}

#[test]
fn migrate_creates_each_services_database() {
    let dir = tempfile::tempdir().unwrap();
    let output = vivesphere(&dir).arg("migrate").output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    for file in [
        "authentication",
        "bot_manager",
        "configuration",
        "logging",
        "secure_bot_data",
    ] {
        assert!(dir.path().join(format!("{file}.db")).exists(), "{file}");
    }
    assert_eq!(text.lines().count(), 5, "{text}");
}

/// The command's stdout, after asserting it succeeded (its stderr otherwise).
fn succeeded(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `vivesphere backup` and `restore` as commands: the files, the manifest, what is kept
/// apart; a restore refuses a directory that is not empty and fills an empty one.
#[test]
fn backup_and_restore_commands_round_trip_a_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    succeeded(vivesphere(&dir).arg("migrate"));
    let backups = tempfile::tempdir().unwrap();
    let out = backups.path().join("b");
    let text = succeeded(vivesphere(&dir).args(["backup", "--out"]).arg(&out));
    assert!(text.contains("bot_manager: bot_manager.db"), "{text}");
    assert!(text.contains("keep apart"), "{text}");
    assert!(out.join("manifest.json").exists());
    // Into the same, non-empty directory: refused, nothing touched.
    let refused = vivesphere(&dir)
        .args(["restore", "--from"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("is not empty"), "{why}");
    let fresh = tempfile::tempdir().unwrap();
    succeeded(vivesphere(&fresh).args(["restore", "--from"]).arg(&out));
    for file in [
        "authentication",
        "bot_manager",
        "configuration",
        "logging",
        "secure_bot_data",
    ] {
        assert!(fresh.path().join(format!("{file}.db")).exists(), "{file}");
    }
}

#[test]
fn auth_rotate_keys_starts_a_new_signing_key() {
    let dir = tempfile::tempdir().unwrap();
    let first = vivesphere(&dir)
        .args(["auth", "rotate-keys"])
        .output()
        .unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let second = vivesphere(&dir)
        .args(["auth", "rotate-keys"])
        .output()
        .unwrap();
    let (a, b) = (
        String::from_utf8(first.stdout).unwrap(),
        String::from_utf8(second.stdout).unwrap(),
    );
    assert!(a.starts_with("new signing key "), "{a}");
    assert_ne!(a, b, "each rotation makes a new key");
}

/// A lost admin password is recovered at the machine: `auth reset-password` prints a
/// one-time password (the old one stops working), which must be changed before login; an
/// unknown user is an error naming them. The running server sees the change at once.
#[tokio::test]
async fn auth_reset_password_recovers_a_lost_admin_password() {
    let dir = tempfile::tempdir().unwrap();
    let forgotten = "forgotten-passphrase-of-the-operator-1";
    let mut child = KillOnDrop(
        vivesphere(&dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env(
                "VIVESPHERE_AUTHENTICATION__INITIAL_ADMIN_PASSWORD",
                forgotten,
            )
            .env("VIVESPHERE_SERVER__SHUTDOWN_TIMEOUT", "5")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (address_tx, address_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
                && event["message"] == "listening"
            {
                let _ = address_tx.send(event["address"].as_str().unwrap().to_string());
            }
        }
    });
    let address = address_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the app listens");
    let base = format!("http://{address}");
    let http = client();
    let login = |password: String| {
        http.post(format!("{base}/api/v1/auth/login"))
            .json(&serde_json::json!({"username": "admin", "password": password}))
            .send()
    };
    assert_eq!(
        login(forgotten.into()).await.unwrap().status(),
        reqwest::StatusCode::OK
    );

    let reset = vivesphere(&dir)
        .args(["auth", "reset-password", "--username", "admin"])
        .output()
        .unwrap();
    assert!(
        reset.status.success(),
        "{}",
        String::from_utf8_lossy(&reset.stderr)
    );
    let printed = String::from_utf8(reset.stdout).unwrap();
    let one_time = printed
        .strip_prefix("one-time password for \"admin\": ")
        .and_then(|rest| rest.lines().next())
        .unwrap_or_else(|| panic!("{printed}"))
        .to_string();
    assert_eq!(
        login(forgotten.into()).await.unwrap().status(),
        reqwest::StatusCode::UNAUTHORIZED
    );
    let must_change = login(one_time.clone()).await.unwrap();
    assert_eq!(must_change.status(), reqwest::StatusCode::FORBIDDEN);
    let renewed = "remembered-passphrase-of-the-operator-2";
    let changed = http
        .post(format!("{base}/api/v1/auth/password"))
        .json(&serde_json::json!({"username": "admin", "current_password": one_time, "new_password": renewed}))
        .send()
        .await
        .unwrap();
    assert!(
        changed.status().is_success(),
        "{}",
        changed.text().await.unwrap()
    );
    let renewed_login = login(renewed.into()).await.unwrap();
    assert_eq!(renewed_login.status(), reqwest::StatusCode::OK);
    let token = renewed_login.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    // The reset is audited as the operator's, through the queue into the Logging service.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let audited = loop {
        let events: serde_json::Value = http
            .get(format!(
                "{base}/api/v1/logs/events?category=user_activity&action=password.reset"
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(event) = events["items"].as_array().and_then(|items| items.first()) {
            break event.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no audit event: {events}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(audited.to_string().contains("operator:"), "{audited}");
    assert!(
        !audited.to_string().contains(&one_time),
        "the password is never logged"
    );

    let unknown = vivesphere(&dir)
        .args(["auth", "reset-password", "--username", "nobody"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no user \"nobody\""));
    sigterm(&child.0);
}

#[tokio::test]
async fn secret_values_never_reach_the_logs_even_at_debug_level() {
    const CANARY: &str = "CANARY-logs-4c8e-plaintext";
    let dir = tempfile::tempdir().unwrap();
    let mut child = KillOnDrop(
        vivesphere(&dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("VIVESPHERE_SERVER__SHUTDOWN_TIMEOUT", "5")
            .env("VIVESPHERE_TELEMETRY__LOG_LEVEL", "debug")
            .env(
                "VIVESPHERE_AUTHENTICATION__INITIAL_ADMIN_PASSWORD",
                crate::helpers::ADMIN_PASSWORD,
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Both streams are drained on threads so the child never blocks on a full pipe.
    let (address_tx, address_rx) = std::sync::mpsc::channel();
    let stdout = child.0.stdout.take().unwrap();
    let stdout_reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
                && event["message"] == "listening"
            {
                let _ = address_tx.send(event["address"].as_str().unwrap().to_string());
            }
            all.push(line);
        }
        all
    });
    let stderr = child.0.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let address = address_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the app listens");
    let base = format!("http://{address}");
    let http = client();
    let login: serde_json::Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"username": "admin", "password": crate::helpers::ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap();
    let stored = http
        .post(format!("{base}/api/v1/botdata/store"))
        .bearer_auth(token)
        .json(&serde_json::json!({"bot_id": "log-bot", "data": {"password": CANARY}}))
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status(), reqwest::StatusCode::CREATED);
    let revealed = http
        .post(format!(
            "{base}/api/v1/botdata/bots/log-bot/fields/password/reveal"
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(revealed.contains(CANARY));
    // Refused writes that carry the value do not echo it either.
    for body in [
        serde_json::json!({"bot_id": "log-bot", "data": {"Bad-Name": CANARY}}),
        serde_json::json!({"bot_id": "log bot", "data": {"password": CANARY}}),
        serde_json::json!({"bot_id": "log-bot", "data": {"password": CANARY}, "extra": CANARY}),
    ] {
        let refused = http
            .post(format!("{base}/api/v1/botdata/store"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), reqwest::StatusCode::BAD_REQUEST);
        assert!(!refused.text().await.unwrap().contains(CANARY), "{body}");
    }

    sigterm(&child.0);
    let stdout = stdout_reader.join().unwrap();
    let stderr = stderr_reader.join().unwrap();
    assert!(
        stdout.len() > 10,
        "debug logging produced lines: {stdout:?}"
    );
    for line in stdout.iter().chain(&stderr) {
        assert!(!line.contains(CANARY), "a secret reached the logs: {line}");
    }
}

/// The running binary's log filter follows `telemetry.log_level` from the central
/// configuration: request lines (info) stop once it is `warn`, without a restart.
#[tokio::test]
async fn a_central_log_level_change_applies_to_the_running_process() {
    let dir = tempfile::tempdir().unwrap();
    let password = "central-log-level-passphrase-1";
    let mut child = KillOnDrop(
        vivesphere(&dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env(
                "VIVESPHERE_AUTHENTICATION__INITIAL_ADMIN_PASSWORD",
                password,
            )
            .env("VIVESPHERE_SERVER__SHUTDOWN_TIMEOUT", "5")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (sender, lines) = std::sync::mpsc::channel::<String>();
    let stdout = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    let next_line = |seen: &mut Vec<String>| -> Option<String> {
        let line = lines.recv_timeout(Duration::from_secs(10)).ok()?;
        seen.push(line.clone());
        Some(line)
    };
    let address = loop {
        let line = next_line(&mut seen).expect("the app logs until it listens");
        if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
            && event["message"] == "listening"
        {
            break event["address"].as_str().unwrap().to_string();
        }
    };
    let base = format!("http://{address}");
    let http = client();
    let probe = |id: &'static str| {
        http.get(format!("{base}/api/v1/auth/.well-known/jwks.json"))
            .header("x-request-id", id)
            .send()
    };
    assert!(probe("probe-before").await.unwrap().status().is_success());
    while !seen.iter().any(|line| line.contains("probe-before")) {
        next_line(&mut seen).expect("an info line for each request");
    }

    let token: serde_json::Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"username": "admin", "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_string();
    let update = http
        .post(format!("{base}/api/v1/config/update"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"service": "global",
            "settings": {"telemetry.log_level": "warn,vivesphere=info"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(update.status(), reqwest::StatusCode::OK);
    let revision = update.json::<serde_json::Value>().await.unwrap()["revision"].clone();
    let started = Instant::now();
    loop {
        let health: serde_json::Value = http
            .get(format!("{base}/health"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if health["config"]["global"]["revision"] == revision {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{health}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(probe("probe-after").await.unwrap().status().is_success());

    sigterm(&child.0);
    // Everything up to "stopped" (still at info for the binary itself) has been written.
    while !seen.iter().any(|line| line.contains("\"stopped\"")) {
        next_line(&mut seen).expect("the process logs that it stopped");
    }
    assert!(
        !seen.iter().any(|line| line.contains("probe-after")),
        "a request line was logged after the level became warn"
    );
}

/// With the Configuration service reachable, `config check --target X` shows the central
/// values in effect and where they came from, read with the target's own client secret.
#[tokio::test]
async fn config_check_shows_the_central_layer_when_the_configuration_service_answers() {
    let app = crate::helpers::spawn_app().await;
    let admin = crate::auth_helpers::admin_token(&app).await;
    let written = crate::auth_helpers::send_json(
        &app,
        reqwest::Method::POST,
        "/api/v1/config/update",
        &admin,
        serde_json::json!({"service": "bot-manager",
            "settings": {"bot_manager.execution.max_attempts": 7}}),
    )
    .await;
    assert_eq!(written.status(), reqwest::StatusCode::OK);
    let base = app.url("");
    let secrets = app.data_dir.path().join("service-clients");
    let dir = tempfile::tempdir().unwrap();
    let mut command = vivesphere(&dir);
    command
        .args(["config", "check", "--target", "bot-manager"])
        .env("VIVESPHERE_AUTH__AUTHENTICATION_URL", &base)
        .env("VIVESPHERE_CONFIG_CLIENT__URL", &base)
        .env("VIVESPHERE_AUTH__SERVICE_SECRETS_DIR", &secrets);
    // Off the test's runtime, which serves the app the check reads from.
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(output.status.success());
    let (text, said) = (
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    );
    assert!(said.contains("central settings: revision"), "{said}");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("max_attempts:"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains("max_attempts: 7") && line.contains("configuration service revision"),
        "{line}"
    );
    // Unreachable: the check still answers, with the saved copy (none here) and a note.
    let dir = tempfile::tempdir().unwrap();
    let offline = vivesphere(&dir)
        .args(["config", "check", "--target", "bot-manager"])
        .env("VIVESPHERE_CONFIG_CLIENT__URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert!(offline.status.success());
    let said = String::from_utf8(offline.stderr).unwrap();
    assert!(said.contains("note: central settings not read"), "{said}");
    let text = String::from_utf8(offline.stdout).unwrap();
    assert!(!text.contains("max_attempts: 7"), "{text}");
}
