//! Bulk import and export of bots: a dry run names each bad row and writes nothing; an import
//! with one bad row imports nothing; a good one writes every bot (waiting for its X account
//! to be connected); an export imports again, and its handles are then taken.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::bots_helpers::{BotEnv, spawn_bots};

async fn import(env: &BotEnv, token: &str, query: &str, body: Body) -> (StatusCode, Value) {
    let request = env
        .app
        .client
        .post(env.app.url(&format!("/api/v1/bots/import{query}")))
        .bearer_auth(token);
    let request = match body {
        Body::Json(value) => request.json(&value),
        Body::Csv(text) => request.header("content-type", "text/csv").body(text),
    };
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

enum Body {
    Json(Value),
    Csv(String),
}

async fn bot_count(env: &BotEnv, token: &str) -> usize {
    let all: Value = env
        .get("/api/v1/bots?limit=100", token)
        .await
        .json()
        .await
        .unwrap();
    all["items"]
        .as_array()
        .map(Vec::len)
        .unwrap_or_else(|| panic!("{all}"))
}

fn errors_of(report: &Value) -> Vec<(u64, String)> {
    report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["row"].as_u64().unwrap(),
                e["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_bot_import_with_one_bad_row_imports_nothing_and_names_the_row() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    let (_existing, _) = env.bot(&alice, "quay_bot").await;
    let rows = json!({"bots": [
        {"bot_name": "Harbour news", "x_handle": "harbour_news", "time_zone": "Europe/Berlin"},
        {"bot_name": "Tide tables", "x_handle": "tide_tables", "time_zone": "Mars/Olympus"},
        {"bot_name": "Harbour copy", "x_handle": "Harbour_News"},
        {"bot_name": "Quay again", "x_handle": "QUAY_BOT"},
    ]});
    let before = bot_count(&env, &alice).await;
    let (status, report) = import(&env, &alice, "?dry_run=true", Body::Json(rows.clone())).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["valid"], 1);
    let errors = errors_of(&report);
    assert_eq!(
        errors.iter().map(|e| e.0).collect::<Vec<_>>(),
        [2, 3, 4],
        "{report}"
    );
    assert!(errors[0].1.starts_with("time_zone"), "{errors:?}");
    assert!(errors[1].1.contains("row 1"), "{errors:?}");
    assert!(errors[2].1.contains("already another bot"), "{errors:?}");

    let (status, refused) = import(&env, &alice, "", Body::Json(rows)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("row 2"),
        "{refused}"
    );
    assert_eq!(errors_of(&refused).len(), 3);
    assert_eq!(
        bot_count(&env, &alice).await,
        before,
        "nothing was imported"
    );

    let csv = "bot_name,x_handle,time_zone,posting_slots\n\
               Harbour news,harbour_news,Europe/Berlin,mon 07:00-19:00 tue 07:00-12:00\n\
               Tide tables,tide_tables,,\n";
    let (status, done) = import(&env, &alice, "", Body::Csv(csv.into())).await;
    assert_eq!(status, StatusCode::CREATED, "{done}");
    let ids: Vec<&str> = done["bot_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    let bot: Value = env
        .get(&format!("/api/v1/bots/{}", ids[0]), &alice)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        bot["status"], "needs_reauth",
        "waits for its X account: {bot}"
    );
    assert_eq!(bot["time_zone"], "Europe/Berlin");
    assert_eq!(
        bot["posting_slots"][1],
        json!({"day": "tue", "start": "07:00", "end": "12:00"})
    );
}

#[tokio::test]
async fn an_export_imports_again_and_holds_its_handles() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.team_manager("alice", "harbour").await;
    let rows = json!({"bots": [
        {"bot_name": "Ferry times", "x_handle": "ferry_times", "description": "Departures, automated",
         "operator_account": "ada_operator", "posting_slots": [{"day": "sat", "start": "08:00", "end": "10:30"}]},
        {"bot_name": "Buoy data", "x_handle": "buoy_data"},
    ]});
    let (status, _) = import(&env, &alice, "", Body::Json(rows)).await;
    assert_eq!(status, StatusCode::CREATED);
    let response = env.get("/api/v1/bots/export?format=csv", &alice).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = response.text().await.unwrap();
    assert_eq!(
        csv.lines().next().unwrap().replace('"', ""),
        "bot_name,x_handle,description,operator_account,time_zone,x_app,posting_slots"
    );
    assert!(csv.contains("sat 08:00-10:30"), "{csv}");
    let exported: Value = env
        .get("/api/v1/bots/export", &alice)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(exported["bots"].as_array().unwrap().len(), 2);
    assert!(!csv.contains("token") && !exported.to_string().contains("credential"));

    // Another team imports the export: the same handles are the first team's.
    let bob = env.team_manager("bob", "pier").await;
    let (status, report) = import(&env, &bob, "?dry_run=true", Body::Csv(csv)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["valid"], 0);
    assert!(
        errors_of(&report)
            .iter()
            .all(|(_, m)| m.contains("already another bot")),
        "{report}"
    );

    let viewer = env.team_member("vera", "Viewer", "harbour").await;
    let body = Body::Json(json!({"bots": [{"bot_name": "Nope"}]}));
    let (status, _) = import(&env, &viewer, "", body).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
