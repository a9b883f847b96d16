//! Recurring posts: a rule with an end (`recurrence::Rule`) whose occurrences become ordinary
//! posts — reviewed, compliance-checked and published like any other — up to
//! [`HORIZON_MS`] ahead. Occurrences are made once each (the rule's `next_occurrence` moves
//! by compare-and-set), and one whose time passed by more than the grace (`grace_seconds`)
//! before it was made is skipped, never sent late: after a pause, a restart or an outage a
//! rule carries on from the next occurrence instead of firing the missed ones at once.
//!
//! A rule ends when asked to, or by itself once its last occurrence's time has passed.
//! Pausing cancels the occurrences made but not sent and rewinds to the first of them;
//! resuming makes the ones still ahead again. X refuses the same text from one account while
//! the earlier post is up, so a rule whose occurrences would repeat a text is refused.

use platform::auth::Caller;
use platform::{ApiError, ErrorCode};
use serde_json::json;

use super::bots::reachable;
use super::compliance;
use super::posts::{
    cancel_in, check_quota_for, check_slot, insert_with_history, wake_relay_if_due, writable,
};
use super::reviews;
use crate::model::{PostOptions, PostState, ReplySettings, check_text, new_id, parse_id};
use crate::recurrence::{self, MAX_VARIANTS, Occurrence, Rule};
use crate::service::{Actor, BotManager};
use crate::store::bots::{self, BotRow};
use crate::store::posts::PostRow;
use crate::store::recurrences::{self, RecurrenceRow, RecurrenceState};

/// How far ahead occurrences become posts: a week, so the calendar and review see them.
pub const HORIZON_MS: i64 = 7 * 86_400_000;
/// How often a rule is looked at again when nothing else moved it.
pub const LOOK_AGAIN_MS: i64 = 3_600_000;

pub struct NewRecurrence {
    pub texts: Vec<String>,
    pub rule: Rule,
    pub reply_settings: Option<ReplySettings>,
}

/// A rule with the posts made of it, by occurrence number.
pub struct Recurrence {
    pub row: RecurrenceRow,
    pub posts: Vec<(i64, PostRow)>,
    /// When the next occurrence not yet made goes out (unix ms), if any.
    pub next_at: Option<i64>,
    pub total: usize,
}

async fn load(m: &BotManager, bot: &BotRow, row: RecurrenceRow) -> Result<Recurrence, ApiError> {
    let occurrences = row.rule.occurrences(&bot.time_zone)?;
    let next_at = occurrences
        .get(row.next_occurrence as usize)
        .filter(|_| row.state != RecurrenceState::Ended)
        .map(|o| o.at);
    Ok(Recurrence {
        posts: recurrences::posts(&m.db, &row.recurrence_id).await?,
        total: occurrences.len(),
        next_at,
        row,
    })
}

async fn reachable_rule(
    m: &BotManager,
    caller: &Caller,
    (bot_id, recurrence_id): (&str, &str),
) -> Result<(BotRow, RecurrenceRow), ApiError> {
    let bot = reachable(m, caller, bot_id).await?;
    let id = parse_id(recurrence_id, "recurrence")?;
    let row = recurrences::get(&m.db, &bot.bot_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such recurring post"))?;
    Ok((bot, row))
}

/// Every text the rule will send passes X's rules, none repeats, every time is in the bot's
/// slots, and at least one is ahead.
fn check_rule(bot: &BotRow, new: &NewRecurrence, now: i64) -> Result<Vec<Occurrence>, ApiError> {
    if new.texts.is_empty() || new.texts.len() > MAX_VARIANTS {
        return Err(ApiError::invalid_data(
            "texts: 1 to 50 variants, used in turn",
        ));
    }
    let occurrences = new.rule.occurrences(&bot.time_zone)?;
    for occurrence in &occurrences {
        check_text(&recurrence::render(&new.texts, occurrence), false).map_err(|err| {
            ApiError::new(
                err.code,
                format!("occurrence {}: {}", occurrence.index + 1, err.message),
            )
        })?;
        check_slot(bot, occurrence.at)?;
    }
    if let Some((first, again)) = recurrence::first_repeat(&new.texts, &occurrences) {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!(
                "texts: occurrences {first} and {again} would say the same, and X refuses the \
                 same text from one account while the first is up; add {{date}} or {{n}}, give \
                 more variants, or end the rule sooner"
            ),
        ));
    }
    if occurrences.last().is_none_or(|o| o.at < now) {
        return Err(ApiError::invalid_data(
            "rule: every occurrence is in the past",
        ));
    }
    Ok(occurrences)
}

