//! Our `Json` extractor: axum's, with every rejection answered in the standard error shape
//! (malformed JSON → 400, wrong types → 400 `INVALID_DATA`, no JSON content type → 415,
//! over the body limit → 413, a NUL character in any text → 400 naming the field).

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::{ApiError, ErrorCode};
use super::input::{json_may_hold_nul, nul_error, nul_field};

/// A JSON body in, or a JSON body out.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| body_error(rejection.status(), &rejection.body_text()))?;
        if json_may_hold_nul(&body)
            && let Ok(value) = serde_json::from_slice::<serde_json::Value>(&body)
            && let Some(field) = nul_field(&value)
        {
            return Err(nul_error(&field));
        }
        match axum::Json::<T>::from_bytes(&body) {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(rejection_to_error(rejection)),
        }
    }
}

/// `application/json` or `application/<something>+json`, as axum accepts.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A body that could not be read: too large (413), or cut off.
pub fn body_error(status: StatusCode, text: &str) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            "the body is larger than this route accepts",
        )
    } else {
        ApiError::new(
            ErrorCode::MalformedJson,
            format!("the body could not be read: {text}"),
        )
    }
}

fn rejection_to_error(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as JSON with `Content-Type: application/json`",
        ),
        JsonRejection::JsonSyntaxError(err) => ApiError::new(
            ErrorCode::MalformedJson,
            format!("the body is not valid JSON: {}", err.body_text()),
        ),
        JsonRejection::JsonDataError(err) => ApiError::new(
            ErrorCode::InvalidData,
            format!(
                "the JSON does not match the expected shape: {}",
                err.body_text()
            ),
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            ErrorCode::PayloadTooLarge,
            "the body is larger than this route accepts",
        ),
        other => ApiError::new(
            ErrorCode::MalformedJson,
            format!("the body could not be read: {}", other.body_text()),
        ),
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}
