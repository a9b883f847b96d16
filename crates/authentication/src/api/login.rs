//! Login (password, then the second factor), refresh, logout, validate and the self-service
//! password change.

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::RETRY_AFTER;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use platform::activity::Activity;
use platform::auth::{Authenticated, bearer_token};
use platform::http::error::ErrorBody;
use platform::{ApiError, ErrorCode, Json};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ClientInfo;
use crate::password::Verified;
use crate::state::AppState;
use crate::store::sessions::Refreshed;
use crate::store::throttle::{self, ThrottleKey};
use crate::store::users::{self, Credentials};
use crate::tokens::{MFA_ENROLL, MFA_VERIFY, TokenPair};
use crate::{mfa, store};

/// Longest password accepted at login (policy caps new ones); bounds the hashing work an
/// anonymous caller can ask for.
const MAX_LOGIN_PASSWORD: usize = 1024;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// Either a token pair, or a request for the second factor.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum LoginResponse {
    Tokens(TokenPair),
    Mfa(MfaChallenge),
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MfaChallenge {
    /// `mfa_required` (send a code to `/login/mfa`) or `mfa_enrollment_required` (enrol
    /// TOTP at `/mfa/totp/enroll` with this token first).
    pub status: &'static str,
    /// Accepted only by the MFA endpoints, for `expires_in` seconds, once.
    pub mfa_token: String,
    pub expires_in: u64,
}

pub fn auth_failed() -> ApiError {
    ApiError::new(ErrorCode::AuthFailed, "Invalid credentials")
}

fn throttled(retry_after: i64) -> Response {
    (
        [(RETRY_AFTER, retry_after.to_string())],
        ApiError::new(
            ErrorCode::RateLimited,
            format!("too many failed attempts; try again in {retry_after} seconds"),
        ),
    )
        .into_response()
}

/// An activity about a login attempt: which name was tried, from where.
fn attempt(action: &str, username: &str, client: &ClientInfo) -> Activity {
    Activity::new(action).details(json!({"username": username, "ip": client.ip}))
}

/// Checks a username and password the same way whether or not the user exists: throttling
/// first, then one argon2 verification either way. `Err` is the response to send.
pub async fn check_password(
    state: &AppState,
    client: &ClientInfo,
    username: &str,
    password: &str,
) -> Result<Credentials, Response> {
    let keys = [
        ThrottleKey::account(username),
        ThrottleKey::address(&client.ip),
    ];
    let wait = throttle::retry_after(
        &state.db,
        &state.live.get().brute_force,
        &keys,
        state.clock.unix_seconds(),
    )
    .await
    .map_err(internal)?;
    if wait > 0 {
        state
            .activity
            .record(attempt("login.throttled", username, client))
            .await;
        return Err(throttled(wait));
    }
    let credentials =
        if username.is_empty() || username.len() > 64 || password.len() > MAX_LOGIN_PASSWORD {
            None
        } else {
            users::by_username(&state.db, username)
                .await
                .map_err(internal)?
        };
    let hash = credentials
        .as_ref()
        .map_or_else(|| state.decoy_hash.clone(), |c| c.password_hash.clone());
    let verified = state
        .verify_password(password.to_string(), hash)
        .await
        .map_err(internal)?;
    match credentials {
        Some(credentials) if verified != Verified::No && !credentials.user.disabled => {
            throttle::clear(&state.db, &keys[0])
                .await
                .map_err(internal)?;
            if verified == Verified::YesRehash {
                let fresh = state
                    .hash_password(password.to_string())
                    .await
                    .map_err(internal)?;
                users::rehash(&state.db, &credentials.user.id, &fresh)
                    .await
                    .map_err(internal)?;
            }
            Ok(credentials)
        }
        other => {
            let locked = throttle::record_failure(
                &state.db,
                &state.live.get().brute_force,
                &keys,
                state.clock.unix_seconds(),
            )
            .await
            .map_err(internal)?;
            let mut activity = attempt("login.failed", username, client);
            if let Some(credentials) = &other {
                activity = activity.subject(credentials.user.id.clone());
            }
            state.activity.record(activity).await;
            if locked {
                state
                    .activity
                    .record(attempt("login.locked", username, client))
                    .await;
            }
            Err(auth_failed().into_response())
        }
    }
}

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
) -> Result<Response, Response> {
    let credentials = check_password(&state, &client, &request.username, &request.password).await?;
    let user = credentials.user;
    if user.must_change_password {
        return Err(ApiError::new(
            ErrorCode::PasswordChangeRequired,
            "this password must be changed before login: POST /api/v1/auth/password",
        )
        .into_response());
    }
    let mfa_purpose = if user.mfa_enabled {
        Some((MFA_VERIFY, "mfa_required"))
    } else if state.settings.require_mfa_for_admins
        && user.roles.iter().any(|r| r == crate::store::roles::ADMIN)
    {
        Some((MFA_ENROLL, "mfa_enrollment_required"))
    } else {
        None
    };
    if let Some((purpose, status)) = mfa_purpose {
        let mfa_token = state.mfa_token(&user, purpose).await.map_err(internal)?;
        return Ok(Json(LoginResponse::Mfa(MfaChallenge {
            status,
            mfa_token,
            expires_in: state.settings.mfa_token_ttl,
        }))
        .into_response());
    }
    let pair = state
        .open_session(&user, client.user_agent.as_deref(), Some(&client.ip))
        .await
        .map_err(internal)?;
    state
        .activity
        .record(
            Activity::new("login.succeeded")
                .actor(user.id.clone())
                .details(json!({"ip": client.ip})),
        )
        .await;
    Ok(Json(LoginResponse::Tokens(pair)).into_response())
}

