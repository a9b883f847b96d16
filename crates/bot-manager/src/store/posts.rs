//! Posts, the jobs that act on X for them, and the outbox that hands due jobs to the queue.
//! A post's state change, its job and its outbox row are written in one transaction, so a
//! job is never lost between the database and the queue.

use platform::db::Database;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::model::{PostOptions, PostState};

#[derive(Debug, Clone)]
pub struct PostRow {
    pub post_id: String,
    pub bot_id: String,
    pub author_id: String,
    pub text: String,
    pub media_ids: Vec<String>,
    pub options: PostOptions,
    pub fingerprint: String,
    pub state: PostState,
    pub run_at: Option<i64>,
    pub x_post_id: Option<String>,
    pub error: Option<String>,
    pub version: i64,
    /// Bumped by every change of what would be sent to X (not by a new time).
    pub content_version: i64,
    pub approval: Option<Approval>,
    pub created_at: i64,
    pub updated_at: i64,
    pub published_at: Option<i64>,
}

impl PostRow {
    /// A new draft of the bot's by `author_id`, its content already checked.
    pub fn draft(
        (bot_id, author_id): (&str, &str),
        (text, media_ids, options): (String, Vec<String>, PostOptions),
        now: i64,
    ) -> Self {
        Self {
            post_id: crate::model::new_id(),
            bot_id: bot_id.to_string(),
            author_id: author_id.to_string(),
            fingerprint: crate::fingerprint::fingerprint(&text),
            text,
            media_ids,
            options,
            state: PostState::Draft,
            run_at: None,
            x_post_id: None,
            error: None,
            version: 1,
            content_version: 1,
            approval: None,
            created_at: now,
            updated_at: now,
            published_at: None,
        }
    }
}

/// Who approved a post's content, when, pinned to the hash of the content they saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub content_hash: String,
    pub by: String,
    pub at: i64,
}

pub fn row_to_post(row: &AnyRow) -> anyhow::Result<PostRow> {
    Ok(PostRow {
        post_id: row.try_get("post_id")?,
        bot_id: row.try_get("bot_id")?,
        author_id: row.try_get("author_id")?,
        text: row.try_get("text")?,
        media_ids: serde_json::from_str(&row.try_get::<String, _>("media_ids")?)?,
        options: serde_json::from_str(&row.try_get::<String, _>("x_options")?)?,
        fingerprint: row.try_get("fingerprint")?,
        state: PostState::parse(&row.try_get::<String, _>("state")?)
            .map_err(|e| anyhow::anyhow!(e.message))?,
        run_at: row.try_get("run_at")?,
        x_post_id: row.try_get("x_post_id")?,
        error: row.try_get("error")?,
        version: row.try_get("version")?,
        content_version: row.try_get("content_version")?,
        approval: approval_of(row)?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        published_at: row.try_get("published_at")?,
    })
}

fn approval_of(row: &AnyRow) -> anyhow::Result<Option<Approval>> {
    let hash: Option<String> = row.try_get("approved_hash")?;
    let Some(content_hash) = hash else {
        return Ok(None);
    };
    Ok(Some(Approval {
        content_hash,
        by: row
            .try_get::<Option<String>, _>("approved_by")?
            .unwrap_or_default(),
        at: row
            .try_get::<Option<i64>, _>("approved_at")?
            .unwrap_or_default(),
    }))
}

/// Which action a job performs on X.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Publish,
    Delete,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Publish => "publish",
            Self::Delete => "delete",
        }
    }

    pub fn job_id(self, post_id: &str) -> String {
        format!("{post_id}.{}", self.as_str())
    }
}

