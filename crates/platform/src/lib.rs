//! The shared runtime every ViveSphere service is built on.
//!
//! A service crate depends on `platform` and nothing else of ours: configuration loading
//! ([`config`]), logging and request telemetry ([`telemetry`], [`http`]), storage with
//! per-service migrations ([`db`]), the message queue with its NATS JetStream and embedded
//! implementations ([`queue`]), and the contract between a service and the binary that runs
//! it ([`target`]). Nothing here is a process-wide global, so several services (or several
//! test apps) can live in one process without seeing each other's state.

pub mod activity;
pub mod auth;
pub mod clock;
pub mod config;
pub mod db;
pub mod http;
pub mod queue;
pub mod sealing;
pub mod server;
pub mod shipping;
pub mod target;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time_fmt;

pub use clock::Clock;
pub use http::error::{ApiError, ErrorCode};

/// Installs the one TLS crypto provider of the process (ring). Call it before anything opens
/// a TLS connection; two providers in one process make rustls refuse to pick one.
pub fn install_crypto_provider() {
    // Err means one is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
pub use http::json::Json;
pub use http::query::Query;
