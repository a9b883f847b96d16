//! Metric snapshots over a time range, and a snapshot taken now.

use axum::extract::{Path, State};
use platform::auth::Caller;
use platform::http::error::ErrorBody;
use platform::{ApiError, Json, Query};
use serde::{Deserialize, Serialize};

use super::AppState;
use crate::ops;
use crate::ops::metrics::Range;
use crate::store::metrics::{BotSnapshot, PostSnapshot};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    /// RFC 3339, inclusive; default `to` minus 7 days.
    pub from: Option<String>,
    /// RFC 3339, exclusive; default now.
    pub to: Option<String>,
    /// At most this many snapshots (1 to 5000, default 1000), oldest first.
    pub limit: Option<i64>,
}

impl RangeQuery {
    fn range(&self) -> Range<'_> {
        Range {
            from: self.from.as_deref(),
            to: self.to.as_deref(),
            limit: self.limit,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BotMetricsView {
    pub bot_id: String,
    pub items: Vec<BotSnapshot>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PostMetricsView {
    pub post_id: String,
    pub x_post_id: Option<String>,
    pub items: Vec<PostSnapshot>,
}

/// A bot's follower snapshots over a time range.
#[utoipa::path(get, path = "/api/v1/bots/{bot_id}/metrics", tag = "metrics", security(("bearer" = [])),
    params(("bot_id" = String, Path), RangeQuery),
    responses((status = 200, body = BotMetricsView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn bot_metrics(
    State(state): State<AppState>,
    caller: Caller,
    Path(bot_id): Path<String>,
    Query(range): Query<RangeQuery>,
) -> Result<Json<BotMetricsView>, ApiError> {
    let (bot, items) = ops::metrics::of_bot(&state, &caller, &bot_id, range.range()).await?;
    Ok(Json(BotMetricsView {
        bot_id: bot.bot_id,
        items,
    }))
}

/// A post's metric snapshots over a time range.
#[utoipa::path(get, path = "/api/v1/bots/{bot_id}/posts/{post_id}/metrics", tag = "metrics", security(("bearer" = [])),
    params(("bot_id" = String, Path), ("post_id" = String, Path), RangeQuery),
    responses((status = 200, body = PostMetricsView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn post_metrics(
    State(state): State<AppState>,
    caller: Caller,
    Path((bot_id, post_id)): Path<(String, String)>,
    Query(range): Query<RangeQuery>,
) -> Result<Json<PostMetricsView>, ApiError> {
    let (post, items) =
        ops::metrics::of_post(&state, &caller, &bot_id, &post_id, range.range()).await?;
    Ok(Json(PostMetricsView {
        post_id: post.post_id,
        x_post_id: post.x_post_id,
        items,
    }))
}

/// Take a snapshot of the bot and its recent posts now.
#[utoipa::path(post, path = "/api/v1/bots/{bot_id}/metrics/refresh", tag = "metrics", security(("bearer" = [])),
    params(("bot_id" = String, Path)),
    responses((status = 200, body = BotSnapshot), (status = 404, body = ErrorBody),
        (status = 409, description = "The bot is not active, or X refused its tokens", body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn refresh(
    State(state): State<AppState>,
    caller: Caller,
    Path(bot_id): Path<String>,
) -> Result<Json<BotSnapshot>, ApiError> {
    Ok(Json(ops::metrics::refresh(&state, &caller, &bot_id).await?))
}
