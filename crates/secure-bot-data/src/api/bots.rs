//! The RESTful routes: bots, their fields' metadata, masked reads, reveals, check-and-set
//! writes, and the delete / undelete / destroy lifecycle of versions.

use axum::extract::{Path, State};
use axum::http::header::{ETAG, IF_MATCH, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use platform::http::error::ErrorBody;
use platform::{ApiError, Json, Query};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{AppState, Listing, Page, parse_path};
use crate::model::{BotId, SecretValue};
use crate::ops::bots;
use crate::ops::lifecycle::{self, Lifecycle};
use crate::ops::reveal::{self, FieldValue};
use crate::ops::write::{self, FieldWrite, Ownership};
use crate::store::bots::BotSummary;
use crate::store::secrets::{Expect, FieldMeta};
use platform::auth::Caller;
use platform::time_fmt::rfc3339_from_unix as rfc3339;

/// The caller's bots (owner, team; admins and service clients: all).
#[utoipa::path(get, path = "/api/v1/botdata/bots", tag = "botdata", security(("bearer" = [])),
    params(Page), responses((status = 200, body = Listing<BotSummary>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list_bots(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<Page>,
) -> Result<Json<Listing<BotSummary>>, ApiError> {
    let limit = page.limit();
    let items = bots::list(&state, &caller, limit + 1, page.cursor.as_deref()).await?;
    Ok(Json(Listing::from_overfetch(items, limit, |bot| {
        bot.bot_id.clone()
    })))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BotMetadata {
    pub bot_id: String,
    pub owner_id: String,
    pub team: Option<String>,
    pub created_at: String,
    pub fields: Vec<FieldMeta>,
}

/// A bot's fields and their versions: metadata only, no values.
#[utoipa::path(get, path = "/api/v1/botdata/bots/{bot_id}", tag = "botdata", security(("bearer" = [])),
    params(("bot_id" = String, Path)),
    responses((status = 200, body = BotMetadata), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn bot_metadata(
    State(state): State<AppState>,
    caller: Caller,
    Path(bot_id): Path<String>,
) -> Result<Json<BotMetadata>, ApiError> {
    let bot_id = BotId::parse(&bot_id)?;
    let (bot, fields) = bots::metadata(&state, &caller, &bot_id, None).await?;
    Ok(Json(BotMetadata {
        bot_id: bot.bot_id,
        owner_id: bot.owner_id,
        team: bot.team,
        created_at: rfc3339(bot.created_at),
        fields,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct VersionQuery {
    /// A kept version; default the current one.
    pub version: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FieldResponse {
    pub bot_id: String,
    pub field: String,
    pub version: i64,
    /// Masked (`••••cdef`) unless revealed.
    pub value: String,
    pub masked: bool,
}

fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("digits are a valid header")
}

fn field_response(bot_id: &BotId, read: FieldValue, masked: bool) -> Response {
    let value = if masked {
        read.value.masked()
    } else {
        read.value.expose().to_string()
    };
    let mut response = Json(FieldResponse {
        bot_id: bot_id.as_str().to_string(),
        field: read.field,
        version: read.version,
        value,
        masked,
    })
    .into_response();
    response.headers_mut().insert(ETAG, etag(read.version));
    response
}

/// A field's value, masked (needs `botdata:read`). `ETag` is its version.
#[utoipa::path(get, path = "/api/v1/botdata/bots/{bot_id}/fields/{field}", tag = "botdata", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("field" = String, Path), VersionQuery),
    responses((status = 200, body = FieldResponse), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn read_masked(
    State(state): State<AppState>,
    caller: Caller,
    Path((bot_id, field)): Path<(String, String)>,
    Query(query): Query<VersionQuery>,
) -> Result<Response, ApiError> {
    let (bot_id, field) = parse_path(&bot_id, &field)?;
    let read = reveal::read(&state, &caller, &bot_id, &field, query.version, false).await?;
    Ok(field_response(&bot_id, read, true))
}

/// A field's value in clear (needs `botdata:reveal`; audited).
#[utoipa::path(post, path = "/api/v1/botdata/bots/{bot_id}/fields/{field}/reveal", tag = "botdata", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("field" = String, Path), VersionQuery),
    responses((status = 200, body = FieldResponse), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn reveal(
    State(state): State<AppState>,
    caller: Caller,
    Path((bot_id, field)): Path<(String, String)>,
    Query(query): Query<VersionQuery>,
) -> Result<Response, ApiError> {
    let (bot_id, field) = parse_path(&bot_id, &field)?;
    let read = reveal::read(&state, &caller, &bot_id, &field, query.version, true).await?;
    Ok(field_response(&bot_id, read, false))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"value": "<the secret>", "cas": 0}))]
pub struct WriteRequest {
    /// The secret, a string.
    #[schema(value_type = String)]
    pub value: Value,
    /// Check-and-set: write only if the current version is this one; 0 writes only if the
    /// field does not exist. The same as `If-Match: "<version>"` / `If-None-Match: *`.
    pub cas: Option<i64>,
    /// Only when this write registers a new bot (admins and service clients).
    pub owner_id: Option<String>,
    pub team: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WriteResponse {
    pub bot_id: String,
    pub field: String,
    pub version: i64,
}

/// What the write expects, from `cas` or the conditional headers (they must agree).
fn expectation(headers: &HeaderMap, cas: Option<i64>) -> Result<Expect, ApiError> {
    let from_header = if let Some(value) = headers.get(IF_MATCH) {
        let text = value
            .to_str()
            .ok()
            .map(|v| v.trim().trim_start_matches("W/").trim_matches('"'))
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|v| *v >= 1)
            .ok_or_else(|| {
                ApiError::invalid_data("If-Match: a version as the ETag gave it, e.g. \"3\"")
            })?;
        Some(Expect::Version(text))
    } else if let Some(value) = headers.get(IF_NONE_MATCH) {
        if value.as_bytes() != b"*" {
            return Err(ApiError::invalid_data(
                "If-None-Match: only `*` (create only)",
            ));
        }
        Some(Expect::Absent)
    } else {
        None
    };
    let from_body = match cas {
        None => None,
        Some(0) => Some(Expect::Absent),
        Some(v) if v > 0 => Some(Expect::Version(v)),
        Some(_) => return Err(ApiError::invalid_data("cas: 0 (create only) or a version")),
    };
    match (from_header, from_body) {
        (Some(a), Some(b)) if a != b => Err(ApiError::invalid_data(
            "cas and the conditional header disagree; send one",
        )),
        (Some(e), _) | (None, Some(e)) => Ok(e),
        (None, None) => Ok(Expect::Any),
    }
}

/// Write a field as a new version (needs `botdata:write`). Check-and-set with `cas`,
/// `If-Match` or `If-None-Match: *`; a stale version answers 409 with `current_version`.
#[utoipa::path(put, path = "/api/v1/botdata/bots/{bot_id}/fields/{field}", tag = "botdata", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("field" = String, Path)), request_body = WriteRequest,
    responses((status = 201, body = WriteResponse), (status = 200, body = WriteResponse),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn write_field(
    State(state): State<AppState>,
    caller: Caller,
    Path((bot_id, field)): Path<(String, String)>,
    headers: HeaderMap,
    Json(request): Json<WriteRequest>,
) -> Result<Response, ApiError> {
    let (bot_id, field) = parse_path(&bot_id, &field)?;
    let expect = expectation(&headers, request.cas)?;
    let value = SecretValue::parse(&field, request.value, state.settings.max_value_bytes)?;
    let ownership = Ownership::parse(request.owner_id, request.team)?;
    let written = write::write(
        &state,
        &caller,
        &bot_id,
        ownership,
        vec![FieldWrite {
            field,
            value,
            expect,
        }],
    )
    .await?;
    let written = written.into_iter().next().expect("one field written");
    let status = if written.version == 1 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = (
        status,
        Json(WriteResponse {
            bot_id: bot_id.as_str().to_string(),
            field: written.field,
            version: written.version,
        }),
    )
        .into_response();
    response.headers_mut().insert(ETAG, etag(written.version));
    Ok(response)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct VersionsQuery {
    /// Comma-separated versions, e.g. `1,2`; default the current one.
    pub versions: Option<String>,
}

impl VersionsQuery {
    fn parse(&self) -> Result<Option<Vec<i64>>, ApiError> {
        let Some(list) = &self.versions else {
            return Ok(None);
        };
        list.split(',')
            .map(|v| v.trim().parse::<i64>().ok().filter(|v| *v >= 1))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| {
                ApiError::invalid_data("versions: comma-separated version numbers, e.g. 1,2")
            })
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LifecycleResponse {
    pub bot_id: String,
    pub field: String,
    /// `deleted`, `undeleted` or `destroyed`.
    pub status: &'static str,
    /// The versions that changed (already-changed ones are left out).
    pub versions: Vec<i64>,
}

async fn lifecycle(
    state: AppState,
    caller: Caller,
    action: Lifecycle,
    bot_id: String,
    field: String,
    query: VersionsQuery,
) -> Result<Json<LifecycleResponse>, ApiError> {
    let (bot_id, field) = parse_path(&bot_id, &field)?;
    let versions =
        lifecycle::apply(&state, &caller, action, &bot_id, &field, query.parse()?).await?;
    Ok(Json(LifecycleResponse {
        bot_id: bot_id.as_str().to_string(),
        field: field.as_str().to_string(),
        status: match action {
            Lifecycle::Delete => "deleted",
            Lifecycle::Undelete => "undeleted",
            Lifecycle::Destroy => "destroyed",
        },
        versions,
    }))
}

/// Soft-delete versions (needs `botdata:delete`); undelete brings them back.
#[utoipa::path(delete, path = "/api/v1/botdata/bots/{bot_id}/fields/{field}", tag = "botdata", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("field" = String, Path), VersionsQuery),
    responses((status = 200, body = LifecycleResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_versions(
    State(state): State<AppState>,
    caller: Caller,
    Path((bot_id, field)): Path<(String, String)>,
    Query(query): Query<VersionsQuery>,
) -> Result<Json<LifecycleResponse>, ApiError> {
    lifecycle(state, caller, Lifecycle::Delete, bot_id, field, query).await
}

/// Restore soft-deleted versions (needs `botdata:delete`).
#[utoipa::path(post, path = "/api/v1/botdata/bots/{bot_id}/fields/{field}/undelete", tag = "botdata", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("field" = String, Path), VersionsQuery),
    responses((status = 200, body = LifecycleResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn undelete_versions(
    State(state): State<AppState>,
    caller: Caller,
    Path((bot_id, field)): Path<(String, String)>,
    Query(query): Query<VersionsQuery>,
) -> Result<Json<LifecycleResponse>, ApiError> {
    lifecycle(state, caller, Lifecycle::Undelete, bot_id, field, query).await
}

/// Destroy versions for good: their ciphertext and wrapped key are wiped (Admin only,
/// `botdata:destroy`).
#[utoipa::path(post, path = "/api/v1/botdata/bots/{bot_id}/fields/{field}/destroy", tag = "botdata", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("field" = String, Path), VersionsQuery),
    responses((status = 200, body = LifecycleResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn destroy_versions(
    State(state): State<AppState>,
    caller: Caller,
    Path((bot_id, field)): Path<(String, String)>,
    Query(query): Query<VersionsQuery>,
) -> Result<Json<LifecycleResponse>, ApiError> {
    lifecycle(state, caller, Lifecycle::Destroy, bot_id, field, query).await
}
