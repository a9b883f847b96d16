//! Threads: an ordered list of a bot's posts published as replies to each other. Each part is
//! a post with its own state and X id. The first part's job runs at the thread's time; each
//! later part's job waits until the part before is published (the worker's outcome releases
//! it in the same commit), so a failure midway stops the rest and keeps what was published.
//! Resuming starts again at the first part not on X: published parts are never sent again,
//! and a part whose send may have reached X is looked for on X first.

use platform::auth::Caller;
use platform::{ApiError, ErrorCode};
use serde_json::json;

use super::bots::reachable;
use super::compliance;
use super::posts::{check_quota_for, check_slot, parse_run_at, record_post, writable};
use super::reviews::{self, content_of};
use crate::model::{
    JobState, PostOptions, PostState, ReplySettings, check_media, check_text, new_id, parse_id,
};
use crate::service::BotManager;
use crate::store::bots::BotRow;
use crate::store::history::{self, HistoryEntry};
use crate::store::posts::{self, JobKind, PostRow};
use crate::store::threads::{self, ThreadRow};

/// Most parts in one thread (X's composer allows 25).
pub const MAX_PARTS: usize = 25;

/// One part as asked.
#[derive(Debug)]
pub struct NewPart {
    pub text: String,
    pub media_ids: Vec<String>,
}

#[derive(Debug)]
pub struct NewThread {
    pub parts: Vec<NewPart>,
    /// Who may reply to the first part (X's `reply_settings`).
    pub reply_settings: Option<ReplySettings>,
    /// When to publish (RFC 3339); absent (and not `publish_now`): drafts.
    pub run_at: Option<String>,
    pub publish_now: bool,
}

/// A thread with its parts in order.
pub struct Thread {
    pub thread: ThreadRow,
    pub parts: Vec<PostRow>,
}

fn part_row(bot: &BotRow, caller: &Caller, part: NewPart, now: i64) -> Result<PostRow, ApiError> {
    check_media(&part.media_ids)?;
    let text = check_text(&part.text, !part.media_ids.is_empty())?;
    let ids = (bot.bot_id.as_str(), caller.id());
    Ok(PostRow::draft(
        ids,
        (text, part.media_ids, PostOptions::default()),
        now,
    ))
}

/// On a bot that requires review, a thread goes out only once every part is approved: the
/// parts are submitted and reviewed one by one as drafts, then the thread is scheduled as
/// one (each part's approval pinned to its content, as any post's).
async fn check_reviewed(m: &BotManager, bot: &BotRow, parts: &[PostRow]) -> Result<(), ApiError> {
    let policy = reviews::policy(m, &bot.bot_id, bot.team.as_deref()).await?;
    if !policy.approval_required && !m.live.get().approvals.required {
        return Ok(());
    }
    let waiting: Vec<String> = parts
        .iter()
        .enumerate()
        .filter(|(_, p)| p.approval.is_none())
        .map(|(i, p)| format!("{} ({})", i + 1, p.state.as_str()))
        .collect();
    if waiting.is_empty() {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::Conflict,
        format!(
            "this bot requires review: every part of a thread is approved before it is \
             scheduled; parts {} are not (submit each: POST …/posts/{{post_id}}/submit)",
            waiting.join(", ")
        ),
    ))
}

/// Every part's checks before the thread is armed: review, X's rules per part, the bot's
/// quota.
async fn check_parts(m: &BotManager, bot: &BotRow, parts: &[PostRow]) -> Result<(), ApiError> {
    check_reviewed(m, bot, parts).await?;
    for part in parts {
        compliance::check(m, part).await?;
    }
    check_quota_for(m, &bot.bot_id, parts.len() as i64).await
}

/// Gives the parts their jobs inside the caller's transaction: the first due at `run_at`,
/// the others waiting for the part before.
async fn arm_parts(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    parts: &[PostRow],
    run_at: i64,
    now: i64,
) -> anyhow::Result<()> {
    for (position, part) in parts.iter().enumerate() {
        if position == 0 {
            posts::arm_job(
                tx,
                JobKind::Publish,
                &part.post_id,
                &part.bot_id,
                run_at,
                now,
            )
            .await?;
        } else {
            threads::chain_job(tx, part, run_at, now).await?;
        }
    }
    Ok(())
}

fn created_entry(caller: &Caller, part: &PostRow, now: i64) -> HistoryEntry {
    HistoryEntry {
        at: now,
        actor_id: caller.id().to_string(),
        action: "created".into(),
        content_version: 1,
        comment: None,
        content: Some(content_of(part)),
    }
}

