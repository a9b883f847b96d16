//! X apps under `/api/v1/bots/apps` (admins): each app's local meter beside X's own word on
//! its project's cap, its app-only token (kept in Secure Bot Data) for reading that, and its
//! monthly budget.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use platform::auth::Caller;
use platform::config::Secret;
use platform::http::error::ErrorBody;
use platform::{ApiError, Json};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::budgets::{BudgetRequest, BudgetView};
use crate::metering::money;
use crate::ops;
use crate::ops::apps::AppSummary;
use crate::store::apps::Registered;
use crate::store::budgets::Scope;

/// X's last answer about the app's project (`GET /2/usage/tweets`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct XProjectView {
    pub project_id: String,
    /// The project's monthly cap (0: X states none).
    pub project_cap: i64,
    /// The use of the cap in the current period.
    pub project_usage: i64,
    /// The day of the month the count starts again.
    pub cap_reset_day: i64,
}

/// An app registered for reading X's usage.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RegistrationView {
    pub app: String,
    /// Where Secure Bot Data keeps the app's token (field `bearer_token`).
    pub vault_id: String,
    pub registered_by: String,
    pub registered_at: String,
    /// X's last answer; absent until X was read successfully.
    pub x_project: Option<XProjectView>,
    /// When X was last asked, RFC 3339.
    pub read_at: Option<String>,
    /// Why the last attempt gave no answer (the last good one stays above).
    pub read_error: Option<String>,
}

impl From<Registered> for RegistrationView {
    fn from(known: Registered) -> Self {
        Self {
            x_project: known.reading.map(|r| XProjectView {
                project_id: r.project_id,
                project_cap: r.cap,
                project_usage: r.used,
                cap_reset_day: r.reset_day,
            }),
            read_at: known.read_at.map(platform::time_fmt::rfc3339_from_millis),
            registered_at: platform::time_fmt::rfc3339_from_millis(known.registered_at),
            app: known.app,
            vault_id: known.vault_id,
            registered_by: known.registered_by,
            read_error: known.read_error,
        }
    }
}

/// One app: the local meter this month and in the last 24 hours, beside X's figures.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppView {
    pub app: String,
    /// Its bots that are not archived.
    pub bots: i64,
    /// Posts published through it in the last 24 hours, and the most X allows
    /// (`bot_manager.x_limits.app_posts_per_24h`; 0: not checked).
    pub posts_24h: i64,
    pub posts_24h_limit: i64,
    /// This UTC month, from the local meter.
    pub month_posts: i64,
    pub month_cost_micros: i64,
    pub month_cost: String,
    pub currency: String,
    pub budget: Option<BudgetView>,
    /// Present when the app is registered for reading X's usage.
    pub registration: Option<RegistrationView>,
}

impl From<AppSummary> for AppView {
    fn from(summary: AppSummary) -> Self {
        Self {
            app: summary.activity.app,
            bots: summary.activity.bots,
            posts_24h: summary.activity.posts_24h,
            posts_24h_limit: summary.posts_24h_limit,
            month_posts: summary.month_posts,
            month_cost: money(summary.month_cost_micros),
            month_cost_micros: summary.month_cost_micros,
            currency: summary.currency,
            budget: summary.budget.map(BudgetView::from),
            registration: summary.registered.map(RegistrationView::from),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppList {
    pub items: Vec<AppView>,
}

/// Every X app a bot names or that is registered (admins), with the local meter beside X's
/// own figures for the project.
#[utoipa::path(get, path = "/api/v1/bots/apps", operation_id = "list_x_apps", tag = "usage", security(("bearer" = [])),
    responses((status = 200, body = AppList), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<AppList>, ApiError> {
    let items = ops::apps::list(&state, &caller).await?;
    Ok(Json(AppList {
        items: items.into_iter().map(AppView::from).collect(),
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"bearer_token": "<your X app's app-only bearer token>"}))]
pub struct TokenRequest {
    /// X's app-only bearer token (OAuth 2.0 client credentials) for the app: stored in
    /// Secure Bot Data, never here, and only used to read the project's usage.
    #[schema(value_type = String)]
    pub bearer_token: Secret,
}

/// Register the app's app-only token (admins): X's usage of the project is read with it.
#[utoipa::path(put, path = "/api/v1/bots/apps/{app}/token", operation_id = "set_x_app_token", tag = "usage", security(("bearer" = [])),
    params(("app" = String, Path)), request_body = TokenRequest,
    responses((status = 200, body = RegistrationView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn set_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
    Json(request): Json<TokenRequest>,
) -> Result<Json<RegistrationView>, ApiError> {
    let known = ops::apps::set_token(&state, &caller, &app, request.bearer_token).await?;
    Ok(Json(known.into()))
}

/// Stop reading the app's usage and delete its token from Secure Bot Data (admins).
#[utoipa::path(delete, path = "/api/v1/bots/apps/{app}/token", operation_id = "delete_x_app_token", tag = "usage", security(("bearer" = [])),
    params(("app" = String, Path)),
    responses((status = 204, description = "Unregistered"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn delete_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
) -> Result<StatusCode, ApiError> {
    ops::apps::forget(&state, &caller, &app).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ask X for the app's project usage now (admins; X allows 50 reads per 15 minutes).
#[utoipa::path(post, path = "/api/v1/bots/apps/{app}/usage/refresh", operation_id = "refresh_x_app_usage", tag = "usage", security(("bearer" = [])),
    params(("app" = String, Path)),
    responses((status = 200, body = RegistrationView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn refresh(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
) -> Result<Json<RegistrationView>, ApiError> {
    let known = ops::apps::refresh(&state, &caller, &app).await?;
    Ok(Json(known.into()))
}

/// Set an X app's monthly budget (admins).
#[utoipa::path(put, path = "/api/v1/bots/apps/{app}/budget", operation_id = "set_x_app_budget", tag = "usage", security(("bearer" = [])),
    params(("app" = String, Path)), request_body = BudgetRequest,
    responses((status = 200, body = BudgetView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn put_budget(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
    Json(request): Json<BudgetRequest>,
) -> Result<Json<BudgetView>, ApiError> {
    super::budgets::set(&state, &caller, (Scope::App, &app), request).await
}

/// Remove an X app's budget (admins).
#[utoipa::path(delete, path = "/api/v1/bots/apps/{app}/budget", operation_id = "delete_x_app_budget", tag = "usage", security(("bearer" = [])),
    params(("app" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_budget(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
) -> Result<StatusCode, ApiError> {
    ops::budgets::delete(&state, &caller, (Scope::App, &app)).await?;
    Ok(StatusCode::NO_CONTENT)
}
