//! Upstreams: several base URLs per service, picked round robin among the healthy ones.
//! A health check reads each one's `/health/ready` on a timer: two failed checks in a row
//! take it out (one slow answer under load does not), a connection failure by a request
//! takes it out at once, and the next passing check brings it back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
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
    /// Failed health checks in a row.
    failed_checks: AtomicU32,
}

/// Failed checks in a row that take an upstream out.
const UNHEALTHY_AFTER: u32 = 2;

/// How long one health check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

impl Upstream {
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub fn mark(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }

    /// Records one health check's result; returns whether the upstream is in.
    fn checked(&self, passed: bool) -> bool {
        if passed {
            self.failed_checks.store(0, Ordering::Relaxed);
            self.mark(true);
        } else if self.failed_checks.fetch_add(1, Ordering::Relaxed) + 1 >= UNHEALTHY_AFTER {
            self.mark(false);
        }
        self.is_healthy()
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
                        failed_checks: AtomicU32::new(0),
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
    let http = match reqwest::Client::builder().timeout(CHECK_TIMEOUT).build() {
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
                    let passed = http
                        .get(format!(
                            "{}{}",
                            upstream.url,
                            platform::http::health::READY_PATH
                        ))
                        .send()
                        .await
                        .is_ok_and(|response| response.status().is_success());
                    let was = upstream.is_healthy();
                    let ok = upstream.checked(passed);
                    if ok != was {
                        tracing::info!(
                            service,
                            upstream = upstream.url,
                            healthy = ok,
                            "upstream health changed"
                        );
                    }
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

    #[test]
    fn one_failed_check_is_forgiven_two_are_not() {
        let pool = Pool::new("logging", vec!["http://a".into()]);
        let upstream = &pool.upstreams[0];
        assert!(upstream.checked(false), "one slow answer under load");
        assert!(upstream.checked(true));
        assert!(upstream.checked(false));
        assert!(!upstream.checked(false));
        assert!(upstream.checked(true), "back at the first passing check");
    }
}
