//! The HTTP API under `/api/v1/botdata`: the Phase-1 contract routes (`/store`,
//! `/retrieve`), the RESTful routes over bots and fields, and the vault's system routes.
//! Every answer under the prefix carries `Cache-Control: no-store` (secrets must not sit in
//! any cache): the gateway's route table marks the prefix, and the platform adds the header
//! to whatever answers there.

mod bots;
mod contract;
mod sys;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use platform::ApiError;
use platform::http::error::ErrorBody;
use platform::http::openapi::BearerAuth;
use utoipa::OpenApi;

use crate::model::{BotId, FieldName};
use crate::service::BotData;

pub type AppState = Arc<BotData>;

pub use platform::http::page::{Listing, Page};

/// Parses the `{bot_id}` and `{field}` path segments.
fn parse_path(bot_id: &str, field: &str) -> Result<(BotId, FieldName), ApiError> {
    Ok((BotId::parse(bot_id)?, FieldName::parse(field)?))
}

pub fn router(state: AppState) -> Router {
    let p = crate::ROUTE_PREFIX;
    Router::new()
        .route(&format!("{p}/store"), post(contract::store))
        .route(&format!("{p}/retrieve"), get(contract::retrieve))
        .route(&format!("{p}/bots"), get(bots::list_bots))
        .route(&format!("{p}/bots/{{bot_id}}"), get(bots::bot_metadata))
        .route(
            &format!("{p}/bots/{{bot_id}}/fields/{{field}}"),
            get(bots::read_masked)
                .put(bots::write_field)
                .delete(bots::delete_versions),
        )
        .route(
            &format!("{p}/bots/{{bot_id}}/fields/{{field}}/reveal"),
            post(bots::reveal),
        )
        .route(
            &format!("{p}/bots/{{bot_id}}/fields/{{field}}/undelete"),
            post(bots::undelete_versions),
        )
        .route(
            &format!("{p}/bots/{{bot_id}}/fields/{{field}}/destroy"),
            post(bots::destroy_versions),
        )
        .route(&format!("{p}/audit"), get(sys::audit))
        .route(&format!("{p}/sys/status"), get(sys::status))
        .route(&format!("{p}/sys/seal"), post(sys::seal))
        .route(&format!("{p}/sys/unseal"), post(sys::unseal))
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    paths(
        contract::store, contract::retrieve,
        bots::list_bots, bots::bot_metadata, bots::read_masked, bots::write_field, bots::reveal,
        bots::delete_versions, bots::undelete_versions, bots::destroy_versions,
        sys::audit, sys::status, sys::seal, sys::unseal,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth),
    tags((name = "botdata", description = "Encrypted bot secrets: versions, reveals, audit, sealing"))
)]
pub struct BotDataApi;
