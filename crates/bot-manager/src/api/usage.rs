//! `GET /api/v1/bots/usage`: what the caller's bots used of X and what it cost, over a window,
//! by bot, team, X app, day or kind; as JSON or CSV.

use axum::extract::State;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use platform::auth::Caller;
use platform::http::error::ErrorBody;
use platform::{ApiError, Json, Query};
use serde::{Deserialize, Serialize};

use super::AppState;
use crate::metering::money;
use crate::ops;
use crate::ops::usage::{UsageQuery, UsageReport};
use crate::store::usage::{Group, UsageSum};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UsageParams {
    /// RFC 3339, inclusive; default the start of the current UTC month.
    pub from: Option<String>,
    /// RFC 3339, exclusive; default now.
    pub to: Option<String>,
    /// `bot` (default), `team`, `app` (X app), `day` (UTC) or `kind`.
    pub group: Option<String>,
    /// One bot only.
    pub bot_id: Option<String>,
    /// One team only.
    pub team: Option<String>,
    /// One X app only.
    pub app: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// One line of a breakdown: a key (bot id, team, X app, day `YYYY-MM-DD` or kind) and a kind of use.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageLine {
    pub key: String,
    /// `post`, `post_with_url`, `delete`, `read` or `media_upload`.
    pub kind: String,
    pub currency: String,
    pub units: i64,
    /// Exact, in millionths of the currency.
    pub cost_micros: i64,
    /// The same as a decimal string (`"0.445000"`).
    pub cost: String,
}

/// The sum of a window in one currency.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageTotal {
    pub currency: String,
    pub units: i64,
    pub cost_micros: i64,
    pub cost: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageView {
    /// The window, RFC 3339: from (inclusive) to (exclusive).
    pub from: String,
    pub to: String,
    pub group: String,
    pub items: Vec<UsageLine>,
    /// One per currency the window's uses were priced in.
    pub totals: Vec<UsageTotal>,
}

fn key_of(group: Group, sum: &UsageSum) -> String {
    match group {
        // The Unix day number, as a date.
        Group::Day => sum
            .key
            .parse::<i64>()
            .ok()
            .map(|day| platform::time_fmt::rfc3339_from_millis(day * 86_400_000))
            .and_then(|t| t.get(..10).map(str::to_string))
            .unwrap_or_else(|| sum.key.clone()),
        _ => sum.key.clone(),
    }
}

impl From<UsageReport> for UsageView {
    fn from(report: UsageReport) -> Self {
        let mut totals: Vec<UsageTotal> = Vec::new();
        for sum in &report.items {
            match totals.iter_mut().find(|t| t.currency == sum.currency) {
                Some(total) => {
                    total.units += sum.units;
                    total.cost_micros += sum.cost_micros;
                }
                None => totals.push(UsageTotal {
                    currency: sum.currency.clone(),
                    units: sum.units,
                    cost_micros: sum.cost_micros,
                    cost: String::new(),
                }),
            }
        }
        for total in &mut totals {
            total.cost = money(total.cost_micros);
        }
        let group = report.group;
        Self {
            from: platform::time_fmt::rfc3339_from_millis(report.from),
            to: platform::time_fmt::rfc3339_from_millis(report.to),
            group: format!("{group:?}").to_lowercase(),
            items: report
                .items
                .iter()
                .map(|sum| UsageLine {
                    key: key_of(group, sum),
                    kind: sum.kind.clone(),
                    currency: sum.currency.clone(),
                    units: sum.units,
                    cost_micros: sum.cost_micros,
                    cost: money(sum.cost_micros),
                })
                .collect(),
            totals,
        }
    }
}

fn csv(view: &UsageView) -> String {
    let mut text = String::from("key,kind,currency,units,cost\n");
    for line in &view.items {
        let units = line.units.to_string();
        text.push_str(&platform::http::csv::line([
            line.key.as_str(),
            &line.kind,
            &line.currency,
            &units,
            &line.cost,
        ]));
    }
    text
}

/// What the caller's bots used of X and what it cost (X's pay-per-use prices from the live
/// price table in `bot_manager.pricing`), over a window, broken down by bot, team, X app, day
/// or kind.
#[utoipa::path(get, path = "/api/v1/bots/usage", operation_id = "usage_and_cost", tag = "usage", security(("bearer" = [])),
    params(UsageParams),
    responses((status = 200, body = UsageView, description = "JSON, or CSV (text/csv) with format=csv"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn usage(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<UsageParams>,
) -> Result<Response, ApiError> {
    let as_csv = match params.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ApiError::invalid_data("format: json or csv")),
    };
    let query = UsageQuery {
        from: params.from.as_deref(),
        to: params.to.as_deref(),
        group: params.group.as_deref(),
        bot_id: params.bot_id.as_deref(),
        team: params.team.as_deref(),
        app: params.app.as_deref(),
    };
    let view = UsageView::from(ops::usage::report(&state, &caller, query).await?);
    if !as_csv {
        return Ok(Json(view).into_response());
    }
    Ok((
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8"),
            (CONTENT_DISPOSITION, "attachment; filename=\"usage.csv\""),
        ],
        csv(&view),
    )
        .into_response())
}
