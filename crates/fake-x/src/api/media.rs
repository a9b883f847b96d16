//! X's media upload: chunked (`initialize`, `append`, `finalize`, `STATUS`, alt text through
//! `POST /2/media/metadata`; limits in `state/uploads.rs`) and `POST /2/media/upload`, one-shot: `multipart/form-data` with the bytes in `media` and a
//! `media_category` (`tweet_image`, `tweet_gif`, `tweet_video`). Not in X's document 2.98
//! (see `third_party/x-api/`'s notes); shaped as X's docs describe it, user context with
//! `media.write`. The id it returns is the user's to attach to a post.

use axum::Json;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Access, AppState, Call, admit, invalid, status_problem};
use crate::state::{EXPIRES_AFTER_SECS, FakeX, Finalized, MediaKind, UploadRefused};

const CATEGORIES: &str = "tweet_image, tweet_gif, tweet_video";

/// The upload's bytes and category, or what is missing.
async fn read_form(mut form: Multipart) -> Result<(usize, String), Response> {
    let (mut size, mut category) = (None, None);
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| invalid("media", "", &format!("the form could not be read: {e}")))?
    {
        match field.name() {
            Some("media") => size = Some(field.bytes().await.map(|b| b.len()).unwrap_or(0)),
            Some("media_category") => category = field.text().await.ok(),
            _ => {}
        }
    }
    match (size, category) {
        (Some(size), Some(category)) if size > 0 => Ok((size, category)),
        (Some(size), None) if size > 0 => Err(invalid(
            "media_category",
            "",
            &format!("media_category is required: one of [{CATEGORIES}]"),
        )),
        _ => Err(invalid(
            "media",
            "",
            "media is required and must not be empty",
        )),
    }
}

pub(super) async fn upload(
    State(fake): State<AppState>,
    headers: HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> Response {
    let mut call = Call::new("POST", "/2/media/upload".into());
    let window = ("media.upload", fake.settings.post_limit);
    let user_id = match admit(&fake, &mut call, &headers, Access::media_upload(), window).await {
        Ok(principal) => principal.user_id.unwrap_or_default(),
        Err(response) => return call.finish(&fake, response),
    };
    let Ok(form) = form else {
        let message =
            format!("send multipart/form-data with `media` and `media_category` ({CATEGORIES})");
        return call.finish(&fake, invalid("media", "", &message));
    };
    let (size, category) = match read_form(form).await {
        Ok(read) => read,
        Err(response) => return call.finish(&fake, response),
    };
    let kind = match category.as_str() {
        "tweet_image" => MediaKind::Photo,
        "tweet_gif" => MediaKind::AnimatedGif,
        "tweet_video" => MediaKind::Video,
        other => {
            let message =
                format!("The `media_category` value [{other}] is not one of [{CATEGORIES}]");
            return call.finish(&fake, invalid("media_category", other, &message));
        }
    };
    let response = match fake.add_media(&user_id, kind) {
        Some(media) => (
            StatusCode::OK,
            Json(json!({"data": {
                "id": media.media_id,
                "media_key": media.media_key,
                "size": size,
                "expires_after_secs": 86_400,
            }})),
        )
            .into_response(),
        None => status_problem(StatusCode::UNAUTHORIZED),
    };
    call.finish(&fake, response)
}

#[derive(Deserialize)]
pub(super) struct InitializeRequest {
    media_type: Option<String>,
    total_bytes: Option<u64>,
    media_category: Option<String>,
}

fn refused_upload(refused: UploadRefused) -> Response {
    invalid(refused.parameter, "", &refused.message)
}

/// `POST /2/media/upload/initialize`: declares the type and size of a chunked upload.
pub(super) async fn initialize(
    State(fake): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<InitializeRequest>, JsonRejection>,
) -> Response {
    let mut call = Call::new("POST", "/2/media/upload/initialize".into());
    let window = ("media.upload", fake.settings.post_limit);
    let owner = match admit(&fake, &mut call, &headers, Access::media_upload(), window).await {
        Ok(principal) => principal.user_id.unwrap_or_default(),
        Err(response) => return call.finish(&fake, response),
    };
    let Ok(Json(request)) = body else {
        let message = "send JSON with media_type and total_bytes";
        return call.finish(&fake, invalid("media_type", "", message));
    };
    let (Some(media_type), Some(total_bytes)) = (request.media_type, request.total_bytes) else {
        let message = "media_type and total_bytes are required";
        return call.finish(&fake, invalid("media_type", "", message));
    };
    if let Some(category) = request.media_category.as_deref()
        && !["tweet_image", "tweet_gif", "tweet_video"].contains(&category)
    {
        let message =
            format!("The `media_category` value [{category}] is not one of [{CATEGORIES}]");
        return call.finish(&fake, invalid("media_category", category, &message));
    }
    let response = match fake.start_upload(&owner, &media_type, total_bytes) {
        Ok((id, key)) => Json(json!({"data": {
            "id": id, "media_key": key, "expires_after_secs": EXPIRES_AFTER_SECS,
        }}))
        .into_response(),
        Err(refused) => refused_upload(refused),
    };
    call.finish(&fake, response)
}

/// The segment's index and length from the form, or what is missing.
async fn read_segment(mut form: Multipart) -> Result<(u32, usize), Response> {
    let (mut index, mut len) = (None, None);
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| invalid("media", "", &format!("the form could not be read: {e}")))?
    {
        match field.name() {
            Some("media") => len = Some(field.bytes().await.map(|b| b.len()).unwrap_or(0)),
            Some("segment_index") => {
                index = field.text().await.ok().and_then(|t| t.trim().parse().ok());
            }
            _ => {}
        }
    }
    match (index, len) {
        (Some(index), Some(len)) => Ok((index, len)),
        (None, _) => Err(invalid("segment_index", "", "segment_index is required")),
        (_, None) => Err(invalid("media", "", "media is required")),
    }
}

