//! Storage on both backends: migrations at start, idempotent re-runs, a refused edit of an
//! applied migration, and each service in its own SQLite file or PostgreSQL schema.

use platform::config::{DatabaseSettings, Secret};
use platform::db::{Backend, Database, MigrationStep, Migrations};
use platform::testing::TestPostgres;
use sqlx::Row;

const NOTES_V1: Migrations = Migrations {
    sqlite: &[MigrationStep {
        version: 1,
        description: "notes",
        sql: "CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT NOT NULL, size INTEGER NOT NULL, raw BLOB);",
    }],
    postgres: &[MigrationStep {
        version: 1,
        description: "notes",
        sql: "CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT NOT NULL, size BIGINT NOT NULL, raw BYTEA);",
    }],
};

const NOTES_V2: Migrations = Migrations {
    sqlite: &[
        NOTES_V1.sqlite[0],
        MigrationStep {
            version: 2,
            description: "notes author",
            sql: "ALTER TABLE notes ADD COLUMN author TEXT;",
        },
    ],
    postgres: &[
        NOTES_V1.postgres[0],
        MigrationStep {
            version: 2,
            description: "notes author",
            sql: "ALTER TABLE notes ADD COLUMN author TEXT;",
        },
    ],
};

const NOTES_EDITED: Migrations = Migrations {
    sqlite: &[MigrationStep {
        version: 1,
        description: "notes",
        sql: "CREATE TABLE notes (id TEXT PRIMARY KEY);",
    }],
    postgres: &[MigrationStep {
        version: 1,
        description: "notes",
        sql: "CREATE TABLE notes (id TEXT PRIMARY KEY);",
    }],
};

/// The same SQL, with `$n` parameters, on either backend.
async fn write_and_read_back(db: &Database, id: &str) {
    sqlx::query("INSERT INTO notes (id, body, size, raw, author) VALUES ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind("héllo")
        .bind(5_i64)
        .bind(vec![0_u8, 159, 255])
        .bind("ada")
        .execute(db.pool())
        .await
        .unwrap();
    let row = sqlx::query("SELECT body, size, raw, author FROM notes WHERE id = $1")
        .bind(id)
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(row.try_get::<String, _>("body").unwrap(), "héllo");
    assert_eq!(row.try_get::<i64, _>("size").unwrap(), 5);
    assert_eq!(row.try_get::<Vec<u8>, _>("raw").unwrap(), vec![0, 159, 255]);
    assert_eq!(row.try_get::<String, _>("author").unwrap(), "ada");
}

async fn migrations_apply_in_order_and_refuse_edits(settings: DatabaseSettings, backend: Backend) {
    let db = Database::connect("notes-service", &settings).await.unwrap();
    assert_eq!(db.backend(), backend);
    db.migrate(&NOTES_V1).await.unwrap();
    db.migrate(&NOTES_V1).await.unwrap(); // a second start changes nothing
    db.migrate(&NOTES_V2).await.unwrap(); // a new version is applied on top
    write_and_read_back(&db, "n1").await;
    let err = db.migrate(&NOTES_EDITED).await.unwrap_err();
    assert!(format!("{err:#}").contains("migrations failed"), "{err:#}");
    assert!(db.ping().await.is_ok());
    db.close().await;
}

fn sqlite_settings(dir: &tempfile::TempDir) -> DatabaseSettings {
    DatabaseSettings {
        path: dir.path().join("nested/{service}.db").display().to_string(),
        ..DatabaseSettings::default()
    }
}

fn postgres_settings(pg: &TestPostgres) -> DatabaseSettings {
    DatabaseSettings {
        url: Some(Secret::new(pg.url())),
        ..DatabaseSettings::default()
    }
}

#[tokio::test]
async fn sqlite_migrations_apply_in_order_and_refuse_edits() {
    let dir = tempfile::tempdir().unwrap();
    migrations_apply_in_order_and_refuse_edits(sqlite_settings(&dir), Backend::Sqlite).await;
    assert!(
        dir.path().join("nested/notes-service.db").exists(),
        "one file per service"
    );
}

#[tokio::test]
async fn postgres_migrations_apply_in_order_and_refuse_edits() {
    let Some(pg) = TestPostgres::create().await else {
        return;
    };
    migrations_apply_in_order_and_refuse_edits(postgres_settings(&pg), Backend::Postgres).await;
}

/// A rolling update: the newer release's migration ran, and the previous release still
/// starts (and restarts) against that schema and works on it.
async fn the_previous_release_starts_on_a_newer_schema(settings: DatabaseSettings) {
    let newer = Database::connect("notes-service", &settings).await.unwrap();
    newer.migrate(&NOTES_V2).await.unwrap();
    newer.close().await;
    let previous = Database::connect("notes-service", &settings).await.unwrap();
    previous
        .migrate(&NOTES_V1)
        .await
        .expect("version 2 is left alone");
    previous.verify_migrated(&NOTES_V1).await.unwrap();
    sqlx::query("INSERT INTO notes (id, body, size) VALUES ($1, $2, $3)")
        .bind("written-by-the-previous-release")
        .bind("text")
        .bind(4_i64)
        .execute(previous.pool())
        .await
        .unwrap();
    previous.close().await;
}

#[tokio::test]
async fn sqlite_the_previous_release_starts_on_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    the_previous_release_starts_on_a_newer_schema(sqlite_settings(&dir)).await;
}