pub async fn insert_post(tx: &mut Transaction<'_, Any>, post: &PostRow) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO posts (post_id, bot_id, author_id, text, media_ids, x_options, fingerprint, \
         state, run_at, version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $10)",
    )
    .bind(&post.post_id)
    .bind(&post.bot_id)
    .bind(&post.author_id)
    .bind(&post.text)
    .bind(serde_json::to_string(&post.media_ids)?)
    .bind(serde_json::to_string(&post.options)?)
    .bind(&post.fingerprint)
    .bind(post.state.as_str())
    .bind(post.run_at)
    .bind(post.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn get(db: &Database, bot_id: &str, post_id: &str) -> anyhow::Result<Option<PostRow>> {
    sqlx::query("SELECT * FROM posts WHERE post_id = $1 AND bot_id = $2")
        .bind(post_id)
        .bind(bot_id)
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(row_to_post)
        .transpose()
}

pub async fn list(
    db: &Database,
    bot_id: &str,
    state: Option<PostState>,
    after: Option<&str>,
    limit: i64,
) -> anyhow::Result<Vec<PostRow>> {
    let after = after.unwrap_or("");
    let rows =
        match state {
            Some(state) => {
                sqlx::query(
                    "SELECT * FROM posts WHERE bot_id = $1 AND state = $2 AND post_id > $3 \
                 ORDER BY post_id LIMIT $4",
                )
                .bind(bot_id)
                .bind(state.as_str())
                .bind(after)
                .bind(limit)
                .fetch_all(db.pool())
                .await?
            }
            None => sqlx::query(
                "SELECT * FROM posts WHERE bot_id = $1 AND post_id > $2 ORDER BY post_id LIMIT $3",
            )
            .bind(bot_id)
            .bind(after)
            .bind(limit)
            .fetch_all(db.pool())
            .await?,
        };
    rows.iter().map(row_to_post).collect()
}

/// A post's state and text fingerprint, whichever bot it is of.
pub async fn state_and_fingerprint(
    db: &Database,
    post_id: &str,
) -> anyhow::Result<Option<(PostState, String)>> {
    let row = sqlx::query("SELECT state, fingerprint FROM posts WHERE post_id = $1")
        .bind(post_id)
        .fetch_optional(db.pool())
        .await?;
    row.map(|row| {
        let state = PostState::parse(&row.try_get::<String, _>("state")?)
            .map_err(|e| anyhow::anyhow!(e.message))?;
        Ok((state, row.try_get("fingerprint")?))
    })
    .transpose()
}

/// The state of the post's job of that kind, if it has one.
pub async fn job_state(
    db: &Database,
    kind: JobKind,
    post_id: &str,
) -> anyhow::Result<Option<crate::model::JobState>> {
    let row = sqlx::query("SELECT state FROM jobs WHERE job_id = $1")
        .bind(kind.job_id(post_id))
        .fetch_optional(db.pool())
        .await?;
    row.map(|row| crate::model::JobState::parse(&row.try_get::<String, _>("state")?))
        .transpose()
}

/// A query across bots: the posts whose time — `run_at`, or when created for one without —
/// falls in `[from, to)`, of the bots `reach` covers, oldest first by that time.
pub struct Calendar<'a> {
    pub reach: platform::auth::Reach<'a>,
    pub from: i64,
    pub to: i64,
    /// Empty: every state.
    pub states: &'a [PostState],
    pub team: Option<&'a str>,
    pub bot_id: Option<&'a str>,
    /// The key (time, post id) of the last post of the previous page.
    pub after: Option<(i64, &'a str)>,
    pub limit: i64,
}

/// The posts a calendar query finds, each with its time (the page's key).
pub async fn calendar(db: &Database, q: &Calendar<'_>) -> anyhow::Result<Vec<(i64, PostRow)>> {
    let (user, team) = match q.reach {
        platform::auth::Reach::All => (None, None),
        platform::auth::Reach::Member { user_id, team } => (Some(user_id), team),
    };
    // State names come from the enum, never from the request.
    let states = if q.states.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = q
            .states
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        format!(" AND p.state IN ({})", names.join(", "))
    };
    let (after_at, after_id) = q.after.unwrap_or((i64::MIN, ""));
    let sql = format!(
        "SELECT p.*, COALESCE(p.run_at, p.created_at) AS sort_at FROM posts p \
         JOIN bots b ON b.bot_id = p.bot_id \
         WHERE ($1 IS NULL OR b.owner_id = $1 OR (b.team IS NOT NULL AND b.team = $2)) \
         AND ($3 IS NULL OR b.team = $3) AND ($4 IS NULL OR p.bot_id = $4) \
         AND COALESCE(p.run_at, p.created_at) >= $5 AND COALESCE(p.run_at, p.created_at) < $6 \
         AND (COALESCE(p.run_at, p.created_at) > $7 \
              OR (COALESCE(p.run_at, p.created_at) = $7 AND p.post_id > $8)){states} \
         ORDER BY sort_at, p.post_id LIMIT $9"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(user)
        .bind(team)
        .bind(q.team)
        .bind(q.bot_id)
        .bind(q.from)
        .bind(q.to)
        .bind(after_at)
        .bind(after_id)
        .bind(q.limit)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|row| Ok((row.try_get("sort_at")?, row_to_post(row)?)))
        .collect()
}

