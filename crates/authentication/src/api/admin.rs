//! Administration: users (`users:admin`), roles (`roles:admin`) and service clients
//! (`clients:admin`).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use platform::activity::Activity;
use platform::auth::Authenticated;
use platform::http::error::ErrorBody;
use platform::{ApiError, ErrorCode, Json};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Listing, Page};
use crate::crypto::random_token;
use crate::state::AppState;
use crate::store::clients::ServiceClient;
use crate::store::roles::{self, Role};
use crate::store::users::{self, NewUser, User, UserPatch};

fn not_found() -> ApiError {
    ApiError::not_found("no such user")
}

/// A username: 3–64 of letters, digits, `.`, `_`, `-`.
pub fn valid_username(username: &str) -> bool {
    (3..=64).contains(&username.len())
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

async fn check_roles(state: &AppState, names: &[String]) -> Result<(), ApiError> {
    for name in names {
        if roles::get(&state.db, name).await?.is_none() {
            return Err(ApiError::invalid_data(format!("there is no role {name:?}")));
        }
    }
    Ok(())
}

/// A team name: 1–64 of letters, digits, `.`, `_`, `-`.
fn check_team(team: Option<&str>) -> Result<(), ApiError> {
    let valid = |team: &str| {
        (1..=64).contains(&team.len())
            && team
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    match team {
        Some(team) if !valid(team) => Err(ApiError::invalid_data(
            "team: 1 to 64 letters, digits, '.', '_' or '-'",
        )),
        _ => Ok(()),
    }
}

/// A random password that passes any policy: 256 bits, URL-safe.
fn temporary_password() -> String {
    random_token()
}

/// List users.
#[utoipa::path(get, path = "/api/v1/auth/users", tag = "auth", security(("bearer" = [])), params(Page),
    responses((status = 200, body = Listing<User>), (status = 403, body = ErrorBody)))]
