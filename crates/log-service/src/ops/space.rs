//! The space report: how much each category holds, how fast it grows, and how long its
//! byte budget lasts at that rate — for admins, since it covers every team's events.

use platform::auth::Caller;
use platform::db::Backend;
use platform::http::error::ApiError;
use serde::Serialize;

use crate::model::Category;
use crate::service::Logs;
use crate::store::partitions::{DAY_MS, day_start};
use crate::store::space::{self, DaySpace};

/// Complete days the growth rate is averaged over.
const RATE_DAYS: i64 = 7;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SpaceReport {
    /// `postgres`: bytes on disk per day partition (tables, indexes, TOAST) and events as
    /// PostgreSQL's statistics estimate them (0 until a partition is first analyzed);
    /// `sqlite`: the events' stored bytes (the file's indexes come on top), events exact.
    pub measured_on: &'static str,
    pub categories: Vec<CategorySpace>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DayUsage {
    /// The UTC day's start, RFC 3339.
    pub day: String,
    pub events: i64,
    pub bytes: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CategorySpace {
    #[schema(value_type = String)]
    pub category: Category,
    pub events: i64,
    pub bytes: i64,
    /// The byte budget (`logging.retention_bytes.<category>`); null for none.
    pub budget_bytes: Option<u64>,
    pub retention_days: u32,
    /// The days held, oldest first.
    pub days: Vec<DayUsage>,
    /// Growth: the average of the last complete days held (up to 7), or today's so far
    /// stretched to a whole day when no complete day is held yet.
    pub bytes_per_day: i64,
    /// How many days until the budget is full at that rate (0: over it now); null with no
    /// budget or no growth.
    pub full_in_days: Option<f64>,
    /// How many days of events the budget holds at that rate; the category keeps the
    /// shorter of this and `retention_days`. Null with no budget or no growth.
    pub budget_holds_days: Option<f64>,
}

pub async fn report(logs: &Logs, caller: &Caller) -> Result<SpaceReport, ApiError> {
    caller.require_admin("the space report")?;
    let now = logs.clock.now_millis();
    let live = logs.live.get();
    let mut categories = Vec::new();
    for category in Category::ALL {
        let days = space::days(&logs.db, &logs.partitions, category).await?;
        let budget = category.retention_bytes(&live.retention_bytes);
        categories.push(describe(
            category,
            &days,
            (budget > 0).then_some(budget),
            category.retention_days(&live.retention),
            now,
        ));
    }
    Ok(SpaceReport {
        measured_on: match logs.db.backend() {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        },
        categories,
    })
}

fn describe(
    category: Category,
    days: &[DaySpace],
    budget: Option<u64>,
    retention_days: u32,
    now: i64,
) -> CategorySpace {
    let bytes: i64 = days.iter().map(|day| day.bytes).sum();
    let rate = bytes_per_day(days, now);
    let per_day = (rate > 0).then_some(rate as f64);
    CategorySpace {
        category,
        events: days.iter().map(|day| day.events).sum(),
        bytes,
        budget_bytes: budget,
        retention_days,
        days: days
            .iter()
            .map(|day| DayUsage {
                day: platform::time_fmt::rfc3339_from_millis(day.day),
                events: day.events,
                bytes: day.bytes,
            })
            .collect(),
        bytes_per_day: rate,
        full_in_days: budget
            .zip(per_day)
            .map(|(budget, rate)| ((budget as f64 - bytes as f64) / rate).max(0.0)),
        budget_holds_days: budget
            .zip(per_day)
            .map(|(budget, rate)| budget as f64 / rate),
    }
}

fn bytes_per_day(days: &[DaySpace], now: i64) -> i64 {
    let today = day_start(now);
    let complete: Vec<&DaySpace> = days
        .iter()
        .filter(|day| day.day < today && day.day >= today - RATE_DAYS * DAY_MS)
        .collect();
    if !complete.is_empty() {
        return complete.iter().map(|day| day.bytes).sum::<i64>() / complete.len() as i64;
    }
    let so_far: i64 = days
        .iter()
        .filter(|day| day.day == today)
        .map(|d| d.bytes)
        .sum();
    // At least an hour of the day, so a burst just after midnight is not stretched 1000×.
    let elapsed = (now - today).max(DAY_MS / 24);
    (so_far as i128 * DAY_MS as i128 / elapsed as i128) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOON: i64 = 20_000 * DAY_MS + DAY_MS / 2;

    fn day(offset: i64, bytes: i64) -> DaySpace {
        DaySpace {
            day: day_start(NOON) + offset * DAY_MS,
            events: bytes / 100,
            bytes,
        }
    }

    #[test]
    fn the_rate_is_the_average_of_the_last_complete_days() {
        // Ten days ago is outside the week; today is not complete.
        let days = [
            day(-10, 9_000),
            day(-2, 1_000),
            day(-1, 3_000),
            day(0, 50_000),
        ];
        assert_eq!(bytes_per_day(&days, NOON), 2_000);
    }

    #[test]
    fn with_only_today_the_rate_stretches_today_to_a_whole_day() {
        assert_eq!(bytes_per_day(&[day(0, 500)], NOON), 1_000);
        // Ten minutes into the day counts as an hour.
        let early = day_start(NOON) + 600_000;
        assert_eq!(bytes_per_day(&[day(0, 500)], early), 12_000);
    }

    #[test]
    fn the_budget_says_when_it_fills_and_how_many_days_it_holds() {
        let days = [day(-2, 1_000), day(-1, 1_000), day(0, 500)];
        let report = describe(Category::Debug, &days, Some(10_000), 14, NOON);
        assert_eq!(report.bytes, 2_500);
        assert_eq!(report.days.len(), 3);
        assert_eq!(report.days[2].bytes, 500);
        assert_eq!(report.bytes_per_day, 1_000);
        assert_eq!(report.full_in_days, Some(7.5));
        assert_eq!(report.budget_holds_days, Some(10.0));
        let over = describe(Category::Debug, &days, Some(2_000), 14, NOON);
        assert_eq!(over.full_in_days, Some(0.0));
        let unbounded = describe(Category::Debug, &days, None, 14, NOON);
        assert_eq!(unbounded.full_in_days, None);
        let empty = describe(Category::Debug, &[], Some(1), 14, NOON);
        assert!(empty.days.is_empty());
        assert_eq!((empty.bytes_per_day, empty.full_in_days), (0, None));
    }
}
