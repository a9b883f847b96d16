//! The axum side: `Authenticated` pulls the bearer token from the request, verifies it with
//! the service's [`TokenVerifier`] (put in the request extensions by the platform), and
//! records the caller in the request's log span.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::{Claims, TokenError, TokenVerifier};
use crate::http::error::{ApiError, ErrorCode};

/// The bearer token of a request: the `Authorization: Bearer` header, or (only where
/// `allow_query` says so, for old clients) a `token` query parameter.
pub fn bearer_token(parts: &Parts, allow_query: bool) -> Option<String> {
    if let Some(value) = parts.headers.get(AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_string())
            .filter(|t| !t.is_empty());
    }
    if allow_query {
        let query = parts.uri.query()?;
        return query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key == "token" && !value.is_empty()).then(|| value.to_string())
        });
    }
    None
}

/// A verified caller. Rejects with 401 `UNAUTHORIZED` without a valid access token.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Claims);

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let verifier = parts
            .extensions
            .get::<TokenVerifier>()
            .cloned()
            .ok_or_else(|| ApiError::internal("no TokenVerifier in the request extensions"))?;
        let token = bearer_token(parts, false).ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthorized,
                "send an access token as `Authorization: Bearer <token>`",
            )
        })?;
        match verifier.verify(&token).await {
            Ok(claims) => {
                tracing::Span::current().record("user_id", claims.sub.as_str());
                Ok(Authenticated(claims))
            }
            // The token may well be valid: saying 401 would send the client to log in again
            // for what is this service's trouble.
            Err(err @ TokenError::KeysUnavailable(_)) => {
                tracing::warn!(reason = %err, "token not checked");
                Err(ApiError::new(
                    ErrorCode::NotReady,
                    "the access token cannot be checked right now; try again shortly",
                )
                .with_retry_after(1))
            }
            Err(err) => {
                tracing::info!(reason = %err, "token refused");
                Err(ApiError::new(
                    ErrorCode::Unauthorized,
                    "the access token is invalid, expired or revoked",
                ))
            }
        }
    }
}
