//! The sender: claims due deliveries under a lease, posts them (many at once), and writes
//! what came of each. A failed attempt is tried again after the next delay in
//! [`RETRY_DELAYS_SECONDS`] (plus up to a fifth more, so receivers coming back are not hit by
//! every sender at once); after the last one the delivery is given up and its subscription
//! turned off, which a person sees in the log, a metric and an alert.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use platform::activity::Activity;
use platform::target::TargetContext;
use serde_json::json;

use super::Webhooks;
use super::sender::{self, Outgoing};
use crate::service::Logs;
use crate::store::webhooks::{self as store, Attempted, Claimed, Subscription};

/// Delays before the 2nd … 8th attempt, as Standard Webhooks' reference schedule: 5 s, 5 min,
/// 30 min, 2 h, 5 h, 10 h, 10 h — 27.6 hours from the first attempt to the last.
pub const RETRY_DELAYS_SECONDS: [i64; 7] = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];

/// How often the outbox gauges are refreshed.
const HEALTH_INTERVAL: Duration = Duration::from_secs(10);

pub fn spawn(ctx: &TargetContext, logs: Arc<Logs>) {
    let shutdown = ctx.shutdown.clone();
    let sender = logs.clone();
    ctx.spawn_critical("webhook-sender", async move {
        let poll = Duration::from_millis(sender.settings.webhooks.poll_interval_ms.max(10));
        loop {
            let sent = match round(&sender).await {
                Ok(sent) => sent,
                Err(err) => {
                    tracing::warn!(error = %format!("{err:#}"), "webhook round failed; retrying");
                    0
                }
            };
            if sent > 0 {
                continue;
            }
            tokio::select! {
                _ = sender.webhooks.wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
                _ = shutdown.cancelled() => return Ok(()),
            }
        }
    });
    let shutdown = ctx.shutdown.clone();
    ctx.spawn_critical("webhook-health", async move {
        loop {
            if let Ok((pending, disabled)) = store::health(&logs.db).await {
                logs.webhooks.metrics.pending.set(pending);
                logs.webhooks.metrics.disabled.set(disabled);
            }
            tokio::select! {
                _ = tokio::time::sleep(HEALTH_INTERVAL) => {}
                _ = shutdown.cancelled() => return Ok(()),
            }
        }
    });
}

/// The delay before attempt `done + 1`, or `None` when `done` attempts are all there are.
pub fn retry_delay_ms(done: i64) -> Option<i64> {
    let index = usize::try_from(done.checked_sub(1)?).ok()?;
    let base = RETRY_DELAYS_SECONDS.get(index)? * 1000;
    Some(base + random_below(base / 5 + 1))
}

/// A uniformly random whole number below `bound` (jitter, not secrets).
fn random_below(bound: i64) -> i64 {
    (uuid::Uuid::new_v4().as_u128() % bound.max(1) as u128) as i64
}

/// One claim-send-record round; how many deliveries it sent.
async fn round(logs: &Logs) -> anyhow::Result<usize> {
    let settings = &logs.settings.webhooks;
    let now = logs.clock.now_millis();
    // Long enough for an attempt and its bookkeeping; a replica that dies releases its
    // claims when the lease runs out.
    let lease_until = now + 2 * settings.timeout_ms as i64 + 30_000;
    let claimed = store::claim_due(&logs.db, now, lease_until, settings.claim_batch as i64).await?;
    if claimed.is_empty() {
        return Ok(0);
    }
    let bodies = bodies_of(logs, &claimed).await?;
    let signers = signers_of(logs, &claimed, now).await?;
    let attempts = send_all(logs, claimed, &bodies, &signers, now / 1000).await;
    let sent = attempts.len();
    let (records, given_up) = settle(logs, &attempts);
    record(logs, &records).await?;
    for (subscription_id, last_error) in given_up {
        turn_off(logs, &subscription_id, &last_error, &signers).await?;
    }
    Ok(sent)
}

/// Writes what the attempts came to, trying again a few times: the requests went out, and a
/// lease that runs out unrecorded would send them all again.
async fn record(logs: &Logs, records: &[Attempted]) -> anyhow::Result<()> {
    let mut tries = 0;
    loop {
        match store::record_attempts(&logs.db, records).await {
            Ok(()) => return Ok(()),
            Err(err) if tries < 5 => {
                tries += 1;
                tracing::warn!(error = %format!("{err:#}"), tries, "webhook attempts not recorded; trying again");
                tokio::time::sleep(Duration::from_millis(200 * tries)).await;
            }
            Err(err) => return Err(err),
        }
    }
}

fn distinct(values: impl Iterator<Item = String>) -> Vec<String> {
    let mut values: Vec<String> = values.collect();
    values.sort();
    values.dedup();
    values
}

/// The bodies of the claimed deliveries' messages, by message id.
async fn bodies_of(logs: &Logs, claimed: &[Claimed]) -> anyhow::Result<HashMap<String, String>> {
    let ids = distinct(claimed.iter().map(|c| c.message_id.clone()));
    Ok(store::payloads(&logs.db, &ids).await?.into_iter().collect())
}