#[tokio::test]
async fn postgres_the_previous_release_starts_on_a_newer_schema() {
    let Some(pg) = TestPostgres::create().await else {
        return;
    };
    the_previous_release_starts_on_a_newer_schema(postgres_settings(&pg)).await;
}

/// `database.migrations = "verify"`: nothing is applied, and a schema behind this build
/// (or edited under it) is named in the error.
async fn verifying_applies_nothing_and_names_what_is_missing(settings: DatabaseSettings) {
    let db = Database::connect("notes-service", &settings).await.unwrap();
    let fresh = db.verify_migrated(&NOTES_V1).await.unwrap_err();
    assert!(
        format!("{fresh:#}").contains("lacks migration(s) 1 of this build"),
        "{fresh:#}"
    );
    assert!(
        format!("{fresh:#}").contains("vivesphere migrate"),
        "{fresh:#}"
    );
    db.migrate(&NOTES_V1).await.unwrap();
    db.verify_migrated(&NOTES_V1).await.unwrap();
    let behind = db.verify_migrated(&NOTES_V2).await.unwrap_err();
    assert!(
        format!("{behind:#}").contains("lacks migration(s) 2 of"),
        "{behind:#}"
    );
    let still_missing = sqlx::query("SELECT author FROM notes")
        .fetch_all(db.pool())
        .await;
    assert!(still_missing.is_err(), "verify applied version 2");
    let edited = db.verify_migrated(&NOTES_EDITED).await.unwrap_err();
    assert!(
        format!("{edited:#}").contains("migration 1 on"),
        "{edited:#}"
    );
    assert!(format!("{edited:#}").contains("differs"), "{edited:#}");
    db.close().await;
}

#[tokio::test]
async fn sqlite_verifying_applies_nothing_and_names_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    verifying_applies_nothing_and_names_what_is_missing(sqlite_settings(&dir)).await;
}

#[tokio::test]
async fn postgres_verifying_applies_nothing_and_names_what_is_missing() {
    let Some(pg) = TestPostgres::create().await else {
        return;
    };
    verifying_applies_nothing_and_names_what_is_missing(postgres_settings(&pg)).await;
}

/// A migration waits at most `MIGRATION_LOCK_TIMEOUT` for a table lock: the step itself
/// records the setting it ran under.
#[tokio::test]
async fn postgres_migrations_run_under_a_lock_timeout() {
    let Some(pg) = TestPostgres::create().await else {
        return;
    };
    const RECORDS_ITS_LOCK_TIMEOUT: Migrations = Migrations {
        sqlite: &[],
        postgres: &[MigrationStep {
            version: 1,
            description: "records its lock timeout",
            sql: "CREATE TABLE seen AS SELECT current_setting('lock_timeout') AS lock_timeout;",
        }],
    };
    let db = Database::connect("locks", &postgres_settings(&pg))
        .await
        .unwrap();
    db.migrate(&RECORDS_ITS_LOCK_TIMEOUT).await.unwrap();
    let seen: String = sqlx::query("SELECT lock_timeout FROM seen")
        .fetch_one(db.pool())
        .await
        .unwrap()
        .try_get("lock_timeout")
        .unwrap();
    let expected = platform::db::MIGRATION_LOCK_TIMEOUT.as_secs();
    assert_eq!(seen, format!("{expected}s"));
    db.close().await;
}

