//! Operations on bots: create (credentials go to Secure Bot Data, never here), list, read,
//! edit, change status, archive, replace credentials, and the status change the workers make
//! when X refuses a bot's tokens. Someone else's bot is not found.

use platform::auth::{Caller, Reach};
use platform::{ApiError, ErrorCode};
use serde_json::{Map, Value, json};

use crate::botdata::{BotDataError, fields};
use crate::model::{BotStatus, DEFAULT_TIME_ZONE, PostingSlot, new_id, parse_id, parse_time_zone};
use crate::service::{Actor, BotManager};
use crate::store::bots::{self, BotFilter, BotRow};

/// A bot to create, its fields checked.
#[derive(Debug)]
pub struct NewBot {
    pub name: String,
    pub x_handle: Option<String>,
    pub description: String,
    pub operator_account: Option<String>,
    pub posting_slots: Vec<PostingSlot>,
    pub time_zone: String,
    pub x_app: String,
    /// Secure Bot Data field → secret.
    pub credentials: Map<String, Value>,
}

impl NewBot {
    /// The bot's row for `owner` (user, team), and the credentials for Secure Bot Data. A
    /// bot without credentials it can publish with waits in `needs_reauth` for its X
    /// account to be connected.
    pub fn into_row(
        self,
        (owner_id, team): (String, Option<&str>),
        now: i64,
    ) -> (BotRow, Map<String, Value>) {
        let publishes = can_publish(&self.credentials);
        let bot = BotRow {
            bot_id: new_id(),
            owner_id,
            team: team.map(String::from),
            name: self.name,
            x_handle: self.x_handle,
            x_user_id: None,
            description: self.description,
            operator_account: self.operator_account,
            posting_slots: self.posting_slots,
            time_zone: self.time_zone,
            x_app: self.x_app,
            status: if publishes {
                BotStatus::Active
            } else {
                BotStatus::NeedsReauth
            },
            status_reason: (!publishes).then(|| {
                "no OAuth token or refresh token given: connect the X account".to_string()
            }),
            version: 1,
            created_at: now,
            updated_at: now,
        };
        (bot, self.credentials)
    }

    /// Checks each field; a value is never quoted back in an error.
    pub fn parse(
        name: &str,
        credentials: Option<Value>,
        x_handle: Option<&str>,
        description: Option<&str>,
        operator_account: Option<&str>,
        (posting_slots, time_zone): (Option<Vec<PostingSlot>>, Option<&str>),
        x_app: Option<&str>,
    ) -> Result<Self, ApiError> {
        let name = parse_name(name)?;
        let x_app = parse_x_app(x_app.unwrap_or(DEFAULT_X_APP))?;
        let x_handle = x_handle.map(|h| parse_handle(h, "x_handle")).transpose()?;
        let operator_account = operator_account
            .map(|h| parse_handle(h, "operator_account"))
            .transpose()?;
        let description = parse_description(description.unwrap_or(""))?;
        let posting_slots = posting_slots.unwrap_or_default();
        PostingSlot::check_all(&posting_slots)?;
        Ok(Self {
            name,
            x_handle,
            description,
            operator_account,
            posting_slots,
            time_zone: parse_time_zone(time_zone.unwrap_or(DEFAULT_TIME_ZONE))?,
            x_app,
            credentials: credentials
                .map(credential_fields)
                .transpose()?
                .unwrap_or_default(),
        })
    }
}

/// What an edit changes; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct BotChanges {
    pub name: Option<String>,
    pub x_handle: Option<String>,
    pub description: Option<String>,
    pub operator_account: Option<String>,
    pub posting_slots: Option<Vec<PostingSlot>>,
    pub time_zone: Option<String>,
    pub x_app: Option<String>,
    pub status: Option<BotStatus>,
}

impl BotChanges {
    /// Checks each field given.
    pub fn parse(
        name: Option<&str>,
        x_handle: Option<&str>,
        description: Option<&str>,
        operator_account: Option<&str>,
        (posting_slots, time_zone): (Option<Vec<PostingSlot>>, Option<&str>),
        x_app: Option<&str>,
        status: Option<&str>,
    ) -> Result<Self, ApiError> {
        let name = name.map(parse_name).transpose()?;
        let x_handle = x_handle.map(|h| parse_handle(h, "x_handle")).transpose()?;
        let description = description.map(parse_description).transpose()?;
        let operator_account = operator_account
            .map(|h| parse_handle(h, "operator_account"))
            .transpose()?;
        if let Some(slots) = &posting_slots {
            PostingSlot::check_all(slots)?;
        }
        Ok(Self {
            name,
            x_handle,
            description,
            operator_account,
            posting_slots,
            time_zone: time_zone.map(parse_time_zone).transpose()?,
            x_app: x_app.map(parse_x_app).transpose()?,
            status: status.map(BotStatus::parse).transpose()?,
        })
    }
}

