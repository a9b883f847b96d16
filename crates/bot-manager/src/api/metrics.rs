//! Metric snapshots over a time range, and a snapshot taken now.

use axum::extract::{Path, State};
use platform::auth::Authenticated;
use platform::http::error::ErrorBody;
use platform::{ApiError, ErrorCode, Json, Query};
use serde::{Deserialize, Serialize};

use super::AppState;
use crate::model::{BotStatus, parse_id};
use crate::service::Caller;
use crate::snapshots::snapshot_bot;
use crate::store::metrics::{self, BotSnapshot, PostSnapshot};
use crate::store::posts;

const DEFAULT_SPAN_MS: i64 = 7 * 86_400_000;

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
    /// `now`: the service clock's, in Unix milliseconds.
    fn window(&self, now: i64) -> Result<(i64, i64, i64), ApiError> {
        let parse = |raw: &str, name: &str| {
            time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
                .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
                .map_err(|_| ApiError::invalid_data(format!("{name}: an RFC 3339 time")))
        };
        let to = self
            .to
            .as_deref()
            .map(|t| parse(t, "to"))
            .transpose()?
            .unwrap_or(now + 1);
        let from = self
            .from
            .as_deref()
            .map(|f| parse(f, "from"))
            .transpose()?
            .unwrap_or(to - DEFAULT_SPAN_MS);
        if from >= to {
            return Err(ApiError::invalid_data("from must be before to"));
        }
        Ok((from, to, self.limit.unwrap_or(1000).clamp(1, 5000)))
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
    Authenticated(claims): Authenticated,
    Path(bot_id): Path<String>,
    Query(range): Query<RangeQuery>,
) -> Result<Json<BotMetricsView>, ApiError> {
    claims.require("bots:read")?;
    let bot = state.reachable_bot(&Caller::new(&claims), &bot_id).await?;
    let (from, to, limit) = range.window(state.clock.now_millis())?;
    let items = metrics::bot_range(&state.db, &bot.bot_id, from, to, limit).await?;
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
    Authenticated(claims): Authenticated,
    Path((bot_id, post_id)): Path<(String, String)>,
    Query(range): Query<RangeQuery>,
) -> Result<Json<PostMetricsView>, ApiError> {
    claims.require("bots:read")?;
    let bot = state.reachable_bot(&Caller::new(&claims), &bot_id).await?;
    let post_id = parse_id(&post_id, "post")?;
    let post = posts::get(&state.db, &bot.bot_id, &post_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such post"))?;
    let (from, to, limit) = range.window(state.clock.now_millis())?;
    let items = metrics::post_range(&state.db, &post.post_id, from, to, limit).await?;
    Ok(Json(PostMetricsView {
        post_id: post.post_id,
        x_post_id: post.x_post_id,
        items,
    }))
}

/// Take a snapshot of the bot and its recent posts now.
#[utoipa::path(post, path = "/api/v1/bots/{bot_id}/metrics/refresh", tag = "metrics", security(("bearer" = [])),
    params(("bot_id" = String, Path)),
    responses((status = 200, body = BotSnapshot), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn refresh(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(bot_id): Path<String>,
) -> Result<Json<BotSnapshot>, ApiError> {
    claims.require("bots:read")?;
    let bot = state.reachable_bot(&Caller::new(&claims), &bot_id).await?;
    if bot.status != BotStatus::Active {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("a {} bot is not read from X", bot.status.as_str()),
        ));
    }
    Ok(Json(snapshot_bot(&state, &bot).await?))
}
