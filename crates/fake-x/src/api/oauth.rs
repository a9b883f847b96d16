//! `POST /2/oauth2/token`, refresh grant only: each refresh token works once, for the client
//! it was issued to; errors are named as RFC 6749 §5.2 names them.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use super::{AppState, Call, status_problem};
use crate::state::FaultKind;

#[derive(Deserialize)]
pub(super) struct TokenForm {
    grant_type: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
}

fn oauth_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// A confidential client authenticates with Basic; a public one names itself in the form.
fn client_id(headers: &HeaderMap, form: &TokenForm) -> Option<String> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|v| v.split(':').next().map(String::from))
        .or_else(|| form.client_id.clone())
}

pub(super) async fn token(
    State(fake): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    let mut call = Call::new("POST", "/2/oauth2/token".into());
    // The token endpoint takes status faults only.
    if let Some(fault) = fake.take_fault("POST", "/2/oauth2/token")
        && fault.kind == FaultKind::Status
    {
        let status = fault
            .status
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return call.finish(&fake, status_problem(status));
    }
    let client = client_id(&headers, &form);
    let response = match (form.grant_type.as_deref(), form.refresh_token.as_deref()) {
        (None, _) => oauth_error(
            "invalid_request",
            "Missing required parameter [grant_type].",
        ),
        (Some("refresh_token"), None) => oauth_error(
            "invalid_request",
            "Missing required parameter [refresh_token].",
        ),
        (Some("refresh_token"), Some(refresh_token)) => {
            match fake.refresh(refresh_token, client.as_deref()) {
                Some((access, refresh, scopes)) => {
                    call.user_id = fake.authenticate(&access).and_then(|p| p.user_id);
                    Json(json!({
                        "token_type": "bearer",
                        "expires_in": fake.settings.access_token_ttl,
                        "access_token": access,
                        "scope": scopes.join(" "),
                        "refresh_token": refresh,
                    }))
                    .into_response()
                }
                // Unknown, spent, or issued to another client: the grant is invalid (RFC 6749).
                None => oauth_error("invalid_grant", "Value passed for the token was invalid."),
            }
        }
        (Some(other), _) => oauth_error(
            "unsupported_grant_type",
            &format!("Grant type [{other}] is not supported."),
        ),
    };
    call.finish(&fake, response)
}
