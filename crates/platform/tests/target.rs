//! What the platform promises a target at run time.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use platform::config::{LayeredConfig, PlatformSettings, QueueSettings};
use platform::http::metrics::MetricsRegistry;
use platform::queue::embedded::EmbeddedQueue;
use platform::target::TargetContext;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

async fn context(dir: &tempfile::TempDir) -> TargetContext {
    let queue = EmbeddedQueue::open(&QueueSettings {
        path: dir.path().join("queue.db").display().to_string(),
        ..QueueSettings::default()
    })
    .await
    .unwrap();
    let config: LayeredConfig =
        platform::config::ConfigLoader::new(dir.path(), Vec::new(), PlatformSettings::defaults())
            .unwrap()
            .load(None)
            .unwrap();
    let queue: Arc<dyn platform::queue::Queue> = Arc::new(queue);
    let metrics = MetricsRegistry::new();
    let telemetry = platform::config::TelemetrySettings {
        spill_dir: dir.path().join("spill").display().to_string(),
        ..Default::default()
    };
    let config = Arc::new(config);
    TargetContext {
        live: platform::config::LiveConfig::fixed(config.clone()),
        hub: Default::default(),
        config,
        platform: PlatformSettings::default(),
        database: None,
        events: platform::shipping::EventShipper::new(
            queue.clone(),
            &telemetry,
            &metrics,
            platform::Clock::system(),
        ),
        queue,
        metrics,
        clock: platform::Clock::system(),
        shutdown: CancellationToken::new(),
        tasks: TaskTracker::new(),
        failure: Arc::new(OnceLock::new()),
        peers: Default::default(),
    }
}

#[tokio::test]
async fn a_failed_background_task_stops_the_process_and_records_why() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&dir).await;
    ctx.spawn_critical("scheduler", async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        anyhow::bail!("lost the database")
    });
    tokio::time::timeout(Duration::from_secs(5), ctx.shutdown.cancelled())
        .await
        .expect("shutdown requested");
    let cause = ctx.failure.get().unwrap();
    assert!(
        cause.contains("scheduler") && cause.contains("lost the database"),
        "{cause}"
    );
}

#[tokio::test]
async fn a_background_task_that_ends_well_stops_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&dir).await;
    ctx.spawn_critical("one-off", async { Ok(()) });
    ctx.tasks.close();
    ctx.tasks.wait().await;
    assert!(!ctx.shutdown.is_cancelled());
    assert!(ctx.failure.get().is_none());
}

#[test]
fn peers_are_this_process_when_it_runs_them_else_their_kubernetes_service() {
    let peers = platform::target::Peers::new(
        "http://127.0.0.1:4100",
        vec!["secure-bot-data", "bot-manager"],
    );
    assert_eq!(peers.url("secure-bot-data"), "http://127.0.0.1:4100");
    assert_eq!(peers.url("authentication"), "http://authentication:8000");
    assert_eq!(
        platform::target::Peers::default().url("secure-bot-data"),
        "http://secure-bot-data:8000"
    );
}
