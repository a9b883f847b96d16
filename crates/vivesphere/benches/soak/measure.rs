//! What the soak samples and how it judges the samples.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{env_number, p99_ms};

/// One route's answers since the last sample.
#[derive(Default)]
pub struct Window {
    pub latencies: Vec<Duration>,
    pub errors: u64,
    pub timeouts: u64,
}

impl Window {
    /// An answer: its latency, or whether the failure was a timeout.
    pub fn count(&mut self, outcome: Result<Duration, bool>) {
        match outcome {
            Ok(latency) => self.latencies.push(latency),
            Err(true) => self.timeouts += 1,
            Err(false) => self.errors += 1,
        }
    }
}

/// Where to look: the processes, and the storage of the shape.
pub struct Probe {
    pub processes: Vec<(String, u32)>,
    pub data_dir: Option<PathBuf>,
    pub postgres_url: Option<String>,
    /// The NATS URL and the queue namespace whose streams count.
    pub jetstream: Option<(String, String)>,
}

/// One route in one sample period.
pub struct RouteSample {
    pub name: String,
    pub rate: f64,
    pub p99_ms: f64,
    pub errors: u64,
    pub timeouts: u64,
}

/// Everything measured at one moment.
pub struct Sample {
    pub at_seconds: f64,
    /// RssAnon in MiB, per process.
    pub rss_mib: Vec<(String, f64)>,
    pub open_files: Vec<(String, u64)>,
    /// The data directory, or the PostgreSQL database, in MiB.
    pub storage_mib: f64,
    pub jetstream_mib: Option<f64>,
    pub routes: Vec<RouteSample>,
}

impl Sample {
    /// The sample as one line of the table.
    pub fn row(&self) -> String {
        let rss: Vec<String> = self
            .rss_mib
            .iter()
            .map(|(name, mib)| format!("{name}={mib:.0}"))
            .collect();
        let files: u64 = self.open_files.iter().map(|(_, n)| n).sum();
        let routes: Vec<String> = self
            .routes
            .iter()
            .map(|r| {
                format!(
                    "{} {:.0}/s p99 {:.0} ms err {} to {}",
                    r.name, r.rate, r.p99_ms, r.errors, r.timeouts
                )
            })
            .collect();
        format!(
            "{:>6.0} s | RssAnon MiB {} | fds {files} | storage {:.0} MiB{} | {}",
            self.at_seconds,
            rss.join(" "),
            self.storage_mib,
            self.jetstream_mib
                .map(|mib| format!(" + JetStream {mib:.1} MiB"))
                .unwrap_or_default(),
            routes.join(" | ")
        )
    }
}

/// A soak in progress: what it probes, the routes' open windows, the samples so far.
pub struct Soak {
    pub shape: String,
    probe: Probe,
    pub route_names: Vec<String>,
    pub windows: Vec<Arc<Mutex<Window>>>,
    pub samples: Vec<Sample>,
    /// Every log-intake latency of the run, for its p99.
    /// Log intake's latencies under the mixed load, for its p99 over the run.
    pub log_latencies: Vec<Duration>,
    /// Log intake's rate alone, before the mixed load (when that phase ran).
    pub solo_log_rate: Option<f64>,
    last: std::time::Instant,
}

impl Soak {
    pub fn new(shape: &str, probe: Probe, routes: &[&str]) -> Self {
        Self {
            shape: shape.to_string(),
            probe,
            route_names: routes.iter().map(|r| r.to_string()).collect(),
            windows: routes.iter().map(|_| Arc::default()).collect(),
            samples: Vec::new(),
            log_latencies: Vec::new(),
            solo_log_rate: None,
            last: std::time::Instant::now(),
        }
    }

    /// Reads every process and the storage, and closes the routes' windows.
    pub async fn sample(&mut self, at_seconds: f64) -> Sample {
        let elapsed = self.last.elapsed().as_secs_f64().max(0.001);
        self.last = std::time::Instant::now();
        let mut routes = Vec::new();
        for (name, window) in self.route_names.iter().zip(&self.windows) {
            let mut taken = std::mem::take(&mut *window.lock().unwrap());
            if name == super::LOG_ROUTE {
                self.log_latencies.extend(&taken.latencies);
            }
            routes.push(RouteSample {
                name: name.clone(),
                rate: taken.latencies.len() as f64 / elapsed,
                p99_ms: p99_ms(&mut taken.latencies),
                errors: taken.errors,
                timeouts: taken.timeouts,
            });
        }
        let processes = &self.probe.processes;
        Sample {
            at_seconds,
            rss_mib: processes
                .iter()
                .map(|(name, pid)| (name.clone(), rss_anon_mib(*pid)))
                .collect(),
            open_files: processes
                .iter()
                .map(|(name, pid)| (name.clone(), open_files(*pid)))
                .collect(),
            storage_mib: self.storage_mib().await,
            jetstream_mib: self.jetstream_mib().await,
            routes,
        }
    }