/// Creates a recurring post for the bot and makes its first occurrences.
pub async fn create(
    m: &BotManager,
    caller: &Caller,
    bot_id: &str,
    new: NewRecurrence,
) -> Result<Recurrence, ApiError> {
    caller.require("posts:write")?;
    let bot = reachable(m, caller, bot_id).await?;
    writable(&bot)?;
    let now = m.clock.now_millis();
    check_rule(&bot, &new, now)?;
    let row = RecurrenceRow {
        recurrence_id: new_id(),
        bot_id: bot.bot_id.clone(),
        author_id: caller.id().to_string(),
        texts: new.texts,
        rule: new.rule,
        reply_settings: new.reply_settings,
        state: RecurrenceState::Active,
        next_occurrence: 0,
        skipped: 0,
        refused: 0,
        last_refusal: None,
        due_at: now + LOOK_AGAIN_MS,
        created_at: now,
        updated_at: now,
    };
    recurrences::insert(&m.db, &row).await?;
    let details = json!({"rule": row.rule, "variants": row.texts.len()});
    m.record(
        Actor::Caller(caller),
        "recurrence.created",
        &bot,
        &row.recurrence_id,
        details,
    )
    .await;
    materialise(m, &row).await?;
    get(m, caller, (&bot.bot_id, &row.recurrence_id)).await
}

pub async fn list(
    m: &BotManager,
    caller: &Caller,
    bot_id: &str,
) -> Result<Vec<Recurrence>, ApiError> {
    caller.require("bots:read")?;
    let bot = reachable(m, caller, bot_id).await?;
    let mut out = Vec::new();
    for row in recurrences::of_bot(&m.db, &bot.bot_id).await? {
        out.push(load(m, &bot, row).await?);
    }
    Ok(out)
}

pub async fn get(
    m: &BotManager,
    caller: &Caller,
    ids: (&str, &str),
) -> Result<Recurrence, ApiError> {
    caller.require("bots:read")?;
    let (bot, row) = reachable_rule(m, caller, ids).await?;
    load(m, &bot, row).await
}

fn not_in(row: &RecurrenceRow, what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::Conflict,
        format!("a recurring post that is {} {what}", row.state.as_str()),
    )
}

/// Stops the rule (`to`: paused or ended): the occurrences made but not sent are cancelled;
/// a pause rewinds to the first of them, so resuming makes the ones still ahead again.
async fn stop(
    m: &BotManager,
    caller: &Caller,
    ids: (&str, &str),
    to: RecurrenceState,
) -> Result<(BotRow, RecurrenceRow), ApiError> {
    caller.require("posts:write")?;
    let (bot, row) = reachable_rule(m, caller, ids).await?;
    let now = m.clock.now_millis();
    let id = row.recurrence_id.as_str();
    let mut tx = m.db.pool().begin().await.map_err(anyhow::Error::from)?;
    let mut moved = false;
    for from in [RecurrenceState::Active, RecurrenceState::Paused] {
        if from != to && !moved {
            moved = recurrences::set_state(&mut tx, id, (from, to), now).await?;
        }
    }
    if !moved {
        tx.rollback().await.map_err(anyhow::Error::from)?;
        return Err(not_in(&row, &format!("cannot be {}", to.as_str())));
    }
    let mut cancelled = Vec::new();
    for (occurrence, post) in recurrences::posts_in(&mut tx, id).await? {
        if post.state.is_editable() && cancel_in(&mut tx, &post, caller.id(), now).await? {
            cancelled.push(occurrence);
        }
    }
    if let (RecurrenceState::Paused, Some(first)) = (to, cancelled.first()) {
        recurrences::unlink(&mut tx, id, &cancelled).await?;
        recurrences::rewind(&mut tx, id, *first).await?;
    }
    tx.commit().await.map_err(anyhow::Error::from)?;
    let action = format!("recurrence.{}", to.as_str());
    let details = json!({"cancelled_occurrences": cancelled.len()});
    m.record(
        Actor::Caller(caller),
        &action,
        &bot,
        &row.recurrence_id,
        details,
    )
    .await;
    Ok((bot, row))
}

pub async fn pause(
    m: &BotManager,
    caller: &Caller,
    ids: (&str, &str),
) -> Result<Recurrence, ApiError> {
    stop(m, caller, ids, RecurrenceState::Paused).await?;
    get(m, caller, ids).await
}

/// Ends the rule for good (occurrences made but not sent are cancelled).
pub async fn end(
    m: &BotManager,
    caller: &Caller,
    ids: (&str, &str),
) -> Result<Recurrence, ApiError> {
    stop(m, caller, ids, RecurrenceState::Ended).await?;
    get(m, caller, ids).await
}

