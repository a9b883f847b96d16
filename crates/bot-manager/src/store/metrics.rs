//! Metric snapshots: a bot's audience and each published post's counters over time.

use platform::db::Database;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BotSnapshot {
    /// RFC 3339.
    pub taken_at: String,
    pub followers: i64,
    pub following: i64,
    pub posts: i64,
    pub listed: i64,
}

#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct PostSnapshot {
    pub taken_at: String,
    pub impressions: i64,
    pub likes: i64,
    pub replies: i64,
    pub reposts: i64,
    pub quotes: i64,
    pub bookmarks: i64,
    /// From the non-public metrics, which X gives the author only.
    pub url_clicks: Option<i64>,
    pub profile_clicks: Option<i64>,
}

pub async fn insert_bot(
    db: &Database,
    bot_id: &str,
    at: i64,
    s: &BotSnapshot,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO bot_metrics (bot_id, taken_at, followers, following, posts, listed) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (bot_id, taken_at) DO NOTHING",
    )
    .bind(bot_id)
    .bind(at)
    .bind(s.followers)
    .bind(s.following)
    .bind(s.posts)
    .bind(s.listed)
    .execute(db.pool())
    .await?;
    Ok(())
}

pub async fn insert_post(
    db: &Database,
    post_id: &str,
    at: i64,
    s: &PostSnapshot,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO post_metrics (post_id, taken_at, impressions, likes, replies, reposts, quotes, \
         bookmarks, url_clicks, profile_clicks) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (post_id, taken_at) DO NOTHING",
    )
    .bind(post_id)
    .bind(at)
    .bind(s.impressions)
    .bind(s.likes)
    .bind(s.replies)
    .bind(s.reposts)
    .bind(s.quotes)
    .bind(s.bookmarks)
    .bind(s.url_clicks)
    .bind(s.profile_clicks)
    .execute(db.pool())
    .await?;
    Ok(())
}

pub async fn bot_range(
    db: &Database,
    bot_id: &str,
    from: i64,
    to: i64,
    limit: i64,
) -> anyhow::Result<Vec<BotSnapshot>> {
    let rows = snapshots_between(db, SnapshotsOf::Bot, bot_id, (from, to), limit).await?;
    Ok(rows
        .iter()
        .map(BotSnapshot::read)
        .collect::<Result<_, _>>()?)
}

pub async fn post_range(
    db: &Database,
    post_id: &str,
    from: i64,
    to: i64,
    limit: i64,
) -> anyhow::Result<Vec<PostSnapshot>> {
    let rows = snapshots_between(db, SnapshotsOf::Post, post_id, (from, to), limit).await?;
    Ok(rows
        .iter()
        .map(PostSnapshot::read)
        .collect::<Result<_, _>>()?)
}

impl BotSnapshot {
    fn read(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            taken_at: platform::time_fmt::rfc3339_from_millis(row.try_get("taken_at")?),
            followers: row.try_get("followers")?,
            following: row.try_get("following")?,
            posts: row.try_get("posts")?,
            listed: row.try_get("listed")?,
        })
    }
}

impl PostSnapshot {
    fn read(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            taken_at: platform::time_fmt::rfc3339_from_millis(row.try_get("taken_at")?),
            impressions: row.try_get("impressions")?,
            likes: row.try_get("likes")?,
            replies: row.try_get("replies")?,
            reposts: row.try_get("reposts")?,
            quotes: row.try_get("quotes")?,
            bookmarks: row.try_get("bookmarks")?,
            url_clicks: row.try_get("url_clicks")?,
            profile_clicks: row.try_get("profile_clicks")?,
        })
    }
}

#[derive(Clone, Copy)]
enum SnapshotsOf {
    Bot,
    Post,
}

/// The snapshots of one bot or post taken in `[from, to)`, oldest first.
async fn snapshots_between(
    db: &Database,
    of: SnapshotsOf,
    id: &str,
    (from, to): (i64, i64),
    limit: i64,
) -> anyhow::Result<Vec<AnyRow>> {
    let sql = match of {
        SnapshotsOf::Bot => {
            "SELECT * FROM bot_metrics WHERE bot_id = $1 AND taken_at >= $2 AND taken_at < $3 \
             ORDER BY taken_at LIMIT $4"
        }
        SnapshotsOf::Post => {
            "SELECT * FROM post_metrics WHERE post_id = $1 AND taken_at >= $2 AND taken_at < $3 \
             ORDER BY taken_at LIMIT $4"
        }
    };
    Ok(sqlx::query(sql)
        .bind(id)
        .bind(from)
        .bind(to)
        .bind(limit)
        .fetch_all(db.pool())
        .await?)
}

/// Published posts of the bot younger than `since`, newest first, for snapshots.
pub async fn recent_published(
    db: &Database,
    bot_id: &str,
    since: i64,
    limit: i64,
) -> anyhow::Result<Vec<(String, String)>> {
    sqlx::query(
        "SELECT post_id, x_post_id FROM posts WHERE bot_id = $1 AND state = 'published' \
         AND published_at >= $2 AND x_post_id IS NOT NULL ORDER BY published_at DESC LIMIT $3",
    )
    .bind(bot_id)
    .bind(since)
    .bind(limit)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|row| Ok((row.try_get("post_id")?, row.try_get("x_post_id")?)))
    .collect()
}
