//! The queue on NATS JetStream, for a cluster.
//!
//! Subjects are prefixed with the namespace (`vivesphere.bots.post.publish_requested`); each
//! subject root gets a stream (`VIVESPHERE_BOTS` capturing `vivesphere.bots.>`) with file
//! storage, the duplicate window, `queue.stream_replicas` copies and the size limits
//! (`stream_max_bytes`, `stream_max_msgs`; a full stream of work or events refuses new
//! messages, one of notices drops its oldest) from config, created on first use and brought
//! to the configured replicas and limits if it was made with others.
//!
//! Retention: the streams of work ([`super::WORK_ROOTS`]: bot jobs, log events) hold work,
//! not history — work-queue retention, so a message is gone once its consumer acknowledged
//! it, and one no consumer has taken yet waits for one (a fresh installation loses nothing
//! published before its consumers exist). Such a stream takes one durable consumer per
//! subject, which is how the system uses them. Other streams keep limits retention (every
//! consumer name sees every message, until the age or size limit). JetStream cannot change
//! a stream's retention, so a work stream made by an earlier version with limits retention
//! is made again the first time a process finds every consumer on it settled (until then it
//! stays, bounded by its limits); a consumer whose stream was made again finds it by itself.
//!
//! Work-queue consumers are durable pull consumers with explicit acks; settlements use
//! JetStream's double ack, so `ack()` returns only once the server has recorded it.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, AckKind, consumer, message::PublishMessage, stream};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::Mutex;

use super::subject::{root, validate_filter, validate_publish};
use super::{ConsumerSpec, Delivery, Message, Published, Queue, Settle, StreamUsage, WorkConsumer};
use crate::config::{QueueKind, QueueSettings};

const MSG_ID_HEADER: &str = "Nats-Msg-Id";

/// The JetStream-backed queue.
pub struct NatsQueue {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    namespace: String,
    max_age: Duration,
    duplicate_window: Duration,
    replicas: usize,
    settings: QueueSettings,
    known_streams: Mutex<HashSet<String>>,
}

impl NatsQueue {
    /// Connects to `queue.url`. The first connection is retried in the background, so a
    /// service starts (not ready) while NATS is still coming up.
    pub async fn connect(settings: &QueueSettings) -> anyhow::Result<Self> {
        anyhow::ensure!(
            settings.namespace.split('.').count() == 1 && !settings.namespace.is_empty(),
            "queue.namespace must be one subject token"
        );
        anyhow::ensure!(
            (1..=5).contains(&settings.stream_replicas),
            "queue.stream_replicas must be 1 to 5 (JetStream's limit), not {}",
            settings.stream_replicas
        );
        let servers: Vec<&str> = settings
            .url
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .collect();
        let client = async_nats::ConnectOptions::new()
            .name("vivesphere")
            .retry_on_initial_connect()
            .connect(servers)
            .await
            .with_context(|| {
                format!(
                    "cannot connect to NATS at {}",
                    crate::config::redact_url_credentials(&settings.url)
                )
            })?;
        Ok(Self {
            jetstream: jetstream::new(client.clone()),
            client,
            namespace: settings.namespace.clone(),
            max_age: Duration::from_secs(settings.max_age),
            duplicate_window: Duration::from_secs(settings.duplicate_window),
            replicas: settings.stream_replicas,
            settings: settings.clone(),
            known_streams: Mutex::new(HashSet::new()),
        })
    }

    fn full_subject(&self, subject: &str) -> String {
        format!("{}.{subject}", self.namespace)
    }

    fn stream_name(&self, root: &str) -> String {
        format!("{}_{}", self.namespace, root)
            .to_ascii_uppercase()
            .replace('-', "_")
    }

