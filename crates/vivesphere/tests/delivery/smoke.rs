//! infrastructure/deploy/smoke, the release smoke test, against the whole system beside the
//! fake X (`vivesphere demo`, in this process): it passes on a working system, and fails,
//! naming the step, when a step cannot pass.

use std::path::PathBuf;
use std::process::Output;

use crate::helpers::start_demo;
use crate::shown;

fn smoke_script() -> PathBuf {
    crate::render::repo_root().join("infrastructure/deploy/smoke")
}

async fn smoke(url: &str, username: &str, password: &str, bot: Option<&str>) -> Output {
    let mut command = tokio::process::Command::new(smoke_script());
    command
        .arg("staging")
        .env("SMOKE_URL", url)
        .env("SMOKE_USERNAME", username)
        .env("SMOKE_PASSWORD", password)
        .env("SMOKE_TIMEOUT", "20")
        .env_remove("SMOKE_BOT_ID");
    if let Some(bot) = bot {
        command.env("SMOKE_BOT_ID", bot);
    }
    command.output().await.unwrap()
}

#[tokio::test]
async fn the_smoke_test_publishes_reads_back_and_finds_the_event_or_names_what_failed() {
    let demo = start_demo().await;
    let manager = demo
        .people
        .iter()
        .find(|person| person.username == "demo_manager")
        .unwrap();
    let bot = &demo.bot_ids[0];

    let passed = smoke(&demo.url, &manager.username, &manager.password, Some(bot)).await;
    let printed = shown(&passed);
    assert!(passed.status.success(), "{printed}");
    for step in [
        "signed in",
        "bots/list answered 3 bot(s)",
        "published as X post",
        "post.published event",
        "passed",
    ] {
        assert!(printed.contains(step), "no {step:?}: {printed}");
    }
    // The post is on the fake X, once.
    let posted = posted_text(&printed);
    assert_eq!(demo.fake.live_posts_with_text(&posted), 1, "{posted:?}");

    // Without a bot (production): sign-in and list only; nothing is published.
    let read_only = smoke(&demo.url, &manager.username, &manager.password, None).await;
    assert!(read_only.status.success(), "{}", shown(&read_only));
    assert!(
        !shown(&read_only).contains("created"),
        "{}",
        shown(&read_only)
    );

    // Each failing step is named.
    let wrong_password = smoke(&demo.url, &manager.username, "not-the-password", Some(bot)).await;
    fails_naming(&wrong_password, "auth/login answered 401");
    let editor = demo
        .people
        .iter()
        .find(|person| person.username == "demo_editor")
        .unwrap();
    let cannot_read_logs = smoke(&demo.url, &editor.username, &editor.password, Some(bot)).await;
    fails_naming(&cannot_read_logs, "logs/events");
    let nothing_there = smoke("http://127.0.0.1:9", "x", "y", None).await;
    fails_naming(&nothing_there, "did not answer");
    demo.stop().await.unwrap();
}

/// The smoke test failed (exit 1), saying `step`.
fn fails_naming(output: &Output, step: &str) {
    let printed = shown(output);
    assert_eq!(output.status.code(), Some(1), "{printed}");
    assert!(printed.contains(step), "no {step:?} in {printed}");
}

/// The text the smoke test posted, as it printed it.
fn posted_text(output: &str) -> String {
    output
        .lines()
        .find_map(|line| line.split(" created: ").nth(1))
        .unwrap_or_else(|| panic!("no created post in {output}"))
        .to_string()
}