    async fn storage_mib(&self) -> f64 {
        if let Some(dir) = &self.probe.data_dir {
            return directory_bytes(dir) as f64 / MIB;
        }
        let Some(url) = &self.probe.postgres_url else {
            return 0.0;
        };
        sqlx::any::install_default_drivers();
        let Ok(pool) = sqlx::AnyPool::connect(url).await else {
            return f64::NAN;
        };
        let size: Result<i64, _> =
            sqlx::query_scalar("SELECT pg_database_size(current_database())")
                .fetch_one(&pool)
                .await;
        pool.close().await;
        size.map_or(f64::NAN, |bytes| bytes as f64 / MIB)
    }

    /// Where the storage is: each file of the data directory, or each schema of the
    /// PostgreSQL database, largest first — so growth can be put down to one store.
    pub async fn storage_by_part(&self) -> Vec<(String, f64)> {
        let mut parts = match (&self.probe.data_dir, &self.probe.postgres_url) {
            (Some(dir), _) => {
                let mut files = Vec::new();
                file_sizes(dir, dir, &mut files);
                files
            }
            (None, Some(url)) => schema_sizes(url).await,
            (None, None) => Vec::new(),
        };
        parts.sort_by(|a, b| b.1.total_cmp(&a.1));
        parts
    }

    async fn jetstream_mib(&self) -> Option<f64> {
        use futures::StreamExt;
        let (url, namespace) = self.probe.jetstream.as_ref()?;
        let client = async_nats::connect(url.as_str()).await.ok()?;
        let jetstream = async_nats::jetstream::new(client);
        let prefix = format!("{}_", namespace.to_ascii_uppercase());
        let names: Vec<String> = jetstream
            .stream_names()
            .filter_map(|name| async move { name.ok() })
            .filter(|name| std::future::ready(name.starts_with(&prefix)))
            .collect()
            .await;
        let mut bytes = 0;
        for name in names {
            if let Ok(mut stream) = jetstream.get_stream(&name).await
                && let Ok(info) = stream.info().await
            {
                bytes += info.state.bytes;
            }
        }
        Some(bytes as f64 / MIB)
    }

    /// Every threshold the run crossed, in words.
    pub fn problems(
        &self,
        idle_before: &Sample,
        idle_after: &Sample,
        limits: &Limits,
    ) -> Vec<String> {
        let mut problems = Vec::new();
        let shape = &self.shape;
        let under_load = &self.samples;
        let warm = (under_load.len() / 6).clamp(1, 30);
        for (index, (name, _)) in idle_before.rss_mib.iter().enumerate() {
            let series: Vec<f64> = under_load.iter().map(|s| s.rss_mib[index].1).collect();
            let peak = series.iter().cloned().fold(0.0, f64::max);
            if peak > limits.max_rss_mib {
                problems.push(format!(
                    "{shape}: {name} reached {peak:.0} MiB under load (limit {:.0})",
                    limits.max_rss_mib
                ));
            }
            let steady = series.get(warm..).unwrap_or_default();
            if let Some((early, late)) = early_peak_and_late_median(steady)
                && late > early * (1.0 + limits.growth_pct / 100.0)
            {
                problems.push(format!(
                    "{shape}: {name} grew from {early:.0} to {late:.0} MiB under steady load"
                ));
            }
            let (before, after) = (idle_before.rss_mib[index].1, idle_after.rss_mib[index].1);
            let allowed = (before * (1.0 + limits.recovery_pct / 100.0)).max(before + 8.0);
            if after > allowed {
                problems.push(format!("{shape}: {name} at {after:.0} MiB after the load, {before:.0} MiB idle before it"));
            }
        }
        for route in under_load.iter().flat_map(|s| &s.routes) {
            if route.errors > 0 || route.timeouts > 0 {
                problems.push(format!(
                    "{shape}: {} had {} errors and {} timeouts in a period",
                    route.name, route.errors, route.timeouts
                ));
            }
        }
        let log_p99 = p99_ms(&mut self.log_latencies.clone());
        if log_p99 > limits.max_log_p99_ms {
            problems.push(format!(
                "{shape}: log intake p99 {log_p99:.0} ms over the run (limit {:.0})",
                limits.max_log_p99_ms
            ));
        }
        problems.extend(self.log_share_problem(limits));
        problems
    }

