//! What every signed-in user may do for themselves: read and edit their profile, see and end
//! their sessions, and manage TOTP.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use platform::activity::Activity;
use platform::auth::{Authenticated, Claims, bearer_token};
use platform::http::error::ErrorBody;
use platform::{ApiError, ErrorCode, Json};
use serde::{Deserialize, Serialize};

use super::ClientInfo;
use crate::password::Verified;
use crate::state::AppState;
use crate::store::sessions::Session;
use crate::store::users::{self, User, UserPatch};
use crate::tokens::{MFA_ENROLL, TokenPair};
use crate::{mfa, store};

fn not_found() -> ApiError {
    ApiError::not_found("no such user")
}

/// Your own user.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = ErrorBody)))]
pub async fn get_me(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
) -> Result<Json<User>, ApiError> {
    let user = users::by_id(&state.db, &claims.sub)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(user.user))
}

/// The fields you may change yourself; anything else (roles, disabled, …) is refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MePatch {
    pub display_name: Option<String>,
    pub email: Option<String>,
}

pub fn check_profile(display_name: Option<&str>, email: Option<&str>) -> Result<(), ApiError> {
    if display_name.is_some_and(|n| n.chars().count() > 128) {
        return Err(ApiError::invalid_data(
            "display_name has at most 128 characters",
        ));
    }
    if let Some(email) = email {
        let valid = email.len() <= 254
            && email
                .split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
        if !valid {
            return Err(ApiError::invalid_data("email is not an email address"));
        }
    }
    Ok(())
}

/// Change your display name or email.
#[utoipa::path(patch, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])), request_body = MePatch,
    responses((status = 200, body = User), (status = 400, body = ErrorBody)))]
