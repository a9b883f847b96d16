//! The HTTP API under `/api/v1/bots`: the Phase-1 contract routes (`/create`, `/list`), the
//! RESTful bots and connecting their X accounts, posts with their review, threads and recurring posts, metrics, usage and cost, and the composer's text check.

mod apps;
mod batch;
mod bot_imports;
mod bots;
mod budgets;
mod connect;
mod contract;
mod disclosure;
mod imports;
mod media;
mod metrics;
mod posts;
mod recurrences;
mod reviews;
mod summaries;
mod text;
mod threads;
mod usage;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use platform::http::error::ErrorBody;
use platform::http::openapi::BearerAuth;
use platform::http::page::Listing;
use utoipa::OpenApi;

use crate::service::BotManager;

pub type AppState = Arc<BotManager>;

/// The largest import body: 10,000 rows of about 500 bytes (a full-length post with its bot
/// and time) — more than the default body limit.
const IMPORT_BODY_LIMIT: usize = 5 * 1024 * 1024;

pub use platform::http::precondition::{etag, if_match};

pub fn router(state: AppState) -> Router {
    let media_limit = state.settings.media_max_bytes as usize;
    bot_routes()
        .merge(post_routes())
        .merge(series_routes())
        .merge(media_routes(media_limit))
        .with_state(state)
}

/// Bots, their settings and credentials, usage, budgets and apps; the cross-bot post routes.
fn bot_routes() -> Router<AppState> {
    let p = crate::ROUTE_PREFIX;
    Router::new()
        .route(&format!("{p}/create"), post(contract::create))
        .route(&format!("{p}/list"), get(contract::list))
        .route(p, get(bots::list).post(bots::create))
        .route(&format!("{p}/check-text"), post(text::check))
        .route(&format!("{p}/posts"), get(posts::calendar))
        .route(
            &format!("{p}/posts/import"),
            post(imports::import).layer(axum::extract::DefaultBodyLimit::max(IMPORT_BODY_LIMIT)),
        )
        .route(&format!("{p}/posts/export"), get(imports::export))
        .route(
            &format!("{p}/import"),
            post(bot_imports::import)
                .layer(axum::extract::DefaultBodyLimit::max(IMPORT_BODY_LIMIT)),
        )
        .route(&format!("{p}/export"), get(bot_imports::export))
        .route(&format!("{p}/summaries"), get(summaries::summaries))
        .route(&format!("{p}/backlog"), get(summaries::backlog))
        .route(&format!("{p}/batch"), post(batch::batch))
        .route(&format!("{p}/usage"), get(usage::usage))
        .route(&format!("{p}/budgets"), get(budgets::list))
        .route(&format!("{p}/apps"), get(apps::list))
        .route(
            &format!("{p}/apps/{{app}}/token"),
            axum::routing::put(apps::set_token).delete(apps::delete_token),
        )
        .route(
            &format!("{p}/apps/{{app}}/usage/refresh"),
            post(apps::refresh),
        )
        .route(
            &format!("{p}/apps/{{app}}/budget"),
            axum::routing::put(apps::put_budget).delete(apps::delete_budget),
        )
        .route(
            &format!("{p}/review-policies/{{team}}"),
            get(reviews::team_policy)
                .put(reviews::set_team_policy)
                .delete(reviews::delete_team_policy),
        )
        .route(
            &format!("{p}/{{bot_id}}/review-policy"),
            get(reviews::bot_policy).put(reviews::set_bot_policy),
        )
        .route(
            &format!("{p}/budgets/{{team}}"),
            axum::routing::put(budgets::put).delete(budgets::delete),
        )
        .route(
            &format!("{p}/{{bot_id}}"),
            get(bots::get).patch(bots::update).delete(bots::archive),
        )
        .route(&format!("{p}/{{bot_id}}/status"), post(bots::set_status))
        .route(
            &format!("{p}/{{bot_id}}/credentials"),
            axum::routing::put(bots::replace_credentials),
        )
        .route(
            &format!("{p}/{{bot_id}}/compliance"),
            get(disclosure::get).put(disclosure::confirm),
        )
        .route(&format!("{p}/{{bot_id}}/x-connect"), post(connect::start))
        .route(
            &format!("{p}/{{bot_id}}/x-connect/callback"),
            post(connect::callback),
        )
        .route(
            &format!("{p}/{{bot_id}}/metrics"),
            get(metrics::bot_metrics),
        )
        .route(
            &format!("{p}/{{bot_id}}/metrics/refresh"),
            post(metrics::refresh),
        )
}

/// A bot's media for posts; an upload's body may be as large as `limit` (a larger one is a
/// 413 before it is read).
fn media_routes(limit: usize) -> Router<AppState> {
    let p = crate::ROUTE_PREFIX;
    Router::new()
        .route(
            &format!("{p}/{{bot_id}}/media"),
            post(media::upload).layer(axum::extract::DefaultBodyLimit::max(limit)),
        )
        .route(
            &format!("{p}/{{bot_id}}/media/{{media_id}}"),
            get(media::get).delete(media::delete),
        )
}

