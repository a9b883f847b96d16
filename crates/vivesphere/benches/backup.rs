//! `cargo bench --bench backup [-- BOTS POSTS EVENTS]` (default 10,000 bots, 100,000 posts
//! and 1,000,000 log events): how long `vivesphere backup` and `vivesphere restore` take on
//! the one-process shape (SQLite), and how big the backup is.
//!
//! The data is written straight into freshly migrated databases (the time to back up
//! depends on what is stored, not on how it got there): bots with two sealed credential
//! fields each and an audit row per field, posts each with its job, and log events of
//! realistic size. Everything stays in a temporary directory.

use std::path::Path;
use std::time::Instant;

use sqlx::{ConnectOptions, Connection};
use vivesphere::app::AppOptions;

mod support;

fn options(dir: &Path) -> AppOptions {
    let mut env: Vec<(String, String)> = support::private_data_env(dir)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.display().to_string()))
        .collect();
    env.push((
        "VIVESPHERE_AUTHENTICATION__INITIAL_ADMIN_PASSWORD".into(),
        support::ADMIN_PASSWORD.into(),
    ));
    AppOptions {
        config_dir: support::CONFIG_DIR.into(),
        env,
        target: None,
        listen: None,
        file_root: None,
        log_level: None,
        clock: platform::Clock::system(),
    }
}

async fn run(db: &Path, statements: &[String]) {
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db)
        .connect()
        .await
        .unwrap();
    for sql in statements {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{e}: {sql}"));
    }
    conn.close().await.unwrap();
}

/// `1..=count` as rows `i`, for INSERT … SELECT.
fn numbers(count: u64) -> String {
    format!("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count})")
}

async fn seed(dir: &Path, (bots, posts, events): (u64, u64, u64)) {
    run(
        &dir.join("bot_manager.db"),
        &[
            format!(
                "{} INSERT INTO bots (bot_id, owner_id, team, name, x_handle, description, \
                 posting_slots, status, created_at, updated_at) \
                 SELECT printf('bot-%08d', i), 'owner-1', 'blue', printf('Weather bot %d', i), \
                 printf('weather_%d', i), 'Posts the weather every hour, automatically, for its city.', \
                 '[]', 'active', i, i FROM n",
                numbers(bots)
            ),
            format!(
                "{} INSERT INTO posts (post_id, bot_id, author_id, text, fingerprint, state, \
                 run_at, x_post_id, created_at, updated_at, published_at) \
                 SELECT printf('post-%09d', i), printf('bot-%08d', i % {bots} + 1), 'owner-1', \
                 printf('Forecast %d: sunny with a light breeze, 18 to 24 degrees today. #weather', i), \
                 hex(randomblob(16)), 'published', i, printf('%d', 1860000000000000000 + i), i, i, i \
                 FROM n",
                numbers(posts)
            ),
            format!(
                "{} INSERT INTO jobs (job_id, post_id, bot_id, kind, state, attempts, dispatches, \
                 run_at, sent_at, created_at, updated_at) \
                 SELECT printf('job-%09d', i), printf('post-%09d', i), printf('bot-%08d', i % {bots} + 1), \
                 'publish', 'done', 1, 1, i, i, i, i FROM n",
                numbers(posts)
            ),
        ],
    )
    .await;
    let field_rows = |field: &str| {
        [
            format!(
                "{} INSERT INTO secret_fields (bot_id, field, current_version, created_at, \
                 created_by, updated_at, updated_by) \
                 SELECT printf('bot-%08d', i), '{field}', 1, i, 'bot-manager', i, 'bot-manager' FROM n",
                numbers(bots)
            ),
            format!(
                "{} INSERT INTO secret_versions (bot_id, field, version, kek_version, wrapped_dek, \
                 ciphertext, created_at, created_by) \
                 SELECT printf('bot-%08d', i), '{field}', 1, 1, hex(randomblob(60)), \
                 hex(randomblob(120)), i, 'bot-manager' FROM n",
                numbers(bots)
            ),
            format!(
                "{} INSERT INTO audit (id, at, actor, action, result, bot_id, field, version, details, published) \
                 SELECT printf('audit-{field}-%08d', i), i, 'bot-manager', 'write', 'ok', \
                 printf('bot-%08d', i), '{field}', 1, '{{}}', 1 FROM n",
                numbers(bots)
            ),
        ]
    };
    let mut botdata = vec![format!(
        "{} INSERT INTO bots (bot_id, owner_id, team, created_at, created_by) \
         SELECT printf('bot-%08d', i), 'owner-1', 'blue', i, 'bot-manager' FROM n",
        numbers(bots)
    )];
    botdata.extend(field_rows("oauth_access_token"));
    botdata.extend(field_rows("oauth_refresh_token"));
    run(&dir.join("secure_bot_data.db"), &botdata).await;
    run(
        &dir.join("logging.db"),
        &[format!(
            "{} INSERT INTO events (id, ts, category, service, level, actor_service, bot_id, team, \
             action, request_id, message, data) \
             SELECT printf('%032x', i), 1790000000000 + i, \
             CASE WHEN i % 4 = 0 THEN 'user_activity' ELSE 'debug' END, 'bot-manager', 'info', \
             'bot-manager', printf('bot-%08d', i % {bots} + 1), 'blue', 'post.published', \
             hex(randomblob(16)), \
             printf('post.published post-%09d: bot Weather bot %d (@weather_%d)', i, i % {bots}, i % {bots}), \
             printf('{{\"subject\":\"post-%09d\",\"details\":{{\"x_post_id\":\"%d\",\"run_at\":%d,\"lateness_ms\":%d}}}}', i, 1860000000000000000 + i, i, i % 997) \
             FROM n",
            numbers(events)
        )],
    )
    .await;
}

fn size_of(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let bots = args.first().copied().unwrap_or(10_000);
    let posts = args.get(1).copied().unwrap_or(100_000);
    let events = args.get(2).copied().unwrap_or(1_000_000);
    let live = tempfile::tempdir().unwrap();
    let source = options(live.path());
    vivesphere::app::migrate(&source).await.unwrap();
    let seeding = Instant::now();
    seed(live.path(), (bots, posts, events)).await;
    println!(
        "seeded {bots} bots (2 sealed fields each), {posts} posts with jobs, {events} log events \
         in {:.1} s; data directory {:.1} MiB",
        seeding.elapsed().as_secs_f64(),
        mib(size_of(live.path()))
    );

    let backups = tempfile::tempdir().unwrap();
    let out = backups.path().join("backup");
    let started = Instant::now();
    let manifest = vivesphere::backup::backup(&source, &out, None)
        .await
        .unwrap();
    let backup_s = started.elapsed().as_secs_f64();
    let bytes: u64 = manifest.files.iter().map(|f| f.bytes).sum();
    println!(
        "backup: {backup_s:.2} s, {:.1} MiB in {} files ({:.0} MiB/s)",
        mib(bytes),
        manifest.files.len(),
        mib(bytes) / backup_s
    );
    for file in &manifest.files {
        println!("  {:<20} {:>8.1} MiB", file.file, mib(file.bytes));
    }

    let restored = tempfile::tempdir().unwrap();
    let target = options(&restored.path().join("data"));
    let started = Instant::now();
    vivesphere::backup::restore(&target, &out, None)
        .await
        .unwrap();
    let restore_s = started.elapsed().as_secs_f64();
    println!(
        "restore (checksums, migration levels, copy): {restore_s:.2} s ({:.0} MiB/s)",
        mib(bytes) / restore_s
    );
}
