//! `vivesphere gateway export-kong`: Kong's declarative configuration with the public keys
//! Kong verifies tokens with, read from the Authentication service's JWKS — once, or (with
//! `--kong-admin-url`) again every few seconds, loaded into a running DB-less Kong through its
//! Admin API (`POST /config`) whenever it changed. Run beside Kong in its pod, this is how a
//! rotated key reaches every Kong pod within the lead time, without a rollout.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use gateway::kong::PublicKey;
use platform::auth::{HttpKeySource, KeySource};

/// Every key the JWKS publishes (the current one and those whose tokens may still be live),
/// from whichever Authentication replica answers (`authentication_url` may list several).
pub async fn public_keys(authentication_url: &str) -> anyhow::Result<Vec<PublicKey>> {
    let jwks = HttpKeySource::new(authentication_url)?.jwks().await?;
    jwks.keys
        .iter()
        .map(|jwk| PublicKey::from_jwk(&serde_json::to_value(jwk)?))
        .collect()
}

/// What `export-kong` renders and where it goes.
pub struct Export {
    pub authentication_url: Option<String>,
    pub rate_limit_per_minute: u32,
    /// Where to write it; stdout when absent.
    pub output: Option<PathBuf>,
    /// A running Kong's Admin API (`http://127.0.0.1:8001`) to load every new version into.
    pub kong_admin_url: Option<String>,
    /// How often to look for new keys while keeping Kong current.
    pub interval: Duration,
    /// Where to answer Kubernetes' probes while keeping Kong current (`/health/live`: the
    /// rounds keep coming; `/health/ready`: always).
    pub health_listen: Option<std::net::SocketAddr>,
}

/// The configuration with the current keys.
async fn render(export: &Export) -> anyhow::Result<String> {
    let keys = match &export.authentication_url {
        Some(url) => public_keys(url).await?,
        None => Vec::new(),
    };
    gateway::kong::render(&keys, export.rate_limit_per_minute)
}

/// Renders once and writes it; with a Kong Admin API, does so every round until `stop`
/// instead, loading each changed version into Kong. A failed round (the Authentication
/// service or Kong away) is said and tried again at the next: Kong keeps the last
/// configuration it loaded.
pub async fn export(
    export: &Export,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let Some(admin) = &export.kong_admin_url else {
        return write(export, &render(export).await?);
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let rounds = Arc::new(Rounds::new());
    if let Some(addr) = export.health_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let router = health_router(rounds.clone(), export.interval);
        let stop = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        });
    }
    let mut loaded: Option<String> = None;
    loop {
        rounds.tick();
        match sync_once(export, &http, admin, loaded.as_deref()).await {
            Ok(Some(text)) => {
                eprintln!("kong: loaded a new configuration ({} bytes)", text.len());
                loaded = Some(text);
            }
            Ok(None) => {}
            Err(err) => eprintln!("kong: not updated this round: {err:#}"),
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tokio::time::sleep(export.interval) => {}
        }
    }
}

/// When the last round started, for the probes.
struct Rounds {
    /// Milliseconds since `started`.
    last: AtomicU64,
    started: Instant,
}

impl Rounds {
    fn new() -> Self {
        Self {
            last: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn tick(&self) {
        self.last.store(self.elapsed_ms(), Ordering::Relaxed);
    }

    /// Whether a round started within `limit` (a stuck loop stops ticking).
    fn recent(&self, limit: Duration) -> bool {
        self.elapsed_ms() - self.last.load(Ordering::Relaxed) <= limit.as_millis() as u64
    }
}

/// Live while rounds keep coming: three intervals (and at least a minute, one slow round
/// with its timeouts) without one is a stuck loop that a restart mends. Always ready: Kong
/// serves on with the keys it has, so this container is never why Kong stops taking traffic.
fn health_router(rounds: Arc<Rounds>, interval: Duration) -> axum::Router {
    let limit = (interval * 3).max(Duration::from_secs(60));
    let probe = move || {
        let rounds = rounds.clone();
        async move {
            match rounds.recent(limit) {
                true => axum::http::StatusCode::OK,
                false => axum::http::StatusCode::SERVICE_UNAVAILABLE,
            }
        }
    };
    axum::Router::new()
        .route(platform::http::health::LIVE_PATH, axum::routing::get(probe))
        .route(
            platform::http::health::READY_PATH,
            axum::routing::get(|| async { axum::http::StatusCode::OK }),
        )
}

/// One round: the configuration now, written and loaded into Kong unless it is what Kong
/// already has. The text loaded, if anything was.
async fn sync_once(
    export: &Export,
    http: &reqwest::Client,
    admin: &str,
    loaded: Option<&str>,
) -> anyhow::Result<Option<String>> {
    let text = render(export).await?;
    if loaded == Some(text.as_str()) {
        return Ok(None);
    }
    write(export, &text)?;
    // The Admin API's DB-less reload: the whole declarative configuration at once.
    let url = format!("{}/config", admin.trim_end_matches('/'));
    let response = http
        .post(&url)
        .json(&serde_json::json!({ "config": text }))
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        anyhow::bail!("POST {url}: {status}: {body}");
    }
    Ok(Some(text))
}

fn write(export: &Export, text: &str) -> anyhow::Result<()> {
    match &export.output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            print!("{text}");
            Ok(())
        }
    }
}