fn internal(err: anyhow::Error) -> Response {
    ApiError::from(err).into_response()
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaLoginRequest {
    pub mfa_token: String,
    /// The 6-digit TOTP code…
    pub code: Option<String>,
    /// …or one of the recovery codes.
    pub recovery_code: Option<String>,
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
) -> Result<Response, Response> {
    let claims = state
        .check_mfa_token(&request.mfa_token, MFA_VERIFY)
        .await
        .ok_or_else(|| auth_failed().into_response())?;
    let credentials = users::by_id(&state.db, &claims.sub)
        .await
        .map_err(internal)?
        .filter(|c| !c.user.disabled)
        .ok_or_else(|| auth_failed().into_response())?;
    let keys = [
        ThrottleKey::account(&credentials.user.username),
        ThrottleKey::address(&client.ip),
    ];
    let wait = throttle::retry_after(
        &state.db,
        &state.live.get().brute_force,
        &keys,
        state.clock.unix_seconds(),
    )
    .await
    .map_err(internal)?;
    if wait > 0 {
        return Err(throttled(wait));
    }
    let accepted = match (
        &request.code,
        &request.recovery_code,
        &credentials.totp_secret_sealed,
    ) {
        (Some(code), None, Some(sealed)) if credentials.user.mfa_enabled => {
            let secret =
                mfa::open(&state.sealer, &credentials.user.id, sealed).map_err(internal)?;
            match mfa::matching_step(&secret, code, state.clock.unix_seconds() as u64) {
                Some(step) => users::claim_totp_step(&state.db, &credentials.user.id, step)
                    .await
                    .map_err(internal)?,
                None => false,
            }
        }
        (None, Some(code), _) => store::recovery::consume(
            &state.db,
            &credentials.user.id,
            code,
            state.clock.unix_seconds(),
        )
        .await
        .map_err(internal)?,
        _ => false,
    };
    if !accepted {
        throttle::record_failure(
            &state.db,
            &state.live.get().brute_force,
            &keys,
            state.clock.unix_seconds(),
        )
        .await
        .map_err(internal)?;
        state
            .activity
            .record(Activity::new("login.mfa_failed").subject(credentials.user.id.clone()))
            .await;
        return Err(auth_failed().into_response());
    }
    state.spend_mfa_token(&claims).await.map_err(internal)?;
    throttle::clear(&state.db, &keys[0])
        .await
        .map_err(internal)?;
    let pair = state
        .open_session(
            &credentials.user,
            client.user_agent.as_deref(),
            Some(&client.ip),
        )
        .await
        .map_err(internal)?;
    state
        .activity
        .record(
            Activity::new("login.succeeded")
                .actor(credentials.user.id.clone())
                .details(json!({"ip": client.ip, "mfa": true})),
        )
        .await;
    Ok(Json(pair).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

fn invalid_token() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidToken,
        "the token is invalid, expired or revoked",
    )
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
    let outcome = store::sessions::refresh(
        &state.db,
        &request.refresh_token,
        state.settings.session_idle_timeout as i64,
        state.clock.unix_seconds(),
    )
    .await?;
    match outcome {
        Refreshed::Rotated {
            session_id,
            user_id,
            token,
        } => {
            let user = users::by_id(&state.db, &user_id).await?.map(|c| c.user);
            match user {
                Some(user) if !user.disabled => {
                    Ok(Json(state.pair(&user, &session_id, token).await?))
                }
                _ => {
                    state.revoke_session(&session_id).await?;
                    Err(invalid_token())
                }
            }
        }
        Refreshed::Reused {
            session_id,
            user_id,
        } => {
            // Stolen or replayed: the session ends, and every token it issued with it.
            state.revoke_session(&session_id).await?;
            state
                .activity
                .record(Activity::new("session.refresh_reused").subject(user_id))
                .await;
            Err(invalid_token())
        }
        Refreshed::Invalid => Err(invalid_token()),
    }
}

/// End the current session: its refresh token and every access token issued in it.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
) -> Result<StatusCode, ApiError> {
    match &claims.sid {
        Some(sid) => state.revoke_session(sid).await?,
        None => {
            state
                .revoke(platform::auth::Revocation {
                    kind: platform::auth::RevocationKind::Token,
                    value: claims.jti.clone(),
                    issued_before: claims.iat,
                    expires_at: claims.exp + state.auth.leeway as i64,
                })
                .await?
        }
    }
    state
        .activity
        .record(Activity::new("logout").actor(claims.sub.clone()))
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Validation {
    /// Always `valid`.
    pub status: &'static str,
    pub user_id: String,
    pub username: Option<String>,
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
    /// RFC 3339.
    pub expires_at: String,
}

/// Check a token (as `Authorization: Bearer`, or `?token=` for older clients).
#[utoipa::path(get, path = "/api/v1/auth/validate", tag = "auth", security(("bearer" = [])),
    params(("token" = Option<String>, Query, description = "Deprecated: the token, for clients that cannot send headers")),
    responses((status = 200, body = Validation), (status = 401, description = "`INVALID_TOKEN`", body = ErrorBody)))]