pub async fn list_users(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Query(page): Query<Page>,
) -> Result<Json<Listing<User>>, ApiError> {
    claims.require("users:admin")?;
    let limit = page.limit();
    let items = users::list(&state.db, limit + 1, page.cursor.as_deref()).await?;
    Ok(Json(Listing::from_overfetch(items, limit, |u| {
        u.id.clone()
    })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
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

/// Create a user.
#[utoipa::path(post, path = "/api/v1/auth/users", tag = "auth", security(("bearer" = [])), request_body = CreateUser,
    responses((status = 201, body = CreatedUser), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_user(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Json(request): Json<CreateUser>,
) -> Result<(StatusCode, Json<CreatedUser>), ApiError> {
    claims.require("users:admin")?;
    if !valid_username(&request.username) {
        return Err(ApiError::invalid_data(
            "username: 3 to 64 letters, digits, '.', '_' or '-'",
        ));
    }
    super::me::check_profile(request.display_name.as_deref(), request.email.as_deref())?;
    check_team(request.team.as_deref())?;
    check_roles(&state, &request.roles).await?;
    let (password, temporary) = match request.password {
        Some(password) => {
            let personal: Vec<&str> = [&request.display_name, &request.email]
                .into_iter()
                .flatten()
                .map(String::as_str)
                .collect();
            state
                .policy
                .check_with(&request.username, &personal, &password)
                .map_err(|reason| {
                    ApiError::invalid_data(format!("password: {reason}"))
                        .with_field("field", "password")
                })?;
            (password, None)
        }
        None => {
            let generated = temporary_password();
            (generated.clone(), Some(generated))
        }
    };
    let hash = state.hash_password(password).await?;
    let user = users::create(
        &state.db,
        NewUser {
            username: &request.username,
            display_name: request.display_name.as_deref().unwrap_or(""),
            email: request.email.as_deref(),
            team: request.team.as_deref(),
            password_hash: &hash,
            roles: &request.roles,
            must_change_password: temporary.is_some(),
        },
        state.clock.unix_seconds(),
    )
    .await?
    .ok_or_else(|| ApiError::new(ErrorCode::Conflict, "that username is taken"))?;
    state
        .activity
        .record(
            Activity::new("user.created")
                .actor(claims.sub.clone())
                .subject(user.id.clone())
                .details(json!({"username": user.username, "roles": user.roles})),
        )
        .await;
    Ok((
        StatusCode::CREATED,
        Json(CreatedUser {
            user,
            temporary_password: temporary,
        }),
    ))
}

/// Read a user.
#[utoipa::path(get, path = "/api/v1/auth/users/{user_id}", tag = "auth", security(("bearer" = [])),
    params(("user_id" = String, Path)),
    responses((status = 200, body = User), (status = 404, body = ErrorBody)))]
pub async fn get_user(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(user_id): Path<String>,
) -> Result<Json<User>, ApiError> {
    claims.require("users:admin")?;
    let user = users::by_id(&state.db, &user_id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(user.user))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
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

/// Change a user.
#[utoipa::path(patch, path = "/api/v1/auth/users/{user_id}", tag = "auth", security(("bearer" = [])),
    params(("user_id" = String, Path)), request_body = AdminUserPatch,
    responses((status = 200, body = User), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn patch_user(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(user_id): Path<String>,
    Json(patch): Json<AdminUserPatch>,
) -> Result<Json<User>, ApiError> {
    claims.require("users:admin")?;
    super::me::check_profile(patch.display_name.as_deref(), patch.email.as_deref())?;
    check_team(patch.team.as_deref().filter(|t| !t.is_empty()))?;
    if user_id == claims.sub && (patch.disabled == Some(true) || patch.roles.is_some()) {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "you cannot disable yourself or change your own roles; ask another admin",
        ));
    }
    if let Some(roles) = &patch.roles {
        check_roles(&state, roles).await?;
    }
    let before = users::by_id(&state.db, &user_id)
        .await?
        .ok_or_else(not_found)?
        .user;
    let team = patch.team.map(|team| (!team.is_empty()).then_some(team));
    let revoke = patch.disabled == Some(true)
        || patch.roles.as_ref().is_some_and(|r| *r != before.roles)
        || team.as_ref().is_some_and(|t| *t != before.team);
    users::update(
        &state.db,
        &user_id,
        UserPatch {
            display_name: patch.display_name,
            email: patch.email.map(Some),
            team,
            disabled: patch.disabled,
            roles: patch.roles.clone(),
        },
        state.clock.unix_seconds(),
    )
    .await?;
    if revoke {
        state.revoke_user(&user_id).await?;
    }
    let after = users::by_id(&state.db, &user_id)
        .await?
        .ok_or_else(not_found)?
        .user;
    if after.roles != before.roles {
        state
            .activity
            .record(
                Activity::new("user.roles_changed")
                    .actor(claims.sub.clone())
                    .subject(user_id.clone())
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
        state
            .activity
            .record(
                Activity::new(action)
                    .actor(claims.sub.clone())
                    .subject(user_id.clone()),
            )
            .await;
    }
    Ok(Json(after))
}

/// Delete a user and end their sessions.
#[utoipa::path(delete, path = "/api/v1/auth/users/{user_id}", tag = "auth", security(("bearer" = [])),
    params(("user_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_user(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(user_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    claims.require("users:admin")?;
    if user_id == claims.sub {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "you cannot delete yourself",
        ));
    }
    if users::by_id(&state.db, &user_id).await?.is_none() {
        return Err(not_found());
    }
    state.revoke_user(&user_id).await?;
    users::delete(&state.db, &user_id).await?;
    state
        .activity
        .record(
            Activity::new("user.deleted")
                .actor(claims.sub.clone())
                .subject(user_id),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PasswordReset {
    /// One-time password; the user must change it at next login. Shown once.
    pub temporary_password: String,
}

/// Reset a user's password: a one-time password they must change at next login.
#[utoipa::path(post, path = "/api/v1/auth/users/{user_id}/reset-password", tag = "auth", security(("bearer" = [])),
    params(("user_id" = String, Path)),
    responses((status = 200, body = PasswordReset), (status = 404, body = ErrorBody)))]
pub async fn reset_password(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(user_id): Path<String>,
) -> Result<Json<PasswordReset>, ApiError> {
    claims.require("users:admin")?;
    if users::by_id(&state.db, &user_id).await?.is_none() {
        return Err(not_found());
    }
    let temporary = temporary_password();
    let hash = state.hash_password(temporary.clone()).await?;
    users::set_password(&state.db, &user_id, &hash, true, state.clock.unix_seconds()).await?;
    state.revoke_user(&user_id).await?;
    state
        .activity
        .record(
            Activity::new("password.reset")
                .actor(claims.sub.clone())
                .subject(user_id),
        )
        .await;
    Ok(Json(PasswordReset {
        temporary_password: temporary,
    }))
}

// ---- roles ----------------------------------------------------------------------------

/// List roles and their permissions.
#[utoipa::path(get, path = "/api/v1/auth/roles", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = [Role])))]
pub async fn list_roles(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
) -> Result<Json<Vec<Role>>, ApiError> {
    claims.require("roles:admin")?;
    Ok(Json(roles::list(&state.db).await?))
}

/// Read a role.
#[utoipa::path(get, path = "/api/v1/auth/roles/{name}", tag = "auth", security(("bearer" = [])),
    params(("name" = String, Path)), responses((status = 200, body = Role), (status = 404, body = ErrorBody)))]
