//! `cargo bench --bench logs [-- ROWS]`: the Logging numbers the issue asks for. Needs
//! `VIVESPHERE_TEST_DATABASE_URL` and `VIVESPHERE_TEST_NATS_URL`.
//!
//! 1. Sustained ingest into PostgreSQL through the queue: 200,000 user_activity events are
//!    published to JetStream first, then the release binary starts and its writer drains them;
//!    the rate is counted from the first stored row to the last.
//! 2. Query p95 over ROWS (default 10,000,000) stored events spread over 24 hours, through
//!    the HTTP API with the default one-hour window: service + time, and full-text search.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use platform::config::{QueueKind, QueueSettings};
use platform::testing::{TestPostgres, unique_name};
use serde_json::json;
use sqlx::Row;
use support::{Server, ms, percentile};

const INGEST_EVENTS: usize = 200_000;

/// One sealing key for every server started on a benchmark database, so a restarted server
/// opens the signing keys the first one made (a throwaway key for a throwaway database).
const BENCH_ENCRYPTION_KEY: &str = "YmVuY2htYXJrLW9ubHktMzItYnl0ZS1rZXktLS0tLS0=";

fn env_for(postgres: &TestPostgres, nats: &str, namespace: &str) -> Vec<(String, String)> {
    vec![
        (
            "VIVESPHERE_AUTHENTICATION__ENCRYPTION_KEY".into(),
            BENCH_ENCRYPTION_KEY.into(),
        ),
        (
            "VIVESPHERE_DATABASE__URL".into(),
            postgres.url().to_string(),
        ),
        ("VIVESPHERE_QUEUE__KIND".into(), "nats".into()),
        ("VIVESPHERE_QUEUE__URL".into(), nats.to_string()),
        ("VIVESPHERE_QUEUE__NAMESPACE".into(), namespace.to_string()),
    ]
}

async fn logging_pool(postgres: &TestPostgres) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new()
        .max_connections(2)
        .after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::Executor::execute(conn, "SET search_path TO logging").await?;
                Ok(())
            })
        })
        .connect(postgres.url())
        .await
        .unwrap()
}

async fn count(pool: &sqlx::AnyPool) -> i64 {
    sqlx::query("SELECT COUNT(*) AS n FROM events")
        .fetch_one(pool)
        .await
        .map(|row| row.get::<i64, _>("n"))
        .unwrap_or(0)
}

