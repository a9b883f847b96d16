//! `cargo bench --bench webhooks [-- EVENTS SUBSCRIPTIONS]`: webhook fan-out, the figure
//! issue 22 asks for. Needs `VIVESPHERE_TEST_NATS_URL` (events are published on the queue as
//! the services publish them); with `VIVESPHERE_TEST_DATABASE_URL` a second run uses
//! PostgreSQL.
//!
//! The release binary runs every target; SUBSCRIPTIONS (default 20) global webhooks point at
//! a receiver in this process; EVENTS (default 10,000) `post.published` events from the Bot
//! Manager are published to the queue at once. Every event reaches every subscription: the
//! delivery rate is deliveries per second from the first publish to the last delivery, and
//! the lag is from an event's publication to its arrival at the receiver (the same clock).

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
    let publishers: Vec<_> = (0..32)
        .map(|p| {
            let queue = queue.clone();
            tokio::spawn(async move {
                for i in (p..events).step_by(32) {
                    let id = format!("bench-{i}");
                    let event = json!({
                        "specversion": "1.0", "id": id, "source": "vivesphere/bot-manager",
                        "type": "vivesphere.bot-manager.post.published",
                        "time": platform::Clock::system().now_rfc3339(),
                        "subject": format!("post-{i}"), "actor": "bot-manager", "actor_kind": "service",
                        "bot_id": format!("bot-{}", i % 100), "team": "bench",
                        "data": {"action": "post.published", "subject": format!("post-{i}"),
                                 "message": "post.published", "details": {"sent_at_ms": unix_ms()}}
                    });
                    queue
                        .publish("logs.user_activity.bot-manager", &id, event.to_string().into())
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for publisher in publishers {
        publisher.await.unwrap();
    }
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
    let mut received = received.lock().unwrap();
    let span = received.last.unwrap() - started;
    received.lags.sort();
    println!(
        "{label}: {events} events x {subscriptions} subscriptions = {expected} deliveries in {:.1} s \
         (published in {:.1} s): {:.0} deliveries/s; lag p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; \
         {} duplicate deliveries",
        span.as_secs_f64(),
        published.as_secs_f64(),
        expected as f64 / span.as_secs_f64(),
        ms(percentile(&received.lags, 0.5)),
        ms(percentile(&received.lags, 0.99)),
        ms(*received.lags.last().unwrap()),
        received.duplicates,
    );
    drop(server);
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
        run("sqlite + nats", Vec::new(), &nats, events, subscriptions).await;
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
