//! The config client every service runs: it follows the Configuration service, applies each
//! new release to its [`LiveConfig`] and keeps the last good one on disk.
//!
//! Where it reads: in one-process mode straight from the Configuration service in the same
//! process ([`ConfigHub`]); otherwise over HTTP with the service's own client_credentials
//! token. When it hears of a change: from the hub in-process, from `config.changes.<scope>` on
//! the queue (NATS) otherwise; and it re-reads every `resync_seconds` in case a notice was
//! missed while it was disconnected.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::central::{
    ANY_PROFILE, CHANGE_SUBJECT_FILTER, CentralSnapshot, ChangeNotice, ConfigHub, DiskCopy,
    GLOBAL_SCOPE,
};
use super::{LiveConfig, Profile};
use crate::auth::ServiceTokens;
use crate::queue::Queue;

/// The `config_client` section: how a process reaches the Configuration service. It is
/// bootstrap configuration (files and environment only).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfigClientSettings {
    /// Follow the central settings at all.
    pub enabled: bool,
    /// Base URL of the Configuration service; unset: this process when it runs it, else
    /// `http://configuration:8000`.
    pub url: Option<String>,
    /// The service client the token is requested as; unset: the target's name.
    pub client_id: Option<String>,
    /// Where the last applied central settings are kept, one file per service and profile.
    pub cache_dir: String,
    /// Seconds between re-reads that catch a missed change notice.
    pub resync_seconds: u64,
    /// Milliseconds a starting service waits for the central settings before it starts on
    /// its disk copy instead.
    pub startup_timeout_ms: u64,
}

impl Default for ConfigClientSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            url: None,
            client_id: None,
            cache_dir: "./data/config-cache".into(),
            resync_seconds: 30,
            startup_timeout_ms: 2000,
        }
    }
}

/// Where the central settings come from.
pub enum CentralSource {
    /// The Configuration service runs in this process.
    InProcess(ConfigHub),
    /// Over HTTP: `GET <url>/api/v1/config/settings?service_name=…&profile=…`.
    Http {
        base_url: String,
        tokens: Arc<ServiceTokens>,
        http: reqwest::Client,
    },
}

impl CentralSource {
    pub fn http(base_url: &str, tokens: Arc<ServiceTokens>) -> anyhow::Result<Self> {
        crate::install_crypto_provider();
        Ok(Self::Http {
            base_url: base_url.trim_end_matches('/').to_string(),
            tokens,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?,
        })
    }

    /// The effective central settings of `service` in `profile`.
    pub async fn fetch(&self, service: &str, profile: Profile) -> anyhow::Result<CentralSnapshot> {
        match self {
            Self::InProcess(hub) => {
                let provider = hub
                    .provider()
                    .context("the Configuration service has not started in this process")?;
                provider.effective(service, profile).await
            }
            Self::Http {
                base_url,
                tokens,
                http,
            } => {
                let token = tokens.token().await?;
                // Service and profile names are kebab-case words: nothing to escape.
                let url = format!(
                    "{base_url}/api/v1/config/settings?service_name={service}&profile={}",
                    profile.as_str()
                );
                let response = http
                    .get(&url)
                    .bearer_auth(token)
                    .send()
                    .await
                    .with_context(|| format!("GET {url}"))?;
                if !response.status().is_success() {
                    anyhow::bail!("GET {url}: {}", response.status());
                }
                response.json().await.context("bad effective settings")
            }
        }
    }
}

/// Follows the central settings for one [`LiveConfig`].
pub struct ConfigClient {
    live: LiveConfig,
    source: CentralSource,
    disk: DiskCopy,
    profile: Profile,
    resync: Duration,
}

impl ConfigClient {
    pub fn new(
        live: LiveConfig,
        source: CentralSource,
        disk: DiskCopy,
        profile: Profile,
        resync: Duration,
    ) -> Self {
        Self {
            live,
            source,
            disk,
            profile,
            resync,
        }
    }

    pub fn live(&self) -> &LiveConfig {
        &self.live
    }

