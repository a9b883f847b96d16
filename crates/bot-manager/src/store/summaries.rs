//! A line per bot for a fleet view: its last and next post, its recent failures and the rate
//! window running lowest. SQL that both SQLite and PostgreSQL run.

use platform::db::Database;
use sqlx::Row;

/// What a fleet row shows of one bot, with what deciding who may see it needs.
#[derive(Debug, Clone)]
pub struct SummaryRow {
    pub bot_id: String,
    pub owner_id: String,
    pub team: Option<String>,
    pub status: String,
    pub last_published_at: Option<i64>,
    pub next_run_at: Option<i64>,
    pub failed_since: i64,
}

/// A saved rate window (saved once a tenth or less of it is left) whose reset is ahead.
#[derive(Debug, Clone)]
pub struct LowWindow {
    pub bot_id: String,
    pub endpoint: String,
    pub limit: i64,
    pub remaining: i64,
    pub reset_at: i64,
}

/// `$first, $first+1, …` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The bots of `ids` that exist, each with failures counted since `since` (ms).
pub async fn summaries(
    db: &Database,
    ids: &[String],
    since: i64,
) -> anyhow::Result<Vec<SummaryRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT b.bot_id, b.owner_id, b.team, b.status, \
         (SELECT MAX(p.published_at) FROM posts p WHERE p.bot_id = b.bot_id AND p.state = 'published') \
         AS last_published_at, \
         (SELECT MIN(p.run_at) FROM posts p WHERE p.bot_id = b.bot_id AND p.state = 'scheduled') \
         AS next_run_at, \
         (SELECT COUNT(*) FROM posts p WHERE p.bot_id = b.bot_id AND p.state = 'failed' \
         AND p.updated_at >= $1) AS failed_since \
         FROM bots b WHERE b.bot_id IN ({}) ORDER BY b.bot_id",
        placeholders(2, ids.len())
    );
    // Only placeholders are formatted in; every value is bound.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(since);
    for id in ids {
        query = query.bind(id);
    }
    let rows = query.fetch_all(db.pool()).await?;
    rows.iter()
        .map(|row| {
            Ok(SummaryRow {
                bot_id: row.try_get("bot_id")?,
                owner_id: row.try_get("owner_id")?,
                team: row.try_get("team")?,
                status: row.try_get("status")?,
                last_published_at: row.try_get("last_published_at")?,
                next_run_at: row.try_get("next_run_at")?,
                failed_since: row.try_get("failed_since")?,
            })
        })
        .collect()
}

/// The saved windows of `ids` whose reset is after `now` (ms).
pub async fn low_windows(
    db: &Database,
    ids: &[String],
    now: i64,
) -> anyhow::Result<Vec<LowWindow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT bot_id, endpoint, limit_total, remaining, reset_at FROM rate_limits \
         WHERE reset_at > $1 AND bot_id IN ({})",
        placeholders(2, ids.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
    for id in ids {
        query = query.bind(id);
    }
    let rows = query.fetch_all(db.pool()).await?;
    rows.iter()
        .map(|row| {
            Ok(LowWindow {
                bot_id: row.try_get("bot_id")?,
                endpoint: row.try_get("endpoint")?,
                limit: row.try_get("limit_total")?,
                remaining: row.try_get("remaining")?,
                reset_at: row.try_get("reset_at")?,
            })
        })
        .collect()
}