    /// The stream of `root` as this version makes it.
    fn stream_config(&self, root: &str) -> stream::Config {
        stream::Config {
            name: self.stream_name(root),
            subjects: vec![format!("{}.{root}.>", self.namespace)],
            retention: retention_policy(root),
            storage: stream::StorageType::File,
            max_age: self.max_age,
            duplicate_window: self.duplicate_window,
            ..self.limits(root, Default::default())
        }
    }

    /// `config` with this installation's replicas, size limits and discard policy.
    fn limits(&self, root: &str, config: stream::Config) -> stream::Config {
        let (max_bytes, max_messages) = super::stream_limits(root, &self.settings);
        stream::Config {
            num_replicas: self.replicas,
            max_bytes: i64::try_from(max_bytes).unwrap_or(i64::MAX),
            max_messages: i64::try_from(max_messages).unwrap_or(i64::MAX),
            discard: discard_policy(root),
            ..config
        }
    }

    async fn ensure_stream(&self, root: &str) -> anyhow::Result<stream::Stream> {
        let name = self.stream_name(root);
        let mut stream = self
            .jetstream
            .get_or_create_stream(self.stream_config(root))
            .await
            .with_context(|| format!("cannot create JetStream stream {name}"))?;
        if stream.cached_info().config.retention != retention_policy(root) {
            stream = self.renew_when_settled(stream, root).await?;
        }
        let current = stream.cached_info().config.clone();
        let wanted = self.limits(root, current.clone());
        let shape = |c: &stream::Config| (c.num_replicas, c.max_bytes, c.max_messages, c.discard);
        if shape(&current) != shape(&wanted) {
            // JetStream changes an existing stream's replica count and limits in place (as
            // when a one-server installation grows to three); its messages stay.
            tracing::info!(stream = %name, replicas = self.replicas, max_bytes = wanted.max_bytes, max_messages = wanted.max_messages, "changing the stream's replicas and limits");
            self.jetstream
                .update_stream(wanted)
                .await
                .with_context(|| format!("cannot change JetStream stream {name}"))?;
            stream = self.jetstream.get_stream(&name).await?;
        }
        self.known_streams.lock().await.insert(name);
        Ok(stream)
    }

    /// A stream made with another retention (a work stream from before work-queue
    /// retention) is made again when every consumer on it has settled everything, so no
    /// work is lost; otherwise it is kept as it is, bounded by its limits, until a later
    /// start finds it settled. What was settled (history, dead letters) goes with it.
    async fn renew_when_settled(
        &self,
        mut stream: stream::Stream,
        root: &str,
    ) -> anyhow::Result<stream::Stream> {
        let name = self.stream_name(root);
        let mut consumers = Vec::new();
        let mut listed = stream.consumers();
        while let Some(consumer) = listed.next().await {
            let consumer =
                consumer.with_context(|| format!("cannot list the consumers of {name}"))?;
            if consumer.num_pending > 0 || consumer.num_ack_pending > 0 {
                tracing::warn!(stream = %name, consumer = %consumer.name, "the stream keeps its earlier retention until its consumers have settled their work");
                return Ok(stream);
            }
            consumers.push(consumer.config);
        }
        if consumers.is_empty() && stream.cached_info().state.messages > 0 {
            // Nobody has taken these yet; the consumer made later would have read them all.
            tracing::warn!(stream = %name, "the stream keeps its earlier retention until a consumer has taken its messages");
            return Ok(stream);
        }
        // Read again right before the delete: another process may have made it anew.
        if stream.info().await?.config.retention == retention_policy(root) {
            return Ok(stream);
        }
        tracing::info!(stream = %name, retention = ?retention_policy(root), "making the stream again with the retention of this version; its consumers have settled everything");
        self.jetstream
            .delete_stream(&name)
            .await
            .with_context(|| format!("cannot delete JetStream stream {name}"))?;
        let stream = self
            .jetstream
            .get_or_create_stream(self.stream_config(root))
            .await
            .with_context(|| format!("cannot create JetStream stream {name}"))?;
        // The same consumers, by the same names: the processes pulling from them go on
        // without noticing (a pull waiting at the moment of the move is asked again).
        for config in consumers {
            stream
                .create_consumer(config)
                .await
                .with_context(|| format!("cannot make a consumer of {name} again"))?;
        }
        Ok(stream)
    }