/// The app of a bot that names none: an installation with one X project needs no names.
pub const DEFAULT_X_APP: &str = "default";

/// An X app's name here: 1 to 64 letters, digits, `.`, `-` or `_` (an X client id fits).
pub fn parse_x_app(raw: &str) -> Result<String, ApiError> {
    let valid = (1..=64).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if valid {
        Ok(raw.to_string())
    } else {
        Err(ApiError::invalid_data(
            "x_app: 1 to 64 letters, digits, '.', '-' or '_'",
        ))
    }
}

/// `@handle` or `handle`: 1 to 15 letters, digits or `_`, as X allows.
pub(super) fn parse_handle(raw: &str, field: &str) -> Result<String, ApiError> {
    let handle = raw.trim().trim_start_matches('@');
    if (1..=15).contains(&handle.len())
        && handle
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        Ok(handle.to_string())
    } else {
        Err(ApiError::invalid_data(format!(
            "{field}: an X handle, 1 to 15 letters, digits or '_'"
        )))
    }
}

fn parse_name(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid_data(
            "bot_name: 1 to 100 characters, no control characters",
        ));
    }
    Ok(name.to_string())
}

fn parse_description(raw: &str) -> Result<String, ApiError> {
    if raw.chars().count() > 1000 {
        return Err(ApiError::invalid_data(
            "description: at most 1000 characters",
        ));
    }
    Ok(raw.to_string())
}

/// The Secure Bot Data field a credential name is stored under: OAuth 2.0 names map to the
/// `oauth_*` fields the workers read; other names (email, password, api_key, …) stay.
fn credential_field(name: &str) -> Result<String, ApiError> {
    let field = match name {
        "access_token" => fields::ACCESS_TOKEN.to_string(),
        "refresh_token" => fields::REFRESH_TOKEN.to_string(),
        "client_id" => fields::CLIENT_ID.to_string(),
        "client_secret" => fields::CLIENT_SECRET.to_string(),
        other => other.to_string(),
    };
    let valid = (1..=64).contains(&field.len())
        && field.starts_with(|c: char| c.is_ascii_lowercase())
        && field
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(field)
    } else {
        Err(ApiError::invalid_data(format!(
            "credentials: {:?} is not a field name (lowercase letters, digits, '_')",
            name.chars().take(64).collect::<String>()
        )))
    }
}

/// The credentials object → Secure Bot Data fields. Values are never quoted back.
pub fn credential_fields(credentials: Value) -> Result<Map<String, Value>, ApiError> {
    let Value::Object(map) = credentials else {
        return Err(ApiError::invalid_data(
            "credentials: an object of name → secret string",
        ));
    };
    if map.is_empty() || map.len() > 20 {
        return Err(ApiError::invalid_data("credentials: 1 to 20 entries"));
    }
    let mut out = Map::new();
    for (name, value) in map {
        let field = credential_field(&name)?;
        match value {
            Value::String(s) if !s.is_empty() && s.len() <= 8192 => {
                out.insert(field, Value::String(s));
            }
            _ => {
                return Err(ApiError::invalid_data(format!(
                    "credentials.{name}: a non-empty string of at most 8192 bytes"
                )));
            }
        }
    }
    Ok(out)
}

/// Whether the credentials let the bot act on X (a token, or what gets one).
fn can_publish(credentials: &Map<String, Value>) -> bool {
    credentials.contains_key(fields::ACCESS_TOKEN)
        || (credentials.contains_key(fields::REFRESH_TOKEN)
            && credentials.contains_key(fields::CLIENT_ID))
}

fn botdata_error(err: BotDataError) -> ApiError {
    match err {
        BotDataError::Invalid(message) => ApiError::invalid_data(format!("credentials: {message}")),
        BotDataError::Conflict => ApiError::new(
            ErrorCode::Conflict,
            "the credentials changed meanwhile; try again",
        ),
        BotDataError::Unavailable(cause) => {
            tracing::warn!(error = %format!("{cause:#}"), "Secure Bot Data unavailable");
            ApiError::new(
                ErrorCode::NotReady,
                "the credential store is unavailable; nothing was created, try again",
            )
        }
    }
}

pub(super) fn archived() -> ApiError {
    ApiError::new(ErrorCode::Conflict, "an archived bot cannot be changed")
}

fn stale() -> ApiError {
    ApiError::new(
        ErrorCode::PreconditionFailed,
        "the bot changed since you read it; read it again",
    )
}

