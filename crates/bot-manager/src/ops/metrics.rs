//! Metric snapshots over a time range, and a snapshot taken now.

use platform::auth::Caller;
use platform::{ApiError, ErrorCode};

use super::bots::reachable;
use crate::model::BotStatus;
use crate::service::BotManager;
use crate::snapshots::snapshot_bot;
use crate::store::bots::BotRow;
use crate::store::metrics::{self, BotSnapshot, PostSnapshot};
use crate::store::posts::PostRow;

const DEFAULT_SPAN_MS: i64 = 7 * 86_400_000;

/// A time range as asked: RFC 3339 `from` (inclusive; default `to` minus 7 days) and `to`
/// (exclusive; default now), at most `limit` snapshots (1 to 5000, default 1000).
#[derive(Debug, Default, Clone, Copy)]
pub struct Range<'a> {
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub limit: Option<i64>,
}

impl Range<'_> {
    /// The range in Unix milliseconds and the limit; `now` is the service clock's.
    pub(crate) fn window(&self, now: i64) -> Result<(i64, i64, i64), ApiError> {
        let parse = |raw: &str, name: &str| {
            time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
                .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
                .map_err(|_| ApiError::invalid_data(format!("{name}: an RFC 3339 time")))
        };
        let to = self
            .to
            .map(|t| parse(t, "to"))
            .transpose()?
            .unwrap_or(now + 1);
        let from = self
            .from
            .map(|f| parse(f, "from"))
            .transpose()?
            .unwrap_or(to - DEFAULT_SPAN_MS);
        if from >= to {
            return Err(ApiError::invalid_data("from must be before to"));
        }
        Ok((from, to, self.limit.unwrap_or(1000).clamp(1, 5000)))
    }
}

/// A bot's follower snapshots over a range.
pub async fn of_bot(
    m: &BotManager,
    caller: &Caller,
    bot_id: &str,
    range: Range<'_>,
) -> Result<(BotRow, Vec<BotSnapshot>), ApiError> {
    caller.require("bots:read")?;
    let bot = reachable(m, caller, bot_id).await?;
    let (from, to, limit) = range.window(m.clock.now_millis())?;
    let items = metrics::bot_range(&m.db, &bot.bot_id, from, to, limit).await?;
    Ok((bot, items))
}

/// A post's metric snapshots over a range.
pub async fn of_post(
    m: &BotManager,
    caller: &Caller,
    bot_id: &str,
    post_id: &str,
    range: Range<'_>,
) -> Result<(PostRow, Vec<PostSnapshot>), ApiError> {
    let post = super::posts::get(m, caller, bot_id, post_id).await?;
    let (from, to, limit) = range.window(m.clock.now_millis())?;
    let items = metrics::post_range(&m.db, &post.post_id, from, to, limit).await?;
    Ok((post, items))
}

/// A snapshot of the bot and its recent posts, taken now.
pub async fn refresh(
    m: &BotManager,
    caller: &Caller,
    bot_id: &str,
) -> Result<BotSnapshot, ApiError> {
    caller.require("bots:read")?;
    let bot = reachable(m, caller, bot_id).await?;
    if bot.status != BotStatus::Active {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("a {} bot is not read from X", bot.status.as_str()),
        ));
    }
    snapshot_bot(m, &bot).await
}
