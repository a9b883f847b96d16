//! Upstreams: several base URLs per service, picked round robin among the healthy ones.
//! A health check reads each one's `/health/ready` on a timer; a connection failure marks
//! it down at once, and the next passing check brings it back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio_util::sync::CancellationToken;

/// One base URL of a service.
#[derive(Debug)]
pub struct Upstream {
    pub url: String,
    healthy: AtomicBool,
}

impl Upstream {
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub fn mark(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }
}

/// A service's upstreams and the round-robin cursor.
#[derive(Debug)]
pub struct Pool {
    pub service: &'static str,
    pub upstreams: Vec<Arc<Upstream>>,
    next: AtomicUsize,
}

impl Pool {
    pub fn new(service: &'static str, urls: Vec<String>) -> Self {
        Self {
            service,
            upstreams: urls
                .into_iter()
                .map(|url| {
                    Arc::new(Upstream {
                        url: url.trim_end_matches('/').to_string(),
                        // Healthy until a check or a request says otherwise: a gateway that
                        // starts before its services must not refuse everything at first.
                        healthy: AtomicBool::new(true),
                    })
                })
                .collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// The next healthy upstream in turn, if any.
    pub fn pick(&self) -> Option<Arc<Upstream>> {
        let count = self.upstreams.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..count)
            .map(|offset| &self.upstreams[(start + offset) % count])
            .find(|upstream| upstream.is_healthy())
            .cloned()
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    pub service: String,
    pub upstream: String,
}

/// Checks every upstream of every pool every `interval` until shutdown.
pub async fn check_health(
    pools: Arc<BTreeMap<&'static str, Pool>>,
    interval: Duration,
    healthy: Family<UpstreamLabels, Gauge>,
    shutdown: CancellationToken,
) {
    let http = match reqwest::Client::builder()
        .timeout(interval.min(Duration::from_secs(2)))
        .build()
    {
        Ok(http) => http,
        Err(err) => {
            tracing::error!(error = %err, "cannot build the health-check client");
            return;
        }
    };
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let checks = pools.values().flat_map(|pool| {
            pool.upstreams.iter().map(|upstream| {
                let http = http.clone();
                let healthy = healthy.clone();
                let service = pool.service;
                async move {
                    let ok = http
                        .get(format!("{}/health/ready", upstream.url))
                        .send()
                        .await
                        .is_ok_and(|response| response.status().is_success());
                    if ok != upstream.is_healthy() {
                        tracing::info!(
                            service,
                            upstream = upstream.url,
                            healthy = ok,
                            "upstream health changed"
                        );
                    }
                    upstream.mark(ok);
                    healthy
                        .get_or_create(&UpstreamLabels {
                            service: service.to_string(),
                            upstream: upstream.url.clone(),
                        })
                        .set(i64::from(ok));
                }
            })
        });
        futures::future::join_all(checks).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_skips_unhealthy_upstreams_and_returns_to_them() {
        let pool = Pool::new("logging", vec!["http://a".into(), "http://b/".into()]);
        let picks: Vec<String> = (0..4).map(|_| pool.pick().unwrap().url.clone()).collect();
        assert_eq!(picks, ["http://a", "http://b", "http://a", "http://b"]);
        pool.upstreams[1].mark(false);
        assert!((0..4).all(|_| pool.pick().unwrap().url == "http://a"));
        pool.upstreams[0].mark(false);
        assert!(pool.pick().is_none());
        pool.upstreams[1].mark(true);
        assert_eq!(pool.pick().unwrap().url, "http://b");
    }
}
