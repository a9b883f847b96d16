//! Bulk import of posts, all or nothing, from JSON or CSV, with a dry run that names every
//! bad row; export in the same format imports again.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::bots_helpers::{BotEnv, spawn_bots};

async fn import_json(
    env: &BotEnv,
    token: &str,
    dry_run: bool,
    posts: Value,
) -> (StatusCode, Value) {
    let path = format!("/api/v1/bots/posts/import?dry_run={dry_run}");
    let response = env
        .send(Method::POST, &path, token, json!({"posts": posts}))
        .await;
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn import_csv(env: &BotEnv, token: &str, dry_run: bool, csv: String) -> (StatusCode, Value) {
    let response = env
        .app
        .client
        .post(
            env.app
                .url(&format!("/api/v1/bots/posts/import?dry_run={dry_run}")),
        )
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn post_count(env: &BotEnv, token: &str, bot_id: &str) -> usize {
    let body: Value = env
        .get(&format!("/api/v1/bots/{bot_id}/posts?limit=500"), token)
        .await
        .json()
        .await
        .unwrap();
    body["items"].as_array().unwrap().len()
}

#[tokio::test]
async fn an_import_with_one_bad_row_imports_nothing_and_names_the_row() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    let (first, _) = env.bot(&alice, "importbot").await;
    let (second, _) = env.bot(&alice, "otherbot").await;
    let at = env.in_ms(3_600_000);
    let rows = json!([
        {"bot_id": first, "text": "Morning briefing", "run_at": at},
        {"bot_id": first, "text": "A draft to finish"},
        {"bot_id": second, "text": "Evening briefing", "run_at": at},
        {"bot_id": second, "text": "Morning briefing!", "run_at": at},
        {"bot_id": first, "text": "x".repeat(300)},
        {"bot_id": "0193f7a4-5a1e-7c4e-9a51-8f2d6b1c0e11", "text": "nobody's bot"},
    ]);
    let (status, report) = import_json(&env, &alice, true, rows.clone()).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["rows"], 6);
    assert_eq!(report["valid"], 3);
    let bad: Vec<u64> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["row"].as_u64().unwrap())
        .collect();
    assert_eq!(bad, [4, 5, 6], "{report}");
    let messages = report["errors"].to_string();
    assert!(messages.contains("another bot"), "{messages}");
    assert!(messages.contains("280"), "{messages}");
    assert!(messages.contains("no such bot"), "{messages}");

    let (status, refused) = import_json(&env, &alice, false, rows).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("row 4"),
        "{refused}"
    );
    assert_eq!(refused["errors"].as_array().unwrap().len(), 3, "{refused}");
    assert_eq!(post_count(&env, &alice, &first).await, 0);
    assert_eq!(post_count(&env, &alice, &second).await, 0);

    // Without the bad rows everything goes in, in one step.
    let good = json!([
        {"bot_id": first, "text": "Morning briefing", "run_at": env.in_ms(3_600_000)},
        {"bot_id": first, "text": "A draft to finish"},
        {"bot_id": second, "text": "Evening briefing", "run_at": env.in_ms(3_600_000)},
    ]);
    let (status, imported) = import_json(&env, &alice, false, good).await;
    assert_eq!(status, StatusCode::CREATED, "{imported}");
    assert_eq!(imported["post_ids"].as_array().unwrap().len(), 3);
    assert_eq!(post_count(&env, &alice, &first).await, 2);
    let first_post = imported["post_ids"][0].as_str().unwrap();
    let read = env.read_post(&alice, &first, first_post).await;
    assert_eq!(read["state"], "scheduled");
}

#[tokio::test]
async fn csv_imports_and_an_export_imports_again() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    let (bot_id, _) = env.bot(&alice, "csvbot").await;
    let at = env.in_ms(7_200_000);
    let csv = format!(
        "text,bot_id,run_at,reply_settings\n\
         \"Hello, \"\"world\"\"\",{bot_id},{at},following\n\
         -5 °C tonight,{bot_id},,\n"
    );
    let (status, report) = import_csv(&env, &alice, false, csv).await;
    assert_eq!(status, StatusCode::CREATED, "{report}");
    let ids: Vec<&str> = report["post_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let quoted = env.read_post(&alice, &bot_id, ids[0]).await;
    assert_eq!(quoted["text"], "Hello, \"world\"");
    assert_eq!(quoted["options"]["reply_settings"], "following");
    assert_eq!(
        env.read_post(&alice, &bot_id, ids[1]).await["state"],
        "draft"
    );

    // The export is the import's format: CSV with the spreadsheet guard on "-5 °C…".
    let exported = env
        .get(
            &format!("/api/v1/bots/posts/export?format=csv&bot_id={bot_id}"),
            &alice,
        )
        .await;
    assert_eq!(exported.status(), StatusCode::OK);
    let exported = exported.text().await.unwrap();
    assert!(
        exported.starts_with("\"bot_id\",\"text\",\"run_at\""),
        "{exported}"
    );
    assert!(exported.contains("\"'-5 °C tonight\""), "{exported}");
    // Into another bot: the draft (row 1: exports go by time, a draft by when it was made)
    // goes as it was, the guard comes off; the timed one would duplicate across bots.
    let (other, _) = env.bot(&alice, "copybot").await;
    let copied = exported.replace(&bot_id, &other);
    let (status, refused) = import_csv(&env, &alice, true, copied).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(refused["valid"], 1, "{refused}");
    assert_eq!(refused["errors"][0]["row"], 2, "{refused}");
    let drafts_only = env
        .get(
            &format!("/api/v1/bots/posts/export?format=csv&state=draft&bot_id={bot_id}"),
            &alice,
        )
        .await
        .text()
        .await
        .unwrap()
        .replace(&bot_id, &other);
    let (status, report) = import_csv(&env, &alice, false, drafts_only).await;
    assert_eq!(status, StatusCode::CREATED, "{report}");
    let copy = report["post_ids"][0].as_str().unwrap();
    assert_eq!(
        env.read_post(&alice, &other, copy).await["text"],
        "-5 °C tonight"
    );
}

#[tokio::test]
async fn malformed_imports_are_clear_4xx() {
    let env = spawn_bots(Default::default(), &[]).await;
    let alice = env.manager("alice").await;
    let (status, body) = import_json(&env, &alice, false, json!([])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    for csv in [
        "bot_id,text,colour\nx,y,red\n",
        "text\nonly text\n",
        "bot_id,text\n\"unterminated,x\n",
        "bot_id,text\na,b,c\n",
    ] {
        let (status, body) = import_csv(&env, &alice, true, csv.to_string()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{csv:?}: {body}");
        assert_eq!(body["status"], "error");
    }
    let viewer = env.team_member("vic", "Viewer", "news").await;
    let (status, _) = import_json(&env, &viewer, true, json!([{"bot_id": "x", "text": "y"}])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
