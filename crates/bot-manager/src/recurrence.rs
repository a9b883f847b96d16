//! A recurring post's rule: every N days, or every N weeks on chosen weekdays, at a wall-clock
//! time in the bot's time zone, from a first day to an end (a last day or a number of
//! occurrences — a rule always ends). Its occurrences are instants in order; the text of each
//! is one of the rule's variants in turn, with `{date}` (the local date) and `{n}` (the
//! occurrence's number) filled in. Pure: the Bot Manager materialises occurrences ahead of
//! time (`ops::recurrences`).

use std::collections::HashMap;

use platform::ApiError;
use serde::{Deserialize, Serialize};

/// Most occurrences one rule may have.
pub const MAX_OCCURRENCES: usize = 1000;
/// Most text variants.
pub const MAX_VARIANTS: usize = 50;

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Every {
    Day,
    Week,
}

/// When a recurring post goes out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"every": "week", "interval": 1, "days": ["mon", "thu"], "at": "09:00", "starts_on": "2031-03-17", "until": "2031-06-30"}))]
pub struct Rule {
    /// `day` or `week`.
    pub every: Every,
    /// Every this many days or weeks (1 to 52); default 1.
    #[serde(default = "one")]
    pub interval: u32,
    /// For `week`: the weekdays (mon … sun).
    #[serde(default)]
    pub days: Vec<String>,
    /// The wall-clock time in the bot's time zone, `HH:MM`.
    pub at: String,
    /// The first day (a local date, `YYYY-MM-DD`).
    pub starts_on: String,
    /// The last day, inclusive (one of `until` and `count`).
    pub until: Option<String>,
    /// How many times (one of `until` and `count`), at most 1000.
    pub count: Option<u32>,
}

fn one() -> u32 {
    1
}

/// One occurrence: its number (0-based), the instant (unix ms) and the local date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    pub index: usize,
    pub at: i64,
    pub date: jiff::civil::Date,
}

fn date(raw: &str, field: &str) -> Result<jiff::civil::Date, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::invalid_data(format!("rule.{field}: a date, YYYY-MM-DD")))
}

fn time_of_day(raw: &str) -> Result<jiff::civil::Time, ApiError> {
    let bad = || ApiError::invalid_data("rule.at: a wall-clock time, HH:MM");
    let (h, m) = raw.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (i8, i8) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    jiff::civil::Time::new(h, m, 0, 0).map_err(|_| bad())
}

impl Rule {
    /// Refuses a rule that cannot work, naming the field.
    pub fn check(&self) -> Result<(), ApiError> {
        if !(1..=52).contains(&self.interval) {
            return Err(ApiError::invalid_data("rule.interval: 1 to 52"));
        }
        time_of_day(&self.at)?;
        let first = date(&self.starts_on, "starts_on")?;
        match (&self.until, self.count) {
            (Some(until), None) if date(until, "until")? >= first => {}
            (Some(_), None) => {
                return Err(ApiError::invalid_data("rule.until: on or after starts_on"));
            }
            (None, Some(count)) if (1..=MAX_OCCURRENCES as u32).contains(&count) => {}
            (None, Some(_)) => return Err(ApiError::invalid_data("rule.count: 1 to 1000")),
            _ => {
                return Err(ApiError::invalid_data(
                    "rule: a recurring post ends — give exactly one of until and count",
                ));
            }
        }
        match self.every {
            Every::Week if self.days.is_empty() || self.days.len() > 7 => Err(
                ApiError::invalid_data("rule.days: the weekdays of a weekly rule (mon … sun)"),
            ),
            Every::Week if self.days.iter().any(|d| !DAYS.contains(&d.as_str())) => Err(
                ApiError::invalid_data("rule.days: mon, tue, wed, thu, fri, sat or sun"),
            ),
            Every::Day if !self.days.is_empty() => {
                Err(ApiError::invalid_data("rule.days: only for every: week"))
            }
            _ => Ok(()),
        }
    }

    /// Whether a local date is one of the rule's days (before any end).
    fn matches(&self, first: jiff::civil::Date, day: jiff::civil::Date) -> bool {
        let days_since = (day - first).get_days() as i64;
        match self.every {
            Every::Day => days_since % self.interval as i64 == 0,
            Every::Week => {
                let monday = |d: jiff::civil::Date| {
                    d - jiff::Span::new().days(d.weekday().to_monday_zero_offset() as i64)
                };
                let weeks = (monday(day) - monday(first)).get_days() as i64 / 7;
                let weekday = DAYS[day.weekday().to_monday_zero_offset() as usize];
                weeks % self.interval as i64 == 0 && self.days.iter().any(|d| d == weekday)
            }
        }
    }

