//! `cargo bench --bench console`: how long the console's pages take on the release binary
//! with a fleet seeded the size the console issue names — 500 bots and 50,000 posts — on
//! SQLite with the embedded queue (and on PostgreSQL with NATS JetStream when
//! `VIVESPHERE_TEST_DATABASE_URL` and `VIVESPHERE_TEST_NATS_URL` are set;
//! `CONSOLE_BENCH_ONLY=sqlite|postgres` runs one). Each page is asked for
//! `CONSOLE_BENCH_REQUESTS` times (default 200) by one signed-in browser over loopback, so
//! the time is the server's: the console's page and every API call it makes in the same
//! process. Prints p50, p99 and max per page, and the size of the script and stylesheet.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_x::FakeX;
use futures::StreamExt;
use serde_json::{Value, json};

mod support;

use support::{Server, ms, percentile};

const BOTS: usize = 500;
const POSTS: usize = 50_000;
/// Rows per import: the Bot Manager's bulk import in its usual size.
const IMPORT_ROWS: usize = 10_000;

/// One bot of the fleet, with a fake X account's tokens and its disclosure confirmed.
async fn create_bot(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    fake: &FakeX,
    i: usize,
) -> String {
    let user = fake.add_user(fake_x::NewUser::named(&format!("fleet{i}")));
    let created: Value = client
        .post(format!("{base}/api/v1/bots"))
        .bearer_auth(token)
        .json(
            &json!({"bot_name": format!("fleet {i}"), "x_handle": format!("fleet{i}"),
            "description": format!("weather for district {i}"),
            "credentials": {"access_token": user.access_token,
                "refresh_token": user.refresh_token, "client_id": user.client_id}}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bot_id = created["bot_id"].as_str().expect("bot created").to_string();
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
    assert!(confirmed.status().is_success());
    bot_id
}

/// 500 bots, then 50,000 posts scheduled a day ahead in imports of 10,000; the bots and the
/// posts' day (`YYYY-MM-DD`, UTC).
async fn seed(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    fake: &FakeX,
) -> (Vec<String>, String) {
    let started = Instant::now();
    let bots: Vec<String> = futures::stream::iter(0..BOTS)
        .map(|i| create_bot(client, base, token, fake, i))
        .buffer_unordered(16)
        .collect()
        .await;
    let at = platform::time_fmt::rfc3339_from_millis(
        platform::Clock::system().now_millis() + 86_400_000,
    );
    for batch in 0..POSTS / IMPORT_ROWS {
        let rows: Vec<Value> = (0..IMPORT_ROWS)
            .map(|i| {
                let n = batch * IMPORT_ROWS + i;
                json!({"bot_id": bots[n % BOTS], "text": format!("forecast {n} for district {}", n % BOTS), "run_at": at})
            })
            .collect();
        let response = client
            .post(format!("{base}/api/v1/bots/posts/import?dry_run=false"))
            .bearer_auth(token)
            .json(&json!({"posts": rows}))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{}",
            response.text().await.unwrap()
        );
    }
    println!(
        "seeded {BOTS} bots and {POSTS} posts in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    (bots, at[..10].to_string())
}

/// A browser's session cookie: signs in through the console's own form.
async fn sign_in(base: &str) -> (reqwest::Client, String) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = http
        .get(format!("{base}/console/sign-in"))
        .send()
        .await
        .unwrap();
    let cookie = form.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = form.text().await.unwrap();
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).unwrap() + marker.len();
    let csrf = html[start..start + html[start..].find('"').unwrap()].to_string();
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("csrf", csrf.as_str()),
            ("username", "admin"),
            ("password", support::ADMIN_PASSWORD),
        ])
        .finish();
    let signed_in = http
        .post(format!("{base}/console/sign-in"))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let session = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    (http, session)
}

/// Asks for `path` `n` times, one after another; the sorted times.
async fn time_page(
    http: &reqwest::Client,
    base: &str,
    cookie: &str,
    path: &str,
    n: usize,
) -> Vec<Duration> {
    let mut took = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let response = http
            .get(format!("{base}{path}"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.bytes().await.unwrap();
        took.push(started.elapsed());
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    }
    took.sort();
    took
}

fn run(label: &str, extra_env: &[(String, String)]) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let fake = Arc::new(FakeX::new(
        fake_x::Settings::default(),
        platform::Clock::system(),
    ));
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
    let server = Server::start(&env);
    let requests = support::env_number("CONSOLE_BENCH_REQUESTS", 200);
    runtime.block_on(async {
        let client = reqwest::Client::builder().pool_max_idle_per_host(32).build().unwrap();
        let token = server.ready_admin_token(&client).await;
        let base = server.base.clone();
        let (bots, day) = seed(&client, &base, &token, &fake).await;
        let (http, cookie) = sign_in(&base).await;
        let pages = [
            ("fleet", "/console/bots".to_string()),
            ("fleet, text filter", "/console/bots?q=district+42".to_string()),
            ("fleet, a later page", "/console/bots?cursor=".to_string() + &bots_sorted_middle(&bots)),
            ("bot (20 of its 100 posts, credentials)", format!("/console/bots/{}", bots[7])),
            ("calendar, a week of all 50,000 (500 shown)", format!("/console/calendar?on={day}")),
            ("calendar, one bot's month", format!("/console/calendar?view=month&on={day}&bot_id={}", bots[7])),
            ("logs", "/console/logs".to_string()),
            ("settings", "/console/settings?service=bot-manager".to_string()),
            ("system", "/console/system".to_string()),
        ];
        for (name, path) in pages {
            let took = time_page(&http, &base, &cookie, &path, requests).await;
            println!(
                "{label}: {name:<40} p50 {:>6.1} ms  p99 {:>6.1} ms  max {:>6.1} ms  ({requests} requests)",
                ms(percentile(&took, 0.50)),
                ms(percentile(&took, 0.99)),
                ms(*took.last().unwrap())
            );
        }
        for asset in ["console.js", "console.css"] {
            let bytes = http.get(format!("{base}/console/assets/{asset}")).send().await.unwrap().bytes().await.unwrap();
            println!("{label}: {asset}: {} bytes", bytes.len());
        }
    });
}

/// A bot id from the middle of the fleet in id order: a keyset cursor deep into the list.
fn bots_sorted_middle(bots: &[String]) -> String {
    let mut sorted = bots.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2].clone()
}

fn main() {
    platform::install_crypto_provider();
    support::on_each_backend("CONSOLE_BENCH_ONLY", run);
}
