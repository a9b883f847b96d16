//! X apps: the bots of each (by `bots.x_app`), the apps registered with an app-only token for
//! reading X's usage (the token itself is in Secure Bot Data under `vault_id`), and X's last
//! answer about each project's cap.

use platform::db::Database;
use sqlx::Row;
use sqlx::any::AnyRow;

/// X's last word on a project's cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub project_id: String,
    pub cap: i64,
    pub used: i64,
    pub reset_day: i64,
}

/// An app registered for usage reading.
#[derive(Debug, Clone)]
pub struct Registered {
    pub app: String,
    pub vault_id: String,
    pub registered_by: String,
    pub registered_at: i64,
    /// The last successful reading.
    pub reading: Option<Reading>,
    /// When X was last asked (answered or not).
    pub read_at: Option<i64>,
    /// Why the last attempt gave no reading.
    pub read_error: Option<String>,
}

fn row_to_registered(row: &AnyRow) -> anyhow::Result<Registered> {
    let used: Option<i64> = row.try_get("project_usage")?;
    let reading = match used {
        Some(used) => Some(Reading {
            project_id: row
                .try_get::<Option<String>, _>("project_id")?
                .unwrap_or_default(),
            cap: row.try_get::<Option<i64>, _>("project_cap")?.unwrap_or(0),
            used,
            reset_day: row.try_get::<Option<i64>, _>("cap_reset_day")?.unwrap_or(1),
        }),
        None => None,
    };
    Ok(Registered {
        app: row.try_get("app")?,
        vault_id: row.try_get("vault_id")?,
        registered_by: row.try_get("registered_by")?,
        registered_at: row.try_get("registered_at")?,
        reading,
        read_at: row.try_get("read_at")?,
        read_error: row.try_get("read_error")?,
    })
}

pub async fn get(db: &Database, app: &str) -> anyhow::Result<Option<Registered>> {
    let row = sqlx::query("SELECT * FROM x_apps WHERE app = $1")
        .bind(app)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(row_to_registered).transpose()
}

/// Every registered app, in name order.
pub async fn registered(db: &Database) -> anyhow::Result<Vec<Registered>> {
    let rows = sqlx::query("SELECT * FROM x_apps ORDER BY app")
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(row_to_registered).collect()
}

/// Registers an app (or records who registered its new token); its vault id stays.
pub async fn register(
    db: &Database,
    (app, vault_id): (&str, &str),
    by: &str,
    at: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO x_apps (app, vault_id, registered_by, registered_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (app) DO UPDATE SET registered_by = $3, registered_at = $4",
    )
    .bind(app)
    .bind(vault_id)
    .bind(by)
    .bind(at)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Forgets a registered app; false if it was not.
pub async fn unregister(db: &Database, app: &str) -> anyhow::Result<bool> {
    let done = sqlx::query("DELETE FROM x_apps WHERE app = $1")
        .bind(app)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Claims the app's reading for this replica when none was asked for in the last
/// `interval_ms`: true once per interval across replicas.
pub async fn claim_read(
    db: &Database,
    app: &str,
    now: i64,
    interval_ms: i64,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE x_apps SET read_at = $2 WHERE app = $1 AND (read_at IS NULL OR read_at <= $3)",
    )
    .bind(app)
    .bind(now)
    .bind(now - interval_ms)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records what X answered at `at`: a reading, or why there was none (the last reading
/// stays, so the view keeps X's last word beside the error).
pub async fn save_reading(
    db: &Database,
    app: &str,
    answer: Result<&Reading, &str>,
    at: i64,
) -> anyhow::Result<()> {
    let query = match answer {
        Ok(reading) => sqlx::query(
            "UPDATE x_apps SET project_id = $2, project_cap = $3, project_usage = $4, \
             cap_reset_day = $5, read_at = $6, read_error = NULL WHERE app = $1",
        )
        .bind(app)
        .bind(&reading.project_id)
        .bind(reading.cap)
        .bind(reading.used)
        .bind(reading.reset_day),
        Err(error) => sqlx::query("UPDATE x_apps SET read_error = $2, read_at = $3 WHERE app = $1")
            .bind(app)
            .bind(error),
    };
    query.bind(at).execute(db.pool()).await?;
    Ok(())
}

/// What the fleet does through one app: its bots (not archived), its posts in the 24 hours
/// before `now`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppActivity {
    pub app: String,
    pub bots: i64,
    pub posts_24h: i64,
}

/// Every app a bot names or that is registered, with its bots and last 24 hours' posts.
pub async fn activity(db: &Database, now: i64) -> anyhow::Result<Vec<AppActivity>> {
    let rows = sqlx::query(
        "SELECT a.app, \
         (SELECT COUNT(*) FROM bots b WHERE b.x_app = a.app AND b.status <> 'archived') AS bots, \
         (SELECT COUNT(*) FROM posts p JOIN bots b ON b.bot_id = p.bot_id \
          WHERE b.x_app = a.app AND p.published_at > $1) AS posts_24h \
         FROM (SELECT x_app AS app FROM bots UNION SELECT app FROM x_apps) a ORDER BY a.app",
    )
    .bind(now - 24 * 3_600_000)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(AppActivity {
                app: row.try_get("app")?,
                bots: row.try_get("bots")?,
                posts_24h: row.try_get("posts_24h")?,
            })
        })
        .collect()
}
