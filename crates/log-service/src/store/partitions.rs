//! Day partitions on PostgreSQL: `events_<category>_<yyyymmdd>` under `events_<category>`,
//! made before the first event of a day is inserted and dropped whole by retention.

use std::collections::HashSet;
use std::sync::Mutex;

use platform::db::Database;
use sqlx::Row;

use crate::model::Category;

pub const DAY_MS: i64 = 86_400_000;

/// The start (ms) of the UTC day holding `ts`.
pub fn day_start(ts: i64) -> i64 {
    ts.div_euclid(DAY_MS) * DAY_MS
}

fn day_name(start: i64) -> String {
    let date = time::OffsetDateTime::from_unix_timestamp(start / 1000)
        .map(|t| t.date())
        .unwrap_or(time::Date::MIN);
    format!(
        "{:04}{:02}{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

pub(super) fn partition_name(category: Category, start: i64) -> String {
    format!("events_{}_{}", category.as_str(), day_name(start))
}

/// The day partitions known to exist, so the hot path asks PostgreSQL only once per day.
#[derive(Default)]
pub struct Partitions {
    known: Mutex<HashSet<(Category, i64)>>,
}

impl Partitions {
    /// Makes sure the partition of every (category, day) in `days` exists.
    pub async fn ensure(
        &self,
        db: &Database,
        days: impl IntoIterator<Item = (Category, i64)>,
    ) -> anyhow::Result<()> {
        let missing: Vec<(Category, i64)> = {
            let known = self.known.lock().expect("partitions lock");
            days.into_iter()
                .filter(|day| !known.contains(day))
                .collect::<HashSet<_>>()
                .into_iter()
                .collect()
        };
        for (category, start) in missing {
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS {} PARTITION OF events_{} FOR VALUES FROM ({start}) TO ({})",
                partition_name(category, start),
                category.as_str(),
                start + DAY_MS
            );
            if let Err(err) = sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(db.pool())
                .await
            {
                // Another writer may have made it a moment ago; only a real failure remains
                // once we look again.
                if !exists(db, &partition_name(category, start)).await? {
                    return Err(err.into());
                }
            }
            self.known
                .lock()
                .expect("partitions lock")
                .insert((category, start));
        }
        Ok(())
    }

    /// The day partitions of `category`, oldest first, with their size on disk (table,
    /// indexes, TOAST) and PostgreSQL's estimate of their rows. A partition dropped while
    /// this reads (a retention pass) has no size (`pg_total_relation_size` is NULL for a
    /// relation that is gone) and is left out: it is no longer held.
    pub async fn days(
        &self,
        db: &Database,
        category: Category,
    ) -> anyhow::Result<Vec<DayPartition>> {
        let prefix = format!("events_{}_", category.as_str());
        let rows = sqlx::query(
            "SELECT c.relname::text AS name, pg_total_relation_size(c.oid)::bigint AS bytes, \
             GREATEST(c.reltuples, 0)::bigint AS events FROM pg_inherits i \
             JOIN pg_class c ON c.oid = i.inhrelid \
             JOIN pg_class p ON p.oid = i.inhparent \
             JOIN pg_namespace n ON n.oid = p.relnamespace \
             WHERE p.relname = $1 AND n.nspname = current_schema()",
        )
        .bind(format!("events_{}", category.as_str()))
        .fetch_all(db.pool())
        .await?;
        let mut days = Vec::new();
        for row in rows {
            let name: String = row.try_get("name")?;
            let Some(bytes) = row.try_get::<Option<i64>, _>("bytes")? else {
                continue;
            };
            if let Some(start) = name.strip_prefix(&prefix).and_then(parse_day) {
                days.push(DayPartition {
                    start,
                    name,
                    bytes,
                    events: row.try_get("events")?,
                });
            }
        }
        days.sort_by_key(|day| day.start);
        Ok(days)
    }

    /// Drops the partitions of `category` that end at or before `cutoff` (ms). Returns their
    /// names.
    pub async fn drop_older(
        &self,
        db: &Database,
        category: Category,
        cutoff: i64,
    ) -> anyhow::Result<Vec<String>> {
        let mut dropped = Vec::new();
        for day in self.days(db, category).await? {
            if day.start + DAY_MS <= cutoff {
                self.drop_day(db, category, &day).await?;
                dropped.push(day.name);
            }
        }
        Ok(dropped)
    }

    /// Drops one day partition of `category`, with every event in it.
    pub async fn drop_day(
        &self,
        db: &Database,
        category: Category,
        day: &DayPartition,
    ) -> anyhow::Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP TABLE IF EXISTS {}",
            day.name
        )))
        .execute(db.pool())
        .await?;
        self.known
            .lock()
            .expect("partitions lock")
            .remove(&(category, day.start));
        Ok(())
    }
}

