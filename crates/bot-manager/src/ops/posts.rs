//! Operations on posts: create (idempotent with a key), edit or cancel until publishing
//! starts, schedule, publish now, and delete a published post from X. Every state change that
//! leads to X writes the post, its job and an outbox row in one transaction, then wakes the
//! relay if the job is due. Where the bot requires review (`reviews`), a post asked to go out
//! waits in `pending_review` instead, and any change of content voids an approval.

use platform::auth::Caller;
use platform::{ApiError, ErrorCode};
use serde::Serialize;
use serde_json::json;

use super::bots::reachable;
use super::compliance;
use super::reviews::{self, approved_as_is, content_of, next_state};
use super::threads;
use crate::fingerprint::{fingerprint, sha256_hex};
use crate::model::{
    BotStatus, Poll, PostOptions, PostState, PostingSlot, ReplySettings, check_media,
    check_options, check_text, parse_id,
};
use crate::service::{Actor, BotManager};
use crate::store::bots::BotRow;
use crate::store::history::{self, HistoryEntry};
use crate::store::posts::{self, JobKind, PostRow};

/// How far ahead a post may be scheduled.
const MAX_AHEAD_MS: i64 = 366 * 86_400_000;
/// How far in the past a run_at may be (clock skew) before it is refused.
const PAST_TOLERANCE_MS: i64 = 60_000;

/// A post to create, as asked. Its serialized form, with the bot, is what an idempotency
/// key is bound to.
#[derive(Debug, Serialize)]
pub struct NewPost {
    pub text: String,
    pub media_ids: Vec<String>,
    pub options: PostOptions,
    /// When to publish (RFC 3339); absent: a draft.
    pub run_at: Option<String>,
    /// Publish as soon as possible (overrides run_at).
    pub publish_now: bool,
}

/// What an edit changes; `None` leaves it as it is.
#[derive(Debug, Default)]
pub struct PostChanges {
    pub text: Option<String>,
    pub media_ids: Option<Vec<String>>,
    /// Each `Some` replaces that option; `Some(None)` removes it.
    pub reply_to_x_post_id: Option<Option<String>>,
    pub quote_x_post_id: Option<Option<String>>,
    pub poll: Option<Option<Poll>>,
    pub reply_settings: Option<Option<ReplySettings>>,
    /// Reschedule (a scheduled post) or schedule (a draft).
    pub run_at: Option<String>,
}

/// A created post, or the one an earlier create with the same key made.
pub enum Created {
    New(PostRow),
    Replayed(PostRow),
}

pub(super) fn parse_run_at(raw: &str, now: i64) -> Result<i64, ApiError> {
    let at = time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            ApiError::invalid_data("run_at: an RFC 3339 time, e.g. 2026-12-01T09:30:00Z")
        })?;
    let ms = (at.unix_timestamp_nanos() / 1_000_000) as i64;
    if ms < now - PAST_TOLERANCE_MS {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "run_at: in the past; use publish to post now",
        ));
    }
    if ms > now + MAX_AHEAD_MS {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "run_at: at most a year ahead",
        ));
    }
    Ok(ms.max(now))
}

pub(super) fn check_slot(bot: &BotRow, run_at: i64) -> Result<(), ApiError> {
    if PostingSlot::allows(&bot.posting_slots, &bot.time_zone, run_at) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!(
                "run_at: outside the bot's posting slots (in its time zone, {})",
                bot.time_zone
            ),
        ))
    }
}

pub(super) fn writable(bot: &BotRow) -> Result<(), ApiError> {
    if bot.status == BotStatus::Archived {
        Err(ApiError::new(ErrorCode::Conflict, "the bot is archived"))
    } else {
        Ok(())
    }
}

fn not_editable(post: &PostRow, what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::Conflict,
        format!("a {} post {what}", post.state.as_str()),
    )
}

async fn check_quota(m: &BotManager, bot_id: &str) -> Result<(), ApiError> {
    check_quota_for(m, bot_id, 1).await
}

