//! Administering roles (`roles:admin`): the built-in ones are fixed; custom ones are created,
//! replaced and deleted, and a change reaches their holders at once (their tokens go).

use platform::activity::Activity;
use platform::auth::Caller;
use platform::{ApiError, ErrorCode};
use serde::Deserialize;
use serde_json::json;

use crate::service::Authentication;
use crate::store::roles::{self, Role};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Publisher", "description": "Drafts and publishes posts", "permissions": ["bots:read", "bots:write"]}))]
pub struct RoleBody {
    /// Only on create; the path names the role on update.
    pub name: Option<String>,
    #[serde(default)]
    pub description: String,
    pub permissions: Vec<String>,
}

pub fn check_permissions(permissions: &[String]) -> Result<(), ApiError> {
    match permissions.iter().find(|p| !roles::valid_permission(p)) {
        Some(bad) => Err(ApiError::invalid_data(format!(
            "{bad:?} is not a permission; use resource:action"
        ))),
        None => Ok(()),
    }
}

/// Records a role change as user activity and returns the role as stored.
async fn record_change(
    a: &Authentication,
    caller: &Caller,
    action: &str,
    name: &str,
    permissions: &[String],
) -> Result<Role, ApiError> {
    a.activity
        .record(
            Activity::by(caller, action)
                .subject(name.to_string())
                .details(json!({"permissions": permissions})),
        )
        .await;
    roles::get(&a.db, name)
        .await?
        .ok_or_else(|| ApiError::internal("role vanished"))
}

/// A role's permissions changed: its holders' tokens go, so the change applies at once.
async fn revoke_holders(a: &Authentication, holders: Vec<String>) -> Result<(), ApiError> {
    for user_id in holders {
        a.revoke_user(&user_id).await?;
    }
    Ok(())
}

pub async fn list(a: &Authentication, caller: &Caller) -> Result<Vec<Role>, ApiError> {
    caller.require("roles:admin")?;
    Ok(roles::list(&a.db).await?)
}

pub async fn get(a: &Authentication, caller: &Caller, name: &str) -> Result<Role, ApiError> {
    caller.require("roles:admin")?;
    roles::get(&a.db, name)
        .await?
        .ok_or_else(|| ApiError::not_found("no such role"))
}

/// Creates a custom role.
pub async fn create(a: &Authentication, caller: &Caller, body: RoleBody) -> Result<Role, ApiError> {
    caller.require("roles:admin")?;
    let name = body.name.unwrap_or_default();
    if !roles::valid_role_name(&name) {
        return Err(ApiError::invalid_data(
            "name: 1 to 64 letters, digits, spaces, '_' or '-'",
        ));
    }
    check_permissions(&body.permissions)?;
    let now = a.clock.unix_seconds();
    if !roles::create(&a.db, &name, &body.description, &body.permissions, now).await? {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "a role with that name exists",
        ));
    }
    record_change(a, caller, "role.created", &name, &body.permissions).await
}

/// Replaces a custom role's description and permissions (built-in roles are fixed).
pub async fn replace(
    a: &Authentication,
    caller: &Caller,
    name: &str,
    body: RoleBody,
) -> Result<Role, ApiError> {
    caller.require("roles:admin")?;
    check_permissions(&body.permissions)?;
    if !roles::update(&a.db, name, &body.description, &body.permissions).await? {
        return Err(ApiError::not_found(
            "no such custom role (built-in roles cannot change)",
        ));
    }
    revoke_holders(a, roles::holders(&a.db, name).await?).await?;
    record_change(a, caller, "role.changed", name, &body.permissions).await
}

/// Deletes a custom role.
pub async fn delete(a: &Authentication, caller: &Caller, name: &str) -> Result<(), ApiError> {
    caller.require("roles:admin")?;
    let holders = roles::holders(&a.db, name).await?;
    if !roles::delete(&a.db, name).await? {
        return Err(ApiError::not_found(
            "no such custom role (built-in roles cannot be deleted)",
        ));
    }
    revoke_holders(a, holders).await?;
    a.activity
        .record(Activity::by(caller, "role.deleted").subject(name.to_string()))
        .await;
    Ok(())
}
