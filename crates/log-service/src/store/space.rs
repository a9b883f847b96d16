//! How much each category holds, day by day, and letting go of a whole day: on PostgreSQL
//! a day is a partition (its size on disk, its estimated rows, dropped whole); on SQLite the
//! `event_space` ledger that triggers keep exact (the events' stored bytes), and a day is
//! deleted row by row, then its pages handed back to the file system.

use platform::db::{Backend, Database};
use sqlx::Row;

use super::partitions::{DAY_MS, DayPartition, Partitions};
use crate::model::Category;

/// What one category holds of one UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaySpace {
    /// The day's start, ms.
    pub day: i64,
    pub events: i64,
    pub bytes: i64,
}

/// The days `category` holds, oldest first.
pub async fn days(
    db: &Database,
    partitions: &Partitions,
    category: Category,
) -> anyhow::Result<Vec<DaySpace>> {
    match db.backend() {
        Backend::Postgres => Ok(partitions
            .days(db, category)
            .await?
            .into_iter()
            .map(|p| DaySpace {
                day: p.start,
                events: p.events,
                bytes: p.bytes,
            })
            .collect()),
        Backend::Sqlite => {
            let rows = sqlx::query(
                "SELECT day, events, bytes FROM event_space \
                 WHERE category = $1 AND events > 0 ORDER BY day",
            )
            .bind(category.as_str())
            .fetch_all(db.pool())
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(DaySpace {
                        day: row.try_get("day")?,
                        events: row.try_get("events")?,
                        bytes: row.try_get("bytes")?,
                    })
                })
                .collect()
        }
    }
}

/// Rows deleted per statement on SQLite, so a big day does not hold the one writer's turn
/// for long.
const DELETE_CHUNK: i64 = 5_000;

/// Lets go of every event `category` holds of `day`; returns how many there were.
pub async fn drop_day(
    db: &Database,
    partitions: &Partitions,
    category: Category,
    day: &DaySpace,
) -> anyhow::Result<i64> {
    match db.backend() {
        Backend::Postgres => {
            let partition = DayPartition {
                start: day.day,
                name: super::partitions::partition_name(category, day.day),
                bytes: day.bytes,
                events: day.events,
            };
            // Counted first: the statistics' estimate may not know the day's rows yet.
            let events: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) AS n FROM {}",
                partition.name
            )))
            .fetch_one(db.pool())
            .await?
            .try_get("n")?;
            partitions.drop_day(db, category, &partition).await?;
            Ok(events)
        }
        Backend::Sqlite => {
            let mut deleted = 0;
            loop {
                // Each chunk in its turn at the file, between the writers' commits.
                let _turn = db.write_turn().await;
                let n = sqlx::query(
                    "DELETE FROM events WHERE rowid IN (SELECT rowid FROM events \
                     WHERE category = $1 AND ts >= $2 AND ts < $3 LIMIT $4)",
                )
                .bind(category.as_str())
                .bind(day.day)
                .bind(day.day + DAY_MS)
                .bind(DELETE_CHUNK)
                .execute(db.pool())
                .await?
                .rows_affected();
                deleted += n as i64;
                if n < DELETE_CHUNK as u64 {
                    break;
                }
            }
            Ok(deleted)
        }
    }
}

/// On SQLite, when whole days are not enough (the current day alone is over the budget):
/// the category's oldest events go, a chunk at a time, until it holds at most `budget`
/// bytes. Returns how many went and what the category holds after. PostgreSQL keeps day
/// granularity: a deleted row there frees no file space until a vacuum, so its partitions
/// are dropped whole and its budget is sized with a day of headroom.
pub async fn trim_oldest(
    db: &Database,
    category: Category,
    budget: i64,
) -> anyhow::Result<(i64, i64)> {
    let mut deleted = 0;
    loop {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) AS held, \
             CAST(COALESCE(SUM(events), 0) AS BIGINT) AS events FROM event_space \
             WHERE category = $1",
        )
        .bind(category.as_str())
        .fetch_one(db.pool())
        .await?;
        let (held, events): (i64, i64) = (row.try_get("held")?, row.try_get("events")?);
        if held <= budget || events == 0 {
            return Ok((deleted, held));
        }
        // As many as the excess holds at the average event's size, and at least one.
        let average = (held / events).max(1);
        let excess = (held - budget + average - 1) / average;
        let turn = db.write_turn().await;
        let n = sqlx::query(
            "DELETE FROM events WHERE rowid IN (SELECT rowid FROM events \
             WHERE category = $1 ORDER BY ts LIMIT $2)",
        )
        .bind(category.as_str())
        .bind(excess.clamp(1, TRIM_CHUNK))
        .execute(db.pool())
        .await?
        .rows_affected();
        drop(turn);
        if n == 0 {
            return Ok((deleted, held));
        }
        deleted += n as i64;
    }
}

/// Events let go per statement when trimming within a day: small, so the budget is met
/// closely and the one writer's turn is short.
const TRIM_CHUNK: i64 = 1_000;

/// After deletes on SQLite: empty ledger rows go, and freed pages return to the file
/// system (the file uses incremental auto-vacuum). Nothing to do on PostgreSQL, whose
/// dropped partitions took their files with them.
pub async fn reclaim(db: &Database) -> anyhow::Result<()> {
    if db.backend() == Backend::Sqlite {
        sqlx::query("DELETE FROM event_space WHERE events <= 0")
            .execute(db.pool())
            .await?;
        sqlx::query("PRAGMA incremental_vacuum")
            .execute(db.pool())
            .await?;
    }
    Ok(())
}
