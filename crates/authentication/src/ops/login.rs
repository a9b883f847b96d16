//! Signing in and out: the password step (throttled, the same for unknown and known names),
//! the second factor, refresh, logout, token validation and the self-service password change.

use platform::activity::Activity;
use platform::auth::{Caller, Claims};
use platform::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ClientInfo;
use crate::password::Verified;
use crate::service::Authentication;
use crate::store::sessions::Refreshed;
use crate::store::throttle::{self, ThrottleKey};
use crate::store::users::{self, Credentials, User};
use crate::tokens::{MFA_ENROLL, MFA_VERIFY, TokenPair};
use crate::{mfa, store};

/// Longest password accepted at login (policy caps new ones); bounds the hashing work an
/// anonymous caller can ask for.
const MAX_LOGIN_PASSWORD: usize = 1024;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"username": "admin", "password": "<your password>"}))]
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

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"mfa_token": "<mfa_token from the login answer>", "code": "123456"}))]
pub struct MfaLoginRequest {
    pub mfa_token: String,
    /// The 6-digit TOTP code…
    pub code: Option<String>,
    /// …or one of the recovery codes.
    pub recovery_code: Option<String>,
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

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"username": "ada", "current_password": "<the one-time password>", "new_password": "a-long-passphrase-of-your-own"}))]
pub struct PasswordChange {
    /// Needed only without a bearer token (a password that must be changed before login).
    pub username: Option<String>,
    pub current_password: String,
    pub new_password: String,
}

pub fn auth_failed() -> ApiError {
    ApiError::new(ErrorCode::AuthFailed, "Invalid credentials")
}

fn invalid_token() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidToken,
        "the token is invalid, expired or revoked",
    )
}

fn throttled(retry_after: i64) -> ApiError {
    ApiError::new(
        ErrorCode::RateLimited,
        format!("too many failed attempts; try again in {retry_after} seconds"),
    )
    .with_retry_after(retry_after.max(0) as u64)
}

/// An activity about a login attempt: which name was tried, from where.
fn attempt(action: &str, username: &str, client: &ClientInfo) -> Activity {
    Activity::new(action).details(json!({"username": username, "ip": client.ip}))
}

/// Seconds the account or the address must still wait (0: none).
async fn wait_needed(a: &Authentication, keys: &[ThrottleKey]) -> Result<i64, ApiError> {
    let settings = a.live.get().brute_force.clone();
    Ok(throttle::retry_after(&a.db, &settings, keys, a.clock.unix_seconds()).await?)
}

/// Counts a failed attempt; whether it locked the account or address.
async fn count_failure(a: &Authentication, keys: &[ThrottleKey]) -> Result<bool, ApiError> {
    let settings = a.live.get().brute_force.clone();
    Ok(throttle::record_failure(&a.db, &settings, keys, a.clock.unix_seconds()).await?)
}

/// The user with this name if the password is theirs and they are enabled; one argon2
/// verification either way, so unknown and known names take the same time.
async fn verify_credentials(
    a: &Authentication,
    username: &str,
    password: &str,
) -> Result<(Option<Credentials>, Verified), ApiError> {
    let credentials =
        if username.is_empty() || username.len() > 64 || password.len() > MAX_LOGIN_PASSWORD {
            None
        } else {
            users::by_username(&a.db, username).await?
        };
    let hash = credentials
        .as_ref()
        .map_or_else(|| a.decoy_hash.clone(), |c| c.password_hash.clone());
    let verified = a.verify_password(password.to_string(), hash).await?;
    Ok((credentials, verified))
}

/// Checks a username and password the same way whether or not the user exists: throttling
/// first, then one argon2 verification either way; failures are counted and recorded.
pub async fn check_password(
    a: &Authentication,
    client: &ClientInfo,
    username: &str,
    password: &str,
) -> Result<Credentials, ApiError> {
    let keys = [
        ThrottleKey::account(username),
        ThrottleKey::address(&client.ip),
    ];
    let wait = wait_needed(a, &keys).await?;
    if wait > 0 {
        a.activity
            .record(attempt("login.throttled", username, client))
            .await;
        return Err(throttled(wait));
    }
    match verify_credentials(a, username, password).await? {
        (Some(credentials), verified) if verified != Verified::No && !credentials.user.disabled => {
            throttle::clear(&a.db, &keys[0]).await?;
            if verified == Verified::YesRehash {
                let fresh = a.hash_password(password.to_string()).await?;
                users::rehash(&a.db, &credentials.user.id, &fresh).await?;
            }
            Ok(credentials)
        }
        (other, _) => {
            let locked = count_failure(a, &keys).await?;
            let mut activity = attempt("login.failed", username, client);
            if let Some(credentials) = &other {
                activity = activity.subject(credentials.user.id.clone());
            }
            a.activity.record(activity).await;
            if locked {
                a.activity
                    .record(attempt("login.locked", username, client))
                    .await;
            }
            Err(auth_failed())
        }
    }
}

