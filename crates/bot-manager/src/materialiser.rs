//! Recurring posts' occurrences become posts ahead of time: every
//! `recurrence_interval_seconds` a replica claims the active rules due for a look (disjoint
//! across replicas, as metric rounds are) and makes their occurrences up to the horizon
//! (`ops::recurrences::materialise`).

use std::sync::Arc;
use std::time::Duration;

use crate::ops::recurrences::{LOOK_AGAIN_MS, materialise};
use crate::service::BotManager;
use crate::store::recurrences;

/// Rules claimed per round.
const BATCH: i64 = 50;

pub async fn run(manager: Arc<BotManager>, shutdown: tokio_util::sync::CancellationToken) {
    let interval_s = manager.settings.recurrence_interval_seconds;
    if interval_s == 0 {
        return;
    }
    let tick = Duration::from_secs(interval_s);
    loop {
        let claimed = round(&manager).await;
        if let Err(err) = &claimed {
            tracing::warn!(error = %format!("{err:#}"), "recurring posts round failed");
        }
        if claimed.is_ok_and(|n| n as i64 >= BATCH) {
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
    }
}

async fn round(manager: &BotManager) -> anyhow::Result<usize> {
    let now = manager.clock.now_millis();
    let rules = recurrences::claim_due(&manager.db, now, LOOK_AGAIN_MS, BATCH).await?;
    for rule in &rules {
        if let Err(err) = materialise(manager, rule).await {
            tracing::warn!(recurrence_id = %rule.recurrence_id, error = %err.message,
                "a recurring post's occurrences wait for the next round");
        }
    }
    Ok(rules.len())
}