async fn ingest(postgres: &TestPostgres, nats: &str) {
    let namespace = unique_name();
    let queue = platform::queue::connect(&QueueSettings {
        kind: QueueKind::Nats,
        url: nats.to_string(),
        namespace: namespace.clone(),
        ..QueueSettings::default()
    })
    .await
    .unwrap();
    let now = platform::Clock::system().now_rfc3339();
    let started = Instant::now();
    let chunks: Vec<Vec<usize>> = (0..INGEST_EVENTS)
        .collect::<Vec<_>>()
        .chunks(INGEST_EVENTS / 64)
        .map(|c| c.to_vec())
        .collect();
    let publishers: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let (queue, now) = (queue.clone(), now.clone());
            tokio::spawn(async move {
                for i in chunk {
                    let id = format!("bench-{i}");
                    let event = json!({
                        "specversion": "1.0", "id": id, "source": format!("vivesphere/service-{}", i % 5),
                        "type": "vivesphere.bench.post.published", "time": now, "subject": format!("bot-{}", i % 1000),
                        "actor": format!("user-{}", i % 100), "request_id": format!("req-{i}"),
                        "data": {"action": "post.published", "actor": format!("user-{}", i % 100), "details": {"n": i}}
                    });
                    queue
                        .publish("logs.user_activity.bench", &id, event.to_string().into())
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for publisher in publishers {
        publisher.await.unwrap();
    }
    println!(
        "published {INGEST_EVENTS} events to JetStream in {:.1} s (not part of the ingest figure)",
        started.elapsed().as_secs_f64()
    );

    let server = Server::start(&env_for(postgres, nats, &namespace));
    let client = reqwest::Client::new();
    server.ready_admin_token(&client).await;
    let pool = logging_pool(postgres).await;
    let mut first: Option<(Instant, i64)> = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    let total = loop {
        let n = count(&pool).await;
        if first.is_none() && n > 0 {
            first = Some((Instant::now(), n));
        }
        // The admin's login adds one user_activity event of its own.
        if n >= INGEST_EVENTS as i64 {
            break n;
        }
        assert!(Instant::now() < deadline, "ingest stalled at {n}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (since, at_start) = first.unwrap();
    let rate = (total - at_start) as f64 / since.elapsed().as_secs_f64();
    println!(
        "ingest through JetStream into PostgreSQL: {rate:>8.0} events/s sustained ({} events)  (goal >= 50000)",
        total - at_start
    );
    pool.close().await;
    drop(server);
}

async fn populate(pool: &sqlx::AnyPool, rows: i64, now_ms: i64) {
    let day = 86_400_000_i64;
    let span = day; // every row within the last 24 hours
    let started = Instant::now();
    // Build without indexes, then index once: much faster than maintaining 7 indexes per row.
    for index in [
        "events_by_time",
        "events_by_service",
        "events_by_level",
        "events_by_user",
        "events_by_action",
        "events_by_request",
        "events_by_text",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX IF EXISTS {index}")))
            .execute(pool)
            .await
            .unwrap();
    }
    for category in ["user_activity", "debug"] {
        for d in 0..3 {
            let start = (now_ms - d * day).div_euclid(day) * day;
            let date = time::OffsetDateTime::from_unix_timestamp(start / 1000)
                .unwrap()
                .date();
            let name = format!(
                "events_{category}_{:04}{:02}{:02}",
                date.year(),
                u8::from(date.month()),
                date.day()
            );
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE TABLE IF NOT EXISTS {name} PARTITION OF events_{category} FOR VALUES FROM ({start}) TO ({})",
                start + day
            )))
            .execute(pool)
            .await
            .unwrap();
        }
    }
    let words = "ARRAY['alpha','bravo','charlie','delta','echo','foxtrot','golf','hotel','india','juliet','kilo','lima','mike','november','oscar','papa','quebec','romeo','sierra','tango']";
    let batch = 1_000_000;
    let mut done = 0;
    while done < rows {
        let n = batch.min(rows - done);
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO events (id, ts, category, service, level, user_id, action, request_id, message, data) \
             SELECT 'row-' || i, {now_ms} - (i::bigint * {span} / {rows}), \
                    CASE WHEN i % 4 = 0 THEN 'debug' ELSE 'user_activity' END, \
                    'service-' || (i % 20), CASE WHEN i % 10 = 0 THEN 'error' ELSE 'info' END, \
                    'user-' || (i % 5000), 'action.' || (i % 50), 'req-' || i, \
                    'request ' || i || ' handled by ' || ({words})[(i % 20) + 1] || ' in ' || (i % 997) || ' ms ref' || (i % 100000), \
                    '{{}}' \
             FROM generate_series({}, {}) AS i",
            done + 1,
            done + n
        )))
        .execute(pool)
        .await
        .unwrap();
        done += n;
        println!(
            "  populated {done} rows ({:.0} s)",
            started.elapsed().as_secs_f64()
        );
    }
    for statement in [
        "CREATE INDEX events_by_time ON events (ts DESC, id DESC)",
        "CREATE INDEX events_by_service ON events (service, ts DESC)",
        "CREATE INDEX events_by_level ON events (level, ts DESC)",
        "CREATE INDEX events_by_user ON events (user_id, ts DESC)",
        "CREATE INDEX events_by_action ON events (action, ts DESC)",
        "CREATE INDEX events_by_request ON events (request_id)",
        "CREATE INDEX events_by_text ON events USING GIN (to_tsvector('simple', message))",
        "ANALYZE events",
    ] {
        sqlx::query(statement).execute(pool).await.unwrap();
    }
    println!(
        "populated and indexed {rows} rows in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

async fn query_latencies(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    queries: &[String],
) -> Vec<Duration> {
    let mut latencies = Vec::new();
    for round in 0..5 {
        for query in queries {
            let started = Instant::now();
            let response = client
                .get(format!("{base}/api/v1/logs/events?{query}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert!(
                response.status().is_success(),
                "{query}: {}",
                response.status()
            );
            let body: serde_json::Value = response.json().await.unwrap();
            assert!(body["items"].is_array());
            if round > 0 {
                latencies.push(started.elapsed());
            }
        }
    }
    latencies.sort();
    latencies
}

async fn queries(postgres: &TestPostgres, nats: &str, rows: i64) {
    let namespace = unique_name();
    let now = platform::Clock::system().now_millis();
    {
        // Migrations first, from a server that is then stopped.
        let server = Server::start(&env_for(postgres, nats, &namespace));
        server.ready_admin_token(&reqwest::Client::new()).await;
    }
    let pool = logging_pool(postgres).await;
    sqlx::query("TRUNCATE events").execute(&pool).await.unwrap();
    populate(&pool, rows, now).await;
    pool.close().await;

    let server = Server::start(&env_for(postgres, nats, &namespace));
    let client = reqwest::Client::new();
    let token = Arc::new(server.ready_admin_token(&client).await);
    let hour = 3_600_000;
    let by_service: Vec<String> = (0..20)
        .map(|i| {
            let to = now - i * hour;
            format!("service=service-{i}&from={}&to={to}&limit=50", to - hour)
        })
        .collect();
    let rare: Vec<String> = (0..20)
        .map(|i| {
            let to = now - i * hour;
            format!(
                "q=ref{}&from={}&to={to}&limit=50",
                12_345 + i,
                to - 12 * hour
            )
        })
        .collect();
    let common: Vec<String> = (0..20)
        .map(|i| {
            let to = now - i * hour;
            format!("q=charlie&from={}&to={to}&limit=50", to - hour)
        })
        .collect();
    let service_lat = query_latencies(&client, &server.base, &token, &by_service).await;
    let rare_lat = query_latencies(&client, &server.base, &token, &rare).await;
    let common_lat = query_latencies(&client, &server.base, &token, &common).await;
    println!(
        "query over {rows} rows, service + 1 h window:          p50 {:7.1} ms  p95 {:7.1} ms  (goal p95 <= 100 ms)",
        ms(percentile(&service_lat, 0.5)),
        ms(percentile(&service_lat, 0.95))
    );
    println!(
        "query over {rows} rows, text (rare word, 12 h window): p50 {:7.1} ms  p95 {:7.1} ms  (goal p95 <= 500 ms)",
        ms(percentile(&rare_lat, 0.5)),
        ms(percentile(&rare_lat, 0.95))
    );
    println!(
        "query over {rows} rows, text (word in 1 of 20, 1 h):   p50 {:7.1} ms  p95 {:7.1} ms",
        ms(percentile(&common_lat, 0.5)),
        ms(percentile(&common_lat, 0.95))
    );
}

fn main() {
    let rows: i64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        platform::install_crypto_provider();
        let Ok(nats) = std::env::var("VIVESPHERE_TEST_NATS_URL") else {
            println!("logs bench: skipped (set VIVESPHERE_TEST_NATS_URL and VIVESPHERE_TEST_DATABASE_URL)");
            return;
        };
        let Some(postgres) = TestPostgres::create().await else {
            return;
        };
        ingest(&postgres, &nats).await;
        drop(postgres);
        let Some(postgres) = TestPostgres::create().await else {
            return;
        };
        queries(&postgres, &nats, rows).await;
        drop(postgres);
    });
}
