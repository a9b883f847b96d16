//! The HTTP conventions every service shares: the error shape, our JSON extractor, request
//! ids, per-route metrics, health endpoints, OpenAPI pages, and the fallbacks for unknown
//! routes and methods.

pub mod client;
pub mod csv;
pub mod error;
pub mod form;
pub mod headers;
pub mod health;
pub mod input;
pub mod json;
pub mod metrics;
pub mod observe;
pub mod openapi;
pub mod page;
pub mod precondition;
pub mod query;
pub mod shape;

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::Next;
use axum::response::IntoResponse;
use tower_http::catch_panic::CatchPanicLayer;

use error::{ApiError, ErrorCode};

/// Wraps the process's whole router: request ids, access log, metrics, panics turned into
/// our 500 shape, our 404/405 bodies, NULs refused in paths and queries, every other error
/// answer in the standard shape, and the security and caching headers of `policy`.
pub fn finish_router(
    router: Router,
    metrics: metrics::HttpMetrics,
    policy: headers::ResponsePolicy,
) -> Router {
    router
        .fallback(|| async { ApiError::not_found("no route matches this path") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(axum::middleware::from_fn(input::refuse_nul_in_uri))
        .layer(axum::middleware::from_fn(shape::standard_error_shape))
        .layer(CatchPanicLayer::custom(
            |_panic: Box<dyn std::any::Any + Send>| {
                tracing::error!("request handler panicked");
                ApiError::internal("handler panicked").into_response()
            },
        ))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            observe::observe_request,
        ))
        .layer(axum::middleware::from_fn_with_state(
            policy,
            headers::response_headers,
        ))
}

/// Applies a service's limits to its routes: bodies over `body_limit` get 413 from our
/// extractors, and a request not answered within `timeout` gets 503 `TIMEOUT` (its handler is
/// dropped, so the work stops too).
pub fn with_request_limits(router: Router, body_limit: usize, timeout: Duration) -> Router {
    router
        .layer(axum::middleware::from_fn(
            move |request: Request, next: Next| async move {
                match tokio::time::timeout(timeout, next.run(request)).await {
                    Ok(response) => response,
                    Err(_) => ApiError::new(
                        ErrorCode::Timeout,
                        format!(
                            "no answer within {} s; try again later",
                            timeout.as_secs_f64()
                        ),
                    )
                    .into_response(),
                }
            },
        ))
        .layer(DefaultBodyLimit::max(body_limit))
}
