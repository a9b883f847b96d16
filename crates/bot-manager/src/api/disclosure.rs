//! A bot's automation disclosure over HTTP: read it, confirm it (`ops::disclosure`).

use axum::extract::{Path, State};
use platform::auth::Caller;
use platform::http::error::ErrorBody;
use platform::{ApiError, Json};
use serde::{Deserialize, Serialize};

use super::AppState;
use crate::ops;
use crate::ops::disclosure::Disclosure;
use crate::store::compliance::ComplianceRecord;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"automated_label": true, "bio_discloses_automation": true, "operator_account": "ada_operator"}))]
pub struct DisclosureRequest {
    /// X's automated-account label is set on the bot's account.
    pub automated_label: bool,
    /// The bot's bio says it is automated.
    pub bio_discloses_automation: bool,
    /// The human operator's X account the label links to.
    pub operator_account: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DisclosureView {
    pub bot_id: String,
    /// Whether a person confirmed the disclosure.
    pub confirmed: bool,
    pub automated_label: bool,
    pub bio_discloses_automation: bool,
    pub operator_account: Option<String>,
    /// The operator's profile on X.
    pub operator_url: Option<String>,
    pub confirmed_by: Option<String>,
    /// RFC 3339.
    pub confirmed_at: Option<String>,
}

fn view(bot_id: &str, record: Option<ComplianceRecord>) -> DisclosureView {
    match record {
        Some(r) => DisclosureView {
            bot_id: r.bot_id,
            confirmed: true,
            automated_label: r.automated_label,
            bio_discloses_automation: r.bio_discloses_automation,
            operator_url: Some(format!("https://x.com/{}", r.operator_account)),
            operator_account: Some(r.operator_account),
            confirmed_by: Some(r.confirmed_by),
            confirmed_at: Some(platform::time_fmt::rfc3339_from_millis(r.confirmed_at)),
        },
        None => DisclosureView {
            bot_id: bot_id.to_string(),
            confirmed: false,
            automated_label: false,
            bio_discloses_automation: false,
            operator_account: None,
            operator_url: None,
            confirmed_by: None,
            confirmed_at: None,
        },
    }
}

/// The bot's automation disclosure, and whether it was confirmed.
#[utoipa::path(get, path = "/api/v1/bots/{bot_id}/compliance", operation_id = "get_disclosure", tag = "bots", security(("bearer" = [])),
    params(("bot_id" = String, Path)),
    responses((status = 200, body = DisclosureView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(bot_id): Path<String>,
) -> Result<Json<DisclosureView>, ApiError> {
    let record = ops::disclosure::get(&state, &caller, &bot_id).await?;
    Ok(Json(view(&bot_id, record)))
}

/// Confirm the bot's automation disclosure (X's automated-account label, a bio that says it
/// is automated, the operator's account). Where `bot_manager.compliance.record_required`,
/// a bot's first post waits for it.
#[utoipa::path(put, path = "/api/v1/bots/{bot_id}/compliance", operation_id = "confirm_disclosure", tag = "bots", security(("bearer" = [])),
    params(("bot_id" = String, Path)), request_body = DisclosureRequest,
    responses((status = 200, body = DisclosureView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn confirm(
    State(state): State<AppState>,
    caller: Caller,
    Path(bot_id): Path<String>,
    Json(request): Json<DisclosureRequest>,
) -> Result<Json<DisclosureView>, ApiError> {
    let disclosure = Disclosure {
        automated_label: request.automated_label,
        bio_discloses_automation: request.bio_discloses_automation,
        operator_account: request.operator_account,
    };
    let record = ops::disclosure::confirm(&state, &caller, &bot_id, disclosure).await?;
    Ok(Json(view(&bot_id, Some(record))))
}
