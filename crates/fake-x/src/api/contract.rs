//! The fake checks itself: every answer to a route of X's document is validated against the
//! document (status, content type, schema, problem type) as it leaves. A violation is logged
//! and kept (`FakeX::contract_violations`); the test harnesses fail on any, so the fake cannot
//! drift from X's published contract without a test saying so.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value;
use x_contract::Operation;

use super::{AppState, dropped_connection};

/// The largest answer the check reads (the fake's answers are a few kilobytes).
const MAX_CHECKED_BODY: usize = 4 << 20;

pub(super) async fn check(State(fake): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let Some(operation) = Operation::matching(&method, &path) else {
        return response;
    };
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_CHECKED_BODY).await else {
        // A dropped-connection fault: nothing reaches the client, so nothing to check.
        return dropped_connection();
    };
    let content_type = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let found = match serde_json::from_slice::<Value>(&bytes) {
        Ok(body) => {
            x_contract::check_response(operation, parts.status.as_u16(), &content_type, &body)
                .iter()
                .map(ToString::to_string)
                .collect()
        }
        Err(_) => vec!["the body is not JSON".to_string()],
    };
    for violation in found {
        let violation = format!("{method} {path} → {}: {violation}", parts.status.as_u16());
        tracing::error!(%violation, "the fake X broke X's published contract");
        fake.record_contract_violation(violation);
    }
    Response::from_parts(parts, Body::from(bytes))
}
