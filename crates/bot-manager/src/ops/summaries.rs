//! A line per bot for a fleet view, for the bots of a list the caller reaches (the others are
//! left out, as a bot one does not reach is not found).

use platform::auth::Caller;
use platform::{ApiError, ErrorCode};

use crate::service::BotManager;
use crate::store::summaries::{self, LowWindow, SummaryRow};

/// Bots one request may ask about: a page of a fleet view.
pub const MAX_IDS: usize = 100;
/// Failures are counted over the last day.
const FAILURE_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

/// One bot's line, with the rate window that has the least left (if one runs low).
pub struct Summary {
    pub row: SummaryRow,
    pub lowest_window: Option<LowWindow>,
}

pub async fn summaries(
    m: &BotManager,
    caller: &Caller,
    ids: &[String],
) -> Result<Vec<Summary>, ApiError> {
    caller.require("bots:read")?;
    if ids.len() > MAX_IDS {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!("ids: at most {MAX_IDS} bots at a time"),
        ));
    }
    let now = m.clock.now_millis();
    let rows = summaries::summaries(&m.db, ids, now - FAILURE_WINDOW_MS).await?;
    let reached: Vec<SummaryRow> = rows
        .into_iter()
        .filter(|row| caller.reaches(&row.owner_id, row.team.as_deref()))
        .collect();
    let reached_ids: Vec<String> = reached.iter().map(|row| row.bot_id.clone()).collect();
    let windows = summaries::low_windows(&m.db, &reached_ids, now).await?;
    Ok(reached
        .into_iter()
        .map(|row| {
            let lowest_window = windows
                .iter()
                .filter(|w| w.bot_id == row.bot_id)
                // The least left as a share of the window: remaining/limit, compared exactly.
                .min_by(|a, b| (a.remaining * b.limit.max(1)).cmp(&(b.remaining * a.limit.max(1))))
                .cloned();
            Summary { row, lowest_window }
        })
        .collect())
}

/// The publishing backlog of the bots the caller reaches, dead jobs counted over the last day.
pub async fn backlog(m: &BotManager, caller: &Caller) -> Result<summaries::Backlog, ApiError> {
    caller.require("bots:read")?;
    let now = m.clock.now_millis();
    Ok(summaries::backlog(&m.db, caller.reach(), now, now - FAILURE_WINDOW_MS).await?)
}
