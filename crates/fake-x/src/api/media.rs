//! `POST /2/media/upload`, one-shot: `multipart/form-data` with the bytes in `media` and a
//! `media_category` (`tweet_image`, `tweet_gif`, `tweet_video`). Not in X's document 2.98
//! (see `third_party/x-api/`'s notes); shaped as X's docs describe it, user context with
//! `media.write`. The id it returns is the user's to attach to a post.

use axum::Json;
use axum::extract::State;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{Access, AppState, Call, admit, invalid, status_problem};
use crate::state::MediaKind;

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
