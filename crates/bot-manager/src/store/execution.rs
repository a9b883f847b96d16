//! What the relay and the workers need: claiming due outbox rows, per-bot leases, the rate
//! windows X reported, and each job's outcome written with its post in one transaction.

use platform::db::Database;
use sqlx::Row;

use super::posts::{JobKind, insert_outbox};
use crate::model::PostState;
use crate::xapi::RateWindow;

/// An outbox row handed to the queue.
#[derive(Debug, Clone)]
pub struct Due {
    pub job_id: String,
    pub dispatch: i64,
    pub bot_id: String,
}

/// Deletes and returns up to `limit` due outbox rows inside `tx`: if the queue refuses
/// them, rolling back puts them back.
pub async fn claim_due(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    db: &Database,
    now: i64,
    limit: i64,
) -> anyhow::Result<Vec<Due>> {
    let sql = format!(
        "DELETE FROM outbox WHERE (job_id, dispatch) IN (SELECT job_id, dispatch FROM outbox \
         WHERE due_at <= $1 ORDER BY due_at LIMIT $2{}) RETURNING job_id, dispatch, bot_id",
        super::skip_locked(db)
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .bind(limit)
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|row| {
            Ok(Due {
                job_id: row.try_get("job_id")?,
                dispatch: row.try_get("dispatch")?,
                bot_id: row.try_get("bot_id")?,
            })
        })
        .collect()
}

/// The earliest outbox row not yet due, to sleep until then.
pub async fn next_due(db: &Database) -> anyhow::Result<Option<i64>> {
    Ok(sqlx::query("SELECT MIN(due_at) AS due FROM outbox")
        .fetch_one(db.pool())
        .await?
        .try_get("due")?)
}

/// Takes the bot's lease for `holder` (unique to this execution) unless a live lease exists,
/// whoever holds it.
pub async fn acquire_lease(
    db: &Database,
    bot_id: &str,
    holder: &str,
    now: i64,
    ttl_ms: i64,
) -> anyhow::Result<bool> {
    let result = sqlx::query(
        "INSERT INTO bot_leases (bot_id, holder, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (bot_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
         WHERE bot_leases.expires_at < $4",
    )
    .bind(bot_id)
    .bind(holder)
    .bind(now + ttl_ms)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(result.rows_affected() == 1)
}

pub async fn release_lease(db: &Database, bot_id: &str, holder: &str) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM bot_leases WHERE bot_id = $1 AND holder = $2")
        .bind(bot_id)
        .bind(holder)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Until when (unix ms) the bot must not call `endpoint`, if a window of it is spent.
pub async fn blocked_until(
    db: &Database,
    bot_id: &str,
    endpoint: &str,
    now: i64,
) -> anyhow::Result<Option<i64>> {
    let row = sqlx::query(
        "SELECT MAX(reset_at) AS until FROM rate_limits WHERE bot_id = $1 \
         AND (endpoint = $2 OR endpoint LIKE $3) AND remaining <= 0 AND reset_at > $4",
    )
    .bind(bot_id)
    .bind(endpoint)
    .bind(format!("{endpoint}:%"))
    .bind(now)
    .fetch_one(db.pool())
    .await?;
    Ok(row.try_get("until")?)
}

/// Saves what X's headers said about the bot's windows.
pub async fn save_windows(
    db: &Database,
    bot_id: &str,
    windows: &[RateWindow],
) -> anyhow::Result<()> {
    for window in windows {
        sqlx::query(
            "INSERT INTO rate_limits (bot_id, endpoint, limit_total, remaining, reset_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (bot_id, endpoint) DO UPDATE SET \
             limit_total = excluded.limit_total, remaining = excluded.remaining, reset_at = excluded.reset_at",
        )
        .bind(bot_id)
        .bind(&window.endpoint)
        .bind(window.limit)
        .bind(window.remaining)
        .bind(window.reset * 1000)
        .execute(db.pool())
        .await?;
    }
    Ok(())
}

/// A job with what its execution needs of the post and the bot.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub job_id: String,
    pub kind: JobKind,
    pub state: String,
    pub attempts: i64,
    pub dispatches: i64,
    pub run_at: i64,
    pub sent_at: Option<i64>,
    pub post_id: String,
    pub post_state: PostState,
    pub text: String,
    pub media_ids: Vec<String>,
    pub x_post_id: Option<String>,
    pub bot_id: String,
    pub bot_status: String,
    pub owner_id: String,
    pub team: Option<String>,
    pub x_user_id: Option<String>,
}

pub async fn load_job(db: &Database, job_id: &str) -> anyhow::Result<Option<JobContext>> {
    let row = sqlx::query(
        "SELECT j.job_id, j.kind, j.state, j.attempts, j.dispatches, j.run_at, j.sent_at, \
         p.post_id, p.state AS post_state, p.text, p.media_ids, p.x_post_id, \
         b.bot_id, b.status AS bot_status, b.owner_id, b.team, b.x_user_id \
         FROM jobs j JOIN posts p ON p.post_id = j.post_id JOIN bots b ON b.bot_id = j.bot_id \
         WHERE j.job_id = $1",
    )
    .bind(job_id)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let kind = match row.try_get::<String, _>("kind")?.as_str() {
        "delete" => JobKind::Delete,
        _ => JobKind::Publish,
    };
    Ok(Some(JobContext {
        job_id: row.try_get("job_id")?,
        kind,
        state: row.try_get("state")?,
        attempts: row.try_get("attempts")?,
        dispatches: row.try_get("dispatches")?,
        run_at: row.try_get("run_at")?,
        sent_at: row.try_get("sent_at")?,
        post_id: row.try_get("post_id")?,
        post_state: PostState::parse(&row.try_get::<String, _>("post_state")?)
            .map_err(|e| anyhow::anyhow!(e.message))?,
        text: row.try_get("text")?,
        media_ids: serde_json::from_str(&row.try_get::<String, _>("media_ids")?)?,
        x_post_id: row.try_get("x_post_id")?,
        bot_id: row.try_get("bot_id")?,
        bot_status: row.try_get("bot_status")?,
        owner_id: row.try_get("owner_id")?,
        team: row.try_get("team")?,
        x_user_id: row.try_get("x_user_id")?,
    }))
}