/// A bot's threads and recurring posts.
fn series_routes() -> Router<AppState> {
    let p = crate::ROUTE_PREFIX;
    Router::new()
        .route(
            &format!("{p}/{{bot_id}}/recurrences"),
            get(recurrences::list).post(recurrences::create),
        )
        .route(
            &format!("{p}/{{bot_id}}/recurrences/{{recurrence_id}}"),
            get(recurrences::get).delete(recurrences::end),
        )
        .route(
            &format!("{p}/{{bot_id}}/recurrences/{{recurrence_id}}/pause"),
            post(recurrences::pause),
        )
        .route(
            &format!("{p}/{{bot_id}}/recurrences/{{recurrence_id}}/resume"),
            post(recurrences::resume),
        )
        .route(&format!("{p}/{{bot_id}}/threads"), post(threads::create))
        .route(
            &format!("{p}/{{bot_id}}/threads/{{thread_id}}"),
            get(threads::get),
        )
        .route(
            &format!("{p}/{{bot_id}}/threads/{{thread_id}}/schedule"),
            post(threads::schedule),
        )
        .route(
            &format!("{p}/{{bot_id}}/threads/{{thread_id}}/publish"),
            post(threads::publish),
        )
        .route(
            &format!("{p}/{{bot_id}}/threads/{{thread_id}}/cancel"),
            post(threads::cancel),
        )
        .route(
            &format!("{p}/{{bot_id}}/threads/{{thread_id}}/resume"),
            post(threads::resume),
        )
}

/// A bot's posts, their review and history.
fn post_routes() -> Router<AppState> {
    let p = crate::ROUTE_PREFIX;
    Router::new()
        .route(
            &format!("{p}/{{bot_id}}/posts"),
            get(posts::list).post(posts::create),
        )
        .route(
            &format!("{p}/{{bot_id}}/posts/{{post_id}}"),
            get(posts::get).patch(posts::update).delete(posts::delete),
        )
        .route(
            &format!("{p}/{{bot_id}}/posts/{{post_id}}/schedule"),
            post(posts::schedule),
        )
        .route(
            &format!("{p}/{{bot_id}}/posts/{{post_id}}/publish"),
            post(posts::publish),
        )
        .route(
            &format!("{p}/{{bot_id}}/posts/{{post_id}}/queue"),
            post(posts::queue),
        )
        .route(
            &format!("{p}/{{bot_id}}/posts/{{post_id}}/cancel"),
            post(posts::cancel),
        )
        .route(
            &format!("{p}/{{bot_id}}/posts/{{post_id}}/retry"),
            post(posts::retry),
        )
        .route(
            &format!("{p}/{{bot_id}}/posts/{{post_id}}/submit"),
            post(reviews::submit),
        )
        .route(
            &format!("{p}/{{bot_id}}/posts/{{post_id}}/approve"),
            post(reviews::approve),
        )
        .route(
            &format!("{p}/{{bot_id}}/posts/{{post_id}}/request-changes"),
            post(reviews::request_changes),
        )
        .route(
            &format!("{p}/{{bot_id}}/posts/{{post_id}}/history"),
            get(reviews::history),
        )
        .route(
            &format!("{p}/{{bot_id}}/posts/{{post_id}}/metrics"),
            get(metrics::post_metrics),
        )
}

#[derive(OpenApi)]
#[openapi(
    paths(
        contract::create, contract::list,
        bots::create, bots::list, bots::get, bots::update, bots::set_status, bots::archive,
        bots::replace_credentials, connect::start, connect::callback, bot_imports::import,
        bot_imports::export, disclosure::get, disclosure::confirm,
        posts::create, posts::list, posts::get, posts::update, posts::schedule, posts::publish,
        posts::cancel, posts::retry, posts::delete, posts::queue, posts::calendar, imports::import, imports::export,
        text::check,
        reviews::submit, reviews::approve, reviews::request_changes, reviews::history,
        reviews::bot_policy, reviews::set_bot_policy, reviews::team_policy,
        reviews::set_team_policy, reviews::delete_team_policy,
        threads::create, threads::get, threads::schedule, threads::publish, threads::cancel,
        threads::resume,
        recurrences::create, recurrences::list, recurrences::get, recurrences::pause,
        recurrences::resume, recurrences::end,
        media::upload, media::get, media::delete,
        metrics::bot_metrics, metrics::post_metrics, metrics::refresh, usage::usage,
        summaries::summaries, summaries::backlog, batch::batch,
        budgets::list, budgets::put, budgets::delete,
        apps::list, apps::set_token, apps::delete_token, apps::refresh, apps::put_budget,
        apps::delete_budget,
    ),
    components(schemas(ErrorBody, Listing<bots::BotView>, Listing<posts::PostView>)),
    modifiers(&BearerAuth),
    tags((name = "bots", description = "Bots and their credentials"),
         (name = "posts", description = "Posts and their lifecycle"),
         (name = "metrics", description = "Followers and post metrics over time"),
         (name = "usage", description = "What the bots used of X and what it cost")),
)]
pub struct BotsApi;
