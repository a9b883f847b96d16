//! The soak's plots: one SVG line chart per series, written by hand (a few polylines, axes
//! and a legend need no plotting library).

use std::fmt::Write as _;
use std::path::Path;

use super::measure::Soak;

/// One named line of (seconds, value) points.
type Line = (String, Vec<(f64, f64)>);

/// Writes rss.svg, open-files.svg, storage.svg, rate.svg and p99.svg into `dir`.
pub fn write_all(dir: &Path, soak: &Soak) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let samples = &soak.samples;
    let per_process = |pick: &dyn Fn(&super::Sample, usize) -> f64| -> Vec<Line> {
        let names = samples
            .first()
            .map(|s| s.rss_mib.clone())
            .unwrap_or_default();
        names
            .iter()
            .enumerate()
            .map(|(i, (name, _))| {
                (
                    name.clone(),
                    samples.iter().map(|s| (s.at_seconds, pick(s, i))).collect(),
                )
            })
            .collect()
    };
    let per_route = |pick: &dyn Fn(&super::measure::RouteSample) -> f64| -> Vec<Line> {
        soak.route_names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                (
                    name.clone(),
                    samples
                        .iter()
                        .map(|s| (s.at_seconds, pick(&s.routes[i])))
                        .collect(),
                )
            })
            .collect()
    };
    let mut storage: Vec<Line> = vec![(
        "data directory or database".into(),
        samples
            .iter()
            .map(|s| (s.at_seconds, s.storage_mib))
            .collect(),
    )];
    if samples.iter().any(|s| s.jetstream_mib.is_some()) {
        storage.push((
            "JetStream streams".into(),
            samples
                .iter()
                .map(|s| (s.at_seconds, s.jetstream_mib.unwrap_or(0.0)))
                .collect(),
        ));
    }
    let charts: [(&str, &str, Vec<Line>); 5] = [
        (
            "rss.svg",
            "RssAnon (MiB)",
            per_process(&|s, i| s.rss_mib[i].1),
        ),
        (
            "open-files.svg",
            "open files",
            per_process(&|s, i| s.open_files[i].1 as f64),
        ),
        ("storage.svg", "storage (MiB)", storage),
        ("rate.svg", "answers per second", per_route(&|r| r.rate)),
        ("p99.svg", "p99 latency (ms)", per_route(&|r| r.p99_ms)),
    ];
    for (file, title, lines) in charts {
        std::fs::write(
            dir.join(file),
            svg(&format!("{} — {title}", soak.shape), &lines),
        )?;
    }
    Ok(())
}

const WIDTH: f64 = 900.0;
/// Room on the right for the legend.
const LEGEND: f64 = 200.0;
const HEIGHT: f64 = 400.0;
const LEFT: f64 = 60.0;
const BOTTOM: f64 = 40.0;
const TOP: f64 = 30.0;
const COLOURS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// A line chart of `lines` from zero, time along the bottom, with its title and a legend.
fn svg(title: &str, lines: &[Line]) -> String {
    let finite = |v: f64| if v.is_finite() { v } else { 0.0 };
    let points = lines.iter().flat_map(|(_, p)| p.iter());
    let x_max = points.clone().map(|p| p.0).fold(1.0, f64::max);
    let y_max = points.map(|p| finite(p.1)).fold(1.0, f64::max) * 1.1;
    let x = |v: f64| LEFT + v / x_max * (WIDTH - LEFT - LEGEND);
    let y = |v: f64| HEIGHT - BOTTOM - finite(v) / y_max * (HEIGHT - BOTTOM - TOP);
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/><text x="{LEFT}" y="18" font-size="14">{}</text>"#,
        escape(title)
    );
    let axes = [
        (x(0.0), y(0.0), x(x_max), y(0.0)),
        (x(0.0), y(0.0), x(0.0), y(y_max)),
    ];
    for (x1, y1, x2, y2) in axes {
        let _ = write!(
            out,
            r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="black"/>"#
        );
    }
    for step in 0..=4 {
        let value = y_max * f64::from(step) / 4.0;
        let seconds = x_max * f64::from(step) / 4.0;
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{value:.0}</text><text x="{:.1}" y="{:.1}" text-anchor="middle">{seconds:.0} s</text>"#,
            LEFT - 6.0,
            y(value) + 4.0,
            x(seconds),
            HEIGHT - BOTTOM + 16.0
        );
    }
    for (i, (name, points)) in lines.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = points
            .iter()
            .map(|(px, py)| format!("{:.1},{:.1}", x(*px), y(*py)))
            .collect();
        let _ = write!(
            out,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/><text x="{:.1}" y="{:.1}" fill="{colour}">{}</text>"#,
            path.join(" "),
            WIDTH - LEGEND + 15.0,
            TOP + 14.0 * (i as f64 + 1.0),
            escape(name)
        );
    }
    out.push_str("</svg>\n");
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
