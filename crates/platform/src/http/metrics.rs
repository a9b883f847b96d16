//! Prometheus metrics, in a registry owned by the running app (never a global, so two apps in
//! one test process do not mix their numbers).

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
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
        let mut registry = Registry::with_prefix(METRIC_PREFIX);
        let http = HttpMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            in_flight: Family::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            http.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            http.duration.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being served now, by method and route template",
            http.in_flight.clone(),
        );
        let queue_backlog = Family::<ConsumerLabels, Gauge>::default();
        registry.register(
            "queue_consumer_backlog",
            "Messages a durable queue consumer has not settled: waiting plus handed out",
            queue_backlog.clone(),
        );
        Self {
            registry: Arc::new(Mutex::new(registry)),
            http,
            queue_backlog,
        }
    }

    /// Registers a metric of a service.
    pub fn register(
        &self,
        name: &str,
        help: &str,
        metric: impl prometheus_client::registry::Metric,
    ) {
        self.registry
            .lock()
            .expect("metrics registry lock")
            .register(name, help, metric);
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
