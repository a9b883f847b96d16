//! Administration over HTTP: users (`users:admin`), roles (`roles:admin`) and service
//! clients (`clients:admin`); `ops::{users, roles, clients}` do each.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use platform::auth::Caller;
use platform::http::error::ErrorBody;
use platform::{ApiError, Json};

use super::{Listing, Page};
use crate::ops::clients::{self, CreateClient, CreatedClient};
use crate::ops::roles::{self, RoleBody};
use crate::ops::users::{self, AdminUserPatch, CreateUser, CreatedUser, PasswordReset};
use crate::service::AppState;
use crate::store::clients::ServiceClient;
use crate::store::roles::Role;
use crate::store::users::User;

/// List users.
#[utoipa::path(get, path = "/api/v1/auth/users", tag = "auth", security(("bearer" = [])), params(Page),
    responses((status = 200, body = Listing<User>), (status = 403, body = ErrorBody)))]
pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<Page>,
) -> Result<Json<Listing<User>>, ApiError> {
    let limit = page.limit();
    let items = users::list(&state, &caller, limit + 1, page.cursor.as_deref()).await?;
    Ok(Json(Listing::from_overfetch(items, limit, |u| {
        u.id.clone()
    })))
}

/// Create a user.
#[utoipa::path(post, path = "/api/v1/auth/users", tag = "auth", security(("bearer" = [])), request_body = CreateUser,
    responses((status = 201, body = CreatedUser), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<CreateUser>,
) -> Result<(StatusCode, Json<CreatedUser>), ApiError> {
    let created = users::create(&state, &caller, request).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Read a user.
#[utoipa::path(get, path = "/api/v1/auth/users/{user_id}", tag = "auth", security(("bearer" = [])),
    params(("user_id" = String, Path)),
    responses((status = 200, body = User), (status = 404, body = ErrorBody)))]
pub async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(users::get(&state, &caller, &user_id).await?))
}

/// Change a user.
#[utoipa::path(patch, path = "/api/v1/auth/users/{user_id}", tag = "auth", security(("bearer" = [])),
    params(("user_id" = String, Path)), request_body = AdminUserPatch,
    responses((status = 200, body = User), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn patch_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    Json(patch): Json<AdminUserPatch>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(users::patch(&state, &caller, &user_id, patch).await?))
}

/// Delete a user and end their sessions.
#[utoipa::path(delete, path = "/api/v1/auth/users/{user_id}", tag = "auth", security(("bearer" = [])),
    params(("user_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    users::delete(&state, &caller, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reset a user's password: a one-time password they must change at next login.
#[utoipa::path(post, path = "/api/v1/auth/users/{user_id}/reset-password", tag = "auth", security(("bearer" = [])),
    params(("user_id" = String, Path)),
    responses((status = 200, body = PasswordReset), (status = 404, body = ErrorBody)))]
pub async fn reset_password(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> Result<Json<PasswordReset>, ApiError> {
    Ok(Json(
        users::reset_password(&state, &caller, &user_id).await?,
    ))
}

/// List roles and their permissions.
#[utoipa::path(get, path = "/api/v1/auth/roles", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = [Role])))]
pub async fn list_roles(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Role>>, ApiError> {
    Ok(Json(roles::list(&state, &caller).await?))
}

/// Read a role.
#[utoipa::path(get, path = "/api/v1/auth/roles/{name}", tag = "auth", security(("bearer" = [])),
    params(("name" = String, Path)), responses((status = 200, body = Role), (status = 404, body = ErrorBody)))]
pub async fn get_role(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Role>, ApiError> {
    Ok(Json(roles::get(&state, &caller, &name).await?))
}

/// Create a custom role.
#[utoipa::path(post, path = "/api/v1/auth/roles", tag = "auth", security(("bearer" = [])), request_body = RoleBody,
    responses((status = 201, body = Role), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_role(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<RoleBody>,
) -> Result<(StatusCode, Json<Role>), ApiError> {
    let role = roles::create(&state, &caller, body).await?;
    Ok((StatusCode::CREATED, Json(role)))
}

/// Replace a custom role's description and permissions (built-in roles are fixed).
#[utoipa::path(put, path = "/api/v1/auth/roles/{name}", tag = "auth", security(("bearer" = [])),
    params(("name" = String, Path)), request_body = RoleBody,
    responses((status = 200, body = Role), (status = 404, body = ErrorBody)))]
pub async fn put_role(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(body): Json<RoleBody>,
) -> Result<Json<Role>, ApiError> {
    Ok(Json(roles::replace(&state, &caller, &name, body).await?))
}

/// Delete a custom role.
#[utoipa::path(delete, path = "/api/v1/auth/roles/{name}", tag = "auth", security(("bearer" = [])),
    params(("name" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_role(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    roles::delete(&state, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List service clients.
#[utoipa::path(get, path = "/api/v1/auth/clients", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = [ServiceClient])))]
pub async fn list_clients(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<ServiceClient>>, ApiError> {
    Ok(Json(clients::list(&state, &caller).await?))
}

/// Register a service client.
#[utoipa::path(post, path = "/api/v1/auth/clients", tag = "auth", security(("bearer" = [])), request_body = CreateClient,
    responses((status = 201, body = CreatedClient), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_client(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<CreateClient>,
) -> Result<(StatusCode, Json<CreatedClient>), ApiError> {
    let created = clients::create(&state, &caller, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Delete a service client.
#[utoipa::path(delete, path = "/api/v1/auth/clients/{client_id}", tag = "auth", security(("bearer" = [])),
    params(("client_id" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_client(
    State(state): State<AppState>,
    caller: Caller,
    Path(client_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    clients::delete(&state, &caller, &client_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
