//! Ingestion over HTTP: one event (the contract) or a batch (NDJSON or a JSON array). Browser
//! console logs come in this way. An event is stored before the answer; a batch is all or
//! nothing, and a bad line is named.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use platform::auth::Caller;
use platform::http::error::ErrorBody;
use platform::{ApiError, ErrorCode, Json};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AppState;
use crate::ops::ingest::{self, Submission};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"log_type": "console", "log_data": {"timestamp": "2027-01-15T08:00:00Z", "message": "clicked Publish", "source": "web-ui", "level": "info"}}))]
pub struct SubmitRequest {
    /// user_activity, debug, terminal or console.
    pub log_type: String,
    /// `timestamp` (RFC 3339 or Unix ms), `message`, `source` (the emitting service or app),
    /// and optionally `level`, `action`, `request_id`, `id` (an idempotency key); anything
    /// else is kept as data.
    #[schema(value_type = Object)]
    pub log_data: Value,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubmitResponse {
    /// Always `log_submitted`.
    pub status: &'static str,
    pub log_id: String,
}

impl From<SubmitRequest> for Submission {
    fn from(request: SubmitRequest) -> Self {
        Self {
            log_type: request.log_type,
            log_data: request.log_data,
        }
    }
}

/// Submit one log event (contract).
#[utoipa::path(post, path = "/api/v1/logs/submit", tag = "logs", security(("bearer" = [])),
    request_body = SubmitRequest,
    responses((status = 201, body = SubmitResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn submit(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<SubmitRequest>,
) -> Result<(StatusCode, Json<SubmitResponse>), ApiError> {
    let log_id = ingest::submit(&state, &caller, request.into()).await?;
    Ok((
        StatusCode::CREATED,
        Json(SubmitResponse {
            status: "log_submitted",
            log_id,
        }),
    ))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchResponse {
    /// Always `logs_submitted`.
    pub status: &'static str,
    /// Events in the batch.
    pub accepted: usize,
    /// Events new to the store (a resent event is stored once).
    pub stored: u64,
    pub log_ids: Vec<String>,
}

/// The items of a batch body: a JSON array, or NDJSON (one object per line).
fn batch_items(headers: &HeaderMap, body: &[u8]) -> Result<Vec<(usize, Value)>, ApiError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/json") {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Array(items)) => Ok(items
                .into_iter()
                .enumerate()
                .map(|(i, v)| (i + 1, v))
                .collect()),
            Ok(_) => Err(ApiError::invalid_data(
                "a JSON batch is an array of {log_type, log_data}",
            )),
            Err(err) => Err(ApiError::new(
                ErrorCode::MalformedJson,
                format!("the body is not valid JSON: {err}"),
            )),
        }
    } else if content_type.starts_with("application/x-ndjson") {
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::invalid_data("NDJSON must be UTF-8"))?;
        text.lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(i, line)| {
                serde_json::from_str(line)
                    .map(|v| (i + 1, v))
                    .map_err(|err| {
                        ApiError::new(ErrorCode::MalformedJson, format!("line {}: {err}", i + 1))
                    })
            })
            .collect()
    } else {
        Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send a batch as `application/json` (an array) or `application/x-ndjson`",
        ))
    }
}

/// Submit a batch of events: a JSON array or NDJSON of `{log_type, log_data}`. All or
/// nothing; an invalid item is named by its position.
#[utoipa::path(post, path = "/api/v1/logs/batch", tag = "logs", security(("bearer" = [])),
    request_body(content = Vec<SubmitRequest>, description = "JSON array, or NDJSON with Content-Type application/x-ndjson"),
    responses((status = 201, body = BatchResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody)))]
pub async fn batch(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<BatchResponse>), ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                "the batch is larger than this route accepts; split it",
            )
        } else {
            ApiError::invalid_data(format!(
                "the body could not be read: {}",
                rejection.body_text()
            ))
        }
    })?;
    let items = batch_items(&headers, &body)?;
    let mut submissions = Vec::with_capacity(items.len());
    for (position, item) in items {
        if let Some(field) = platform::http::input::nul_field(&item) {
            let refused = platform::http::input::nul_error(&field);
            return Err(ApiError::new(
                refused.code,
                format!("item {position}: {}", refused.message),
            ));
        }
        let request: SubmitRequest = serde_json::from_value(item)
            .map_err(|err| ApiError::invalid_data(format!("item {position}: {err}")))?;
        submissions.push((position, request.into()));
    }
    let accepted = submissions.len();
    let (log_ids, stored) = ingest::submit_batch(&state, &caller, submissions).await?;
    Ok((
        StatusCode::CREATED,
        Json(BatchResponse {
            status: "logs_submitted",
            accepted,
            stored,
            log_ids,
        }),
    ))
}
