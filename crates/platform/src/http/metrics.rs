//! Prometheus metrics, in a registry owned by the running app (never a global, so two apps in
//! one test process do not mix their numbers).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Where every process serves its metrics (scraped by the ServiceMonitor).
pub const METRICS_PATH: &str = "/metrics";

/// Every metric name starts with this, followed by an underscore.
pub const METRIC_PREFIX: &str = "vivesphere";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    /// The route template (`/api/v1/bots/{bot_id}`), never the raw path, to bound cardinality.
    pub route: String,
}

/// A log-event category (`user_activity`, `debug`, …), for the log pipeline's counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CategoryLabels {
    pub category: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

/// The HTTP metrics of one app.
#[derive(Clone)]
pub struct HttpMetrics {
    pub requests: Family<StatusLabels, Counter>,
    pub duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    pub in_flight: Family<RouteLabels, Gauge>,
}

/// The app's metric registry; services register their own metrics into it while they build.
#[derive(Clone)]
pub struct MetricsRegistry {
    registry: Arc<Mutex<Registry>>,
    /// What was registered, by name and type (the registry itself cannot list them).
    registered: Arc<Mutex<Vec<(String, MetricType)>>>,
    pub http: HttpMetrics,
    /// Messages each durable queue consumer has not settled (`queue_consumer_backlog`).
    pub queue_backlog: Family<ConsumerLabels, Gauge>,
}

/// A durable queue consumer, by name (`bot-manager-jobs`, `logging-writer`, …).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConsumerLabels {
    pub consumer: String,
}

impl Default for MetricsRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricsRegistry {
    pub fn new() -> Self {
        let metrics = Self {
            registry: Arc::new(Mutex::new(Registry::with_prefix(METRIC_PREFIX))),
            registered: Arc::default(),
            http: HttpMetrics {
                requests: Family::default(),
                duration: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
                in_flight: Family::default(),
            },
            queue_backlog: Family::default(),
        };
        metrics.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            metrics.http.requests.clone(),
        );
        metrics.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            metrics.http.duration.clone(),
        );
        metrics.register(
            "http_requests_in_flight",
            "HTTP requests being served now, by method and route template",
            metrics.http.in_flight.clone(),
        );
        metrics.register(
            "queue_consumer_backlog",
            "Messages a durable queue consumer has not settled: waiting plus handed out",
            metrics.queue_backlog.clone(),
        );
        metrics
    }

    /// Registers a metric of a service and hands it back, to be kept and updated.
    pub fn register<M>(&self, name: &str, help: &str, metric: M) -> M
    where
        M: prometheus_client::registry::Metric + Clone,
    {
        self.registered
            .lock()
            .expect("metrics registry lock")
            .push((name.to_string(), metric.metric_type()));
        self.registry
            .lock()
            .expect("metrics registry lock")
            .register(name, help, metric.clone());
        metric
    }

    /// The name of every sample each registered metric can expose
    /// (`vivesphere_http_requests_total`, `…_duration_seconds_bucket`, …), whether or not it
    /// has any yet: what dashboards and alert rules may query.
    pub fn sample_names(&self) -> BTreeSet<String> {
        let registered = self.registered.lock().expect("metrics registry lock");
        let mut names = BTreeSet::new();
        for (name, kind) in registered.iter() {
            let full = format!("{METRIC_PREFIX}_{name}");
            let suffixes: &[&str] = match kind {
                MetricType::Counter => &["_total"],
                MetricType::Histogram => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            names.extend(suffixes.iter().map(|suffix| format!("{full}{suffix}")));
        }
        names
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().expect("metrics registry lock");
        encode(&mut out, &registry).expect("writing metrics to a String cannot fail");
        out
    }
}

/// `GET /metrics`.
pub async fn metrics_handler(State(registry): State<MetricsRegistry>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        registry.encode(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_names_follow_each_metric_type_and_match_the_exposition() {
        let metrics = MetricsRegistry::new();
        let dispatched = Counter::<u64>::default();
        metrics.register("things_done", "things", dispatched.clone());
        dispatched.inc();
        metrics
            .http
            .duration
            .get_or_create(&RouteLabels {
                method: "GET".into(),
                route: "/x".into(),
            })
            .observe(0.01);
        let names = metrics.sample_names();
        for name in [
            "vivesphere_things_done_total",
            "vivesphere_http_requests_total",
            "vivesphere_http_request_duration_seconds_bucket",
            "vivesphere_http_request_duration_seconds_count",
            "vivesphere_queue_consumer_backlog",
        ] {
            assert!(names.contains(name), "{name} in {names:?}");
        }
        // The same names as the exposition writes, for the metrics that have samples.
        let text = metrics.encode();
        assert!(text.contains("vivesphere_things_done_total 1"), "{text}");
        assert!(
            text.contains("vivesphere_http_request_duration_seconds_bucket{"),
            "{text}"
        );
    }
}
