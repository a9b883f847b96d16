//! API gateway: the single entry in front of every service (`/api/v1/*`), with routing, the
//! JWT check at the edge, rate limiting and the request log.
//!
//! Foundation stage: the target exists with its config section, health and metrics; in the
//! all-in-one process the services' routers are merged into the process's router directly.
//! Proxying, edge JWT checks and rate limits arrive with the API gateway issue.

use async_trait::async_trait;
use axum::Router;
use platform::target::{BuiltTarget, Target, TargetContext, TargetInfo};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "gateway";
pub const CONFIG_SECTION: &str = "gateway";

/// The `gateway` config section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {}

/// The gateway target.
pub struct GatewayService;

#[async_trait]
impl Target for GatewayService {
    /// The gateway keeps no data of its own.
    fn info(&self) -> TargetInfo {
        TargetInfo::new::<Settings>(NAME, CONFIG_SECTION).without_database()
    }

    async fn build(&self, ctx: TargetContext) -> anyhow::Result<BuiltTarget> {
        let _settings: Settings = ctx.config.section(CONFIG_SECTION)?;
        Ok(BuiltTarget {
            router: Router::new(),
            openapi: None,
            checks: Vec::new(),
            verifier: None,
        })
    }
}
