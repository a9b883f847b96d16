//! Bot Manager service: bots, posts and their lifecycle, schedules, action jobs, the X API
//! client and metric snapshots, under `/api/v1/bots`.
//!
//! Foundation stage: the service has its own storage, readiness, OpenAPI document and config
//! section; its domain arrives with the Bot Manager issue.

use async_trait::async_trait;
use axum::Router;
use platform::http::openapi::service_document;
use platform::target::{BuiltTarget, Target, TargetContext, TargetInfo};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "bot-manager";
pub const CONFIG_SECTION: &str = "bot_manager";
pub const ROUTE_PREFIX: &str = "/api/v1/bots";

/// The `bot_manager` config section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {}

/// The Bot Manager target.
pub struct BotManagerService;

#[async_trait]
impl Target for BotManagerService {
    fn info(&self) -> TargetInfo {
        TargetInfo::new::<Settings>(NAME, CONFIG_SECTION).with_routes(ROUTE_PREFIX)
    }

    async fn build(&self, ctx: TargetContext) -> anyhow::Result<BuiltTarget> {
        let _settings: Settings = ctx.config.section(CONFIG_SECTION)?;
        Ok(BuiltTarget {
            router: Router::new(),
            openapi: Some(service_document("Bot Manager", ROUTE_PREFIX)),
            checks: Vec::new(),
            verifier: None,
        })
    }
}
