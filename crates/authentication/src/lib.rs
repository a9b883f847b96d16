//! Authentication service: users, password hashes, roles and permissions, refresh tokens,
//! signing keys (JWKS) and service clients, under `/api/v1/auth`.
//!
//! Foundation stage: the service has its own storage, readiness, OpenAPI document and config
//! section; its domain arrives with the Authentication issue.

use async_trait::async_trait;
use axum::Router;
use platform::http::openapi::service_document;
use platform::target::{BuiltTarget, Target, TargetContext, TargetInfo};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "authentication";
pub const CONFIG_SECTION: &str = "authentication";
pub const ROUTE_PREFIX: &str = "/api/v1/auth";

/// The `authentication` config section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {}

/// The Authentication target.
pub struct AuthenticationService;

#[async_trait]
impl Target for AuthenticationService {
    fn info(&self) -> TargetInfo {
        TargetInfo::new::<Settings>(NAME, CONFIG_SECTION).with_routes(ROUTE_PREFIX)
    }

    async fn build(&self, ctx: TargetContext) -> anyhow::Result<BuiltTarget> {
        let _settings: Settings = ctx.config.section(CONFIG_SECTION)?;
        Ok(BuiltTarget {
            router: Router::new(),
            openapi: Some(service_document("Authentication", ROUTE_PREFIX)),
            checks: Vec::new(),
        })
    }
}
