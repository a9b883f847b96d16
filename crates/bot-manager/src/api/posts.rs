//! Posts: create (with `Idempotency-Key`), edit or cancel until publishing starts, schedule,
//! publish now, and delete a published post from X. Every state change that leads to X
//! writes the post, its job and an outbox row in one transaction.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use platform::auth::Authenticated;
use platform::http::error::ErrorBody;
use platform::http::page::{Listing, clamp_limit};
use platform::{ApiError, ErrorCode, Json, Query};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{AppState, etag, if_match};
use crate::fingerprint::fingerprint;
use crate::model::{BotStatus, PostState, PostingSlot, check_media, check_text, new_id, parse_id};
use crate::service::{BotManager, Caller};
use crate::store::bots::BotRow;
use crate::store::posts::{self, JobKind, PostRow};

/// How far ahead a post may be scheduled.
const MAX_AHEAD_MS: i64 = 366 * 86_400_000;
/// How far in the past a run_at may be (clock skew) before it is refused.
const PAST_TOLERANCE_MS: i64 = 60_000;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PostView {
    pub post_id: String,
    pub bot_id: String,
    pub text: String,
    pub media_ids: Vec<String>,
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
    pub created_at: String,
    pub updated_at: String,
    pub published_at: Option<String>,
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
            state: post.state,
            run_at: post.run_at.map(ms),
            x_post_id: post.x_post_id,
            error: post.error,
            version: post.version,
            created_at: ms(post.created_at),
            updated_at: ms(post.updated_at),
            published_at: post.published_at.map(ms),
        }
    }
}

fn respond(status: StatusCode, post: PostRow) -> Response {
    let tag = etag(post.version);
    let mut response = (status, Json(PostView::from(post))).into_response();
    response.headers_mut().insert(header::ETAG, tag);
    response
}

fn parse_run_at(raw: &str, now: i64) -> Result<i64, ApiError> {
    let at = time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            ApiError::invalid_data("run_at: an RFC 3339 time, e.g. 2026-12-01T09:30:00Z")
        })?;
    let ms = (at.unix_timestamp_nanos() / 1_000_000) as i64;
    if ms < now - PAST_TOLERANCE_MS {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "run_at: in the past; use publish to post now",
        ));
    }
    if ms > now + MAX_AHEAD_MS {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "run_at: at most a year ahead",
        ));
    }
    Ok(ms.max(now))
}

fn check_slot(bot: &BotRow, run_at: i64) -> Result<(), ApiError> {
    if PostingSlot::allows(&bot.posting_slots, run_at) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "run_at: outside the bot's posting slots (UTC)",
        ))
    }
}

fn writable(bot: &BotRow) -> Result<(), ApiError> {
    if bot.status == BotStatus::Archived {
        Err(ApiError::new(ErrorCode::Conflict, "the bot is archived"))
    } else {
        Ok(())
    }
}

/// X's rules against the same message from several accounts.
async fn check_not_duplicated(
    state: &BotManager,
    bot_id: &str,
    fingerprint: &str,
) -> Result<(), ApiError> {
    let since = state.clock.now_millis() - state.settings.duplicate_window_seconds as i64 * 1000;
    if posts::duplicate_elsewhere(&state.db, fingerprint, bot_id, since).await? {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "another bot has identical or near-identical text within the duplicate window; \
             X's automation rules forbid posting the same content from several accounts",
        ));
    }
    Ok(())
}

async fn reachable_post(
    state: &BotManager,
    caller: &Caller<'_>,
    bot_id: &str,
    post_id: &str,
) -> Result<(BotRow, PostRow), ApiError> {
    let bot = state.reachable_bot(caller, bot_id).await?;
    let post_id = parse_id(post_id, "post")?;
    let post = posts::get(&state.db, &bot.bot_id, &post_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such post"))?;
    Ok((bot, post))
}

async fn reload(state: &BotManager, post: &PostRow) -> Result<PostRow, ApiError> {
    posts::get(&state.db, &post.bot_id, &post.post_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such post"))
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePostRequest {
    #[serde(default)]
    pub text: String,
    /// X media ids from X's media upload (at most 4).
    #[serde(default)]
    pub media_ids: Vec<String>,
    /// Schedule for this time (RFC 3339); absent: a draft.
    pub run_at: Option<String>,
    /// Publish as soon as possible (overrides run_at).
    #[serde(default)]
    pub publish_now: bool,
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

/// A replay of an earlier create with the same key: the same post, or 422 if the request
/// differs.
async fn replay(
    state: &BotManager,
    bot_id: &str,
    hash: &str,
    found: (String, String),
) -> Result<Response, ApiError> {
    let (stored_hash, post_id) = found;
    if stored_hash != hash {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "Idempotency-Key was already used with a different request",
        ));
    }
    let post = posts::get(&state.db, bot_id, &post_id)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::ValidationFailed,
                "Idempotency-Key was already used for another bot",
            )
        })?;
    let mut response = respond(StatusCode::CREATED, post);
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(response)
}

