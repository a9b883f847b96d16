//! What every signed-in user may do for themselves, over HTTP (`ops::me` does each).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use platform::auth::{Caller, bearer_token};
use platform::http::error::ErrorBody;
use platform::{ApiError, Json};

use crate::ops::ClientInfo;
use crate::ops::me::{
    self, MePatch, SessionList, TotpConfirm, TotpConfirmed, TotpDisable, TotpEnrollment,
};
use crate::service::AppState;
use crate::store::users::User;

/// Your own user.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = ErrorBody)))]
pub async fn get_me(State(state): State<AppState>, caller: Caller) -> Result<Json<User>, ApiError> {
    Ok(Json(me::get(&state, &caller).await?))
}

/// Change your display name or email.
#[utoipa::path(patch, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])), request_body = MePatch,
    responses((status = 200, body = User), (status = 400, body = ErrorBody)))]
pub async fn patch_me(
    State(state): State<AppState>,
    caller: Caller,
    Json(patch): Json<MePatch>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(me::patch(&state, &caller, patch).await?))
}

/// Your live sessions.
#[utoipa::path(get, path = "/api/v1/auth/sessions", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = SessionList)))]
pub async fn list_sessions(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<SessionList>, ApiError> {
    Ok(Json(me::sessions(&state, &caller).await?))
}

/// End one of your sessions (someone else's is 404).
#[utoipa::path(delete, path = "/api/v1/auth/sessions/{session_id}", tag = "auth", security(("bearer" = [])),
    params(("session_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn end_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(session_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    me::end_session(&state, &caller, &session_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Start TOTP enrolment: a new secret, not active until confirmed with a code.
#[utoipa::path(post, path = "/api/v1/auth/mfa/totp/enroll", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = TotpEnrollment), (status = 409, description = "TOTP is already on", body = ErrorBody)))]
pub async fn enroll_totp(
    State(state): State<AppState>,
    parts: Parts,
) -> Result<Json<TotpEnrollment>, ApiError> {
    let bearer = bearer_token(&parts, false);
    Ok(Json(me::enroll_totp(&state, bearer.as_deref()).await?))
}

/// Turn TOTP on with a first code; returns the recovery codes.
#[utoipa::path(post, path = "/api/v1/auth/mfa/totp/confirm", tag = "auth", security(("bearer" = [])),
    request_body = TotpConfirm,
    responses((status = 200, body = TotpConfirmed), (status = 400, body = ErrorBody)))]
pub async fn confirm_totp(
    State(state): State<AppState>,
    client: ClientInfo,
    parts: Parts,
    Json(request): Json<TotpConfirm>,
) -> Result<Json<TotpConfirmed>, ApiError> {
    let bearer = bearer_token(&parts, false);
    Ok(Json(
        me::confirm_totp(&state, &client, bearer.as_deref(), request).await?,
    ))
}

/// Turn TOTP off (your password is required).
#[utoipa::path(delete, path = "/api/v1/auth/mfa/totp", tag = "auth", security(("bearer" = [])),
    request_body = TotpDisable,
    responses((status = 204), (status = 401, description = "`AUTH_FAILED`", body = ErrorBody)))]
pub async fn disable_totp(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<TotpDisable>,
) -> Result<StatusCode, ApiError> {
    me::disable_totp(&state, &caller, request).await?;
    Ok(StatusCode::NO_CONTENT)
}
