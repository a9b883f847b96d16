//! API gateway: the single entry in front of every service (`/api/v1/*`), with routing, the
//! JWT check at the edge, rate limiting and the request log.
//!
//! So far: the per-address rate limit, which in the all-in-one process wraps every service's
//! routes (they are merged into the process's router directly). Proxying and edge JWT checks
//! arrive with the API gateway issue.

pub mod kong;
mod proxy;
mod rate_limit;
pub mod routes;
mod upstream;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use platform::config::{SettingKind, SettingSpec};
use platform::target::{BuiltTarget, Target, TargetContext, TargetInfo};
use serde::{Deserialize, Serialize};

pub use rate_limit::EdgeRateLimit;

pub const NAME: &str = "gateway";
pub const CONFIG_SECTION: &str = "gateway";

/// The `gateway` config section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub rate_limit: RateLimitSettings,
    /// Base URLs per service (`bot_manager: [http://10.0.0.5:8000, ...]`, keys with `_` for
    /// `-`); a service not named here is reached at `http://<service>:8000`.
    pub upstreams: BTreeMap<String, Vec<String>>,
    /// Milliseconds an upstream may take to answer before the gateway answers 504; below
    /// `server.request_timeout`, so the caller hears which one it was.
    pub upstream_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// Milliseconds between health checks of every upstream.
    pub health_interval_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            rate_limit: RateLimitSettings::default(),
            upstreams: BTreeMap::new(),
            upstream_timeout_ms: 25_000,
            connect_timeout_ms: 2_000,
            health_interval_ms: 2_000,
        }
    }
}

/// The settings key of a service's upstream list.
fn upstream_key(service: &str) -> String {
    service.replace('-', "_")
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

/// Every route of the table, proxied to its service's upstreams.
fn proxy_router(ctx: &TargetContext, settings: &Settings) -> anyhow::Result<Router> {
    if let Some(unknown) = settings.upstreams.keys().find(|key| {
        !routes::ROUTES
            .iter()
            .any(|r| upstream_key(r.service) == **key)
    }) {
        anyhow::bail!("gateway.upstreams.{unknown}: no route goes to such a service");
    }
    let pools: BTreeMap<&'static str, upstream::Pool> = routes::ROUTES
        .iter()
        .map(|route| {
            let urls = settings
                .upstreams
                .get(&upstream_key(route.service))
                .filter(|urls| !urls.is_empty())
                .cloned()
                .unwrap_or_else(|| vec![ctx.peers.url(route.service)]);
            (route.service, upstream::Pool::new(route.service, urls))
        })
        .collect();
    let pools = Arc::new(pools);
    let healthy = ctx.metrics.register(
        "gateway_upstream_healthy",
        "1 while an upstream passes its health check",
        prometheus_client::metrics::family::Family::default(),
    );
    ctx.tasks.spawn(upstream::check_health(
        pools.clone(),
        Duration::from_millis(settings.health_interval_ms.max(50)),
        healthy,
        ctx.shutdown.clone(),
    ));
    platform::install_crypto_provider();
    let proxy = Arc::new(proxy::Proxy {
        pools,
        http: proxy::upstream_client(Duration::from_millis(settings.connect_timeout_ms.max(1))),
        timeout: Duration::from_millis(settings.upstream_timeout_ms.max(1)),
        metrics: proxy::ProxyMetrics::register(&ctx.metrics),
    });
    let mut router = Router::new();
    for route in routes::ROUTES {
        router = router
            .route(route.prefix, axum::routing::any(proxy::handle))
            .route(
                &format!("{}/{{*rest}}", route.prefix),
                axum::routing::any(proxy::handle),
            );
    }
    Ok(router.with_state(proxy))
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
        let live = ctx.live.section::<Settings>(CONFIG_SECTION, |_| Ok(()))?;
        let settings = live.get();
        let edge = EdgeRateLimit::new(live, ctx.clock.clone());
        // In one process the services' routes are merged in directly: nothing to proxy.
        let router = if routes::ROUTES
            .iter()
            .all(|route| ctx.peers.runs_here(route.service))
        {
            Router::new()
        } else {
            proxy_router(&ctx, &settings)?
        };
        Ok(
            BuiltTarget::routes(router).with_edge(Arc::new(move |router: Router| {
                router.layer(axum::middleware::from_fn_with_state(
                    edge.clone(),
                    rate_limit::limit,
                ))
            })),
        )
    }
}
