//! Bots: who owns them, what they are, and their status.

use platform::auth::Reach;
use platform::db::Database;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::model::{BotStatus, PostingSlot};

#[derive(Debug, Clone)]
pub struct BotRow {
    pub bot_id: String,
    pub owner_id: String,
    pub team: Option<String>,
    pub name: String,
    pub x_handle: Option<String>,
    pub x_user_id: Option<String>,
    pub description: String,
    pub operator_account: Option<String>,
    pub posting_slots: Vec<PostingSlot>,
    /// The IANA time zone its posting slots are in.
    pub time_zone: String,
    /// The X app (project) its credentials belong to: X's per-app limits, the meter and app
    /// budgets go by it.
    pub x_app: String,
    pub status: BotStatus,
    pub status_reason: Option<String>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

fn row_to_bot(row: &AnyRow) -> anyhow::Result<BotRow> {
    Ok(BotRow {
        bot_id: row.try_get("bot_id")?,
        owner_id: row.try_get("owner_id")?,
        team: row.try_get("team")?,
        name: row.try_get("name")?,
        x_handle: row.try_get("x_handle")?,
        x_user_id: row.try_get("x_user_id")?,
        description: row.try_get("description")?,
        operator_account: row.try_get("operator_account")?,
        posting_slots: serde_json::from_str(&row.try_get::<String, _>("posting_slots")?)?,
        time_zone: row.try_get("time_zone")?,
        x_app: row.try_get("x_app")?,
        status: BotStatus::parse(&row.try_get::<String, _>("status")?)
            .map_err(|e| anyhow::anyhow!(e.message))?,
        status_reason: row.try_get("status_reason")?,
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub async fn insert(db: &Database, bot: &BotRow) -> anyhow::Result<()> {
    let mut conn = db.pool().acquire().await?;
    insert_in(&mut conn, bot).await
}

/// Inserts a bot on the caller's connection (or inside its transaction).
pub async fn insert_in(conn: &mut sqlx::AnyConnection, bot: &BotRow) -> anyhow::Result<()> {
    let query = sqlx::query(
        "INSERT INTO bots (bot_id, owner_id, team, name, x_handle, x_user_id, description, \
         operator_account, posting_slots, x_app, time_zone, status, status_reason, version, \
         metrics_due_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 1, 0, $14, $14)",
    )
    .bind(&bot.bot_id)
    .bind(&bot.owner_id)
    .bind(&bot.team);
    bind_editable(query, bot)?
        .bind(bot.status.as_str())
        .bind(&bot.status_reason)
        .bind(bot.created_at)
        .execute(conn)
        .await?;
    Ok(())
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Binds the fields an edit may change, in the order both `insert` and `update` name them.
fn bind_editable<'q>(query: AnyQuery<'q>, bot: &'q BotRow) -> anyhow::Result<AnyQuery<'q>> {
    Ok(query
        .bind(&bot.name)
        .bind(&bot.x_handle)
        .bind(&bot.x_user_id)
        .bind(&bot.description)
        .bind(&bot.operator_account)
        .bind(serde_json::to_string(&bot.posting_slots)?)
        .bind(&bot.x_app)
        .bind(&bot.time_zone))
}

pub async fn get(db: &Database, bot_id: &str) -> anyhow::Result<Option<BotRow>> {
    sqlx::query("SELECT * FROM bots WHERE bot_id = $1")
        .bind(bot_id)
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(row_to_bot)
        .transpose()
}

/// What a bot list keeps: each `Some` must match. `text` is a lowercase substring of the
/// name, handle or description.
#[derive(Debug, Default)]
pub struct BotFilter {
    pub status: Option<BotStatus>,
    pub team: Option<String>,
    pub handle: Option<String>,
    pub text: Option<String>,
}

/// `%text%` for LIKE, with LIKE's own characters escaped (`ESCAPE '\'`).
fn like_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The bots `reach` covers that `filter` keeps, in id order after `after`. One statement for
/// both engines: an absent filter is a NULL parameter that matches everything.
pub async fn list(
    db: &Database,
    reach: Reach<'_>,
    filter: &BotFilter,
    after: Option<&str>,
    limit: i64,
) -> anyhow::Result<Vec<BotRow>> {
    let (user, team) = match reach {
        Reach::All => (None, None),
        Reach::Member { user_id, team } => (Some(user_id), team),
    };
    let rows = sqlx::query(
        "SELECT * FROM bots WHERE ($1 IS NULL OR owner_id = $1 OR (team IS NOT NULL AND team = $2)) \
         AND ($3 IS NULL OR status = $3) AND ($4 IS NULL OR team = $4) \
         AND ($5 IS NULL OR LOWER(x_handle) = LOWER($5)) \
         AND ($6 IS NULL OR LOWER(name) LIKE $6 ESCAPE '\\' \
              OR LOWER(COALESCE(x_handle, '')) LIKE $6 ESCAPE '\\' \
              OR LOWER(COALESCE(description, '')) LIKE $6 ESCAPE '\\') \
         AND bot_id > $7 ORDER BY bot_id LIMIT $8",
    )
    .bind(user)
    .bind(team)
    .bind(filter.status.map(BotStatus::as_str))
    .bind(filter.team.as_deref())
    .bind(filter.handle.as_deref())
    .bind(filter.text.as_deref().map(like_pattern))
    .bind(after.unwrap_or(""))
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(row_to_bot).collect()
}

/// The ids of the bots `reach` covers, in id order, at most `limit`.
///
/// They come back joined in one row: SQLite's driver hands each row from its worker thread
/// to the request over a channel of 50, and every row past that cost a thread wake-up (a
/// profile of this route: half its CPU in the kernel switching threads). Ids are UUIDs, so
/// a comma cannot be in one. `string_agg … ORDER BY` is the same SQL on both backends
/// (SQLite since 3.44).
pub async fn ids(db: &Database, reach: Reach<'_>, limit: i64) -> anyhow::Result<Vec<String>> {
    let (user, team) = match reach {
        Reach::All => (None, None),
        Reach::Member { user_id, team } => (Some(user_id), team),
    };
    let joined: Option<String> = sqlx::query(
        "SELECT string_agg(bot_id, ',' ORDER BY bot_id) AS ids FROM ( \
           SELECT bot_id FROM bots \
           WHERE ($1 IS NULL OR owner_id = $1 OR (team IS NOT NULL AND team = $2)) \
           ORDER BY bot_id LIMIT $3) AS page",
    )
    .bind(user)
    .bind(team)
    .bind(limit)
    .fetch_one(db.pool())
    .await?
    .try_get("ids")?;
    Ok(joined
        .map(|ids| ids.split(',').map(str::to_string).collect())
        .unwrap_or_default())
}

/// Replaces the editable fields if the bot is still at `version`; the new row, or `None`
/// when the version moved on.
pub async fn update(db: &Database, bot: &BotRow, now: i64) -> anyhow::Result<Option<BotRow>> {
    let query = sqlx::query(
        "UPDATE bots SET name = $1, x_handle = $2, x_user_id = $3, description = $4, \
         operator_account = $5, posting_slots = $6, x_app = $7, time_zone = $8, \
         version = version + 1, updated_at = $9 WHERE bot_id = $10 AND version = $11",
    );
    let result = bind_editable(query, bot)?
        .bind(now)
        .bind(&bot.bot_id)
        .bind(bot.version)
        .execute(db.pool())
        .await?;
    if result.rows_affected() == 0 {
        return Ok(None);
    }
    get(db, &bot.bot_id).await
}

/// Moves the bot from `from` to `to`; false if it was no longer in `from`.
pub async fn set_status(
    db: &Database,
    bot_id: &str,
    from: BotStatus,
    to: BotStatus,
    reason: Option<&str>,
    now: i64,
) -> anyhow::Result<bool> {
    let result = sqlx::query(
        "UPDATE bots SET status = $1, status_reason = $2, version = version + 1, updated_at = $3 \
         WHERE bot_id = $4 AND status = $5",
    )
    .bind(to.as_str())
    .bind(reason)
    .bind(now)
    .bind(bot_id)
    .bind(from.as_str())
    .execute(db.pool())
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Claims up to `limit` active bots whose metrics are due, pushing their next time out by
/// `interval_ms` so no other replica takes them meanwhile.
pub async fn claim_metrics_due(
    db: &Database,
    now: i64,
    interval_ms: i64,
    limit: i64,
) -> anyhow::Result<Vec<BotRow>> {
    let sql = format!(
        "UPDATE bots SET metrics_due_at = $1 WHERE bot_id IN (SELECT bot_id FROM bots \
         WHERE status = 'active' AND metrics_due_at <= $2 ORDER BY metrics_due_at LIMIT $3{}) \
         RETURNING *",
        super::skip_locked(db)
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(now + interval_ms)
        .bind(now)
        .bind(limit)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(row_to_bot)
        .collect()
}

/// Keeps the bot's X user id, the first time X tells it.
pub async fn set_x_user_id(db: &Database, bot_id: &str, x_user_id: &str) -> anyhow::Result<()> {
    sqlx::query("UPDATE bots SET x_user_id = $1 WHERE bot_id = $2 AND x_user_id IS NULL")
        .bind(x_user_id)
        .bind(bot_id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Another bot (not archived) that holds this X account, if any.
pub async fn holding_x_user(
    db: &Database,
    x_user_id: &str,
    except_bot_id: &str,
) -> anyhow::Result<Option<String>> {
    let row = sqlx::query(
        "SELECT bot_id FROM bots WHERE x_user_id = $1 AND bot_id <> $2 AND status <> 'archived' \
         LIMIT 1",
    )
    .bind(x_user_id)
    .bind(except_bot_id)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.map(|r| r.try_get("bot_id")).transpose()?)
}

/// A bot (not archived) with this handle, any case, if there is one.
pub async fn holding_handle(db: &Database, handle: &str) -> anyhow::Result<Option<String>> {
    let row = sqlx::query(
        "SELECT bot_id FROM bots WHERE LOWER(x_handle) = LOWER($1) AND status <> 'archived' \
         LIMIT 1",
    )
    .bind(handle)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.map(|r| r.try_get("bot_id")).transpose()?)
}
