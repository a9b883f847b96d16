//! Login (password, then the second factor), refresh, logout, validate and the self-service
//! password change, over HTTP (`ops::login` does each).

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::request::Parts;
use platform::auth::{Caller, bearer_token};
use platform::http::error::ErrorBody;
use platform::{ApiError, Json};
use serde::Deserialize;

use crate::ops::ClientInfo;
use crate::ops::login::{
    self, LoginRequest, LoginResponse, MfaLoginRequest, PasswordChange, Validation,
};
use crate::service::AppState;
use crate::tokens::TokenPair;

/// Log in with a username and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Tokens, or an MFA challenge", body = LoginResponse),
        (status = 401, description = "`AUTH_FAILED`: unknown user or wrong password (indistinguishable)", body = ErrorBody),
        (status = 403, description = "`PASSWORD_CHANGE_REQUIRED`: change it at `/password` first", body = ErrorBody),
        (status = 429, description = "`RATE_LIMITED`: too many failures; see Retry-After", body = ErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(request): Json<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    Ok(Json(login::login(&state, &client, &request).await?))
}

/// Finish a login with the second factor.
#[utoipa::path(post, path = "/api/v1/auth/login/mfa", tag = "auth", request_body = MfaLoginRequest,
    responses(
        (status = 200, body = TokenPair),
        (status = 401, description = "`AUTH_FAILED`", body = ErrorBody),
        (status = 429, body = ErrorBody),
    ))]
pub async fn login_mfa(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(request): Json<MfaLoginRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    Ok(Json(login::login_mfa(&state, &client, &request).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"refresh_token": "<refresh_token from the login answer>"}))]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Exchange a refresh token for a new pair; the old refresh token is spent.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, body = TokenPair),
        (status = 401, description = "`INVALID_TOKEN`; a reused token also ends its session", body = ErrorBody),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    Json(request): Json<RefreshRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    Ok(Json(login::refresh(&state, &request.refresh_token).await?))
}

/// End the current session: its refresh token and every access token issued in it.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(State(state): State<AppState>, caller: Caller) -> Result<StatusCode, ApiError> {
    login::logout(&state, &caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Check a token (as `Authorization: Bearer`, or `?token=` for older clients).
#[utoipa::path(get, path = "/api/v1/auth/validate", tag = "auth", security(("bearer" = [])),
    params(("token" = Option<String>, Query, description = "Deprecated: the token, for clients that cannot send headers")),
    responses((status = 200, body = Validation), (status = 401, description = "`INVALID_TOKEN`", body = ErrorBody)))]
pub async fn validate(
    State(state): State<AppState>,
    parts: Parts,
) -> Result<Json<Validation>, ApiError> {
    let token = bearer_token(&parts, true);
    Ok(Json(login::validate(&state, token.as_deref()).await?))
}

/// Change your own password (the current one is required). Ends all your sessions.
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", request_body = PasswordChange,
    responses(
        (status = 204),
        (status = 400, description = "`INVALID_DATA`: the new password breaks the policy", body = ErrorBody),
        (status = 401, description = "`AUTH_FAILED`: wrong current password", body = ErrorBody),
    ))]
pub async fn change_password(
    State(state): State<AppState>,
    client: ClientInfo,
    parts: Parts,
    Json(request): Json<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    let bearer = bearer_token(&parts, false);
    login::change_password(&state, &client, bearer.as_deref(), request).await?;
    Ok(StatusCode::NO_CONTENT)
}
