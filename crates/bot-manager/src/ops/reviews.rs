//! Review before posting: who must have posts approved (the setting, a team's policy, a bot's
//! own), submitting, approving and asking for changes, and a post's history. An approval is
//! pinned to a hash of the content it saw: any later change of content voids it, and the
//! worker compares the hash again right before sending.

use platform::auth::Caller;
use platform::{ApiError, ErrorCode};
use serde_json::json;

use super::bots::reachable;
use super::posts::{self as post_ops, Step};
use crate::fingerprint::sha256_hex;
use crate::model::{PostOptions, PostState};
use crate::service::BotManager;
use crate::store::bots::BotRow;
use crate::store::history::{self, HistoryEntry};
use crate::store::posts::{Approval, PostRow};
use crate::store::reviews::{self, PolicyRow, Scope};

/// Longest reviewer comment, in characters.
const MAX_COMMENT_CHARS: usize = 2_000;

/// The review rules in force for one bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub approval_required: bool,
    pub allow_self_approval: bool,
    /// Which levels require review: `setting`, `team`, `bot`.
    pub required_by: Vec<&'static str>,
    /// The bot's own row (whether it requires review itself).
    pub bot_requires: bool,
}

/// The policy for a bot of `team`: review is required if any level requires it; whether an
/// author may approve their own post is the team's word where it has one, else the setting's.
pub async fn policy(m: &BotManager, bot_id: &str, team: Option<&str>) -> anyhow::Result<Policy> {
    let setting = m.live.get().approvals.clone();
    let (team_row, bot_row) = reviews::of_bot(&m.db, bot_id, team).await?;
    let team_requires = team_row.as_ref().is_some_and(|t| t.approval_required);
    let bot_requires = bot_row.as_ref().is_some_and(|b| b.approval_required);
    let required_by: Vec<&'static str> = [
        (setting.required, "setting"),
        (team_requires, "team"),
        (bot_requires, "bot"),
    ]
    .iter()
    .filter(|(yes, _)| *yes)
    .map(|(_, level)| *level)
    .collect();
    Ok(Policy {
        approval_required: !required_by.is_empty(),
        allow_self_approval: team_row
            .and_then(|t| t.allow_self_approval)
            .unwrap_or(setting.allow_self_approval),
        required_by,
        bot_requires,
    })
}

/// The hash an approval is pinned to: everything that would be sent to X.
pub fn content_hash(text: &str, media_ids: &[String], options: &PostOptions) -> String {
    let content = json!({"text": text, "media_ids": media_ids, "options": options});
    sha256_hex(content.to_string().as_bytes())
}

/// The post's content as its history keeps it.
pub fn content_of(post: &PostRow) -> serde_json::Value {
    json!({"text": post.text, "media_ids": post.media_ids, "options": post.options})
}

/// Whether the post carries an approval of exactly its current content.
pub fn approved_as_is(post: &PostRow) -> bool {
    post.approval
        .as_ref()
        .is_some_and(|a| a.content_hash == content_hash(&post.text, &post.media_ids, &post.options))
}

/// Where an edited (or newly timed) post goes. `needs_review`: its bot requires review and
/// it has no approval of its current content.
pub fn next_state(
    state: PostState,
    needs_review: bool,
    content_changed: bool,
    timed: bool,
) -> PostState {
    use PostState::*;
    match (state, needs_review) {
        (Draft, true) if !timed => Draft,
        (ChangesRequested, true) if !content_changed => ChangesRequested,
        (_, true) => PendingReview,
        (_, false) if timed => Scheduled,
        // Its approval void and none needed: a draft again, not an approved post.
        (Approved, false) if content_changed => Draft,
        (other, false) => other,
    }
}

fn check_comment(comment: Option<&str>, required: bool) -> Result<Option<String>, ApiError> {
    let comment = comment.map(str::trim).filter(|c| !c.is_empty());
    match comment {
        None if required => Err(ApiError::invalid_data(
            "comment: say what should change (1 to 2000 characters)",
        )),
        Some(c) if c.chars().count() > MAX_COMMENT_CHARS => {
            Err(ApiError::invalid_data("comment: at most 2000 characters"))
        }
        other => Ok(other.map(String::from)),
    }
}

/// The pending post a reviewer acts on, at the content version they saw.
async fn pending_post(
    m: &BotManager,
    caller: &Caller,
    ids: (&str, &str),
    content_version: i64,
) -> Result<(BotRow, PostRow), ApiError> {
    caller.require("posts:approve")?;
    let (bot, post) = post_ops::writable_post_of(m, caller, ids).await?;
    if post.state != PostState::PendingReview {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "only a post pending review is reviewed; this one is {}",
                post.state.as_str()
            ),
        ));
    }
    if post.content_version != content_version {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "the post changed since you read it (content version {} now, {content_version} \
                 reviewed); read it again",
                post.content_version
            ),
        ));
    }
    Ok((bot, post))
}