/// When the bot's other posts that hold a time go out (or went), within `[from, to)`: those
/// scheduled, waiting for review with a time, being sent or published.
pub async fn times_taken(
    db: &Database,
    bot_id: &str,
    (from, to): (i64, i64),
    except_post: &str,
) -> anyhow::Result<Vec<i64>> {
    sqlx::query(
        "SELECT run_at FROM posts WHERE bot_id = $1 AND run_at >= $2 AND run_at < $3 \
         AND post_id <> $4 AND state IN ('pending_review', 'scheduled', 'publishing', \
         'published', 'unknown')",
    )
    .bind(bot_id)
    .bind(from)
    .bind(to)
    .bind(except_post)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|row| Ok(row.try_get("run_at")?))
    .collect()
}

/// Posts of the bot still waiting to be published.
pub async fn count_pending(db: &Database, bot_id: &str) -> anyhow::Result<i64> {
    Ok(sqlx::query(
        "SELECT COUNT(*) AS n FROM posts WHERE bot_id = $1 AND state IN ('scheduled', 'publishing', 'unknown')",
    )
    .bind(bot_id)
    .fetch_one(db.pool())
    .await?
    .try_get("n")?)
}

/// Whether another bot has near-identical text that was or will be posted since `since`.
pub async fn duplicate_elsewhere(
    db: &Database,
    fingerprint: &str,
    bot_id: &str,
    since: i64,
) -> anyhow::Result<bool> {
    Ok(sqlx::query(
        "SELECT 1 AS found FROM posts WHERE fingerprint = $1 AND bot_id <> $2 AND created_at >= $3 \
         AND state IN ('scheduled', 'publishing', 'published', 'unknown') LIMIT 1",
    )
    .bind(fingerprint)
    .bind(bot_id)
    .bind(since)
    .fetch_optional(db.pool())
    .await?
    .is_some())
}

