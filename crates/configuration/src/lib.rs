//! Configuration/Settings service: settings per scope and profile, releases and audit, under
//! `/api/v1/config`.
//!
//! Foundation stage: the service has its own storage, readiness, OpenAPI document and config
//! section; its domain arrives with the Configuration issue.

use async_trait::async_trait;
use axum::Router;
use platform::http::openapi::service_document;
use platform::target::{BuiltTarget, Target, TargetContext, TargetInfo};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "configuration";
pub const CONFIG_SECTION: &str = "configuration";
pub const ROUTE_PREFIX: &str = "/api/v1/config";

/// The `configuration` config section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {}

/// The Configuration target.
pub struct ConfigurationService;

#[async_trait]
impl Target for ConfigurationService {
    fn info(&self) -> TargetInfo {
        TargetInfo::new::<Settings>(NAME, CONFIG_SECTION).with_routes(ROUTE_PREFIX)
    }

    async fn build(&self, ctx: TargetContext) -> anyhow::Result<BuiltTarget> {
        let _settings: Settings = ctx.config.section(CONFIG_SECTION)?;
        Ok(BuiltTarget {
            router: Router::new(),
            openapi: Some(service_document("Configuration", ROUTE_PREFIX)),
            checks: Vec::new(),
            verifier: None,
        })
    }
}
