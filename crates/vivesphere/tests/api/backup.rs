//! The backup drill (issue 24), on whichever backend the suite runs (SQLite with the
//! embedded queue, or PostgreSQL with `VIVESPHERE_TEST_APP_DATABASE=postgres`): a populated
//! system is backed up while requests keep flowing, wiped, and restored into a fresh one;
//! everything is there, credentials reveal with the KEK (the bot publishes), a post
//! scheduled before the backup is published exactly once after the restore, and one that
//! went out between the backup and the loss is found on X instead of sent again. A restore
//! refuses a non-empty place, a damaged file and a database newer than the binary; without
//! its KEK Secure Bot Data stays sealed and names the version it needs.

use std::path::Path;
use std::time::Duration;

use platform::testing::TestPostgres;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vivesphere::backup;

use crate::bots_helpers::{BotEnv, fast_env, spawn_bots};
use crate::helpers::{options, spawn_in};

/// The key material a backup leaves out, as the test app lays it out in its data directory.
const KEYS: [&str; 4] = [
    "kek",
    "authentication.key",
    "logging-webhooks.key",
    "service-clients",
];

fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else if from.exists() {
        std::fs::copy(from, to).unwrap();
    }
}

/// Options for a system whose data is in `dir` (and on `postgres_url`, if any).
fn options_for(dir: &tempfile::TempDir, postgres_url: Option<&str>) -> vivesphere::app::AppOptions {
    let env: Vec<(&str, &str)> = postgres_url
        .map(|url| vec![("VIVESPHERE_DATABASE__URL", url)])
        .unwrap_or_default();
    options(dir, None, &env)
}

const LONG_TOKENS: (&str, &str) = ("VIVESPHERE_AUTHENTICATION__ACCESS_TOKEN_TTL", "7200");

async fn submit_debug(env: &BotEnv, message: &str) -> StatusCode {
    let ts = env.app.clock.now_millis();
    env.send(
        Method::POST,
        "/api/v1/logs/submit",
        &env.admin,
        json!({"log_type": "debug", "log_data": {"timestamp": ts, "message": message, "source": "drill"}}),
    )
    .await
    .status()
}

async fn debug_messages(env: &BotEnv) -> Vec<String> {
    let page: Value = env
        .get("/api/v1/logs/events?category=debug&limit=500", &env.admin)
        .await
        .json()
        .await
        .unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["message"].as_str().map(String::from))
        .collect()
}

/// A fresh empty place for a restore: a directory, and an empty database on PostgreSQL.
async fn empty_place(on_postgres: bool) -> (tempfile::TempDir, Option<TestPostgres>) {
    let postgres = if on_postgres {
        Some(
            TestPostgres::create()
                .await
                .expect("a PostgreSQL test database"),
        )
    } else {
        None
    };
    (tempfile::tempdir().unwrap(), postgres)
}