/// Refuses `adding` more pending posts where the bot would pass the most allowed.
pub(super) async fn check_quota_for(
    m: &BotManager,
    bot_id: &str,
    adding: i64,
) -> Result<(), ApiError> {
    let pending = posts::count_pending(&m.db, bot_id).await?;
    if pending + adding > m.settings.max_pending_posts_per_bot {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the bot has the most pending posts allowed; wait or cancel some",
        ));
    }
    Ok(())
}

/// The post and its bot, if the caller reaches the bot.
pub(super) async fn reachable_post(
    m: &BotManager,
    caller: &Caller,
    bot_id: &str,
    post_id: &str,
) -> Result<(BotRow, PostRow), ApiError> {
    let bot = reachable(m, caller, bot_id).await?;
    let post_id = parse_id(post_id, "post")?;
    let post = posts::get(&m.db, &bot.bot_id, &post_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such post"))?;
    Ok((bot, post))
}

/// A post whose bot the caller reaches and is not archived (each operation checks its own
/// permission first).
pub(super) async fn writable_post_of(
    m: &BotManager,
    caller: &Caller,
    (bot_id, post_id): (&str, &str),
) -> Result<(BotRow, PostRow), ApiError> {
    let (bot, post) = reachable_post(m, caller, bot_id, post_id).await?;
    writable(&bot)?;
    Ok((bot, post))
}

/// The activity record of a change to a post of `bot`, with what else `details` says.
pub(super) async fn record_post(
    m: &BotManager,
    caller: &Caller,
    action: &str,
    (bot, post): (&BotRow, &PostRow),
    details: serde_json::Value,
) {
    m.record(Actor::Caller(caller), action, bot, &post.post_id, details)
        .await;
}

async fn reload(m: &BotManager, post: &PostRow) -> Result<PostRow, ApiError> {
    posts::get(&m.db, &post.bot_id, &post.post_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such post"))
}

/// What an earlier create with the same key made: the same post, or 422 if this request
/// differs.
async fn replay(
    m: &BotManager,
    bot_id: &str,
    hash: &str,
    (stored_hash, post_id): (String, String),
) -> Result<Created, ApiError> {
    if stored_hash != hash {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "Idempotency-Key was already used with a different request",
        ));
    }
    let post = posts::get(&m.db, bot_id, &post_id).await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::ValidationFailed,
            "Idempotency-Key was already used for another bot",
        )
    })?;
    Ok(Created::Replayed(post))
}

/// The post a create makes, every rule checked.
async fn new_post_row(
    m: &BotManager,
    caller: &Caller,
    bot: &BotRow,
    new: NewPost,
) -> Result<PostRow, ApiError> {
    check_media(&new.media_ids)?;
    check_options(&new.options, !new.media_ids.is_empty())?;
    let text = check_text(&new.text, !new.media_ids.is_empty())?;
    let now = m.clock.now_millis();
    let run_at = if new.publish_now {
        Some(now)
    } else {
        new.run_at
            .as_deref()
            .map(|r| parse_run_at(r, now))
            .transpose()?
    };
    let ids = (bot.bot_id.as_str(), caller.id());
    let mut post = PostRow::draft(ids, (text, new.media_ids, new.options), now);
    post.run_at = run_at;
    if let Some(run_at) = run_at {
        if !new.publish_now {
            check_slot(bot, run_at)?;
        }
        compliance::check(m, &post).await?;
        check_quota(m, &bot.bot_id).await?;
        let policy = reviews::policy(m, &bot.bot_id, bot.team.as_deref()).await?;
        post.state = next_state(PostState::Draft, policy.approval_required, true, true);
    }
    Ok(post)
}

/// The options an edit names, replaced or removed; the others kept.
fn apply_option_changes(options: &mut PostOptions, changes: &PostChanges) {
    if let Some(reply) = &changes.reply_to_x_post_id {
        options.reply_to_x_post_id = reply.clone();
    }
    if let Some(quote) = &changes.quote_x_post_id {
        options.quote_x_post_id = quote.clone();
    }
    if let Some(poll) = &changes.poll {
        options.poll = poll.clone();
    }
    if let Some(settings) = changes.reply_settings {
        options.reply_settings = settings;
    }
}