pub async fn get_role(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(name): Path<String>,
) -> Result<Json<Role>, ApiError> {
    claims.require("roles:admin")?;
    roles::get(&state.db, &name)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no such role"))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    /// Only on create; the path names the role on update.
    pub name: Option<String>,
    #[serde(default)]
    pub description: String,
    pub permissions: Vec<String>,
}

fn check_permissions(permissions: &[String]) -> Result<(), ApiError> {
    match permissions.iter().find(|p| !roles::valid_permission(p)) {
        Some(bad) => Err(ApiError::invalid_data(format!(
            "{bad:?} is not a permission; use resource:action"
        ))),
        None => Ok(()),
    }
}

/// Records a role change as user activity and returns the role as stored.
async fn record_role_change(
    state: &AppState,
    claims: &platform::auth::Claims,
    action: &str,
    name: &str,
    permissions: &[String],
) -> Result<Role, ApiError> {
    state
        .activity
        .record(
            Activity::new(action)
                .actor(claims.sub.clone())
                .subject(name.to_string())
                .details(json!({"permissions": permissions})),
        )
        .await;
    roles::get(&state.db, name)
        .await?
        .ok_or_else(|| ApiError::internal("role vanished"))
}

/// A role's permissions changed: its holders' tokens go, so the change applies at once.
async fn revoke_holders(state: &AppState, holders: Vec<String>) -> Result<(), ApiError> {
    for user_id in holders {
        state.revoke_user(&user_id).await?;
    }
    Ok(())
}

/// Create a custom role.
#[utoipa::path(post, path = "/api/v1/auth/roles", tag = "auth", security(("bearer" = [])), request_body = RoleBody,
    responses((status = 201, body = Role), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_role(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Json(body): Json<RoleBody>,
) -> Result<(StatusCode, Json<Role>), ApiError> {
    claims.require("roles:admin")?;
    let name = body.name.unwrap_or_default();
    if !roles::valid_role_name(&name) {
        return Err(ApiError::invalid_data(
            "name: 1 to 64 letters, digits, spaces, '_' or '-'",
        ));
    }
    check_permissions(&body.permissions)?;
    if !roles::create(
        &state.db,
        &name,
        &body.description,
        &body.permissions,
        state.clock.unix_seconds(),
    )
    .await?
    {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "a role with that name exists",
        ));
    }
    let role =
        record_role_change(&state, &claims, "role.created", &name, &body.permissions).await?;
    Ok((StatusCode::CREATED, Json(role)))
}

