//! `POST /api/v1/bots/check-text`: a composer's character counter, served from the rules
//! posts are held to (`ops::text`).

use axum::extract::State;
use platform::auth::Caller;
use platform::http::error::ErrorBody;
use platform::{ApiError, Json};
use serde::{Deserialize, Serialize};

use super::AppState;
use crate::ops;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"text": "Sunny and 21 °C in Lisbon today https://example.com/forecast #weather"}))]
pub struct CheckTextRequest {
    pub text: String,
    /// The bot the text is for: the answer then also says whether another bot has the same
    /// text within the duplicate window (X's rule; scheduling it would be refused).
    pub bot_id: Option<String>,
}

/// An entity X links; `start..end` counts code points of the NFC text.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EntityView {
    pub value: String,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TextCheckView {
    /// The text as X stores it (NFC).
    pub text: String,
    /// X's weighted length (URLs 23, emoji and CJK 2).
    pub weighted_length: usize,
    pub max_weighted_length: usize,
    /// Weighted characters left; negative when over.
    pub remaining: i64,
    /// Within the limit and free of characters X refuses; an empty text is not.
    pub valid: bool,
    /// The weighted length per mille of the limit (a length meter's fill).
    pub permillage: usize,
    /// With `bot_id`: whether another bot has identical or near-identical text within the
    /// duplicate window, so scheduling this text for that bot would be refused (409).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_elsewhere: Option<bool>,
    /// The part of the text within the limit, as UTF-16 indices `[start, end]` (inclusive):
    /// what a composer leaves unhighlighted.
    pub valid_range: [usize; 2],
    pub urls: Vec<EntityView>,
    pub mentions: Vec<EntityView>,
    pub hashtags: Vec<EntityView>,
    pub cashtags: Vec<EntityView>,
}

fn views(entities: Vec<x_text::Entity>) -> Vec<EntityView> {
    entities
        .into_iter()
        .map(|e| EntityView {
            value: e.value,
            start: e.start,
            end: e.end,
        })
        .collect()
}

/// Count a text as X counts a post: the character counter of a composer.
#[utoipa::path(post, path = "/api/v1/bots/check-text", tag = "posts", security(("bearer" = [])),
    request_body = CheckTextRequest,
    responses((status = 200, body = TextCheckView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn check(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<CheckTextRequest>,
) -> Result<Json<TextCheckView>, ApiError> {
    let checked =
        ops::text::check(&state, &caller, &request.text, request.bot_id.as_deref()).await?;
    let parsed = checked.parsed;
    Ok(Json(TextCheckView {
        text: checked.text,
        weighted_length: parsed.weighted_length,
        max_weighted_length: x_text::MAX_WEIGHTED_LENGTH,
        remaining: x_text::MAX_WEIGHTED_LENGTH as i64 - parsed.weighted_length as i64,
        valid: parsed.valid,
        permillage: parsed.permillage,
        duplicate_elsewhere: checked.duplicate_elsewhere,
        valid_range: [parsed.valid_range.0, parsed.valid_range.1],
        urls: views(checked.urls),
        mentions: views(checked.mentions),
        hashtags: views(checked.hashtags),
        cashtags: views(checked.cashtags),
    }))
}
