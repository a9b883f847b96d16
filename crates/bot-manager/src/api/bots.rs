//! Bots over HTTP: create (with credentials, which go to Secure Bot Data), read, edit,
//! change status, replace credentials, archive (`ops::bots` does each).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use platform::auth::Caller;
use platform::http::error::ErrorBody;
use platform::http::page::{Listing, clamp_limit};
use platform::{ApiError, Json, Query};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{AppState, etag, if_match};
use crate::model::{BotStatus, PostingSlot};
use crate::ops;
use crate::ops::bots::{BotChanges, NewBot};
use crate::store::bots::{BotFilter, BotRow};

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
    /// Weekly windows on the wall clock of `time_zone` when scheduled posts may go out.
    pub posting_slots: Vec<PostingSlot>,
    /// The IANA time zone of its posting slots (default `UTC`).
    pub time_zone: String,
    /// The X app (project) its credentials belong to; X's per-app limits, the usage meter
    /// and app budgets go by it.
    pub x_app: String,
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
            time_zone: bot.time_zone,
            x_app: bot.x_app,
            status: bot.status,
            status_reason: bot.status_reason,
            version: bot.version,
            created_at: platform::time_fmt::rfc3339_from_millis(bot.created_at),
            updated_at: platform::time_fmt::rfc3339_from_millis(bot.updated_at),
        }
    }
}

pub(super) fn with_etag(status: StatusCode, bot: BotRow) -> Response {
    let tag = etag(bot.version);
    let mut response = (status, Json(BotView::from(bot))).into_response();
    response.headers_mut().insert(header::ETAG, tag);
    response
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"bot_name": "Weather Bot", "x_handle": "weather_bot", "description": "Hourly weather, posted automatically", "operator_account": "ada_operator", "credentials": {"access_token": "<OAuth 2.0 user access token>", "refresh_token": "<its refresh token>", "client_id": "<your X app's client id>"}}))]
pub struct CreateBotRequest {
    pub bot_name: String,
    /// OAuth 2.0 user-context credentials (`access_token`, `refresh_token`, `client_id`,
    /// `client_secret`) and any other secrets (`email`, `password`, …): stored in Secure Bot
    /// Data, never here. Absent: the bot waits (`needs_reauth`) until its X account is
    /// connected (`POST /api/v1/bots/{bot_id}/x-connect`).
    #[schema(value_type = Option<Object>)]
    pub credentials: Option<Value>,
    pub x_handle: Option<String>,
    pub description: Option<String>,
    pub operator_account: Option<String>,
    pub posting_slots: Option<Vec<PostingSlot>>,
    /// The IANA time zone of the posting slots (`Europe/Berlin`); default `UTC`.
    pub time_zone: Option<String>,
    /// The X app (project) the credentials belong to, by a name of your choice (an X client
    /// id fits); default `default`. Name apps when bots post through more than one.
    pub x_app: Option<String>,
}

impl TryFrom<CreateBotRequest> for NewBot {
    type Error = ApiError;

    fn try_from(request: CreateBotRequest) -> Result<Self, ApiError> {
        NewBot::parse(
            &request.bot_name,
            request.credentials,
            request.x_handle.as_deref(),
            request.description.as_deref(),
            request.operator_account.as_deref(),
            (request.posting_slots, request.time_zone.as_deref()),
            request.x_app.as_deref(),
        )
    }
}

