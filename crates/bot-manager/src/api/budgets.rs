//! Monthly budgets per team under `/api/v1/bots/budgets` (per X app under
//! `/api/v1/bots/apps/{app}/budget`): admins set and remove them, a team reads its own
//! (admins all), with what was spent this month.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use platform::auth::Caller;
use platform::http::error::ErrorBody;
use platform::{ApiError, Json};
use serde::{Deserialize, Serialize};

use super::AppState;
use crate::metering::money;
use crate::ops;
use crate::ops::budgets::{BudgetChange, BudgetState};
use crate::store::budgets::Scope;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"monthly_micros": 50_000_000, "soft_threshold_percent": 80, "hard_stop": true}))]
pub struct BudgetRequest {
    /// Per UTC month, in millionths of the pricing currency (`bot_manager.pricing.currency`).
    pub monthly_micros: i64,
    /// People are told (`usage.threshold`) when this share is spent; 1–100, default 80.
    pub soft_threshold_percent: Option<i64>,
    /// Sends that would overrun the budget wait until it is raised or the month ends;
    /// default false (tell, do not stop).
    pub hard_stop: Option<bool>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BudgetView {
    /// The team's, for a team budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The X app's, for an app budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    pub monthly_micros: i64,
    /// The same as a decimal string.
    pub monthly: String,
    pub currency: String,
    pub soft_threshold_percent: i64,
    pub hard_stop: bool,
    /// The current UTC month, `YYYY-MM`.
    pub month: String,
    pub spent_micros: i64,
    pub spent: String,
    /// `ok`, `soft` (past the soft threshold) or `exceeded`.
    pub standing: String,
    pub updated_by: String,
    /// RFC 3339.
    pub updated_at: String,
}

impl From<BudgetState> for BudgetView {
    fn from(state: BudgetState) -> Self {
        let standing = state.standing().to_string();
        let budget = state.budget;
        Self {
            monthly: money(budget.monthly_micros),
            monthly_micros: budget.monthly_micros,
            currency: budget.currency,
            soft_threshold_percent: budget.soft_percent,
            hard_stop: budget.hard_stop,
            month: state.month,
            spent: money(state.spent_micros),
            spent_micros: state.spent_micros,
            standing,
            updated_by: budget.updated_by,
            updated_at: platform::time_fmt::rfc3339_from_millis(budget.updated_at),
            team: (budget.scope == Scope::Team).then(|| budget.name.clone()),
            app: (budget.scope == Scope::App).then_some(budget.name),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BudgetList {
    pub items: Vec<BudgetView>,
}

/// The budgets the caller may read (admins: every team's and app's; others: their team's),
/// with this month's spend.
#[utoipa::path(get, path = "/api/v1/bots/budgets", operation_id = "list_budgets", tag = "usage", security(("bearer" = [])),
    responses((status = 200, body = BudgetList), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<BudgetList>, ApiError> {
    let items = ops::budgets::list(&state, &caller).await?;
    Ok(Json(BudgetList {
        items: items.into_iter().map(BudgetView::from).collect(),
    }))
}

/// Set a team's monthly budget (admins).
#[utoipa::path(put, path = "/api/v1/bots/budgets/{team}", operation_id = "set_budget", tag = "usage", security(("bearer" = [])),
    params(("team" = String, Path)), request_body = BudgetRequest,
    responses((status = 200, body = BudgetView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path(team): Path<String>,
    Json(request): Json<BudgetRequest>,
) -> Result<Json<BudgetView>, ApiError> {
    set(&state, &caller, (Scope::Team, &team), request).await
}

/// Sets a team's or an app's budget as asked.
pub async fn set(
    state: &AppState,
    caller: &Caller,
    whose: (Scope, &str),
    request: BudgetRequest,
) -> Result<Json<BudgetView>, ApiError> {
    let change = BudgetChange {
        monthly_micros: request.monthly_micros,
        soft_percent: request.soft_threshold_percent,
        hard_stop: request.hard_stop,
    };
    let set = ops::budgets::put(state, caller, whose, change).await?;
    Ok(Json(set.into()))
}

/// Remove a team's budget (admins).
#[utoipa::path(delete, path = "/api/v1/bots/budgets/{team}", operation_id = "delete_budget", tag = "usage", security(("bearer" = [])),
    params(("team" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(team): Path<String>,
) -> Result<StatusCode, ApiError> {
    ops::budgets::delete(&state, &caller, (Scope::Team, &team)).await?;
    Ok(StatusCode::NO_CONTENT)
}
