//! A text checked as X checks a post, before it is a post: what a composer's character counter
//! shows. The same `x_text` rules the post checks and the fake X use, so the count a person
//! sees while typing is the count the post is held to.

use platform::ApiError;
use platform::auth::Caller;

/// What X's rules say of a text.
pub struct TextCheck {
    /// The text as X stores it (NFC).
    pub text: String,
    pub parsed: x_text::Parsed,
    pub urls: Vec<x_text::Entity>,
    pub mentions: Vec<x_text::Entity>,
    pub hashtags: Vec<x_text::Entity>,
    pub cashtags: Vec<x_text::Entity>,
}

/// Checks a text for anyone who may write posts; nothing is stored or recorded.
pub fn check(caller: &Caller, text: &str) -> Result<TextCheck, ApiError> {
    caller.require("posts:write")?;
    let text = x_text::normalize(text);
    Ok(TextCheck {
        parsed: x_text::parse(&text),
        urls: x_text::urls(&text),
        mentions: x_text::mentions(&text),
        hashtags: x_text::hashtags(&text),
        cashtags: x_text::cashtags(&text),
        text,
    })
}
