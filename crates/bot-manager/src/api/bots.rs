//! Bots: create (with credentials, which go to Secure Bot Data), read, edit, change status,
//! replace credentials, archive. Someone else's bot is not found.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use platform::auth::Authenticated;
use platform::http::error::ErrorBody;
use platform::http::page::{Listing, Page};
use platform::{ApiError, ErrorCode, Json, Query};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{AppState, etag, if_match};
use crate::botdata::{BotDataError, fields};
use crate::model::{BotStatus, PostingSlot, new_id};
use crate::service::{BotManager, Caller};
use crate::store::bots::{self, BotRow};

/// A bot as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BotView {
    pub bot_id: String,
    pub name: String,
    pub x_handle: Option<String>,
    pub x_user_id: Option<String>,
    pub owner_id: String,
    pub team: Option<String>,
    pub description: String,
    /// The human X account that runs this bot, shown in X's automated-account label.
    pub operator_account: Option<String>,
    pub posting_slots: Vec<PostingSlot>,
    pub status: BotStatus,
    pub status_reason: Option<String>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<BotRow> for BotView {
    fn from(bot: BotRow) -> Self {
        Self {
            bot_id: bot.bot_id,
            name: bot.name,
            x_handle: bot.x_handle,
            x_user_id: bot.x_user_id,
            owner_id: bot.owner_id,
            team: bot.team,
            description: bot.description,
            operator_account: bot.operator_account,
            posting_slots: bot.posting_slots,
            status: bot.status,
            status_reason: bot.status_reason,
            version: bot.version,
            created_at: platform::time_fmt::rfc3339_from_millis(bot.created_at),
            updated_at: platform::time_fmt::rfc3339_from_millis(bot.updated_at),
        }
    }
}

fn with_etag(status: StatusCode, bot: BotRow) -> Response {
    let tag = etag(bot.version);
    let mut response = (status, Json(BotView::from(bot))).into_response();
    response.headers_mut().insert(header::ETAG, tag);
    response
}

/// `@handle` or `handle`: 1 to 15 letters, digits or `_`, as X allows.
fn parse_handle(raw: &str, field: &str) -> Result<String, ApiError> {
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

/// The credentials object → Secure Bot Data fields. OAuth 2.0 names map to the `oauth_*`
/// fields the workers read; other names (email, password, api_key, …) are kept as given.
/// Values are never quoted back in an error.
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
        let field = match name.as_str() {
            "access_token" => fields::ACCESS_TOKEN.to_string(),
            "refresh_token" => fields::REFRESH_TOKEN.to_string(),
            "client_id" => fields::CLIENT_ID.to_string(),
            "client_secret" => fields::CLIENT_SECRET.to_string(),
            other => other.to_string(),
        };
        let valid_name = (1..=64).contains(&field.len())
            && field.starts_with(|c: char| c.is_ascii_lowercase())
            && field
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid_name {
            return Err(ApiError::invalid_data(format!(
                "credentials: {:?} is not a field name (lowercase letters, digits, '_')",
                name.chars().take(64).collect::<String>()
            )));
        }
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
fn can_publish(fields_: &Map<String, Value>) -> bool {
    fields_.contains_key(fields::ACCESS_TOKEN)
        || (fields_.contains_key(fields::REFRESH_TOKEN) && fields_.contains_key(fields::CLIENT_ID))
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

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBotRequest {
    pub bot_name: String,
    /// OAuth 2.0 user-context credentials (`access_token`, `refresh_token`, `client_id`,
    /// `client_secret`) and any other secrets (`email`, `password`, …): stored in Secure Bot
    /// Data, never here.
    #[schema(value_type = Object)]
    pub credentials: Value,
    pub x_handle: Option<String>,
    pub description: Option<String>,
    pub operator_account: Option<String>,
    pub posting_slots: Option<Vec<PostingSlot>>,
}

/// Validates the request, stores the credentials, then the bot.
pub async fn create_bot(
    state: &BotManager,
    caller: &Caller<'_>,
    request: CreateBotRequest,
) -> Result<BotRow, ApiError> {
    caller.claims.require("bots:write")?;
    let Some(owner_id) = caller.claims.user_id().map(String::from) else {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "bots belong to users; service clients cannot own one",
        ));
    };
    let name = parse_name(&request.bot_name)?;
    let x_handle = request
        .x_handle
        .as_deref()
        .map(|h| parse_handle(h, "x_handle"))
        .transpose()?;
    let operator_account = request
        .operator_account
        .as_deref()
        .map(|h| parse_handle(h, "operator_account"))
        .transpose()?;
    let description = parse_description(request.description.as_deref().unwrap_or(""))?;
    let posting_slots = request.posting_slots.unwrap_or_default();
    PostingSlot::check_all(&posting_slots)?;
    let credentials = credential_fields(request.credentials)?;
    let now = state.clock.now_millis();
    let bot = BotRow {
        bot_id: new_id(),
        owner_id,
        team: caller.claims.team.clone(),
        name,
        x_handle,
        x_user_id: None,
        description,
        operator_account,
        posting_slots,
        status: if can_publish(&credentials) {
            BotStatus::Active
        } else {
            BotStatus::NeedsReauth
        },
        status_reason: (!can_publish(&credentials))
            .then(|| "no OAuth token or refresh token given".to_string()),
        version: 1,
        created_at: now,
        updated_at: now,
    };
    state
        .botdata
        .store(
            &bot.bot_id,
            (&bot.owner_id, bot.team.as_deref()),
            &credentials,
            None,
        )
        .await
        .map_err(botdata_error)?;
    bots::insert(&state.db, &bot).await?;
    state
        .record(
            "bot.created",
            &caller.actor(),
            &bot.bot_id,
            json!({"name": bot.name, "status": bot.status.as_str(), "credential_fields": credentials.keys().collect::<Vec<_>>()}),
        )
        .await;
    Ok(bot)
}

