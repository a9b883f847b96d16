//! Shipping log events to the Logging service through the queue, as Vector's buffers do.
//!
//! - user_activity is never dropped: [`EventShipper::ship_durable`] publishes (bounded by a
//!   timeout) and, if the queue does not take the event, appends it to a spill file on disk
//!   (fsync'd) before returning. A replayer publishes the spill file once the queue is back
//!   (the dedupe id makes a replay harmless). When the spill file is full, `ship_durable`
//!   waits: back-pressure instead of loss. Once a publish has failed the queue is known to be
//!   down: events go to the spill file at once, without waiting out the timeout again, until
//!   the replayer (the background probe) gets one through.
//! - debug events may be dropped: [`EventShipper::ship_droppable`] puts them in a bounded
//!   in-memory buffer that a background task publishes; when the buffer is full or the queue
//!   is down they are dropped and counted in `vivesphere_log_events_dropped_total`.
//!
//! One shipper per process, shared by its targets; the spill file is `<spill_dir>/events.ndjson`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Mutex, Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::TelemetrySettings;
use crate::http::metrics::{CategoryLabels, MetricsRegistry};
use crate::queue::Queue;

/// One event waiting to be published, as it is written to the spill file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    subject: String,
    id: String,
    payload: String,
}

impl Pending {
    fn new(subject: &str, id: &str, payload: &[u8]) -> Self {
        Self {
            subject: subject.to_string(),
            id: id.to_string(),
            payload: String::from_utf8_lossy(payload).into_owned(),
        }
    }
}

#[derive(Clone, Default)]
struct Metrics {
    dropped: Family<CategoryLabels, Counter>,
    spilled: Counter,
    spill_bytes: Gauge,
}

struct Inner {
    queue: Arc<dyn Queue>,
    clock: crate::clock::Clock,
    spill_path: PathBuf,
    spill_max_bytes: u64,
    /// The spill file's size; its lock serialises the writes and the replayer's rewrite.
    spill: Mutex<u64>,
    spilled: Notify,
    debug: mpsc::Sender<Pending>,
    debug_receiver: std::sync::Mutex<Option<mpsc::Receiver<Pending>>>,
    publish_timeout: Duration,
    /// Set when a publish fails, cleared when one succeeds: while set, writes do not wait
    /// for the queue.
    queue_down: std::sync::atomic::AtomicBool,
    metrics: Metrics,
}

/// The process's log-event shipper. Cheap to clone.
#[derive(Clone)]
pub struct EventShipper {
    inner: Arc<Inner>,
}

impl EventShipper {
    /// A shipper over `queue`; call [`EventShipper::spawn`] to run its background work.
    pub fn new(
        queue: Arc<dyn Queue>,
        settings: &TelemetrySettings,
        registry: &MetricsRegistry,
        clock: crate::clock::Clock,
    ) -> Self {
        let (debug, debug_receiver) = mpsc::channel(settings.debug_buffer.max(1));
        let metrics = Metrics {
            dropped: registry.register(
                "log_events_dropped",
                "Droppable log events (debug) dropped because the buffer was full or the queue down",
                Family::default(),
            ),
            spilled: registry.register(
                "log_events_spilled",
                "user_activity events written to the spill file because the queue did not take them",
                Counter::default(),
            ),
            spill_bytes: registry.register(
                "log_spill_bytes",
                "Bytes of user_activity events waiting in the spill file",
                Gauge::default(),
            ),
        };
        let spill_path = PathBuf::from(&settings.spill_dir).join("events.ndjson");
        let existing = std::fs::metadata(&spill_path).map_or(0, |m| m.len());
        metrics.spill_bytes.set(existing as i64);
        Self {
            inner: Arc::new(Inner {
                queue,
                clock,
                spill_path,
                spill_max_bytes: settings.spill_max_bytes,
                spill: Mutex::new(existing),
                spilled: Notify::new(),
                debug,
                debug_receiver: std::sync::Mutex::new(Some(debug_receiver)),
                publish_timeout: Duration::from_secs(2),
                queue_down: std::sync::atomic::AtomicBool::new(false),
                metrics,
            }),
        }
    }

    /// Starts the replayer of the spill file and the publisher of droppable events.
    pub fn spawn(&self, tasks: &TaskTracker, shutdown: CancellationToken) {
        let inner = self.inner.clone();
        let stop = shutdown.clone();
        tasks.spawn(async move { replay_loop(inner, stop).await });
        if let Some(receiver) = self.inner.debug_receiver.lock().expect("lock").take() {
            let inner = self.inner.clone();
            tasks.spawn(async move { publish_droppable(inner, receiver, shutdown).await });
        }
    }

    /// The app's clock, which stamps every event's time.
    pub fn clock(&self) -> &crate::clock::Clock {
        &self.inner.clock
    }

    /// The queue itself, for callers with their own delivery guarantees (an outbox relay).
    pub fn queue(&self) -> &Arc<dyn Queue> {
        &self.inner.queue
    }