/// `POST /2/media/upload/{id}/append`: one segment (`multipart/form-data`: `media`,
/// `segment_index`).
pub(super) async fn append(
    State(fake): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Multipart, MultipartRejection>,
) -> Response {
    let mut call = Call::new("POST", format!("/2/media/upload/{id}/append"));
    let window = ("media.append", fake.settings.read_limit);
    let owner = match admit(&fake, &mut call, &headers, Access::media_upload(), window).await {
        Ok(principal) => principal.user_id.unwrap_or_default(),
        Err(response) => return call.finish(&fake, response),
    };
    let Ok(form) = form else {
        let message = "send multipart/form-data with `media` and `segment_index`";
        return call.finish(&fake, invalid("media", "", message));
    };
    let (index, len) = match read_segment(form).await {
        Ok(segment) => segment,
        Err(response) => return call.finish(&fake, response),
    };
    let response = match fake.append_segment(&owner, &id, index, len) {
        Ok(()) => {
            let expires_at = fake.unix_now() + EXPIRES_AFTER_SECS;
            Json(json!({"data": {"expires_at": expires_at}})).into_response()
        }
        Err(refused) => refused_upload(refused),
    };
    call.finish(&fake, response)
}

/// X's description of an upload: with `processing_info` while a video is processed.
fn described(fake: &FakeX, upload: &Finalized) -> Value {
    let mut data = json!({
        "id": upload.media_id,
        "media_key": upload.media_key,
        "size": upload.size,
        "expires_after_secs": EXPIRES_AFTER_SECS,
    });
    data["processing_info"] = match upload.processing_until {
        Some(until) => json!({
            "state": "in_progress",
            "check_after_secs": until.saturating_sub(fake.now_millis()).div_ceil(1000).max(1),
            "progress_percent": 50,
        }),
        None => json!({"state": "succeeded", "progress_percent": 100}),
    };
    json!({ "data": data })
}

/// `POST /2/media/upload/{id}/finalize`: the segments add up; a video starts processing.
pub(super) async fn finalize(
    State(fake): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut call = Call::new("POST", format!("/2/media/upload/{id}/finalize"));
    let window = ("media.upload", fake.settings.post_limit);
    let owner = match admit(&fake, &mut call, &headers, Access::media_upload(), window).await {
        Ok(principal) => principal.user_id.unwrap_or_default(),
        Err(response) => return call.finish(&fake, response),
    };
    let response = match fake.finalize_upload(&owner, &id) {
        Ok(upload) => Json(described(&fake, &upload)).into_response(),
        Err(refused) => refused_upload(refused),
    };
    call.finish(&fake, response)
}

#[derive(Deserialize)]
pub(super) struct StatusQuery {
    command: Option<String>,
    media_id: Option<String>,
}

/// `GET /2/media/upload?command=STATUS&media_id=…`: a finalized upload's processing.
pub(super) async fn status(
    State(fake): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<StatusQuery>,
) -> Response {
    let mut call = Call::new("GET", "/2/media/upload".into());
    let window = ("media.status", fake.settings.read_limit);
    let owner = match admit(&fake, &mut call, &headers, Access::media_upload(), window).await {
        Ok(principal) => principal.user_id.unwrap_or_default(),
        Err(response) => return call.finish(&fake, response),
    };
    if query.command.as_deref() != Some("STATUS") {
        return call.finish(&fake, invalid("command", "", "command must be STATUS"));
    }
    let id = query.media_id.unwrap_or_default();
    let response = match fake.upload_status(&owner, &id) {
        Some(upload) => Json(described(&fake, &upload)).into_response(),
        None => invalid("media_id", &id, "no finalized upload has this media_id"),
    };
    call.finish(&fake, response)
}

#[derive(Deserialize)]
pub(super) struct MetadataRequest {
    id: Option<String>,
    metadata: Option<Value>,
}

/// `POST /2/media/metadata`: a medium's alt text (at most 1,000 characters).
pub(super) async fn metadata(
    State(fake): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<MetadataRequest>, JsonRejection>,
) -> Response {
    let mut call = Call::new("POST", "/2/media/metadata".into());
    let window = ("media.metadata", fake.settings.read_limit);
    let owner = match admit(&fake, &mut call, &headers, Access::media_upload(), window).await {
        Ok(principal) => principal.user_id.unwrap_or_default(),
        Err(response) => return call.finish(&fake, response),
    };
    let Ok(Json(request)) = body else {
        return call.finish(&fake, invalid("id", "", "send JSON with id and metadata"));
    };
    let id = request.id.unwrap_or_default();
    let text = request
        .metadata
        .as_ref()
        .and_then(|m| m.pointer("/alt_text/text"))
        .and_then(Value::as_str)
        .map(String::from);
    let response = match text {
        Some(text) if text.chars().count() <= 1000 => {
            if fake.set_alt_text(&owner, &id, &text) {
                Json(json!({"data": {"id": id, "associated_metadata": {"alt_text": {"text": text}}}}))
                    .into_response()
            } else {
                invalid("id", &id, "no medium of yours has this id")
            }
        }
        _ => invalid(
            "metadata",
            "",
            "metadata.alt_text.text: 1 to 1000 characters",
        ),
    };
    call.finish(&fake, response)
}
