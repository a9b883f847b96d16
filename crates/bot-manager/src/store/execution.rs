//! What the relay and the workers need: claiming due outbox rows, per-bot leases, the rate
//! windows X reported, and each job's outcome written with its post in one transaction.

use platform::db::{Backend, Database};
use sqlx::Row;

use super::posts::{JobKind, insert_outbox};
use super::usage::{self, Charge, Metered};
use crate::model::{BotStatus, JobState, PostOptions, PostState};
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
        .map(|row| due_of(row, "dispatch"))
        .collect()
}

/// A row's job, its dispatch (in the column named so) and bot.
fn due_of(row: &sqlx::any::AnyRow, dispatch: &str) -> anyhow::Result<Due> {
    Ok(Due {
        job_id: row.try_get("job_id")?,
        dispatch: row.try_get(dispatch)?,
        bot_id: row.try_get("bot_id")?,
    })
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

/// Saves what X's headers said about the bot's windows once one runs low (a tenth or less
/// left): that is when another replica must know before it calls. A roomy window costs no
/// write, and a saved one stops mattering once its reset passes.
pub async fn save_windows(
    db: &Database,
    bot_id: &str,
    windows: &[RateWindow],
) -> anyhow::Result<()> {
    for window in windows.iter().filter(|w| w.remaining * 10 <= w.limit) {
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
    pub state: JobState,
    pub attempts: i64,
    pub dispatches: i64,
    pub run_at: i64,
    pub sent_at: Option<i64>,
    pub post_id: String,
    pub post_state: PostState,
    pub text: String,
    /// The text's near-duplicate fingerprint.
    pub fingerprint: String,
    pub media_ids: Vec<String>,
    pub options: PostOptions,
    pub x_post_id: Option<String>,
    pub bot_id: String,
    pub bot_status: BotStatus,
    pub owner_id: String,
    pub team: Option<String>,
    /// The X app the bot posts through.
    pub app: String,
    pub x_user_id: Option<String>,
    pub blocked_until: Option<i64>,
    /// The hash of the content a reviewer approved, if any.
    pub approved_hash: Option<String>,
    /// Whether the bot's team or the bot itself requires review (the setting is read live).
    pub review_required: bool,
    /// For a part of a thread: its position (0 first).
    pub thread_position: Option<i64>,
    /// For a later part of a thread: the X id of the part before, once published.
    pub part_before_x_id: Option<String>,
    /// For a part of a thread with a part after it: that part's post id, whose job a publish
    /// of this one releases.
    pub next_part_post_id: Option<String>,
}

/// The job with its post and bot, and until when (unix ms) a spent rate window of its
/// endpoint (15-minute or 24-hour) keeps it from calling X.
pub async fn load_job(db: &Database, job_id: &str, now: i64) -> anyhow::Result<Option<JobContext>> {
    let row = sqlx::query(
        "SELECT j.job_id, j.kind, j.state, j.attempts, j.dispatches, j.run_at, j.sent_at, \
         p.post_id, p.state AS post_state, p.text, p.media_ids, p.x_options, p.x_post_id, \
         p.approved_hash, p.fingerprint, \
         (SELECT MAX(v.approval_required) FROM review_policies v \
          WHERE v.scope = 'bot:' || b.bot_id OR v.scope = 'team:' || b.team) AS review_required, \
         (SELECT t.position FROM thread_parts t WHERE t.post_id = p.post_id) AS thread_position, \
         (SELECT q.x_post_id FROM thread_parts t JOIN thread_parts u \
          ON u.thread_id = t.thread_id AND u.position = t.position - 1 \
          JOIN posts q ON q.post_id = u.post_id WHERE t.post_id = p.post_id) AS part_before_x_id, \
         (SELECT u.post_id FROM thread_parts t JOIN thread_parts u \
          ON u.thread_id = t.thread_id AND u.position = t.position + 1 \
          WHERE t.post_id = p.post_id) AS next_part_post_id, \
         b.bot_id, b.status AS bot_status, b.owner_id, b.team, b.x_app, b.x_user_id, \
         (SELECT MAX(r.reset_at) FROM rate_limits r WHERE r.bot_id = j.bot_id \
          AND r.remaining <= 0 AND r.reset_at > $2 \
          AND r.endpoint LIKE CASE WHEN j.kind = 'delete' THEN 'tweets.delete%' ELSE 'tweets.create%' END) \
         AS blocked_until \
         FROM jobs j JOIN posts p ON p.post_id = j.post_id JOIN bots b ON b.bot_id = j.bot_id \
         WHERE j.job_id = $1",
    )
    .bind(job_id)
    .bind(now)
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
        state: JobState::parse(&row.try_get::<String, _>("state")?)?,
        attempts: row.try_get("attempts")?,
        dispatches: row.try_get("dispatches")?,
        run_at: row.try_get("run_at")?,
        sent_at: row.try_get("sent_at")?,
        post_id: row.try_get("post_id")?,
        post_state: PostState::parse(&row.try_get::<String, _>("post_state")?)
            .map_err(|e| anyhow::anyhow!(e.message))?,
        text: row.try_get("text")?,
        fingerprint: row.try_get("fingerprint")?,
        media_ids: serde_json::from_str(&row.try_get::<String, _>("media_ids")?)?,
        options: serde_json::from_str(&row.try_get::<String, _>("x_options")?)?,
        x_post_id: row.try_get("x_post_id")?,
        bot_id: row.try_get("bot_id")?,
        bot_status: BotStatus::parse(&row.try_get::<String, _>("bot_status")?)
            .map_err(|e| anyhow::anyhow!(e.message))?,
        owner_id: row.try_get("owner_id")?,
        team: row.try_get("team")?,
        app: row.try_get("x_app")?,
        x_user_id: row.try_get("x_user_id")?,
        blocked_until: row.try_get("blocked_until")?,
        approved_hash: row.try_get("approved_hash")?,
        review_required: row
            .try_get::<Option<i64>, _>("review_required")?
            .is_some_and(|v| v != 0),
        thread_position: row.try_get("thread_position")?,
        part_before_x_id: row.try_get("part_before_x_id")?,
        next_part_post_id: row.try_get("next_part_post_id")?,
    }))
}

