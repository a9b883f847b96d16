//! The Phase-1 contract: `POST /store` and `GET /retrieve`, kept exactly.

use axum::extract::State;
use axum::http::StatusCode;
use platform::http::error::ErrorBody;
use platform::{ApiError, Json, Query};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::AppState;
use crate::model::{BotId, FieldName, SecretValue};
use crate::ops::reveal;
use crate::ops::write::{self, FieldWrite, Ownership};
use crate::store::secrets::Expect;
use platform::auth::Caller;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"bot_id": "weather-bot", "data": {"email": "weather-bot@example.com", "password": "<the account's password>"}}))]
pub struct StoreRequest {
    pub bot_id: String,
    /// Field name → secret string (email, handle, password, api_key, oauth_refresh_token, …
    /// or a custom lowercase name). Each becomes a new version of its field.
    // A `Value`, not a map, so that a wrongly typed `data` is refused without the
    // deserializer quoting it (it may be a secret) in the error.
    #[schema(value_type = Object)]
    pub data: Value,
    /// Admins and service clients only: the user a new bot belongs to.
    pub owner_id: Option<String>,
    /// Admins and service clients only: the team a new bot belongs to.
    pub team: Option<String>,
    /// Check-and-set for this all-or-nothing write: field name → the version it must still
    /// be at (0: must not exist yet). One stale field refuses the whole write with 409, so a
    /// rotated token pair is saved together or not at all.
    #[schema(value_type = Option<Object>)]
    pub expect: Option<Map<String, Value>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StoreResponse {
    /// Always `stored`.
    pub status: &'static str,
    pub bot_id: String,
}

/// Store bot secrets (contract).
#[utoipa::path(post, path = "/api/v1/botdata/store", tag = "botdata", security(("bearer" = [])),
    request_body = StoreRequest,
    responses((status = 201, body = StoreResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn store(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<StoreRequest>,
) -> Result<(StatusCode, Json<StoreResponse>), ApiError> {
    let bot_id = BotId::parse(&request.bot_id)?;
    let Value::Object(data) = request.data else {
        return Err(ApiError::invalid_data(
            "data: an object of field name → secret string",
        ));
    };
    if data.is_empty() {
        return Err(ApiError::invalid_data("data: at least one field"));
    }
    let mut expected = request.expect.unwrap_or_default();
    let mut writes = Vec::with_capacity(data.len());
    for (name, value) in data {
        let field = FieldName::parse(&name)?;
        let value = SecretValue::parse(&field, value, state.settings.max_value_bytes)?;
        let expect = match expected.remove(&name) {
            None => Expect::Any,
            Some(Value::Number(n)) if n.as_i64() == Some(0) => Expect::Absent,
            Some(Value::Number(n)) if n.as_i64().is_some_and(|v| v > 0) => {
                Expect::Version(n.as_i64().unwrap_or_default())
            }
            Some(_) => {
                return Err(ApiError::invalid_data(format!(
                    "expect.{name}: 0 (must not exist) or the version it must be at"
                )));
            }
        };
        writes.push(FieldWrite {
            field,
            value,
            expect,
        });
    }
    if let Some(name) = expected.keys().next() {
        return Err(ApiError::invalid_data(format!(
            "expect.{name}: names a field this write does not carry"
        )));
    }
    let ownership = Ownership::parse(request.owner_id, request.team)?;
    write::write(&state, &caller, &bot_id, ownership, writes).await?;
    Ok((
        StatusCode::CREATED,
        Json(StoreResponse {
            status: "stored",
            bot_id: bot_id.as_str().to_string(),
        }),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RetrieveQuery {
    pub bot_id: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RetrieveResponse {
    pub bot_id: String,
    /// Field name → value in clear: every field's current, live version.
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
}

/// Retrieve a bot's secrets in clear (contract; needs `botdata:reveal`, audited).
#[utoipa::path(get, path = "/api/v1/botdata/retrieve", tag = "botdata", security(("bearer" = [])),
    params(RetrieveQuery),
    responses((status = 200, body = RetrieveResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn retrieve(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<RetrieveQuery>,
) -> Result<Json<RetrieveResponse>, ApiError> {
    let bot_id = BotId::parse(&query.bot_id)?;
    let values = reveal::reveal_all(&state, &caller, &bot_id).await?;
    let data = values
        .into_iter()
        .map(|(field, value)| (field, Value::String(value.expose().to_string())))
        .collect();
    Ok(Json(RetrieveResponse {
        bot_id: bot_id.as_str().to_string(),
        data,
    }))
}
