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

/// The publishing jobs of the bots within reach that are not done: the Bot Manager's backlog.
#[derive(Debug, Clone, Default)]
pub struct Backlog {
    /// Pending and due: waiting for a worker now.
    pub due: i64,
    /// Pending, due later (scheduled posts).
    pub later: i64,
    pub running: i64,
    /// Parked while their bot cannot publish (paused, needs new credentials).
    pub waiting: i64,
    /// Given up after their last attempt since the time asked.
    pub dead_since: i64,
    /// When the longest-waiting due job was due.
    pub oldest_due_at: Option<i64>,
}

/// The backlog at `now` of the bots `reach` covers, dead jobs counted since `since`.
pub async fn backlog(
    db: &Database,
    reach: platform::auth::Reach<'_>,
    now: i64,
    since: i64,
) -> anyhow::Result<Backlog> {
    // Each count reads a range of the (state, time) indexes; a member's counts keep to the
    // bots they reach (their own and their team's).
    let (within, user, team) = match reach {
        platform::auth::Reach::All => ("", None, None),
        platform::auth::Reach::Member { user_id, team } => (
            " AND bot_id IN (SELECT bot_id FROM bots WHERE owner_id = $3 \
             OR (team IS NOT NULL AND team = $4))",
            Some(user_id),
            team,
        ),
    };
    let sql = format!(
        "SELECT \
         (SELECT COUNT(*) FROM jobs WHERE state = 'pending' AND run_at <= $1{within}) AS due, \
         (SELECT COUNT(*) FROM jobs WHERE state = 'pending' AND run_at > $1{within}) AS later, \
         (SELECT COUNT(*) FROM jobs WHERE state = 'running'{within}) AS running, \
         (SELECT COUNT(*) FROM jobs WHERE state = 'waiting'{within}) AS waiting, \
         (SELECT COUNT(*) FROM jobs WHERE state = 'dead' AND updated_at >= $2{within}) AS dead_since, \
         (SELECT MIN(run_at) FROM jobs WHERE state IN ('pending', 'running') AND run_at <= $1{within}) \
         AS oldest_due_at"
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(since);
    // Only a member's statement has $3 and $4: PostgreSQL refuses parameters it does not use.
    if !within.is_empty() {
        query = query.bind(user).bind(team);
    }
    let row = query.fetch_one(db.pool()).await?;
    Ok(Backlog {
        due: row.try_get("due")?,
        later: row.try_get("later")?,
        running: row.try_get("running")?,
        waiting: row.try_get("waiting")?,
        dead_since: row.try_get("dead_since")?,
        oldest_due_at: row.try_get("oldest_due_at")?,
    })
}
