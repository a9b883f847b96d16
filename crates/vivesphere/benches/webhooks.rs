//! `cargo bench --bench webhooks [-- EVENTS SUBSCRIPTIONS]`: webhook fan-out, the figure
//! issue 22 asks for. Needs `VIVESPHERE_TEST_NATS_URL` (events are published on the queue as
//! the services publish them); with `VIVESPHERE_TEST_DATABASE_URL` a second run uses
//! PostgreSQL.
//!
//! The release binary runs every target; SUBSCRIPTIONS (default 20) global webhooks point at
//! a receiver in this process; EVENTS (default 10,000) `post.published` events from the Bot
//! Manager are published to the queue at once. Every event reaches every subscription: the
//! delivery rate is deliveries per second from the first publish to the last delivery, and
//! the lag is from an event's publication to its arrival at the receiver (the same clock) —
//! for a burst, mostly the wait behind the rest of it. Then, on the same server, events are
//! published at a steady `WEBHOOK_BENCH_PACE` per second (default 100, i.e. 2,000 deliveries
//! per second with 20 subscriptions) for 30 s: the lag there is what a receiver sees in
//! normal running.

mod support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use platform::config::{QueueKind, QueueSettings};
use serde_json::{Value, json};
use support::{Server, ServerEnv, cluster_backends, ms, percentile};

#[derive(Default)]
struct Received {
    seen: HashSet<(u32, String)>,
    duplicates: u64,
    lags: Vec<Duration>,
    last: Option<Instant>,
}

type Shared = Arc<Mutex<Received>>;

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn hook(
    State(received): State<Shared>,
    Path(subscription): Path<u32>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let now = unix_ms();
    let id = headers["webhook-id"].to_str().unwrap().to_string();
    let sent: u64 =
        serde_json::from_slice::<Value>(&body).unwrap()["data"]["details"]["sent_at_ms"]
            .as_u64()
            .unwrap_or(now);
    let mut received = received.lock().unwrap();
    if received.seen.insert((subscription, id)) {
        received
            .lags
            .push(Duration::from_millis(now.saturating_sub(sent)));
        received.last = Some(Instant::now());
    } else {
        received.duplicates += 1;
    }
    StatusCode::NO_CONTENT
}

