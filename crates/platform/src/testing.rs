//! Test support (feature `testing`): a fresh PostgreSQL database per test and a private NATS
//! namespace per test, so suites run in parallel against the real servers. Each says loudly
//! when its server is not configured and the test is skipped.

use crate::config::{QueueKind, QueueSettings};

pub const DATABASE_URL_VAR: &str = "VIVESPHERE_TEST_DATABASE_URL";
pub const NATS_URL_VAR: &str = "VIVESPHERE_TEST_NATS_URL";
/// `queue.stream_max_bytes` for tests on a shared NATS (64 MiB): JetStream reserves each
/// stream's limit on the server, and many tests' streams at the production size would not
/// fit a test server's store.
pub const TEST_STREAM_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Written straight to the process's stderr: the test harness captures `eprintln!` of
/// passing tests, and a skip must be seen.
fn skip_notice(var: &str, what: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "=== SKIPPED {what}: {var} is not set; set it to run this test against a real server ==="
    );
}

/// A unique lowercase name such as `t0193f3a1…`, valid as a database, schema or subject token.
pub fn unique_name() -> String {
    format!("t{}", uuid::Uuid::now_v7().simple())
}

/// A database created for one test and dropped (forcefully) when the value is dropped.
pub struct TestPostgres {
    admin_url: String,
    name: String,
    url: String,
}

/// `postgres://u@h:5432/admin?x` → (`postgres://u@h:5432/`, `?x`).
fn split_database(url: &str) -> (String, String) {
    let (url, query) = match url.split_once('?') {
        Some((url, query)) => (url, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let base = match url[authority_start..].find('/') {
        Some(i) => &url[..authority_start + i],
        None => url,
    };
    (format!("{base}/"), query)
}

impl TestPostgres {
    /// Creates a database, or returns `None` (after a loud notice) when no server is set.
    pub async fn create() -> Option<Self> {
        let Ok(admin_url) = std::env::var(DATABASE_URL_VAR) else {
            skip_notice(DATABASE_URL_VAR, "PostgreSQL test");
            return None;
        };
        sqlx::any::install_default_drivers();
        let name = unique_name();
        let admin = sqlx::AnyPool::connect(&admin_url)
            .await
            .unwrap_or_else(|err| panic!("{DATABASE_URL_VAR}={admin_url}: cannot connect: {err}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&admin)
            .await
            .expect("CREATE DATABASE");
        admin.close().await;
        let (base, query) = split_database(&admin_url);
        let url = format!("{base}{name}{query}");
        Some(Self {
            admin_url,
            name,
            url,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime; a thread with its own runtime can still block.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let admin = sqlx::AnyPool::connect(&admin_url).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&admin)
                .await?;
                admin.close().await;
                anyhow::Ok(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: test database {} was not dropped", self.name);
        }
    }
}

/// Queue settings for a private NATS namespace, or `None` (after a loud notice).
pub fn nats_settings() -> Option<QueueSettings> {
    let Ok(url) = std::env::var(NATS_URL_VAR) else {
        skip_notice(NATS_URL_VAR, "NATS test");
        return None;
    };
    Some(QueueSettings {
        kind: QueueKind::Nats,
        url,
        namespace: unique_name(),
        stream_max_bytes: TEST_STREAM_MAX_BYTES,
        ..QueueSettings::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_is_replaced_keeping_credentials_and_options() {
        assert_eq!(
            split_database("postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
            (
                "postgres://postgres@127.0.0.1:5432/".to_string(),
                "?sslmode=disable".to_string()
            )
        );
        assert_eq!(
            split_database("postgres://u:p@h"),
            ("postgres://u:p@h/".to_string(), String::new())
        );
    }
}
