//! Threads and their parts (each part a post), and the jobs that chain them: a later part's
//! job waits (no outbox row) until the part before is published, when the worker's outcome
//! releases it in the same commit (`execution::finish`).

use platform::db::Database;
use sqlx::{Any, Row, Transaction};

use super::posts::{self, JobKind, PostRow, row_to_post};

#[derive(Debug, Clone)]
pub struct ThreadRow {
    pub thread_id: String,
    pub bot_id: String,
    pub author_id: String,
    pub created_at: i64,
}

pub async fn insert(tx: &mut Transaction<'_, Any>, thread: &ThreadRow) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO threads (thread_id, bot_id, author_id, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&thread.thread_id)
    .bind(&thread.bot_id)
    .bind(&thread.author_id)
    .bind(thread.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn insert_part(
    tx: &mut Transaction<'_, Any>,
    thread_id: &str,
    position: i64,
    post_id: &str,
) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO thread_parts (thread_id, position, post_id) VALUES ($1, $2, $3)")
        .bind(thread_id)
        .bind(position)
        .bind(post_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn get(
    db: &Database,
    bot_id: &str,
    thread_id: &str,
) -> anyhow::Result<Option<ThreadRow>> {
    let row = sqlx::query(
        "SELECT thread_id, bot_id, author_id, created_at FROM threads \
         WHERE thread_id = $1 AND bot_id = $2",
    )
    .bind(thread_id)
    .bind(bot_id)
    .fetch_optional(db.pool())
    .await?;
    row.map(|row| {
        Ok(ThreadRow {
            thread_id: row.try_get("thread_id")?,
            bot_id: row.try_get("bot_id")?,
            author_id: row.try_get("author_id")?,
            created_at: row.try_get("created_at")?,
        })
    })
    .transpose()
}

/// The thread's parts, in order.
pub async fn parts(db: &Database, thread_id: &str) -> anyhow::Result<Vec<PostRow>> {
    sqlx::query(
        "SELECT p.* FROM thread_parts t JOIN posts p ON p.post_id = t.post_id \
         WHERE t.thread_id = $1 ORDER BY t.position",
    )
    .bind(thread_id)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(row_to_post)
    .collect()
}

/// The thread a post is part of, if any.
pub async fn thread_of(db: &Database, post_id: &str) -> anyhow::Result<Option<String>> {
    let row = sqlx::query("SELECT thread_id FROM thread_parts WHERE post_id = $1")
        .bind(post_id)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.map(|row| row.try_get("thread_id")).transpose()?)
}

/// Gives a later part its publish job, waiting for the part before (no outbox row); an
/// earlier job of the part becomes stale.
pub async fn chain_job(
    tx: &mut Transaction<'_, Any>,
    post: &PostRow,
    run_at: i64,
    now: i64,
) -> anyhow::Result<()> {
    let ids = (post.post_id.as_str(), post.bot_id.as_str());
    posts::reset_job(tx, JobKind::Publish, ids, "waiting", (run_at, now)).await?;
    Ok(())
}

/// Runs a part's job again now, from a fresh count of attempts but keeping when it was last
/// sent: a part whose send may have reached X is looked for on X before it is sent again.
pub async fn rearm_keeping_sent(
    tx: &mut Transaction<'_, Any>,
    post: &PostRow,
    now: i64,
) -> anyhow::Result<()> {
    let job_id = JobKind::Publish.job_id(&post.post_id);
    let row = sqlx::query(
        "UPDATE jobs SET state = 'pending', attempts = 0, dispatches = dispatches + 1, \
         run_at = $1, last_error = NULL, updated_at = $1 WHERE job_id = $2 RETURNING dispatches",
    )
    .bind(now)
    .bind(&job_id)
    .fetch_optional(&mut **tx)
    .await?;
    match row {
        Some(row) => {
            sqlx::query("DELETE FROM outbox WHERE job_id = $1")
                .bind(&job_id)
                .execute(&mut **tx)
                .await?;
            let dispatch: i64 = row.try_get("dispatches")?;
            posts::insert_outbox(tx, &job_id, dispatch, &post.bot_id, now).await
        }
        None => posts::arm_job(tx, JobKind::Publish, &post.post_id, &post.bot_id, now, now).await,
    }
}
