//! What every signed-in user may do for themselves: read and edit their profile, see and end
//! their sessions, and manage TOTP (enrolment also with the token a login gave an admin who
//! must enrol first).

use platform::activity::Activity;
use platform::auth::{Caller, Claims};
use platform::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};

use super::ClientInfo;
use crate::password::Verified;
use crate::service::Authentication;
use crate::store::sessions::Session;
use crate::store::users::{self, Credentials, User, UserPatch};
use crate::tokens::{MFA_ENROLL, TokenPair};
use crate::{mfa, store};

pub fn not_found() -> ApiError {
    ApiError::not_found("no such user")
}

/// The fields you may change yourself; anything else (roles, disabled, …) is refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"display_name": "Ada Lovelace", "email": "ada@example.com"}))]
pub struct MePatch {
    pub display_name: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionList {
    pub items: Vec<Session>,
    /// The session of the token used for this request.
    pub current: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TotpEnrollment {
    /// Base32; shown once. Prefer scanning `otpauth_uri`.
    pub secret: String,
    pub otpauth_uri: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "123456"}))]
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

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"password": "<your password>"}))]
pub struct TotpDisable {
    pub password: String,
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

async fn credentials_of(a: &Authentication, user_id: &str) -> Result<Credentials, ApiError> {
    users::by_id(&a.db, user_id).await?.ok_or_else(not_found)
}

/// The caller's own user.
pub async fn get(a: &Authentication, caller: &Caller) -> Result<User, ApiError> {
    Ok(credentials_of(a, caller.id()).await?.user)
}

/// Changes the caller's display name or email.
pub async fn patch(a: &Authentication, caller: &Caller, patch: MePatch) -> Result<User, ApiError> {
    check_profile(patch.display_name.as_deref(), patch.email.as_deref())?;
    let changes = UserPatch {
        display_name: patch.display_name,
        email: patch.email.map(Some),
        ..UserPatch::default()
    };
    users::update(&a.db, caller.id(), changes, a.clock.unix_seconds()).await?;
    get(a, caller).await
}

/// The caller's live sessions.
pub async fn sessions(a: &Authentication, caller: &Caller) -> Result<SessionList, ApiError> {
    Ok(SessionList {
        items: store::sessions::list_live(&a.db, caller.id(), a.clock.unix_seconds()).await?,
        current: caller.claims().sid.clone(),
    })
}

/// Ends one of the caller's sessions (someone else's is not found).
pub async fn end_session(
    a: &Authentication,
    caller: &Caller,
    session_id: &str,
) -> Result<(), ApiError> {
    let session = store::sessions::get(&a.db, session_id)
        .await?
        .filter(|s| s.user_id == caller.id())
        .ok_or_else(|| ApiError::not_found("no such session"))?;
    a.revoke_session(&session.id).await?;
    a.activity
        .record(Activity::by(caller, "session.ended").subject(session.id))
        .await;
    Ok(())
}

/// Who may enrol: a signed-in user (their access token), or someone holding the enrolment
/// token a login gave them (returned, to be spent when enrolment finishes).
async fn enrolling_user(
    a: &Authentication,
    bearer: Option<&str>,
) -> Result<(String, Option<Claims>), ApiError> {
    let token =
        bearer.ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "send a bearer token"))?;
    if let Ok(claims) = a.verifier.verify(token).await {
        return Ok((claims.sub, None));
    }
    match a.check_mfa_token(token, MFA_ENROLL).await {
        Some(claims) => Ok((claims.sub.clone(), Some(claims))),
        None => Err(ApiError::new(
            ErrorCode::Unauthorized,
            "the token is invalid, expired or revoked",
        )),
    }
}

/// Starts TOTP enrolment: a new secret, not active until confirmed with a code.
pub async fn enroll_totp(
    a: &Authentication,
    bearer: Option<&str>,
) -> Result<TotpEnrollment, ApiError> {
    let (user_id, _) = enrolling_user(a, bearer).await?;
    let user = credentials_of(a, &user_id).await?.user;
    if user.mfa_enabled {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "TOTP is already enabled; disable it first",
        ));
    }
    let secret = mfa::new_secret();
    let sealed = mfa::seal(&a.sealer, &user.id, &secret);
    users::set_totp(
        &a.db,
        &user.id,
        Some(&sealed),
        false,
        a.clock.unix_seconds(),
    )
    .await?;
    Ok(TotpEnrollment {
        secret: mfa::base32(&secret),
        otpauth_uri: mfa::otpauth_uri(&a.auth.issuer, &user.username, &secret),
    })
}

/// Turns TOTP on with a first code; the recovery codes, and a session when this finished a
/// login.
pub async fn confirm_totp(
    a: &Authentication,
    client: &ClientInfo,
    bearer: Option<&str>,
    request: TotpConfirm,
) -> Result<TotpConfirmed, ApiError> {
    let (user_id, enrolment) = enrolling_user(a, bearer).await?;
    let credentials = credentials_of(a, &user_id).await?;
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
    let secret = mfa::open(&a.sealer, &user_id, sealed)?;
    let step = mfa::matching_step(&secret, &request.code, a.clock.unix_seconds() as u64)
        .ok_or_else(|| {
            ApiError::invalid_data("the code does not match; check the device's clock")
        })?;
    users::set_totp(&a.db, &user_id, Some(sealed), true, a.clock.unix_seconds()).await?;
    users::claim_totp_step(&a.db, &user_id, step).await?;
    let recovery_codes = store::recovery::replace(&a.db, &user_id).await?;
    a.activity
        .record(
            Activity::new("mfa.enabled")
                .actor(user_id.clone())
                .subject(user_id.clone()),
        )
        .await;
    let tokens = match enrolment {
        Some(claims) => {
            a.spend_mfa_token(&claims).await?;
            let agent = client.user_agent.as_deref();
            Some(
                a.open_session(&credentials.user, agent, Some(&client.ip))
                    .await?,
            )
        }
        None => None,
    };
    Ok(TotpConfirmed {
        recovery_codes,
        tokens,
    })
}

/// Turns TOTP off (the caller's password is required).
pub async fn disable_totp(
    a: &Authentication,
    caller: &Caller,
    request: TotpDisable,
) -> Result<(), ApiError> {
    let credentials = credentials_of(a, caller.id()).await?;
    if a.verify_password(request.password, credentials.password_hash)
        .await?
        == Verified::No
    {
        return Err(super::login::auth_failed());
    }
    users::set_totp(&a.db, caller.id(), None, false, a.clock.unix_seconds()).await?;
    store::recovery::delete_all(&a.db, caller.id()).await?;
    a.activity
        .record(Activity::by(caller, "mfa.disabled").subject(caller.id().to_string()))
        .await;
    Ok(())
}