/// Arms the post's publish job for `run_at`, inside the caller's transaction.
pub(super) async fn arm_publish(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    post: &PostRow,
    run_at: i64,
    now: i64,
) -> anyhow::Result<()> {
    posts::arm_job(
        tx,
        JobKind::Publish,
        &post.post_id,
        &post.bot_id,
        run_at,
        now,
    )
    .await
}

/// A post due by `now` wakes the relay, so it goes out without waiting for the relay's next
/// look.
pub(super) fn wake_relay_if_due(m: &BotManager, post: &PostRow, now: i64) {
    if post.run_at.is_some_and(|at| at <= now) {
        m.relay_wake.notify_one();
    }
}

/// Writes a new post inside the caller's transaction: the post, its publish job when it is
/// scheduled, and its first history entry (`action`: `created`, `imported`).
pub(super) async fn insert_with_history(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    post: &PostRow,
    (actor_id, action): (&str, &str),
    now: i64,
) -> anyhow::Result<()> {
    posts::insert_post(tx, post).await?;
    if let (PostState::Scheduled, Some(run_at)) = (post.state, post.run_at) {
        arm_publish(tx, post, run_at, now).await?;
    }
    let entry = HistoryEntry {
        at: now,
        actor_id: actor_id.to_string(),
        action: action.to_string(),
        content_version: post.content_version,
        comment: None,
        content: Some(content_of(post)),
    };
    history::append(tx, &post.post_id, &entry).await
}

/// Writes a new post with its job and its idempotency key in one transaction. `false`:
/// a concurrent request with the same key committed first.
async fn insert_new(
    m: &BotManager,
    caller: &Caller,
    post: &PostRow,
    key: Option<(&str, &str)>,
) -> Result<bool, ApiError> {
    let now = post.created_at;
    let mut tx = m.db.pool().begin().await.map_err(anyhow::Error::from)?;
    insert_with_history(&mut tx, post, (caller.id(), "created"), now).await?;
    if let Some((key, hash)) = key
        && let Err(err) =
            posts::insert_idempotency_key(&mut tx, caller.id(), key, hash, &post.post_id, now).await
    {
        tx.rollback().await.map_err(anyhow::Error::from)?;
        if crate::store::is_unique_violation(&err) {
            return Ok(false);
        }
        return Err(anyhow::Error::from(err).into());
    }
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(true)
}

/// Creates a post: a draft, scheduled or to publish now. With an idempotency key, a retried
/// create answers the first one's post.
pub async fn create(
    m: &BotManager,
    caller: &Caller,
    bot_id: &str,
    key: Option<&str>,
    new: NewPost,
) -> Result<Created, ApiError> {
    caller.require("posts:write")?;
    let bot = reachable(m, caller, bot_id).await?;
    writable(&bot)?;
    let canonical = format!(
        "{}\n{}",
        bot.bot_id,
        serde_json::to_string(&new).unwrap_or_default()
    );
    let hash = sha256_hex(canonical.as_bytes());
    if let Some(key) = key
        && let Some(found) = posts::idempotent_post(&m.db, caller.id(), key).await?
    {
        return replay(m, &bot.bot_id, &hash, found).await;
    }
    let post = new_post_row(m, caller, &bot, new).await?;
    if !insert_new(m, caller, &post, key.map(|k| (k, hash.as_str()))).await? {
        // A concurrent create with the same key committed first: answer as it did.
        let key = key.expect("only an idempotency key collides");
        return match posts::idempotent_post(&m.db, caller.id(), key).await? {
            Some(found) => replay(m, &bot.bot_id, &hash, found).await,
            None => Err(ApiError::internal(
                "an idempotency key collided but cannot be read back",
            )),
        };
    }
    wake_relay_if_due(m, &post, post.created_at);
    m.record(
        Actor::Caller(caller),
        match post.state {
            PostState::Scheduled => "post.scheduled",
            PostState::PendingReview => "post.submitted",
            _ => "post.drafted",
        },
        &bot,
        &post.post_id,
        json!({"run_at": post.run_at.map(platform::time_fmt::rfc3339_from_millis)}),
    )
    .await;
    Ok(Created::New(reload(m, &post).await?))
}