#[tokio::test]
async fn sqlite_services_own_separate_files() {
    let dir = tempfile::tempdir().unwrap();
    let settings = sqlite_settings(&dir);
    let a = Database::connect("service-a", &settings).await.unwrap();
    let b = Database::connect("service-b", &settings).await.unwrap();
    a.migrate(&NOTES_V2).await.unwrap();
    b.migrate(&NOTES_V2).await.unwrap();
    write_and_read_back(&a, "only-in-a").await;
    let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM notes")
        .fetch_one(b.pool())
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn postgres_services_own_separate_schemas() {
    let Some(pg) = TestPostgres::create().await else {
        return;
    };
    let settings = postgres_settings(&pg);
    let a = Database::connect("service_a", &settings).await.unwrap();
    let b = Database::connect("service_b", &settings).await.unwrap();
    a.migrate(&NOTES_V2).await.unwrap();
    b.migrate(&NOTES_V2).await.unwrap();
    write_and_read_back(&a, "only-in-a").await;
    let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM notes")
        .fetch_one(b.pool())
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
    assert_eq!(count, 0);
    let schemas: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM information_schema.tables \
         WHERE table_name = 'notes' AND table_schema IN ('service_a', 'service_b')",
    )
    .fetch_one(a.pool())
    .await
    .unwrap()
    .try_get("n")
    .unwrap();
    assert_eq!(schemas, 2);
    a.close().await;
    b.close().await;
}

/// Replicas of a service starting together on a fresh database (the multi-process topology
/// found this: one of two Bot Manager replicas died on the catalog's unique index).
#[tokio::test]
async fn replicas_creating_their_schema_at_once_all_start() {
    let Some(pg) = TestPostgres::create().await else {
        return;
    };
    let settings = postgres_settings(&pg);
    let opened =
        futures::future::join_all((0..8).map(|_| Database::connect("replicated", &settings))).await;
    for database in opened {
        let database = database.expect("every replica opens its schema");
        database.close().await;
    }
}

/// The TCP connections of this process to `port` (Linux: from `/proc/self/fd`), with whether
/// each has TCP_NODELAY set.
#[cfg(target_os = "linux")]
fn nodelay_of_connections_to(port: u16) -> Vec<bool> {
    use std::os::fd::BorrowedFd;
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        if !is_socket {
            continue;
        }
        // SAFETY: the descriptor stays open while borrowed: this test holds the pool's
        // connections and nothing else closes sockets meanwhile.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = socket2::SockRef::from(&borrowed);
        let to_port = socket
            .peer_addr()
            .ok()
            .and_then(|addr| addr.as_socket())
            .is_some_and(|addr| addr.port() == port);
        if to_port && let Ok(nodelay) = socket.tcp_nodelay() {
            found.push(nodelay);
        }
    }
    found
}

/// A statement larger than one segment (a multi-row INSERT, a batch of log events) goes out
/// in several writes; with Nagle's algorithm on, the second waits for the server's delayed
/// ACK, 40 ms on Linux, on every such statement (sqlx 0.9.0 stopped setting TCP_NODELAY:
/// group commits of audit rows took 45 ms each and capped reveals at ~640/s).
#[cfg(target_os = "linux")]
#[tokio::test]
async fn postgres_connections_send_without_waiting_for_acks() {
    let Some(pg) = TestPostgres::create().await else {
        return;
    };
    // postgres://user@host:port/database
    let authority = pg.url().split('/').nth(2).unwrap_or_default();
    let port = authority
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or(5432);
    let db = Database::connect("nodelay", &postgres_settings(&pg))
        .await
        .unwrap();
    let _held = (
        db.pool().acquire().await.unwrap(),
        db.pool().acquire().await.unwrap(),
    );
    let connections = nodelay_of_connections_to(port);
    assert!(connections.len() >= 2, "{connections:?}");
    assert!(
        connections.iter().all(|nodelay| *nodelay),
        "{connections:?}"
    );
}

#[tokio::test]
async fn postgres_schema_names_are_validated() {
    let settings = DatabaseSettings {
        url: Some(Secret::new("postgres://127.0.0.1:1/x")),
        schema: Some("Robert'); DROP TABLE students;--".into()),
        ..DatabaseSettings::default()
    };
    let err = Database::connect("x", &settings).await.unwrap_err();
    assert!(err.to_string().contains("schema"), "{err}");
}

#[tokio::test]
async fn unreachable_postgres_is_a_clear_error() {
    let settings = DatabaseSettings {
        url: Some(Secret::new("postgres://nobody:pw@127.0.0.1:1/none")),
        connect_timeout: 1,
        ..DatabaseSettings::default()
    };
    let err = Database::connect("x", &settings).await.unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains("cannot connect to PostgreSQL"),
        "{message}"
    );
}

