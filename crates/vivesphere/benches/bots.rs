//! `cargo bench --bench bots`: the Bot Manager numbers the issue asks for, against the
//! release binary with a fake X in this process (X's limits raised out of the way).
//!
//! 1. Throughput: N posts all due at one instant; end-to-end publishes per second from that
//!    instant until the fake X has received the last one (relay → queue → worker → lease →
//!    token → POST /2/tweets → outcome written and recorded as user activity).
//! 2. Lateness: N posts scheduled over a window; how long after its run_at each reached X
//!    (p50, p99, max).
//! 3. Threads: a thread of 25 parts created to publish now; how long from the create until
//!    its last part reached X (each part waits for the one before: 25 sends in a row).
//! 4. Import: 10,000 posts over the bots as one JSON body, a dry run and then the import
//!    (every row checked; one transaction), each timed end to end over HTTP.
//! 5. Bot import: 1,000 bots, a dry run and then the import.
//! 6. Media: a post carrying a 4 MiB image kept here, from the create until X has it (the
//!    image uploaded to X in 1 MiB chunks right before the send).
//!
//! Runs on SQLite with the embedded queue, and on PostgreSQL with NATS JetStream when
//! `VIVESPHERE_TEST_DATABASE_URL` and `VIVESPHERE_TEST_NATS_URL` are set. `BOTS_BENCH_POSTS`
//! changes N (default 10000), `BOTS_BENCH_SPREAD_SECONDS` the lateness window (default 60);
//! `BOTS_BENCH_ONLY=sqlite|postgres` runs one backend; `BOTS_BENCH_SKIP_BURST` and
//! `BOTS_BENCH_SKIP_SPREAD` leave out phases 1 and 2.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_x::FakeX;
use serde_json::{Value, json};

mod support;

use support::{Server, ms, percentile};

const BOTS: usize = 200;

fn posts_wanted() -> usize {
    support::env_number("BOTS_BENCH_POSTS", 10_000)
}

/// Over how long the lateness phase spreads its posts (`BOTS_BENCH_SPREAD_SECONDS`, default 60).
fn spread_seconds() -> i64 {
    support::env_number("BOTS_BENCH_SPREAD_SECONDS", 60)
}

fn now_ms() -> i64 {
    platform::Clock::system().now_millis()
}

fn rfc3339(ms: i64) -> String {
    platform::time_fmt::rfc3339_from_millis(ms)
}

