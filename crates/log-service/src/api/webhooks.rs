//! Webhook subscriptions under `/api/v1/logs/webhooks`: create (the signing secret is shown
//! once), list, read, change, remove, rotate the secret, send a test ping, read the delivery
//! log and send a delivery again. Receivers verify each request as Standard Webhooks
//! describes (docs/webhooks.md).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use platform::auth::Caller;
use platform::http::error::ErrorBody;
use platform::http::page::{Listing, clamp_limit};
use platform::{ApiError, Json, Query};
use serde::{Deserialize, Serialize};

use super::{AppState, decode_cursor, encode_cursor};
use crate::ops;
use crate::ops::webhooks::{Change, NewSubscription, WithSecret};
use crate::store::webhooks::{Delivery, PAUSED, Subscription};
use crate::webhooks::catalog;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://hooks.example.com/vivesphere", "event_types": ["post.failed", "bot.needs_reauth", "budget.exceeded"], "description": "On-call channel"}))]
pub struct CreateWebhook {
    /// A public `https://` URL (plain `http://` to this machine in development only).
    pub url: String,
    /// What to be told about (see `GET /api/v1/logs/webhooks/event-types`).
    pub event_types: Vec<String>,
    pub description: Option<String>,
    /// Admins: the team whose events it gets, or none for every team's (global). Others:
    /// their own team, which is also the default.
    pub team: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": true}))]
pub struct UpdateWebhook {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
    /// Turn it on again after it was turned off (what waited is sent), or off.
    pub enabled: Option<bool>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    pub id: String,
    /// Null for a global subscription.
    pub team: Option<String>,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: String,
    pub enabled: bool,
    /// Why it is off, when it is.
    pub disabled_reason: Option<String>,
    /// Until when (RFC 3339) the previous secret still signs beside the current one.
    pub previous_secret_valid_until: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Subscription> for WebhookView {
    fn from(s: Subscription) -> Self {
        let rfc3339 = platform::time_fmt::rfc3339_from_millis;
        Self {
            previous_secret_valid_until: s.previous_valid_until.map(rfc3339),
            created_at: rfc3339(s.created_at),
            updated_at: rfc3339(s.updated_at),
            id: s.id,
            team: s.team,
            url: s.url,
            event_types: s.event_types,
            description: s.description,
            enabled: s.enabled,
            disabled_reason: s.disabled_reason,
            created_by: s.created_by,
        }
    }
}

/// A subscription and its signing secret, which is shown this once: keep it where the
/// receiver can read it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookWithSecret {
    pub webhook: WebhookView,
    /// `whsec_` and base64 of 32 bytes (Standard Webhooks).
    pub secret: String,
}

impl From<WithSecret> for WebhookWithSecret {
    fn from(w: WithSecret) -> Self {
        Self {
            webhook: w.subscription.into(),
            secret: w.secret,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookList {
    pub items: Vec<WebhookView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventType {
    #[serde(rename = "type")]
    pub name: String,
    pub description: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventTypeList {
    pub items: Vec<EventType>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    pub id: String,
    /// `webhook-id`: the same on every attempt, and for every subscription told of the event.
    pub message_id: String,
    pub event_type: String,
    /// `pending` (waiting or retrying), `delivered`, or `failed` (given up).
    pub state: String,
    pub attempts: i64,
    /// When it is tried next (pending only; none while the webhook is off).
    pub next_attempt_at: Option<String>,
    /// The receiver's HTTP status at the last attempt.
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        let rfc3339 = platform::time_fmt::rfc3339_from_millis;
        Self {
            next_attempt_at: (d.state == "pending" && d.next_attempt_at != PAUSED)
                .then(|| rfc3339(d.next_attempt_at)),
            last_attempt_at: d.last_attempt_at.map(rfc3339),
            created_at: rfc3339(d.created_at),
            finished_at: d.finished_at.map(rfc3339),
            id: d.id,
            message_id: d.message_id,
            event_type: d.event_type,
            state: d.state,
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
        }
    }
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// Only deliveries in this state: pending, delivered or failed.
    pub state: Option<String>,
    /// 1 to 500, default 50.
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The event types a webhook can subscribe to.
#[utoipa::path(get, path = "/api/v1/logs/webhooks/event-types", operation_id = "list_webhook_event_types", tag = "webhooks", security(("bearer" = [])),
    responses((status = 200, body = EventTypeList), (status = 401, body = ErrorBody)))]
pub async fn event_types(_caller: Caller) -> Json<EventTypeList> {
    Json(EventTypeList {
        items: catalog::EVENT_TYPES
            .iter()
            .map(|(name, description)| EventType {
                name: name.to_string(),
                description: description.to_string(),
            })
            .collect(),
    })
}

/// The webhooks the caller manages (admins: all; others: their team's).
#[utoipa::path(get, path = "/api/v1/logs/webhooks", operation_id = "list_webhooks", tag = "webhooks", security(("bearer" = [])),
    responses((status = 200, body = WebhookList), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<WebhookList>, ApiError> {
    let items = ops::webhooks::list(&state, &caller).await?;
    Ok(Json(WebhookList {
        items: items.into_iter().map(WebhookView::from).collect(),
    }))
}

/// Subscribe a URL to event types; the answer carries the signing secret, once.
#[utoipa::path(post, path = "/api/v1/logs/webhooks", operation_id = "create_webhook", tag = "webhooks", security(("bearer" = [])),
    request_body = CreateWebhook,
    responses((status = 201, body = WebhookWithSecret), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<CreateWebhook>,
) -> Result<(StatusCode, Json<WebhookWithSecret>), ApiError> {
    let created = ops::webhooks::create(
        &state,
        &caller,
        NewSubscription {
            url: request.url,
            event_types: request.event_types,
            description: request.description,
            team: request.team,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// One webhook.
#[utoipa::path(get, path = "/api/v1/logs/webhooks/{id}", operation_id = "get_webhook", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = WebhookView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(ops::webhooks::get(&state, &caller, &id).await?.into()))
}

/// Change a webhook's URL, event types or description, or turn it on or off.
#[utoipa::path(patch, path = "/api/v1/logs/webhooks/{id}", operation_id = "update_webhook", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = UpdateWebhook,
    responses((status = 200, body = WebhookView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(request): Json<UpdateWebhook>,
) -> Result<Json<WebhookView>, ApiError> {
    let change = Change {
        url: request.url,
        event_types: request.event_types,
        description: request.description,
        enabled: request.enabled,
    };
    Ok(Json(
        ops::webhooks::update(&state, &caller, &id, change)
            .await?
            .into(),
    ))
}

/// Remove a webhook and its delivery log.
#[utoipa::path(delete, path = "/api/v1/logs/webhooks/{id}", operation_id = "delete_webhook", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    ops::webhooks::delete(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new signing secret (shown once); the previous one keeps signing beside it for
/// `logging.webhooks.rotation_overlap_seconds` (a day by default).
#[utoipa::path(post, path = "/api/v1/logs/webhooks/{id}/rotate-secret", operation_id = "rotate_webhook_secret", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = WebhookWithSecret), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookWithSecret>, ApiError> {
    Ok(Json(
        ops::webhooks::rotate_secret(&state, &caller, &id)
            .await?
            .into(),
    ))
}

/// Send a signed `webhook.ping` now and answer with what the receiver said (never retried).
#[utoipa::path(post, path = "/api/v1/logs/webhooks/{id}/ping", operation_id = "ping_webhook", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = DeliveryView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn ping(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DeliveryView>, ApiError> {
    Ok(Json(
        ops::webhooks::ping(&state, &caller, &id).await?.into(),
    ))
}

/// The delivery log, newest first.
#[utoipa::path(get, path = "/api/v1/logs/webhooks/{id}/deliveries", operation_id = "list_webhook_deliveries", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path), DeliveryQuery),
    responses((status = 200, body = Listing<DeliveryView>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<DeliveryQuery>,
) -> Result<Json<Listing<DeliveryView>>, ApiError> {
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let limit = clamp_limit(query.limit);
    let mut items = ops::webhooks::deliveries(
        &state,
        &caller,
        &id,
        query.state.as_deref(),
        after,
        limit + 1,
    )
    .await?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|d| encode_cursor(d.created_at, &d.id))
    } else {
        None
    };
    Ok(Json(Listing {
        items: items.into_iter().map(DeliveryView::from).collect(),
        next_cursor,
    }))
}

/// Send a delivery again, with the same `webhook-id`, as soon as the sender gets to it.
#[utoipa::path(post, path = "/api/v1/logs/webhooks/{id}/deliveries/{delivery_id}/redeliver", operation_id = "redeliver_webhook", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path), ("delivery_id" = String, Path)),
    responses((status = 202, body = DeliveryView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn redeliver(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<DeliveryView>), ApiError> {
    let delivery = ops::webhooks::redeliver(&state, &caller, &id, &delivery_id).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery.into())))
}
