//! The event shipper: user_activity survives a queue outage through the spill file (and
//! waits when the spill file is full); debug events are dropped and counted instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use platform::config::{QueueKind, QueueSettings, TelemetrySettings};
use platform::http::metrics::MetricsRegistry;
use platform::queue::embedded::EmbeddedQueue;
use platform::queue::{ConsumerSpec, Message, Published, Queue, WorkConsumer};
use platform::shipping::EventShipper;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A real embedded queue whose publishes fail while `down` is set, or hang (as with an
/// unreachable NATS server) while `hang` is set; `publishes` counts the attempts.
struct FlakyQueue {
    inner: EmbeddedQueue,
    down: AtomicBool,
    hang: AtomicBool,
    publishes: AtomicUsize,
}

#[async_trait]
impl Queue for FlakyQueue {
    async fn publish(&self, subject: &str, id: &str, payload: Bytes) -> anyhow::Result<Published> {
        self.publishes.fetch_add(1, Ordering::SeqCst);
        if self.hang.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if self.down.load(Ordering::SeqCst) {
            anyhow::bail!("queue unreachable");
        }
        self.inner.publish(subject, id, payload).await
    }
    async fn consumer(&self, spec: ConsumerSpec) -> anyhow::Result<Box<dyn WorkConsumer>> {
        self.inner.consumer(spec).await
    }
    async fn backlog(&self, spec: &ConsumerSpec) -> anyhow::Result<u64> {
        self.inner.backlog(spec).await
    }
    async fn subscribe(&self, filter: &str) -> anyhow::Result<BoxStream<'static, Message>> {
        self.inner.subscribe(filter).await
    }
    async fn check(&self) -> Result<(), String> {
        self.inner.check().await
    }
    async fn usage(&self) -> anyhow::Result<Vec<platform::queue::StreamUsage>> {
        self.inner.usage().await
    }
    fn kind(&self) -> QueueKind {
        QueueKind::Embedded
    }
}

struct Setup {
    queue: Arc<FlakyQueue>,
    shipper: EventShipper,
    metrics: MetricsRegistry,
    spill_file: std::path::PathBuf,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

async fn setup(spill_max_bytes: u64, debug_buffer: usize) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let inner = EmbeddedQueue::open(&QueueSettings {
        path: dir.path().join("queue.db").display().to_string(),
        ..QueueSettings::default()
    })
    .await
    .unwrap();
    let queue = Arc::new(FlakyQueue {
        inner,
        down: AtomicBool::new(false),
        hang: AtomicBool::new(false),
        publishes: AtomicUsize::new(0),
    });
    let telemetry = TelemetrySettings {
        spill_dir: dir.path().join("spill").display().to_string(),
        spill_max_bytes,
        debug_buffer,
        ..TelemetrySettings::default()
    };
    let metrics = MetricsRegistry::new();
    let shipper = EventShipper::new(
        queue.clone(),
        &telemetry,
        &metrics,
        platform::Clock::system(),
    );
    let shutdown = CancellationToken::new();
    shipper.spawn(&TaskTracker::new(), shutdown.clone());
    Setup {
        queue,
        shipper,
        metrics,
        spill_file: dir.path().join("spill/events.ndjson"),
        shutdown,
        _dir: dir,
    }
}

async fn received(queue: &FlakyQueue, n: usize) -> Vec<String> {
    let mut consumer = queue
        .consumer(ConsumerSpec::new("test", "logs.>"))
        .await
        .unwrap();
    let mut ids = Vec::new();
    while ids.len() < n {
        let delivery = tokio::time::timeout(Duration::from_secs(15), consumer.next())
            .await
            .expect("the spilled events arrive")
            .unwrap();
        ids.push(delivery.message.id.clone());
        delivery.ack().await.unwrap();
    }
    ids
}