#[tokio::test]
async fn a_backup_taken_under_load_restores_everything_and_posts_once() {
    // Tokens outlive the test's clock moves, so the revocation state is what decides.
    let mut env = spawn_bots(Default::default(), &[LONG_TOKENS]).await;
    let on_postgres = env.app.postgres_url.is_some();
    let alice = env.team_manager("alice", "blue").await;
    let (bot_id, _) = env.bot(&alice, "drillbot").await;
    env.publish_now(&alice, &bot_id, "published before the backup")
        .await;
    let run_at = env.in_ms(3_600_000);
    let scheduled = env
        .post(
            &alice,
            &bot_id,
            json!({"text": "scheduled before the backup", "run_at": run_at}),
        )
        .await;
    let scheduled_id = scheduled["post_id"].as_str().unwrap().to_string();
    // Due after the backup, before the loss: it goes out then, and must not go again.
    let soon = env
        .post(
            &alice,
            &bot_id,
            json!({"text": "published after the backup", "run_at": env.in_ms(1_800_000)}),
        )
        .await;
    let soon_id = soon["post_id"].as_str().unwrap().to_string();
    let written: Value = env
        .send(
            Method::POST,
            "/api/v1/config/update",
            &env.admin,
            json!({"service": "bot-manager", "settings": {"bot_manager.grace_seconds": 7200}}),
        )
        .await
        .json()
        .await
        .unwrap();
    let revision = written["revision"].as_i64().expect("a revision");
    assert_eq!(
        submit_debug(&env, "before the backup").await,
        StatusCode::CREATED
    );

    // The backup, while log events keep coming in.
    let backups = tempfile::tempdir().unwrap();
    let out = backups.path().join("backup");
    let source = options_for(&env.app.data_dir, env.app.postgres_url.as_deref());
    let (manifest, during) = tokio::join!(backup::backup(&source, &out, None), async {
        let mut accepted = 0;
        for i in 0..20 {
            if submit_debug(&env, &format!("during {i}")).await == StatusCode::CREATED {
                accepted += 1;
            }
        }
        accepted
    });
    let manifest = manifest.expect("the backup is taken");
    assert_eq!(during, 20);
    let services: Vec<&str> = manifest.files.iter().map(|f| f.service.as_str()).collect();
    for service in [
        "authentication",
        "bot_manager",
        "configuration",
        "logging",
        "secure_bot_data",
    ] {
        assert!(services.contains(&service), "{service} in {services:?}");
    }
    assert_eq!(services.contains(&"queue"), !on_postgres);
    assert!(
        manifest
            .files
            .iter()
            .all(|f| f.migration_level >= 1 || f.service == "queue")
    );
    // No key material in it.
    for entry in std::fs::read_dir(&out).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        assert!(
            name == backup::MANIFEST || name.ends_with(".db") || name.ends_with(".pgdump"),
            "{name}"
        );
    }
    let keys = tempfile::tempdir().unwrap();
    for key in KEYS {
        copy_tree(&env.app.data_dir.path().join(key), &keys.path().join(key));
    }
    let token_before = env.admin.clone();
    // A logout after the backup: its revocation is not in the backup.
    let revoked_later = env.login("alice").await;
    let logout = env
        .send(
            Method::POST,
            "/api/v1/auth/logout",
            &revoked_later,
            json!({}),
        )
        .await;
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let refused = env.get("/api/v1/auth/validate", &revoked_later).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    env.app.clock.advance(Duration::from_secs(1_801));
    let alice_later = env.login("alice").await;
    env.wait_for(&alice_later, &bot_id, &soon_id, &["published"])
        .await;

    // The system is lost.
    env.app.shutdown.cancel();
    env.app.served.take().unwrap().await.unwrap().unwrap();

    // Refusals first: a damaged copy, a newer schema, a place that is not empty.
    let damaged = backups.path().join("damaged");
    copy_tree(&out, &damaged);
    let some_db = &manifest.files[0].file;
    let mut bytes = std::fs::read(damaged.join(some_db)).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(damaged.join(some_db), bytes).unwrap();
    let (place, pg) = empty_place(on_postgres).await;
    let mut target = options_for(&place, pg.as_ref().map(|p| p.url()));
    // The restore's now is the platform's: the moment the system came back.
    target.clock = env.app.clock.clone();
    let refused = backup::restore(&target, &damaged, None).await.unwrap_err();
    assert!(format!("{refused:#}").contains("damaged"), "{refused:#}");
    let newer = backups.path().join("newer");
    copy_tree(&out, &newer);
    let mut edited = manifest.clone();
    edited.files[0].migration_level = 999;
    std::fs::write(
        newer.join(backup::MANIFEST),
        serde_json::to_vec(&edited).unwrap(),
    )
    .unwrap();
    let refused = backup::restore(&target, &newer, None).await.unwrap_err();
    assert!(
        format!("{refused:#}").contains("newer than this binary"),
        "{refused:#}"
    );

    // Restored without its KEK, Secure Bot Data stays sealed and names the version.
    let sealed_place = tempfile::tempdir().unwrap();
    let sealed_pg = empty_place(on_postgres).await.1;
    let sealed_options = options_for(&sealed_place, sealed_pg.as_ref().map(|p| p.url()));
    backup::restore(&sealed_options, &out, None).await.unwrap();
    for key in KEYS.iter().filter(|k| **k != "kek") {
        copy_tree(&keys.path().join(key), &sealed_place.path().join(key));
    }
    let fake_env = fast_env(&env.fake_url);
    let mut fake_env: Vec<(&str, &str)> = fake_env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    fake_env.push(LONG_TOKENS);
    let sealed_app = spawn_in(
        sealed_place,
        None,
        &fake_env,
        sealed_pg,
        env.app.clock.clone(),
    )
    .await;
    let health: Value = sealed_app.get("/health").await.json().await.unwrap();
    let vault = health["checks"]["secure-bot-data.vault"].to_string();
    assert!(
        vault.contains("key-encryption key version(s) 1"),
        "{health}"
    );
    sealed_app.stop().await.unwrap();

    // The restore proper, then the keys kept apart.
    let report = backup::restore(&target, &out, None)
        .await
        .expect("restored");
    assert_eq!(report.len(), manifest.files.len() + 1, "{report:?}");
    assert!(
        report.last().unwrap().contains("1 post(s) due by now"),
        "{report:?}"
    );
    let again = backup::restore(&target, &out, None).await.unwrap_err();
    assert!(format!("{again:#}").contains("not empty"), "{again:#}");
    for key in KEYS {
        copy_tree(&keys.path().join(key), &place.path().join(key));
    }
    let app = spawn_in(place, None, &fake_env, pg, env.app.clock.clone()).await;
    let restored = BotEnv::from_parts(app, env.fake.clone(), env.fake_url.clone(), token_before);

    // A token issued before the backup is accepted: its signing key and the revocation
    // state are the backup's.
    let me = restored.get("/api/v1/auth/validate", &restored.admin).await;
    assert_eq!(me.status(), StatusCode::OK);
    // …and so is one revoked after the backup, until it expires (docs/operations.md).
    let back = restored.get("/api/v1/auth/validate", &revoked_later).await;
    assert_eq!(back.status(), StatusCode::OK);
    let alice = restored.login("alice").await;
    let bot: Value = restored
        .get(&format!("/api/v1/bots/{bot_id}"), &alice)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bot["name"], "drillbot");
    let release = restored
        .get(
            &format!("/api/v1/config/releases/{revision}"),
            &restored.admin,
        )
        .await;
    assert_eq!(release.status(), StatusCode::OK);
    // The Bot Manager follows the restored settings' revision.
    let health: Value = restored
        .get("/api/v1/bots/health", &restored.admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(health["config"]["revision"], revision, "{health}");
    let messages = debug_messages(&restored).await;
    assert!(
        messages.contains(&"before the backup".to_string()),
        "{messages:?}"
    );

    // The scheduled post goes once its time comes, with the restored credentials.
    restored.app.clock.advance(Duration::from_secs(3_601));
    let alice = restored.login("alice").await;
    restored
        .wait_for(&alice, &bot_id, &scheduled_id, &["published"])
        .await;
    let sent: Vec<_> = restored
        .x_requests("POST", "/2/tweets")
        .into_iter()
        .filter(|r| r.status == 201 && r.text.as_deref() == Some("scheduled before the backup"))
        .collect();
    assert_eq!(sent.len(), 1, "published once");
    assert_eq!(
        env.fake.live_posts_with_text("scheduled before the backup"),
        1
    );
    // The one that went out after the backup is found on X, not sent again.
    restored
        .wait_for(&alice, &bot_id, &soon_id, &["published"])
        .await;
    let sends = restored
        .x_requests("POST", "/2/tweets")
        .into_iter()
        .filter(|r| r.text.as_deref() == Some("published after the backup"))
        .count();
    assert_eq!(sends, 1, "sent once, before the loss");
    assert_eq!(
        env.fake.live_posts_with_text("published after the backup"),
        1
    );
}

