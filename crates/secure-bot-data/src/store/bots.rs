//! Which bots exist here and who may reach them: the owner, the owner's team, admins and
//! service clients.

use platform::auth::Reach;
use platform::db::Database;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::rfc3339;

#[derive(Debug, Clone)]
pub struct BotRow {
    pub bot_id: String,
    pub owner_id: String,
    pub team: Option<String>,
    pub created_at: i64,
}

fn from_row(row: &AnyRow) -> anyhow::Result<BotRow> {
    from_columns(row, "created_at")
}

/// A bot from a row whose creation time is in `created_at_column` (a row that joins the bot
/// to rows with their own `created_at` names it apart).
pub fn from_columns(row: &AnyRow, created_at_column: &str) -> anyhow::Result<BotRow> {
    Ok(BotRow {
        bot_id: row.try_get("bot_id")?,
        owner_id: row.try_get("owner_id")?,
        team: row.try_get("team")?,
        created_at: row.try_get(created_at_column)?,
    })
}

pub async fn get<'c, E>(executor: E, bot_id: &str) -> anyhow::Result<Option<BotRow>>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    sqlx::query("SELECT bot_id, owner_id, team, created_at FROM bots WHERE bot_id = $1")
        .bind(bot_id)
        .fetch_optional(executor)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Registers a bot unless it exists. As the first statement of a write transaction it also
/// takes SQLite's write lock up front, so the transaction never has to upgrade a read lock.
pub async fn create_if_absent<'c, E>(
    executor: E,
    bot_id: &str,
    owner_id: &str,
    team: Option<&str>,
    created_by: &str,
    now: i64,
) -> anyhow::Result<()>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO bots (bot_id, owner_id, team, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (bot_id) DO NOTHING",
    )
    .bind(bot_id)
    .bind(owner_id)
    .bind(team)
    .bind(now)
    .bind(created_by)
    .execute(executor)
    .await?;
    Ok(())
}

/// A bot in a listing.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BotSummary {
    pub bot_id: String,
    pub owner_id: String,
    pub team: Option<String>,
    pub field_count: i64,
    pub created_at: String,
    /// When a field last changed; null without fields.
    pub updated_at: Option<String>,
}

/// The caller's bots in id order, after `cursor`.
pub async fn list(
    db: &Database,
    reach: Reach<'_>,
    limit: i64,
    cursor: Option<&str>,
) -> anyhow::Result<Vec<BotSummary>> {
    let (all, user, team) = match reach {
        Reach::All => (1_i64, "", ""),
        Reach::Member { user_id, team } => (0, user_id, team.unwrap_or("")),
    };
    let rows = sqlx::query(
        "SELECT b.bot_id, b.owner_id, b.team, b.created_at, \
                COUNT(f.field) AS field_count, MAX(f.updated_at) AS updated_at \
         FROM bots b LEFT JOIN secret_fields f ON f.bot_id = b.bot_id \
         WHERE ($5 = 1 OR b.owner_id = $2 OR (b.team IS NOT NULL AND b.team = $3)) \
           AND b.bot_id > $1 \
         GROUP BY b.bot_id, b.owner_id, b.team, b.created_at \
         ORDER BY b.bot_id LIMIT $4",
    )
    .bind(cursor.unwrap_or(""))
    .bind(user)
    .bind(team)
    .bind(limit)
    .bind(all)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(BotSummary {
                bot_id: row.try_get("bot_id")?,
                owner_id: row.try_get("owner_id")?,
                team: row.try_get("team")?,
                field_count: row.try_get("field_count")?,
                created_at: rfc3339(row.try_get("created_at")?),
                updated_at: row.try_get::<Option<i64>, _>("updated_at")?.map(rfc3339),
            })
        })
        .collect()
}
