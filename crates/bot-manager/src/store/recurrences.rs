//! Recurring posts' rules and the occurrences made into posts. Changes of a rule's progress
//! are compare-and-set on its state and `next_occurrence`, so a replica materialising and a
//! person pausing never both win.

use platform::db::Database;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::posts::{PostRow, row_to_post};
use crate::model::ReplySettings;
use crate::recurrence::Rule;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecurrenceState {
    Active,
    Paused,
    /// Its last occurrence was made, or it was ended: nothing more comes of it.
    Ended,
}

impl RecurrenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Ended => "ended",
        }
    }

    fn parse(raw: &str) -> anyhow::Result<Self> {
        Ok(match raw {
            "active" => Self::Active,
            "paused" => Self::Paused,
            "ended" => Self::Ended,
            other => anyhow::bail!("unknown recurrence state {other}"),
        })
    }
}

#[derive(Debug, Clone)]
pub struct RecurrenceRow {
    pub recurrence_id: String,
    pub bot_id: String,
    pub author_id: String,
    pub texts: Vec<String>,
    pub rule: Rule,
    pub reply_settings: Option<ReplySettings>,
    pub state: RecurrenceState,
    pub next_occurrence: i64,
    pub skipped: i64,
    pub refused: i64,
    pub last_refusal: Option<String>,
    pub due_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

fn row_to_recurrence(row: &AnyRow) -> anyhow::Result<RecurrenceRow> {
    Ok(RecurrenceRow {
        recurrence_id: row.try_get("recurrence_id")?,
        bot_id: row.try_get("bot_id")?,
        author_id: row.try_get("author_id")?,
        texts: serde_json::from_str(&row.try_get::<String, _>("texts")?)?,
        rule: serde_json::from_str(&row.try_get::<String, _>("rule")?)?,
        reply_settings: row
            .try_get::<Option<String>, _>("reply_settings")?
            .map(|s| serde_json::from_str(&s))
            .transpose()?,
        state: RecurrenceState::parse(&row.try_get::<String, _>("state")?)?,
        next_occurrence: row.try_get("next_occurrence")?,
        skipped: row.try_get("skipped")?,
        refused: row.try_get("refused")?,
        last_refusal: row.try_get("last_refusal")?,
        due_at: row.try_get("due_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub async fn insert(db: &Database, r: &RecurrenceRow) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO recurrences (recurrence_id, bot_id, author_id, texts, rule, reply_settings, \
         state, next_occurrence, skipped, refused, last_refusal, due_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&r.recurrence_id)
    .bind(&r.bot_id)
    .bind(&r.author_id)
    .bind(serde_json::to_string(&r.texts)?)
    .bind(serde_json::to_string(&r.rule)?)
    .bind(
        r.reply_settings
            .map(|s| serde_json::to_string(&s))
            .transpose()?,
    )
    .bind(r.state.as_str())
    .bind(r.next_occurrence)
    .bind(r.skipped)
    .bind(r.refused)
    .bind(&r.last_refusal)
    .bind(r.due_at)
    .bind(r.created_at)
    .bind(r.updated_at)
    .execute(db.pool())
    .await?;
    Ok(())
}

pub async fn get(
    db: &Database,
    bot_id: &str,
    recurrence_id: &str,
) -> anyhow::Result<Option<RecurrenceRow>> {
    sqlx::query("SELECT * FROM recurrences WHERE recurrence_id = $1 AND bot_id = $2")
        .bind(recurrence_id)
        .bind(bot_id)
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(row_to_recurrence)
        .transpose()
}

/// The bot's rules, oldest first.
pub async fn of_bot(db: &Database, bot_id: &str) -> anyhow::Result<Vec<RecurrenceRow>> {
    sqlx::query("SELECT * FROM recurrences WHERE bot_id = $1 ORDER BY recurrence_id")
        .bind(bot_id)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(row_to_recurrence)
        .collect()
}

const POSTS: &str = "SELECT r.occurrence, p.* FROM recurrence_posts r JOIN posts p \
     ON p.post_id = r.post_id WHERE r.recurrence_id = $1 ORDER BY r.occurrence";

fn occurrence_post(row: &AnyRow) -> anyhow::Result<(i64, PostRow)> {
    Ok((row.try_get("occurrence")?, row_to_post(row)?))
}

/// The occurrences made into posts, by occurrence number.
pub async fn posts(db: &Database, recurrence_id: &str) -> anyhow::Result<Vec<(i64, PostRow)>> {
    sqlx::query(POSTS)
        .bind(recurrence_id)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(occurrence_post)
        .collect()
}

/// The same, inside the caller's transaction (after it changed the rule's state, so no
/// occurrence made meanwhile escapes it).
pub async fn posts_in(
    tx: &mut Transaction<'_, Any>,
    recurrence_id: &str,
) -> anyhow::Result<Vec<(i64, PostRow)>> {
    sqlx::query(POSTS)
        .bind(recurrence_id)
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(occurrence_post)
        .collect()
}

/// Claims up to `limit` active rules due for a look, pushing their next look `after_ms` out
/// so no other replica takes them meanwhile.
pub async fn claim_due(
    db: &Database,
    now: i64,
    after_ms: i64,
    limit: i64,
) -> anyhow::Result<Vec<RecurrenceRow>> {
    let sql = format!(
        "UPDATE recurrences SET due_at = $1 WHERE recurrence_id IN (SELECT recurrence_id FROM \
         recurrences WHERE state = 'active' AND due_at <= $2 ORDER BY due_at LIMIT $3{}) \
         RETURNING *",
        super::skip_locked(db)
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(now + after_ms)
        .bind(now)
        .bind(limit)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(row_to_recurrence)
        .collect()
}

/// Moves an active rule past occurrence `index` (made into `post_id`, or skipped, or refused
/// with `refusal`), inside the caller's transaction; false if the rule moved meanwhile
/// (paused, ended, or another replica made it).
pub async fn advance(
    tx: &mut Transaction<'_, Any>,
    recurrence_id: &str,
    (index, post_id): (i64, Option<&str>),
    (skipped, refusal): (bool, Option<&str>),
    now: i64,
) -> anyhow::Result<bool> {
    let moved = sqlx::query(
        "UPDATE recurrences SET next_occurrence = next_occurrence + 1, \
         skipped = skipped + $1, refused = refused + $2, \
         last_refusal = COALESCE($3, last_refusal), updated_at = $4 \
         WHERE recurrence_id = $5 AND state = 'active' AND next_occurrence = $6",
    )
    .bind(i64::from(skipped))
    .bind(i64::from(refusal.is_some()))
    .bind(refusal)
    .bind(now)
    .bind(recurrence_id)
    .bind(index)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    if let (true, Some(post_id)) = (moved, post_id) {
        sqlx::query(
            "INSERT INTO recurrence_posts (recurrence_id, occurrence, post_id) VALUES ($1, $2, $3)",
        )
        .bind(recurrence_id)
        .bind(index)
        .bind(post_id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(moved)
}

/// Moves the rule from `from` to `to` (and due for a look now); false if it was not in
/// `from`.
pub async fn set_state(
    tx: &mut Transaction<'_, Any>,
    recurrence_id: &str,
    (from, to): (RecurrenceState, RecurrenceState),
    now: i64,
) -> anyhow::Result<bool> {
    let result = sqlx::query(
        "UPDATE recurrences SET state = $1, due_at = $2, updated_at = $2 \
         WHERE recurrence_id = $3 AND state = $4",
    )
    .bind(to.as_str())
    .bind(now)
    .bind(recurrence_id)
    .bind(from.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// The rule's next occurrence goes back to `occurrence` (the first one a pause cancelled).
pub async fn rewind(
    tx: &mut Transaction<'_, Any>,
    recurrence_id: &str,
    occurrence: i64,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE recurrences SET next_occurrence = $1 WHERE recurrence_id = $2")
        .bind(occurrence)
        .bind(recurrence_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Forgets that occurrences were made into posts (a pause cancelled them: resuming makes the
/// ones still ahead again).
pub async fn unlink(
    tx: &mut Transaction<'_, Any>,
    recurrence_id: &str,
    occurrences: &[i64],
) -> anyhow::Result<()> {
    for occurrence in occurrences {
        sqlx::query("DELETE FROM recurrence_posts WHERE recurrence_id = $1 AND occurrence = $2")
            .bind(recurrence_id)
            .bind(occurrence)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