/// Opens a session and records the login.
async fn signed_in(
    a: &Authentication,
    user: &User,
    client: &ClientInfo,
    mfa: bool,
) -> Result<TokenPair, ApiError> {
    let pair = a
        .open_session(user, client.user_agent.as_deref(), Some(&client.ip))
        .await?;
    let details = if mfa {
        json!({"ip": client.ip, "mfa": true})
    } else {
        json!({"ip": client.ip})
    };
    a.activity
        .record(
            Activity::new("login.succeeded")
                .by_user(user.id.clone(), user.username.clone())
                .team(user.team.as_deref())
                .details(details),
        )
        .await;
    Ok(pair)
}

/// The password step: a token pair, or a challenge for the second factor (or for enrolling
/// one, where admins must).
pub async fn login(
    a: &Authentication,
    client: &ClientInfo,
    request: &LoginRequest,
) -> Result<LoginResponse, ApiError> {
    let credentials = check_password(a, client, &request.username, &request.password).await?;
    let user = credentials.user;
    if user.must_change_password {
        return Err(ApiError::new(
            ErrorCode::PasswordChangeRequired,
            "this password must be changed before login: POST /api/v1/auth/password",
        ));
    }
    let mfa_purpose = if user.mfa_enabled {
        Some((MFA_VERIFY, "mfa_required"))
    } else if a.settings.require_mfa_for_admins
        && user.roles.iter().any(|r| r == platform::auth::ADMIN_ROLE)
    {
        Some((MFA_ENROLL, "mfa_enrollment_required"))
    } else {
        None
    };
    if let Some((purpose, status)) = mfa_purpose {
        let mfa_token = a.mfa_token(&user, purpose).await?;
        return Ok(LoginResponse::Mfa(MfaChallenge {
            status,
            mfa_token,
            expires_in: a.settings.mfa_token_ttl,
        }));
    }
    Ok(LoginResponse::Tokens(
        signed_in(a, &user, client, false).await?,
    ))
}

/// Whether the TOTP code (its step not used before) or a recovery code is the user's.
async fn second_factor_accepted(
    a: &Authentication,
    credentials: &Credentials,
    request: &MfaLoginRequest,
) -> Result<bool, ApiError> {
    let user = &credentials.user;
    match (
        &request.code,
        &request.recovery_code,
        &credentials.totp_secret_sealed,
    ) {
        (Some(code), None, Some(sealed)) if user.mfa_enabled => {
            let secret = mfa::open(&a.sealer, &user.id, sealed)?;
            match mfa::matching_step(&secret, code, a.clock.unix_seconds() as u64) {
                Some(step) => Ok(users::claim_totp_step(&a.db, &user.id, step).await?),
                None => Ok(false),
            }
        }
        (None, Some(code), _) => {
            Ok(store::recovery::consume(&a.db, &user.id, code, a.clock.unix_seconds()).await?)
        }
        _ => Ok(false),
    }
}

/// The second step of a login: the MFA-pending token and a code.
pub async fn login_mfa(
    a: &Authentication,
    client: &ClientInfo,
    request: &MfaLoginRequest,
) -> Result<TokenPair, ApiError> {
    let claims = a
        .check_mfa_token(&request.mfa_token, MFA_VERIFY)
        .await
        .ok_or_else(auth_failed)?;
    let credentials = users::by_id(&a.db, &claims.sub)
        .await?
        .filter(|c| !c.user.disabled)
        .ok_or_else(auth_failed)?;
    let keys = [
        ThrottleKey::account(&credentials.user.username),
        ThrottleKey::address(&client.ip),
    ];
    let wait = wait_needed(a, &keys).await?;
    if wait > 0 {
        return Err(throttled(wait));
    }
    if !second_factor_accepted(a, &credentials, request).await? {
        count_failure(a, &keys).await?;
        a.activity
            .record(
                Activity::new("login.mfa_failed")
                    .subject(credentials.user.id.clone())
                    .team(credentials.user.team.as_deref()),
            )
            .await;
        return Err(auth_failed());
    }
    a.spend_mfa_token(&claims).await?;
    throttle::clear(&a.db, &keys[0]).await?;
    signed_in(a, &credentials.user, client, true).await
}

