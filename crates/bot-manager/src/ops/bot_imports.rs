//! Bulk import of bots, all or nothing: every row is checked as a create would check it (name,
//! handle, description, operator account, posting slots, time zone, X app) and its handle
//! against every bot's and the import's other rows; either every bot is written in one
//! transaction or none is, and the answer names each bad row. A dry run checks and writes
//! nothing. Imported bots hold no credentials — secrets do not travel in spreadsheets — and
//! wait in `needs_reauth` until their X account is connected (`ops::connect`).

use std::collections::HashMap;

use futures::StreamExt;

use platform::auth::Caller;
use platform::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::bots::NewBot;
use super::imports::RowError;
use crate::model::PostingSlot;
use crate::service::{Actor, BotManager};
use crate::store::bots::{self, BotRow};

/// Most bots in one import.
pub const MAX_BOTS: usize = 1000;

/// One bot as given (CSV columns or JSON members of the same names).
#[derive(Debug, Default, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BotImportRow {
    pub bot_name: String,
    #[serde(default)]
    pub x_handle: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub operator_account: Option<String>,
    /// IANA; absent: UTC.
    #[serde(default)]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub x_app: Option<String>,
    /// CSV: `mon 09:00-17:00 tue 09:00-12:00`.
    #[serde(default)]
    pub posting_slots: Vec<PostingSlot>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BotImportReport {
    pub dry_run: bool,
    pub rows: usize,
    /// Rows that passed every check.
    pub valid: usize,
    pub errors: Vec<RowError>,
    /// The bots written, in row order (none on a dry run or when a row is bad).
    pub bot_ids: Vec<String>,
}

fn row_bot(owner: (&str, Option<&str>), row: BotImportRow, now: i64) -> Result<BotRow, ApiError> {
    let new = NewBot::parse(
        &row.bot_name,
        None,
        row.x_handle.as_deref().filter(|h| !h.is_empty()),
        row.description.as_deref(),
        row.operator_account.as_deref().filter(|h| !h.is_empty()),
        (
            Some(row.posting_slots),
            row.time_zone.as_deref().filter(|t| !t.is_empty()),
        ),
        row.x_app.as_deref().filter(|a| !a.is_empty()),
    )?;
    let (bot, _) = new.into_row((owner.0.to_string(), owner.1), now);
    Ok(bot)
}

/// Checks every row; the bots the valid ones make, and the errors of the others.
async fn check_rows(
    m: &BotManager,
    owner: (&str, Option<&str>),
    rows: Vec<BotImportRow>,
) -> Result<(Vec<BotRow>, Vec<RowError>), ApiError> {
    let now = m.clock.now_millis();
    // Handles in this import (any case): the first row that has it.
    let mut handles: HashMap<String, usize> = HashMap::new();
    let (mut made, mut errors) = (Vec::new(), Vec::new());
    for (index, row) in rows.into_iter().enumerate() {
        let number = index + 1;
        let bot = match row_bot(owner, row, now) {
            Ok(bot) => bot,
            Err(err) => {
                errors.push(RowError {
                    row: number,
                    message: err.message,
                });
                continue;
            }
        };
        if let Some(handle) = &bot.x_handle {
            if let Some(first) = handles.insert(handle.to_lowercase(), number) {
                let message = format!("x_handle: @{handle} is also row {first}'s");
                errors.push(RowError {
                    row: number,
                    message,
                });
                continue;
            }
            // Which bot holds it is not said: it may be beyond the caller's reach.
            if bots::holding_handle(&m.db, handle).await?.is_some() {
                let message = format!("x_handle: @{handle} is already another bot's");
                errors.push(RowError {
                    row: number,
                    message,
                });
                continue;
            }
        }
        made.push(bot);
    }
    Ok((made, errors))
}

/// Imports bots for the caller (and their team) all or nothing, or on a dry run only checks
/// them. With a bad row nothing is written: a dry run answers the report, an import 422 with
/// the report's errors.
pub async fn import(
    m: &BotManager,
    caller: &Caller,
    rows: Vec<BotImportRow>,
    dry_run: bool,
) -> Result<BotImportReport, ApiError> {
    caller.require("bots:write")?;
    let Some(owner_id) = caller.user_id() else {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "bots belong to users; service clients cannot own one",
        ));
    };
    if rows.is_empty() || rows.len() > MAX_BOTS {
        return Err(ApiError::invalid_data("rows: 1 to 1000 bots"));
    }
    let count = rows.len();
    let (made, errors) = check_rows(m, (owner_id, caller.team()), rows).await?;
    if let Some(first) = errors.first().filter(|_| !dry_run) {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!(
                "{} of {count} rows are not valid (row {}: {}); nothing was imported",
                errors.len(),
                first.row,
                first.message
            ),
        )
        .with_field("errors", json!(errors)));
    }
    let mut report = BotImportReport {
        dry_run,
        rows: count,
        valid: made.len(),
        errors,
        bot_ids: Vec::new(),
    };
    if dry_run {
        return Ok(report);
    }
    let mut tx = m.db.pool().begin().await.map_err(anyhow::Error::from)?;
    for bot in &made {
        bots::insert_in(&mut tx, bot).await?;
    }
    tx.commit().await.map_err(anyhow::Error::from)?;
    // One event per bot, as a create records; several at once, so that on the embedded
    // queue their writes share commits instead of waiting one by one.
    futures::stream::iter(&made)
        .for_each_concurrent(32, |bot| async move {
            let details = json!({"name": bot.name, "status": bot.status.as_str()});
            m.record(
                Actor::Caller(caller),
                "bot.imported",
                bot,
                &bot.bot_id,
                details,
            )
            .await;
        })
        .await;
    report.bot_ids = made.into_iter().map(|b| b.bot_id).collect();
    Ok(report)
}