    /// Deletes every stream of this namespace (for tests and `reset` tooling).
    pub async fn delete_namespace_streams(&self) -> anyhow::Result<()> {
        let prefix = format!("{}_", self.namespace.to_ascii_uppercase());
        let names: Vec<String> = self
            .jetstream
            .stream_names()
            .filter_map(|name| async move { name.ok() })
            .filter(|name| std::future::ready(name.starts_with(&prefix)))
            .collect()
            .await;
        for name in names {
            self.jetstream.delete_stream(&name).await?;
        }
        Ok(())
    }
}

/// Work and events go once acknowledged (see the module's comment); the rest is kept to
/// its limits.
fn retention_policy(root: &str) -> stream::RetentionPolicy {
    match super::WORK_ROOTS.contains(&root) {
        true => stream::RetentionPolicy::WorkQueue,
        false => stream::RetentionPolicy::Limits,
    }
}

/// A full stream of notices drops its oldest; one of work or events refuses the new message.
fn discard_policy(root: &str) -> stream::DiscardPolicy {
    match super::is_notice_root(root) {
        true => stream::DiscardPolicy::Old,
        false => stream::DiscardPolicy::New,
    }
}

struct NatsSettle(jetstream::message::Acker);

#[async_trait]
impl Settle for NatsSettle {
    async fn ack(&self) -> anyhow::Result<()> {
        self.0
            .double_ack_with(AckKind::Ack)
            .await
            .map_err(|err| anyhow::anyhow!("ack failed: {err}"))
    }

    async fn nak(&self, delay: Duration) -> anyhow::Result<()> {
        self.0
            .double_ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(|err| anyhow::anyhow!("nak failed: {err}"))
    }

    async fn term(&self) -> anyhow::Result<()> {
        self.0
            .double_ack_with(AckKind::Term)
            .await
            .map_err(|err| anyhow::anyhow!("term failed: {err}"))
    }
}

struct NatsConsumer {
    consumer: consumer::Consumer<consumer::pull::Config>,
    namespace_prefix: String,
    /// What it takes to find the consumer again after its stream was made again.
    jetstream: jetstream::Context,
    stream: stream::Config,
    config: consumer::pull::Config,
}

/// How long one pull request waits on the server before it is renewed.
const PULL_EXPIRES: Duration = Duration::from_secs(5);

impl NatsConsumer {
    /// After a failed pull: the stream (and with it this consumer) may have been made again
    /// by another process, so the consumer is looked up, or made, afresh. A failure here
    /// (NATS away) is left to the next pull.
    async fn find_again(&mut self) {
        let found = async {
            let stream = self
                .jetstream
                .get_or_create_stream(self.stream.clone())
                .await?;
            let name = self.config.durable_name.clone().unwrap_or_default();
            anyhow::Ok(
                stream
                    .get_or_create_consumer(&name, self.config.clone())
                    .await?,
            )
        };
        match found.await {
            Ok(consumer) => self.consumer = consumer,
            Err(err) => tracing::debug!(error = %err, "JetStream consumer not found again yet"),
        }
    }

    fn delivery(&self, message: jetstream::Message) -> Delivery {
        let attempt = message
            .info()
            .map(|info| info.delivered.max(1) as u64)
            .unwrap_or(1);
        let (message, acker) = message.split();
        Delivery::new(
            Message {
                subject: strip_namespace(&message.subject, &self.namespace_prefix),
                id: message_id(message.headers.as_ref()),
                payload: message.payload,
            },
            attempt,
            Box::new(NatsSettle(acker)),
        )
    }
}

