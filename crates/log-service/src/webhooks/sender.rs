//! One attempt: the signed POST of a message to a subscription's URL, and what came of it.

use std::time::{Duration, Instant};

use reqwest::redirect::Policy;

use super::signing;
use super::targets::{GuardedResolver, check_url};
use crate::settings::WebhookSettings;

/// The client every delivery uses: it resolves names through the guard, never follows a
/// redirect and never goes through a proxy (a proxy would hide where it connects).
pub fn client(settings: &WebhookSettings) -> anyhow::Result<reqwest::Client> {
    platform::install_crypto_provider();
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_millis(settings.timeout_ms))
        .connect_timeout(Duration::from_millis(settings.timeout_ms.min(5_000)))
        .redirect(Policy::none())
        .no_proxy()
        .dns_resolver(GuardedResolver {
            allow_loopback: settings.allow_loopback,
        })
        .pool_max_idle_per_host(settings.concurrency.max(1))
        .user_agent(concat!("ViveSphere-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// A message ready to go to one subscription.
pub struct Outgoing<'a> {
    pub url: &'a str,
    pub message_id: &'a str,
    pub body: &'a str,
    /// The secrets that sign now (the current one, and a rotated-out one still in overlap).
    pub secrets: &'a [&'a str],
    /// `webhook-timestamp`: Unix seconds of this attempt.
    pub timestamp: i64,
}

/// What one attempt came to.
#[derive(Debug)]
pub struct Answer {
    pub delivered: bool,
    pub status: Option<i64>,
    /// Why it failed, for the delivery log (never a secret: URLs carry none).
    pub error: Option<String>,
    pub took: Duration,
}

pub async fn send(
    client: &reqwest::Client,
    allow_loopback: bool,
    outgoing: Outgoing<'_>,
) -> Answer {
    let started = Instant::now();
    let failed = |error: String| Answer {
        delivered: false,
        status: None,
        error: Some(error),
        took: started.elapsed(),
    };
    // Checked again on every attempt: the rules may be stricter than when it was stored.
    let url = match check_url(outgoing.url, allow_loopback) {
        Ok(url) => url,
        Err(why) => return failed(why),
    };
    let signature = match signing::signature_header(
        outgoing.secrets,
        outgoing.message_id,
        outgoing.timestamp,
        outgoing.body.as_bytes(),
    ) {
        Ok(signature) => signature,
        Err(err) => return failed(format!("cannot sign: {err}")),
    };
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", outgoing.message_id)
        .header("webhook-timestamp", outgoing.timestamp.to_string())
        .header("webhook-signature", signature)
        .body(outgoing.body.to_string())
        .send()
        .await;
    match response {
        Ok(response) => {
            let status = response.status();
            let error = if status.is_success() {
                None
            } else if status.is_redirection() {
                Some(format!("answered {status}: redirects are not followed"))
            } else {
                Some(format!("answered {status}"))
            };
            Answer {
                delivered: status.is_success(),
                status: Some(i64::from(status.as_u16())),
                error,
                took: started.elapsed(),
            }
        }
        Err(err) => failed(describe(&err)),
    }
}

/// A transport error in a sentence, with its cause (the guard's refusal, a timeout, …).
fn describe(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        cause = inner.to_string();
        source = inner.source();
    }
    if cause.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {cause}")
    }
}
