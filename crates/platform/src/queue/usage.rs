//! How full the queue's streams are, as gauges (`vivesphere_queue_stream_messages`,
//! `…_bytes`, `…_max_messages`, `…_max_bytes`, by stream), read every
//! [`crate::target::BACKLOG_INTERVAL`]: the alert `VivesphereQueueStreamFilling` fires at
//! 80 % of a limit, well before a full stream refuses work.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio_util::sync::CancellationToken;

use super::Queue;
use crate::http::metrics::MetricsRegistry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StreamLabels {
    pub stream: String,
}

/// The four gauges, registered once per process.
#[derive(Clone)]
pub struct UsageGauges {
    messages: Family<StreamLabels, Gauge>,
    bytes: Family<StreamLabels, Gauge>,
    max_messages: Family<StreamLabels, Gauge>,
    max_bytes: Family<StreamLabels, Gauge>,
}

impl UsageGauges {
    pub fn register(metrics: &MetricsRegistry) -> Self {
        Self {
            messages: metrics.register(
                "queue_stream_messages",
                "Messages a queue stream holds (the embedded queue: its whole file)",
                Family::default(),
            ),
            bytes: metrics.register(
                "queue_stream_bytes",
                "Bytes a queue stream holds (the embedded queue: its file's size)",
                Family::default(),
            ),
            max_messages: metrics.register(
                "queue_stream_max_messages",
                "The stream's message limit (queue.stream_max_msgs)",
                Family::default(),
            ),
            max_bytes: metrics.register(
                "queue_stream_max_bytes",
                "The stream's byte limit (queue.stream_max_bytes)",
                Family::default(),
            ),
        }
    }

    /// Reads the queue's usage into the gauges until shutdown; a failed read keeps the last
    /// values.
    pub async fn follow(self, queue: Arc<dyn Queue>, shutdown: CancellationToken) {
        let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        loop {
            match queue.usage().await {
                Ok(streams) => {
                    for stream in streams {
                        let labels = StreamLabels {
                            stream: stream.stream,
                        };
                        self.messages
                            .get_or_create(&labels)
                            .set(clamp(stream.messages));
                        self.bytes.get_or_create(&labels).set(clamp(stream.bytes));
                        self.max_messages
                            .get_or_create(&labels)
                            .set(clamp(stream.max_messages));
                        self.max_bytes
                            .get_or_create(&labels)
                            .set(clamp(stream.max_bytes));
                    }
                }
                Err(err) => {
                    tracing::debug!(error = %format!("{err:#}"), "cannot read the queue's usage");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(crate::target::BACKLOG_INTERVAL) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }
}
