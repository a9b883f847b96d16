//! Charts drawn on the server as SVG (no script, no other origin): a line over time with its
//! extremes labelled, titled for screen readers, and the figures beside it as a table, one
//! row per day, for reading exact values.

use maud::{Markup, html};

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 180.0;
/// Room for the labels around the plot.
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// A point: when (Unix ms) and the figure then.
pub type Point = (i64, i64);

/// A line chart of `points` (oldest first) called `title`, its times shown in `zone`.
pub fn line_chart(id: &str, title: &str, points: &[Point], zone: &str) -> Markup {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return html! { p.muted { (title) ": no figures yet." } };
    };
    let low = points.iter().map(|p| p.1).min().unwrap_or(0);
    let high = points.iter().map(|p| p.1).max().unwrap_or(0).max(low + 1);
    let span = (last.0 - first.0).max(1) as f64;
    let x = |at: i64| LEFT + (at - first.0) as f64 / span * (WIDTH - LEFT - RIGHT);
    let y =
        |value: i64| TOP + (high - value) as f64 / (high - low) as f64 * (HEIGHT - TOP - BOTTOM);
    let line: Vec<String> = points
        .iter()
        .map(|&(at, value)| format!("{:.1},{:.1}", x(at), y(value)))
        .collect();
    let (from, to) = (day(first.0, zone), day(last.0, zone));
    let summary = format!(
        "{title}: {} on {from}, {} on {to}; lowest {low}, highest {high}",
        first.1, last.1
    );
    let base = HEIGHT - BOTTOM;
    html! {
        figure.chart {
            svg viewBox={"0 0 " (WIDTH) " " (HEIGHT)} role="img" aria-labelledby={(id) "-title"} {
                title #{(id) "-title"} { (summary) }
                line.axis x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(base) {}
                line.axis x1=(LEFT) y1=(base) x2=(WIDTH - RIGHT) y2=(base) {}
                text x=(LEFT - 6.0) y=(TOP + 10.0) text-anchor="end" { (high) }
                text x=(LEFT - 6.0) y=(base) text-anchor="end" { (low) }
                text x=(LEFT) y=(HEIGHT - 8.0) { (from) }
                text x=(WIDTH - RIGHT) y=(HEIGHT - 8.0) text-anchor="end" { (to) }
                polyline.series points=(line.join(" ")) {}
            }
            figcaption { (title) }
        }
        details {
            summary { "The figures: " (title) }
            div.table-wrap { table {
                thead { tr { th scope="col" { "Day (" (zone) ")" } th scope="col" { (title) } } }
                tbody { @for (at, value) in daily(points, zone) { tr { td { (at) } td { (value) } } } }
            } }
        }
    }
}

/// The last figure of each day, newest first.
fn daily(points: &[Point], zone: &str) -> Vec<(String, i64)> {
    let mut days: Vec<(String, i64)> = Vec::new();
    for &(at, value) in points {
        let today = day(at, zone);
        match days.last_mut() {
            Some(last) if last.0 == today => last.1 = value,
            _ => days.push((today, value)),
        }
    }
    days.reverse();
    days
}

/// The day of an instant in `zone`: "2031-03-14".
fn day(at: i64, zone: &str) -> String {
    let tz = jiff::tz::TimeZone::get(zone).unwrap_or(jiff::tz::TimeZone::UTC);
    jiff::Timestamp::from_millisecond(at)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned_datetime(tz)
        .strftime("%Y-%m-%d")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn a_chart_scales_its_line_into_the_plot_and_says_its_figures() {
        let points = [(0, 100), (DAY / 2, 150), (DAY, 120), (2 * DAY, 200)];
        let svg = line_chart("followers", "Followers", &points, "UTC").into_string();
        // The lowest figure sits on the base line, the highest at the top, first and last at
        // the plot's ends.
        assert!(svg.contains("56.0,152.0 "), "{svg}");
        assert!(svg.contains("588.0,12.0\""), "{svg}");
        assert!(
            svg.contains(
                "Followers: 100 on 1970-01-01, 200 on 1970-01-03; lowest 100, highest 200"
            )
        );
        // One row a day, the day's last figure, newest first.
        let rows: Vec<&str> = svg.matches("<tr><td>").collect();
        assert_eq!(rows.len(), 3, "{svg}");
        let newest = svg.find("<td>1970-01-03</td><td>200</td>").unwrap();
        let oldest = svg.find("<td>1970-01-01</td><td>150</td>").unwrap();
        assert!(newest < oldest, "{svg}");
    }

    #[test]
    fn a_flat_or_empty_series_draws_without_dividing_by_zero() {
        let flat = line_chart("f", "Posts", &[(5, 7)], "UTC").into_string();
        assert!(flat.contains("<polyline"), "{flat}");
        assert!(!flat.contains("NaN") && !flat.contains("inf"), "{flat}");
        let empty = line_chart("e", "Posts", &[], "UTC").into_string();
        assert!(empty.contains("Posts: no figures yet."), "{empty}");
    }
}
