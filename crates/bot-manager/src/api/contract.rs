//! The Phase-1 contract: `POST /create` and `GET /list`, kept exactly.

use axum::extract::State;
use axum::http::StatusCode;
use platform::auth::Caller;
use platform::http::error::ErrorBody;
use platform::{ApiError, Json};
use serde::Serialize;

use super::AppState;
use super::bots::CreateBotRequest;
use crate::ops;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreateResponse {
    pub bot_id: String,
    /// Always `created`.
    pub status: &'static str,
}

/// Create a bot (contract). The credentials go to Secure Bot Data.
#[utoipa::path(post, path = "/api/v1/bots/create", operation_id = "create_bot_phase1", tag = "bots", security(("bearer" = [])),
    request_body = CreateBotRequest,
    responses((status = 201, body = CreateResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<CreateBotRequest>,
) -> Result<(StatusCode, Json<CreateResponse>), ApiError> {
    let bot = ops::bots::create(&state, &caller, request.try_into()?).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreateResponse {
            bot_id: bot.bot_id,
            status: "created",
        }),
    ))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListResponse {
    pub bots: Vec<String>,
}

/// Most ids `/list` answers; the paged `GET /api/v1/bots` has them all.
const LIST_CAP: i64 = 10_000;

/// The caller's bots (contract): their own and their team's, from the token.
#[utoipa::path(get, path = "/api/v1/bots/list", operation_id = "list_bot_ids_phase1", tag = "bots", security(("bearer" = [])),
    responses((status = 200, body = ListResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ListResponse>, ApiError> {
    // Admins too get their own here: "the caller's bots", not everyone's.
    let bots = ops::bots::list_own_ids(&state, &caller, LIST_CAP).await?;
    Ok(Json(ListResponse { bots }))
}
