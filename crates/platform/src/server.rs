//! Serving a router with graceful shutdown: on SIGTERM or SIGINT (or when the app's token is
//! cancelled) stop accepting, let in-flight requests and background work finish within the
//! drain timeout, then return.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The port every service listens on in a cluster, and how its peers reach it
/// (`http://<target>:8000`); the Kubernetes manifests are checked against it.
pub const SERVICE_PORT: u16 = 8000;

/// Binds `addr`; port 0 picks a free port (read it back from the listener).
pub async fn bind(addr: &str) -> anyhow::Result<TcpListener> {
    let addr: SocketAddr = addr
        .parse()
        .with_context(|| format!("{addr:?} is not a socket address such as 127.0.0.1:8000"))?;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

/// Cancels `token` when the process receives SIGTERM or SIGINT.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(err) => {
                    tracing::error!(error = %err, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = terminate => tracing::info!("SIGTERM received; draining"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received; draining"),
            _ = token.cancelled() => return,
        }
        token.cancel();
    });
}

/// Serves until `shutdown` fires, then drains requests and `tasks` for at most `drain`.
/// Returns an error if draining did not finish in time.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    drain: Duration,
) -> anyhow::Result<()> {
    let stop = shutdown.clone();
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { stop.cancelled().await });
    let server = tokio::spawn(async move { server.await });
    shutdown.cancelled().await;
    tasks.close();
    let drained = tokio::time::timeout(drain, async {
        let served = server.await;
        tasks.wait().await;
        served
    })
    .await;
    match drained {
        Ok(Ok(result)) => result.context("HTTP server failed"),
        Ok(Err(join)) => Err(anyhow::anyhow!("HTTP server task failed: {join}")),
        Err(_) => Err(anyhow::anyhow!(
            "drain timeout of {}s passed with work still in flight",
            drain.as_secs()
        )),
    }
}
