//! The HTTP API under `/api/v1/logs`: the contract's `/submit`, batches, queries, streamed
//! exports and deletes by filter.

mod ingest;
mod read;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
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
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    paths(ingest::submit, ingest::batch, read::list, read::export, read::delete),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth),
    tags((name = "logs", description = "Log ingestion, search, export and deletion"))
)]
pub struct LogsApi;