pub async fn validate(
    State(state): State<AppState>,
    parts: Parts,
) -> Result<Json<Validation>, ApiError> {
    let token = bearer_token(&parts, true).ok_or_else(invalid_token)?;
    let claims = state.verifier.verify(&token).await.map_err(|err| {
        tracing::info!(reason = %err, "token refused by /validate");
        invalid_token()
    })?;
    tracing::Span::current().record("user_id", claims.sub.as_str());
    Ok(Json(Validation {
        status: "valid",
        user_id: claims.sub,
        username: claims.username,
        roles: claims.roles,
        permissions: claims.perms,
        expires_at: crate::rfc3339(claims.exp),
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// Needed only without a bearer token (a password that must be changed before login).
    pub username: Option<String>,
    pub current_password: String,
    pub new_password: String,
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
) -> Result<StatusCode, Response> {
    let username = match bearer_token(&parts, false) {
        Some(token) => {
            let claims = state.verifier.verify(&token).await.map_err(|_| {
                ApiError::new(ErrorCode::Unauthorized, "the access token is invalid")
                    .into_response()
            })?;
            claims.username.unwrap_or_default()
        }
        None => request.username.clone().ok_or_else(|| {
            ApiError::invalid_data("send a bearer token or a username").into_response()
        })?,
    };
    let credentials = check_password(&state, &client, &username, &request.current_password).await?;
    let user = credentials.user;
    let personal: Vec<&str> = std::iter::once(user.display_name.as_str())
        .chain(user.email.as_deref())
        .collect();
    state
        .policy
        .check_with(&user.username, &personal, &request.new_password)
        .map_err(|reason| {
            ApiError::invalid_data(format!("new_password: {reason}"))
                .with_field("field", "new_password")
                .into_response()
        })?;
    if request.new_password == request.current_password {
        return Err(
            ApiError::invalid_data("the new password must differ from the current one")
                .into_response(),
        );
    }
    let hash = state
        .hash_password(request.new_password)
        .await
        .map_err(internal)?;
    users::set_password(
        &state.db,
        &user.id,
        &hash,
        false,
        state.clock.unix_seconds(),
    )
    .await
    .map_err(internal)?;
    state.revoke_user(&user.id).await.map_err(internal)?;
    state
        .activity
        .record(
            Activity::new("password.changed")
                .actor(user.id.clone())
                .subject(user.id.clone()),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}
