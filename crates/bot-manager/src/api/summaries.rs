//! `GET /api/v1/bots/summaries`: what a fleet view shows beside each bot of a page — its last
//! and next post, failures in the last 24 hours, the rate window running lowest and whether
//! its credentials work; `GET /api/v1/bots/backlog`: the publishing work waiting, and what
//! gave up in the last day.

use axum::extract::State;
use platform::auth::Caller;
use platform::http::error::ErrorBody;
use platform::time_fmt::rfc3339_from_millis;
use platform::{ApiError, Json, Query};
use serde::{Deserialize, Serialize};

use super::AppState;
use crate::ops;
use crate::ops::summaries::Summary;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SummaryParams {
    /// Bot ids, comma-separated, at most 100; bots the caller does not reach are left out.
    pub ids: String,
}

/// An X rate window with a tenth or less left (X's `x-rate-limit-*` headers, saved as they ran low).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RateWindowView {
    pub endpoint: String,
    pub limit: i64,
    pub remaining: i64,
    /// RFC 3339; when the window opens again.
    pub reset_at: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BotSummaryView {
    pub bot_id: String,
    /// RFC 3339; its latest published post.
    pub last_published_at: Option<String>,
    /// RFC 3339; its next scheduled post.
    pub next_run_at: Option<String>,
    /// Posts that failed in the last 24 hours.
    pub failed_24h: i64,
    /// The window with the least left, when one has a tenth or less left; absent means every
    /// window X reported has room.
    pub lowest_rate_window: Option<RateWindowView>,
    /// `ok`, or `needs_reauth` when X refused its tokens and someone must connect it again.
    pub credentials: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BotSummaries {
    pub items: Vec<BotSummaryView>,
}

impl From<Summary> for BotSummaryView {
    fn from(summary: Summary) -> Self {
        let row = summary.row;
        // X refusing a bot's tokens is what marks it `needs_reauth`.
        let credentials = if row.status == "needs_reauth" {
            "needs_reauth"
        } else {
            "ok"
        };
        Self {
            last_published_at: row.last_published_at.map(rfc3339_from_millis),
            next_run_at: row.next_run_at.map(rfc3339_from_millis),
            failed_24h: row.failed_since,
            lowest_rate_window: summary.lowest_window.map(|w| RateWindowView {
                endpoint: w.endpoint,
                limit: w.limit,
                remaining: w.remaining,
                reset_at: rfc3339_from_millis(w.reset_at),
            }),
            credentials: credentials.to_string(),
            bot_id: row.bot_id,
        }
    }
}

/// A line per bot for a fleet view (a page of bots at a time).
#[utoipa::path(get, path = "/api/v1/bots/summaries", operation_id = "bot_summaries", tag = "bots", security(("bearer" = [])),
    params(SummaryParams),
    responses((status = 200, body = BotSummaries), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn summaries(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<SummaryParams>,
) -> Result<Json<BotSummaries>, ApiError> {
    let ids: Vec<String> = params
        .ids
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .collect();
    let summaries = ops::summaries::summaries(&state, &caller, &ids).await?;
    Ok(Json(BotSummaries {
        items: summaries.into_iter().map(BotSummaryView::from).collect(),
    }))
}

/// The publishing backlog: jobs of the bots the caller reaches that are not done.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BacklogView {
    /// Due and waiting for a worker now.
    pub due: i64,
    /// Scheduled for later.
    pub scheduled_later: i64,
    pub running: i64,
    /// Parked while their bot cannot publish (paused, needs new credentials).
    pub waiting: i64,
    /// Given up after their last attempt (dead-lettered) in the last 24 hours.
    pub dead_24h: i64,
    /// RFC 3339; when the longest-waiting due job was due.
    pub oldest_due_at: Option<String>,
    /// How late that job is, in seconds.
    pub oldest_due_seconds: Option<i64>,
}

/// How much publishing work waits, and what gave up in the last day.
#[utoipa::path(get, path = "/api/v1/bots/backlog", operation_id = "bots_backlog", tag = "bots", security(("bearer" = [])),
    responses((status = 200, body = BacklogView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn backlog(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<BacklogView>, ApiError> {
    let backlog = ops::summaries::backlog(&state, &caller).await?;
    let now = state.clock.now_millis();
    Ok(Json(BacklogView {
        due: backlog.due,
        scheduled_later: backlog.later,
        running: backlog.running,
        waiting: backlog.waiting,
        dead_24h: backlog.dead_since,
        oldest_due_at: backlog.oldest_due_at.map(rfc3339_from_millis),
        oldest_due_seconds: backlog.oldest_due_at.map(|at| (now - at).max(0) / 1000),
    }))
}
