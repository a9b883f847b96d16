//! The Bot Manager as a cluster runs it: PostgreSQL, NATS JetStream, and two Bot Manager
//! processes' worth of workers sharing one durable consumer. Skipped, loudly, without them.

use std::time::Duration;

use bytes::Bytes;

use serde_json::json;

use crate::bots_helpers::{BotEnv, fast_env, spawn_fake};
use crate::helpers::spawn_with_clock;
use platform::testing::{TestPostgres, nats_settings};

/// Sum of a counter's samples in a Prometheus text page whose labels contain `labels`.
fn counter(page: &str, name: &str, labels: &str) -> f64 {
    page.lines()
        .filter(|l| !l.starts_with('#') && l.contains(name) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn two_replicas_and_redelivered_messages_never_publish_twice() {
    let Some(nats) = nats_settings() else { return };
    let Some(pg) = TestPostgres::create().await else {
        return;
    };
    let database_url = pg.url().to_string();
    let clock = crate::helpers::test_clock();
    let (fake, fake_url) = spawn_fake(Default::default(), clock.clone()).await;
    let mut env_owned = fast_env(&fake_url);
    env_owned.extend([
        ("VIVESPHERE_QUEUE__KIND".to_string(), "nats".to_string()),
        ("VIVESPHERE_QUEUE__URL".to_string(), nats.url.clone()),
        (
            "VIVESPHERE_QUEUE__NAMESPACE".to_string(),
            nats.namespace.clone(),
        ),
        (
            "VIVESPHERE_BOT_MANAGER__EXECUTION__CONCURRENCY".to_string(),
            "8".to_string(),
        ),
    ]);
    let env: Vec<(&str, &str)> = env_owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let everything = spawn_with_clock(None, &env, Some(pg), clock.clone()).await;
    // A second Bot Manager process: same database and queue, the first one's other services.
    let first_url = format!("http://{}", everything.addr);
    let secrets = everything
        .data_dir
        .path()
        .join("service-clients")
        .display()
        .to_string();
    let mut second_env = env.clone();
    second_env.extend([
        ("VIVESPHERE_DATABASE__URL", database_url.as_str()),
        ("VIVESPHERE_AUTH__AUTHENTICATION_URL", first_url.as_str()),
        (
            "VIVESPHERE_BOT_MANAGER__SECURE_BOT_DATA_URL",
            first_url.as_str(),
        ),
        ("VIVESPHERE_AUTH__SERVICE_SECRETS_DIR", secrets.as_str()),
    ]);
    let second = spawn_with_clock(Some("bot-manager"), &second_env, None, clock).await;
    let admin = crate::auth_helpers::admin_token(&everything).await;
    let env = BotEnv::from_parts(everything, fake.clone(), fake_url, admin);

    let alice = env.manager("alice").await;
    let mut bots = Vec::new();
    for i in 0..4 {
        bots.push(env.bot(&alice, &format!("clusterbot{i}")).await.0);
    }
    let queue = env.app.queue.clone().unwrap();
    let mut posts = Vec::new();
    for i in 0..40 {
        let bot_id = &bots[i % bots.len()];
        let post = env
            .post(
                &alice,
                bot_id,
                json!({"text": format!("cluster post number {i}"), "publish_now": true}),
            )
            .await;
        let post_id = post["post_id"].as_str().unwrap().to_string();
        // Every job message twice more, as a redelivery would bring it.
        for copy in 0..2 {
            let body = json!({"specversion": "1.0", "id": format!("{post_id}-copy{copy}"), "source": "test",
                "type": "vivesphere.bots.job.due", "data": {"job_id": format!("{post_id}.publish"), "dispatch": 1, "bot_id": bot_id}});
            queue
                .publish(
                    bot_manager::JOBS_SUBJECT,
                    &format!("{post_id}-copy{copy}"),
                    Bytes::from(body.to_string()),
                )
                .await
                .unwrap();
        }
        posts.push((bot_id.clone(), post_id));
    }
    for (bot_id, post_id) in &posts {
        let done = env
            .wait_for(&alice, bot_id, post_id, &["published", "failed"])
            .await;
        assert_eq!(done["state"], "published", "{done}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = env.x_requests("POST", "/2/tweets");
    assert_eq!(sent.len(), 40, "one request per post");
    for i in 0..40 {
        assert_eq!(
            fake.live_posts_with_text(&format!("cluster post number {i}")),
            1
        );
    }
    // Both processes' publish counts add up to the posts: none counted twice.
    let page = |app: &crate::helpers::TestApp| {
        let url = app.url("/metrics");
        let client = app.client.clone();
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let published = counter(
        &page(&env.app).await,
        "bot_actions_total",
        "action=\"publish\",result=\"ok\"",
    ) + counter(
        &page(&second).await,
        "bot_actions_total",
        "action=\"publish\",result=\"ok\"",
    );
    assert_eq!(published, 40.0);
}
