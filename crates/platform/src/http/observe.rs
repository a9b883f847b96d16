//! The middleware around every request: picks or creates the request id, opens the request's
//! tracing span (so every log line of the request carries the id), counts and times the
//! request per route, and writes one access-log line at the end.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::metrics::{HttpMetrics, RouteLabels, StatusLabels};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

tokio::task_local! {
    /// The id of the request being served by this task; read by [`ApiError`] bodies.
    ///
    /// [`ApiError`]: super::error::ApiError
    static REQUEST_ID: String;
}

/// The id of the request this task serves, if it serves one.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// A caller's id is kept if it is short printable ASCII; anything else is replaced, so a
/// client cannot inject newlines or megabytes into our logs.
fn acceptable_request_id(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    let ok = !text.is_empty() && text.len() <= 128 && text.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| text.to_string())
}

pub async fn observe_request(
    State(metrics): State<HttpMetrics>,
    mut request: Request,
    next: Next,
) -> Response {
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(acceptable_request_id)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let header = HeaderValue::from_str(&request_id).expect("request ids are printable ASCII");
    request
        .headers_mut()
        .insert(REQUEST_ID_HEADER, header.clone());

    let method = request.method().to_string();
    // Only the path: query strings may carry tokens (`?token=`) and must not reach logs.
    let path = request.uri().path().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        path = %path,
        user_id = tracing::field::Empty,
    );

    let route_labels = RouteLabels {
        method: method.clone(),
        route: route.clone(),
    };
    let in_flight = metrics.in_flight.get_or_create(&route_labels).clone();
    in_flight.inc();
    let started = Instant::now();
    let mut response = REQUEST_ID
        .scope(request_id, next.run(request))
        .instrument(span.clone())
        .await;
    let elapsed = started.elapsed();
    in_flight.dec();

    let status = response.status().as_u16();
    metrics
        .requests
        .get_or_create(&StatusLabels {
            method,
            route,
            status,
        })
        .inc();
    metrics
        .duration
        .get_or_create(&route_labels)
        .observe(elapsed.as_secs_f64());
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request completed"
        );
    });
    response.headers_mut().insert(REQUEST_ID_HEADER, header);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_with_control_characters_or_huge_lengths_are_replaced() {
        assert!(acceptable_request_id(&HeaderValue::from_static("abc-123")).is_some());
        assert!(acceptable_request_id(&HeaderValue::from_static("has space")).is_none());
        let long = "a".repeat(129);
        assert!(acceptable_request_id(&HeaderValue::from_str(&long).unwrap()).is_none());
    }
}
