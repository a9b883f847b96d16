//! A text checked as X checks a post, before it is a post: what a composer's character counter
//! shows. The same `x_text` rules the post checks and the fake X use, so the count a person
//! sees while typing is the count the post is held to.

use platform::ApiError;
use platform::auth::Caller;

use crate::service::BotManager;

/// What X's rules say of a text.
pub struct TextCheck {
    /// The text as X stores it (NFC).
    pub text: String,
    pub parsed: x_text::Parsed,
    pub urls: Vec<x_text::Entity>,
    pub mentions: Vec<x_text::Entity>,
    pub hashtags: Vec<x_text::Entity>,
    pub cashtags: Vec<x_text::Entity>,
    /// With a bot: whether another bot has the same text within the duplicate window.
    pub duplicate_elsewhere: Option<bool>,
}

/// Checks a text for anyone who may write posts; nothing is stored or recorded. With a bot
/// the caller reaches, also whether another bot has the same text within the duplicate
/// window (what scheduling it would be refused for).
pub async fn check(
    m: &BotManager,
    caller: &Caller,
    text: &str,
    bot_id: Option<&str>,
) -> Result<TextCheck, ApiError> {
    caller.require("posts:write")?;
    let text = x_text::normalize(text);
    let duplicate_elsewhere = match bot_id {
        Some(bot_id) => {
            let bot = super::bots::reachable(m, caller, bot_id).await?;
            let fingerprint = crate::fingerprint::fingerprint(&text);
            Some(super::compliance::is_duplicated(m, &bot.bot_id, &fingerprint).await?)
        }
        None => None,
    };
    Ok(TextCheck {
        parsed: x_text::parse(&text),
        urls: x_text::urls(&text),
        mentions: x_text::mentions(&text),
        hashtags: x_text::hashtags(&text),
        cashtags: x_text::cashtags(&text),
        duplicate_elsewhere,
        text,
    })
}
