//! The message queue: one trait, two implementations.
//!
//! - [`nats::NatsQueue`]: NATS JetStream, for a cluster. One stream per subject root
//!   (`<namespace>.<root>.>`), work-queue retention for work and events, limits retention
//!   for the rest, dedupe by `Nats-Msg-Id`.
//! - [`embedded::EmbeddedQueue`]: durable and in-process, backed by SQLite, for the
//!   all-in-one process. A publish returns only after its message is committed to disk.
//!
//! Both give the same guarantees: publish with a dedupe id (a second publish of the same id
//! within the duplicate window is reported as a duplicate and not stored); durable
//! work-queue consumers (replicas sharing a consumer name share the work; different names
//! each see every message — except that on JetStream a stream of work, `bots` or `logs`,
//! takes one consumer per subject, as the system uses them) with explicit ack, nak with a
//! delay, terminate, an ack deadline after which a message is redelivered, and a
//! redelivery limit; and live fan-out subscriptions. Subjects are given without the
//! namespace (`bots.post.publish_requested`).

pub mod embedded;
pub mod nats;
pub mod subject;
pub mod usage;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

use crate::config::{QueueKind, QueueSettings};

/// What a publish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The message's sequence in its stream (the earlier message's, for a duplicate).
    pub sequence: u64,
    /// True when a message with the same dedupe id was already stored.
    pub duplicate: bool,
}

/// A durable work-queue consumer's settings.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Durable name; replicas using the same name share the messages.
    pub name: String,
    /// Subject filter without the namespace; `*` matches one token, `>` the rest.
    pub filter: String,
    /// Deliveries before a message is given up (never delivered again); 0 means no limit.
    pub max_deliver: u32,
    /// How long a delivery may stay unacknowledged before it is delivered again.
    pub ack_wait: Duration,
    /// Most deliveries out and not yet settled at once (JetStream's `max_ack_pending`;
    /// its default is 1000). Batch consumers that pull ahead need more.
    pub max_ack_pending: Option<u32>,
}

impl ConsumerSpec {
    pub fn new(name: impl Into<String>, filter: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            filter: filter.into(),
            max_deliver: 5,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: None,
        }
    }

    pub fn max_ack_pending(mut self, max_ack_pending: u32) -> Self {
        self.max_ack_pending = Some(max_ack_pending);
        self
    }

    pub fn max_deliver(mut self, max_deliver: u32) -> Self {
        self.max_deliver = max_deliver;
        self
    }

    pub fn ack_wait(mut self, ack_wait: Duration) -> Self {
        self.ack_wait = ack_wait;
        self
    }
}

/// A message as seen by a fan-out subscriber.
#[derive(Debug, Clone)]
pub struct Message {
    /// Subject without the namespace.
    pub subject: String,
    /// The dedupe id it was published with.
    pub id: String,
    pub payload: Bytes,
}

/// How a consumer settles a delivery.
#[async_trait]
pub trait Settle: Send + Sync {
    async fn ack(&self) -> anyhow::Result<()>;
    async fn nak(&self, delay: Duration) -> anyhow::Result<()>;
    async fn term(&self) -> anyhow::Result<()>;
}

/// A message handed to a work-queue consumer; settle it exactly once.
pub struct Delivery {
    pub message: Message,
    /// 1 on first delivery, then one more on each redelivery.
    pub attempt: u64,
    settle: Box<dyn Settle>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("message", &self.message)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

impl Delivery {
    pub fn new(message: Message, attempt: u64, settle: Box<dyn Settle>) -> Self {
        Self {
            message,
            attempt,
            settle,
        }
    }

    /// Done: never deliver it again.
    pub async fn ack(self) -> anyhow::Result<()> {
        self.settle.ack().await
    }

    /// Not now: deliver it again after `delay` (counts toward the redelivery limit).
    pub async fn nak(self, delay: Duration) -> anyhow::Result<()> {
        self.settle.nak(delay).await
    }

    /// Never: give it up without retrying (a message that can never succeed).
    pub async fn term(self) -> anyhow::Result<()> {
        self.settle.term().await
    }
}

/// A durable work-queue consumer.
#[async_trait]
pub trait WorkConsumer: Send {
    /// Waits for the next delivery.
    async fn next(&mut self) -> anyhow::Result<Delivery>;