/// Create a bot (RESTful; the full resource back).
#[utoipa::path(post, path = "/api/v1/bots", tag = "bots", security(("bearer" = [])),
    request_body = CreateBotRequest,
    responses((status = 201, body = BotView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Json(request): Json<CreateBotRequest>,
) -> Result<Response, ApiError> {
    let bot = create_bot(&state, &Caller::new(&claims), request).await?;
    Ok(with_etag(StatusCode::CREATED, bot))
}

/// The bots the caller reaches (admins: all), in id order.
#[utoipa::path(get, path = "/api/v1/bots", tag = "bots", security(("bearer" = [])), params(Page),
    responses((status = 200, body = Listing<BotView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Query(page): Query<Page>,
) -> Result<Json<Listing<BotView>>, ApiError> {
    claims.require("bots:read")?;
    let caller = Caller::new(&claims);
    let limit = page.limit();
    let rows = bots::list(&state.db, caller.reach(), page.cursor.as_deref(), limit + 1).await?;
    let views: Vec<BotView> = rows.into_iter().map(BotView::from).collect();
    Ok(Json(Listing::from_overfetch(views, limit, |b| {
        b.bot_id.clone()
    })))
}

/// One bot. `ETag` is its version.
#[utoipa::path(get, path = "/api/v1/bots/{bot_id}", tag = "bots", security(("bearer" = [])),
    params(("bot_id" = String, Path)),
    responses((status = 200, body = BotView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(bot_id): Path<String>,
) -> Result<Response, ApiError> {
    claims.require("bots:read")?;
    let bot = state.reachable_bot(&Caller::new(&claims), &bot_id).await?;
    Ok(with_etag(StatusCode::OK, bot))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBotRequest {
    pub name: Option<String>,
    pub x_handle: Option<String>,
    pub description: Option<String>,
    pub operator_account: Option<String>,
    pub posting_slots: Option<Vec<PostingSlot>>,
    /// A status change; only the allowed transitions pass (409 otherwise).
    pub status: Option<String>,
}

/// Edit a bot; `If-Match: "<version>"` guards against overwriting someone else's change.
#[utoipa::path(patch, path = "/api/v1/bots/{bot_id}", tag = "bots", security(("bearer" = [])),
    params(("bot_id" = String, Path)), request_body = UpdateBotRequest,
    responses((status = 200, body = BotView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 412, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(bot_id): Path<String>,
    headers: HeaderMap,
    Json(request): Json<UpdateBotRequest>,
) -> Result<Response, ApiError> {
    claims.require("bots:write")?;
    let caller = Caller::new(&claims);
    let mut bot = state.reachable_bot(&caller, &bot_id).await?;
    if let Some(expected) = if_match(&headers)?
        && expected != bot.version
    {
        return Err(ApiError::new(
            ErrorCode::PreconditionFailed,
            "the bot changed since you read it; read it again",
        ));
    }
    if bot.status == BotStatus::Archived {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "an archived bot cannot be changed",
        ));
    }
    if let Some(name) = &request.name {
        bot.name = parse_name(name)?;
    }
    if let Some(handle) = &request.x_handle {
        bot.x_handle = Some(parse_handle(handle, "x_handle")?);
    }
    if let Some(description) = &request.description {
        bot.description = parse_description(description)?;
    }
    if let Some(operator) = &request.operator_account {
        bot.operator_account = Some(parse_handle(operator, "operator_account")?);
    }
    if let Some(slots) = request.posting_slots {
        PostingSlot::check_all(&slots)?;
        bot.posting_slots = slots;
    }
    let next_status = request
        .status
        .as_deref()
        .map(BotStatus::parse)
        .transpose()?;
    let Some(mut updated) = bots::update(&state.db, &bot, state.clock.now_millis()).await? else {
        return Err(ApiError::new(
            ErrorCode::PreconditionFailed,
            "the bot changed since you read it; read it again",
        ));
    };
    if let Some(next) = next_status
        && next != updated.status
    {
        updated = change_status(&state, &caller, updated, next).await?;
    }
    state
        .record(
            "bot.updated",
            &caller.actor(),
            &updated.bot_id,
            json!({"version": updated.version}),
        )
        .await;
    Ok(with_etag(StatusCode::OK, updated))
}

/// Applies an allowed status change and what follows from it (jobs resume on `active`).
async fn change_status(
    state: &BotManager,
    caller: &Caller<'_>,
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
    if admin_only && !caller.is_admin() {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "suspending a bot or lifting a suspension is for admins",
        ));
    }
    if !bots::set_status(
        &state.db,
        &bot.bot_id,
        bot.status,
        next,
        None,
        state.clock.now_millis(),
    )
    .await?
    {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the bot's status changed meanwhile; read it again",
        ));
    }
    if next == BotStatus::Active {
        state.release_waiting(&bot.bot_id).await?;
    }
    state
        .record(
            "bot.status_changed",
            &caller.actor(),
            &bot.bot_id,
            json!({"from": bot.status.as_str(), "to": next.as_str()}),
        )
        .await;
    bots::get(&state.db, &bot.bot_id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such bot"))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    pub status: String,
}

