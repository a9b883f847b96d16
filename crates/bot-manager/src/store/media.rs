//! Media for posts: the description, and the bytes in chunks until the post that carries the
//! medium is published.

use platform::db::Database;
use sqlx::Row;
use sqlx::any::AnyRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaState {
    /// The bytes are here, waiting for a post.
    Stored,
    /// A post carrying it was published; the bytes are gone.
    Published,
}

impl MediaState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stored => "stored",
            Self::Published => "published",
        }
    }
}

#[derive(Debug, Clone)]
pub struct MediaRow {
    pub media_id: String,
    pub bot_id: String,
    pub uploaded_by: String,
    pub media_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub alt_text: Option<String>,
    pub state: MediaState,
    pub x_media_id: Option<String>,
    pub x_expires_at: Option<i64>,
    pub created_at: i64,
    pub published_at: Option<i64>,
}

fn row_to_media(row: &AnyRow) -> anyhow::Result<MediaRow> {
    Ok(MediaRow {
        media_id: row.try_get("media_id")?,
        bot_id: row.try_get("bot_id")?,
        uploaded_by: row.try_get("uploaded_by")?,
        media_type: row.try_get("media_type")?,
        size_bytes: row.try_get("size_bytes")?,
        sha256: row.try_get("sha256")?,
        alt_text: row.try_get("alt_text")?,
        state: match row.try_get::<String, _>("state")?.as_str() {
            "published" => MediaState::Published,
            _ => MediaState::Stored,
        },
        x_media_id: row.try_get("x_media_id")?,
        x_expires_at: row.try_get("x_expires_at")?,
        created_at: row.try_get("created_at")?,
        published_at: row.try_get("published_at")?,
    })
}

/// Stores a medium and its bytes in `chunk_bytes` chunks, in one transaction.
pub async fn insert(
    db: &Database,
    media: &MediaRow,
    bytes: &[u8],
    chunk_bytes: usize,
) -> anyhow::Result<()> {
    let mut tx = db.pool().begin().await?;
    sqlx::query(
        "INSERT INTO media (media_id, bot_id, uploaded_by, media_type, size_bytes, sha256, \
         alt_text, state, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&media.media_id)
    .bind(&media.bot_id)
    .bind(&media.uploaded_by)
    .bind(&media.media_type)
    .bind(media.size_bytes)
    .bind(&media.sha256)
    .bind(&media.alt_text)
    .bind(media.state.as_str())
    .bind(media.created_at)
    .execute(&mut *tx)
    .await?;
    for (index, chunk) in bytes.chunks(chunk_bytes.max(1)).enumerate() {
        sqlx::query("INSERT INTO media_chunks (media_id, chunk, bytes) VALUES ($1, $2, $3)")
            .bind(&media.media_id)
            .bind(index as i64)
            .bind(chunk.to_vec())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn get(db: &Database, bot_id: &str, media_id: &str) -> anyhow::Result<Option<MediaRow>> {
    sqlx::query("SELECT * FROM media WHERE media_id = $1 AND bot_id = $2")
        .bind(media_id)
        .bind(bot_id)
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(row_to_media)
        .transpose()
}

/// The medium's chunks, in order.
pub async fn chunks(db: &Database, media_id: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    sqlx::query("SELECT bytes FROM media_chunks WHERE media_id = $1 ORDER BY chunk")
        .bind(media_id)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|row| Ok(row.try_get::<Vec<u8>, _>("bytes")?))
        .collect()
}

/// Keeps X's id for the uploaded medium, and until when X keeps it.
pub async fn set_x_media(
    db: &Database,
    media_id: &str,
    x_media_id: &str,
    x_expires_at: i64,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE media SET x_media_id = $1, x_expires_at = $2 WHERE media_id = $3")
        .bind(x_media_id)
        .bind(x_expires_at)
        .bind(media_id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// A post carrying these media was published: their bytes are dropped.
pub async fn mark_published(db: &Database, media_ids: &[String], now: i64) -> anyhow::Result<()> {
    let mut tx = db.pool().begin().await?;
    for media_id in media_ids {
        sqlx::query("UPDATE media SET state = 'published', published_at = $1 WHERE media_id = $2")
            .bind(now)
            .bind(media_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM media_chunks WHERE media_id = $1")
            .bind(media_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Deletes a medium and its bytes.
pub async fn delete(db: &Database, media_id: &str) -> anyhow::Result<()> {
    let mut tx = db.pool().begin().await?;
    for sql in [
        "DELETE FROM media_chunks WHERE media_id = $1",
        "DELETE FROM media WHERE media_id = $1",
    ] {
        sqlx::query(sql).bind(media_id).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Whether a post that has not ended yet names the medium.
pub async fn in_use(db: &Database, bot_id: &str, media_id: &str) -> anyhow::Result<bool> {
    let pattern = format!("%{media_id}%");
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM posts WHERE bot_id = $1 AND media_ids LIKE $2 \
         AND state IN ('draft', 'pending_review', 'approved', 'changes_requested', \
         'scheduled', 'publishing', 'unknown')",
    )
    .bind(bot_id)
    .bind(pattern)
    .fetch_one(db.pool())
    .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}