async fn run(label: &str, backend: ServerEnv, nats: &str, events: usize, subscriptions: u32) {
    let received: Shared = Arc::default();
    let router = axum::Router::new()
        .route("/hook/{subscription}", axum::routing::post(hook))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let namespace = platform::testing::unique_name();
    let mut env = backend;
    env.extend([
        ("VIVESPHERE_QUEUE__KIND".to_string(), "nats".to_string()),
        ("VIVESPHERE_QUEUE__URL".to_string(), nats.to_string()),
        ("VIVESPHERE_QUEUE__NAMESPACE".to_string(), namespace.clone()),
    ]);
    let server = Server::start(&env);
    let client = reqwest::Client::new();
    let token = server.ready_admin_token(&client).await;
    for i in 0..subscriptions {
        let response = client
            .post(format!("{}/api/v1/logs/webhooks", server.base))
            .bearer_auth(&token)
            .json(
                &json!({"url": format!("{receiver}/hook/{i}"), "event_types": ["post.published"]}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }

    let queue = platform::queue::connect(&QueueSettings {
        kind: QueueKind::Nats,
        url: nats.to_string(),
        namespace,
        ..QueueSettings::default()
    })
    .await
    .unwrap();
    let started = Instant::now();
    publish(&queue, 0..events, None).await;
    let published = started.elapsed();
    let expected = events * subscriptions as usize;
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let got = received.lock().unwrap().seen.len();
        if got >= expected {
            break;
        }
        assert!(Instant::now() < deadline, "{got} of {expected} delivered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let span = {
        let mut received = received.lock().unwrap();
        received.lags.sort();
        received.last.unwrap() - started
    };
    let burst = report(&received);
    println!(
        "{label}: {events} events x {subscriptions} subscriptions = {expected} deliveries in {:.1} s \
         (published in {:.1} s): {:.0} deliveries/s; lag p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; \
         {} duplicate deliveries",
        span.as_secs_f64(),
        published.as_secs_f64(),
        expected as f64 / span.as_secs_f64(),
        burst.0,
        burst.1,
        burst.2,
        burst.3,
    );

    // Steady running: a paced stream the sender keeps up with.
    let pace: usize = support::env_number("WEBHOOK_BENCH_PACE", 100);
    let paced = pace * 30;
    received.lock().unwrap().lags.clear();
    publish(&queue, events..events + paced, Some(pace)).await;
    let expected = expected + paced * subscriptions as usize;
    let deadline = Instant::now() + Duration::from_secs(300);
    while received.lock().unwrap().seen.len() < expected {
        assert!(
            Instant::now() < deadline,
            "the paced stream was not delivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    received.lock().unwrap().lags.sort();
    let steady = report(&received);
    println!(
        "{label}: steady {pace} events/s x {subscriptions} = {} deliveries/s for 30 s: \
         lag p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; {} duplicate deliveries in all",
        pace * subscriptions as usize,
        steady.0,
        steady.1,
        steady.2,
        steady.3,
    );
    drop(server);
}

/// Lag p50, p99 and max (ms) of the sorted lags, and the duplicates so far.
fn report(received: &Shared) -> (f64, f64, f64, u64) {
    let received = received.lock().unwrap();
    (
        ms(percentile(&received.lags, 0.5)),
        ms(percentile(&received.lags, 0.99)),
        ms(*received.lags.last().unwrap()),
        received.duplicates,
    )
}

/// Publishes `post.published` events numbered `range` as the Bot Manager does: all at once
/// from 32 publishers, or `pace` per second from one.
async fn publish(
    queue: &std::sync::Arc<dyn platform::queue::Queue>,
    range: std::ops::Range<usize>,
    pace: Option<usize>,
) {
    let event = |i: usize| {
        json!({
            "specversion": "1.0", "id": format!("bench-{i}"), "source": "vivesphere/bot-manager",
            "type": "vivesphere.bot-manager.post.published",
            "time": platform::Clock::system().now_rfc3339(),
            "subject": format!("post-{i}"), "actor": "bot-manager", "actor_kind": "service",
            "bot_id": format!("bot-{}", i % 100), "team": "bench",
            "data": {"action": "post.published", "subject": format!("post-{i}"),
                     "message": "post.published", "details": {"sent_at_ms": unix_ms()}}
        })
        .to_string()
    };
    const SUBJECT: &str = "logs.user_activity.bot-manager";
    if let Some(pace) = pace {
        let mut tick = tokio::time::interval(Duration::from_secs(1) / pace as u32);
        for i in range {
            tick.tick().await;
            queue
                .publish(SUBJECT, &format!("bench-{i}"), event(i).into())
                .await
                .unwrap();
        }
        return;
    }
    let publishers: Vec<_> = (0..32)
        .map(|p| {
            let queue = queue.clone();
            let range = range.clone();
            tokio::spawn(async move {
                for i in range.skip(p).step_by(32) {
                    queue
                        .publish(SUBJECT, &format!("bench-{i}"), event(i).into())
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for publisher in publishers {
        publisher.await.unwrap();
    }
}

fn main() {
    let mut numbers = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<usize>().ok());
    let events = numbers.next().unwrap_or(10_000);
    let subscriptions = numbers.next().unwrap_or(20) as u32;
    let Ok(nats) = std::env::var("VIVESPHERE_TEST_NATS_URL") else {
        println!("webhooks bench: skipped (set VIVESPHERE_TEST_NATS_URL)");
        return;
    };
    let cluster = cluster_backends();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        platform::install_crypto_provider();
        // `WEBHOOK_BENCH_SHAPES=postgres` runs the PostgreSQL shape only.
        if std::env::var("WEBHOOK_BENCH_SHAPES").map_or(true, |s| s.contains("sqlite")) {
            run("sqlite + nats", Vec::new(), &nats, events, subscriptions).await;
        }
        if let Some((postgres, env, _)) = &cluster {
            let env: ServerEnv = env
                .iter()
                .filter(|(k, _)| k == "VIVESPHERE_DATABASE__URL")
                .cloned()
                .collect();
            run("postgres + nats", env, &nats, events, subscriptions).await;
            let _ = postgres;
        }
    });
    drop(cluster);
}