/// Resumes a paused rule from now: occurrences whose time passed meanwhile are skipped.
pub async fn resume(
    m: &BotManager,
    caller: &Caller,
    ids: (&str, &str),
) -> Result<Recurrence, ApiError> {
    caller.require("posts:write")?;
    let (bot, row) = reachable_rule(m, caller, ids).await?;
    writable(&bot)?;
    let now = m.clock.now_millis();
    let mut tx = m.db.pool().begin().await.map_err(anyhow::Error::from)?;
    let states = (RecurrenceState::Paused, RecurrenceState::Active);
    if !recurrences::set_state(&mut tx, &row.recurrence_id, states, now).await? {
        tx.rollback().await.map_err(anyhow::Error::from)?;
        return Err(not_in(&row, "cannot be resumed"));
    }
    tx.commit().await.map_err(anyhow::Error::from)?;
    m.record(
        Actor::Caller(caller),
        "recurrence.resumed",
        &bot,
        &row.recurrence_id,
        json!({}),
    )
    .await;
    let row = recurrences::get(&m.db, &bot.bot_id, &row.recurrence_id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such recurring post"))?;
    materialise(m, &row).await?;
    get(m, caller, ids).await
}

/// What became of one occurrence.
enum Made {
    Post(Box<PostRow>),
    Skipped,
    Refused(String),
}

/// One occurrence as a post: the text in turn, X's and our rules checked, review as the bot
/// requires.
async fn occurrence_post(
    m: &BotManager,
    bot: &BotRow,
    row: &RecurrenceRow,
    occurrence: &Occurrence,
    now: i64,
) -> Result<Made, ApiError> {
    let grace_ms = m.live.get().grace_seconds as i64 * 1000;
    if occurrence.at + grace_ms < now {
        return Ok(Made::Skipped);
    }
    let text = check_text(&recurrence::render(&row.texts, occurrence), false)?;
    let options = PostOptions {
        reply_settings: row.reply_settings,
        ..PostOptions::default()
    };
    let mut post = PostRow::draft(
        (&bot.bot_id, &row.author_id),
        (text, Vec::new(), options),
        now,
    );
    post.run_at = Some(occurrence.at);
    if let Err(refused) = compliance::check(m, &post).await {
        return Ok(Made::Refused(refused.message));
    }
    let policy = reviews::policy(m, &bot.bot_id, bot.team.as_deref()).await?;
    post.state = reviews::next_state(PostState::Draft, policy.approval_required, true, true);
    Ok(Made::Post(Box::new(post)))
}

/// Makes the rule's occurrences up to the horizon into posts, skipping those long past; the
/// rule ends after its last. Stops quietly where another replica or a pause moved it first.
pub async fn materialise(m: &BotManager, row: &RecurrenceRow) -> Result<(), ApiError> {
    let Some(bot) = bots::get(&m.db, &row.bot_id).await? else {
        return Ok(());
    };
    let now = m.clock.now_millis();
    let occurrences = row.rule.occurrences(&bot.time_zone)?;
    let id = row.recurrence_id.as_str();
    for occurrence in occurrences.iter().skip(row.next_occurrence.max(0) as usize) {
        if occurrence.at > now + HORIZON_MS {
            return Ok(());
        }
        let index = occurrence.index as i64;
        let made = occurrence_post(m, &bot, row, occurrence, now).await?;
        if let Made::Post(_) = &made
            && check_quota_for(m, &bot.bot_id, 1).await.is_err()
        {
            // Full for now: the next look tries again.
            return Ok(());
        }
        let mut tx = m.db.pool().begin().await.map_err(anyhow::Error::from)?;
        let moved = match &made {
            Made::Post(post) => {
                insert_with_history(&mut tx, post, (&row.author_id, "recurred"), now).await?;
                recurrences::advance(
                    &mut tx,
                    id,
                    (index, Some(&post.post_id)),
                    (false, None),
                    now,
                )
                .await?
            }
            Made::Skipped => {
                recurrences::advance(&mut tx, id, (index, None), (true, None), now).await?
            }
            Made::Refused(why) => {
                recurrences::advance(&mut tx, id, (index, None), (false, Some(why)), now).await?
            }
        };
        if !moved {
            tx.rollback().await.map_err(anyhow::Error::from)?;
            return Ok(());
        }
        tx.commit().await.map_err(anyhow::Error::from)?;
        if let Made::Post(post) = &made {
            wake_relay_if_due(m, post, now);
        }
    }
    // Every occurrence is made; once the last one's time (and grace) has passed, nothing
    // more can come of the rule. Until then it can still be paused or ended.
    let grace_ms = m.live.get().grace_seconds as i64 * 1000;
    if occurrences.last().is_some_and(|o| o.at + grace_ms < now) {
        let mut tx = m.db.pool().begin().await.map_err(anyhow::Error::from)?;
        let states = (RecurrenceState::Active, RecurrenceState::Ended);
        recurrences::set_state(&mut tx, id, states, now).await?;
        tx.commit().await.map_err(anyhow::Error::from)?;
    }
    Ok(())
}
