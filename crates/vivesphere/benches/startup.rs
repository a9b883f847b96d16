//! `cargo bench --bench startup [-- RUNS]`: start-to-ready time, idle memory and shutdown
//! time of `vivesphere serve` (every target, SQLite, embedded queue), as a real process.
//!
//! Each run starts from an empty data directory (so migrations run, the cold case), polls
//! `/health/ready` every millisecond until it answers 200, waits a second idle, reads the
//! resident set size from /proc, then sends SIGTERM and times the exit.
//! Goals from the Foundation issue: ready in ≤ 300 ms, idle RSS ≤ 40 MB.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` over HTTP/1.0; the status code, or None if nothing answers yet.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|line| line.starts_with(field))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

struct Run {
    ready: Duration,
    rss_kib: u64,
    peak_kib: u64,
    stop: Duration,
}

fn one_run(data_dir: &Path) -> Run {
    let port = free_port();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vivesphere"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .envs(support::private_data_env(data_dir))
        .current_dir(data_dir)
        .env("VIVESPHERE_TELEMETRY__LOG_LEVEL", "warn")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let ready = loop {
        if http_status(port, "/health/ready") == Some(200) {
            break started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(20), "never ready");
        if let Some(exit) = child.try_wait().unwrap() {
            panic!("exited before ready: {exit}");
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    std::thread::sleep(Duration::from_secs(1));
    let rss_kib = proc_status_kib(child.id(), "VmRSS:");
    let peak_kib = proc_status_kib(child.id(), "VmHWM:");
    let stopping = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let exit = child.wait().unwrap();
    let stop = stopping.elapsed();
    assert_eq!(exit.code(), Some(0), "SIGTERM must exit 0");
    Run {
        ready,
        rss_kib,
        peak_kib,
        stop,
    }
}

fn median<T: Copy + Ord>(values: &mut [T]) -> T {
    values.sort();
    values[values.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; a bare number sets the run count.
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(10);
    let mut results = Vec::new();
    for _ in 0..runs {
        let dir = tempfile::tempdir().unwrap();
        results.push(one_run(dir.path()));
    }
    let mut ready: Vec<Duration> = results.iter().map(|r| r.ready).collect();
    let mut rss: Vec<u64> = results.iter().map(|r| r.rss_kib).collect();
    let mut peak: Vec<u64> = results.iter().map(|r| r.peak_kib).collect();
    let mut stop: Vec<Duration> = results.iter().map(|r| r.stop).collect();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mib = |kib: u64| kib as f64 / 1024.0;
    let ready_median = median(&mut ready);
    let rss_median = median(&mut rss);
    println!("vivesphere serve (all targets, SQLite, embedded queue), {runs} cold runs");
    println!(
        "start-to-ready  median {:7.1} ms   min {:7.1} ms   max {:7.1} ms   (goal <= 300 ms)",
        ms(ready_median),
        ms(ready[0]),
        ms(*ready.last().unwrap())
    );
    println!(
        "idle RSS        median {:7.1} MiB  min {:7.1} MiB  max {:7.1} MiB  (goal <= 40 MB)",
        mib(rss_median),
        mib(rss[0]),
        mib(*rss.last().unwrap())
    );
    println!("peak RSS        median {:7.1} MiB", mib(median(&mut peak)));
    println!("SIGTERM-to-exit median {:7.1} ms", ms(median(&mut stop)));
}