/// Replace a custom role's description and permissions (built-in roles are fixed).
#[utoipa::path(put, path = "/api/v1/auth/roles/{name}", tag = "auth", security(("bearer" = [])),
    params(("name" = String, Path)), request_body = RoleBody,
    responses((status = 200, body = Role), (status = 404, body = ErrorBody)))]
pub async fn put_role(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(name): Path<String>,
    Json(body): Json<RoleBody>,
) -> Result<Json<Role>, ApiError> {
    claims.require("roles:admin")?;
    check_permissions(&body.permissions)?;
    if !roles::update(&state.db, &name, &body.description, &body.permissions).await? {
        return Err(ApiError::not_found(
            "no such custom role (built-in roles cannot change)",
        ));
    }
    revoke_holders(&state, roles::holders(&state.db, &name).await?).await?;
    let role =
        record_role_change(&state, &claims, "role.changed", &name, &body.permissions).await?;
    Ok(Json(role))
}

/// Delete a custom role.
#[utoipa::path(delete, path = "/api/v1/auth/roles/{name}", tag = "auth", security(("bearer" = [])),
    params(("name" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_role(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    claims.require("roles:admin")?;
    let holders = roles::holders(&state.db, &name).await?;
    if !roles::delete(&state.db, &name).await? {
        return Err(ApiError::not_found(
            "no such custom role (built-in roles cannot be deleted)",
        ));
    }
    revoke_holders(&state, holders).await?;
    state
        .activity
        .record(
            Activity::new("role.deleted")
                .actor(claims.sub.clone())
                .subject(name),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

// ---- service clients ------------------------------------------------------------------

/// List service clients.
#[utoipa::path(get, path = "/api/v1/auth/clients", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = [ServiceClient])))]
pub async fn list_clients(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
) -> Result<Json<Vec<ServiceClient>>, ApiError> {
    claims.require("clients:admin")?;
    Ok(Json(crate::store::clients::list(&state.db).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClient {
    pub client_id: String,
    /// Target names this client may call (`bot-manager`, `logging`, …).
    pub audiences: Vec<String>,
    pub scopes: Vec<String>,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedClient {
    pub client: ServiceClient,
    /// Shown once; only its hash is kept.
    pub client_secret: String,
}

/// Register a service client.
#[utoipa::path(post, path = "/api/v1/auth/clients", tag = "auth", security(("bearer" = [])), request_body = CreateClient,
    responses((status = 201, body = CreatedClient), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_client(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Json(body): Json<CreateClient>,
) -> Result<(StatusCode, Json<CreatedClient>), ApiError> {
    claims.require("clients:admin")?;
    if !valid_username(&body.client_id) {
        return Err(ApiError::invalid_data(
            "client_id: 3 to 64 letters, digits, '.', '_' or '-'",
        ));
    }
    if body.audiences.is_empty() || !body.audiences.iter().all(|a| valid_username(a)) {
        return Err(ApiError::invalid_data(
            "audiences: one or more target names",
        ));
    }
    check_permissions(&body.scopes)?;
    let (client, client_secret) = crate::store::clients::create(
        &state.db,
        &body.client_id,
        &body.audiences,
        &body.scopes,
        &body.description,
        state.clock.unix_seconds(),
    )
    .await?
    .ok_or_else(|| ApiError::new(ErrorCode::Conflict, "that client_id is taken"))?;
    state
        .activity
        .record(
            Activity::new("client.created")
                .actor(claims.sub.clone())
                .subject(client.client_id.clone()),
        )
        .await;
    Ok((
        StatusCode::CREATED,
        Json(CreatedClient {
            client,
            client_secret,
        }),
    ))
}

/// Delete a service client.
#[utoipa::path(delete, path = "/api/v1/auth/clients/{client_id}", tag = "auth", security(("bearer" = [])),
    params(("client_id" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_client(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(client_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    claims.require("clients:admin")?;
    if !crate::store::clients::delete(&state.db, &client_id).await? {
        return Err(ApiError::not_found("no such client"));
    }
    state
        .activity
        .record(
            Activity::new("client.deleted")
                .actor(claims.sub.clone())
                .subject(client_id),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}
