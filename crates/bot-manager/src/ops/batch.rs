//! One action on many bots at once, as a person would do it bot by bot: each bot's change is
//! the same operation with the same permission, scope and checks (and its own activity
//! record), and the batch itself is one more record naming the person, the action and how
//! it went for every bot.

use futures::StreamExt as _;
use platform::activity::Activity;
use platform::auth::Caller;
use platform::{ApiError, ErrorCode};
use serde_json::json;

use crate::model::{BotStatus, PostState};
use crate::service::BotManager;

/// Bots one batch may name.
pub const MAX_BOTS: usize = 5_000;
/// Bots worked on at once.
const CONCURRENCY: usize = 8;
/// Posts of one bot a post action reaches (the oldest first); a bot with more runs the
/// batch again.
const MAX_POSTS_PER_BOT: i64 = 500;
/// Bot ids the batch's record lists (the counts cover every bot).
const RECORDED_IDS: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchAction {
    Pause,
    Resume,
    /// Send every failed post of the bot again.
    RetryFailed,
    /// Cancel every scheduled post of the bot.
    CancelScheduled,
}

impl BatchAction {
    pub fn parse(action: &str) -> Result<Self, ApiError> {
        Ok(match action {
            "pause" => Self::Pause,
            "resume" => Self::Resume,
            "retry_failed" => Self::RetryFailed,
            "cancel_scheduled" => Self::CancelScheduled,
            _ => {
                return Err(ApiError::invalid_data(
                    "action: one of pause, resume, retry_failed, cancel_scheduled",
                ));
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::RetryFailed => "retry_failed",
            Self::CancelScheduled => "cancel_scheduled",
        }
    }
}

/// How the action went for one bot: how many changes it made (the bot's status, or its
/// posts) and how many posts it had to leave (they moved on meanwhile), or why it was refused.
pub struct BotOutcome {
    pub bot_id: String,
    pub result: Result<Changed, ApiError>,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Changed {
    pub changed: usize,
    pub skipped: usize,
}

/// Runs `action` on each bot of `bot_ids` (in that order) and records the batch; its id and
/// the outcome per bot.
pub async fn run(
    m: &BotManager,
    caller: &Caller,
    action: BatchAction,
    bot_ids: Vec<String>,
) -> Result<(String, Vec<BotOutcome>), ApiError> {
    if bot_ids.is_empty() || bot_ids.len() > MAX_BOTS {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!("bot_ids: from 1 to {MAX_BOTS} bots"),
        ));
    }
    let outcomes: Vec<BotOutcome> = futures::stream::iter(bot_ids)
        .map(|bot_id| async move {
            let result = one(m, caller, action, &bot_id).await;
            BotOutcome { bot_id, result }
        })
        .buffered(CONCURRENCY)
        .collect()
        .await;
    let batch_id = uuid::Uuid::now_v7().to_string();
    record(m, caller, action, &batch_id, &outcomes).await;
    Ok((batch_id, outcomes))
}

async fn one(
    m: &BotManager,
    caller: &Caller,
    action: BatchAction,
    bot_id: &str,
) -> Result<Changed, ApiError> {
    let status = |status| async move {
        super::bots::set_status(m, caller, bot_id, status).await?;
        Ok(Changed {
            changed: 1,
            skipped: 0,
        })
    };
    match action {
        BatchAction::Pause => status(BotStatus::Paused).await,
        BatchAction::Resume => status(BotStatus::Active).await,
        BatchAction::RetryFailed => each_post(m, caller, bot_id, action).await,
        BatchAction::CancelScheduled => each_post(m, caller, bot_id, action).await,
    }
}

/// Retries or cancels the bot's posts in the state the action is for; a post that moved on
/// meanwhile (409) is skipped, any other refusal is the bot's.
async fn each_post(
    m: &BotManager,
    caller: &Caller,
    bot_id: &str,
    action: BatchAction,
) -> Result<Changed, ApiError> {
    caller.require("posts:write")?;
    let state = match action {
        BatchAction::RetryFailed => PostState::Failed,
        _ => PostState::Scheduled,
    };
    let posts = super::posts::list(m, caller, bot_id, Some(state), None, MAX_POSTS_PER_BOT).await?;
    let mut done = Changed::default();
    for post in posts {
        let ids = (bot_id, post.post_id.as_str());
        let result = match action {
            BatchAction::RetryFailed => super::posts::retry(m, caller, ids).await,
            _ => super::posts::cancel(m, caller, ids).await,
        };
        match result {
            Ok(_) => done.changed += 1,
            Err(err) if err.code == ErrorCode::Conflict => done.skipped += 1,
            Err(err) => return Err(err),
        }
    }
    Ok(done)
}

/// The batch's own activity record: who, what, and how it went.
async fn record(
    m: &BotManager,
    caller: &Caller,
    action: BatchAction,
    batch_id: &str,
    outcomes: &[BotOutcome],
) {
    let succeeded = outcomes.iter().filter(|o| o.result.is_ok()).count();
    let changed: usize = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().ok())
        .map(|c| c.changed)
        .sum();
    let ids: Vec<&str> = outcomes
        .iter()
        .take(RECORDED_IDS)
        .map(|o| o.bot_id.as_str())
        .collect();
    let refused: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.result.is_err())
        .take(RECORDED_IDS)
        .map(|o| o.bot_id.as_str())
        .collect();
    let message = format!(
        "bots.batch {}: {} bots, {succeeded} done, {} refused, {changed} changes",
        action.as_str(),
        outcomes.len(),
        outcomes.len() - succeeded
    );
    m.activity
        .record(
            Activity::by(caller, "bots.batch")
                .subject(batch_id)
                .team(caller.team())
                .message(message)
                .details(json!({
                    "action": action.as_str(),
                    "bots": outcomes.len(),
                    "succeeded": succeeded,
                    "refused": outcomes.len() - succeeded,
                    "changes": changed,
                    "bot_ids": ids,
                    "refused_bot_ids": refused,
                })),
        )
        .await;
}
