//! Logs: JSON lines on stdout (what `kubectl logs` and log shippers read), one per event,
//! carrying the fields of the request span they happen in (request id, method, path).
//! The level comes from `telemetry.log_level`; `RUST_LOG` beats it.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::{LogFormat, TelemetrySettings};

/// Installs the process's subscriber. Call once, from `main`; tests leave it unset.
pub fn init(settings: &TelemetrySettings) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(value) if !value.is_empty() => EnvFilter::try_new(value)?,
        _ => EnvFilter::try_new(&settings.log_level).map_err(|err| {
            anyhow::anyhow!(
                "config key `telemetry.log_level`: {:?} is not a log filter: {err}",
                settings.log_level
            )
        })?,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::NONE)
        .with_writer(std::io::stdout);
    let result = match settings.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    result.map_err(|err| anyhow::anyhow!("cannot install the log subscriber: {err}"))
}