fn strip_namespace(subject: &str, prefix: &str) -> String {
    subject.strip_prefix(prefix).unwrap_or(subject).to_string()
}

fn message_id(headers: Option<&async_nats::HeaderMap>) -> String {
    headers
        .and_then(|headers| headers.get(MSG_ID_HEADER))
        .map(|value| value.as_str().to_string())
        .unwrap_or_default()
}

#[async_trait]
impl WorkConsumer for NatsConsumer {
    /// Pulls exactly one message per call: a replica never holds messages it has not asked
    /// for, so replicas sharing a consumer share the work, and a message's ack deadline only
    /// starts when a worker takes it.
    async fn next(&mut self) -> anyhow::Result<Delivery> {
        loop {
            let pulled = self
                .consumer
                .batch()
                .max_messages(1)
                .expires(PULL_EXPIRES)
                .messages()
                .await;
            let mut batch = match pulled {
                Ok(batch) => batch,
                Err(err) => {
                    self.find_again().await;
                    anyhow::bail!("JetStream pull failed: {err}");
                }
            };
            match batch.next().await {
                Some(Ok(message)) => return Ok(self.delivery(message)),
                Some(Err(err)) => {
                    tracing::warn!(error = %err, "JetStream pull error; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    self.find_again().await;
                }
                None => {
                    // The pull expired empty: ask again — of the consumer found afresh if
                    // it is gone (a deleted consumer answers no pull at all).
                    if self.consumer.info().await.is_err() {
                        self.find_again().await;
                    }
                }
            }
        }
    }

    /// The first message by a waiting pull, then what is ready, fetched without waiting
    /// (a request that returns at once), until `max` or `linger` is up. No pull request is
    /// left open on the server when this returns: a message handed to an abandoned request
    /// would sit until its pull expired.
    async fn next_batch(
        &mut self,
        max: usize,
        max_bytes: usize,
        linger: Duration,
    ) -> anyhow::Result<Vec<Delivery>> {
        let first = self.next().await?;
        let mut out = vec![first];
        let mut bytes = super::payload_bytes(&out);
        let deadline = tokio::time::Instant::now() + linger;
        while out.len() < max && bytes < max_bytes {
            // As many as the byte budget has room for at the size seen so far (what is
            // fetched is handed over, so the budget is kept by asking for less).
            let average = (bytes / out.len()).max(1);
            let room = ((max_bytes - bytes) / average).clamp(1, max - out.len());
            let mut fetched = match self.consumer.fetch().max_messages(room).messages().await {
                Ok(fetched) => fetched,
                Err(err) => {
                    // Hand over what we already hold rather than let it wait out its ack deadline.
                    tracing::warn!(error = %err, "JetStream fetch failed; keeping what arrived");
                    break;
                }
            };
            let before = out.len();
            while let Some(message) = fetched.next().await {
                match message {
                    Ok(message) => {
                        bytes += message.payload.len();
                        out.push(self.delivery(message));
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "JetStream fetch error; keeping what arrived");
                        break;
                    }
                }
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                break;
            }
            if out.len() == before {
                // Nothing ready: look again shortly while the linger lasts.
                tokio::time::sleep((deadline - now).min(Duration::from_millis(5))).await;
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Queue for NatsQueue {
    async fn publish(
        &self,
        subject: &str,
        dedupe_id: &str,
        payload: Bytes,
    ) -> anyhow::Result<Published> {
        validate_publish(subject, dedupe_id)?;
        let stream_name = self.stream_name(root(subject));
        if !self.known_streams.lock().await.contains(&stream_name) {
            self.ensure_stream(root(subject)).await?;
        }
        let sent = async {
            anyhow::Ok(
                self.jetstream
                    .send_publish(
                        self.full_subject(subject),
                        PublishMessage::build()
                            .payload(payload)
                            .message_id(dedupe_id),
                    )
                    .await
                    .context("JetStream publish failed")?
                    .await
                    .context("JetStream did not acknowledge the publish")?,
            )
        };
        let ack = match sent.await {
            Ok(ack) => ack,
            Err(err) => {
                // The stream may be gone (deleted by hand): the next publish makes it again.
                self.known_streams.lock().await.remove(&stream_name);
                return Err(err);
            }
        };
        Ok(Published {
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }

    async fn consumer(&self, spec: ConsumerSpec) -> anyhow::Result<Box<dyn WorkConsumer>> {
        validate_filter(&spec.filter)?;
        let stream = self.ensure_stream(root(&spec.filter)).await?;
        let config = consumer::pull::Config {
            durable_name: Some(spec.name.clone()),
            filter_subject: self.full_subject(&spec.filter),
            ack_policy: consumer::AckPolicy::Explicit,
            deliver_policy: consumer::DeliverPolicy::All,
            ack_wait: spec.ack_wait,
            max_deliver: if spec.max_deliver == 0 {
                -1
            } else {
                i64::from(spec.max_deliver)
            },
            max_ack_pending: spec.max_ack_pending.map_or(0, i64::from),
            // As many copies as the stream: a consumer on one node would stop the
            // work when that node goes, although the messages survive.
            num_replicas: self.replicas,
            ..Default::default()
        };
        let consumer = stream
            .get_or_create_consumer(&spec.name, config.clone())
            .await
            .with_context(|| format!("cannot create JetStream consumer {}", spec.name))?;
        Ok(Box::new(NatsConsumer {
            consumer,
            namespace_prefix: format!("{}.", self.namespace),
            jetstream: self.jetstream.clone(),
            stream: self.stream_config(root(&spec.filter)),
            config,
        }))
    }

    async fn backlog(&self, spec: &ConsumerSpec) -> anyhow::Result<u64> {
        let name = self.stream_name(root(&spec.filter));
        let stream = self
            .jetstream
            .get_stream(&name)
            .await
            .with_context(|| format!("cannot read JetStream stream {name}"))?;
        let info = stream
            .consumer_info(&spec.name)
            .await
            .with_context(|| format!("cannot read JetStream consumer {}", spec.name))?;
        Ok(info.num_pending + info.num_ack_pending as u64)
    }

    async fn subscribe(&self, filter: &str) -> anyhow::Result<BoxStream<'static, Message>> {
        validate_filter(filter)?;
        let prefix = format!("{}.", self.namespace);
        let subscriber = self
            .client
            .subscribe(self.full_subject(filter))
            .await
            .context("NATS subscribe failed")?;
        // Make sure the server has the subscription before the caller publishes.
        self.client.flush().await.context("NATS flush failed")?;
        Ok(subscriber
            .map(move |message| Message {
                subject: strip_namespace(&message.subject, &prefix),
                id: message_id(message.headers.as_ref()),
                payload: message.payload,
            })
            .boxed())
    }

    async fn check(&self) -> Result<(), String> {
        match self.client.connection_state() {
            async_nats::connection::State::Connected => Ok(()),
            state => Err(format!("NATS connection is {state:?}")),
        }
    }

    /// The streams this process has used.
    async fn usage(&self) -> anyhow::Result<Vec<StreamUsage>> {
        let names: Vec<String> = self.known_streams.lock().await.iter().cloned().collect();
        let mut usage = Vec::new();
        for name in names {
            let mut stream = self.jetstream.get_stream(&name).await?;
            let info = stream.info().await?;
            usage.push(StreamUsage {
                stream: name,
                messages: info.state.messages,
                bytes: info.state.bytes,
                max_messages: u64::try_from(info.config.max_messages).unwrap_or(u64::MAX),
                max_bytes: u64::try_from(info.config.max_bytes).unwrap_or(u64::MAX),
            });
        }
        Ok(usage)
    }

    fn kind(&self) -> QueueKind {
        QueueKind::Nats
    }
}