/// A bot's posts, oldest first, optionally in one state.
pub async fn list(
    m: &BotManager,
    caller: &Caller,
    bot_id: &str,
    state: Option<PostState>,
    cursor: Option<&str>,
    limit: i64,
) -> Result<Vec<PostRow>, ApiError> {
    caller.require("bots:read")?;
    let bot = reachable(m, caller, bot_id).await?;
    Ok(posts::list(&m.db, &bot.bot_id, state, cursor, limit).await?)
}

/// What a calendar query asks, as given.
#[derive(Debug, Default)]
pub struct CalendarQuery {
    /// RFC 3339, inclusive; absent: from the start.
    pub from: Option<String>,
    /// RFC 3339, exclusive; absent: without end.
    pub to: Option<String>,
    pub states: Vec<PostState>,
    pub team: Option<String>,
    pub bot_id: Option<String>,
    /// `<time ms>.<post id>` from the previous page.
    pub cursor: Option<String>,
    pub limit: i64,
}

fn parse_time(raw: &str, field: &str) -> Result<i64, ApiError> {
    let at = time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map_err(|_| ApiError::invalid_data(format!("{field}: an RFC 3339 time")))?;
    Ok((at.unix_timestamp_nanos() / 1_000_000) as i64)
}

fn parse_cursor(raw: &str) -> Result<(i64, String), ApiError> {
    let bad = || ApiError::invalid_data("cursor: the next_cursor of the previous page");
    let (at, post_id) = raw.split_once('.').ok_or_else(bad)?;
    let at = at.parse().map_err(|_| bad())?;
    Ok((at, parse_id(post_id, "post").map_err(|_| bad())?))
}

/// Posts across the bots the caller reaches, by when they are (or were) due — or when
/// created, for those without a time — with keyset paging: the calendar, and the review
/// queue (`state=pending_review`). Each comes with its page key.
pub async fn calendar(
    m: &BotManager,
    caller: &Caller,
    query: CalendarQuery,
) -> Result<Vec<(String, PostRow)>, ApiError> {
    caller.require("bots:read")?;
    if let Some(team) = &query.team {
        platform::auth::check_team_name(team)?;
    }
    let bot_id = query
        .bot_id
        .as_deref()
        .map(|b| parse_id(b, "bot"))
        .transpose()?;
    let from = query
        .from
        .as_deref()
        .map(|f| parse_time(f, "from"))
        .transpose()?;
    let to = query
        .to
        .as_deref()
        .map(|t| parse_time(t, "to"))
        .transpose()?;
    let after = query.cursor.as_deref().map(parse_cursor).transpose()?;
    let calendar = posts::Calendar {
        reach: caller.reach(),
        from: from.unwrap_or(i64::MIN),
        to: to.unwrap_or(i64::MAX),
        states: &query.states,
        team: query.team.as_deref(),
        bot_id: bot_id.as_deref(),
        after: after.as_ref().map(|(at, id)| (*at, id.as_str())),
        limit: query.limit,
    };
    let rows = posts::calendar(&m.db, &calendar).await?;
    Ok(rows
        .into_iter()
        .map(|(at, post)| (format!("{at}.{}", post.post_id), post))
        .collect())
}

pub async fn get(
    m: &BotManager,
    caller: &Caller,
    bot_id: &str,
    post_id: &str,
) -> Result<PostRow, ApiError> {
    caller.require("bots:read")?;
    Ok(reachable_post(m, caller, bot_id, post_id).await?.1)
}

/// One change of a post as its history records it, and the state it changed from.
pub(super) struct Step {
    pub was: PostState,
    pub entry: HistoryEntry,
}

