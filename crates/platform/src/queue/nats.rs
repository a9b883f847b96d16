//! The queue on NATS JetStream, for a cluster.
//!
//! Subjects are prefixed with the namespace (`vivesphere.bots.post.publish_requested`); each
//! subject root gets a stream (`VIVESPHERE_BOTS` capturing `vivesphere.bots.>`) with limits
//! retention, file storage and the duplicate window from config, created on first use.
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
use super::{ConsumerSpec, Delivery, Message, Published, Queue, Settle, WorkConsumer};
use crate::config::{QueueKind, QueueSettings};

const MSG_ID_HEADER: &str = "Nats-Msg-Id";

/// The JetStream-backed queue.
pub struct NatsQueue {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    namespace: String,
    max_age: Duration,
    duplicate_window: Duration,
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
        let client = async_nats::ConnectOptions::new()
            .name("vivesphere")
            .retry_on_initial_connect()
            .connect(settings.url.as_str())
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

    async fn ensure_stream(&self, root: &str) -> anyhow::Result<stream::Stream> {
        let name = self.stream_name(root);
        let stream = self
            .jetstream
            .get_or_create_stream(stream::Config {
                name: name.clone(),
                subjects: vec![format!("{}.{root}.>", self.namespace)],
                retention: stream::RetentionPolicy::Limits,
                storage: stream::StorageType::File,
                max_age: self.max_age,
                duplicate_window: self.duplicate_window,
                ..Default::default()
            })
            .await
            .with_context(|| format!("cannot create JetStream stream {name}"))?;
        self.known_streams.lock().await.insert(name);
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
}

/// How long one pull request waits on the server before it is renewed.
const PULL_EXPIRES: Duration = Duration::from_secs(5);

impl NatsConsumer {
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
            let mut batch = self
                .consumer
                .batch()
                .max_messages(1)
                .expires(PULL_EXPIRES)
                .messages()
                .await
                .map_err(|err| anyhow::anyhow!("JetStream pull failed: {err}"))?;
            match batch.next().await {
                Some(Ok(message)) => return Ok(self.delivery(message)),
                Some(Err(err)) => {
                    tracing::warn!(error = %err, "JetStream pull error; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                None => {} // the pull expired empty: ask again
            }
        }
    }

    /// The first message by a waiting pull, then what is ready, fetched without waiting
    /// (a request that returns at once), until `max` or `linger` is up. No pull request is
    /// left open on the server when this returns: a message handed to an abandoned request
    /// would sit until its pull expired.
    async fn next_batch(&mut self, max: usize, linger: Duration) -> anyhow::Result<Vec<Delivery>> {
        let first = self.next().await?;
        let mut out = vec![first];
        let deadline = tokio::time::Instant::now() + linger;
        while out.len() < max {
            let mut fetched = match self
                .consumer
                .fetch()
                .max_messages(max - out.len())
                .messages()
                .await
            {
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
                    Ok(message) => out.push(self.delivery(message)),
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
        let ack = self
            .jetstream
            .send_publish(
                self.full_subject(subject),
                PublishMessage::build()
                    .payload(payload)
                    .message_id(dedupe_id),
            )
            .await
            .context("JetStream publish failed")?
            .await
            .context("JetStream did not acknowledge the publish")?;
        Ok(Published {
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }

    async fn consumer(&self, spec: ConsumerSpec) -> anyhow::Result<Box<dyn WorkConsumer>> {
        validate_filter(&spec.filter)?;
        let stream = self.ensure_stream(root(&spec.filter)).await?;
        let consumer = stream
            .get_or_create_consumer(
                &spec.name,
                consumer::pull::Config {
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
                    ..Default::default()
                },
            )
            .await
            .with_context(|| format!("cannot create JetStream consumer {}", spec.name))?;
        Ok(Box::new(NatsConsumer {
            consumer,
            namespace_prefix: format!("{}.", self.namespace),
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

    fn kind(&self) -> QueueKind {
        QueueKind::Nats
    }
}
