//! API gateway: the single entry in front of every service (`/api/v1/*`), with routing, the
//! JWT check at the edge, rate limiting and the request log.
//!
//! So far: the per-address rate limit, which in the all-in-one process wraps every service's
//! routes (they are merged into the process's router directly). Proxying and edge JWT checks
//! arrive with the API gateway issue.

mod rate_limit;

use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use platform::config::{SettingKind, SettingSpec};
use platform::target::{BuiltTarget, Target, TargetContext, TargetInfo};
use serde::{Deserialize, Serialize};

pub use rate_limit::EdgeRateLimit;

pub const NAME: &str = "gateway";
pub const CONFIG_SECTION: &str = "gateway";

/// The `gateway` config section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub rate_limit: RateLimitSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Requests per minute per client address; 0 turns the limit off.
    pub per_minute: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self { per_minute: 100 }
    }
}

fn declared_settings() -> Vec<SettingSpec> {
    vec![SettingSpec::live(
        "gateway.rate_limit.per_minute",
        SettingKind::Integer {
            min: 0,
            max: 1_000_000,
        },
        "requests per minute per client address at the edge (0: off)",
    )]
}

/// The gateway target.
pub struct GatewayService;

#[async_trait]
impl Target for GatewayService {
    /// The gateway keeps no data of its own.
    fn info(&self) -> TargetInfo {
        TargetInfo::new::<Settings>(NAME, CONFIG_SECTION)
            .without_database()
            .with_settings(declared_settings)
    }

    async fn build(&self, ctx: TargetContext) -> anyhow::Result<BuiltTarget> {
        let settings = ctx.live.section::<Settings>(CONFIG_SECTION, |_| Ok(()))?;
        let edge = EdgeRateLimit::new(settings);
        Ok(BuiltTarget {
            router: Router::new(),
            openapi: None,
            checks: Vec::new(),
            verifier: None,
            edge: Some(Arc::new(move |router: Router| {
                router.layer(axum::middleware::from_fn_with_state(
                    edge.clone(),
                    rate_limit::limit,
                ))
            })),
        })
    }
}
