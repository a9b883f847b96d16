//! The service's own Prometheus metrics: whether it is sealed, and its operations by result
//! (so an alert can fire on a sealed vault or a burst of refused reveals).

use platform::http::metrics::MetricsRegistry;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: String,
    pub result: String,
}

#[derive(Clone, Default)]
pub struct BotDataMetrics {
    operations: Family<OperationLabels, Counter>,
    pub sealed: Gauge,
}

impl BotDataMetrics {
    pub fn register(registry: &MetricsRegistry) -> Self {
        Self {
            operations: registry.register(
                "botdata_operations",
                "Secure Bot Data operations (reveal, write, delete, …) by result (ok, denied)",
                Family::default(),
            ),
            sealed: registry.register(
                "botdata_sealed",
                "1 while Secure Bot Data is sealed (no usable key-encryption key, or sealed by an admin)",
                Gauge::default(),
            ),
        }
    }

    pub fn count(&self, operation: &str, result: &str) {
        self.operations
            .get_or_create(&OperationLabels {
                operation: operation.to_string(),
                result: result.to_string(),
            })
            .inc();
    }
}