/// Open jobs that were handed to the queue (their current dispatch has no outbox row), are
/// due by `now`, and whose bot no worker holds: the queue may hold their message where no
/// worker will see it before its ack deadline (delivered to a pull that died with a NATS
/// server or a replica). At most `limit`, oldest first.
pub async fn unheld_due(db: &Database, now: i64, limit: i64) -> anyhow::Result<Vec<Due>> {
    sqlx::query(
        "SELECT j.job_id, j.dispatches, j.bot_id FROM jobs j \
         WHERE j.state IN ('pending', 'running') AND j.run_at <= $1 \
         AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.job_id = j.job_id AND o.dispatch = j.dispatches) \
         AND NOT EXISTS (SELECT 1 FROM bot_leases l WHERE l.bot_id = j.bot_id AND l.expires_at > $1) \
         ORDER BY j.run_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|row| due_of(row, "dispatches"))
    .collect()
}

/// After a restore from a backup: every open publish job that was due by `now` may have
/// been sent between the backup and the loss, so it is marked as possibly sent (from its
/// run_at) and the worker looks for the post on X before sending. How many were marked.
pub async fn doubt_due_sends(db: &Database, now: i64) -> anyhow::Result<u64> {
    let done = sqlx::query(
        "UPDATE jobs SET sent_at = run_at WHERE kind = 'publish' \
         AND state IN ('pending', 'running', 'waiting') AND sent_at IS NULL AND run_at <= $1",
    )
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected())
}