/// The cluster's nightly logical dump (the CronJob's script in base/postgres) writes what
/// `vivesphere restore` takes: run here against a real PostgreSQL, restored into an empty
/// database, and the restored system knows its users.
#[tokio::test]
async fn the_clusters_nightly_dump_restores_with_vivesphere_restore() {
    let Some(pg) = TestPostgres::create().await else {
        return;
    };
    let url = pg.url().to_string();
    let mut app = crate::helpers::spawn(None, &[], Some(pg)).await;
    let admin = crate::auth_helpers::admin_token(&app).await;
    let created = crate::auth_helpers::send_json(
        &app,
        Method::POST,
        "/api/v1/auth/users",
        &admin,
        json!({"username": "dumped", "password": "a long enough password", "roles": ["Editor"]}),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let keys = tempfile::tempdir().unwrap();
    for key in KEYS {
        copy_tree(&app.data_dir.path().join(key), &keys.path().join(key));
    }
    let clock = app.clock.clone();
    // Stopped, its database kept (the app owns it until the test ends).
    app.shutdown.cancel();
    app.served.take().unwrap().await.unwrap().unwrap();

    let root = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../infrastructure/kubernetes/base/postgres/backup.sh");
    // The CronJob's connection, as the PG* variables libpq reads.
    let parsed = reqwest::Url::parse(&url).unwrap();
    let ran = std::process::Command::new("bash")
        .arg(&script)
        .env("PGHOST", parsed.host_str().unwrap())
        .env("PGPORT", parsed.port().unwrap_or(5432).to_string())
        .env("PGUSER", parsed.username())
        .env("PGPASSWORD", parsed.password().unwrap_or_default())
        .env("PGDATABASE", parsed.path().trim_start_matches('/'))
        .env("BACKUP_ROOT", root.path())
        .env("BACKUP_KEEP", "2")
        .output()
        .unwrap();
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let runs: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");

    let (place, target_pg) = empty_place(true).await;
    let target_pg = target_pg.unwrap();
    let target = options_for(&place, Some(target_pg.url()));
    let report = backup::restore(&target, &runs[0], None)
        .await
        .expect("restored");
    assert_eq!(report.len(), 6, "{report:?}");
    for key in KEYS {
        copy_tree(&keys.path().join(key), &place.path().join(key));
    }
    let restored = spawn_in(place, None, &[], Some(target_pg), clock).await;
    crate::auth_helpers::login_ok(&restored, "dumped", "a long enough password").await;
}
