//! Administering users (`users:admin`): list, create (with a password that passes the
//! policy, or a one-time one), read, change (team, roles and disabling revoke the user's
//! tokens so the change applies at once), delete, reset a password.

use platform::activity::Activity;
use platform::auth::Caller;
use platform::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::me::{check_profile, not_found};
use crate::crypto::random_token;
use crate::service::Authentication;
use crate::store::roles;
use crate::store::users::{self, NewUser, User, UserPatch};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"username": "ada", "display_name": "Ada Lovelace", "email": "ada@example.com", "team": "weather", "roles": ["Editor"]}))]
pub struct CreateUser {
    pub username: String,
    /// Omit it to get a generated one-time password the user must change at first login.
    pub password: Option<String>,
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// Teammates reach each other's bots.
    pub team: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedUser {
    pub user: User,
    /// Present when the password was generated; shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temporary_password: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"team": "weather", "roles": ["Manager"]}))]
pub struct AdminUserPatch {
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// Moving a user to another team (empty string: none) revokes their tokens so the
    /// change applies at once.
    pub team: Option<String>,
    /// Disabling ends every session of the user.
    pub disabled: Option<bool>,
    /// Replaces the user's roles; their current tokens are revoked so the change applies.
    pub roles: Option<Vec<String>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PasswordReset {
    /// One-time password; the user must change it at next login. Shown once.
    pub temporary_password: String,
}

/// A username (or a client id, a target name): 3–64 of letters, digits, `.`, `_`, `-`.
pub fn valid_username(username: &str) -> bool {
    (3..=64).contains(&username.len())
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

async fn check_roles(a: &Authentication, names: &[String]) -> Result<(), ApiError> {
    for name in names {
        if roles::get(&a.db, name).await?.is_none() {
            return Err(ApiError::invalid_data(format!("there is no role {name:?}")));
        }
    }
    Ok(())
}

/// A team name, when one is given.
fn check_team(team: Option<&str>) -> Result<(), ApiError> {
    team.map_or(Ok(()), platform::auth::check_team_name)
}

/// A random password that passes any policy: 256 bits, URL-safe.
fn temporary_password() -> String {
    random_token()
}

async fn user(a: &Authentication, user_id: &str) -> Result<User, ApiError> {
    Ok(users::by_id(&a.db, user_id)
        .await?
        .ok_or_else(not_found)?
        .user)
}

pub async fn list(
    a: &Authentication,
    caller: &Caller,
    limit: i64,
    cursor: Option<&str>,
) -> Result<Vec<User>, ApiError> {
    caller.require("users:admin")?;
    Ok(users::list(&a.db, limit, cursor).await?)
}

/// The password a new user starts with: the one given (checked against the policy with
/// the user's own words), or a generated one-time one (returned, to be shown once).
fn initial_password(
    a: &Authentication,
    request: &CreateUser,
) -> Result<(String, Option<String>), ApiError> {
    match &request.password {
        Some(password) => {
            let personal: Vec<&str> = [&request.display_name, &request.email]
                .into_iter()
                .flatten()
                .map(String::as_str)
                .collect();
            a.policy
                .check_with(&request.username, &personal, password)
                .map_err(|reason| {
                    ApiError::invalid_data(format!("password: {reason}"))
                        .with_field("field", "password")
                })?;
            Ok((password.clone(), None))
        }
        None => {
            let generated = temporary_password();
            Ok((generated.clone(), Some(generated)))
        }
    }
}

pub async fn create(
    a: &Authentication,
    caller: &Caller,
    request: CreateUser,
) -> Result<CreatedUser, ApiError> {
    caller.require("users:admin")?;
    if !valid_username(&request.username) {
        return Err(ApiError::invalid_data(
            "username: 3 to 64 letters, digits, '.', '_' or '-'",
        ));
    }
    check_profile(request.display_name.as_deref(), request.email.as_deref())?;
    check_team(request.team.as_deref())?;
    check_roles(a, &request.roles).await?;
    let (password, temporary) = initial_password(a, &request)?;
    let hash = a.hash_password(password).await?;
    let new = NewUser {
        username: &request.username,
        display_name: request.display_name.as_deref().unwrap_or(""),
        email: request.email.as_deref(),
        team: request.team.as_deref(),
        password_hash: &hash,
        roles: &request.roles,
        must_change_password: temporary.is_some(),
    };
    let user = users::create(&a.db, new, a.clock.unix_seconds())
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::Conflict, "that username is taken"))?;
    a.activity
        .record(
            Activity::by(caller, "user.created")
                .subject(user.id.clone())
                .team(user.team.as_deref())
                .details(json!({"username": user.username, "roles": user.roles})),
        )
        .await;
    Ok(CreatedUser {
        user,
        temporary_password: temporary,
    })
}

pub async fn get(a: &Authentication, caller: &Caller, user_id: &str) -> Result<User, ApiError> {
    caller.require("users:admin")?;
    user(a, user_id).await
}

/// Refuses what an admin may not do to themselves, and checks the fields given.
async fn check_patch(
    a: &Authentication,
    caller: &Caller,
    user_id: &str,
    patch: &AdminUserPatch,
) -> Result<(), ApiError> {
    check_profile(patch.display_name.as_deref(), patch.email.as_deref())?;
    check_team(patch.team.as_deref().filter(|t| !t.is_empty()))?;
    if user_id == caller.id() && (patch.disabled == Some(true) || patch.roles.is_some()) {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "you cannot disable yourself or change your own roles; ask another admin",
        ));
    }
    if let Some(roles) = &patch.roles {
        check_roles(a, roles).await?;
    }
    Ok(())
}