/// Change a bot's status (active ↔ paused, → archived; suspensions by admins).
#[utoipa::path(post, path = "/api/v1/bots/{bot_id}/status", tag = "bots", security(("bearer" = [])),
    params(("bot_id" = String, Path)), request_body = StatusRequest,
    responses((status = 200, body = BotView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn set_status(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(bot_id): Path<String>,
    Json(request): Json<StatusRequest>,
) -> Result<Response, ApiError> {
    claims.require("bots:write")?;
    let caller = Caller::new(&claims);
    let bot = state.reachable_bot(&caller, &bot_id).await?;
    let next = BotStatus::parse(&request.status)?;
    let bot = change_status(&state, &caller, bot, next).await?;
    Ok(with_etag(StatusCode::OK, bot))
}

/// Archive a bot: it stops publishing and becomes read-only. Its posts and history stay.
#[utoipa::path(delete, path = "/api/v1/bots/{bot_id}", tag = "bots", security(("bearer" = [])),
    params(("bot_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn archive(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(bot_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    claims.require("bots:write")?;
    let caller = Caller::new(&claims);
    let bot = state.reachable_bot(&caller, &bot_id).await?;
    if bot.status != BotStatus::Archived {
        change_status(&state, &caller, bot, BotStatus::Archived).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialsRequest {
    #[schema(value_type = Object)]
    pub credentials: Value,
}

/// Replace the bot's credentials (after X revoked them): stored in Secure Bot Data; a bot
/// that needed re-authorisation becomes active and its waiting posts resume.
#[utoipa::path(put, path = "/api/v1/bots/{bot_id}/credentials", tag = "bots", security(("bearer" = [])),
    params(("bot_id" = String, Path)), request_body = CredentialsRequest,
    responses((status = 200, body = BotView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn replace_credentials(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(bot_id): Path<String>,
    Json(request): Json<CredentialsRequest>,
) -> Result<Response, ApiError> {
    claims.require("bots:write")?;
    let caller = Caller::new(&claims);
    let bot = state.reachable_bot(&caller, &bot_id).await?;
    if bot.status == BotStatus::Archived {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "an archived bot cannot be changed",
        ));
    }
    let credentials = credential_fields(request.credentials)?;
    state
        .botdata
        .store(
            &bot.bot_id,
            (&bot.owner_id, bot.team.as_deref()),
            &credentials,
            None,
        )
        .await
        .map_err(botdata_error)?;
    state.tokens.forget(&bot.bot_id);
    state
        .record(
            "bot.credentials_replaced",
            &caller.actor(),
            &bot.bot_id,
            json!({"credential_fields": credentials.keys().collect::<Vec<_>>()}),
        )
        .await;
    let mut bot = bot;
    if bot.status == BotStatus::NeedsReauth && can_publish(&credentials) {
        if bots::set_status(
            &state.db,
            &bot.bot_id,
            BotStatus::NeedsReauth,
            BotStatus::Active,
            None,
            state.clock.now_millis(),
        )
        .await?
        {
            state.release_waiting(&bot.bot_id).await?;
        }
        bot = bots::get(&state.db, &bot.bot_id)
            .await?
            .ok_or_else(|| ApiError::not_found("no such bot"))?;
    }
    Ok(with_etag(StatusCode::OK, bot))
}