/// The bot if the caller reaches it; someone else's bot is simply not found.
pub async fn reachable(m: &BotManager, caller: &Caller, bot_id: &str) -> Result<BotRow, ApiError> {
    let bot_id = parse_id(bot_id, "bot")?;
    match bots::get(&m.db, &bot_id).await? {
        Some(bot) if caller.reaches(&bot.owner_id, bot.team.as_deref()) => Ok(bot),
        _ => Err(ApiError::new(ErrorCode::NotFound, "no such bot")),
    }
}

async fn reload(m: &BotManager, bot_id: &str) -> Result<BotRow, ApiError> {
    bots::get(&m.db, bot_id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such bot"))
}

/// Creates a bot for the calling user (and their team): its credentials first, in Secure
/// Bot Data, then the bot.
pub async fn create(m: &BotManager, caller: &Caller, new: NewBot) -> Result<BotRow, ApiError> {
    caller.require("bots:write")?;
    let Some(owner_id) = caller.user_id().map(String::from) else {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "bots belong to users; service clients cannot own one",
        ));
    };
    let now = m.clock.now_millis();
    let (bot, credentials) = new.into_row((owner_id, caller.team()), now);
    if !credentials.is_empty() {
        m.botdata
            .store(
                &bot.bot_id,
                (&bot.owner_id, bot.team.as_deref()),
                &credentials,
                None,
            )
            .await
            .map_err(botdata_error)?;
    }
    bots::insert(&m.db, &bot).await?;
    m.record(
        Actor::Caller(caller),
        "bot.created",
        &bot,
        &bot.bot_id,
        json!({"name": bot.name, "status": bot.status.as_str(), "credential_fields": credentials.keys().collect::<Vec<_>>()}),
    )
    .await;
    Ok(bot)
}

/// The bots the caller reaches (admins: all), in id order, after `cursor`.
pub async fn list(
    m: &BotManager,
    caller: &Caller,
    filter: &BotFilter,
    cursor: Option<&str>,
    limit: i64,
) -> Result<Vec<BotRow>, ApiError> {
    caller.require("bots:read")?;
    Ok(bots::list(&m.db, caller.reach(), filter, cursor, limit).await?)
}

/// The caller's own bots and their team's — "the caller's bots", for admins too (the
/// contract's `/list`).
/// Ids only: the contract answers nothing else, and reading whole rows to drop all but one
/// column was most of the route's cost.
pub async fn list_own_ids(
    m: &BotManager,
    caller: &Caller,
    limit: i64,
) -> Result<Vec<String>, ApiError> {
    caller.require("bots:read")?;
    let own = Reach::Member {
        user_id: caller.id(),
        team: caller.team(),
    };
    Ok(bots::ids(&m.db, own, limit).await?)
}

pub async fn get(m: &BotManager, caller: &Caller, bot_id: &str) -> Result<BotRow, ApiError> {
    caller.require("bots:read")?;
    reachable(m, caller, bot_id).await
}

/// Edits a bot; `expected_version` (`If-Match`) refuses a stale edit.
pub async fn update(
    m: &BotManager,
    caller: &Caller,
    bot_id: &str,
    expected_version: Option<i64>,
    changes: BotChanges,
) -> Result<BotRow, ApiError> {
    caller.require("bots:write")?;
    let mut bot = reachable(m, caller, bot_id).await?;
    if expected_version.is_some_and(|expected| expected != bot.version) {
        return Err(stale());
    }
    if bot.status == BotStatus::Archived {
        return Err(archived());
    }
    bot.name = changes.name.unwrap_or(bot.name);
    bot.x_handle = changes.x_handle.or(bot.x_handle);
    bot.description = changes.description.unwrap_or(bot.description);
    bot.operator_account = changes.operator_account.or(bot.operator_account);
    bot.posting_slots = changes.posting_slots.unwrap_or(bot.posting_slots);
    bot.time_zone = changes.time_zone.unwrap_or(bot.time_zone);
    bot.x_app = changes.x_app.unwrap_or(bot.x_app);
    let Some(mut updated) = bots::update(&m.db, &bot, m.clock.now_millis()).await? else {
        return Err(stale());
    };
    if let Some(next) = changes.status
        && next != updated.status
    {
        updated = change_status(m, caller, updated, next).await?;
    }
    m.record(
        Actor::Caller(caller),
        "bot.updated",
        &updated,
        &updated.bot_id,
        json!({"version": updated.version}),
    )
    .await;
    Ok(updated)
}

