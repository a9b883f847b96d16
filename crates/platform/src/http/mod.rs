//! The HTTP conventions every service shares: the error shape, our JSON extractor, request
//! ids, per-route metrics, health endpoints, OpenAPI pages, and the fallbacks for unknown
//! routes and methods.

pub mod error;
pub mod form;
pub mod health;
pub mod json;
pub mod metrics;
pub mod observe;
pub mod openapi;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tower_http::catch_panic::CatchPanicLayer;

use error::ApiError;

/// Wraps the process's whole router: request ids, access log, metrics, panics turned into
/// our 500 shape, and our 404/405 bodies.
pub fn finish_router(router: Router, metrics: metrics::HttpMetrics) -> Router {
    router
        .fallback(|| async { ApiError::not_found("no route matches this path") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(CatchPanicLayer::custom(
            |_panic: Box<dyn std::any::Any + Send>| {
                use axum::response::IntoResponse;
                tracing::error!("request handler panicked");
                ApiError::internal("handler panicked").into_response()
            },
        ))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            observe::observe_request,
        ))
}

/// Applies a service's body limit to its routes (bigger bodies get 413 from our extractors).
pub fn with_body_limit(router: Router, limit: usize) -> Router {
    router.layer(DefaultBodyLimit::max(limit))
}
