//! Review over HTTP: submit, approve and request changes on a post, its history, and who
//! must have posts reviewed (a bot; a team, set by admins). `ops::reviews` does each.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use platform::auth::Caller;
use platform::http::error::ErrorBody;
use platform::{ApiError, Json};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::posts::respond;
use crate::ops;
use crate::ops::reviews::Policy;
use crate::store::history::HistoryEntry;
use crate::store::reviews::PolicyRow;

fn rfc3339(ms: i64) -> String {
    platform::time_fmt::rfc3339_from_millis(ms)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"content_version": 2, "comment": "Checked the forecast source; good to go."}))]
pub struct ReviewRequest {
    /// The post's `content_version` the reviewer read: a post whose content changed since is
    /// refused (409), so an approval always names the content it saw.
    pub content_version: i64,
    /// Why (optional to approve, required to request changes; at most 2000 characters).
    pub comment: Option<String>,
}

/// Ask for review of a draft (or of a post with changes requested), keeping its time.
#[utoipa::path(post, path = "/api/v1/bots/{bot_id}/posts/{post_id}/submit", operation_id = "submit_post", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("post_id" = String, Path)),
    responses((status = 200, body = super::posts::PostView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn submit(
    State(state): State<AppState>,
    caller: Caller,
    Path((bot_id, post_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let post = ops::reviews::submit(&state, &caller, (&bot_id, &post_id)).await?;
    Ok(respond(StatusCode::OK, post))
}

/// Approve a post pending review (`posts:approve`; not one's own unless the policy allows).
/// With a time it is scheduled, else it is `approved` until scheduled or published.
#[utoipa::path(post, path = "/api/v1/bots/{bot_id}/posts/{post_id}/approve", operation_id = "approve_post", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("post_id" = String, Path)), request_body = ReviewRequest,
    responses((status = 200, body = super::posts::PostView), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path((bot_id, post_id)): Path<(String, String)>,
    Json(request): Json<ReviewRequest>,
) -> Result<Response, ApiError> {
    let ids = (bot_id.as_str(), post_id.as_str());
    let comment = request.comment.as_deref();
    let post =
        ops::reviews::approve(&state, &caller, ids, request.content_version, comment).await?;
    Ok(respond(StatusCode::OK, post))
}

/// Send a post pending review back to its author with what should change (`posts:approve`;
/// a comment is required).
#[utoipa::path(post, path = "/api/v1/bots/{bot_id}/posts/{post_id}/request-changes", operation_id = "request_post_changes", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("post_id" = String, Path)), request_body = ReviewRequest,
    responses((status = 200, body = super::posts::PostView), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn request_changes(
    State(state): State<AppState>,
    caller: Caller,
    Path((bot_id, post_id)): Path<(String, String)>,
    Json(request): Json<ReviewRequest>,
) -> Result<Response, ApiError> {
    let ids = (bot_id.as_str(), post_id.as_str());
    let comment = request.comment.as_deref();
    let post =
        ops::reviews::request_changes(&state, &caller, ids, request.content_version, comment)
            .await?;
    Ok(respond(StatusCode::OK, post))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryEntryView {
    /// RFC 3339.
    pub at: String,
    /// A user id, or `client:<id>`.
    pub actor_id: String,
    /// `created`, `edited`, `scheduled`, `publish_requested`, `retry_requested`, `submitted`,
    /// `approved`, `changes_requested` or `cancelled`.
    pub action: String,
    pub content_version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// For `created` and content edits: the content as it became (text, media_ids, options).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub content: Option<serde_json::Value>,
}

impl From<HistoryEntry> for HistoryEntryView {
    fn from(entry: HistoryEntry) -> Self {
        Self {
            at: rfc3339(entry.at),
            actor_id: entry.actor_id,
            action: entry.action,
            content_version: entry.content_version,
            comment: entry.comment,
            content: entry.content,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PostHistory {
    /// Oldest first.
    pub items: Vec<HistoryEntryView>,
}

/// A post's history: who wrote, edited, submitted, approved or asked for changes, and when.
#[utoipa::path(get, path = "/api/v1/bots/{bot_id}/posts/{post_id}/history", operation_id = "post_history", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("post_id" = String, Path)),
    responses((status = 200, body = PostHistory), (status = 404, body = ErrorBody)))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path((bot_id, post_id)): Path<(String, String)>,
) -> Result<Json<PostHistory>, ApiError> {
    let entries = ops::reviews::history(&state, &caller, (&bot_id, &post_id)).await?;
    Ok(Json(PostHistory {
        items: entries.into_iter().map(HistoryEntryView::from).collect(),
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReviewPolicyView {
    /// Whether the bot's posts need an approval before they are scheduled.
    pub approval_required: bool,
    /// Which levels require it: `setting`, `team`, `bot`.
    pub required_by: Vec<String>,
    /// Whether the bot itself requires it (its team or the setting may, too).
    pub bot_requires: bool,
    pub allow_self_approval: bool,
}

impl From<Policy> for ReviewPolicyView {
    fn from(policy: Policy) -> Self {
        Self {
            approval_required: policy.approval_required,
            required_by: policy.required_by.iter().map(|s| s.to_string()).collect(),
            bot_requires: policy.bot_requires,
            allow_self_approval: policy.allow_self_approval,
        }
    }
}

/// The review policy in force for a bot, and which levels make it.
#[utoipa::path(get, path = "/api/v1/bots/{bot_id}/review-policy", operation_id = "get_bot_review_policy", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path)),
    responses((status = 200, body = ReviewPolicyView), (status = 404, body = ErrorBody)))]
pub async fn bot_policy(
    State(state): State<AppState>,
    caller: Caller,
    Path(bot_id): Path<String>,
) -> Result<Json<ReviewPolicyView>, ApiError> {
    let policy = ops::reviews::bot_policy(&state, &caller, &bot_id).await?;
    Ok(Json(policy.into()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"approval_required": true}))]
pub struct BotPolicyRequest {
    pub approval_required: bool,
}

/// Make a bot require review, or stop requiring it itself (`posts:approve`; its team or the
/// setting may still require it).
#[utoipa::path(put, path = "/api/v1/bots/{bot_id}/review-policy", operation_id = "set_bot_review_policy", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path)), request_body = BotPolicyRequest,
    responses((status = 200, body = ReviewPolicyView), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_bot_policy(
    State(state): State<AppState>,
    caller: Caller,
    Path(bot_id): Path<String>,
    Json(request): Json<BotPolicyRequest>,
) -> Result<Json<ReviewPolicyView>, ApiError> {
    let policy =
        ops::reviews::set_bot_policy(&state, &caller, &bot_id, request.approval_required).await?;
    Ok(Json(policy.into()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"approval_required": true, "allow_self_approval": false}))]
pub struct TeamPolicyRequest {
    pub approval_required: bool,
    /// Whether an author may approve their own post in this team; absent: as the setting
    /// `bot_manager.approvals.allow_self_approval` says.
    pub allow_self_approval: Option<bool>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TeamPolicyView {
    pub team: String,
    pub approval_required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_self_approval: Option<bool>,
    pub updated_by: String,
    /// RFC 3339.
    pub updated_at: String,
}

fn team_view(team: String, row: PolicyRow) -> TeamPolicyView {
    TeamPolicyView {
        team,
        approval_required: row.approval_required,
        allow_self_approval: row.allow_self_approval,
        updated_by: row.updated_by,
        updated_at: rfc3339(row.updated_at),
    }
}

/// A team's review policy.
#[utoipa::path(get, path = "/api/v1/bots/review-policies/{team}", operation_id = "get_team_review_policy", tag = "posts", security(("bearer" = [])),
    params(("team" = String, Path)),
    responses((status = 200, body = TeamPolicyView), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn team_policy(
    State(state): State<AppState>,
    caller: Caller,
    Path(team): Path<String>,
) -> Result<Json<TeamPolicyView>, ApiError> {
    let row = ops::reviews::team_policy(&state, &caller, &team).await?;
    Ok(Json(team_view(team, row)))
}

/// Set a team's review policy (admins).
#[utoipa::path(put, path = "/api/v1/bots/review-policies/{team}", operation_id = "set_team_review_policy", tag = "posts", security(("bearer" = [])),
    params(("team" = String, Path)), request_body = TeamPolicyRequest,
    responses((status = 200, body = TeamPolicyView), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn set_team_policy(
    State(state): State<AppState>,
    caller: Caller,
    Path(team): Path<String>,
    Json(request): Json<TeamPolicyRequest>,
) -> Result<Json<TeamPolicyView>, ApiError> {
    let wanted = (request.approval_required, request.allow_self_approval);
    let row = ops::reviews::set_team_policy(&state, &caller, &team, wanted).await?;
    Ok(Json(team_view(team, row)))
}

/// Remove a team's review policy (admins).
#[utoipa::path(delete, path = "/api/v1/bots/review-policies/{team}", operation_id = "delete_team_review_policy", tag = "posts", security(("bearer" = [])),
    params(("team" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_team_policy(
    State(state): State<AppState>,
    caller: Caller,
    Path(team): Path<String>,
) -> Result<StatusCode, ApiError> {
    ops::reviews::delete_team_policy(&state, &caller, &team).await?;
    Ok(StatusCode::NO_CONTENT)
}