/// One day partition as PostgreSQL sees it.
#[derive(Debug, Clone)]
pub struct DayPartition {
    /// The day's start, ms.
    pub start: i64,
    pub name: String,
    pub bytes: i64,
    pub events: i64,
}

async fn exists(db: &Database, name: &str) -> anyhow::Result<bool> {
    Ok(sqlx::query("SELECT to_regclass($1)::text AS found")
        .bind(name)
        .fetch_one(db.pool())
        .await?
        .try_get::<Option<String>, _>("found")?
        .is_some())
}

/// `yyyymmdd` → the day's start in ms.
fn parse_day(day: &str) -> Option<i64> {
    if day.len() != 8 || !day.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i32 = day[..4].parse().ok()?;
    let month: u8 = day[4..6].parse().ok()?;
    let dom: u8 = day[6..].parse().ok()?;
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, dom).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_and_names_round_trip() {
        let ts = 1_800_000_123_456; // 2027-01-15T08:02:03Z
        let start = day_start(ts);
        assert_eq!(start % DAY_MS, 0);
        assert!(start <= ts && ts < start + DAY_MS);
        assert_eq!(day_name(start), "20270115");
        assert_eq!(parse_day("20270115"), Some(start));
        assert_eq!(
            partition_name(Category::Debug, start),
            "events_debug_20270115"
        );
        assert_eq!(parse_day("2027011"), None);
        assert_eq!(parse_day("20271315"), None);
    }

    /// The space report and a retention pass run side by side: a partition the pass drops
    /// while the report reads the catalog is left out of what is held, never an error.
    #[tokio::test]
    async fn a_partition_dropped_while_the_days_are_read_is_left_out() {
        let Some(pg) = platform::testing::TestPostgres::create().await else {
            return;
        };
        let settings = platform::config::DatabaseSettings {
            url: Some(platform::config::Secret::new(pg.url())),
            ..Default::default()
        };
        let db = Database::connect(crate::NAME, &settings).await.unwrap();
        db.migrate(&crate::MIGRATIONS).await.unwrap();
        let today = day_start(1_800_000_123_456);
        let yesterday = today - DAY_MS;
        let partitions = Partitions::default();
        partitions
            .ensure(
                &db,
                [(Category::Debug, yesterday), (Category::Debug, today)],
            )
            .await
            .unwrap();
        // The pass's drop, not yet committed: it holds the partition's lock.
        let mut dropping = db.pool().begin().await.unwrap();
        let drop = format!("DROP TABLE {}", partition_name(Category::Debug, yesterday));
        sqlx::query(sqlx::AssertSqlSafe(drop))
            .execute(&mut *dropping)
            .await
            .unwrap();
        let reader = db.clone();
        let reading =
            tokio::spawn(async move { Partitions::default().days(&reader, Category::Debug).await });
        // The report saw the partition in the catalog and waits for its lock.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let waiting: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM pg_locks WHERE NOT granted \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            )
            .fetch_one(db.pool())
            .await
            .unwrap()
            .try_get("n")
            .unwrap();
            if waiting > 0 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the read never waited"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        dropping.commit().await.unwrap();
        let days = reading.await.unwrap().unwrap();
        let starts: Vec<i64> = days.iter().map(|day| day.start).collect();
        assert_eq!(starts, vec![today]);
    }
}