/// A new pair for a refresh token, which is spent; a reused one ends its whole session.
pub async fn refresh(a: &Authentication, refresh_token: &str) -> Result<TokenPair, ApiError> {
    let outcome = store::sessions::refresh(
        &a.db,
        refresh_token,
        a.settings.session_idle_timeout as i64,
        a.clock.unix_seconds(),
    )
    .await?;
    match outcome {
        Refreshed::Rotated {
            session_id,
            user_id,
            token,
        } => {
            let user = users::by_id(&a.db, &user_id).await?.map(|c| c.user);
            match user {
                Some(user) if !user.disabled => Ok(a.pair(&user, &session_id, token).await?),
                _ => {
                    a.revoke_session(&session_id).await?;
                    Err(invalid_token())
                }
            }
        }
        Refreshed::Reused {
            session_id,
            user_id,
        } => {
            // Stolen or replayed: the session ends, and every token it issued with it.
            a.revoke_session(&session_id).await?;
            a.activity
                .record(Activity::new("session.refresh_reused").subject(user_id))
                .await;
            Err(invalid_token())
        }
        Refreshed::Invalid => Err(invalid_token()),
    }
}

/// Ends the caller's session: its refresh token and every access token issued in it (a
/// token of no session is revoked alone).
pub async fn logout(a: &Authentication, caller: &Caller) -> Result<(), ApiError> {
    let claims = caller.claims();
    match &claims.sid {
        Some(sid) => a.revoke_session(sid).await?,
        None => {
            a.revoke(platform::auth::Revocation {
                kind: platform::auth::RevocationKind::Token,
                value: claims.jti.clone(),
                issued_before: claims.iat,
                expires_at: claims.exp + a.auth.leeway as i64,
            })
            .await?
        }
    }
    a.activity.record(Activity::by(caller, "logout")).await;
    Ok(())
}

/// What a valid token says.
pub async fn validate(a: &Authentication, token: Option<&str>) -> Result<Validation, ApiError> {
    let token = token.ok_or_else(invalid_token)?;
    let claims: Claims = a.verifier.verify(token).await.map_err(|err| {
        tracing::info!(reason = %err, "token refused by /validate");
        invalid_token()
    })?;
    tracing::Span::current().record("user_id", claims.sub.as_str());
    Ok(Validation {
        status: "valid",
        expires_at: crate::rfc3339(claims.exp),
        user_id: claims.sub,
        username: claims.username,
        roles: claims.roles,
        permissions: claims.perms,
    })
}

/// Whose password is changed: the bearer token's user, else the named one (a password that
/// must be changed before login).
async fn changing_whom(
    a: &Authentication,
    bearer: Option<&str>,
    request: &PasswordChange,
) -> Result<String, ApiError> {
    match bearer {
        Some(token) => {
            let claims = a.verifier.verify(token).await.map_err(|_| {
                ApiError::new(ErrorCode::Unauthorized, "the access token is invalid")
            })?;
            Ok(claims.username.unwrap_or_default())
        }
        None => request
            .username
            .clone()
            .ok_or_else(|| ApiError::invalid_data("send a bearer token or a username")),
    }
}

/// Changes one's own password (the current one is required) and ends all one's sessions.
pub async fn change_password(
    a: &Authentication,
    client: &ClientInfo,
    bearer: Option<&str>,
    request: PasswordChange,
) -> Result<(), ApiError> {
    let username = changing_whom(a, bearer, &request).await?;
    let user = check_password(a, client, &username, &request.current_password)
        .await?
        .user;
    let personal: Vec<&str> = std::iter::once(user.display_name.as_str())
        .chain(user.email.as_deref())
        .collect();
    a.policy
        .check_with(&user.username, &personal, &request.new_password)
        .map_err(|reason| {
            ApiError::invalid_data(format!("new_password: {reason}"))
                .with_field("field", "new_password")
        })?;
    if request.new_password == request.current_password {
        return Err(ApiError::invalid_data(
            "the new password must differ from the current one",
        ));
    }
    let hash = a.hash_password(request.new_password).await?;
    users::set_password(&a.db, &user.id, &hash, false, a.clock.unix_seconds()).await?;
    a.revoke_user(&user.id).await?;
    a.activity
        .record(
            Activity::new("password.changed")
                .by_user(user.id.clone(), user.username.clone())
                .subject(user.id.clone())
                .team(user.team.as_deref()),
        )
        .await;
    Ok(())
}
