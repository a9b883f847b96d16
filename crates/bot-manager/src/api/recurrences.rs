//! Recurring posts over HTTP: create (its first week of occurrences made at once), list,
//! read with every occurrence made, pause, resume and end (`ops::recurrences` does each).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use platform::auth::Caller;
use platform::http::error::ErrorBody;
use platform::{ApiError, Json};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::posts::PostView;
use crate::model::ReplySettings;
use crate::ops;
use crate::ops::recurrences::{NewRecurrence, Recurrence};
use crate::recurrence::Rule;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"texts": ["Tide table for {date}: high water 06:12 and 18:40.", "Tides on {date}, in the harbour office's table (#{n})."], "rule": {"every": "day", "at": "07:00", "starts_on": "2031-03-17", "count": 60}}))]
pub struct CreateRecurrenceRequest {
    /// 1 to 50 text variants used in turn; `{date}` (the local date) and `{n}` (the
    /// occurrence's number) are filled in. No two occurrences may say the same: X refuses the
    /// same text from one account while the first is up.
    pub texts: Vec<String>,
    pub rule: Rule,
    /// Who may reply to each occurrence (absent: everyone).
    pub reply_settings: Option<ReplySettings>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OccurrenceView {
    /// 1-based.
    pub occurrence: i64,
    pub post: PostView,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecurrenceView {
    pub recurrence_id: String,
    pub bot_id: String,
    pub texts: Vec<String>,
    pub rule: Rule,
    pub reply_settings: Option<ReplySettings>,
    /// `active`, `paused` or `ended`.
    pub state: String,
    /// Occurrences the rule has in all.
    pub occurrences: usize,
    /// Occurrences skipped because their time passed while the rule was paused or the
    /// service was down (never sent late).
    pub skipped: i64,
    /// Occurrences a compliance check refused, and the last reason.
    pub refused: i64,
    pub last_refusal: Option<String>,
    /// RFC 3339: when the next occurrence not yet made into a post goes out.
    pub next_occurrence_at: Option<String>,
    /// The occurrences made into posts (up to a week ahead), each with its post.
    pub posts: Vec<OccurrenceView>,
    pub created_at: String,
}

impl From<Recurrence> for RecurrenceView {
    fn from(r: Recurrence) -> Self {
        let row = r.row;
        Self {
            recurrence_id: row.recurrence_id,
            bot_id: row.bot_id,
            texts: row.texts,
            rule: row.rule,
            reply_settings: row.reply_settings,
            state: row.state.as_str().to_string(),
            occurrences: r.total,
            skipped: row.skipped,
            refused: row.refused,
            last_refusal: row.last_refusal,
            next_occurrence_at: r.next_at.map(platform::time_fmt::rfc3339_from_millis),
            posts: r
                .posts
                .into_iter()
                .map(|(occurrence, post)| OccurrenceView {
                    occurrence: occurrence + 1,
                    post: post.into(),
                })
                .collect(),
            created_at: platform::time_fmt::rfc3339_from_millis(row.created_at),
        }
    }
}

/// Create a recurring post: a rule with an end, in the bot's time zone; occurrences become
/// posts a week ahead, reviewed and checked like any other.
#[utoipa::path(post, path = "/api/v1/bots/{bot_id}/recurrences", operation_id = "create_recurrence", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path)), request_body = CreateRecurrenceRequest,
    responses((status = 201, body = RecurrenceView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(bot_id): Path<String>,
    Json(request): Json<CreateRecurrenceRequest>,
) -> Result<(StatusCode, Json<RecurrenceView>), ApiError> {
    let new = NewRecurrence {
        texts: request.texts,
        rule: request.rule,
        reply_settings: request.reply_settings,
    };
    let made = ops::recurrences::create(&state, &caller, &bot_id, new).await?;
    Ok((StatusCode::CREATED, Json(made.into())))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecurrenceList {
    pub recurrences: Vec<RecurrenceView>,
}

/// The bot's recurring posts, oldest first.
#[utoipa::path(get, path = "/api/v1/bots/{bot_id}/recurrences", operation_id = "list_recurrences", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path)),
    responses((status = 200, body = RecurrenceList), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(bot_id): Path<String>,
) -> Result<Json<RecurrenceList>, ApiError> {
    let all = ops::recurrences::list(&state, &caller, &bot_id).await?;
    Ok(Json(RecurrenceList {
        recurrences: all.into_iter().map(RecurrenceView::from).collect(),
    }))
}

/// A recurring post with every occurrence made into a post.
#[utoipa::path(get, path = "/api/v1/bots/{bot_id}/recurrences/{recurrence_id}", operation_id = "get_recurrence", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("recurrence_id" = String, Path)),
    responses((status = 200, body = RecurrenceView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path((bot_id, recurrence_id)): Path<(String, String)>,
) -> Result<Json<RecurrenceView>, ApiError> {
    let found = ops::recurrences::get(&state, &caller, (&bot_id, &recurrence_id)).await?;
    Ok(Json(found.into()))
}

/// Pause: the occurrences made but not sent are cancelled; nothing more is made until resumed.
#[utoipa::path(post, path = "/api/v1/bots/{bot_id}/recurrences/{recurrence_id}/pause", operation_id = "pause_recurrence", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("recurrence_id" = String, Path)),
    responses((status = 200, body = RecurrenceView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn pause(
    State(state): State<AppState>,
    caller: Caller,
    Path((bot_id, recurrence_id)): Path<(String, String)>,
) -> Result<Json<RecurrenceView>, ApiError> {
    let paused = ops::recurrences::pause(&state, &caller, (&bot_id, &recurrence_id)).await?;
    Ok(Json(paused.into()))
}

/// Resume from now: occurrences whose time passed while paused are skipped, never sent late.
#[utoipa::path(post, path = "/api/v1/bots/{bot_id}/recurrences/{recurrence_id}/resume", operation_id = "resume_recurrence", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("recurrence_id" = String, Path)),
    responses((status = 200, body = RecurrenceView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    Path((bot_id, recurrence_id)): Path<(String, String)>,
) -> Result<Json<RecurrenceView>, ApiError> {
    let resumed = ops::recurrences::resume(&state, &caller, (&bot_id, &recurrence_id)).await?;
    Ok(Json(resumed.into()))
}

/// End for good: the occurrences made but not sent are cancelled (the rule stays readable).
#[utoipa::path(delete, path = "/api/v1/bots/{bot_id}/recurrences/{recurrence_id}", operation_id = "end_recurrence", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("recurrence_id" = String, Path)),
    responses((status = 200, body = RecurrenceView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn end(
    State(state): State<AppState>,
    caller: Caller,
    Path((bot_id, recurrence_id)): Path<(String, String)>,
) -> Result<Json<RecurrenceView>, ApiError> {
    let ended = ops::recurrences::end(&state, &caller, (&bot_id, &recurrence_id)).await?;
    Ok(Json(ended.into()))
}
