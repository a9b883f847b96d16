//! The Phase-1 contract: `POST /create` and `GET /list`, kept exactly.

use axum::extract::State;
use axum::http::StatusCode;
use platform::auth::Caller;
use platform::http::error::ErrorBody;
use platform::{ApiError, Json};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AppState;
use super::bots::CreateBotRequest;
use crate::model::PostingSlot;
use crate::ops;

/// The contract's bot: as the RESTful one, but the credentials are required (a bot made here
/// can post at once; connecting an X account is the RESTful API's).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"bot_name": "Weather Bot", "x_handle": "weather_bot", "operator_account": "ada_operator", "credentials": {"access_token": "<OAuth 2.0 user access token>", "refresh_token": "<its refresh token>", "client_id": "<your X app's client id>"}}))]
pub struct ContractCreateRequest {
    pub bot_name: String,
    #[schema(value_type = Object)]
    pub credentials: Value,
    pub x_handle: Option<String>,
    pub description: Option<String>,
    pub operator_account: Option<String>,
    pub posting_slots: Option<Vec<PostingSlot>>,
    pub time_zone: Option<String>,
    pub x_app: Option<String>,
}

impl From<ContractCreateRequest> for CreateBotRequest {
    fn from(request: ContractCreateRequest) -> Self {
        Self {
            bot_name: request.bot_name,
            credentials: Some(request.credentials),
            x_handle: request.x_handle,
            description: request.description,
            operator_account: request.operator_account,
            posting_slots: request.posting_slots,
            time_zone: request.time_zone,
            x_app: request.x_app,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreateResponse {
    pub bot_id: String,
    /// Always `created`.
    pub status: &'static str,
}

/// Create a bot (contract). The credentials go to Secure Bot Data.
#[utoipa::path(post, path = "/api/v1/bots/create", operation_id = "create_bot_phase1", tag = "bots", security(("bearer" = [])),
    request_body = ContractCreateRequest,
    responses((status = 201, body = CreateResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<ContractCreateRequest>,
) -> Result<(StatusCode, Json<CreateResponse>), ApiError> {
    let request = CreateBotRequest::from(request);
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