/// Refuses an author approving their own post unless the policy allows it. An author is
/// whoever wrote any version of its content.
async fn check_not_own(
    m: &BotManager,
    caller: &Caller,
    post: &PostRow,
    policy: &Policy,
) -> Result<(), ApiError> {
    if policy.allow_self_approval {
        return Ok(());
    }
    let own = post.author_id == caller.id()
        || history::wrote_content(&m.db, &post.post_id, caller.id()).await?;
    if own {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "you wrote this post; another reviewer approves it",
        ));
    }
    Ok(())
}

fn entry(caller: &Caller, action: &str, post: &PostRow, comment: Option<String>) -> HistoryEntry {
    HistoryEntry {
        at: 0,
        actor_id: caller.id().to_string(),
        action: action.to_string(),
        content_version: post.content_version,
        comment,
        content: None,
    }
}

/// Approves a pending post at the content version the reviewer saw. A post with a time is
/// scheduled for it (at once when the time passed within the grace period; without a time
/// when it passed longer ago: the author picks a new one); one without a time is `approved`.
pub async fn approve(
    m: &BotManager,
    caller: &Caller,
    ids: (&str, &str),
    content_version: i64,
    comment: Option<&str>,
) -> Result<PostRow, ApiError> {
    let comment = check_comment(comment, false)?;
    let (bot, mut post) = pending_post(m, caller, ids, content_version).await?;
    let policy = policy(m, &bot.bot_id, bot.team.as_deref()).await?;
    check_not_own(m, caller, &post, &policy).await?;
    let now = m.clock.now_millis();
    let grace_ms = m.live.get().grace_seconds as i64 * 1000;
    post.approval = Some(Approval {
        content_hash: content_hash(&post.text, &post.media_ids, &post.options),
        by: caller.id().to_string(),
        at: now,
    });
    post.error = None;
    post.state = match post.run_at {
        Some(at) if at + grace_ms >= now => {
            post.run_at = Some(at.max(now));
            PostState::Scheduled
        }
        Some(_) => {
            post.run_at = None;
            post.error = Some("the time asked for passed during review; schedule it again".into());
            PostState::Approved
        }
        None => PostState::Approved,
    };
    if post.state == PostState::Approved {
        // `save` checks a post going to `scheduled` itself.
        super::compliance::check(m, &post).await?;
    }
    let step = Step {
        was: PostState::PendingReview,
        entry: entry(caller, "approved", &post, comment),
    };
    let saved = post_ops::save(m, post, step).await?;
    post_ops::record_post(m, caller, "post.approved", (&bot, &saved), json!({})).await;
    Ok(saved)
}

/// Sends a pending post back to its author with what should change.
pub async fn request_changes(
    m: &BotManager,
    caller: &Caller,
    ids: (&str, &str),
    content_version: i64,
    comment: Option<&str>,
) -> Result<PostRow, ApiError> {
    let comment = check_comment(comment, true)?;
    let (bot, mut post) = pending_post(m, caller, ids, content_version).await?;
    post.state = PostState::ChangesRequested;
    post.approval = None;
    post.error = None;
    let step = Step {
        was: PostState::PendingReview,
        entry: entry(caller, "changes_requested", &post, comment),
    };
    let saved = post_ops::save(m, post, step).await?;
    post_ops::record_post(
        m,
        caller,
        "post.changes_requested",
        (&bot, &saved),
        json!({}),
    )
    .await;
    Ok(saved)
}

/// Asks for review of a draft (or of a post sent back with changes requested), keeping its
/// time if it has one.
pub async fn submit(
    m: &BotManager,
    caller: &Caller,
    ids: (&str, &str),
) -> Result<PostRow, ApiError> {
    caller.require("posts:write")?;
    let (bot, mut post) = post_ops::writable_post_of(m, caller, ids).await?;
    let was = post.state;
    if !matches!(was, PostState::Draft | PostState::ChangesRequested) {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "a draft or a post with changes requested is submitted; this one is {}",
                was.as_str()
            ),
        ));
    }
    post.state = PostState::PendingReview;
    post.approval = None;
    post.error = None;
    let step = Step {
        was,
        entry: entry(caller, "submitted", &post, None),
    };
    let saved = post_ops::save(m, post, step).await?;
    post_ops::record_post(m, caller, "post.submitted", (&bot, &saved), json!({})).await;
    Ok(saved)
}

/// The post's history, oldest first.
pub async fn history(
    m: &BotManager,
    caller: &Caller,
    ids: (&str, &str),
) -> Result<Vec<HistoryEntry>, ApiError> {
    caller.require("bots:read")?;
    let (_, post) = post_ops::reachable_post(m, caller, ids.0, ids.1).await?;
    Ok(history::list(&m.db, &post.post_id).await?)
}

