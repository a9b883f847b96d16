//! Media for posts over HTTP: upload the bytes (the request's body, typed by its
//! `Content-Type`), read a medium's description, delete one no pending post carries
//! (`ops::media` does each).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use platform::auth::Caller;
use platform::http::error::ErrorBody;
use platform::{ApiError, Json, Query};
use serde::{Deserialize, Serialize};

use super::AppState;
use crate::ops;
use crate::ops::media::NewMedia;
use crate::store::media::MediaRow;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UploadParams {
    /// What the medium shows, for people who cannot see it (at most 1,000 characters; X
    /// shows it with the post).
    pub alt_text: Option<String>,
}

/// The file itself, as the request's body.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct MediaFile(#[allow(dead_code)] Vec<u8>);

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MediaView {
    /// Name it in a post's `media_ids`.
    pub media_id: String,
    pub bot_id: String,
    pub media_type: String,
    pub size_bytes: i64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    pub alt_text: Option<String>,
    /// `stored` (kept here until a post carrying it is published) or `published` (the bytes
    /// are gone; X has it).
    pub state: String,
    /// X's media id, once uploaded to X.
    pub x_media_id: Option<String>,
    pub created_at: String,
    /// RFC 3339: when a post carrying it was published.
    pub published_at: Option<String>,
}

impl From<MediaRow> for MediaView {
    fn from(row: MediaRow) -> Self {
        Self {
            media_id: row.media_id,
            bot_id: row.bot_id,
            media_type: row.media_type,
            size_bytes: row.size_bytes,
            sha256: row.sha256,
            alt_text: row.alt_text,
            state: row.state.as_str().to_string(),
            x_media_id: row.x_media_id,
            created_at: platform::time_fmt::rfc3339_from_millis(row.created_at),
            published_at: row
                .published_at
                .map(platform::time_fmt::rfc3339_from_millis),
        }
    }
}

/// Upload a medium for the bot's posts: the body is the file (`image/jpeg`, `image/png`,
/// `image/webp`, `image/gif` or `video/mp4`, within X's limits and
/// `bot_manager.media_max_bytes`). It is kept until a post carrying it is published, and
/// uploaded to X in chunks right before that post is sent.
#[utoipa::path(post, path = "/api/v1/bots/{bot_id}/media", operation_id = "upload_media", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), UploadParams),
    request_body(content((MediaFile = "image/jpeg"), (MediaFile = "image/png"), (MediaFile = "image/webp"),
        (MediaFile = "image/gif"), (MediaFile = "video/mp4"))),
    responses((status = 201, body = MediaView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody)))]
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(bot_id): Path<String>,
    Query(params): Query<UploadParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<MediaView>), ApiError> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let new = NewMedia {
        media_type,
        alt_text: params.alt_text,
        bytes: body,
    };
    let row = ops::media::upload(&state, &caller, &bot_id, new).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// A medium's description and whether X has it.
#[utoipa::path(get, path = "/api/v1/bots/{bot_id}/media/{media_id}", operation_id = "get_media", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("media_id" = String, Path)),
    responses((status = 200, body = MediaView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path((bot_id, media_id)): Path<(String, String)>,
) -> Result<Json<MediaView>, ApiError> {
    let row = ops::media::get(&state, &caller, (&bot_id, &media_id)).await?;
    Ok(Json(row.into()))
}

/// Delete a medium no post waiting to go out carries.
#[utoipa::path(delete, path = "/api/v1/bots/{bot_id}/media/{media_id}", operation_id = "delete_media", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("media_id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((bot_id, media_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    ops::media::delete(&state, &caller, (&bot_id, &media_id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
