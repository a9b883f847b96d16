//! Secure Bot Data Storage: encrypted bot secrets, key versions and access audit, under
//! `/api/v1/botdata`.
//!
//! Foundation stage: the service has its own storage, readiness, OpenAPI document and config
//! section; its domain arrives with the Secure Bot Data issue.

use async_trait::async_trait;
use axum::Router;
use platform::http::openapi::service_document;
use platform::target::{BuiltTarget, Target, TargetContext, TargetInfo};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "secure-bot-data";
pub const CONFIG_SECTION: &str = "secure_bot_data";
pub const ROUTE_PREFIX: &str = "/api/v1/botdata";

/// The `secure_bot_data` config section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {}

/// The Secure Bot Data target.
pub struct SecureBotDataService;

#[async_trait]
impl Target for SecureBotDataService {
    fn info(&self) -> TargetInfo {
        TargetInfo::new::<Settings>(NAME, CONFIG_SECTION).with_routes(ROUTE_PREFIX)
    }

    async fn build(&self, ctx: TargetContext) -> anyhow::Result<BuiltTarget> {
        let _settings: Settings = ctx.config.section(CONFIG_SECTION)?;
        Ok(BuiltTarget {
            router: Router::new(),
            openapi: Some(service_document("Secure Bot Data", ROUTE_PREFIX)),
            checks: Vec::new(),
            verifier: None,
        })
    }
}