#[tokio::test]
async fn user_activity_waits_on_disk_while_the_queue_is_down_and_is_replayed() {
    let s = setup(1024 * 1024, 10).await;
    s.queue.down.store(true, Ordering::SeqCst);
    for i in 0..3 {
        s.shipper
            .ship_durable(
                "logs.user_activity.test",
                &format!("event-{i}"),
                Bytes::from("{}"),
            )
            .await
            .unwrap();
    }
    let spilled = std::fs::read_to_string(&s.spill_file).unwrap();
    assert_eq!(spilled.lines().count(), 3, "{spilled}");
    assert!(
        s.metrics
            .encode()
            .contains("vivesphere_log_events_spilled_total 3")
    );

    s.queue.down.store(false, Ordering::SeqCst);
    let mut ids = received(&s.queue, 3).await;
    ids.sort();
    assert_eq!(ids, vec!["event-0", "event-1", "event-2"]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while s.shipper.spilled_bytes().await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the spill file was not emptied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.shutdown.cancel();
}

#[tokio::test]
async fn a_full_spill_file_makes_recording_wait_instead_of_dropping() {
    // Room for about one event.
    let s = setup(120, 10).await;
    s.queue.down.store(true, Ordering::SeqCst);
    s.shipper
        .ship_durable("logs.user_activity.test", "first", Bytes::from("{}"))
        .await
        .unwrap();
    let shipper = s.shipper.clone();
    let second = tokio::spawn(async move {
        shipper
            .ship_durable("logs.user_activity.test", "second", Bytes::from("{}"))
            .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !second.is_finished(),
        "a full spill file must hold the caller back"
    );
    s.queue.down.store(false, Ordering::SeqCst);
    tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("the caller goes on once the queue is back")
        .unwrap()
        .unwrap();
    let mut ids = received(&s.queue, 2).await;
    ids.sort();
    assert_eq!(ids, vec!["first", "second"]);
    s.shutdown.cancel();
}

#[tokio::test]
async fn debug_events_are_dropped_and_counted_when_they_cannot_go() {
    let s = setup(1024, 2).await;
    s.queue.down.store(true, Ordering::SeqCst);
    for i in 0..20 {
        s.shipper.ship_droppable(
            "debug",
            "logs.debug.test",
            &format!("debug-{i}"),
            Bytes::from("{}"),
        );
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = s.metrics.encode();
        if text.contains(r#"vivesphere_log_events_dropped_total{category="debug"} 20"#) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!s.spill_file.exists(), "debug events never go to disk");
    s.shutdown.cancel();
}

#[tokio::test]
async fn an_outbox_batch_is_one_message_holding_every_event() {
    let s = setup(1024, 10).await;
    let activity = platform::activity::ActivityLog::new(s.shipper.clone(), "secure-bot-data");
    let envelopes: Vec<serde_json::Value> = (0..3)
        .map(|i| {
            activity.envelope(
                &format!("e-{i}"),
                &platform::activity::Activity::new("botdata.reveal").actor("u-1"),
            )
        })
        .collect();
    activity.publish_batch(&envelopes).await.unwrap();
    let mut consumer = s
        .queue
        .consumer(ConsumerSpec::new("batch", "logs.>"))
        .await
        .unwrap();
    let delivery = tokio::time::timeout(Duration::from_secs(5), consumer.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        delivery.message.subject,
        "logs.user_activity.secure_bot_data"
    );
    assert_eq!(delivery.message.id, "batch:e-0:e-2:3");
    let events: Vec<serde_json::Value> = serde_json::from_slice(&delivery.message.payload).unwrap();
    let ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["e-0", "e-1", "e-2"]);
    delivery.ack().await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), consumer.next())
            .await
            .is_err(),
        "one message, not one per event"
    );
    s.shutdown.cancel();
}

/// Once a publish has timed out the queue is known down: the next writes go to disk at once
/// instead of each waiting out the publish timeout, and the replayer brings them all once
/// the queue answers again.
#[tokio::test]
async fn once_the_queue_is_known_down_writes_spill_without_waiting() {
    let s = setup(1024 * 1024, 10).await;
    s.queue.hang.store(true, Ordering::SeqCst);
    let before = s.queue.publishes.load(Ordering::SeqCst);
    for i in 0..5 {
        s.shipper
            .ship_durable(
                "logs.user_activity.test",
                &format!("late-{i}"),
                Bytes::from("{}"),
            )
            .await
            .unwrap();
    }
    let spilled = std::fs::read_to_string(&s.spill_file).unwrap();
    assert_eq!(spilled.lines().count(), 5, "{spilled}");
    // The first write found out (and the replayer may have probed since); the others did not
    // ask the queue at all.
    let asked = s.queue.publishes.load(Ordering::SeqCst) - before;
    assert!(asked <= 2, "{asked} publishes were attempted for 5 writes");

    s.queue.hang.store(false, Ordering::SeqCst);
    let mut ids = received(&s.queue, 5).await;
    ids.sort();
    assert_eq!(ids, ["late-0", "late-1", "late-2", "late-3", "late-4"]);
    // Back up: a write is published again, not spilled.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while s.shipper.spilled_bytes().await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "never replayed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let spilled_before = s.metrics.encode();
    s.shipper
        .ship_durable("logs.user_activity.test", "after", Bytes::from("{}"))
        .await
        .unwrap();
    assert_eq!(received(&s.queue, 1).await.len(), 1);
    assert_eq!(
        spilled_before
            .lines()
            .find(|l| l.starts_with("vivesphere_log_events_spilled_total")),
        s.metrics
            .encode()
            .lines()
            .find(|l| l.starts_with("vivesphere_log_events_spilled_total"))
    );
    s.shutdown.cancel();
}