async fn create_bots(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    fake: &FakeX,
    tag: &str,
) -> Vec<String> {
    let mut bots = Vec::new();
    for i in 0..BOTS {
        let user = fake.add_user(fake_x::NewUser::named(&format!("{tag}{i}")));
        let response: Value = client
            .post(format!("{base}/api/v1/bots"))
            .bearer_auth(token)
            .json(&json!({"bot_name": format!("{tag} {i}"), "credentials": {
                "access_token": user.access_token, "refresh_token": user.refresh_token, "client_id": user.client_id}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let bot_id = response["bot_id"]
            .as_str()
            .expect("bot created")
            .to_string();
        let confirmed = client
            .put(format!("{base}/api/v1/bots/{bot_id}/compliance"))
            .bearer_auth(token)
            .json(
                &json!({"automated_label": true, "bio_discloses_automation": true,
                "operator_account": "bench_operator"}),
            )
            .send()
            .await
            .unwrap();
        assert!(
            confirmed.status().is_success(),
            "the disclosure is confirmed"
        );
        bots.push(bot_id);
    }
    bots
}

/// Schedules `count` posts (round-robin over the bots), the i-th at `run_at(i)`, 32 at a
/// time. Returns text → run_at.
async fn schedule(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    bots: &[String],
    count: usize,
    tag: &str,
    run_at: impl Fn(usize) -> i64,
) -> std::collections::HashMap<String, i64> {
    use futures::StreamExt;
    let jobs: Vec<(String, String, i64)> = (0..count)
        .map(|i| {
            (
                bots[i % bots.len()].clone(),
                format!("{tag} post {i}"),
                run_at(i),
            )
        })
        .collect();
    let expected = jobs
        .iter()
        .map(|(_, text, at)| (text.clone(), *at))
        .collect();
    futures::stream::iter(jobs)
        .map(|(bot, text, at)| {
            let client = client.clone();
            async move {
                let response = client
                    .post(format!("{base}/api/v1/bots/{bot}/posts"))
                    .bearer_auth(token)
                    .json(&json!({"text": text, "run_at": rfc3339(at)}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
    expected
}

/// Waits until the fake X has `count` posts whose text starts with `tag`; their arrival
/// times (ms) by text.
async fn arrivals(
    fake: &FakeX,
    tag: &str,
    count: usize,
    limit: Duration,
) -> std::collections::HashMap<String, u64> {
    let started = Instant::now();
    loop {
        let seen: std::collections::HashMap<String, u64> = fake
            .requests()
            .into_iter()
            .filter(|r| r.status == 201 && r.path == "/2/tweets")
            .filter_map(|r| r.text.filter(|t| t.starts_with(tag)).map(|t| (t, r.at_ms)))
            .collect();
        if seen.len() >= count || started.elapsed() > limit {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Parts in the thread phase, and how many threads are timed one after another.
const THREAD_PARTS: usize = 25;
const THREADS_TIMED: usize = 5;

/// 3. Threads of 25 parts, one at a time on different bots: create to last part on X.
async fn threads(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    fake: &FakeX,
    bots: &[String],
    label: &str,
) {
    let mut took = Vec::new();
    for (t, bot_id) in bots.iter().enumerate().take(THREADS_TIMED) {
        let tag = format!("thread{t} ");
        let parts: Vec<Value> = (0..THREAD_PARTS)
            .map(|i| json!({"text": format!("{tag}part {} of {THREAD_PARTS}", i + 1)}))
            .collect();
        let started = now_ms();
        let response = client
            .post(format!("{base}/api/v1/bots/{bot_id}/threads"))
            .bearer_auth(token)
            .json(&json!({"parts": parts, "publish_now": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        let seen = arrivals(fake, &tag, THREAD_PARTS, Duration::from_secs(120)).await;
        assert_eq!(seen.len(), THREAD_PARTS, "a thread did not finish");
        // The fake X stamps each arrival with the same system clock.
        let last = seen.values().copied().max().unwrap() as i64;
        took.push(Duration::from_millis((last - started).max(0) as u64));
    }
    took.sort();
    println!(
        "{label}: threads of {THREAD_PARTS} parts, create to last part on X: median {:.0} ms, \
         max {:.0} ms ({:.1} ms per part at the median; {THREADS_TIMED} threads)",
        ms(took[THREADS_TIMED / 2]),
        ms(*took.last().unwrap()),
        ms(took[THREADS_TIMED / 2]) / THREAD_PARTS as f64
    );
}

/// Rows in the import phase.
const IMPORT_ROWS: usize = 10_000;

/// 4. One import of 10,000 posts, timed as a dry run and as the import itself.
async fn import(client: &reqwest::Client, base: &str, token: &str, bots: &[String], label: &str) {
    // A day ahead: nothing of it falls due while the other phases run.
    let at = rfc3339(now_ms() + 86_400_000);
    let rows: Vec<Value> = (0..IMPORT_ROWS)
        .map(|i| json!({"bot_id": bots[i % bots.len()], "text": format!("import {i}: the morning forecast for district {i}"), "run_at": at}))
        .collect();
    let body = json!({"posts": rows}).to_string();
    for dry_run in [true, false] {
        let started = Instant::now();
        let response = client
            .post(format!("{base}/api/v1/bots/posts/import?dry_run={dry_run}"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let report: Value = response.json().await.unwrap();
        let took = started.elapsed();
        assert!(status.is_success(), "{status}: {}", report["message"]);
        assert_eq!(report["valid"], IMPORT_ROWS, "{}", report["errors"]);
        println!(
            "{label}: import of {IMPORT_ROWS} posts ({} KiB of JSON), {}: {:.2} s ({:.0} rows/s)",
            body.len() / 1024,
            if dry_run { "dry run" } else { "written" },
            took.as_secs_f64(),
            IMPORT_ROWS as f64 / took.as_secs_f64()
        );
    }
}

/// Bots in the bot-import phase.
const IMPORT_BOTS: usize = 1_000;

/// 5. One import of 1,000 bots (no credentials: they wait to be connected), a dry run and
///    the import.
async fn import_bots(client: &reqwest::Client, base: &str, token: &str, label: &str) {
    let rows: Vec<Value> = (0..IMPORT_BOTS)
        .map(|i| json!({"bot_name": format!("imported {i}"), "x_handle": format!("imp{}_{i}", &label[..1]),
            "time_zone": "Europe/Berlin", "posting_slots": [{"day": "mon", "start": "07:00", "end": "19:00"}]}))
        .collect();
    let body = json!({"bots": rows}).to_string();
    for dry_run in [true, false] {
        let started = Instant::now();
        let response = client
            .post(format!("{base}/api/v1/bots/import?dry_run={dry_run}"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let report: Value = response.json().await.unwrap();
        let took = started.elapsed();
        assert!(status.is_success(), "{status}: {}", report["message"]);
        assert_eq!(report["valid"], IMPORT_BOTS, "{}", report["errors"]);
        println!(
            "{label}: import of {IMPORT_BOTS} bots, {}: {:.2} s ({:.0} rows/s)",
            if dry_run { "dry run" } else { "written" },
            took.as_secs_f64(),
            IMPORT_BOTS as f64 / took.as_secs_f64()
        );
    }
}

/// 6. A post carrying a 4 MiB image kept here: from the create until X has the post, the
///    image uploaded in 1 MiB chunks (initialize, 4 appends, finalize) right before it.
async fn media_post(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    bots: &[String],
    fake: &FakeX,
    label: &str,
) {
    let mut image = b"\x89PNG\r\n\x1a\n".to_vec();
    image.resize(4 * 1024 * 1024, 0x5a);
    let bot = &bots[0];
    let started = Instant::now();
    let stored: Value = client
        .post(format!("{base}/api/v1/bots/{bot}/media"))
        .bearer_auth(token)
        .header("content-type", "image/png")
        .body(image)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kept = started.elapsed();
    let text = format!("{label}: the harbour chart");
    let created = client
        .post(format!("{base}/api/v1/bots/{bot}/posts"))
        .bearer_auth(token)
        .json(&json!({"text": text, "media_ids": [stored["media_id"]], "publish_now": true}))
        .send()
        .await
        .unwrap();
    assert!(
        created.status().is_success(),
        "{}",
        created.text().await.unwrap()
    );
    let sent = Instant::now();
    while fake.live_posts_with_text(&text) == 0 {
        assert!(
            sent.elapsed() < Duration::from_secs(60),
            "the media post never reached X"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "{label}: a 4 MiB image kept in {:.0} ms; its post on X {:.0} ms after the create (4 chunks uploaded first)",
        ms(kept),
        ms(sent.elapsed())
    );
}

fn run(label: &str, extra_env: &[(String, String)]) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let settings = fake_x::Settings {
        post_limit: u32::MAX,
        read_limit: u32::MAX,
        me_limit: u32::MAX,
        daily_post_limit: u32::MAX,
        user_3h_post_limit: u32::MAX,
        app_daily_post_limit: u32::MAX,
        ..Default::default()
    };
    let fake = Arc::new(FakeX::new(settings, platform::Clock::system()));
    let fake_url = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let router = fake_x::router(fake.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        url
    });
    let mut env = extra_env.to_vec();
    env.push(("VIVESPHERE_BOT_MANAGER__X_API__BASE_URL".into(), fake_url));
    env.push((
        "VIVESPHERE_BOT_MANAGER__METRICS_INTERVAL_SECONDS".into(),
        "0".into(),
    ));
    // Throughput, not X's posting limits, is measured here: neither side keeps them.
    for limit in ["USER_POSTS_PER_3H", "APP_POSTS_PER_24H"] {
        env.push((
            format!("VIVESPHERE_BOT_MANAGER__X_LIMITS__{limit}"),
            "0".into(),
        ));
    }
    let server = Server::start(&env);
    let n = posts_wanted();
    runtime.block_on(async {
        let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
        let token = server.ready_admin_token(&client).await;
        let base = server.base.clone();

        // 1. Throughput: everything due at one instant, a little after scheduling ends.
        let bots = create_bots(&client, &base, &token, &fake, "burst").await;
        if std::env::var("BOTS_BENCH_SKIP_BURST").is_err() {
        let started = Instant::now();
        let due = now_ms() + 60_000;
        let expected = schedule(&client, &base, &token, &bots, n, "burst", |_| due).await;
        let scheduling = started.elapsed();
        println!(
            "{label}: scheduled {n} posts over {BOTS} bots in {:.1} s ({:.0} creates/s)",
            scheduling.as_secs_f64(),
            n as f64 / scheduling.as_secs_f64()
        );
        // Bring the due time forward to now + 1 s by rescheduling is not needed: wait.
        let wait = (due - now_ms()).max(0) as u64;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let seen = arrivals(&fake, "burst", expected.len(), Duration::from_secs(300)).await;
        let last = seen.values().copied().max().unwrap_or(due as u64);
        let span = (last as i64 - due).max(1) as f64 / 1000.0;
        println!(
            "{label}: {} of {n} posts due at once reached X in {span:.2} s: {:.0} publishes/s end to end",
            seen.len(),
            seen.len() as f64 / span
        );

        }

        threads(&client, &base, &token, &fake, &bots, label).await;
        import(&client, &base, &token, &bots, label).await;
        import_bots(&client, &base, &token, label).await;
        media_post(&client, &base, &token, &bots, &fake, label).await;
        if std::env::var("BOTS_BENCH_SKIP_SPREAD").is_ok() {
            return;
        }

        // 2. Lateness: the same number spread over a window, each at its own run_at.
        let window_ms = spread_seconds() * 1000;
        let start = now_ms() + 45_000;
        let expected = schedule(&client, &base, &token, &bots, n, "spread", |i| start + (i as i64 * window_ms) / n as i64).await;
        let wait = (start + window_ms - now_ms()).max(0) as u64;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let seen = arrivals(&fake, "spread", expected.len(), Duration::from_secs(120)).await;
        let mut late: Vec<Duration> = seen
            .iter()
            .map(|(text, at)| Duration::from_millis((*at as i64 - expected[text]).max(0) as u64))
            .collect();
        late.sort();
        let early = seen.iter().filter(|(text, at)| (**at as i64) < expected[*text]).count();
        println!(
            "{label}: {} of {n} scheduled posts over {:.0} s: late by p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; {early} early",
            seen.len(),
            window_ms as f64 / 1000.0,
            ms(percentile(&late, 0.50)),
            ms(percentile(&late, 0.99)),
            ms(*late.last().unwrap()),
        );
        let metrics = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
        let actions: Vec<&str> = metrics.lines().filter(|l| l.starts_with("vivesphere_bot_actions_total")).collect();
        println!("{label}: {}", actions.join("  "));
    });
    drop(server);
}

fn main() {
    platform::install_crypto_provider();
    support::on_each_backend("BOTS_BENCH_ONLY", run);
}