/// Losing the database is the service's 503 with Retry-After, not a 500: a connection the
/// server ends mid-query (SQLSTATE 57P01, as a restart or failover does), a pool that finds
/// no connection in time, a reset socket.
#[tokio::test]
async fn losing_the_database_is_a_503_not_a_500() {
    use platform::http::error::{ApiError, ErrorCode};
    let timed_out = ApiError::from(anyhow::Error::from(sqlx::Error::PoolTimedOut));
    assert_eq!(
        (timed_out.code, timed_out.retry_after),
        (ErrorCode::NotReady, Some(1))
    );
    let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
    let reset = ApiError::from(anyhow::Error::from(sqlx::Error::Io(reset)).context("a query"));
    assert_eq!(reset.code, ErrorCode::NotReady);
    let other = ApiError::from(anyhow::Error::from(sqlx::Error::RowNotFound));
    assert_eq!(other.code, ErrorCode::Internal);

    let Some(pg) = TestPostgres::create().await else {
        return;
    };
    let settings = DatabaseSettings {
        url: Some(Secret::new(pg.url())),
        ..DatabaseSettings::default()
    };
    let db = Database::connect("lost", &settings).await.unwrap();
    let pool = db.pool().clone();
    let sleeping = tokio::spawn(async move {
        sqlx::query("SELECT pg_sleep(30) AS slept")
            .execute(&pool)
            .await
            .map(|_| ())
    });
    let admin = sqlx::PgPool::connect(pg.url()).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let ended: i64 = sqlx::query_scalar(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE query LIKE 'SELECT pg_sleep(30)%' AND pid <> pg_backend_pid()",
        )
        .fetch_one(&admin)
        .await
        .unwrap();
        if ended > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the query never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let err = sleeping.await.unwrap().unwrap_err();
    let answer = ApiError::from(anyhow::Error::from(err));
    assert_eq!(answer.code, ErrorCode::NotReady, "{}", answer.message);
    assert_eq!(answer.retry_after, Some(1));
    // The pool is usable again at once.
    db.ping().await.unwrap();
    admin.close().await;
}

/// Every pooled SQLite connection keeps the page cache and memory map it was configured
/// with, so the process's private memory stays bounded by them.
#[tokio::test]
async fn sqlite_connections_keep_the_configured_cache_and_map() {
    let dir = tempfile::tempdir().unwrap();
    let settings = DatabaseSettings {
        sqlite_cache_kib: 300,
        sqlite_mmap_mib: 2,
        max_connections: 3,
        ..sqlite_settings(&dir)
    };
    let db = Database::connect("cache", &settings).await.unwrap();
    // Three connections at once: each is set up, not only the first.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(db.pool().acquire().await.unwrap());
    }
    for conn in &mut held {
        let cache: i64 = sqlx::query("PRAGMA cache_size")
            .fetch_one(&mut **conn)
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert_eq!(cache, -300);
        let map: i64 = sqlx::query("PRAGMA mmap_size")
            .fetch_one(&mut **conn)
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert_eq!(map, 2 * 1024 * 1024);
    }
}

/// Connections a burst opened are closed once idle for `idle_timeout`, so the memory each
/// holds (its page and statement caches) leaves with the load.
#[tokio::test]
async fn connections_left_idle_after_a_burst_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let settings = DatabaseSettings {
        idle_timeout: 1,
        max_connections: 4,
        ..sqlite_settings(&dir)
    };
    let db = Database::connect("idle", &settings).await.unwrap();
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(db.pool().acquire().await.unwrap());
    }
    assert_eq!(db.pool().size(), 4);
    drop(held);
    // The pool's reaper looks every idle_timeout: within two of them every one is gone.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while db.pool().size() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} idle connections still open",
            db.pool().size()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // And the pool opens one again when asked.
    db.ping().await.unwrap();
}

/// A task polling the database every few milliseconds uses the pool's idle connections in
/// turn, so none of a burst's connections ever sits idle long; their lifetime still lets
/// the pool shrink to what the poller needs.
#[tokio::test]
async fn a_poller_does_not_keep_a_burst_s_connections_alive() {
    let dir = tempfile::tempdir().unwrap();
    let settings = DatabaseSettings {
        idle_timeout: 1,
        max_lifetime: 2,
        max_connections: 4,
        ..sqlite_settings(&dir)
    };
    let db = Database::connect("poller", &settings).await.unwrap();
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(db.pool().acquire().await.unwrap());
    }
    drop(held);
    let poller = db.clone();
    let polling = tokio::spawn(async move {
        loop {
            poller.ping().await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    while db.pool().size() > 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} connections kept by a poller that needs one",
            db.pool().size()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    polling.abort();
}
