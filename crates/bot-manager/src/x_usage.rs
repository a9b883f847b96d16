//! The reader of X's usage: every few seconds it looks for registered apps whose reading is
//! due (every `x_usage_interval_seconds`, claimed so that one replica asks X per app and
//! interval) and shows each app's last reading in this replica's metrics.

use std::sync::Arc;
use std::time::Duration;

use crate::service::BotManager;

pub async fn run(manager: Arc<BotManager>, shutdown: tokio_util::sync::CancellationToken) {
    let interval_s = manager.settings.x_usage_interval_seconds;
    if interval_s == 0 {
        return;
    }
    let tick = Duration::from_secs(interval_s.clamp(1, 30));
    loop {
        if let Err(err) = crate::ops::apps::read_due(&manager, interval_s as i64 * 1000).await {
            tracing::warn!(error = %format!("{err:#}"), "X usage round failed");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
    }
}
