//! `POST /api/v1/bots/batch`: one action on many bots — pause, resume, retry the failed posts,
//! cancel the scheduled ones — with an outcome per bot and one activity record for the batch.

use axum::extract::State;
use platform::auth::Caller;
use platform::http::error::ErrorBody;
use platform::{ApiError, Json};
use serde::{Deserialize, Serialize};

use super::AppState;
use crate::ops;
use crate::ops::batch::{BatchAction, BotOutcome};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"action": "pause", "bot_ids": ["0190c5c0-7a1e-7b3c-9d2a-4f5e6a7b8c9d"]}))]
pub struct BatchRequest {
    /// `pause`, `resume`, `retry_failed` (send each failed post again) or `cancel_scheduled`.
    pub action: String,
    /// 1 to 5,000 bots, worked on in this order.
    pub bot_ids: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchOutcomeView {
    pub bot_id: String,
    pub ok: bool,
    /// Changes made: the bot's status (1), or its posts retried or cancelled.
    pub changed: usize,
    /// Posts left because they moved on meanwhile (started publishing, say).
    pub skipped: usize,
    /// Why the bot was refused (as the API answers that bot's own request).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchView {
    /// The id the batch's activity record (`bots.batch`) has as its subject.
    pub batch_id: String,
    pub action: String,
    pub succeeded: usize,
    pub refused: usize,
    pub items: Vec<BatchOutcomeView>,
}

impl From<BotOutcome> for BatchOutcomeView {
    fn from(outcome: BotOutcome) -> Self {
        match outcome.result {
            Ok(done) => Self {
                bot_id: outcome.bot_id,
                ok: true,
                changed: done.changed,
                skipped: done.skipped,
                error_code: None,
                message: None,
            },
            Err(err) => Self {
                bot_id: outcome.bot_id,
                ok: false,
                changed: 0,
                skipped: 0,
                error_code: Some(err.code.as_str().to_string()),
                message: Some(err.message),
            },
        }
    }
}

/// Do one action on many bots, each as its own request would (same permission, scope and
/// checks); one activity record names the person and every outcome.
#[utoipa::path(post, path = "/api/v1/bots/batch", operation_id = "bots_batch", tag = "bots", security(("bearer" = [])),
    request_body = BatchRequest,
    responses((status = 200, body = BatchView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn batch(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<BatchRequest>,
) -> Result<Json<BatchView>, ApiError> {
    let action = BatchAction::parse(&request.action)?;
    let (batch_id, outcomes) = ops::batch::run(&state, &caller, action, request.bot_ids).await?;
    let items: Vec<BatchOutcomeView> = outcomes.into_iter().map(BatchOutcomeView::from).collect();
    let succeeded = items.iter().filter(|item| item.ok).count();
    Ok(Json(BatchView {
        batch_id,
        action: action.as_str().to_string(),
        succeeded,
        refused: items.len() - succeeded,
        items,
    }))
}