/// Applies an allowed status change and what follows from it (jobs resume on `active`).
async fn change_status(
    m: &BotManager,
    caller: &Caller,
    bot: BotRow,
    next: BotStatus,
) -> Result<BotRow, ApiError> {
    if !bot.status.may_become(next) {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "a bot cannot go from {} to {}",
                bot.status.as_str(),
                next.as_str()
            ),
        ));
    }
    let admin_only = next == BotStatus::Suspended
        || (bot.status == BotStatus::Suspended && next == BotStatus::Active);
    if admin_only {
        caller.require_admin("suspending a bot or lifting a suspension")?;
    }
    let moved = bots::set_status(
        &m.db,
        &bot.bot_id,
        bot.status,
        next,
        None,
        m.clock.now_millis(),
    )
    .await?;
    if !moved {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the bot's status changed meanwhile; read it again",
        ));
    }
    if next == BotStatus::Active {
        m.release_waiting(&bot.bot_id).await?;
    }
    m.record(
        Actor::Caller(caller),
        "bot.status_changed",
        &bot,
        &bot.bot_id,
        json!({"from": bot.status.as_str(), "to": next.as_str()}),
    )
    .await;
    reload(m, &bot.bot_id).await
}

/// Changes a bot's status (active ↔ paused, → archived; suspensions by admins).
pub async fn set_status(
    m: &BotManager,
    caller: &Caller,
    bot_id: &str,
    next: BotStatus,
) -> Result<BotRow, ApiError> {
    caller.require("bots:write")?;
    let bot = reachable(m, caller, bot_id).await?;
    change_status(m, caller, bot, next).await
}

/// Archives a bot: it stops publishing and becomes read-only; its posts and history stay.
pub async fn archive(m: &BotManager, caller: &Caller, bot_id: &str) -> Result<(), ApiError> {
    caller.require("bots:write")?;
    let bot = reachable(m, caller, bot_id).await?;
    if bot.status != BotStatus::Archived {
        change_status(m, caller, bot, BotStatus::Archived).await?;
    }
    Ok(())
}

/// Replaces the bot's credentials (after X revoked them); a bot that needed
/// re-authorisation becomes active and its waiting posts resume.
pub async fn replace_credentials(
    m: &BotManager,
    caller: &Caller,
    bot_id: &str,
    credentials: Map<String, Value>,
) -> Result<BotRow, ApiError> {
    caller.require("bots:write")?;
    let bot = reachable(m, caller, bot_id).await?;
    if bot.status == BotStatus::Archived {
        return Err(archived());
    }
    keep_credentials(m, &bot, &credentials).await?;
    m.record(
        Actor::Caller(caller),
        "bot.credentials_replaced",
        &bot,
        &bot.bot_id,
        json!({"credential_fields": credentials.keys().collect::<Vec<_>>()}),
    )
    .await;
    resume_with_credentials(m, bot, &credentials).await
}

/// Writes the bot's new credentials to Secure Bot Data and drops the token cached from the
/// old ones.
pub(super) async fn keep_credentials(
    m: &BotManager,
    bot: &BotRow,
    credentials: &Map<String, Value>,
) -> Result<(), ApiError> {
    m.botdata
        .store(
            &bot.bot_id,
            (&bot.owner_id, bot.team.as_deref()),
            credentials,
            None,
        )
        .await
        .map_err(botdata_error)?;
    m.tokens.forget(&bot.bot_id);
    Ok(())
}

/// A bot that needed re-authorisation and now holds credentials it can publish with becomes
/// active, and its waiting posts resume.
pub async fn resume_with_credentials(
    m: &BotManager,
    bot: BotRow,
    credentials: &Map<String, Value>,
) -> Result<BotRow, ApiError> {
    if bot.status != BotStatus::NeedsReauth || !can_publish(credentials) {
        return Ok(bot);
    }
    let resumed = bots::set_status(
        &m.db,
        &bot.bot_id,
        BotStatus::NeedsReauth,
        BotStatus::Active,
        None,
        m.clock.now_millis(),
    )
    .await?;
    if resumed {
        m.release_waiting(&bot.bot_id).await?;
    }
    reload(m, &bot.bot_id).await
}

/// X refused an active bot's tokens for good (the workers' finding): the bot needs a
/// person's new credentials. Whether this call moved it (another worker may have first).
pub async fn mark_needs_reauth(m: &BotManager, bot_id: &str, reason: &str) -> anyhow::Result<bool> {
    let moved = bots::set_status(
        &m.db,
        bot_id,
        BotStatus::Active,
        BotStatus::NeedsReauth,
        Some(reason),
        m.clock.now_millis(),
    )
    .await?;
    if moved {
        m.metrics.count("refresh", "refused");
        m.record_for(
            "bot.needs_reauth",
            bot_id,
            bot_id,
            json!({"reason": reason}),
        )
        .await;
    }
    Ok(moved)
}
