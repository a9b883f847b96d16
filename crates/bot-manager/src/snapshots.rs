//! Metric snapshots: every `metrics_interval_seconds` each active bot's followers and its
//! recent posts' public, non-public and organic metrics are read from X and stored, so they
//! can be charted over time. Replicas claim disjoint bots; a snapshot never refreshes tokens
//! (a failed read waits for the next round, or for the next publish to refresh).

use std::sync::Arc;
use std::time::Duration;

use platform::ApiError;
use serde_json::Value;

use crate::metering;
use crate::service::BotManager;
use crate::store::bots::BotRow;
use crate::store::metrics::{self, BotSnapshot, PostSnapshot};
use crate::store::usage;
use crate::tokens::Owner;
use crate::xapi::XAnswer;
use platform::config::Secret;

/// Bots claimed per round.
const BATCH: i64 = 20;
/// Posts read per bot per round.
const POSTS_PER_BOT: i64 = 50;

fn count(value: &Value, key: &str) -> i64 {
    value.get(key).and_then(Value::as_i64).unwrap_or(0)
}

/// What X's refusal of a read means for the caller: tokens X no longer accepts are the
/// bot's to fix (409, with how), a rate limit is to wait out (429); anything else is X being
/// unavailable (503).
fn refused_by_x(status: u16) -> ApiError {
    match status {
        401 | 403 => ApiError::new(
            platform::ErrorCode::Conflict,
            format!(
                "X refused the bot's tokens ({status}); store new ones with PUT \
                 /api/v1/bots/{{bot_id}}/credentials"
            ),
        ),
        429 => ApiError::new(
            platform::ErrorCode::RateLimited,
            "X's rate limit for reading this bot is spent; try again later",
        ),
        _ => ApiError::new(
            platform::ErrorCode::NotReady,
            format!("X did not answer users/me ({status})"),
        ),
    }
}

fn unavailable(what: &str) -> ApiError {
    ApiError::new(
        platform::ErrorCode::NotReady,
        format!("X did not answer {what}"),
    )
}

/// The bot's `GET /2/users/me` and the token that read it: an access token X refuses (it
/// expires after two hours) is refreshed once with the refresh token, as publishing does,
/// before X's refusal counts.
async fn read_me(
    manager: &BotManager,
    bot: &BotRow,
    owner: Owner<'_>,
) -> Result<(Secret, XAnswer), ApiError> {
    let not_ready =
        |e: crate::tokens::TokenError| ApiError::new(platform::ErrorCode::NotReady, format!("{e}"));
    let token = manager
        .tokens
        .access_token(&bot.bot_id, owner)
        .await
        .map_err(not_ready)?;
    let me = manager
        .x
        .me(&token)
        .await
        .map_err(|_| unavailable("users/me"))?;
    if me.status != 401 {
        return Ok((token, me));
    }
    let token = match manager
        .tokens
        .refresh(&bot.bot_id, owner, Some(&token))
        .await
    {
        Ok(token) => token,
        // X refused the refresh too: the bot needs new credentials (409, saying how).
        Err(crate::tokens::TokenError::NeedsReauth(_)) => return Err(refused_by_x(me.status)),
        Err(unavailable) => return Err(not_ready(unavailable)),
    };
    let me = manager
        .x
        .me(&token)
        .await
        .map_err(|_| unavailable("users/me"))?;
    Ok((token, me))
}

