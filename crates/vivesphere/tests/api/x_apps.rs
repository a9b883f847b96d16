//! X apps (projects) against the fake X: each bot posts through an app; the meter sums by
//! app, an app's budget stops only its own bots, and an app registered with its app-only
//! token has X's own word on the project's cap (`GET /2/usage/tweets`) read by the reader
//! and on demand, shown beside the local meter, with the token kept in Secure Bot Data. An
//! app's budget notice goes to global webhook subscriptions.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::bots_helpers::{BotEnv, spawn_bots};

/// The admin's view of one app.
async fn app_view(env: &BotEnv, app: &str) -> Value {
    let apps: Value = env
        .get("/api/v1/bots/apps", &env.admin)
        .await
        .json()
        .await
        .unwrap();
    apps["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["app"] == app)
        .cloned()
        .unwrap_or_else(|| panic!("no app {app} in {apps}"))
}

/// Waits until X's figures for `app` say `used` (the reader or a refresh put them there).
async fn x_says(env: &BotEnv, app: &str, used: i64) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let view = app_view(env, app).await;
        if view["registration"]["x_project"]["project_usage"] == used {
            return view;
        }
        assert!(tokio::time::Instant::now() < deadline, "{view}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn apps_are_metered_and_budgeted_apart_and_xs_usage_shows_beside_the_meter() {
    let fake = fake_x::Settings {
        monthly_post_cap: 100,
        ..Default::default()
    };
    let reader = ("VIVESPHERE_BOT_MANAGER__X_USAGE_INTERVAL_SECONDS", "1");
    let env = spawn_bots(fake, &[reader]).await;
    let alice = env.team_manager("alice", "blue").await;
    let (first, _) = env.bot(&alice, "firstbot").await;
    let (second, _) = env.bot(&alice, "secondbot").await;
    let bot: Value = env
        .get(&format!("/api/v1/bots/{first}"), &alice)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bot["x_app"], "default");
    env.set_x_app(&alice, &second, "second-app").await;
    let bad = env
        .send(
            Method::PATCH,
            &format!("/api/v1/bots/{second}"),
            &alice,
            json!({"x_app": "not an app"}),
        )
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    env.publish_now(&alice, &first, "plain").await;
    env.publish_now(&alice, &first, "linked https://example.com/a")
        .await;
    env.publish_now(&alice, &second, "from the second app")
        .await;

    // The meter by app, and for one app.
    let by_app: Value = env
        .get("/api/v1/bots/usage?group=app", &alice)
        .await
        .json()
        .await
        .unwrap();
    let lines: Vec<(String, String, i64)> = by_app["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let key = l["key"].as_str().unwrap().to_string();
            (
                key,
                l["kind"].as_str().unwrap().into(),
                l["cost_micros"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("default".into(), "post".into(), 15_000),
            ("default".into(), "post_with_url".into(), 200_000),
            ("second-app".into(), "post".into(), 15_000),
        ]
    );
    let one: Value = env
        .get("/api/v1/bots/usage?app=second-app", &alice)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["totals"][0]["cost_micros"], 15_000);

    // Apps are the admins'; each shows its bots, its 24 hours and its month.
    let refused = env.get("/api/v1/bots/apps", &alice).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let default = app_view(&env, "default").await;
    assert_eq!(
        (
            &default["bots"],
            &default["posts_24h"],
            &default["posts_24h_limit"]
        ),
        (&json!(1), &json!(2), &json!(10_000))
    );
    assert_eq!(
        (&default["month_posts"], &default["month_cost"]),
        (&json!(2), &json!("0.215000"))
    );
    assert!(default["registration"].is_null());

    // The app's own token goes to Secure Bot Data; the reader asks X with it.
    let token = env.fake.add_app_token();
    let path = "/api/v1/bots/apps/second-app/token";
    let registered = env
        .send(
            Method::PUT,
            path,
            &env.admin,
            json!({"bearer_token": token}),
        )
        .await;
    assert_eq!(registered.status(), StatusCode::OK);
    let registered = registered.text().await.unwrap();
    assert!(!registered.contains(&token), "{registered}");
    let vault_id = serde_json::from_str::<Value>(&registered).unwrap()["vault_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(vault_id.starts_with("xapp-"), "{vault_id}");
    let as_manager = env
        .send(Method::PUT, path, &alice, json!({"bearer_token": token}))
        .await;
    assert_eq!(as_manager.status(), StatusCode::FORBIDDEN);
    // X counts the project's posts (all three); the local meter beside it, the app's one.
    let read = x_says(&env, "second-app", 3).await;
    let project = &read["registration"]["x_project"];
    assert_eq!(
        (
            &project["project_cap"],
            &project["cap_reset_day"],
            &project["project_id"]
        ),
        (&json!(100), &json!(1), &json!("1369785403853424"))
    );
    assert_eq!(read["month_posts"], 1);
    let listing = env
        .get("/api/v1/bots/apps", &env.admin)
        .await
        .text()
        .await
        .unwrap();
    assert!(!listing.contains(&token));

    // On demand, after another post.
    env.publish_now(&alice, &first, "one more").await;
    let refreshed: Value = env
        .send(
            Method::POST,
            "/api/v1/bots/apps/second-app/usage/refresh",
            &env.admin,
            json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refreshed["x_project"]["project_usage"], 4, "{refreshed}");
    let metrics = env.app.get("/metrics").await.text().await.unwrap();
    for sample in [
        "vivesphere_bot_x_project_usage{app=\"second-app\"} 4",
        "vivesphere_bot_x_project_cap{app=\"second-app\"} 100",
    ] {
        assert!(metrics.contains(sample), "{sample} missing");
    }

    // A token X refuses is said so, and no figure is made up.
    let broken = env
        .send(
            Method::PUT,
            "/api/v1/bots/apps/broken/token",
            &env.admin,
            json!({"bearer_token": "not-a-token"}),
        )
        .await;
    assert_eq!(broken.status(), StatusCode::OK);
    let failed: Value = env
        .send(
            Method::POST,
            "/api/v1/bots/apps/broken/usage/refresh",
            &env.admin,
            json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(failed["x_project"].is_null(), "{failed}");
    assert!(
        failed["read_error"].as_str().unwrap().contains("401"),
        "{failed}"
    );

    // An app's budget with a hard stop holds back its own bots only; its notice belongs to
    // no team, so global subscriptions get it and a team's does not.
    let global_hook = crate::webhook_receiver::receiver().await;
    let team_hook = crate::webhook_receiver::receiver().await;
    for (token, hook) in [(&env.admin, &global_hook), (&alice, &team_hook)] {
        let subscribed = env
            .send(
                Method::POST,
                "/api/v1/logs/webhooks",
                token,
                json!({"url": hook.url(), "event_types": ["budget.exceeded"]}),
            )
            .await;
        assert_eq!(subscribed.status(), StatusCode::CREATED);
    }
    let budget = json!({"monthly_micros": 15_000, "hard_stop": true});
    let set = env
        .send(
            Method::PUT,
            "/api/v1/bots/apps/second-app/budget",
            &env.admin,
            budget,
        )
        .await;
    assert_eq!(set.status(), StatusCode::OK);
    let set: Value = set.json().await.unwrap();
    assert_eq!(
        (&set["app"], &set["standing"]),
        (&json!("second-app"), &json!("exceeded"))
    );
    assert!(set.get("team").is_none(), "{set}");
    let held = env
        .post(
            &alice,
            &second,
            json!({"text": "held back", "publish_now": true}),
        )
        .await;
    let held_id = held["post_id"].as_str().unwrap();
    let waiting = env
        .wait_until(&alice, &second, held_id, "held back", |p| {
            p["error"].is_string()
        })
        .await;
    let why = waiting["error"].as_str().unwrap();
    assert!(why.contains("app second-app's budget"), "{why}");
    env.publish_now(&alice, &first, "the default app still posts")
        .await;
    let exceeded = env.recorded(&env.admin, "budget.exceeded").await;
    assert_eq!(exceeded.len(), 1, "{exceeded:?}");
    assert!(exceeded[0]["team"].is_null(), "{}", exceeded[0]);
    global_hook.wait_for(1).await;
    let told = global_hook.of_type("budget.exceeded");
    assert_eq!(told[0].json()["data"]["details"]["app"], "second-app");
    assert!(team_hook.hits().is_empty());
    let budgets: Value = env
        .get("/api/v1/bots/budgets", &env.admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(budgets["items"][0]["app"], "second-app");

    // Unregistered: the token is deleted from Secure Bot Data and no longer read.
    let removed = env.send(Method::DELETE, path, &env.admin, json!({})).await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    assert!(app_view(&env, "second-app").await["registration"].is_null());
    let again = env.send(Method::DELETE, path, &env.admin, json!({})).await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    let bad_name = env
        .send(
            Method::PUT,
            "/api/v1/bots/apps/bad%20app/token",
            &env.admin,
            json!({"bearer_token": "x"}),
        )
        .await;
    assert_eq!(bad_name.status(), StatusCode::BAD_REQUEST);
}
