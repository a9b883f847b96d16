//! Claims on content right before it is sent: one bot per near-duplicate fingerprint within
//! the duplicate window, taken atomically (the primary key decides between two workers).

use platform::db::Database;
use sqlx::Row;

/// Whose claim the content is under after an attempt to take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    Ours,
    /// Another bot's post took it within the window.
    Held {
        bot_id: String,
        post_id: String,
    },
}

/// Takes the claim on `fingerprint` for the bot's post, unless another bot took it at or
/// after `since`.
pub async fn take(
    db: &Database,
    fingerprint: &str,
    (bot_id, post_id): (&str, &str),
    (now, since): (i64, i64),
) -> anyhow::Result<Claim> {
    let taken = sqlx::query(
        "INSERT INTO content_claims (fingerprint, bot_id, post_id, claimed_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (fingerprint) DO UPDATE SET \
         bot_id = excluded.bot_id, post_id = excluded.post_id, claimed_at = excluded.claimed_at \
         WHERE content_claims.bot_id = excluded.bot_id OR content_claims.claimed_at < $5 \
         RETURNING post_id",
    )
    .bind(fingerprint)
    .bind(bot_id)
    .bind(post_id)
    .bind(now)
    .bind(since)
    .fetch_optional(db.pool())
    .await?;
    if taken.is_some() {
        return Ok(Claim::Ours);
    }
    let holder = sqlx::query("SELECT bot_id, post_id FROM content_claims WHERE fingerprint = $1")
        .bind(fingerprint)
        .fetch_one(db.pool())
        .await?;
    Ok(Claim::Held {
        bot_id: holder.try_get("bot_id")?,
        post_id: holder.try_get("post_id")?,
    })
}

/// Takes over a claim whose holder's post never reached X (refused, cancelled, missed), if
/// that post still holds it; false if someone else took it meanwhile.
pub async fn take_over(
    db: &Database,
    fingerprint: &str,
    holder_post_id: &str,
    (bot_id, post_id): (&str, &str),
    now: i64,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE content_claims SET bot_id = $1, post_id = $2, claimed_at = $3 \
         WHERE fingerprint = $4 AND post_id = $5",
    )
    .bind(bot_id)
    .bind(post_id)
    .bind(now)
    .bind(fingerprint)
    .bind(holder_post_id)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}