    /// Publishes an event that must not be lost; returns once it is on the queue or on disk.
    pub async fn ship_durable(
        &self,
        subject: &str,
        id: &str,
        payload: Bytes,
    ) -> anyhow::Result<()> {
        if !self.inner.is_queue_down() && self.inner.try_publish(subject, id, payload.clone()).await
        {
            return Ok(());
        }
        let pending = Pending::new(subject, id, &payload);
        let mut line = serde_json::to_vec(&pending)?;
        line.push(b'\n');
        loop {
            let mut size = self.inner.spill.lock().await;
            if *size + line.len() as u64 <= self.inner.spill_max_bytes {
                append(&self.inner.spill_path, &line).await?;
                *size += line.len() as u64;
                self.inner.metrics.spill_bytes.set(*size as i64);
                self.inner.metrics.spilled.inc();
                self.inner.spilled.notify_one();
                return Ok(());
            }
            drop(size);
            // Full: wait for the replayer to make room. This is the back-pressure.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Queues an event that may be dropped (debug); never waits.
    pub fn ship_droppable(&self, category: &str, subject: &str, id: &str, payload: Bytes) {
        if self
            .inner
            .debug
            .try_send(Pending::new(subject, id, &payload))
            .is_err()
        {
            self.inner.count_dropped(category);
        }
    }

    /// Bytes waiting in the spill file.
    pub async fn spilled_bytes(&self) -> u64 {
        *self.inner.spill.lock().await
    }
}

impl Inner {
    fn is_queue_down(&self) -> bool {
        self.queue_down.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// One publish, bounded by the publish timeout: whether the queue took it (which is
    /// also what is known of the queue from then on).
    async fn try_publish(&self, subject: &str, id: &str, payload: Bytes) -> bool {
        let took = matches!(
            tokio::time::timeout(
                self.publish_timeout,
                self.queue.publish(subject, id, payload)
            )
            .await,
            Ok(Ok(_))
        );
        let was_down = self
            .queue_down
            .swap(!took, std::sync::atomic::Ordering::Relaxed);
        // A change of what is known: down → up, or up → down.
        if was_down == took {
            match took {
                true => tracing::info!("the queue takes events again"),
                false => tracing::warn!("the queue does not take events; they wait on disk"),
            }
        }
        took
    }

    async fn try_publish_pending(&self, pending: Pending) -> bool {
        self.try_publish(&pending.subject, &pending.id, Bytes::from(pending.payload))
            .await
    }

    fn count_dropped(&self, category: &str) {
        self.metrics
            .dropped
            .get_or_create(&CategoryLabels {
                category: category.to_string(),
            })
            .inc();
    }
}

async fn append(path: &PathBuf, line: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await?;
    file.write_all(line).await?;
    file.sync_data().await?;
    Ok(())
}

async fn replay_loop(inner: Arc<Inner>, shutdown: CancellationToken) {
    loop {
        if let Err(err) = replay_once(&inner).await {
            tracing::warn!(error = %format!("{err:#}"), "spilled log events wait for the queue");
        }
        tokio::select! {
            _ = inner.spilled.notified() => tokio::time::sleep(Duration::from_millis(500)).await,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Publishes the spill file in order; keeps what could not be published. The file is not
/// locked while the queue is asked (a probe of a queue that is down can take the whole
/// publish timeout), so writers keep appending meanwhile; only this task removes lines,
/// and only from the front.
async fn replay_once(inner: &Inner) -> anyhow::Result<()> {
    let text = {
        let size = inner.spill.lock().await;
        if *size == 0 {
            return Ok(());
        }
        tokio::fs::read_to_string(&inner.spill_path).await?
    };
    let lines: Vec<&str> = non_empty_lines(&text);
    let mut sent = 0;
    for line in &lines {
        let Ok(pending) = serde_json::from_str::<Pending>(line) else {
            tracing::error!("unreadable line in the log spill file skipped");
            sent += 1;
            continue;
        };
        if !inner.try_publish_pending(pending).await {
            break;
        }
        sent += 1;
    }
    if sent > 0 {
        drop_replayed(inner, sent).await?;
        tracing::info!(
            replayed = sent,
            left = lines.len() - sent,
            "replayed spilled log events"
        );
    }
    if sent < lines.len() {
        anyhow::bail!("the queue took {sent} of {} spilled events", lines.len());
    }
    Ok(())
}

fn non_empty_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// Removes the first `sent` lines, keeping whatever was appended since they were read;
/// through a temporary file, so a crash leaves one whole file.
async fn drop_replayed(inner: &Inner, sent: usize) -> anyhow::Result<()> {
    let mut size = inner.spill.lock().await;
    let text = tokio::fs::read_to_string(&inner.spill_path).await?;
    let lines = non_empty_lines(&text);
    let rest: String = lines[sent.min(lines.len())..]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    let temporary = inner.spill_path.with_extension("ndjson.tmp");
    tokio::fs::write(&temporary, &rest).await?;
    tokio::fs::rename(&temporary, &inner.spill_path).await?;
    *size = rest.len() as u64;
    inner.metrics.spill_bytes.set(*size as i64);
    Ok(())
}

async fn publish_droppable(
    inner: Arc<Inner>,
    mut receiver: mpsc::Receiver<Pending>,
    shutdown: CancellationToken,
) {
    loop {
        let pending = tokio::select! {
            pending = receiver.recv() => match pending {
                Some(pending) => pending,
                None => return,
            },
            _ = shutdown.cancelled() => return,
        };
        let category = pending
            .subject
            .split('.')
            .nth(1)
            .unwrap_or("debug")
            .to_string();
        // While the queue is known down a debug event is dropped at once rather than held
        // for the publish timeout (the replayer finds out when it is back).
        if inner.is_queue_down() || !inner.try_publish_pending(pending).await {
            inner.count_dropped(&category);
        }
    }
}
