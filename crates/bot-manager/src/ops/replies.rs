//! X's reply restriction for self-serve apps, checked before a reply is approved or
//! scheduled: X lets such an app reply to another account's post only where that post's
//! author mentioned the bot or quoted one of its posts, and answers any other reply with a
//! 403. The post replied to is read from X with the bot's own token; a refusal says why.
//! `bot_manager.x_limits.replies_restricted` (live) turns it off for an enterprise app.

use platform::{ApiError, ErrorCode};
use serde_json::Value;

use crate::service::BotManager;
use crate::store::bots::{self, BotRow};
use crate::store::posts::PostRow;
use crate::tokens::{Owner, TokenError};

fn unavailable(why: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        ErrorCode::NotReady,
        format!("X could not be asked whether the bot may reply ({why}); try again"),
    )
}

/// Whether the post replied to engages the bot: its own, mentioning it, or quoting it.
fn engages(bot_handle: Option<&str>, bot_x_id: &str, body: &Value) -> bool {
    let data = &body["data"];
    if data["author_id"].as_str() == Some(bot_x_id) {
        return true;
    }
    let mentioned = bot_handle.is_some_and(|handle| {
        let handle = handle.trim_start_matches('@');
        data["entities"]["mentions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| {
                m["username"]
                    .as_str()
                    .is_some_and(|u| u.eq_ignore_ascii_case(handle))
            })
    });
    let quoted: Vec<&str> = data["referenced_tweets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["type"] == "quoted")
        .filter_map(|r| r["id"].as_str())
        .collect();
    let quotes_bot = body["includes"]["tweets"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| {
            t["id"].as_str().is_some_and(|id| quoted.contains(&id))
                && t["author_id"].as_str() == Some(bot_x_id)
        });
    mentioned || quotes_bot
}

/// The bot's X user id: kept on the bot, or asked from X once.
async fn x_user_id(
    m: &BotManager,
    bot: &BotRow,
    token: &platform::config::Secret,
) -> Result<String, ApiError> {
    if let Some(id) = &bot.x_user_id {
        return Ok(id.clone());
    }
    let answer = m.x.me(token).await.map_err(unavailable)?;
    let id = answer
        .body
        .pointer("/data/id")
        .and_then(Value::as_str)
        .filter(|_| answer.is_success())
        .ok_or_else(|| unavailable(format!("users/me answered {}", answer.status)))?
        .to_string();
    bots::set_x_user_id(&m.db, &bot.bot_id, &id).await?;
    Ok(id)
}

/// Refuses a reply X would refuse the bot's app.
pub async fn check(m: &BotManager, post: &PostRow) -> Result<(), ApiError> {
    let Some(target) = post.options.reply_to_x_post_id.as_deref() else {
        return Ok(());
    };
    if !m.live.get().x_limits.replies_restricted {
        return Ok(());
    }
    let Some(bot) = bots::get(&m.db, &post.bot_id).await? else {
        return Ok(());
    };
    let owner = Owner {
        user_id: &bot.owner_id,
        team: bot.team.as_deref(),
    };
    let token = match m.tokens.access_token(&bot.bot_id, owner).await {
        Ok(token) => token,
        Err(TokenError::NeedsReauth(_)) => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "reply_to_x_post_id: the bot needs its X account connected before a reply can \
                 be checked against X",
            ));
        }
        Err(TokenError::Unavailable(why)) => return Err(unavailable(why)),
    };
    let bot_x_id = x_user_id(m, &bot, &token).await?;
    let answer =
        m.x.reply_target(&token, target)
            .await
            .map_err(unavailable)?;
    if answer.status >= 500 || answer.status == 429 || answer.status == 401 {
        return Err(unavailable(format!("X answered {}", answer.status)));
    }
    if !answer.is_success() || answer.body.get("data").is_none() {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!(
                "reply_to_x_post_id: X shows the bot no post {target} (deleted, or not visible to it)"
            ),
        ));
    }
    if engages(bot.x_handle.as_deref(), &bot_x_id, &answer.body) {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::ValidationFailed,
        format!(
            "reply_to_x_post_id: X lets this app reply only where the post's author mentioned \
             the bot or quoted one of its posts, and post {target} does neither (a self-serve \
             X app; bot_manager.x_limits.replies_restricted)"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn own_mentioned_or_quoted_posts_engage_the_bot_and_others_do_not() {
        let own = json!({"data": {"id": "1", "author_id": "77"}});
        assert!(engages(Some("bot"), "77", &own));
        let mention = json!({"data": {"id": "1", "author_id": "5",
            "entities": {"mentions": [{"start": 0, "end": 4, "username": "Bot"}]}}});
        assert!(engages(Some("@bot"), "77", &mention));
        let quote = json!({"data": {"id": "1", "author_id": "5",
            "referenced_tweets": [{"type": "quoted", "id": "9"}]},
            "includes": {"tweets": [{"id": "9", "author_id": "77"}]}});
        assert!(engages(Some("bot"), "77", &quote));
        let quoting_someone_else = json!({"data": {"id": "1", "author_id": "5",
            "referenced_tweets": [{"type": "quoted", "id": "9"}]},
            "includes": {"tweets": [{"id": "9", "author_id": "6"}]}});
        assert!(!engages(Some("bot"), "77", &quoting_someone_else));
        let replying_to_the_bot = json!({"data": {"id": "1", "author_id": "5",
            "referenced_tweets": [{"type": "replied_to", "id": "9"}]},
            "includes": {"tweets": [{"id": "9", "author_id": "77"}]}});
        assert!(
            !engages(Some("bot"), "77", &replying_to_the_bot),
            "only a quote counts"
        );
    }
}
