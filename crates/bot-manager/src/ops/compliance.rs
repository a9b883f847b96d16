//! What must hold before a post may be approved or scheduled, each refusal saying which of
//! X's rules it keeps: no identical or near-identical text from several bots within the
//! duplicate window (X's automation rules), and at most one cashtag in a post.

use platform::{ApiError, ErrorCode};

use crate::service::BotManager;
use crate::store::posts::{self, PostRow};

/// X's rules against the same message from several accounts.
pub async fn check_not_duplicated(
    m: &BotManager,
    bot_id: &str,
    fingerprint: &str,
) -> Result<(), ApiError> {
    if is_duplicated(m, bot_id, fingerprint).await? {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "another bot has identical or near-identical text within the duplicate window; \
             X's automation rules forbid posting the same content from several accounts",
        ));
    }
    Ok(())
}

/// Whether another bot has text of this fingerprint within the duplicate window.
pub async fn is_duplicated(
    m: &BotManager,
    bot_id: &str,
    fingerprint: &str,
) -> Result<bool, ApiError> {
    let since = m.clock.now_millis() - m.settings.duplicate_window_seconds as i64 * 1000;
    Ok(posts::duplicate_elsewhere(&m.db, fingerprint, bot_id, since).await?)
}

/// X's rule for cashtags: at most one in a post.
pub fn check_cashtags(text: &str) -> Result<(), ApiError> {
    let cashtags = x_text::cashtags(text);
    if cashtags.len() > 1 {
        let found: Vec<&str> = cashtags.iter().map(|c| c.value.as_str()).collect();
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!(
                "text: at most one cashtag in a post (X's rule); found {}: ${}",
                found.len(),
                found.join(", $")
            ),
        ));
    }
    Ok(())
}

/// Every pre-check a post passes before it is approved or scheduled.
pub async fn check(m: &BotManager, post: &PostRow) -> Result<(), ApiError> {
    check_cashtags(&post.text)?;
    super::disclosure::check(m, &post.bot_id).await?;
    super::media::check_attached(m, &post.bot_id, &post.media_ids).await?;
    super::replies::check(m, post).await?;
    check_not_duplicated(m, &post.bot_id, &post.fingerprint).await
}