/// Creates a thread of 2 to 25 parts: drafts, scheduled, or to publish now.
pub async fn create(
    m: &BotManager,
    caller: &Caller,
    bot_id: &str,
    new: NewThread,
) -> Result<Thread, ApiError> {
    caller.require("posts:write")?;
    let bot = reachable(m, caller, bot_id).await?;
    writable(&bot)?;
    if !(2..=MAX_PARTS).contains(&new.parts.len()) {
        return Err(ApiError::invalid_data("parts: 2 to 25 posts"));
    }
    let now = m.clock.now_millis();
    let run_at = match (new.publish_now, new.run_at.as_deref()) {
        (true, _) => Some(now),
        (false, Some(raw)) => {
            let at = parse_run_at(raw, now)?;
            check_slot(&bot, at)?;
            Some(at)
        }
        (false, None) => None,
    };
    let mut parts = Vec::with_capacity(new.parts.len());
    for part in new.parts {
        parts.push(part_row(&bot, caller, part, now)?);
    }
    parts[0].options.reply_settings = new.reply_settings;
    if let Some(run_at) = run_at {
        check_parts(m, &bot, &parts).await?;
        for part in &mut parts {
            part.state = PostState::Scheduled;
            part.run_at = Some(run_at);
        }
    }
    let thread = ThreadRow {
        thread_id: new_id(),
        bot_id: bot.bot_id.clone(),
        author_id: caller.id().to_string(),
        created_at: now,
    };
    let mut tx = m.db.pool().begin().await.map_err(anyhow::Error::from)?;
    threads::insert(&mut tx, &thread).await?;
    for (position, part) in parts.iter().enumerate() {
        posts::insert_post(&mut tx, part).await?;
        threads::insert_part(&mut tx, &thread.thread_id, position as i64, &part.post_id).await?;
        history::append(&mut tx, &part.post_id, &created_entry(caller, part, now)).await?;
    }
    if let Some(run_at) = run_at {
        arm_parts(&mut tx, &parts, run_at, now).await?;
    }
    tx.commit().await.map_err(anyhow::Error::from)?;
    if run_at.is_some_and(|at| at <= now) {
        m.relay_wake.notify_one();
    }
    let action = if run_at.is_some() {
        "thread.scheduled"
    } else {
        "thread.drafted"
    };
    record_thread(m, caller, action, (&bot, &thread), parts.len()).await;
    let parts = threads::parts(&m.db, &thread.thread_id).await?;
    Ok(Thread { thread, parts })
}

async fn record_thread(
    m: &BotManager,
    caller: &Caller,
    action: &str,
    (bot, thread): (&BotRow, &ThreadRow),
    parts: usize,
) {
    m.record(
        crate::service::Actor::Caller(caller),
        action,
        bot,
        &thread.thread_id,
        json!({"parts": parts}),
    )
    .await;
}

/// The thread and its bot, if the caller reaches the bot.
async fn reachable_thread(
    m: &BotManager,
    caller: &Caller,
    (bot_id, thread_id): (&str, &str),
) -> Result<(BotRow, Thread), ApiError> {
    let bot = reachable(m, caller, bot_id).await?;
    let thread_id = parse_id(thread_id, "thread")?;
    let thread = threads::get(&m.db, &bot.bot_id, &thread_id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such thread"))?;
    let parts = threads::parts(&m.db, &thread.thread_id).await?;
    Ok((bot, Thread { thread, parts }))
}

pub async fn get(m: &BotManager, caller: &Caller, ids: (&str, &str)) -> Result<Thread, ApiError> {
    caller.require("bots:read")?;
    Ok(reachable_thread(m, caller, ids).await?.1)
}

/// Schedules a thread of drafts (or reschedules one that has not started) for `run_at`;
/// `None`: now.
pub async fn schedule(
    m: &BotManager,
    caller: &Caller,
    ids: (&str, &str),
    run_at: Option<&str>,
) -> Result<Thread, ApiError> {
    caller.require("posts:write")?;
    let (bot, Thread { thread, mut parts }) = reachable_thread(m, caller, ids).await?;
    writable(&bot)?;
    // Parts in review have not started either: the review check says what they wait for.
    if let Some(started) = parts.iter().find(|p| !p.state.is_editable()) {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "a part is {}; only a thread that has not started is scheduled (resume a \
                 stopped one)",
                started.state.as_str()
            ),
        ));
    }
    let now = m.clock.now_millis();
    let at = match run_at {
        Some(raw) => {
            let at = parse_run_at(raw, now)?;
            check_slot(&bot, at)?;
            at
        }
        None => now,
    };
    check_parts(m, &bot, &parts).await?;
    let mut tx = m.db.pool().begin().await.map_err(anyhow::Error::from)?;
    for part in &mut parts {
        part.state = PostState::Scheduled;
        part.run_at = Some(at);
        if !posts::update_content(&mut tx, part, now).await? {
            tx.rollback().await.map_err(anyhow::Error::from)?;
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "a part changed meanwhile; read the thread again",
            ));
        }
    }
    arm_parts(&mut tx, &parts, at, now).await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    if at <= now {
        m.relay_wake.notify_one();
    }
    record_thread(m, caller, "thread.scheduled", (&bot, &thread), parts.len()).await;
    let parts = threads::parts(&m.db, &thread.thread_id).await?;
    Ok(Thread { thread, parts })
}