pub async fn patch_me(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Json(patch): Json<MePatch>,
) -> Result<Json<User>, ApiError> {
    check_profile(patch.display_name.as_deref(), patch.email.as_deref())?;
    users::update(
        &state.db,
        &claims.sub,
        UserPatch {
            display_name: patch.display_name,
            email: patch.email.map(Some),
            ..UserPatch::default()
        },
        state.clock.unix_seconds(),
    )
    .await?;
    get_me(State(state), Authenticated(claims)).await
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionList {
    pub items: Vec<Session>,
    /// The session of the token used for this request.
    pub current: Option<String>,
}

/// Your live sessions.
#[utoipa::path(get, path = "/api/v1/auth/sessions", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = SessionList)))]
pub async fn list_sessions(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
) -> Result<Json<SessionList>, ApiError> {
    Ok(Json(SessionList {
        items: store::sessions::list_live(&state.db, &claims.sub, state.clock.unix_seconds())
            .await?,
        current: claims.sid,
    }))
}

/// End one of your sessions (someone else's is 404).
#[utoipa::path(delete, path = "/api/v1/auth/sessions/{session_id}", tag = "auth", security(("bearer" = [])),
    params(("session_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn end_session(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(session_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let session = store::sessions::get(&state.db, &session_id)
        .await?
        .filter(|s| s.user_id == claims.sub)
        .ok_or_else(|| ApiError::not_found("no such session"))?;
    state.revoke_session(&session.id).await?;
    state
        .activity
        .record(
            Activity::new("session.ended")
                .actor(claims.sub.clone())
                .subject(session.id),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Who may enrol: a signed-in user, or someone holding the enrolment token login gave them.
async fn enrolling_user(
    state: &AppState,
    parts: &Parts,
) -> Result<(String, Option<Claims>), ApiError> {
    let token = bearer_token(parts, false)
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "send a bearer token"))?;
    if let Ok(claims) = state.verifier.verify(&token).await {
        return Ok((claims.sub, None));
    }
    match state.check_mfa_token(&token, MFA_ENROLL).await {
        Some(claims) => Ok((claims.sub.clone(), Some(claims))),
        None => Err(ApiError::new(
            ErrorCode::Unauthorized,
            "the token is invalid, expired or revoked",
        )),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TotpEnrollment {
    /// Base32; shown once. Prefer scanning `otpauth_uri`.
    pub secret: String,
    pub otpauth_uri: String,
}

/// Start TOTP enrolment: a new secret, not active until confirmed with a code.
#[utoipa::path(post, path = "/api/v1/auth/mfa/totp/enroll", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = TotpEnrollment), (status = 409, description = "TOTP is already on", body = ErrorBody)))]
pub async fn enroll_totp(
    State(state): State<AppState>,
    parts: Parts,
) -> Result<Json<TotpEnrollment>, ApiError> {
    let (user_id, _) = enrolling_user(&state, &parts).await?;
    let user = users::by_id(&state.db, &user_id)
        .await?
        .ok_or_else(not_found)?
        .user;
    if user.mfa_enabled {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "TOTP is already enabled; disable it first",
        ));
    }
    let secret = mfa::new_secret();
    users::set_totp(
        &state.db,
        &user.id,
        Some(&mfa::seal(&state.sealer, &user.id, &secret)),
        false,
        state.clock.unix_seconds(),
    )
    .await?;
    Ok(Json(TotpEnrollment {
        secret: mfa::base32(&secret),
        otpauth_uri: mfa::otpauth_uri(&state.auth.issuer, &user.username, &secret),
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpConfirm {
    pub code: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TotpConfirmed {
    /// Ten single-use codes, shown once.
    pub recovery_codes: Vec<String>,
    /// When enrolment finished a login (enrolment token), the session's tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<TokenPair>,
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
    let (user_id, enrolment) = enrolling_user(&state, &parts).await?;
    let credentials = users::by_id(&state.db, &user_id)
        .await?
        .ok_or_else(not_found)?;
    let sealed = credentials
        .totp_secret_sealed
        .as_deref()
        .filter(|_| !credentials.user.mfa_enabled)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Conflict,
                "start enrolment at /mfa/totp/enroll first",
            )
        })?;
    let secret = mfa::open(&state.sealer, &user_id, sealed)?;
    let step = mfa::matching_step(&secret, &request.code, state.clock.unix_seconds() as u64)
        .ok_or_else(|| {
            ApiError::invalid_data("the code does not match; check the device's clock")
        })?;
    users::set_totp(
        &state.db,
        &user_id,
        Some(sealed),
        true,
        state.clock.unix_seconds(),
    )
    .await?;
    users::claim_totp_step(&state.db, &user_id, step).await?;
    let recovery_codes = store::recovery::replace(&state.db, &user_id).await?;
    state
        .activity
        .record(
            Activity::new("mfa.enabled")
                .actor(user_id.clone())
                .subject(user_id.clone()),
        )
        .await;
    let tokens = match enrolment {
        Some(claims) => {
            state.spend_mfa_token(&claims).await?;
            Some(
                state
                    .open_session(
                        &credentials.user,
                        client.user_agent.as_deref(),
                        Some(&client.ip),
                    )
                    .await?,
            )
        }
        None => None,
    };
    Ok(Json(TotpConfirmed {
        recovery_codes,
        tokens,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpDisable {
    pub password: String,
}

/// Turn TOTP off (your password is required).
#[utoipa::path(delete, path = "/api/v1/auth/mfa/totp", tag = "auth", security(("bearer" = [])),
    request_body = TotpDisable,
    responses((status = 204), (status = 401, description = "`AUTH_FAILED`", body = ErrorBody)))]
pub async fn disable_totp(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Json(request): Json<TotpDisable>,
) -> Result<StatusCode, ApiError> {
    let credentials = users::by_id(&state.db, &claims.sub)
        .await?
        .ok_or_else(not_found)?;
    if state
        .verify_password(request.password, credentials.password_hash)
        .await?
        == Verified::No
    {
        return Err(super::login::auth_failed());
    }
    users::set_totp(
        &state.db,
        &claims.sub,
        None,
        false,
        state.clock.unix_seconds(),
    )
    .await?;
    store::recovery::delete_all(&state.db, &claims.sub).await?;
    state
        .activity
        .record(
            Activity::new("mfa.disabled")
                .actor(claims.sub.clone())
                .subject(claims.sub.clone()),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}