/// The job is about to call X: the post is publishing (or deleting) and the send time is
/// recorded, so a worker that picks it up after a crash knows to verify first.
pub async fn mark_sending(
    db: &Database,
    job: &JobContext,
    post_state: PostState,
    now: i64,
) -> anyhow::Result<bool> {
    let mut tx = db.pool().begin().await?;
    let moved = sqlx::query(
        "UPDATE jobs SET state = 'running', sent_at = $1, updated_at = $1 \
         WHERE job_id = $2 AND dispatches = $3 AND state IN ('pending', 'running')",
    )
    .bind(now)
    .bind(&job.job_id)
    .bind(job.dispatches)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !moved {
        tx.rollback().await?;
        return Ok(false);
    }
    sqlx::query("UPDATE posts SET state = $1, updated_at = $2 WHERE post_id = $3")
        .bind(post_state.as_str())
        .bind(now)
        .bind(&job.post_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// How a job ends, or when it runs again.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The post is on X (or, for a delete, gone from it).
    Done {
        post_state: PostState,
        x_post_id: Option<String>,
    },
    /// Refused for good.
    Failed {
        post_state: PostState,
        error: String,
    },
    /// Run again at `due_at` as dispatch + 1; `counted` adds an attempt.
    Retry {
        post_state: PostState,
        due_at: i64,
        counted: bool,
        error: String,
    },
    /// Wait until the bot can publish again (paused, needs new credentials).
    Park { post_state: PostState },
    /// Gave up after the last attempt: dead-lettered for a person to look at.
    Dead {
        post_state: PostState,
        error: String,
    },
}

/// Writes the outcome for the job's current dispatch while it is still open; false if the
/// job moved on meanwhile (then nothing is written).
pub async fn finish(
    db: &Database,
    job: &JobContext,
    outcome: &Outcome,
    now: i64,
) -> anyhow::Result<bool> {
    let mut tx = db.pool().begin().await?;
    let (job_state, post_state, counted, error) = match outcome {
        Outcome::Done { post_state, .. } => ("done", *post_state, false, None),
        Outcome::Failed { post_state, error } => ("done", *post_state, false, Some(error.clone())),
        Outcome::Retry {
            post_state,
            counted,
            error,
            ..
        } => ("pending", *post_state, *counted, Some(error.clone())),
        Outcome::Park { post_state } => ("waiting", *post_state, false, None),
        Outcome::Dead { post_state, error } => ("dead", *post_state, true, Some(error.clone())),
    };
    let retry = matches!(outcome, Outcome::Retry { .. });
    let row = sqlx::query(
        "UPDATE jobs SET state = $1, attempts = attempts + $2, dispatches = dispatches + $3, \
         last_error = $4, updated_at = $5 WHERE job_id = $6 AND dispatches = $7 \
         AND state IN ('pending', 'running') RETURNING dispatches",
    )
    .bind(job_state)
    .bind(i64::from(counted))
    .bind(i64::from(retry))
    .bind(&error)
    .bind(now)
    .bind(&job.job_id)
    .bind(job.dispatches)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        tx.rollback().await?;
        return Ok(false);
    };
    let dispatch: i64 = row.try_get("dispatches")?;
    if let Outcome::Retry { due_at, .. } = outcome {
        insert_outbox(&mut tx, &job.job_id, dispatch, &job.bot_id, *due_at).await?;
    }
    match outcome {
        Outcome::Done { x_post_id, .. } => {
            sqlx::query(
                "UPDATE posts SET state = $1, x_post_id = COALESCE($2, x_post_id), error = NULL, \
                 published_at = CASE WHEN $1 = 'published' THEN $3 ELSE published_at END, \
                 version = version + 1, updated_at = $3 WHERE post_id = $4",
            )
            .bind(post_state.as_str())
            .bind(x_post_id)
            .bind(now)
            .bind(&job.post_id)
            .execute(&mut *tx)
            .await?;
        }
        _ => {
            sqlx::query(
                "UPDATE posts SET state = $1, error = $2, version = version + 1, updated_at = $3 \
                 WHERE post_id = $4",
            )
            .bind(post_state.as_str())
            .bind(&error)
            .bind(now)
            .bind(&job.post_id)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(true)
}

/// Ends a job that has nothing left to do (its post was cancelled or already finished).
pub async fn retire(db: &Database, job_id: &str, dispatch: i64, now: i64) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE jobs SET state = 'done', updated_at = $1 WHERE job_id = $2 AND dispatches = $3",
    )
    .bind(now)
    .bind(job_id)
    .bind(dispatch)
    .execute(db.pool())
    .await?;
    Ok(())
}