/// Reads and stores one bot's figures now; returns the bot's snapshot.
pub async fn snapshot_bot(manager: &BotManager, bot: &BotRow) -> Result<BotSnapshot, ApiError> {
    let owner = Owner {
        user_id: &bot.owner_id,
        team: bot.team.as_deref(),
    };
    let (token, me) = read_me(manager, bot, owner).await?;
    if !me.is_success() {
        manager.metrics.count("snapshot", "refused");
        return Err(refused_by_x(me.status));
    }
    let public = me
        .body
        .pointer("/data/public_metrics")
        .cloned()
        .unwrap_or(Value::Null);
    // Newer X answers say post_count where older ones say tweet_count.
    let posts = public
        .get("post_count")
        .or_else(|| public.get("tweet_count"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let taken_at = manager.clock.now_millis();
    let mut reads = 1;
    let snapshot = BotSnapshot {
        taken_at: platform::time_fmt::rfc3339_from_millis(taken_at),
        followers: count(&public, "followers_count"),
        following: count(&public, "following_count"),
        posts,
        listed: count(&public, "listed_count"),
    };
    metrics::insert_bot(&manager.db, &bot.bot_id, taken_at, &snapshot).await?;
    let since = taken_at - manager.settings.metrics_post_age_days as i64 * 86_400_000;
    for (post_id, x_post_id) in
        metrics::recent_published(&manager.db, &bot.bot_id, since, POSTS_PER_BOT).await?
    {
        let Ok(answer) = manager.x.lookup_post(&token, &x_post_id).await else {
            continue;
        };
        let Some(data) = answer.body.get("data").filter(|_| answer.is_success()) else {
            continue;
        };
        let public = data.get("public_metrics").cloned().unwrap_or(Value::Null);
        let private = data
            .get("non_public_metrics")
            .cloned()
            .unwrap_or(Value::Null);
        let post = PostSnapshot {
            taken_at: snapshot.taken_at.clone(),
            impressions: count(&public, "impression_count"),
            likes: count(&public, "like_count"),
            replies: count(&public, "reply_count"),
            reposts: count(&public, "retweet_count"),
            quotes: count(&public, "quote_count"),
            bookmarks: count(&public, "bookmark_count"),
            url_clicks: private.get("url_link_clicks").and_then(Value::as_i64),
            profile_clicks: private.get("user_profile_clicks").and_then(Value::as_i64),
        };
        metrics::insert_post(&manager.db, &post_id, taken_at, &post).await?;
        reads += 1;
    }
    meter_reads(manager, bot, reads, taken_at).await?;
    manager.metrics.count("snapshot", "ok");
    Ok(snapshot)
}

/// X bills each read of the bot's own data it answered: the account, and each post.
async fn meter_reads(
    manager: &BotManager,
    bot: &BotRow,
    reads: i64,
    at: i64,
) -> anyhow::Result<()> {
    let charge = metering::charge(&manager.live.get().pricing, "read", reads);
    let id = manager.clock.uuid_v7().to_string();
    let metered = usage::Metered {
        id: &id,
        bot_id: &bot.bot_id,
        team: bot.team.as_deref(),
        app: &bot.x_app,
        at,
    };
    usage::record(&manager.db, &metered, &charge).await?;
    manager.metrics.bill(&charge);
    let payers = crate::ops::budgets::Payers {
        team: bot.team.as_deref(),
        app: &bot.x_app,
    };
    crate::ops::budgets::after_billing(manager, payers).await
}

pub async fn run(manager: Arc<BotManager>, shutdown: tokio_util::sync::CancellationToken) {
    let interval_s = manager.settings.metrics_interval_seconds;
    if interval_s == 0 {
        return;
    }
    let tick = Duration::from_secs(interval_s.clamp(1, 30));
    loop {
        let claimed = metrics_round(&manager, interval_s as i64 * 1000).await;
        if let Err(err) = &claimed {
            tracing::warn!(error = %format!("{err:#}"), "metrics snapshot round failed");
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

async fn metrics_round(manager: &BotManager, interval_ms: i64) -> anyhow::Result<usize> {
    let bots = crate::store::bots::claim_metrics_due(
        &manager.db,
        manager.clock.now_millis(),
        interval_ms,
        BATCH,
    )
    .await?;
    for bot in &bots {
        if let Err(err) = snapshot_bot(manager, bot).await {
            tracing::debug!(bot_id = %bot.bot_id, error = %err.message, "no snapshot this round");
        }
    }
    Ok(bots.len())
}
