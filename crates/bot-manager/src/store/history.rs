//! A post's history: who wrote, edited, submitted, approved or asked for changes, when, on
//! which content version, with the reviewer's comment and each content change's content.

use platform::db::Database;
use sqlx::{Any, Row, Transaction};

use crate::model::new_id;

#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub at: i64,
    pub actor_id: String,
    pub action: String,
    pub content_version: i64,
    pub comment: Option<String>,
    /// For a content change: the content as it became (JSON: text, media_ids, options).
    pub content: Option<serde_json::Value>,
}

/// Appends an entry inside the change's own transaction, so the history never misses a
/// change nor names one that was rolled back.
pub async fn append(
    tx: &mut Transaction<'_, Any>,
    post_id: &str,
    entry: &HistoryEntry,
) -> anyhow::Result<()> {
    let content = entry
        .content
        .as_ref()
        .map(serde_json::to_string)
        .transpose()?;
    sqlx::query(
        "INSERT INTO post_history (history_id, post_id, at, actor_id, action, content_version, \
         comment, content) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(new_id())
    .bind(post_id)
    .bind(entry.at)
    .bind(&entry.actor_id)
    .bind(&entry.action)
    .bind(entry.content_version)
    .bind(&entry.comment)
    .bind(content)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The post's history, oldest first.
pub async fn list(db: &Database, post_id: &str) -> anyhow::Result<Vec<HistoryEntry>> {
    sqlx::query(
        "SELECT at, actor_id, action, content_version, comment, content FROM post_history \
         WHERE post_id = $1 ORDER BY history_id",
    )
    .bind(post_id)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|row| {
        let content: Option<String> = row.try_get("content")?;
        Ok(HistoryEntry {
            at: row.try_get("at")?,
            actor_id: row.try_get("actor_id")?,
            action: row.try_get("action")?,
            content_version: row.try_get("content_version")?,
            comment: row.try_get("comment")?,
            content: content.map(|c| serde_json::from_str(&c)).transpose()?,
        })
    })
    .collect()
}

/// Whether `actor_id` wrote any version of the post's content (created or edited it).
pub async fn wrote_content(db: &Database, post_id: &str, actor_id: &str) -> anyhow::Result<bool> {
    Ok(sqlx::query(
        "SELECT 1 AS found FROM post_history WHERE post_id = $1 AND actor_id = $2 \
         AND content IS NOT NULL LIMIT 1",
    )
    .bind(post_id)
    .bind(actor_id)
    .fetch_optional(db.pool())
    .await?
    .is_some())
}