    /// Waits for one delivery, then takes more that come within `linger`, up to `max`
    /// messages and until their payloads reach `max_bytes` (what a batch holds in memory
    /// stays bounded however large each message is): for consumers that write in batches.
    /// A delivery taken here is settled like any other.
    async fn next_batch(
        &mut self,
        max: usize,
        max_bytes: usize,
        linger: Duration,
    ) -> anyhow::Result<Vec<Delivery>> {
        let mut batch = vec![self.next().await?];
        let deadline = tokio::time::Instant::now() + linger;
        while batch.len() < max && payload_bytes(&batch) < max_bytes {
            match tokio::time::timeout_at(deadline, self.next()).await {
                Ok(Ok(delivery)) => batch.push(delivery),
                // A failed or timed-out pull ends the batch; what it had taken is kept, and
                // a message caught mid-pull is redelivered after its ack deadline.
                Ok(Err(_)) | Err(_) => break,
            }
        }
        Ok(batch)
    }
}

/// The payload bytes `batch` holds.
pub fn payload_bytes(batch: &[Delivery]) -> usize {
    batch.iter().map(|d| d.message.payload.len()).sum()
}

/// One stream's contents against its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamUsage {
    /// `VIVESPHERE_BOTS`, …; `embedded` for the embedded queue's file.
    pub stream: String,
    pub messages: u64,
    pub bytes: u64,
    pub max_messages: u64,
    pub max_bytes: u64,
}

/// Subject roots whose messages are notices (configuration changes, revocations): when their
/// stream is full the oldest may go, since a resync replaces them. Everything else is work or
/// an event: a full stream refuses new messages, which then wait where they came from (the
/// Bot Manager's outbox, a process's spill file).
pub const NOTICE_ROOTS: [&str; 2] = ["config", "auth"];

/// Subject roots of work and events (bot jobs, log events): their streams get the full
/// `queue.stream_max_bytes` / `stream_max_msgs`.
pub const WORK_ROOTS: [&str; 2] = ["bots", "logs"];

/// A notice stream's limits: small, since a notice is read at once or replaced by a resync.
const NOTICE_MAX_BYTES: u64 = 64 * 1024 * 1024;
const NOTICE_MAX_MSGS: u64 = 100_000;

pub fn is_notice_root(root: &str) -> bool {
    NOTICE_ROOTS.contains(&root)
}

/// The (bytes, messages) limits of the stream of `root`.
pub fn stream_limits(root: &str, settings: &QueueSettings) -> (u64, u64) {
    match is_notice_root(root) {
        true => (
            settings.stream_max_bytes.min(NOTICE_MAX_BYTES),
            settings.stream_max_msgs.min(NOTICE_MAX_MSGS),
        ),
        false => (settings.stream_max_bytes, settings.stream_max_msgs),
    }
}

/// What every stream together may hold: JetStream reserves each stream's byte limit on every
/// server that keeps a copy of it, and refuses a stream that would not fit the server's
/// `max_file_store` — so this must fit it (a manifest test holds the overlays to it).
pub fn store_reservation(settings: &QueueSettings) -> u64 {
    NOTICE_ROOTS
        .iter()
        .chain(WORK_ROOTS.iter())
        .map(|root| stream_limits(root, settings).0)
        .sum()
}

/// The queue every service publishes to and consumes from.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Stores `payload` on `subject` unless `dedupe_id` was published within the duplicate
    /// window. Returns once the message is durable.
    async fn publish(
        &self,
        subject: &str,
        dedupe_id: &str,
        payload: Bytes,
    ) -> anyhow::Result<Published>;

    /// Creates the durable consumer, or attaches to it if it exists.
    async fn consumer(&self, spec: ConsumerSpec) -> anyhow::Result<Box<dyn WorkConsumer>>;

    /// How many messages the durable consumer `spec` has not settled: those waiting to be
    /// handed out plus those handed out and not yet acknowledged. For the backlog gauge.
    async fn backlog(&self, spec: &ConsumerSpec) -> anyhow::Result<u64>;

    /// Live fan-out: every message published on a matching subject from now on.
    async fn subscribe(&self, filter: &str) -> anyhow::Result<BoxStream<'static, Message>>;

    /// For readiness: can the queue take messages now?
    async fn check(&self) -> Result<(), String>;

    /// How full each stream is (NATS: per subject root; the embedded queue: its file), for
    /// the gauges and alerts that fire well before a limit.
    async fn usage(&self) -> anyhow::Result<Vec<StreamUsage>>;

    /// Which implementation this is, for logs.
    fn kind(&self) -> QueueKind;
}

/// Opens the queue the settings name.
pub async fn connect(settings: &QueueSettings) -> anyhow::Result<Arc<dyn Queue>> {
    Ok(match settings.kind {
        QueueKind::Embedded => Arc::new(embedded::EmbeddedQueue::open(settings).await?),
        QueueKind::Nats => Arc::new(nats::NatsQueue::connect(settings).await?),
    })
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn notice_streams_are_small_and_the_reservation_is_every_stream_together() {
        let settings = QueueSettings::default();
        assert_eq!(
            stream_limits("bots", &settings),
            (settings.stream_max_bytes, settings.stream_max_msgs)
        );
        assert_eq!(
            stream_limits("config", &settings),
            (64 * 1024 * 1024, 100_000)
        );
        assert_eq!(
            store_reservation(&settings),
            2 * settings.stream_max_bytes + 2 * 64 * 1024 * 1024
        );
        let tiny = QueueSettings {
            stream_max_bytes: 1024,
            ..QueueSettings::default()
        };
        assert_eq!(
            stream_limits("auth", &tiny).0,
            1024,
            "never above the setting"
        );
    }
}