    /// Log intake's median rate under the mixed load against its rate alone.
    fn log_share_problem(&self, limits: &Limits) -> Option<String> {
        let solo = self.solo_log_rate?;
        let mut rates: Vec<f64> = (self.samples.iter())
            .flat_map(|s| &s.routes)
            .filter(|r| r.name == super::LOG_ROUTE)
            .map(|r| r.rate)
            .collect();
        rates.sort_by(f64::total_cmp);
        let mixed = *rates.get(rates.len() / 2)?;
        let share = 100.0 * mixed / solo.max(1.0);
        println!(
            "{}: log intake {mixed:.0}/s beside the other routes, {share:.0} % of its {solo:.0}/s alone",
            self.shape
        );
        (share < limits.min_log_share_pct).then(|| {
            format!(
                "{}: log intake kept {share:.0} % of its rate alone beside the other routes (at least {:.0})",
                self.shape, limits.min_log_share_pct
            )
        })
    }
}

/// Growth under steady load, robust to the sample-to-sample swing of a busy process (±10 %
/// here): the highest sample of the first third after warm-up against the median of the
/// last third. A flat series never crosses; memory that keeps growing does, once the
/// growth exceeds the swing. `None` with fewer than three samples.
fn early_peak_and_late_median(series: &[f64]) -> Option<(f64, f64)> {
    let third = series.len() / 3;
    if third == 0 {
        return None;
    }
    let early = series[..third].iter().cloned().fold(f64::MIN, f64::max);
    let mut late = series[series.len() - third..].to_vec();
    late.sort_by(f64::total_cmp);
    Some((early, late[late.len() / 2]))
}

/// The thresholds, from the environment.
pub struct Limits {
    pub max_rss_mib: f64,
    pub growth_pct: f64,
    pub recovery_pct: f64,
    pub max_log_p99_ms: f64,
    pub min_log_share_pct: f64,
}

impl Limits {
    pub fn from_env() -> Self {
        Self {
            max_rss_mib: env_number("SOAK_MAX_RSS_MB", 80.0),
            growth_pct: env_number("SOAK_MAX_GROWTH_PCT", 10.0),
            recovery_pct: env_number("SOAK_RECOVERY_PCT", 20.0),
            max_log_p99_ms: env_number("SOAK_MAX_LOG_P99_MS", 100.0),
            min_log_share_pct: env_number("SOAK_MIN_LOG_SHARE_PCT", 80.0),
        }
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// A process's anonymous resident memory (its heap and stacks, not the mapped binary).
fn rss_anon_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("RssAnon:"))
                .and_then(|value| {
                    value
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<f64>()
                        .ok()
                })
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn open_files(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count() as u64)
}

fn directory_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| match entry.file_type() {
                    Ok(kind) if kind.is_dir() => directory_bytes(&entry.path()),
                    _ => entry.metadata().map_or(0, |m| m.len()),
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Every file under `dir`, named relative to `root`, in MiB.
fn file_sizes(root: &Path, dir: &Path, into: &mut Vec<(String, f64)>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => file_sizes(root, &path, into),
            _ => {
                let bytes = entry.metadata().map_or(0, |m| m.len());
                let name = path
                    .strip_prefix(root)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                into.push((name, bytes as f64 / MIB));
            }
        }
    }
}

/// Each schema's tables with their indexes and TOAST, in MiB.
async fn schema_sizes(url: &str) -> Vec<(String, f64)> {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let Ok(pool) = sqlx::AnyPool::connect(url).await else {
        return Vec::new();
    };
    let rows = sqlx::query(
        "SELECT n.nspname::text AS name, \
         CAST(SUM(pg_total_relation_size(c.oid)) AS BIGINT) AS bytes \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
         GROUP BY n.nspname",
    )
    .fetch_all(&pool)
    .await
    .unwrap_or_default();
    pool.close().await;
    rows.iter()
        .filter_map(|row| {
            let name: String = row.try_get("name").ok()?;
            let bytes: Option<i64> = row.try_get("bytes").ok()?;
            Some((name, bytes.unwrap_or(0) as f64 / MIB))
        })
        .collect()
}