/// The job is about to call X: the post is publishing (or deleting) and the send time is
/// recorded, so a worker that picks it up after a crash knows to verify first.
pub async fn mark_sending(
    db: &Database,
    job: &JobContext,
    post_state: PostState,
    now: i64,
) -> anyhow::Result<bool> {
    if db.backend() == Backend::Postgres {
        // One round trip: both updates in one statement.
        let moved = sqlx::query(
            "WITH moved AS (UPDATE jobs SET state = 'running', sent_at = $1, updated_at = $1 \
             WHERE job_id = $2 AND dispatches = $3 AND state IN ('pending', 'running') RETURNING post_id) \
             UPDATE posts SET state = $4, updated_at = $1 WHERE post_id IN (SELECT post_id FROM moved) \
             RETURNING post_id",
        )
        .bind(now)
        .bind(&job.job_id)
        .bind(job.dispatches)
        .bind(post_state.as_str())
        .fetch_optional(db.pool())
        .await?;
        return Ok(moved.is_some());
    }
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
/// job moved on meanwhile (then nothing is written). A post that goes back to `scheduled`
/// was not created by the last send (X refused or never got it), so the send time is
/// cleared: the next attempt need not look for it first.
pub async fn finish(
    db: &Database,
    job: &JobContext,
    (outcome, charge): (&Outcome, Option<&Charge>),
    lease_holder: &str,
    now: i64,
) -> anyhow::Result<bool> {
    let (job_state, post_state, counted, error) = outcome_fields(outcome);
    let retry = matches!(outcome, Outcome::Retry { .. });
    if db.backend() == Backend::Postgres {
        return finish_in_one_statement(db, job, (outcome, charge), lease_holder, now).await;
    }
    let mut tx = db.pool().begin().await?;
    // The bot's lease ends with the outcome, in the same commit.
    sqlx::query("DELETE FROM bot_leases WHERE bot_id = $1 AND holder = $2")
        .bind(&job.bot_id)
        .bind(lease_holder)
        .execute(&mut *tx)
        .await?;
    let row = sqlx::query(
        "UPDATE jobs SET state = $1, attempts = attempts + $2, dispatches = dispatches + $3, \
         last_error = $4, updated_at = $5, \
         sent_at = CASE WHEN $8 = 'scheduled' THEN NULL ELSE sent_at END \
         WHERE job_id = $6 AND dispatches = $7 \
         AND state IN ('pending', 'running') RETURNING dispatches",
    )
    .bind(job_state)
    .bind(i64::from(counted))
    .bind(i64::from(retry))
    .bind(&error)
    .bind(now)
    .bind(&job.job_id)
    .bind(job.dispatches)
    .bind(post_state.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        // Nothing to write, but the lease still ends.
        tx.commit().await?;
        return Ok(false);
    };
    let dispatch: i64 = row.try_get("dispatches")?;
    if let Outcome::Retry { due_at, .. } = outcome {
        insert_outbox(&mut tx, &job.job_id, dispatch, &job.bot_id, *due_at).await?;
    }
    if let Outcome::Done { x_post_id, .. } = outcome {
        write_done(
            &mut tx,
            job,
            (post_state, x_post_id.as_deref(), charge),
            now,
        )
        .await?;
    } else {
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
    tx.commit().await?;
    Ok(true)
}

/// A job that did its work, in the outcome's transaction: the post's new state and X id,
/// the use X bills, and a thread's next part released.
async fn write_done(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    job: &JobContext,
    (post_state, x_post_id, charge): (PostState, Option<&str>, Option<&Charge>),
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE posts SET state = $1, x_post_id = COALESCE($2, x_post_id), error = NULL, \
         published_at = CASE WHEN $1 = 'published' THEN $3 ELSE published_at END, \
         version = version + 1, updated_at = $3 WHERE post_id = $4",
    )
    .bind(post_state.as_str())
    .bind(x_post_id)
    .bind(now)
    .bind(&job.post_id)
    .execute(&mut **tx)
    .await?;
    if let Some(charge) = charge {
        usage::insert(tx, &metered(job, now), charge).await?;
    }
    if post_state == PostState::Published
        && let Some(next) = &job.next_part_post_id
    {
        release_next_part(tx, next, now).await?;
    }
    Ok(())
}

/// The next part of a thread may go now that the part before is published: its waiting job
/// is due at once.
async fn release_next_part(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    next_post_id: &str,
    now: i64,
) -> anyhow::Result<()> {
    let released = sqlx::query(
        "UPDATE jobs SET state = 'pending', dispatches = dispatches + 1, run_at = $1, \
         updated_at = $1 WHERE job_id = $2 AND state = 'waiting' \
         RETURNING job_id, dispatches, bot_id",
    )
    .bind(now)
    .bind(JobKind::Publish.job_id(next_post_id))
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(row) = released {
        let job_id: String = row.try_get("job_id")?;
        let bot_id: String = row.try_get("bot_id")?;
        insert_outbox(tx, &job_id, row.try_get("dispatches")?, &bot_id, now).await?;
    }
    Ok(())
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

/// What an outcome writes: the job's new state, whether it counts as an attempt, the post's
/// state and error.
fn outcome_fields(outcome: &Outcome) -> (&'static str, PostState, bool, Option<String>) {
    let (job_state, post_state, counted, error) = match outcome {
        Outcome::Done { post_state, .. } => (JobState::Done, *post_state, false, None),
        Outcome::Failed { post_state, error } => {
            (JobState::Done, *post_state, false, Some(error.clone()))
        }
        Outcome::Retry {
            post_state,
            counted,
            error,
            ..
        } => (
            JobState::Pending,
            *post_state,
            *counted,
            Some(error.clone()),
        ),
        Outcome::Park { post_state } => (JobState::Waiting, *post_state, false, None),
        Outcome::Dead { post_state, error } => {
            (JobState::Dead, *post_state, true, Some(error.clone()))
        }
    };
    (job_state.as_str(), post_state, counted, error)
}

/// [`finish`] on PostgreSQL in one statement (one round trip instead of six): the lease
/// ends, the job moves if still open, a retry gets its outbox row and the post its state —
/// all or nothing, as in the transaction the other backend uses.
/// A job's charge is metered under its own id: one job, one billed use.
fn metered(job: &JobContext, now: i64) -> Metered<'_> {
    Metered {
        id: &job.job_id,
        bot_id: &job.bot_id,
        team: job.team.as_deref(),
        app: &job.app,
        at: now,
    }
}

async fn finish_in_one_statement(
    db: &Database,
    job: &JobContext,
    (outcome, charge): (&Outcome, Option<&Charge>),
    lease_holder: &str,
    now: i64,
) -> anyhow::Result<bool> {
    let (job_state, post_state, counted, error) = outcome_fields(outcome);
    let (retry, due_at) = match outcome {
        Outcome::Retry { due_at, .. } => (1i64, *due_at),
        _ => (0, 0),
    };
    let x_post_id = match outcome {
        Outcome::Done { x_post_id, .. } => x_post_id.clone(),
        _ => None,
    };
    let row = sqlx::query(
        "WITH lease AS (DELETE FROM bot_leases WHERE bot_id = $1 AND holder = $2), \
         job AS (UPDATE jobs SET state = $3, attempts = attempts + $4, dispatches = dispatches + $5, \
           last_error = $6, updated_at = $7, \
           sent_at = CASE WHEN $11 = 'scheduled' THEN NULL ELSE sent_at END \
           WHERE job_id = $8 AND dispatches = $9 \
           AND state IN ('pending', 'running') RETURNING job_id, dispatches), \
         outbox_row AS (INSERT INTO outbox (job_id, dispatch, bot_id, due_at) \
           SELECT job_id, dispatches, $1, $10 FROM job WHERE $5 = 1 RETURNING job_id), \
         post AS (UPDATE posts SET state = $11, x_post_id = COALESCE($12, x_post_id), error = $6, \
           published_at = CASE WHEN $11 = 'published' THEN $7 ELSE published_at END, \
           version = version + 1, updated_at = $7 \
           WHERE post_id = $13 AND EXISTS (SELECT 1 FROM job) RETURNING post_id), \
         usage_row AS (INSERT INTO usage_events (id, bot_id, team, kind, units, cost_micros, \
           currency, at, app) SELECT $14, $1, $15, $16::text, $17, $18, $19, $7, $20 FROM job \
           WHERE $16::text IS NOT NULL ON CONFLICT (id) DO NOTHING RETURNING id), \
         next_part AS (UPDATE jobs SET state = 'pending', dispatches = dispatches + 1, \
           run_at = $7, updated_at = $7 WHERE job_id = $21 AND state = 'waiting' \
           AND $11 = 'published' AND EXISTS (SELECT 1 FROM job) \
           RETURNING job_id, dispatches, bot_id), \
         next_outbox AS (INSERT INTO outbox (job_id, dispatch, bot_id, due_at) \
           SELECT job_id, dispatches, bot_id, $7 FROM next_part RETURNING job_id) \
         SELECT (SELECT COUNT(*) FROM job) AS written",
    )
    .bind(&job.bot_id)
    .bind(lease_holder)
    .bind(job_state)
    .bind(i64::from(counted))
    .bind(retry)
    .bind(&error)
    .bind(now)
    .bind(&job.job_id)
    .bind(job.dispatches)
    .bind(due_at)
    .bind(post_state.as_str())
    .bind(&x_post_id)
    .bind(&job.post_id)
    .bind(&job.job_id)
    .bind(&job.team)
    .bind(charge.map(|c| c.kind))
    .bind(charge.map(|c| c.units))
    .bind(charge.map(|c| c.cost_micros))
    .bind(charge.map(|c| c.currency.as_str()))
    .bind(&job.app)
    .bind(
        job.next_part_post_id
            .as_deref()
            .map(|next| JobKind::Publish.job_id(next)),
    )
    .fetch_one(db.pool())
    .await?;
    Ok(row.try_get::<i64, _>("written")? == 1)
}
