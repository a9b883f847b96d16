//! Every error leaves in one shape, whatever produced it. Our handlers and extractors answer
//! with [`ApiError`]; this middleware catches the rest — a framework rejection answered in
//! plain text (an oversized body read as bytes or a form, a malformed header) — and gives it
//! the standard body, keeping its status and headers.

use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, ErrorCode};

/// The most of a plain-text rejection that is read to quote in the message.
const QUOTED_BYTES: usize = 1024;

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|essence| essence == "application/json" || essence.ends_with("+json"))
}

/// The code of a status that arrived without one.
fn code_for(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::FORBIDDEN => ErrorCode::Forbidden,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::CONFLICT => ErrorCode::Conflict,
        StatusCode::PRECONDITION_FAILED => ErrorCode::PreconditionFailed,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::UNPROCESSABLE_ENTITY => ErrorCode::ValidationFailed,
        StatusCode::TOO_MANY_REQUESTS => ErrorCode::RateLimited,
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::NotReady,
        StatusCode::BAD_GATEWAY => ErrorCode::BadGateway,
        StatusCode::GATEWAY_TIMEOUT => ErrorCode::UpstreamTimeout,
        status if status.is_server_error() => ErrorCode::Internal,
        _ => ErrorCode::InvalidData,
    }
}

/// Middleware: a 4xx or 5xx answer that is neither JSON nor a page gets the standard error
/// body.
pub async fn standard_error_shape(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let headers = response.headers();
    if !(status.is_client_error() || status.is_server_error())
        || is_json(headers)
        // A page for people (the console's) says what went wrong in its own words.
        || super::headers::is_html(headers)
    {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, QUOTED_BYTES)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .unwrap_or_default();
    let code = code_for(status);
    let message = match code {
        ErrorCode::PayloadTooLarge => "the body is larger than this route accepts".to_string(),
        _ if status.is_server_error() => {
            tracing::error!(status = status.as_u16(), body = %text, "a plain-text error answer");
            "internal error; quote the request id when reporting it".to_string()
        }
        _ if text.is_empty() => status
            .canonical_reason()
            .unwrap_or("the request was refused")
            .to_string(),
        _ => text,
    };
    let mut shaped = ApiError::new(code, message).into_response();
    *shaped.status_mut() = status;
    for (name, value) in &parts.headers {
        if name != CONTENT_TYPE && name != CONTENT_LENGTH {
            shaped.headers_mut().insert(name, value.clone());
        }
    }
    shaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::{Body, Bytes};
    use axum::routing::post;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_plain_text_rejection_gets_the_standard_body_and_keeps_its_status() {
        let app = Router::new()
            .route("/bytes", post(|_body: Bytes| async { "ok" }))
            .layer(axum::extract::DefaultBodyLimit::max(8))
            .layer(axum::middleware::from_fn(standard_error_shape));
        let response = app
            .oneshot(
                Request::post("/bytes")
                    .body(Body::from("far more than eight bytes"))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(is_json(response.headers()));
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["status"], "error");
        assert_eq!(body["error_code"], "PAYLOAD_TOO_LARGE");
    }

    #[test]
    fn every_status_has_a_code() {
        assert_eq!(
            code_for(StatusCode::LENGTH_REQUIRED).as_str(),
            "INVALID_DATA"
        );
        assert_eq!(
            code_for(StatusCode::NOT_IMPLEMENTED).as_str(),
            "INTERNAL_ERROR"
        );
        assert_eq!(code_for(StatusCode::UNAUTHORIZED).as_str(), "UNAUTHORIZED");
    }
}
