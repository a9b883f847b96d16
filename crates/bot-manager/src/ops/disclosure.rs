//! Each bot's automation disclosure, confirmed by a person: X's automated-account label is
//! set on the account, its bio says it is automated, and the human operator's account it
//! links to (X's automation rules). Where `bot_manager.compliance.record_required` (live), a
//! bot's first post waits for it.

use platform::auth::Caller;
use platform::{ApiError, ErrorCode};
use serde_json::json;

use super::bots::{parse_handle, reachable};
use super::posts::writable;
use crate::service::{Actor, BotManager};
use crate::store::compliance::{self, ComplianceRecord};

/// What a person confirms.
pub struct Disclosure {
    pub automated_label: bool,
    pub bio_discloses_automation: bool,
    pub operator_account: String,
}

/// Records the bot's disclosure; every part must be confirmed.
pub async fn confirm(
    m: &BotManager,
    caller: &Caller,
    bot_id: &str,
    disclosure: Disclosure,
) -> Result<ComplianceRecord, ApiError> {
    caller.require("bots:write")?;
    let bot = reachable(m, caller, bot_id).await?;
    writable(&bot)?;
    if !disclosure.automated_label {
        return Err(ApiError::invalid_data(
            "automated_label: set X's automated-account label on the bot's account (its \
             settings, \"Automation\"), then confirm it",
        ));
    }
    if !disclosure.bio_discloses_automation {
        return Err(ApiError::invalid_data(
            "bio_discloses_automation: say in the bot's bio that it is automated, then confirm it",
        ));
    }
    let operator_account = parse_handle(&disclosure.operator_account, "operator_account")?;
    let record = ComplianceRecord {
        bot_id: bot.bot_id.clone(),
        automated_label: true,
        bio_discloses_automation: true,
        operator_account,
        confirmed_by: caller.id().to_string(),
        confirmed_at: m.clock.now_millis(),
    };
    compliance::confirm(&m.db, &record).await?;
    let details = json!({"operator_account": record.operator_account});
    m.record(
        Actor::Caller(caller),
        "bot.disclosure_confirmed",
        &bot,
        &bot.bot_id,
        details,
    )
    .await;
    Ok(record)
}

/// The bot's confirmed disclosure, if any.
pub async fn get(
    m: &BotManager,
    caller: &Caller,
    bot_id: &str,
) -> Result<Option<ComplianceRecord>, ApiError> {
    caller.require("bots:read")?;
    let bot = reachable(m, caller, bot_id).await?;
    Ok(compliance::get(&m.db, &bot.bot_id).await?)
}

/// Before a bot's first post, its disclosure must be confirmed (where required).
pub async fn check(m: &BotManager, bot_id: &str) -> Result<(), ApiError> {
    if !m.live.get().compliance.record_required {
        return Ok(());
    }
    if compliance::get(&m.db, bot_id).await?.is_some()
        || compliance::has_published(&m.db, bot_id).await?
    {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::Conflict,
        "before the bot's first post, confirm its automation disclosure (X's automated-account \
         label, a bio that says it is automated, the operator's account): PUT \
         /api/v1/bots/{bot_id}/compliance",
    ))
}
