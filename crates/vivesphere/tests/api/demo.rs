//! `vivesphere demo`: the whole system beside a fake X, a demo team seeded through the public
//! API, and a first post published within seconds; in-process on the test clock, and once as
//! the real binary a newcomer runs.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use vivesphere::demo::{Demo, DemoOptions};

use crate::helpers::{client, repo_config_dir, start_demo, test_clock};

async fn login(base: &str, username: &str, password: &str) -> String {
    let answer: Value = client()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["token"].as_str().expect("a token").to_string()
}

async fn get(base: &str, path: &str, token: &str) -> Value {
    let response = client()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_demo_seeds_a_team_and_publishes_a_first_post() {
    let demo = start_demo().await;
    // The first post is on X already.
    assert_eq!(demo.first_post["state"], "published", "{}", demo.first_post);
    let text = demo.first_post["text"].as_str().unwrap();
    assert_eq!(demo.fake.live_posts_with_text(text), 1);

    // Everyone printed can sign in; the Manager's team holds the three bots.
    let summary = demo.summary();
    assert!(summary.contains(&format!("{}/", demo.url)), "{summary}");
    let mut tokens = Vec::new();
    for person in &demo.people {
        assert!(summary.contains(&person.password), "{summary}");
        tokens.push(login(&demo.url, &person.username, &person.password).await);
    }
    let roles: Vec<&str> = demo.people.iter().map(|p| p.role).collect();
    assert_eq!(roles, ["Admin", "Manager", "Editor"]);
    let manager = &tokens[1];
    let bots = get(&demo.url, "/api/v1/bots", manager).await;
    let bots = bots["items"].as_array().unwrap();
    assert_eq!(bots.len(), 3, "{bots:?}");
    assert!(bots.iter().all(|bot| bot["team"] == "demo"), "{bots:?}");
    // A week of posts, one a day per bot, all ahead of now; the Editor sees them too.
    let mut scheduled = 0;
    for bot_id in &demo.bot_ids {
        let posts = get(
            &demo.url,
            &format!("/api/v1/bots/{bot_id}/posts?state=scheduled"),
            &tokens[2],
        )
        .await;
        scheduled += posts["items"].as_array().unwrap().len();
    }
    assert_eq!(scheduled, 21);
    assert_eq!(demo.scheduled_posts, 21);
    demo.stop().await.expect("the demo stops cleanly");
}

#[tokio::test]
async fn the_demo_refuses_a_data_directory_that_holds_something() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
    let err = Demo::start(DemoOptions {
        config_dir: repo_config_dir(),
        listen: "127.0.0.1:0".into(),
        data_dir: Some(dir.path().to_path_buf()),
        clock: test_clock(),
    })
    .await
    .err()
    .expect("refused");
    assert!(err.to_string().contains("is not empty"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("keep.txt")).unwrap(),
        "mine"
    );
}

/// The command as the README gives it: the summary on stdout, SIGTERM stops it and takes
/// its temporary data away.
#[tokio::test]
async fn vivesphere_demo_prints_where_everything_is_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vivesphere"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("VIVESPHERE_CONFIG_DIR", repo_config_dir())
        .env("TMPDIR", std::env::temp_dir())
        .args(["demo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut summary = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.starts_with("Ctrl-C stops the demo");
        summary.push(line);
        if done {
            break;
        }
    }
    let field = |label: &str| {
        summary
            .iter()
            .find_map(|l| l.trim_start().strip_prefix(label))
            .map(|rest| rest.split_whitespace().next().unwrap().to_string())
            .unwrap_or_else(|| panic!("no {label:?} line in {summary:#?}"))
    };
    let api_index = field("API, docs and health");
    let base = api_index.trim_end_matches("/api/").to_string();
    assert_eq!(api_index, format!("{base}/api/"));
    // The console's address leads to its sign-in page.
    let console = reqwest::get(field("console")).await.unwrap();
    assert!(
        console.url().path().ends_with("/console/sign-in"),
        "{}",
        console.url()
    );
    assert!(console.text().await.unwrap().contains("Sign in"));
    let data_dir = field("data");
    let manager_password = summary
        .iter()
        .find_map(|l| l.trim_start().strip_prefix("Manager"))
        .map(|rest| rest.split_whitespace().nth(1).unwrap().to_string())
        .expect("the Manager's line");
    let token = login(&base, "demo_manager", &manager_password).await;
    let bots = get(&base, "/api/v1/bots", &token).await;
    assert_eq!(bots["items"].as_array().unwrap().len(), 3);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the demo did not stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit:?}");
    assert!(
        !std::path::Path::new(&data_dir).exists(),
        "{data_dir} was left behind"
    );
}