    /// The first read, before the service is built, bounded by `startup_timeout_ms`: on
    /// failure the service starts on what it has (its saved copy, else files and
    /// environment) and the running client catches up.
    pub async fn sync_at_start(&self, settings: &ConfigClientSettings) {
        let limit = Duration::from_millis(settings.startup_timeout_ms);
        if limit.is_zero() {
            // Told not to wait (a process that starts before the Configuration service can
            // answer): the running client catches up.
            tracing::info!(
                service = self.live.service(),
                revision = self.live.revision(),
                "starting on the saved settings; following the Configuration service from now"
            );
            return;
        }
        match tokio::time::timeout(limit, self.sync()).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::warn!(service = self.live.service(), revision = self.live.revision(), error = %format!("{err:#}"), "starting without fresh central settings")
            }
            Err(_) => tracing::warn!(
                service = self.live.service(),
                revision = self.live.revision(),
                "the Configuration service did not answer in time; starting on the saved settings"
            ),
        }
    }

    /// Reads the central settings once and applies them if their revision differs from the
    /// one in effect (newer, or older after the Configuration service was restored from a
    /// backup). Errors are reported, never fatal: the service keeps its last good settings.
    pub async fn sync(&self) -> anyhow::Result<()> {
        let snapshot = self.source.fetch(self.live.service(), self.profile).await?;
        if snapshot.revision == self.live.revision() {
            return Ok(());
        }
        let applied = self.live.apply(&snapshot).map_err(|err| {
            anyhow::anyhow!(
                "central revision {} refused, keeping revision {}: {err}",
                snapshot.revision,
                self.live.revision()
            )
        })?;
        if let Err(err) = self.disk.save(&snapshot) {
            tracing::warn!(path = %self.disk.path().display(), error = %err, "cannot save the central config copy");
        }
        tracing::info!(
            service = self.live.service(),
            revision = applied.revision,
            changed = ?applied.changed,
            restart_required = ?applied.restart_required,
            "central configuration applied"
        );
        Ok(())
    }

    /// Follows changes until shutdown.
    pub async fn run(self, queue: Arc<dyn Queue>, shutdown: CancellationToken) {
        let mut notices = self.notices(&queue).await;
        let mut resync = tokio::time::interval(self.resync);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failures = 0u32;
        loop {
            let due = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = resync.tick() => true,
                notice = notices.next() => match notice {
                    Some(notice) => {
                        notice.concerns(self.live.service(), self.profile)
                            && notice.revision != self.live.revision()
                    }
                    None => {
                        // The notice stream ended (queue closed): fall back to resyncs.
                        notices = futures::stream::pending().boxed();
                        false
                    }
                },
            };
            if !due {
                continue;
            }
            match self.sync().await {
                Ok(()) => failures = 0,
                Err(err) => {
                    failures += 1;
                    tracing::warn!(service = self.live.service(), error = %format!("{err:#}"), "central configuration not applied");
                    // Retry sooner than the next resync while the service is unreachable.
                    let backoff = Duration::from_millis(200 * 2u64.pow(failures.min(6)));
                    if backoff < self.resync {
                        resync.reset_after(backoff);
                    }
                }
            }
        }
    }

    async fn notices(&self, queue: &Arc<dyn Queue>) -> BoxStream<'static, ChangeNotice> {
        match &self.source {
            CentralSource::InProcess(hub) => {
                let receiver = hub.subscribe();
                futures::stream::unfold(receiver, |mut receiver| async move {
                    match receiver.recv().await {
                        Ok(notice) => Some((notice, receiver)),
                        // Fell behind: any notice makes the client re-read, so make one up.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            Some((lagged_notice(), receiver))
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
                    }
                })
                .boxed()
            }
            CentralSource::Http { .. } => match queue.subscribe(CHANGE_SUBJECT_FILTER).await {
                Ok(stream) => stream
                    .filter_map(|message| async move {
                        serde_json::from_slice::<ChangeNotice>(&message.payload).ok()
                    })
                    .boxed(),
                Err(err) => {
                    tracing::warn!(error = %format!("{err:#}"), "cannot follow config change notices; re-reading on a timer only");
                    futures::stream::pending().boxed()
                }
            },
        }
    }
}

/// A notice that concerns everybody, for a receiver that missed some.
fn lagged_notice() -> ChangeNotice {
    ChangeNotice {
        revision: -1,
        scope: GLOBAL_SCOPE.into(),
        profile: ANY_PROFILE.into(),
    }
}
