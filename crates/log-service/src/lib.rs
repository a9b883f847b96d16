//! Logging service: log events by category, retention, search and export, under
//! `/api/v1/logs`. (Named log-service so it cannot be confused with the `log` crate.)
//!
//! Foundation stage: the service has its own storage, readiness, OpenAPI document and config
//! section; its domain arrives with the Logging issue.

use async_trait::async_trait;
use axum::Router;
use platform::http::openapi::service_document;
use platform::target::{BuiltTarget, Target, TargetContext, TargetInfo};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "logging";
pub const CONFIG_SECTION: &str = "logging";
pub const ROUTE_PREFIX: &str = "/api/v1/logs";

/// The `logging` config section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {}

/// The Logging target.
pub struct LoggingService;

#[async_trait]
impl Target for LoggingService {
    fn info(&self) -> TargetInfo {
        TargetInfo::new::<Settings>(NAME, CONFIG_SECTION).with_routes(ROUTE_PREFIX)
    }

    async fn build(&self, ctx: TargetContext) -> anyhow::Result<BuiltTarget> {
        let _settings: Settings = ctx.config.section(CONFIG_SECTION)?;
        Ok(BuiltTarget {
            router: Router::new(),
            openapi: Some(service_document("Logging", ROUTE_PREFIX)),
            checks: Vec::new(),
            verifier: None,
        })
    }
}