/// Writes a changed post (content, state, time, approval) with its history entry in one
/// transaction, arming its publish job when it is scheduled and disarming the one it had
/// otherwise; a post going to `scheduled` passes the compliance checks first. 409 if it
/// changed meanwhile or its publishing started.
pub(super) async fn save(
    m: &BotManager,
    post: PostRow,
    mut step: Step,
) -> Result<PostRow, ApiError> {
    let now = m.clock.now_millis();
    if post.state == PostState::Scheduled {
        compliance::check(m, &post).await?;
    }
    let mut tx = m.db.pool().begin().await.map_err(anyhow::Error::from)?;
    if !posts::update_content(&mut tx, &post, now).await? {
        tx.rollback().await.map_err(anyhow::Error::from)?;
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the post changed meanwhile or its publishing has started; read it again",
        ));
    }
    match (post.state, post.run_at) {
        (PostState::Scheduled, Some(run_at)) => arm_publish(&mut tx, &post, run_at, now).await?,
        _ if step.was == PostState::Scheduled => {
            posts::disarm_job(&mut tx, JobKind::Publish, &post.post_id, now).await?
        }
        _ => {}
    }
    step.entry.at = now;
    history::append(&mut tx, &post.post_id, &step.entry).await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    wake_relay_if_due(m, &post, now);
    reload(m, &post).await
}

/// What an edit or a new time does to a post.
struct Change<'a> {
    action: &'a str,
    content_changed: bool,
    run_at: Option<i64>,
}

/// Routes a changed post under its bot's review policy and saves it: a change of content
/// voids an approval (and bumps the content version); a post that needs review goes to
/// `pending_review` instead of `scheduled`.
async fn route_and_save(
    m: &BotManager,
    caller: &Caller,
    bot: &BotRow,
    mut post: PostRow,
    change: Change<'_>,
) -> Result<PostRow, ApiError> {
    let was = post.state;
    if change.content_changed {
        post.content_version += 1;
    }
    if let Some(run_at) = change.run_at {
        post.run_at = Some(run_at);
    }
    if !approved_as_is(&post) {
        post.approval = None;
    }
    let policy = reviews::policy(m, &bot.bot_id, bot.team.as_deref()).await?;
    let needs_review = policy.approval_required && post.approval.is_none();
    post.state = next_state(
        was,
        needs_review,
        change.content_changed,
        change.run_at.is_some(),
    );
    post.error = None;
    let entry = HistoryEntry {
        // `save` stamps the time it commits.
        at: 0,
        actor_id: caller.id().to_string(),
        action: change.action.to_string(),
        content_version: post.content_version,
        comment: None,
        content: change.content_changed.then(|| content_of(&post)),
    };
    save(m, post, Step { was, entry }).await
}

/// A post an author may change: `posts:write`, not publishing yet, and (with `If-Match`) at
/// the version they read.
async fn editable_post(
    m: &BotManager,
    caller: &Caller,
    ids: (&str, &str),
    expected_version: Option<i64>,
    what: &str,
) -> Result<(BotRow, PostRow), ApiError> {
    caller.require("posts:write")?;
    let (bot, post) = writable_post_of(m, caller, ids).await?;
    if expected_version.is_some_and(|expected| expected != post.version) {
        return Err(ApiError::new(
            ErrorCode::PreconditionFailed,
            "the post changed since you read it; read it again",
        ));
    }
    if !post.state.is_editable() {
        return Err(not_editable(&post, what));
    }
    Ok((bot, post))
}

/// Edits a post until publishing starts; `expected_version` (`If-Match`) refuses a stale
/// edit. A change of content after approval sends the post back to review.
pub async fn update(
    m: &BotManager,
    caller: &Caller,
    ids: (&str, &str),
    expected_version: Option<i64>,
    changes: PostChanges,
) -> Result<PostRow, ApiError> {
    let (bot, mut post) =
        editable_post(m, caller, ids, expected_version, "can no longer be edited").await?;
    let before = content_of(&post);
    if let Some(media) = &changes.media_ids {
        check_media(media)?;
        post.media_ids = media.clone();
    }
    apply_option_changes(&mut post.options, &changes);
    check_options(&post.options, !post.media_ids.is_empty())?;
    if let Some(text) = &changes.text {
        post.text = check_text(text, !post.media_ids.is_empty())?;
        post.fingerprint = fingerprint(&post.text);
    }
    let run_at = changes
        .run_at
        .as_deref()
        .map(|r| parse_run_at(r, m.clock.now_millis()))
        .transpose()?;
    if let Some(run_at) = run_at {
        threads::refuse_part(m, &post, "schedule").await?;
        check_slot(&bot, run_at)?;
    }
    let change = Change {
        action: "edited",
        content_changed: content_of(&post) != before,
        run_at,
    };
    let post = route_and_save(m, caller, &bot, post, change).await?;
    record_post(m, caller, "post.edited", (&bot, &post), json!({})).await;
    Ok(post)
}

