//! Usage and cost: sums of the metered uses of X over a window, by bot, team, app, day or kind,
//! over what the caller reaches (their own and their team's bots; admins everything).

use platform::ApiError;
use platform::auth::Caller;

use super::bots::reachable;
use super::metrics::Range;
use crate::service::BotManager;
use crate::store::usage::{self, Group, UsageSum};

/// What a report covers, as asked.
#[derive(Debug, Default, Clone, Copy)]
pub struct UsageQuery<'a> {
    /// RFC 3339, inclusive; default the start of the current UTC month.
    pub from: Option<&'a str>,
    /// RFC 3339, exclusive; default now.
    pub to: Option<&'a str>,
    /// `bot` (default), `team`, `app`, `day` or `kind`.
    pub group: Option<&'a str>,
    pub bot_id: Option<&'a str>,
    pub team: Option<&'a str>,
    pub app: Option<&'a str>,
}

/// The sums of a window, with their window in Unix milliseconds.
pub struct UsageReport {
    pub from: i64,
    pub to: i64,
    pub group: Group,
    pub items: Vec<UsageSum>,
}

fn group_of(raw: Option<&str>) -> Result<Group, ApiError> {
    match raw.unwrap_or("bot") {
        "bot" => Ok(Group::Bot),
        "team" => Ok(Group::Team),
        "app" => Ok(Group::App),
        "day" => Ok(Group::Day),
        "kind" => Ok(Group::Kind),
        _ => Err(ApiError::invalid_data("group: bot, team, app, day or kind")),
    }
}

/// The usage and cost of the bots the caller reaches over a window.
pub async fn report(
    m: &BotManager,
    caller: &Caller,
    query: UsageQuery<'_>,
) -> Result<UsageReport, ApiError> {
    caller.require("bots:read")?;
    let group = group_of(query.group)?;
    let (_, month_start, _) = super::budgets::month_of(m.clock.now());
    let month_start = platform::time_fmt::rfc3339_from_millis(month_start);
    let range = Range {
        from: Some(query.from.unwrap_or(&month_start)),
        to: query.to,
        limit: None,
    };
    let (from, to, _) = range.window(m.clock.now_millis())?;
    if let Some(bot_id) = query.bot_id {
        reachable(m, caller, bot_id).await?;
    }
    let items = usage::sums(
        &m.db,
        caller.reach(),
        (from, to),
        (query.bot_id, query.team, query.app),
        group,
    )
    .await?;
    Ok(UsageReport {
        from,
        to,
        group,
        items,
    })
}