/// Create a post: a draft, scheduled (`run_at`) or to publish now. `Idempotency-Key` makes
/// a retried create return the first one's post.
#[utoipa::path(post, path = "/api/v1/bots/{bot_id}/posts", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("Idempotency-Key" = Option<String>, Header)), request_body = CreatePostRequest,
    responses((status = 201, body = PostView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(bot_id): Path<String>,
    headers: HeaderMap,
    Json(request): Json<CreatePostRequest>,
) -> Result<Response, ApiError> {
    claims.require("bots:write")?;
    let caller = Caller::new(&claims);
    let bot = state.reachable_bot(&caller, &bot_id).await?;
    writable(&bot)?;
    let key = idempotency_key(&headers)?;
    let hash = {
        let canonical = format!(
            "{}\n{}",
            bot.bot_id,
            serde_json::to_string(&request).unwrap_or_default()
        );
        crate::fingerprint::sha256_hex(canonical.as_bytes())
    };
    if let Some(key) = &key
        && let Some(found) = posts::idempotent_post(&state.db, &claims.sub, key).await?
    {
        return replay(&state, &bot.bot_id, &hash, found).await;
    }
    check_media(&request.media_ids)?;
    let text = check_text(&request.text, !request.media_ids.is_empty())?;
    let fingerprint = fingerprint(&text);
    let now = state.clock.now_millis();
    let run_at = if request.publish_now {
        Some(now)
    } else {
        request
            .run_at
            .as_deref()
            .map(|r| parse_run_at(r, now))
            .transpose()?
    };
    if let Some(run_at) = run_at {
        if !request.publish_now {
            check_slot(&bot, run_at)?;
        }
        check_not_duplicated(&state, &bot.bot_id, &fingerprint).await?;
        if posts::count_pending(&state.db, &bot.bot_id).await?
            >= state.settings.max_pending_posts_per_bot
        {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "the bot has the most pending posts allowed; wait or cancel some",
            ));
        }
    }
    let post = PostRow {
        post_id: new_id(),
        bot_id: bot.bot_id.clone(),
        author_id: claims.sub.clone(),
        text,
        media_ids: request.media_ids,
        fingerprint,
        state: if run_at.is_some() {
            PostState::Scheduled
        } else {
            PostState::Draft
        },
        run_at,
        x_post_id: None,
        error: None,
        version: 1,
        created_at: now,
        updated_at: now,
        published_at: None,
    };
    let mut tx = state.db.pool().begin().await.map_err(anyhow::Error::from)?;
    posts::insert_post(&mut tx, &post).await?;
    if let Some(run_at) = run_at {
        posts::arm_job(
            &mut tx,
            JobKind::Publish,
            &post.post_id,
            &post.bot_id,
            run_at,
            now,
        )
        .await?;
    }
    if let Some(key) = &key
        && let Err(err) =
            posts::insert_idempotency_key(&mut tx, &claims.sub, key, &hash, &post.post_id, now)
                .await
    {
        tx.rollback().await.map_err(anyhow::Error::from)?;
        if crate::store::is_unique_violation(&err) {
            // A concurrent request with the same key committed first.
            if let Some(found) = posts::idempotent_post(&state.db, &claims.sub, key).await? {
                return replay(&state, &bot.bot_id, &hash, found).await;
            }
        }
        return Err(anyhow::Error::from(err).into());
    }
    tx.commit().await.map_err(anyhow::Error::from)?;
    if run_at.is_some_and(|at| at <= now) {
        state.relay_wake.notify_one();
    }
    state
        .record(
            if run_at.is_some() { "post.scheduled" } else { "post.drafted" },
            &caller.actor(),
            &post.post_id,
            json!({"bot_id": post.bot_id, "run_at": run_at.map(platform::time_fmt::rfc3339_from_millis)}),
        )
        .await;
    let post = reload(&state, &post).await?;
    Ok(respond(StatusCode::CREATED, post))
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
#[utoipa::path(get, path = "/api/v1/bots/{bot_id}/posts", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), PostQuery),
    responses((status = 200, body = Listing<PostView>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(bot_id): Path<String>,
    Query(query): Query<PostQuery>,
) -> Result<Json<Listing<PostView>>, ApiError> {
    claims.require("bots:read")?;
    let bot = state.reachable_bot(&Caller::new(&claims), &bot_id).await?;
    let filter = query.state.as_deref().map(PostState::parse).transpose()?;
    let limit = clamp_limit(query.limit);
    let rows = posts::list(
        &state.db,
        &bot.bot_id,
        filter,
        query.cursor.as_deref(),
        limit + 1,
    )
    .await?;
    let views: Vec<PostView> = rows.into_iter().map(PostView::from).collect();
    Ok(Json(Listing::from_overfetch(views, limit, |p| {
        p.post_id.clone()
    })))
}

/// One post. `ETag` is its version.
#[utoipa::path(get, path = "/api/v1/bots/{bot_id}/posts/{post_id}", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("post_id" = String, Path)),
    responses((status = 200, body = PostView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path((bot_id, post_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    claims.require("bots:read")?;
    let (_, post) = reachable_post(&state, &Caller::new(&claims), &bot_id, &post_id).await?;
    Ok(respond(StatusCode::OK, post))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePostRequest {
    pub text: Option<String>,
    pub media_ids: Option<Vec<String>>,
    /// Reschedule (a scheduled post) or schedule (a draft).
    pub run_at: Option<String>,
}

/// Writes a changed draft or scheduled post, re-arming its job; 409 if publishing started.
async fn save_edit(
    state: &BotManager,
    bot: &BotRow,
    mut post: PostRow,
    run_at: Option<i64>,
) -> Result<PostRow, ApiError> {
    let now = state.clock.now_millis();
    if let Some(run_at) = run_at {
        post.run_at = Some(run_at);
        post.state = PostState::Scheduled;
    }
    if post.state == PostState::Scheduled {
        check_not_duplicated(state, &bot.bot_id, &post.fingerprint).await?;
    }
    let mut tx = state.db.pool().begin().await.map_err(anyhow::Error::from)?;
    if !posts::update_content(&mut tx, &post, now).await? {
        tx.rollback().await.map_err(anyhow::Error::from)?;
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the post changed meanwhile or its publishing has started; read it again",
        ));
    }
    if let (PostState::Scheduled, Some(run_at)) = (post.state, post.run_at) {
        posts::arm_job(
            &mut tx,
            JobKind::Publish,
            &post.post_id,
            &post.bot_id,
            run_at,
            now,
        )
        .await?;
    }
    tx.commit().await.map_err(anyhow::Error::from)?;
    if post.run_at.is_some_and(|at| at <= now) {
        state.relay_wake.notify_one();
    }
    reload(state, &post).await
}

/// Edit a draft or scheduled post; `If-Match: "<version>"` refuses a stale edit (412).
#[utoipa::path(patch, path = "/api/v1/bots/{bot_id}/posts/{post_id}", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("post_id" = String, Path)), request_body = UpdatePostRequest,
    responses((status = 200, body = PostView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 412, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path((bot_id, post_id)): Path<(String, String)>,
    headers: HeaderMap,
    Json(request): Json<UpdatePostRequest>,
) -> Result<Response, ApiError> {
    claims.require("bots:write")?;
    let caller = Caller::new(&claims);
    let (bot, mut post) = reachable_post(&state, &caller, &bot_id, &post_id).await?;
    writable(&bot)?;
    if let Some(expected) = if_match(&headers)?
        && expected != post.version
    {
        return Err(ApiError::new(
            ErrorCode::PreconditionFailed,
            "the post changed since you read it; read it again",
        ));
    }
    if !post.state.is_editable() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("a {} post can no longer be edited", post.state.as_str()),
        ));
    }
    if let Some(media) = request.media_ids {
        check_media(&media)?;
        post.media_ids = media;
    }
    if let Some(text) = &request.text {
        post.text = check_text(text, !post.media_ids.is_empty())?;
        post.fingerprint = fingerprint(&post.text);
    }
    let run_at = request
        .run_at
        .as_deref()
        .map(|r| parse_run_at(r, state.clock.now_millis()))
        .transpose()?;
    if let Some(run_at) = run_at {
        check_slot(&bot, run_at)?;
    }
    let post = save_edit(&state, &bot, post, run_at).await?;
    state
        .record(
            "post.edited",
            &caller.actor(),
            &post.post_id,
            json!({"bot_id": post.bot_id}),
        )
        .await;
    Ok(respond(StatusCode::OK, post))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    pub run_at: String,
}

/// Schedule (or reschedule) a draft or scheduled post.
#[utoipa::path(post, path = "/api/v1/bots/{bot_id}/posts/{post_id}/schedule", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("post_id" = String, Path)), request_body = ScheduleRequest,
    responses((status = 200, body = PostView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn schedule(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path((bot_id, post_id)): Path<(String, String)>,
    Json(request): Json<ScheduleRequest>,
) -> Result<Response, ApiError> {
    claims.require("bots:write")?;
    let caller = Caller::new(&claims);
    let (bot, post) = reachable_post(&state, &caller, &bot_id, &post_id).await?;
    writable(&bot)?;
    if !post.state.is_editable() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("a {} post cannot be scheduled", post.state.as_str()),
        ));
    }
    let run_at = parse_run_at(&request.run_at, state.clock.now_millis())?;
    check_slot(&bot, run_at)?;
    let post = save_edit(&state, &bot, post, Some(run_at)).await?;
    state
        .record(
            "post.scheduled",
            &caller.actor(),
            &post.post_id,
            json!({"bot_id": post.bot_id, "run_at": request.run_at}),
        )
        .await;
    Ok(respond(StatusCode::OK, post))
}

