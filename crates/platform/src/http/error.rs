//! The one error shape of the whole API:
//! `{"status":"error","error_code":"...","message":"...","request_id":"..."}`.
//!
//! Every service's edge error converts into [`ApiError`]. 5xx bodies say nothing specific;
//! the cause is logged (inside the request's span, so with its request id) instead.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::observe::current_request_id;

/// The table of error codes. Services add theirs here so that the codes stay one list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    MalformedJson,
    InvalidData,
    Unauthorized,
    AuthFailed,
    InvalidToken,
    Forbidden,
    PasswordChangeRequired,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PreconditionFailed,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    RateLimited,
    NotReady,
    Sealed,
    Timeout,
    /// The gateway could not reach the service behind it.
    BadGateway,
    /// The service behind the gateway did not answer in time.
    UpstreamTimeout,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MalformedJson => "MALFORMED_JSON",
            Self::InvalidData => "INVALID_DATA",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::AuthFailed => "AUTH_FAILED",
            Self::InvalidToken => "INVALID_TOKEN",
            Self::Forbidden => "FORBIDDEN",
            Self::PasswordChangeRequired => "PASSWORD_CHANGE_REQUIRED",
            Self::NotFound => "NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::Conflict => "CONFLICT",
            Self::PreconditionFailed => "PRECONDITION_FAILED",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::ValidationFailed => "VALIDATION_FAILED",
            Self::RateLimited => "RATE_LIMITED",
            Self::NotReady => "NOT_READY",
            Self::Sealed => "SEALED",
            Self::Timeout => "TIMEOUT",
            Self::BadGateway => "BAD_GATEWAY",
            Self::UpstreamTimeout => "UPSTREAM_TIMEOUT",
            Self::Internal => "INTERNAL_ERROR",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::MalformedJson | Self::InvalidData => StatusCode::BAD_REQUEST,
            Self::Unauthorized | Self::AuthFailed | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::PasswordChangeRequired => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::NotReady | Self::Sealed | Self::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            Self::BadGateway => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error answered to a client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Extra fields merged into the body (for example the failed readiness checks).
    pub details: Option<serde_json::Map<String, serde_json::Value>>,
    /// Seconds to wait before trying again, sent as `Retry-After`.
    pub retry_after: Option<u64>,
}

/// The serialized body, also used by the OpenAPI documents.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Always `error`.
    pub status: String,
    pub error_code: String,
    pub message: String,
    pub request_id: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    /// Says when to try again (`Retry-After`, in seconds).
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn with_details(mut self, details: serde_json::Map<String, serde_json::Value>) -> Self {
        self.details = Some(details);
        self
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn invalid_data(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidData, message)
    }

    /// Adds one extra field to the body (e.g. OAuth's `error`).
    pub fn with_field(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.details
            .get_or_insert_with(serde_json::Map::new)
            .insert(key.to_string(), value.into());
        self
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            ErrorCode::MethodNotAllowed,
            "this route does not accept that method",
        )
    }

    /// A server-side failure. `cause` is logged, never sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            ErrorCode::Internal,
            "internal error; quote the request id when reporting it",
        )
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        if super::input::is_nul_in_database(&err) {
            // Input checks refuse NULs where they name the field; this is the net under
            // them, so the database's refusal is the client's 400 and not our 500.
            tracing::warn!(error = %format!("{err:#}"), "a NUL character reached the database");
            return Self::invalid_data("text must not contain the NUL character (\\u0000 or %00)");
        }
        if crate::db::is_connection_loss(&err) {
            // The database went away (a restart, a failover): the client may try again (the
            // writes that matter carry idempotency keys or versions), and readiness fails
            // meanwhile.
            tracing::warn!(error = %format!("{err:#}"), "the database is unreachable");
            return Self::new(
                ErrorCode::NotReady,
                "the database is unavailable for a moment; try again",
            )
            .with_retry_after(1);
        }
        if crate::db::is_storage_full(&err) {
            // Nothing was written; reads go on, and writes go through once space returns
            // (an operator frees or grows the volume; retention passes free space too).
            tracing::error!(error = %format!("{err:#}"), "the storage is full; writes are refused until space returns");
            return Self::new(
                ErrorCode::NotReady,
                "the storage is full; nothing was written; try again later",
            )
            .with_retry_after(STORAGE_FULL_RETRY_SECONDS);
        }
        Self::internal(format!("{err:#}"))
    }
}

/// How soon a client may ask again after a write refused for a full volume: freeing space
/// takes a person or a retention pass, not a moment.
const STORAGE_FULL_RETRY_SECONDS: u64 = 30;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let mut body = serde_json::Map::new();
        body.insert("status".into(), "error".into());
        body.insert("error_code".into(), self.code.as_str().into());
        body.insert("message".into(), self.message.into());
        body.insert(
            "request_id".into(),
            current_request_id().unwrap_or_default().into(),
        );
        if let Some(details) = self.details {
            for (key, value) in details {
                body.entry(key).or_insert(value);
            }
        }
        let mut response = (status, axum::Json(serde_json::Value::Object(body))).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        response
    }
}
