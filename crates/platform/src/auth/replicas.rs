//! The Authentication service at one or several base URLs (`auth.authentication_url`, comma
//! separated): a Kubernetes Service name is one URL that reaches any replica; a process that
//! knows the replicas themselves (the gateway in `vivesphere local-cluster`) lists them all.
//! Each call starts at the next URL in turn and moves on while one fails, so a replica that
//! is gone costs one failed attempt, not the call.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Base URLs of the Authentication service's replicas, tried in turn.
#[derive(Debug)]
pub struct Replicas {
    urls: Vec<String>,
    next: AtomicUsize,
}

impl Replicas {
    /// `list` is one base URL or several, comma-separated; trailing slashes are dropped.
    pub fn parse(list: &str) -> anyhow::Result<Self> {
        let urls: Vec<String> = list
            .split(',')
            .map(|url| url.trim().trim_end_matches('/').to_string())
            .filter(|url| !url.is_empty())
            .collect();
        anyhow::ensure!(!urls.is_empty(), "auth.authentication_url names no URL");
        Ok(Self {
            urls,
            next: AtomicUsize::new(0),
        })
    }

    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// `call` with each base URL, starting at the next one in turn, until one succeeds; the
    /// last failure when none does.
    pub async fn first_ok<T, F, Fut>(&self, mut call: F) -> anyhow::Result<T>
    where
        F: FnMut(&str) -> Fut,
        Fut: Future<Output = anyhow::Result<T>>,
    {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut last = None;
        for offset in 0..self.urls.len() {
            let url = &self.urls[(start + offset) % self.urls.len()];
            match call(url).await {
                Ok(value) => return Ok(value),
                Err(err) => last = Some(err),
            }
        }
        Err(last.expect("at least one URL"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_or_several_urls_are_read_and_none_is_refused() {
        let one = Replicas::parse("http://authentication:8000/").unwrap();
        assert_eq!(one.urls(), ["http://authentication:8000"]);
        let two = Replicas::parse(" http://127.0.0.1:1 , http://127.0.0.1:2/,").unwrap();
        assert_eq!(two.urls(), ["http://127.0.0.1:1", "http://127.0.0.1:2"]);
        assert!(Replicas::parse(" , ").is_err());
    }

    #[tokio::test]
    async fn a_failing_replica_is_passed_over_and_calls_take_turns() {
        let replicas = Replicas::parse("http://a,http://dead,http://c").unwrap();
        let mut answered = Vec::new();
        for _ in 0..3 {
            let url = replicas
                .first_ok(|url| {
                    let url = url.to_string();
                    async move {
                        anyhow::ensure!(url != "http://dead", "connection refused");
                        Ok(url)
                    }
                })
                .await
                .unwrap();
            answered.push(url);
        }
        // Started at a, then at dead (passed over to c), then at c.
        assert_eq!(answered, ["http://a", "http://c", "http://c"]);
        let none = Replicas::parse("http://dead").unwrap();
        let err = none
            .first_ok(|_| async { anyhow::bail!("connection refused") as anyhow::Result<()> })
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "connection refused");
    }
}