/// Create a bot (RESTful; the full resource back).
#[utoipa::path(post, path = "/api/v1/bots", operation_id = "create_bot", tag = "bots", security(("bearer" = [])),
    request_body = CreateBotRequest,
    responses((status = 201, body = BotView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<CreateBotRequest>,
) -> Result<Response, ApiError> {
    let bot = ops::bots::create(&state, &caller, request.try_into()?).await?;
    Ok(with_etag(StatusCode::CREATED, bot))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct BotQuery {
    /// Only bots in this status (active, paused, needs_reauth, suspended, archived).
    pub status: Option<String>,
    /// Only the team's bots.
    pub team: Option<String>,
    /// Only the bot with this X handle (without `@`; any case).
    pub handle: Option<String>,
    /// Only bots whose name, handle or description contains this (any case).
    pub q: Option<String>,
    /// 1 to 500, default 50.
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl BotQuery {
    fn filter(&self) -> Result<BotFilter, ApiError> {
        let non_empty = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
        Ok(BotFilter {
            status: self.status.as_deref().map(BotStatus::parse).transpose()?,
            team: non_empty(&self.team),
            handle: non_empty(&self.handle).map(|h| h.trim_start_matches('@').to_string()),
            text: non_empty(&self.q),
        })
    }
}

/// The bots the caller reaches (admins: all) that the filters keep, in id order.
#[utoipa::path(get, path = "/api/v1/bots", operation_id = "list_bots", tag = "bots", security(("bearer" = [])), params(BotQuery),
    responses((status = 200, body = Listing<BotView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<BotQuery>,
) -> Result<Json<Listing<BotView>>, ApiError> {
    let limit = clamp_limit(query.limit);
    let filter = query.filter()?;
    let cursor = query.cursor.as_deref();
    let rows = ops::bots::list(&state, &caller, &filter, cursor, limit + 1).await?;
    let views: Vec<BotView> = rows.into_iter().map(BotView::from).collect();
    Ok(Json(Listing::from_overfetch(views, limit, |b| {
        b.bot_id.clone()
    })))
}

/// One bot. `ETag` is its version.
#[utoipa::path(get, path = "/api/v1/bots/{bot_id}", operation_id = "get_bot", tag = "bots", security(("bearer" = [])),
    params(("bot_id" = String, Path)),
    responses((status = 200, body = BotView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(bot_id): Path<String>,
) -> Result<Response, ApiError> {
    let bot = ops::bots::get(&state, &caller, &bot_id).await?;
    Ok(with_etag(StatusCode::OK, bot))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"description": "Weather every hour, posted automatically by ada_operator's bot"}))]
pub struct UpdateBotRequest {
    pub name: Option<String>,
    pub x_handle: Option<String>,
    pub description: Option<String>,
    pub operator_account: Option<String>,
    pub posting_slots: Option<Vec<PostingSlot>>,
    /// The IANA time zone of the posting slots.
    pub time_zone: Option<String>,
    /// The X app the bot's credentials belong to now.
    pub x_app: Option<String>,
    /// A status change; only the allowed transitions pass (409 otherwise).
    pub status: Option<String>,
}

/// Edit a bot; `If-Match: "<version>"` guards against overwriting someone else's change.
#[utoipa::path(patch, path = "/api/v1/bots/{bot_id}", operation_id = "update_bot", tag = "bots", security(("bearer" = [])),
    params(("bot_id" = String, Path)), request_body = UpdateBotRequest,
    responses((status = 200, body = BotView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 412, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(bot_id): Path<String>,
    headers: HeaderMap,
    Json(request): Json<UpdateBotRequest>,
) -> Result<Response, ApiError> {
    let changes = BotChanges::parse(
        request.name.as_deref(),
        request.x_handle.as_deref(),
        request.description.as_deref(),
        request.operator_account.as_deref(),
        (request.posting_slots, request.time_zone.as_deref()),
        request.x_app.as_deref(),
        request.status.as_deref(),
    )?;
    let bot = ops::bots::update(&state, &caller, &bot_id, if_match(&headers)?, changes).await?;
    Ok(with_etag(StatusCode::OK, bot))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "paused"}))]
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
    caller: Caller,
    Path(bot_id): Path<String>,
    Json(request): Json<StatusRequest>,
) -> Result<Response, ApiError> {
    let next = BotStatus::parse(&request.status)?;
    let bot = ops::bots::set_status(&state, &caller, &bot_id, next).await?;
    Ok(with_etag(StatusCode::OK, bot))
}

/// Archive a bot: it stops publishing and becomes read-only. Its posts and history stay.
#[utoipa::path(delete, path = "/api/v1/bots/{bot_id}", tag = "bots", security(("bearer" = [])),
    params(("bot_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn archive(
    State(state): State<AppState>,
    caller: Caller,
    Path(bot_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    ops::bots::archive(&state, &caller, &bot_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"credentials": {"access_token": "<new OAuth 2.0 user access token>", "refresh_token": "<its refresh token>", "client_id": "<your X app's client id>"}}))]
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
    caller: Caller,
    Path(bot_id): Path<String>,
    Json(request): Json<CredentialsRequest>,
) -> Result<Response, ApiError> {
    let credentials = ops::bots::credential_fields(request.credentials)?;
    let bot = ops::bots::replace_credentials(&state, &caller, &bot_id, credentials).await?;
    Ok(with_etag(StatusCode::OK, bot))
}