/// Schedules (or reschedules) a post; one that needs review goes to review with that time.
pub async fn schedule(
    m: &BotManager,
    caller: &Caller,
    ids: (&str, &str),
    run_at: &str,
) -> Result<PostRow, ApiError> {
    let (bot, post) = editable_post(m, caller, ids, None, "cannot be scheduled").await?;
    threads::refuse_part(m, &post, "schedule").await?;
    let at = parse_run_at(run_at, m.clock.now_millis())?;
    check_slot(&bot, at)?;
    let change = Change {
        action: "scheduled",
        content_changed: false,
        run_at: Some(at),
    };
    let post = route_and_save(m, caller, &bot, post, change).await?;
    let action = match post.state {
        PostState::PendingReview => "post.submitted",
        _ => "post.scheduled",
    };
    record_post(m, caller, action, (&bot, &post), json!({"run_at": run_at})).await;
    Ok(post)
}

/// How far ahead "add to queue" looks for a free slot.
const QUEUE_HORIZON_DAYS: i64 = 8 * 7;

/// Adds a post to the bot's queue: schedules it at the start of the bot's next posting slot
/// (on the bot's wall clock) that no other post of the bot holds; where it needs review, it
/// goes to review with that time.
pub async fn queue(
    m: &BotManager,
    caller: &Caller,
    ids: (&str, &str),
) -> Result<PostRow, ApiError> {
    let (bot, post) = editable_post(m, caller, ids, None, "cannot be queued").await?;
    threads::refuse_part(m, &post, "schedule").await?;
    let now = m.clock.now_millis();
    let windows =
        PostingSlot::occurrences(&bot.posting_slots, &bot.time_zone, now, QUEUE_HORIZON_DAYS);
    let (Some(first), Some(last)) = (windows.first(), windows.last()) else {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the bot has no posting slots; schedule the post at a time instead",
        ));
    };
    let taken = posts::times_taken(&m.db, &bot.bot_id, (first.0, last.1), &post.post_id).await?;
    let Some((start, _)) = windows
        .iter()
        .find(|(start, end)| !taken.iter().any(|t| (*start..*end).contains(t)))
    else {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "every posting slot of the bot in the next 8 weeks holds a post",
        ));
    };
    let change = Change {
        action: "queued",
        content_changed: false,
        run_at: Some(*start),
    };
    let post = route_and_save(m, caller, &bot, post, change).await?;
    let at = platform::time_fmt::rfc3339_from_millis(*start);
    record_post(
        m,
        caller,
        "post.queued",
        (&bot, &post),
        json!({"run_at": at}),
    )
    .await;
    Ok(post)
}

/// Publishes a post now (or, where it needs review, asks for review to go out once approved).
pub async fn publish(
    m: &BotManager,
    caller: &Caller,
    ids: (&str, &str),
) -> Result<PostRow, ApiError> {
    let (bot, post) = editable_post(m, caller, ids, None, "cannot be published again").await?;
    threads::refuse_part(m, &post, "publish").await?;
    let change = Change {
        action: "publish_requested",
        content_changed: false,
        run_at: Some(m.clock.now_millis()),
    };
    let post = route_and_save(m, caller, &bot, post, change).await?;
    let action = match post.state {
        PostState::PendingReview => "post.submitted",
        _ => "post.publish_requested",
    };
    record_post(m, caller, action, (&bot, &post), json!({})).await;
    Ok(post)
}

