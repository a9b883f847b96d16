//! A small volume for disk-full tests: a size-limited tmpfs mounted on a fresh temporary
//! directory (root only; CI runs as root), and a filler file that takes its free space.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of `megabytes` on a fresh temporary directory, unmounted when dropped.
pub struct SmallVolume {
    pub path: PathBuf,
}

impl SmallVolume {
    pub fn mount(megabytes: u32) -> Option<(Self, tempfile::TempDir)> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("mount runs");
        if !mounted.status.success() {
            // SAFETY: geteuid has no preconditions.
            let root = unsafe { libc::geteuid() } == 0;
            assert!(
                !root,
                "root could not mount a tmpfs: {}",
                String::from_utf8_lossy(&mounted.stderr)
            );
            eprintln!("=== SKIPPED: mounting a small volume needs root");
            return None;
        }
        let path = dir.path().to_path_buf();
        Some((Self { path }, dir))
    }

    /// Takes all but `leave` bytes of what is free, in one file.
    pub fn fill(&self, leave: u64) -> PathBuf {
        let free = free_bytes(&self.path);
        let filler = self.path.join("filler");
        let status = Command::new("fallocate")
            .args(["-l", &free.saturating_sub(leave).to_string()])
            .arg(&filler)
            .status()
            .unwrap();
        assert!(status.success(), "fallocate");
        filler
    }
}

impl Drop for SmallVolume {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn free_bytes(path: &Path) -> u64 {
    let output = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .nth(1)
        .and_then(|line| line.trim().parse().ok())
        .expect("df prints the free bytes")
}

/// One log batch of 100 debug events of about 4 KB each, numbered by `round`, each at the
/// time `timestamp` gives its index (Unix ms or RFC 3339): what the tests fill a volume with.
pub fn filler_batch(
    round: usize,
    timestamp: impl Fn(usize) -> serde_json::Value,
) -> serde_json::Value {
    let filler = "z".repeat(4_000);
    serde_json::Value::Array(
        (0..100)
            .map(|i| {
                serde_json::json!({"log_type": "debug", "log_data": {"timestamp": timestamp(i),
                    "message": format!("{round}-{i} {filler}"), "source": "filler"}})
            })
            .collect(),
    )
}

/// Sends filler batches (`send(round)`, round counting from 0) until the volume refuses one,
/// at most `most`; the refusal must be the full-volume answer: 503 in the standard error
/// shape, `NOT_READY`, `Retry-After: 30`. Returns how many were accepted, and the refusal.
pub async fn send_until_refused<Sent>(
    most: usize,
    mut send: impl FnMut(usize) -> Sent,
) -> (usize, serde_json::Value)
where
    Sent: std::future::Future<Output = reqwest::Response>,
{
    let mut accepted = 0;
    let refused = loop {
        assert!(accepted < most, "the volume never filled");
        let response = send(accepted).await;
        if response.status() != reqwest::StatusCode::CREATED {
            break response;
        }
        accepted += 1;
    };
    assert_eq!(refused.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()["retry-after"], "30");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error_code"], "NOT_READY", "{body}");
    (accepted, body)
}
