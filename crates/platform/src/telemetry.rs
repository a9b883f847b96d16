//! Logs: JSON lines on stdout (what `kubectl logs` and log shippers read), one per event,
//! carrying the fields of the request span they happen in (request id, method, path).
//! The level comes from `telemetry.log_level` and follows it live (the central
//! configuration can turn on debug logs without a restart); `RUST_LOG` beats it.

use std::sync::Arc;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::{LogFormat, TelemetrySettings};

type Reload = dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync;

/// Changes the installed subscriber's filter.
#[derive(Clone)]
pub struct LogLevelHandle {
    reload: Arc<Reload>,
    /// `RUST_LOG` was set: it wins over the configuration, now and later.
    pinned: bool,
}

impl LogLevelHandle {
    /// Whether `RUST_LOG` fixes the filter.
    pub fn pinned(&self) -> bool {
        self.pinned
    }

    /// Parses `filter` without applying it: the first half of a live change.
    pub fn parse(filter: &str) -> Result<EnvFilter, String> {
        EnvFilter::try_new(filter).map_err(|err| format!("{filter:?} is not a log filter: {err}"))
    }

    /// Puts a parsed filter into effect (ignored while `RUST_LOG` is set).
    pub fn apply(&self, filter: EnvFilter) {
        if self.pinned {
            return;
        }
        if let Err(err) = (self.reload)(filter) {
            tracing::error!(error = %err, "cannot change the log filter");
        }
    }
}

/// Installs the process's subscriber. Call once, from `main`; tests leave it unset.
pub fn init(settings: &TelemetrySettings) -> anyhow::Result<LogLevelHandle> {
    let (filter, pinned) = match std::env::var("RUST_LOG") {
        Ok(value) if !value.is_empty() => (EnvFilter::try_new(value)?, true),
        _ => (
            LogLevelHandle::parse(&settings.log_level)
                .map_err(|err| anyhow::anyhow!("config key `telemetry.log_level`: {err}"))?,
            false,
        ),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::NONE)
        .with_writer(std::io::stdout);
    let (result, reload): (_, Arc<Reload>) = match settings.log_format {
        LogFormat::Json => {
            let builder = builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_filter_reloading();
            let handle = builder.reload_handle();
            (
                builder.try_init(),
                Arc::new(move |filter| handle.reload(filter).map_err(|e| e.to_string())),
            )
        }
        LogFormat::Pretty => {
            let builder = builder.with_filter_reloading();
            let handle = builder.reload_handle();
            (
                builder.try_init(),
                Arc::new(move |filter| handle.reload(filter).map_err(|e| e.to_string())),
            )
        }
    };
    result.map_err(|err| anyhow::anyhow!("cannot install the log subscriber: {err}"))?;
    Ok(LogLevelHandle { reload, pinned })
}