/// Cancels every part not yet published; what is on X stays.
pub async fn cancel(
    m: &BotManager,
    caller: &Caller,
    ids: (&str, &str),
) -> Result<Thread, ApiError> {
    caller.require("posts:write")?;
    let (bot, Thread { thread, parts }) = reachable_thread(m, caller, ids).await?;
    if parts
        .iter()
        .any(|p| matches!(p.state, PostState::Publishing | PostState::Unknown))
    {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "a part is being sent to X; cancel once it settles",
        ));
    }
    let now = m.clock.now_millis();
    let mut tx = m.db.pool().begin().await.map_err(anyhow::Error::from)?;
    let waiting: Vec<PostState> = PostState::EDITABLE
        .iter()
        .copied()
        .chain([PostState::Failed, PostState::Missed])
        .collect();
    for part in &parts {
        if posts::transition(&mut tx, &part.post_id, &waiting, PostState::Cancelled, now).await? {
            posts::disarm_job(&mut tx, JobKind::Publish, &part.post_id, now).await?;
        }
    }
    tx.commit().await.map_err(anyhow::Error::from)?;
    record_thread(m, caller, "thread.cancelled", (&bot, &thread), parts.len()).await;
    let parts = threads::parts(&m.db, &thread.thread_id).await?;
    Ok(Thread { thread, parts })
}

/// Resumes a thread that stopped at a failed part: that part runs again now (looked for on X
/// first if its send may have got there) and the parts after it follow; parts on X are not
/// sent again.
pub async fn resume(
    m: &BotManager,
    caller: &Caller,
    ids: (&str, &str),
) -> Result<Thread, ApiError> {
    caller.require("posts:write")?;
    let (bot, Thread { thread, parts }) = reachable_thread(m, caller, ids).await?;
    writable(&bot)?;
    let Some(stopped) = parts.iter().find(|p| p.state != PostState::Published) else {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "every part is published",
        ));
    };
    let job = posts::job_state(&m.db, JobKind::Publish, &stopped.post_id).await?;
    let resumable = match stopped.state {
        PostState::Failed | PostState::Missed => true,
        PostState::Unknown => job == Some(JobState::Dead),
        _ => false,
    };
    if !resumable {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "the first part not on X is {}; only a thread stopped at a failed part resumes",
                stopped.state.as_str()
            ),
        ));
    }
    let unsent: Vec<PostRow> = parts
        .iter()
        .filter(|p| p.state != PostState::Published)
        .cloned()
        .collect();
    check_reviewed(m, &bot, &unsent).await?;
    compliance::check_cashtags(&stopped.text)?;
    let now = m.clock.now_millis();
    let mut tx = m.db.pool().begin().await.map_err(anyhow::Error::from)?;
    let back_to = if stopped.state == PostState::Unknown {
        PostState::Unknown
    } else {
        PostState::Scheduled
    };
    posts::transition(&mut tx, &stopped.post_id, &[stopped.state], back_to, now).await?;
    threads::rearm_keeping_sent(&mut tx, stopped, now).await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    m.relay_wake.notify_one();
    record_post(
        m,
        caller,
        "thread.resumed",
        (&bot, stopped),
        json!({"thread_id": thread.thread_id}),
    )
    .await;
    let parts = threads::parts(&m.db, &thread.thread_id).await?;
    Ok(Thread { thread, parts })
}

/// Refuses acting on one part of a thread alone where the thread must act as one.
pub async fn refuse_part(m: &BotManager, post: &PostRow, what: &str) -> Result<(), ApiError> {
    match threads::thread_of(&m.db, &post.post_id).await? {
        Some(thread_id) => Err(ApiError::new(
            ErrorCode::Conflict,
            format!("this post is part of thread {thread_id}; {what} the thread instead"),
        )),
        None => Ok(()),
    }
}