/// Publish a draft or scheduled post now.
#[utoipa::path(post, path = "/api/v1/bots/{bot_id}/posts/{post_id}/publish", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("post_id" = String, Path)),
    responses((status = 202, body = PostView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn publish(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path((bot_id, post_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    claims.require("bots:write")?;
    let caller = Caller::new(&claims);
    let (bot, post) = reachable_post(&state, &caller, &bot_id, &post_id).await?;
    writable(&bot)?;
    if !post.state.is_editable() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("a {} post cannot be published again", post.state.as_str()),
        ));
    }
    let post = save_edit(&state, &bot, post, Some(state.clock.now_millis())).await?;
    state
        .record(
            "post.publish_requested",
            &caller.actor(),
            &post.post_id,
            json!({"bot_id": post.bot_id}),
        )
        .await;
    Ok(respond(StatusCode::ACCEPTED, post))
}

/// Cancel a draft or scheduled post (until publishing starts).
#[utoipa::path(post, path = "/api/v1/bots/{bot_id}/posts/{post_id}/cancel", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("post_id" = String, Path)),
    responses((status = 200, body = PostView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path((bot_id, post_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    claims.require("bots:write")?;
    let caller = Caller::new(&claims);
    let (_, post) = reachable_post(&state, &caller, &bot_id, &post_id).await?;
    let now = state.clock.now_millis();
    let mut tx = state.db.pool().begin().await.map_err(anyhow::Error::from)?;
    let cancelled = posts::transition(
        &mut tx,
        &post.post_id,
        &[PostState::Draft, PostState::Scheduled],
        PostState::Cancelled,
        now,
    )
    .await?;
    if !cancelled {
        tx.rollback().await.map_err(anyhow::Error::from)?;
        let current = reload(&state, &post).await?;
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "a {} post can no longer be cancelled",
                current.state.as_str()
            ),
        ));
    }
    posts::disarm_job(&mut tx, JobKind::Publish, &post.post_id, now).await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    state
        .record(
            "post.cancelled",
            &caller.actor(),
            &post.post_id,
            json!({"bot_id": post.bot_id}),
        )
        .await;
    Ok(respond(StatusCode::OK, reload(&state, &post).await?))
}

/// Delete a published post from X (asynchronously: the post goes `deleting`, then
/// `deleted`).
#[utoipa::path(delete, path = "/api/v1/bots/{bot_id}/posts/{post_id}", tag = "posts", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("post_id" = String, Path)),
    responses((status = 202, body = PostView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path((bot_id, post_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    claims.require("bots:write")?;
    let caller = Caller::new(&claims);
    let (bot, post) = reachable_post(&state, &caller, &bot_id, &post_id).await?;
    writable(&bot)?;
    let now = state.clock.now_millis();
    let mut tx = state.db.pool().begin().await.map_err(anyhow::Error::from)?;
    if !posts::transition(
        &mut tx,
        &post.post_id,
        &[PostState::Published],
        PostState::Deleting,
        now,
    )
    .await?
    {
        tx.rollback().await.map_err(anyhow::Error::from)?;
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "only a published post is deleted from X; this one is {} (cancel a draft or scheduled post instead)",
                post.state.as_str()
            ),
        ));
    }
    posts::arm_job(
        &mut tx,
        JobKind::Delete,
        &post.post_id,
        &post.bot_id,
        now,
        now,
    )
    .await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    state.relay_wake.notify_one();
    state
        .record(
            "post.delete_requested",
            &caller.actor(),
            &post.post_id,
            json!({"bot_id": post.bot_id, "x_post_id": post.x_post_id}),
        )
        .await;
    Ok(respond(StatusCode::ACCEPTED, reload(&state, &post).await?))
}
