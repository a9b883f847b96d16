//! Threads over HTTP: create (drafts, scheduled or now), read with every part's state and X
//! id, schedule or publish drafts, cancel what is not on X, and resume after a failed part
//! (`ops::threads` does each).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use platform::auth::Caller;
use platform::http::error::ErrorBody;
use platform::{ApiError, Json};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::posts::{PostView, ScheduleRequest};
use crate::model::{PostState, ReplySettings};
use crate::ops;
use crate::ops::threads::{NewPart, NewThread, Thread};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThreadPartRequest {
    #[serde(default)]
    pub text: String,
    /// At most 4: ids of media uploaded here (`POST …/media`) or X media ids.
    #[serde(default)]
    pub media_ids: Vec<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"parts": [{"text": "Storm update, a thread (1/3)"}, {"text": "Winds up to 90 km/h on the coast after 18:00. (2/3)"}, {"text": "Stay off the piers; updates at 21:00. (3/3)"}], "publish_now": true}))]
pub struct CreateThreadRequest {
    /// 2 to 25 parts, in order; each after the first replies to the one before.
    pub parts: Vec<ThreadPartRequest>,
    /// Who may reply to the first part (absent: everyone).
    pub reply_settings: Option<ReplySettings>,
    /// Schedule for this time (RFC 3339); absent: drafts.
    pub run_at: Option<String>,
    /// Publish as soon as possible (overrides run_at).
    #[serde(default)]
    pub publish_now: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ThreadView {
    pub thread_id: String,
    pub bot_id: String,
    /// `draft`, `in_review` (a part waits for review), `approved` (every part reviewed: schedule
    /// it), `scheduled`, `publishing`, `published`, `stopped` (a part failed: resume it) or
    /// `cancelled`.
    pub state: String,
    /// In order, each with its own state and X id.
    pub parts: Vec<PostView>,
    /// RFC 3339.
    pub created_at: String,
}

/// The thread's state from its parts'.
fn thread_state(parts: &[PostView]) -> &'static str {
    let all = |s: PostState| parts.iter().all(|p| p.state == s);
    let any = |s: PostState| parts.iter().any(|p| p.state == s);
    if all(PostState::Published) {
        "published"
    } else if any(PostState::Failed) || any(PostState::Missed) {
        "stopped"
    } else if any(PostState::Cancelled) {
        "cancelled"
    } else if all(PostState::Draft) {
        "draft"
    } else if any(PostState::PendingReview) || any(PostState::ChangesRequested) {
        "in_review"
    } else if parts
        .iter()
        .all(|p| matches!(p.state, PostState::Draft | PostState::Approved))
    {
        "approved"
    } else if all(PostState::Scheduled) {
        "scheduled"
    } else {
        "publishing"
    }
}

impl From<Thread> for ThreadView {
    fn from(thread: Thread) -> Self {
        let parts: Vec<PostView> = thread.parts.into_iter().map(PostView::from).collect();
        Self {
            state: thread_state(&parts).to_string(),
            thread_id: thread.thread.thread_id,
            bot_id: thread.thread.bot_id,
            created_at: platform::time_fmt::rfc3339_from_millis(thread.thread.created_at),
            parts,
        }
    }
}

/// Create a thread: drafts, scheduled (`run_at`) or to publish now. Each part after the
/// first replies to the one before; a failure midway stops the rest (resume it).
#[utoipa::path(post, path = "/api/v1/bots/{bot_id}/threads", operation_id = "create_thread", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path)), request_body = CreateThreadRequest,
    responses((status = 201, body = ThreadView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(bot_id): Path<String>,
    Json(request): Json<CreateThreadRequest>,
) -> Result<(StatusCode, Json<ThreadView>), ApiError> {
    let new = NewThread {
        parts: request
            .parts
            .into_iter()
            .map(|p| NewPart {
                text: p.text,
                media_ids: p.media_ids,
            })
            .collect(),
        reply_settings: request.reply_settings,
        run_at: request.run_at,
        publish_now: request.publish_now,
    };
    let thread = ops::threads::create(&state, &caller, &bot_id, new).await?;
    Ok((StatusCode::CREATED, Json(thread.into())))
}

/// A thread with every part's state and X id.
#[utoipa::path(get, path = "/api/v1/bots/{bot_id}/threads/{thread_id}", operation_id = "get_thread", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("thread_id" = String, Path)),
    responses((status = 200, body = ThreadView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path((bot_id, thread_id)): Path<(String, String)>,
) -> Result<Json<ThreadView>, ApiError> {
    let thread = ops::threads::get(&state, &caller, (&bot_id, &thread_id)).await?;
    Ok(Json(thread.into()))
}

/// Schedule a thread that has not started (drafts, or a scheduled one to move).
#[utoipa::path(post, path = "/api/v1/bots/{bot_id}/threads/{thread_id}/schedule", operation_id = "schedule_thread", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("thread_id" = String, Path)), request_body = ScheduleRequest,
    responses((status = 200, body = ThreadView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn schedule(
    State(state): State<AppState>,
    caller: Caller,
    Path((bot_id, thread_id)): Path<(String, String)>,
    Json(request): Json<ScheduleRequest>,
) -> Result<Json<ThreadView>, ApiError> {
    let ids = (bot_id.as_str(), thread_id.as_str());
    let thread = ops::threads::schedule(&state, &caller, ids, Some(&request.run_at)).await?;
    Ok(Json(thread.into()))
}

/// Publish a thread that has not started, now.
#[utoipa::path(post, path = "/api/v1/bots/{bot_id}/threads/{thread_id}/publish", operation_id = "publish_thread", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("thread_id" = String, Path)),
    responses((status = 202, body = ThreadView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    Path((bot_id, thread_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<ThreadView>), ApiError> {
    let ids = (bot_id.as_str(), thread_id.as_str());
    let thread = ops::threads::schedule(&state, &caller, ids, None).await?;
    Ok((StatusCode::ACCEPTED, Json(thread.into())))
}

/// Cancel every part not on X (what is published stays).
#[utoipa::path(post, path = "/api/v1/bots/{bot_id}/threads/{thread_id}/cancel", operation_id = "cancel_thread", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("thread_id" = String, Path)),
    responses((status = 200, body = ThreadView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path((bot_id, thread_id)): Path<(String, String)>,
) -> Result<Json<ThreadView>, ApiError> {
    let thread = ops::threads::cancel(&state, &caller, (&bot_id, &thread_id)).await?;
    Ok(Json(thread.into()))
}

/// Resume a thread stopped at a failed part: that part runs again (looked for on X first if
/// its send may have got there) and the rest follow; published parts are not sent again.
#[utoipa::path(post, path = "/api/v1/bots/{bot_id}/threads/{thread_id}/resume", operation_id = "resume_thread", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("thread_id" = String, Path)),
    responses((status = 202, body = ThreadView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    Path((bot_id, thread_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<ThreadView>), ApiError> {
    let thread = ops::threads::resume(&state, &caller, (&bot_id, &thread_id)).await?;
    Ok((StatusCode::ACCEPTED, Json(thread.into())))
}