/// The claimed deliveries' subscriptions with the secrets that sign now. A subscription gone
/// or unreadable has no signer: its deliveries fail and are retried.
async fn signers_of(
    logs: &Logs,
    claimed: &[Claimed],
    now: i64,
) -> anyhow::Result<HashMap<String, Option<Signer>>> {
    let ids = distinct(claimed.iter().map(|c| c.subscription_id.clone()));
    Ok(store::by_ids(&logs.db, &ids)
        .await?
        .into_iter()
        .map(|s| (s.id.clone(), Signer::of(&logs.webhooks, s, now).ok()))
        .collect())
}

/// Sends every claimed delivery, `concurrency` at a time.
async fn send_all(
    logs: &Logs,
    claimed: Vec<Claimed>,
    bodies: &HashMap<String, String>,
    signers: &HashMap<String, Option<Signer>>,
    timestamp: i64,
) -> Vec<(Claimed, sender::Answer)> {
    let hooks = &logs.webhooks;
    futures::stream::iter(claimed)
        .map(|c| {
            let signer = signers.get(&c.subscription_id).and_then(Option::as_ref);
            let body = bodies.get(&c.message_id);
            async move {
                let answer = match (signer, body) {
                    (Some(signer), Some(body)) => {
                        let secrets: Vec<&str> =
                            signer.secrets.iter().map(String::as_str).collect();
                        let outgoing = Outgoing {
                            url: &signer.subscription.url,
                            message_id: &c.message_id,
                            body,
                            secrets: &secrets,
                            timestamp,
                        };
                        sender::send(
                            &hooks.client,
                            logs.settings.webhooks.allow_loopback,
                            outgoing,
                        )
                        .await
                    }
                    _ => sender::Answer {
                        delivered: false,
                        status: None,
                        error: Some("the subscription or message is gone or unreadable".into()),
                        took: Duration::ZERO,
                    },
                };
                (c, answer)
            }
        })
        .buffer_unordered(logs.settings.webhooks.concurrency.max(1))
        .collect()
        .await
}

/// What each attempt leads to — delivered, tried again later, or given up — counted in the
/// metrics; and the subscriptions whose delivery was given up, with the last error.
fn settle(
    logs: &Logs,
    attempts: &[(Claimed, sender::Answer)],
) -> (Vec<Attempted>, HashMap<String, String>) {
    let metrics = &logs.webhooks.metrics;
    let at = logs.clock.now_millis();
    let mut records = Vec::with_capacity(attempts.len());
    let mut given_up = HashMap::new();
    for (claimed, answer) in attempts {
        metrics.attempt_seconds.observe(answer.took.as_secs_f64());
        let next_attempt_at = if answer.delivered {
            metrics.count("delivered");
            let lag = (at - claimed.created_at).max(0) as f64 / 1000.0;
            metrics.lag_seconds.observe(lag);
            None
        } else if let Some(delay) = retry_delay_ms(claimed.attempts + 1) {
            metrics.count("retrying");
            Some(at + delay)
        } else {
            metrics.count("failed");
            let last_error = answer.error.clone().unwrap_or_default();
            given_up.insert(claimed.subscription_id.clone(), last_error);
            None
        };
        records.push(Attempted {
            id: claimed.id.clone(),
            status: answer.status,
            error: answer.error.clone(),
            at,
            next_attempt_at,
            delivered: answer.delivered,
        });
    }
    (records, given_up)
}

/// A subscription whose delivery used up every attempt is turned off until a person turns
/// it on again; its other deliveries wait in the outbox meanwhile.
async fn turn_off(
    logs: &Logs,
    subscription_id: &str,
    last_error: &str,
    signers: &HashMap<String, Option<Signer>>,
) -> anyhow::Result<()> {
    let reason = format!(
        "a delivery failed on every attempt for {} hours (last: {last_error})",
        RETRY_DELAYS_SECONDS.iter().sum::<i64>() / 3600
    );
    let now = logs.clock.now_millis();
    if !store::disable(&logs.db, subscription_id, &reason, now).await? {
        return Ok(());
    }
    let team = signers
        .get(subscription_id)
        .and_then(Option::as_ref)
        .and_then(|s| s.subscription.team.clone());
    logs.activity
        .record(
            Activity::new("webhook.disabled")
                .by_service(crate::NAME)
                .team(team.as_deref())
                .subject(subscription_id)
                .message(format!("webhook {subscription_id} turned off: {reason}"))
                .details(json!({"subscription_id": subscription_id, "reason": reason})),
        )
        .await;
    Ok(())
}

/// A subscription with the secrets that sign now.
struct Signer {
    subscription: Subscription,
    secrets: Vec<String>,
}

impl Signer {
    fn of(hooks: &Webhooks, subscription: Subscription, now: i64) -> anyhow::Result<Self> {
        Ok(Self {
            secrets: hooks.signing_secrets(&subscription, now)?,
            subscription,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_last_more_than_a_day_and_never_come_early() {
        let mut total = 0;
        for done in 1..=7 {
            let base = RETRY_DELAYS_SECONDS[done as usize - 1] * 1000;
            let delay = retry_delay_ms(done).unwrap();
            assert!((base..=base + base / 5).contains(&delay), "{done}: {delay}");
            total += delay;
        }
        assert!(total >= 24 * 3600 * 1000);
        assert_eq!(retry_delay_ms(8), None);
        assert_eq!(retry_delay_ms(0), None);
    }
}