    /// Every occurrence in order, in `time_zone` (a wall-clock time a daylight-saving change
    /// skips moves forward, as clocks do). `Err` when the rule has more than 1000.
    pub fn occurrences(&self, time_zone: &str) -> Result<Vec<Occurrence>, ApiError> {
        self.check()?;
        let tz = jiff::tz::TimeZone::get(time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
        let first = date(&self.starts_on, "starts_on")?;
        let until = self
            .until
            .as_deref()
            .map(|u| date(u, "until"))
            .transpose()?;
        let count = self.count.map(|c| c as usize).unwrap_or(usize::MAX);
        let at = time_of_day(&self.at)?;
        let mut found = Vec::new();
        let mut day = first;
        while found.len() < count && until.is_none_or(|u| day <= u) {
            if self.matches(first, day) {
                if found.len() == MAX_OCCURRENCES {
                    return Err(ApiError::invalid_data(
                        "rule: at most 1000 occurrences; end it sooner",
                    ));
                }
                let instant = day
                    .to_datetime(at)
                    .to_zoned_datetime(tz.clone())
                    .map_err(|_| ApiError::invalid_data("rule: a time outside the calendar"))?;
                found.push(Occurrence {
                    index: found.len(),
                    at: instant.timestamp().as_millisecond(),
                    date: day,
                });
            }
            day = day
                .tomorrow()
                .map_err(|_| ApiError::invalid_data("rule: a date outside the calendar"))?;
        }
        Ok(found)
    }
}

/// The text of an occurrence: the variants in turn, `{date}` and `{n}` (1-based) filled in.
pub fn render(variants: &[String], occurrence: &Occurrence) -> String {
    let template = &variants[occurrence.index % variants.len()];
    template
        .replace("{date}", &occurrence.date.to_string())
        .replace("{n}", &(occurrence.index + 1).to_string())
}

/// X refuses the same text from one account while the earlier post is up, so a rule whose
/// occurrences would repeat a text is refused: the first two occurrences (1-based) that would.
pub fn first_repeat(variants: &[String], occurrences: &[Occurrence]) -> Option<(usize, usize)> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for occurrence in occurrences {
        let text = x_text::normalize(&render(variants, occurrence));
        if let Some(earlier) = seen.insert(text, occurrence.index) {
            return Some((earlier + 1, occurrence.index + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(json: serde_json::Value) -> Rule {
        serde_json::from_value(json).unwrap()
    }

    fn utc(ms: i64) -> String {
        jiff::Timestamp::from_millisecond(ms).unwrap().to_string()
    }

    #[test]
    fn every_second_day_until_a_last_day() {
        let r = rule(
            serde_json::json!({"every": "day", "interval": 2, "at": "12:00",
            "starts_on": "2031-03-14", "until": "2031-03-20"}),
        );
        let at: Vec<String> = r
            .occurrences("UTC")
            .unwrap()
            .iter()
            .map(|o| utc(o.at))
            .collect();
        assert_eq!(
            at,
            [
                "2031-03-14T12:00:00Z",
                "2031-03-16T12:00:00Z",
                "2031-03-18T12:00:00Z",
                "2031-03-20T12:00:00Z"
            ]
        );
    }

    #[test]
    fn weekly_on_chosen_days_keeps_the_wall_clock_across_daylight_saving() {
        // Berlin moves to summer time on Sunday 2031-03-30.
        let r = rule(
            serde_json::json!({"every": "week", "days": ["mon", "fri"], "at": "09:00",
            "starts_on": "2031-03-25", "count": 4}),
        );
        let at: Vec<String> = r
            .occurrences("Europe/Berlin")
            .unwrap()
            .iter()
            .map(|o| utc(o.at))
            .collect();
        assert_eq!(
            at,
            [
                "2031-03-28T08:00:00Z",
                "2031-03-31T07:00:00Z",
                "2031-04-04T07:00:00Z",
                "2031-04-07T07:00:00Z"
            ]
        );
    }

    #[test]
    fn every_other_week_counts_weeks_from_the_first_days_week() {
        let r = rule(
            serde_json::json!({"every": "week", "interval": 2, "days": ["wed"],
            "at": "18:30", "starts_on": "2031-03-14", "count": 3}),
        );
        let dates: Vec<String> = r
            .occurrences("UTC")
            .unwrap()
            .iter()
            .map(|o| o.date.to_string())
            .collect();
        // 2031-03-14 is a Friday: its week's Wednesday is past; two weeks on, and so on.
        assert_eq!(dates, ["2031-03-26", "2031-04-09", "2031-04-23"]);
    }

    #[test]
    fn a_rule_without_an_end_or_with_too_many_occurrences_is_refused() {
        let no_end =
            rule(serde_json::json!({"every": "day", "at": "09:00", "starts_on": "2031-03-14"}));
        assert!(no_end.check().unwrap_err().message.contains("ends"));
        let long = rule(serde_json::json!({"every": "day", "at": "09:00",
            "starts_on": "2031-03-14", "until": "2040-01-01"}));
        assert!(
            long.occurrences("UTC")
                .unwrap_err()
                .message
                .contains("1000")
        );
        let both = rule(serde_json::json!({"every": "day", "at": "09:00",
            "starts_on": "2031-03-14", "until": "2031-04-01", "count": 3}));
        assert!(both.check().is_err());
        for bad in ["9:00", "24:00", "12:60", "noon"] {
            let r = rule(serde_json::json!({"every": "day", "at": bad,
                "starts_on": "2031-03-14", "count": 3}));
            assert!(
                r.check().unwrap_err().message.starts_with("rule.at"),
                "{bad}"
            );
        }
        let weekly_without_days = rule(serde_json::json!({"every": "week", "at": "09:00",
            "starts_on": "2031-03-14", "count": 3}));
        assert!(
            weekly_without_days
                .check()
                .unwrap_err()
                .message
                .starts_with("rule.days")
        );
    }

    #[test]
    fn texts_rotate_with_date_and_number_and_repeats_are_found() {
        let r = rule(serde_json::json!({"every": "day", "at": "09:00",
            "starts_on": "2031-03-14", "count": 3}));
        let occurrences = r.occurrences("UTC").unwrap();
        let dated = vec!["Tides for {date} (#{n})".to_string()];
        assert_eq!(render(&dated, &occurrences[2]), "Tides for 2031-03-16 (#3)");
        assert_eq!(first_repeat(&dated, &occurrences), None);
        let two = vec!["Morning!".to_string(), "Good morning!".to_string()];
        assert_eq!(render(&two, &occurrences[1]), "Good morning!");
        assert_eq!(first_repeat(&two, &occurrences), Some((1, 3)));
    }
}
