//! The HTTP API under `/api/v1/logs`: the contract's `/submit`, batches, queries, streamed
//! exports and deletes by filter; and webhook subscriptions with their delivery logs.

mod ingest;
mod read;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use platform::ApiError;
use platform::http::error::ErrorBody;
use platform::http::openapi::BearerAuth;
use utoipa::OpenApi;

use crate::service::Logs;

pub type AppState = Arc<Logs>;

pub fn router(state: AppState) -> Router {
    let p = crate::ROUTE_PREFIX;
    Router::new()
        .route(&format!("{p}/submit"), post(ingest::submit))
        .route(&format!("{p}/batch"), post(ingest::batch))
        .route(&format!("{p}/events"), get(read::list))
        .route(&format!("{p}/export"), get(read::export))
        .route(&format!("{p}/delete"), post(read::delete))
        .route(&format!("{p}/space"), get(read::space))
        .route(
            &format!("{p}/webhooks/event-types"),
            get(webhooks::event_types),
        )
        .route(
            &format!("{p}/webhooks"),
            get(webhooks::list).post(webhooks::create),
        )
        .route(
            &format!("{p}/webhooks/{{id}}"),
            get(webhooks::get)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route(
            &format!("{p}/webhooks/{{id}}/rotate-secret"),
            post(webhooks::rotate_secret),
        )
        .route(&format!("{p}/webhooks/{{id}}/ping"), post(webhooks::ping))
        .route(
            &format!("{p}/webhooks/{{id}}/deliveries"),
            get(webhooks::deliveries),
        )
        .route(
            &format!("{p}/webhooks/{{id}}/deliveries/{{delivery_id}}/redeliver"),
            post(webhooks::redeliver),
        )
        .with_state(state)
}

/// A keyset position (time, id) as an opaque page cursor.
fn encode_cursor(at: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{at}:{id}"))
}

fn decode_cursor(raw: &str) -> Result<(i64, String), ApiError> {
    let invalid =
        || ApiError::invalid_data("cursor: pass back the next_cursor of the previous page");
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (at, id) = text.split_once(':').ok_or_else(invalid)?;
    Ok((at.parse().map_err(|_| invalid())?, id.to_string()))
}

#[derive(OpenApi)]
#[openapi(
    paths(ingest::submit, ingest::batch, read::list, read::export, read::delete, read::space,
        webhooks::event_types, webhooks::list, webhooks::create, webhooks::get,
        webhooks::update, webhooks::delete, webhooks::rotate_secret, webhooks::ping,
        webhooks::deliveries, webhooks::redeliver),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth),
    tags((name = "logs", description = "Log ingestion, search, export and deletion"),
        (name = "webhooks", description = "Signed, retried notifications (Standard Webhooks) of what needs people"))
)]
pub struct LogsApi;