/// The review policy in force for a bot the caller reaches.
pub async fn bot_policy(m: &BotManager, caller: &Caller, bot_id: &str) -> Result<Policy, ApiError> {
    caller.require("bots:read")?;
    let bot = reachable(m, caller, bot_id).await?;
    Ok(policy(m, &bot.bot_id, bot.team.as_deref()).await?)
}

/// Makes one bot require review (or stop requiring it itself; its team or the setting may
/// still). A reviewer's decision: `posts:approve`, so an author cannot waive review.
pub async fn set_bot_policy(
    m: &BotManager,
    caller: &Caller,
    bot_id: &str,
    approval_required: bool,
) -> Result<Policy, ApiError> {
    caller.require("posts:approve")?;
    let bot = reachable(m, caller, bot_id).await?;
    let row = PolicyRow {
        approval_required,
        allow_self_approval: None,
        updated_by: caller.id().to_string(),
        updated_at: m.clock.now_millis(),
    };
    reviews::put(&m.db, Scope::Bot(&bot.bot_id), &row).await?;
    m.record(
        crate::service::Actor::Caller(caller),
        "bot.review_policy_set",
        &bot,
        &bot.bot_id,
        json!({"approval_required": approval_required}),
    )
    .await;
    Ok(policy(m, &bot.bot_id, bot.team.as_deref()).await?)
}

/// A team's review policy (admins set it, as budgets).
pub async fn team_policy(
    m: &BotManager,
    caller: &Caller,
    team: &str,
) -> Result<PolicyRow, ApiError> {
    caller.require("bots:read")?;
    platform::auth::check_team_name(team)?;
    reviews::get(&m.db, Scope::Team(team))
        .await?
        .ok_or_else(|| ApiError::not_found("no review policy for this team"))
}

pub async fn set_team_policy(
    m: &BotManager,
    caller: &Caller,
    team: &str,
    (approval_required, allow_self_approval): (bool, Option<bool>),
) -> Result<PolicyRow, ApiError> {
    caller.require_admin("setting a team's review policy")?;
    platform::auth::check_team_name(team)?;
    let row = PolicyRow {
        approval_required,
        allow_self_approval,
        updated_by: caller.id().to_string(),
        updated_at: m.clock.now_millis(),
    };
    reviews::put(&m.db, Scope::Team(team), &row).await?;
    Ok(row)
}

pub async fn delete_team_policy(
    m: &BotManager,
    caller: &Caller,
    team: &str,
) -> Result<(), ApiError> {
    caller.require_admin("removing a team's review policy")?;
    platform::auth::check_team_name(team)?;
    if reviews::delete(&m.db, Scope::Team(team)).await? {
        Ok(())
    } else {
        Err(ApiError::not_found("no review policy for this team"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PostState::*;

    #[test]
    fn an_unapproved_post_of_a_reviewed_bot_never_reaches_scheduled() {
        for state in PostState::EDITABLE {
            for content_changed in [false, true] {
                for timed in [false, true] {
                    let next = next_state(state, true, content_changed, timed);
                    assert_ne!(next, Scheduled, "{state:?} {content_changed} {timed}");
                    assert_ne!(next, Approved, "{state:?} {content_changed} {timed}");
                }
            }
        }
    }

    #[test]
    fn review_routes() {
        assert_eq!(next_state(Draft, true, true, false), Draft);
        assert_eq!(next_state(Draft, true, false, true), PendingReview);
        assert_eq!(next_state(Scheduled, true, true, false), PendingReview);
        assert_eq!(next_state(Approved, true, true, false), PendingReview);
        assert_eq!(
            next_state(ChangesRequested, true, false, true),
            ChangesRequested
        );
        assert_eq!(
            next_state(ChangesRequested, true, true, false),
            PendingReview
        );
        assert_eq!(next_state(Approved, false, false, true), Scheduled);
        assert_eq!(next_state(Approved, false, false, false), Approved);
        assert_eq!(next_state(Approved, false, true, false), Draft);
        assert_eq!(next_state(Draft, false, false, true), Scheduled);
        assert_eq!(next_state(Draft, false, true, false), Draft);
        assert_eq!(next_state(Scheduled, false, true, false), Scheduled);
    }

    #[test]
    fn the_pin_covers_everything_sent_to_x() {
        let options = PostOptions::default();
        let base = content_hash("hello", &[], &options);
        assert_eq!(base, content_hash("hello", &[], &options));
        assert_ne!(base, content_hash("hello!", &[], &options));
        assert_ne!(base, content_hash("hello", &["1".into()], &options));
        let quoting = PostOptions {
            quote_x_post_id: Some("1".into()),
            ..PostOptions::default()
        };
        assert_ne!(base, content_hash("hello", &[], &quoting));
    }
}