/// Rewrites a post that has not started publishing (its content, state, time and approval)
/// if it is still at `version` and editable (or failed: a retry); false otherwise. Every
/// edit, review, scheduling and retry goes through here, so the version check serializes them.
pub async fn update_content(
    tx: &mut Transaction<'_, Any>,
    post: &PostRow,
    now: i64,
) -> anyhow::Result<bool> {
    let approval = post.approval.as_ref();
    let result = sqlx::query(
        "UPDATE posts SET text = $1, media_ids = $2, x_options = $3, fingerprint = $4, \
         state = $5, run_at = $6, content_version = $7, approved_hash = $8, approved_by = $9, \
         approved_at = $10, error = $11, version = version + 1, updated_at = $12 \
         WHERE post_id = $13 AND version = $14 AND state IN \
         ('draft', 'pending_review', 'approved', 'changes_requested', 'scheduled', 'failed')",
    )
    .bind(&post.text)
    .bind(serde_json::to_string(&post.media_ids)?)
    .bind(serde_json::to_string(&post.options)?)
    .bind(&post.fingerprint)
    .bind(post.state.as_str())
    .bind(post.run_at)
    .bind(post.content_version)
    .bind(approval.map(|a| a.content_hash.as_str()))
    .bind(approval.map(|a| a.by.as_str()))
    .bind(approval.map(|a| a.at))
    .bind(&post.error)
    .bind(now)
    .bind(&post.post_id)
    .bind(post.version)
    .execute(&mut **tx)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Moves a post between states if it is in one of `from`; false otherwise.
pub async fn transition(
    tx: &mut Transaction<'_, Any>,
    post_id: &str,
    from: &[PostState],
    to: PostState,
    now: i64,
) -> anyhow::Result<bool> {
    let states: Vec<String> = from.iter().map(|s| format!("'{}'", s.as_str())).collect();
    let sql = format!(
        "UPDATE posts SET state = $1, version = version + 1, updated_at = $2 \
         WHERE post_id = $3 AND state IN ({})",
        states.join(", ")
    );
    let result = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(to.as_str())
        .bind(now)
        .bind(post_id)
        .execute(&mut **tx)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Creates the post's job of that kind, or re-arms it, and writes its outbox row due at
/// `due_at`. Earlier dispatches of the job become stale: workers ignore them.
pub async fn arm_job(
    tx: &mut Transaction<'_, Any>,
    kind: JobKind,
    post_id: &str,
    bot_id: &str,
    run_at: i64,
    now: i64,
) -> anyhow::Result<()> {
    let job_id = kind.job_id(post_id);
    let dispatch = reset_job(tx, kind, (post_id, bot_id), "pending", (run_at, now)).await?;
    insert_outbox(tx, &job_id, dispatch, bot_id, run_at).await
}

/// Creates the post's job of that kind in `state` from a fresh count of attempts, or resets
/// the one it has (its earlier dispatches become stale and their outbox rows go); the new
/// dispatch number.
pub async fn reset_job(
    tx: &mut Transaction<'_, Any>,
    kind: JobKind,
    (post_id, bot_id): (&str, &str),
    state: &str,
    (run_at, now): (i64, i64),
) -> anyhow::Result<i64> {
    let job_id = kind.job_id(post_id);
    let dispatch: i64 = sqlx::query(
        "INSERT INTO jobs (job_id, post_id, bot_id, kind, state, attempts, dispatches, run_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 0, 1, $6, $7, $7) \
         ON CONFLICT (job_id) DO UPDATE SET state = excluded.state, attempts = 0, \
         dispatches = jobs.dispatches + 1, run_at = excluded.run_at, sent_at = NULL, \
         last_error = NULL, updated_at = excluded.updated_at \
         RETURNING dispatches",
    )
    .bind(&job_id)
    .bind(post_id)
    .bind(bot_id)
    .bind(kind.as_str())
    .bind(state)
    .bind(run_at)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?
    .try_get("dispatches")?;
    sqlx::query("DELETE FROM outbox WHERE job_id = $1")
        .bind(&job_id)
        .execute(&mut **tx)
        .await?;
    Ok(dispatch)
}

pub async fn insert_outbox(
    tx: &mut Transaction<'_, Any>,
    job_id: &str,
    dispatch: i64,
    bot_id: &str,
    due_at: i64,
) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO outbox (job_id, dispatch, bot_id, due_at) VALUES ($1, $2, $3, $4)")
        .bind(job_id)
        .bind(dispatch)
        .bind(bot_id)
        .bind(due_at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Stops the post's job (cancelled before it ran): its dispatches become stale.
pub async fn disarm_job(
    tx: &mut Transaction<'_, Any>,
    kind: JobKind,
    post_id: &str,
    now: i64,
) -> anyhow::Result<()> {
    let job_id = kind.job_id(post_id);
    sqlx::query(
        "UPDATE jobs SET state = 'done', dispatches = dispatches + 1, updated_at = $1 WHERE job_id = $2",
    )
    .bind(now)
    .bind(&job_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM outbox WHERE job_id = $1")
        .bind(&job_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// An earlier create with this idempotency key: its request hash and post id.
pub async fn idempotent_post(
    db: &Database,
    owner_id: &str,
    key: &str,
) -> anyhow::Result<Option<(String, String)>> {
    let row = sqlx::query(
        "SELECT request_hash, post_id FROM idempotency_keys WHERE owner_id = $1 AND idempotency_key = $2",
    )
    .bind(owner_id)
    .bind(key)
    .fetch_optional(db.pool())
    .await?;
    row.map(|r| Ok((r.try_get("request_hash")?, r.try_get("post_id")?)))
        .transpose()
}

/// Records the key with the post in the post's transaction. A unique violation means a
/// concurrent request with the same key won.
pub async fn insert_idempotency_key(
    tx: &mut Transaction<'_, Any>,
    owner_id: &str,
    key: &str,
    request_hash: &str,
    post_id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO idempotency_keys (owner_id, idempotency_key, request_hash, post_id, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(owner_id)
    .bind(key)
    .bind(request_hash)
    .bind(post_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Re-arms the bot's jobs that waited while it could not publish (paused, needing new
/// credentials); each gets a fresh outbox row, due at its run_at or now.
pub async fn release_waiting_jobs(db: &Database, bot_id: &str, now: i64) -> anyhow::Result<usize> {
    let mut tx = db.pool().begin().await?;
    let rows = sqlx::query(
        "UPDATE jobs SET state = 'pending', dispatches = dispatches + 1, updated_at = $1 \
         WHERE bot_id = $2 AND state = 'waiting' RETURNING job_id, dispatches, run_at",
    )
    .bind(now)
    .bind(bot_id)
    .fetch_all(&mut *tx)
    .await?;
    for row in &rows {
        let job_id: String = row.try_get("job_id")?;
        let dispatch: i64 = row.try_get("dispatches")?;
        let run_at: i64 = row.try_get("run_at")?;
        insert_outbox(&mut tx, &job_id, dispatch, bot_id, run_at.max(now)).await?;
    }
    tx.commit().await?;
    Ok(rows.len())
}

/// Whose publications a posting window counts.
#[derive(Debug, Clone, Copy)]
pub enum Publisher<'a> {
    Bot(&'a str),
    /// Every bot of an X app.
    App(&'a str),
}

/// When the `limit`-th most recent publication within `window_ms` before `now` (of a bot, or
/// of an app's bots) leaves that window; `None` while fewer than `limit` were published in
/// it, or when `limit` is 0 (not checked).
pub async fn window_frees_at(
    db: &Database,
    publisher: Publisher<'_>,
    (limit, window_ms): (i64, i64),
    now: i64,
) -> anyhow::Result<Option<i64>> {
    if limit <= 0 {
        return Ok(None);
    }
    let (sql, key) = match publisher {
        Publisher::Bot(bot_id) => (
            "SELECT published_at FROM posts WHERE bot_id = $1 AND published_at > $2 \
             ORDER BY published_at DESC LIMIT 1 OFFSET $3",
            bot_id,
        ),
        Publisher::App(app) => (
            "SELECT p.published_at FROM posts p JOIN bots b ON b.bot_id = p.bot_id \
             WHERE b.x_app = $1 AND p.published_at > $2 \
             ORDER BY p.published_at DESC LIMIT 1 OFFSET $3",
            app,
        ),
    };
    let row = sqlx::query(sql)
        .bind(key)
        .bind(now - window_ms)
        .bind(limit - 1)
        .fetch_optional(db.pool())
        .await?;
    let oldest: Option<i64> = row.map(|row| row.try_get("published_at")).transpose()?;
    Ok(oldest.map(|at| at + window_ms))
}
