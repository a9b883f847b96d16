//! Posts over HTTP: create (with `Idempotency-Key`), edit or cancel until publishing
//! starts, schedule, publish now, and delete a published post from X (`ops::posts` does
//! each).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use platform::auth::Caller;
use platform::http::error::ErrorBody;
use platform::http::page::{Listing, clamp_limit};
use platform::{ApiError, Json, Query};
use serde::{Deserialize, Serialize};

use super::{AppState, etag, if_match};
use crate::model::{Poll, PostOptions, PostState, ReplySettings};
use crate::ops;
use crate::ops::posts::{Created, NewPost, PostChanges};
use crate::store::posts::PostRow;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PostView {
    pub post_id: String,
    pub bot_id: String,
    pub text: String,
    pub media_ids: Vec<String>,
    /// Reply, quote, poll and reply settings, where set.
    pub options: PostOptions,
    pub state: PostState,
    /// RFC 3339; when it is (or was) due.
    pub run_at: Option<String>,
    /// The post's id on X once published.
    pub x_post_id: Option<String>,
    /// Why it failed, was missed or waits.
    pub error: Option<String>,
    /// X's weighted length (of 280).
    pub weighted_length: usize,
    pub version: i64,
    /// Bumped by every change of what would be sent to X; a reviewer approves one.
    pub content_version: i64,
    /// Who approved this content and when; absent when not approved (or voided by an edit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalView>,
    pub created_at: String,
    pub updated_at: String,
    pub published_at: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApprovalView {
    /// The reviewer (a user id, or `client:<id>`).
    pub by: String,
    /// RFC 3339.
    pub at: String,
}

impl From<PostRow> for PostView {
    fn from(post: PostRow) -> Self {
        let ms = platform::time_fmt::rfc3339_from_millis;
        Self {
            weighted_length: x_text::weighted_length(&post.text),
            post_id: post.post_id,
            bot_id: post.bot_id,
            text: post.text,
            media_ids: post.media_ids,
            options: post.options,
            state: post.state,
            run_at: post.run_at.map(ms),
            x_post_id: post.x_post_id,
            error: post.error,
            version: post.version,
            content_version: post.content_version,
            approval: post.approval.map(|a| ApprovalView {
                by: a.by,
                at: ms(a.at),
            }),
            created_at: ms(post.created_at),
            updated_at: ms(post.updated_at),
            published_at: post.published_at.map(ms),
        }
    }
}

pub(super) fn respond(status: StatusCode, post: PostRow) -> Response {
    let tag = etag(post.version);
    let mut response = (status, Json(PostView::from(post))).into_response();
    response.headers_mut().insert(header::ETAG, tag);
    response
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"text": "Good morning! Sunny and 21 °C today. #weather", "publish_now": true}))]
pub struct CreatePostRequest {
    #[serde(default)]
    pub text: String,
    /// At most 4: ids of media uploaded here (`POST …/media`) or X media ids.
    #[serde(default)]
    pub media_ids: Vec<String>,
    /// The X post this one replies to.
    pub reply_to_x_post_id: Option<String>,
    /// The X post this one quotes (not with media or a poll).
    pub quote_x_post_id: Option<String>,
    /// A poll (not with media or a quote).
    pub poll: Option<Poll>,
    /// Who may reply (absent: everyone).
    pub reply_settings: Option<ReplySettings>,
    /// Schedule for this time (RFC 3339); absent: a draft.
    pub run_at: Option<String>,
    /// Publish as soon as possible (overrides run_at).
    #[serde(default)]
    pub publish_now: bool,
}

impl From<CreatePostRequest> for NewPost {
    fn from(request: CreatePostRequest) -> Self {
        Self {
            text: request.text,
            media_ids: request.media_ids,
            options: PostOptions {
                reply_to_x_post_id: request.reply_to_x_post_id,
                quote_x_post_id: request.quote_x_post_id,
                poll: request.poll,
                reply_settings: request.reply_settings,
            },
            run_at: request.run_at,
            publish_now: request.publish_now,
        }
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::invalid_data("Idempotency-Key: 1 to 255 visible ASCII characters")
        })?;
    Ok(Some(key.to_string()))
}