/// Records role and enabled changes as user activity.
async fn record_patch(a: &Authentication, caller: &Caller, before: &User, after: &User) {
    if after.roles != before.roles {
        a.activity
            .record(
                Activity::by(caller, "user.roles_changed")
                    .subject(after.id.clone())
                    .team(after.team.as_deref())
                    .details(json!({"before": before.roles, "after": after.roles})),
            )
            .await;
    }
    if after.disabled != before.disabled {
        let action = if after.disabled {
            "user.disabled"
        } else {
            "user.enabled"
        };
        a.activity
            .record(
                Activity::by(caller, action)
                    .subject(after.id.clone())
                    .team(after.team.as_deref()),
            )
            .await;
    }
}

pub async fn patch(
    a: &Authentication,
    caller: &Caller,
    user_id: &str,
    patch: AdminUserPatch,
) -> Result<User, ApiError> {
    caller.require("users:admin")?;
    check_patch(a, caller, user_id, &patch).await?;
    let before = user(a, user_id).await?;
    let team = patch.team.map(|team| (!team.is_empty()).then_some(team));
    let revoke = patch.disabled == Some(true)
        || patch.roles.as_ref().is_some_and(|r| *r != before.roles)
        || team.as_ref().is_some_and(|t| *t != before.team);
    let changes = UserPatch {
        display_name: patch.display_name,
        email: patch.email.map(Some),
        team,
        disabled: patch.disabled,
        roles: patch.roles,
    };
    users::update(&a.db, user_id, changes, a.clock.unix_seconds()).await?;
    if revoke {
        a.revoke_user(user_id).await?;
    }
    let after = user(a, user_id).await?;
    record_patch(a, caller, &before, &after).await;
    Ok(after)
}

/// Deletes a user and ends their sessions.
pub async fn delete(a: &Authentication, caller: &Caller, user_id: &str) -> Result<(), ApiError> {
    caller.require("users:admin")?;
    if user_id == caller.id() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "you cannot delete yourself",
        ));
    }
    let deleted = user(a, user_id).await?;
    a.revoke_user(user_id).await?;
    users::delete(&a.db, user_id).await?;
    a.activity
        .record(
            Activity::by(caller, "user.deleted")
                .subject(user_id.to_string())
                .team(deleted.team.as_deref()),
        )
        .await;
    Ok(())
}

/// A one-time password the user must change at next login; their tokens end.
pub async fn reset_password(
    a: &Authentication,
    caller: &Caller,
    user_id: &str,
) -> Result<PasswordReset, ApiError> {
    caller.require("users:admin")?;
    let target = user(a, user_id).await?;
    let record = Activity::by(caller, "password.reset")
        .subject(user_id.to_string())
        .team(target.team.as_deref());
    give_temporary_password(a, user_id, record).await
}

/// `vivesphere auth reset-password`: the same reset by the operator at the machine (who can
/// read the service's database), for a user found by name — the way back in when the only
/// admin's password is lost. Audited with `operator` as the actor.
pub async fn reset_password_by_operator(
    a: &Authentication,
    operator: &str,
    username: &str,
) -> Result<PasswordReset, ApiError> {
    let found = users::by_username(&a.db, username)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user {username:?}")))?;
    let user_id = found.user.id;
    let record = Activity::new("password.reset")
        .by_operator(operator)
        .subject(user_id.clone())
        .team(found.user.team.as_deref())
        .details(json!({"by": "vivesphere auth reset-password"}));
    give_temporary_password(a, &user_id, record).await
}

async fn give_temporary_password(
    a: &Authentication,
    user_id: &str,
    record: Activity,
) -> Result<PasswordReset, ApiError> {
    let temporary = temporary_password();
    let hash = a.hash_password(temporary.clone()).await?;
    users::set_password(&a.db, user_id, &hash, true, a.clock.unix_seconds()).await?;
    a.revoke_user(user_id).await?;
    a.activity.record(record).await;
    Ok(PasswordReset {
        temporary_password: temporary,
    })
}
