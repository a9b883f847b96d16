//! Signed, retried webhook notifications (Standard Webhooks). Events the services publish
//! become messages in an outbox, in the same transaction that stores them
//! ([`crate::ops::ingest::store_events`]); the sender here claims due deliveries, signs and
//! posts them, and retries with backoff for more than a day before it gives up and turns
//! the subscription off. Subscriptions, the delivery log, redelivery and the test ping are
//! in [`crate::ops::webhooks`].

pub mod catalog;
pub mod sender;
pub mod signing;
pub mod targets;
pub mod worker;

use platform::http::metrics::MetricsRegistry;
use platform::sealing::Sealer;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use tokio::sync::Notify;

use crate::settings::WebhookSettings;
use crate::store::webhooks::Subscription;

/// The result of one attempt: `delivered`, `retrying` (failed, tried again later) or
/// `failed` (given up).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone)]
pub struct WebhookMetrics {
    pub attempts: Family<ResultLabels, Counter>,
    /// One attempt, connect to answer.
    pub attempt_seconds: Histogram,
    /// From the event's arrival in the outbox to its delivery.
    pub lag_seconds: Histogram,
    pub pending: Gauge,
    pub disabled: Gauge,
}

impl WebhookMetrics {
    pub fn register(registry: &MetricsRegistry) -> Self {
        Self {
            attempts: registry.register(
                "webhook_attempts",
                "Webhook delivery attempts by result (delivered, retrying, failed = given up)",
                Family::default(),
            ),
            attempt_seconds: registry.register(
                "webhook_attempt_seconds",
                "How long one webhook attempt took",
                Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            ),
            lag_seconds: registry.register(
                "webhook_delivery_lag_seconds",
                "From an event entering the outbox to its delivery",
                Histogram::new(exponential_buckets(0.01, 2.0, 24)),
            ),
            pending: registry.register(
                "webhook_outbox_pending",
                "Webhook deliveries waiting in the outbox",
                Gauge::default(),
            ),
            disabled: registry.register(
                "webhook_subscriptions_disabled",
                "Webhook subscriptions turned off after deliveries kept failing",
                Gauge::default(),
            ),
        }
    }

    pub fn count(&self, result: &str) {
        self.attempts
            .get_or_create(&ResultLabels {
                result: result.to_string(),
            })
            .inc();
    }
}

/// What the webhook side of the service holds: the key sealing the secrets, the HTTP client
/// that only reaches allowed targets, the sender's wake-up and its metrics.
pub struct Webhooks {
    pub sealer: Sealer,
    pub client: reqwest::Client,
    /// Rung when the intake put something in the outbox.
    pub wake: Notify,
    pub metrics: WebhookMetrics,
}

impl Webhooks {
    pub fn new(
        settings: &WebhookSettings,
        sealer: Sealer,
        metrics: WebhookMetrics,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            client: sender::client(settings)?,
            sealer,
            wake: Notify::new(),
            metrics,
        })
    }

    /// The context a subscription's secret is sealed under: a sealed secret moved to another
    /// subscription does not open.
    pub fn secret_context(subscription_id: &str) -> String {
        format!("webhook-secret:{subscription_id}")
    }

    pub fn seal_secret(&self, subscription_id: &str, secret: &str) -> String {
        self.sealer
            .seal(secret.as_bytes(), &Self::secret_context(subscription_id))
    }

    /// The secrets that sign `subscription`'s messages at `now`: its current one, and the one
    /// it replaced while the rotation's overlap lasts.
    pub fn signing_secrets(
        &self,
        subscription: &Subscription,
        now: i64,
    ) -> anyhow::Result<Vec<String>> {
        let mut secrets = vec![self.open_secret(&subscription.id, &subscription.secret_sealed)?];
        if let (Some(previous), Some(until)) = (
            &subscription.previous_secret_sealed,
            subscription.previous_valid_until,
        ) && until > now
        {
            secrets.push(self.open_secret(&subscription.id, previous)?);
        }
        Ok(secrets)
    }

    fn open_secret(&self, subscription_id: &str, sealed: &str) -> anyhow::Result<String> {
        let bytes = self
            .sealer
            .open(sealed, &Self::secret_context(subscription_id))?;
        Ok(String::from_utf8(bytes)?)
    }
}