/// Sends a failed post again, now (or to review first, where its bot requires review and
/// its approval no longer holds): X refused it or its attempts ran out, and a person chose
/// to try again. Only `failed`: a post whose fate on X is `unknown` may be there already.
pub async fn retry(
    m: &BotManager,
    caller: &Caller,
    ids: (&str, &str),
) -> Result<PostRow, ApiError> {
    caller.require("posts:write")?;
    let (bot, post) = writable_post_of(m, caller, ids).await?;
    if post.state != PostState::Failed {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "only a failed post can be sent again; this one is {}",
                post.state.as_str()
            ),
        ));
    }
    threads::refuse_part(m, &post, "resume").await?;
    let change = Change {
        action: "retry_requested",
        content_changed: false,
        run_at: Some(m.clock.now_millis()),
    };
    let post = route_and_save(m, caller, &bot, post, change).await?;
    record_post(m, caller, "post.retry_requested", (&bot, &post), json!({})).await;
    Ok(post)
}

/// Cancels a post that has not started publishing, inside the caller's transaction: its
/// state, its job, its history entry. False if it had started (or ended).
pub(super) async fn cancel_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    post: &PostRow,
    actor_id: &str,
    now: i64,
) -> anyhow::Result<bool> {
    let cancelled = posts::transition(
        tx,
        &post.post_id,
        &PostState::EDITABLE,
        PostState::Cancelled,
        now,
    )
    .await?;
    if !cancelled {
        return Ok(false);
    }
    posts::disarm_job(tx, JobKind::Publish, &post.post_id, now).await?;
    let entry = HistoryEntry {
        at: now,
        actor_id: actor_id.to_string(),
        action: "cancelled".into(),
        content_version: post.content_version,
        comment: None,
        content: None,
    };
    history::append(tx, &post.post_id, &entry).await?;
    Ok(true)
}

/// Cancels a post until publishing starts.
pub async fn cancel(
    m: &BotManager,
    caller: &Caller,
    (bot_id, post_id): (&str, &str),
) -> Result<PostRow, ApiError> {
    caller.require("posts:write")?;
    let (bot, post) = reachable_post(m, caller, bot_id, post_id).await?;
    threads::refuse_part(m, &post, "cancel").await?;
    let now = m.clock.now_millis();
    let mut tx = m.db.pool().begin().await.map_err(anyhow::Error::from)?;
    if !cancel_in(&mut tx, &post, caller.id(), now).await? {
        tx.rollback().await.map_err(anyhow::Error::from)?;
        let current = reload(m, &post).await?;
        return Err(not_editable(&current, "can no longer be cancelled"));
    }
    tx.commit().await.map_err(anyhow::Error::from)?;
    record_post(m, caller, "post.cancelled", (&bot, &post), json!({})).await;
    reload(m, &post).await
}

/// Deletes a published post from X, asynchronously: the post goes `deleting`, then
/// `deleted`.
pub async fn delete(
    m: &BotManager,
    caller: &Caller,
    (bot_id, post_id): (&str, &str),
) -> Result<PostRow, ApiError> {
    caller.require("posts:write")?;
    let (bot, post) = writable_post_of(m, caller, (bot_id, post_id)).await?;
    let now = m.clock.now_millis();
    let mut tx = m.db.pool().begin().await.map_err(anyhow::Error::from)?;
    let deleting = posts::transition(
        &mut tx,
        &post.post_id,
        &[PostState::Published],
        PostState::Deleting,
        now,
    )
    .await?;
    if !deleting {
        tx.rollback().await.map_err(anyhow::Error::from)?;
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "only a published post is deleted from X; this one is {} (cancel a draft or scheduled post instead)",
                post.state.as_str()
            ),
        ));
    }
    posts::arm_job(
        &mut tx,
        JobKind::Delete,
        &post.post_id,
        &post.bot_id,
        now,
        now,
    )
    .await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    m.relay_wake.notify_one();
    record_post(
        m,
        caller,
        "post.delete_requested",
        (&bot, &post),
        json!({"x_post_id": post.x_post_id}),
    )
    .await;
    reload(m, &post).await
}