/// Create a post: a draft, scheduled (`run_at`) or to publish now. `Idempotency-Key` makes
/// a retried create return the first one's post.
#[utoipa::path(post, path = "/api/v1/bots/{bot_id}/posts", operation_id = "create_post", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("Idempotency-Key" = Option<String>, Header)), request_body = CreatePostRequest,
    responses((status = 201, body = PostView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(bot_id): Path<String>,
    headers: HeaderMap,
    Json(request): Json<CreatePostRequest>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let created =
        ops::posts::create(&state, &caller, &bot_id, key.as_deref(), request.into()).await?;
    Ok(match created {
        Created::New(post) => respond(StatusCode::CREATED, post),
        Created::Replayed(post) => {
            let mut response = respond(StatusCode::CREATED, post);
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            response
        }
    })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PostQuery {
    /// Only posts in this state.
    pub state: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// A bot's posts, oldest first.
#[utoipa::path(get, path = "/api/v1/bots/{bot_id}/posts", operation_id = "list_posts", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), PostQuery),
    responses((status = 200, body = Listing<PostView>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(bot_id): Path<String>,
    Query(query): Query<PostQuery>,
) -> Result<Json<Listing<PostView>>, ApiError> {
    let filter = query.state.as_deref().map(PostState::parse).transpose()?;
    let limit = clamp_limit(query.limit);
    let cursor = query.cursor.as_deref();
    let rows = ops::posts::list(&state, &caller, &bot_id, filter, cursor, limit + 1).await?;
    let views: Vec<PostView> = rows.into_iter().map(PostView::from).collect();
    Ok(Json(Listing::from_overfetch(views, limit, |p| {
        p.post_id.clone()
    })))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CalendarParams {
    /// RFC 3339, inclusive.
    pub from: Option<String>,
    /// RFC 3339, exclusive.
    pub to: Option<String>,
    /// One state or several, comma-separated (e.g. `scheduled,pending_review`).
    pub state: Option<String>,
    pub team: Option<String>,
    pub bot_id: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// The calendar's filters as a query gives them.
pub(super) struct CalendarFilter {
    pub from: Option<String>,
    pub to: Option<String>,
    /// One state or several, comma-separated.
    pub state: Option<String>,
    pub team: Option<String>,
    pub bot_id: Option<String>,
    pub cursor: Option<String>,
}

/// One page of the calendar, at most `limit` posts, and the next page's cursor.
pub(super) async fn calendar_page(
    state: &AppState,
    caller: &Caller,
    filter: CalendarFilter,
    limit: i64,
) -> Result<(Vec<PostRow>, Option<String>), ApiError> {
    let states = filter
        .state
        .as_deref()
        .map(|list| {
            list.split(',')
                .map(PostState::parse)
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    let query = ops::posts::CalendarQuery {
        from: filter.from,
        to: filter.to,
        states,
        team: filter.team,
        bot_id: filter.bot_id,
        cursor: filter.cursor,
        limit: limit + 1,
    };
    let mut rows = ops::posts::calendar(state, caller, query).await?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|(key, _)| key.clone())
    } else {
        None
    };
    Ok((rows.into_iter().map(|(_, post)| post).collect(), next))
}

/// Posts across every bot the caller reaches, by when they are (or were) due — by when
/// created, for those without a time — oldest first: the calendar, and with
/// `state=pending_review` the review queue.
#[utoipa::path(get, path = "/api/v1/bots/posts", operation_id = "posts_calendar", tag = "posts", security(("bearer" = [])),
    params(CalendarParams),
    responses((status = 200, body = Listing<PostView>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn calendar(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<CalendarParams>,
) -> Result<Json<Listing<PostView>>, ApiError> {
    let filter = CalendarFilter {
        from: params.from,
        to: params.to,
        state: params.state,
        team: params.team,
        bot_id: params.bot_id,
        cursor: params.cursor,
    };
    let (rows, next_cursor) =
        calendar_page(&state, &caller, filter, clamp_limit(params.limit)).await?;
    Ok(Json(Listing {
        items: rows.into_iter().map(PostView::from).collect(),
        next_cursor,
    }))
}

/// One post. `ETag` is its version.
#[utoipa::path(get, path = "/api/v1/bots/{bot_id}/posts/{post_id}", operation_id = "get_post", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("post_id" = String, Path)),
    responses((status = 200, body = PostView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path((bot_id, post_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let post = ops::posts::get(&state, &caller, &bot_id, &post_id).await?;
    Ok(respond(StatusCode::OK, post))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"text": "Good morning! Sunny and 23 °C by noon. #weather"}))]
pub struct UpdatePostRequest {
    pub text: Option<String>,
    pub media_ids: Option<Vec<String>>,
    /// A value replaces the option, `null` removes it, absent keeps it (also for the next three).
    #[serde(default, deserialize_with = "present")]
    pub reply_to_x_post_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub quote_x_post_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub poll: Option<Option<Poll>>,
    #[serde(default, deserialize_with = "present")]
    pub reply_settings: Option<Option<ReplySettings>>,
    /// Reschedule (a scheduled post) or schedule (a draft).
    pub run_at: Option<String>,
}

/// A member that is there, `null` or not: `Some(None)` for `null`, so an edit can remove an
/// option (an absent member stays `None` through `#[serde(default)]`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Edit a post until publishing starts; `If-Match: "<version>"` refuses a stale edit (412). A
/// change of content voids an approval: the post goes back to review.
#[utoipa::path(patch, path = "/api/v1/bots/{bot_id}/posts/{post_id}", operation_id = "update_post", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("post_id" = String, Path)), request_body = UpdatePostRequest,
    responses((status = 200, body = PostView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 412, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path((bot_id, post_id)): Path<(String, String)>,
    headers: HeaderMap,
    Json(request): Json<UpdatePostRequest>,
) -> Result<Response, ApiError> {
    let changes = PostChanges {
        text: request.text,
        media_ids: request.media_ids,
        reply_to_x_post_id: request.reply_to_x_post_id,
        quote_x_post_id: request.quote_x_post_id,
        poll: request.poll,
        reply_settings: request.reply_settings,
        run_at: request.run_at,
    };
    let ids = (bot_id.as_str(), post_id.as_str());
    let post = ops::posts::update(&state, &caller, ids, if_match(&headers)?, changes).await?;
    Ok(respond(StatusCode::OK, post))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"run_at": "2027-01-15T09:00:00Z"}))]
pub struct ScheduleRequest {
    pub run_at: String,
}

/// Schedule (or reschedule) a post until publishing starts (where its bot requires review and
/// it is not approved: submit it for review with that time).
#[utoipa::path(post, path = "/api/v1/bots/{bot_id}/posts/{post_id}/schedule", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("post_id" = String, Path)), request_body = ScheduleRequest,
    responses((status = 200, body = PostView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn schedule(
    State(state): State<AppState>,
    caller: Caller,
    Path((bot_id, post_id)): Path<(String, String)>,
    Json(request): Json<ScheduleRequest>,
) -> Result<Response, ApiError> {
    let ids = (bot_id.as_str(), post_id.as_str());
    let post = ops::posts::schedule(&state, &caller, ids, &request.run_at).await?;
    Ok(respond(StatusCode::OK, post))
}

/// Add a post to the bot's queue: scheduled at the start of the bot's next posting slot (on
/// its wall clock, `time_zone`) that no other post of the bot holds.
#[utoipa::path(post, path = "/api/v1/bots/{bot_id}/posts/{post_id}/queue", operation_id = "queue_post", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("post_id" = String, Path)),
    responses((status = 200, body = PostView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn queue(
    State(state): State<AppState>,
    caller: Caller,
    Path((bot_id, post_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let post = ops::posts::queue(&state, &caller, (&bot_id, &post_id)).await?;
    Ok(respond(StatusCode::OK, post))
}

/// Publish a post now (where its bot requires review and it is not approved: submit it for
/// review, to go out once approved).
#[utoipa::path(post, path = "/api/v1/bots/{bot_id}/posts/{post_id}/publish", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("post_id" = String, Path)),
    responses((status = 202, body = PostView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    Path((bot_id, post_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let post = ops::posts::publish(&state, &caller, (&bot_id, &post_id)).await?;
    Ok(respond(StatusCode::ACCEPTED, post))
}

/// Cancel a post until publishing starts.
#[utoipa::path(post, path = "/api/v1/bots/{bot_id}/posts/{post_id}/cancel", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("post_id" = String, Path)),
    responses((status = 200, body = PostView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path((bot_id, post_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let post = ops::posts::cancel(&state, &caller, (&bot_id, &post_id)).await?;
    Ok(respond(StatusCode::OK, post))
}

/// Send a failed post again, now (to review first where its bot requires review and its
/// approval no longer holds). Only a `failed` post: one whose fate on X is `unknown` may be
/// there already.
#[utoipa::path(post, path = "/api/v1/bots/{bot_id}/posts/{post_id}/retry", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("post_id" = String, Path)),
    responses((status = 200, body = PostView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    Path((bot_id, post_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let post = ops::posts::retry(&state, &caller, (&bot_id, &post_id)).await?;
    Ok(respond(StatusCode::OK, post))
}

/// Delete a published post from X (asynchronously: the post goes `deleting`, then
/// `deleted`).
#[utoipa::path(delete, path = "/api/v1/bots/{bot_id}/posts/{post_id}", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("post_id" = String, Path)),
    responses((status = 202, body = PostView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((bot_id, post_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let post = ops::posts::delete(&state, &caller, (&bot_id, &post_id)).await?;
    Ok(respond(StatusCode::ACCEPTED, post))
}
