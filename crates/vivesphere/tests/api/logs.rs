//! Logging: the contract endpoint, batches, the queue path (activity of other services, an
//! event published while Logging is down, duplicates), queries with filters, text search and
//! keyset pages, role filtering on queries and exports, deletes by filter, and retention.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::auth_helpers::{admin_token, get, login_ok, send_json};
use crate::botdata_helpers::{error_of, user};
use crate::helpers::{TestApp, spawn, spawn_app, spawn_with_clock};

const PREFIX: &str = "/api/v1/logs";

async fn submit(app: &TestApp, token: &str, log_type: &str, log_data: Value) -> reqwest::Response {
    send_json(
        app,
        Method::POST,
        &format!("{PREFIX}/submit"),
        token,
        json!({"log_type": log_type, "log_data": log_data}),
    )
    .await
}

async fn events(app: &TestApp, token: &str, query: &str) -> Value {
    let response = get(app, &format!("{PREFIX}/events?{query}"), token).await;
    assert_eq!(response.status(), StatusCode::OK, "events?{query}");
    response.json().await.unwrap()
}

/// An event's RFC 3339 `time` as Unix milliseconds.
fn millis_of(time: &Value) -> i64 {
    let text = time.as_str().expect("an RFC 3339 time");
    let parsed =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap();
    (parsed.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Polls a query until it returns at least `n` events (the queue path is asynchronous).
async fn wait_for(app: &TestApp, token: &str, query: &str, n: usize) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let body = events(app, token, query).await;
        if body["items"].as_array().unwrap().len() >= n {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never got {n} events for {query}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn submit_keeps_the_contract() {
    let app = spawn_app().await;
    // The contract's example, stamped five minutes before the app's clock (RFC 3339), so it
    // is inside console's retention whatever day this runs.
    let stamped = app.clock.now_millis() - 5 * 60_000;
    let rfc3339 = platform::time_fmt::rfc3339_from_millis;
    let admin = admin_token(&app).await;
    let response = submit(
        &app,
        &admin,
        "console",
        json!({"timestamp": rfc3339(stamped), "message": "button clicked", "source": "web-ui", "page": "/bots"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "log_submitted");
    let log_id = body["log_id"].as_str().unwrap();
    assert!(!log_id.is_empty());
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");

    let window = format!(
        "from={}&to={}&category=console",
        rfc3339(stamped - 3_600_000),
        rfc3339(stamped + 3_600_000)
    );
    let stored = events(&app, &admin, &window).await;
    let event = &stored["items"][0];
    assert_eq!(event["id"], log_id);
    assert_eq!(event["message"], "button clicked");
    assert_eq!(event["service"], "web-ui");
    assert_eq!(event["data"], json!({"page": "/bots"}));

    for (log_type, data) in [
        (
            "audit",
            json!({"timestamp": app.clock.now_millis(), "message": "m", "source": "s"}),
        ),
        ("debug", json!({"message": "no time", "source": "s"})),
        (
            "debug",
            json!({"timestamp": app.clock.now_millis(), "source": "s"}),
        ),
    ] {
        let (status, code) = error_of(submit(&app, &admin, log_type, data).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "INVALID_DATA"),
            "{log_type}"
        );
    }
    let unauthenticated = app
        .client
        .post(app.url(&format!("{PREFIX}/submit")))
        .json(&json!({"log_type": "debug", "log_data": {"timestamp": app.clock.now_millis(), "message": "m", "source": "s"}}))
        .send()
        .await
        .unwrap();
    let (status, code) = error_of(unauthenticated).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "UNAUTHORIZED")
    );
}

/// Single submissions arriving together share transactions (group commit): each answer is
/// 201 only once its own event is stored, every event is stored once, and the groups are
/// larger than one (the metric counts events per transaction).
#[tokio::test]
async fn concurrent_submissions_share_transactions_and_each_is_stored() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let stamped = platform::time_fmt::rfc3339_from_millis(app.clock.now_millis() - 60_000);
    let answers = futures::future::join_all((0..40).map(|i| {
        submit(
            &app,
            &admin,
            "console",
            json!({"timestamp": stamped, "message": format!("together {i}"), "source": "group-test"}),
        )
    }))
    .await;
    let mut ids = std::collections::HashSet::new();
    for answer in answers {
        assert_eq!(answer.status(), StatusCode::CREATED);
        let body: Value = answer.json().await.unwrap();
        ids.insert(body["log_id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 40);
    let stored = events(
        &app,
        &admin,
        "category=console&service=group-test&limit=500",
    )
    .await;
    let stored: std::collections::HashSet<String> = stored["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(stored, ids, "every answered event is stored, once");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|line| {
                line.strip_prefix(&format!("vivesphere_log_http_commit_group_events_{name} "))
            })
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
            .parse()
            .unwrap()
    };
    assert_eq!(value("sum"), 40.0);
    assert!(
        value("count") < 40.0,
        "{} transactions for 40 events",
        value("count")
    );
}

/// Clients that hang up mid-submission (whoever of them started the group's committer) leave
/// nobody else waiting: every submission whose client stays is answered and stored.
#[tokio::test]
async fn submitters_hanging_up_strand_no_one_else() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let stamped = platform::time_fmt::rfc3339_from_millis(app.clock.now_millis() - 60_000);
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(1))
        .build()
        .unwrap();
    let body = |who: &str, i: usize| {
        json!({"log_type": "console", "log_data": {"timestamp": stamped,
            "message": format!("{who} {i}"), "source": "hang-up-test"}})
    };
    let hung_up = (0..30).map(|i| {
        let sent = impatient
            .post(app.url(&format!("{PREFIX}/submit")))
            .bearer_auth(&admin)
            .json(&body("impatient", i))
            .send();
        async move { drop(sent.await) }
    });
    let (app_ref, admin_ref) = (&app, &admin);
    let stayed = (0..20).map(|i| {
        let data = body("patient", i)["log_data"].clone();
        async move {
            let answer = submit(app_ref, admin_ref, "console", data).await;
            assert_eq!(answer.status(), StatusCode::CREATED);
        }
    });
    futures::future::join(
        futures::future::join_all(hung_up),
        futures::future::join_all(stayed),
    )
    .await;
    let stored = events(
        &app,
        &admin,
        "category=console&service=hang-up-test&limit=500",
    )
    .await;
    let patient = stored["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["message"].as_str().unwrap().starts_with("patient"))
        .count();
    assert_eq!(patient, 20, "{stored}");
}

#[tokio::test]
async fn a_batch_is_stored_whole_and_a_resent_event_once() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let now = app.clock.now_millis();
    let lines: Vec<String> = (0..5)
        .map(|i| {
            json!({"log_type": "terminal", "log_data": {"id": format!("term-{i}"), "timestamp": now - i, "message": format!("line {i}"), "source": "cli"}})
                .to_string()
        })
        .collect();
    let ndjson = lines.join("\n");
    let send = |body: String, content_type: &'static str| {
        app.client
            .post(app.url(&format!("{PREFIX}/batch")))
            .bearer_auth(&admin)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let response = send(ndjson.clone(), "application/x-ndjson").await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["accepted"].as_u64(), body["stored"].as_u64()),
        (Some(5), Some(5))
    );
    // The same batch again, as a JSON array: accepted, nothing new stored.
    let array = format!("[{}]", lines.join(","));
    let again: Value = send(array, "application/json")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (again["accepted"].as_u64(), again["stored"].as_u64()),
        (Some(5), Some(0))
    );
    let stored = events(&app, &admin, "category=terminal&limit=50").await;
    assert_eq!(stored["items"].as_array().unwrap().len(), 5);

    // One bad item refuses the batch and names it; nothing of it is stored.
    let mut bad = lines.clone();
    bad[2] = json!({"log_type": "nope", "log_data": {}}).to_string();
    bad[0] = json!({"log_type": "terminal", "log_data": {"id": "new-0", "timestamp": now, "message": "m", "source": "cli"}}).to_string();
    let response = send(bad.join("\n"), "application/x-ndjson").await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().starts_with("item 3"),
        "{body}"
    );
    let stored = events(&app, &admin, "category=terminal&limit=50").await;
    assert_eq!(stored["items"].as_array().unwrap().len(), 5);
    let response = send("{not json".into(), "application/x-ndjson")
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = send("x".into(), "text/plain").await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn the_activity_of_other_services_arrives_through_the_queue() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let body = wait_for(
        &app,
        &admin,
        "category=user_activity&action=login.succeeded",
        1,
    )
    .await;
    let event = &body["items"][0];
    assert_eq!(event["service"], "authentication");
    assert_eq!(event["category"], "user_activity");
    assert!(event["request_id"].is_string(), "{event}");
    // A secret reveal, from Secure Bot Data.
    crate::botdata_helpers::store_ok(&app, &admin, "log-bot", json!({"email": "l@example.com"}))
        .await;
    crate::botdata_helpers::revealed_value(&app, &admin, "log-bot", "email").await;
    let body = wait_for(
        &app,
        &admin,
        "service=secure-bot-data&action=botdata.reveal",
        1,
    )
    .await;
    assert!(!body.to_string().contains("l@example.com"));
}

#[tokio::test]
async fn an_event_queued_while_logging_is_down_is_stored_once_it_is_back() {
    let shared = tempfile::tempdir().unwrap();
    let data = shared.path().join("{service}.db").display().to_string();
    let queue = shared.path().join("queue.db").display().to_string();
    let key = shared
        .path()
        .join("authentication.key")
        .display()
        .to_string();
    let kek = shared.path().join("kek").display().to_string();
    let env = [
        ("VIVESPHERE_DATABASE__PATH", data.as_str()),
        ("VIVESPHERE_QUEUE__PATH", queue.as_str()),
        (
            "VIVESPHERE_AUTHENTICATION__DEVELOPMENT_KEY_PATH",
            key.as_str(),
        ),
        ("VIVESPHERE_SECURE_BOT_DATA__KEK_DIR", kek.as_str()),
    ];
    // Only the Authentication service runs: its login event waits in the queue.
    let auth = spawn(Some("authentication"), &env, None).await;
    login_ok(&auth, "admin", crate::helpers::ADMIN_PASSWORD).await;
    let clock = auth.clock.clone();
    auth.stop().await.unwrap();
    // Logging comes up on the same queue and data, and stores it.
    let app = spawn_with_clock(None, &env, None, clock).await;
    let admin = admin_token(&app).await;
    let body = wait_for(
        &app,
        &admin,
        "category=user_activity&action=login.succeeded",
        2,
    )
    .await;
    let ids: std::collections::HashSet<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "two logins, two events: {body}");
}

#[tokio::test]
async fn a_duplicate_delivery_is_stored_once() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let queue = app.queue.clone().unwrap();
    let event = json!({
        "specversion": "1.0", "id": "dup-event-1", "source": "vivesphere/bot-manager",
        "type": "vivesphere.bot-manager.post.published", "time": app.clock.now_rfc3339(),
        "subject": "bot-7", "actor": "u-1", "data": {"action": "post.published", "actor": "u-1"}
    });
    // Published twice under different dedupe ids, so the queue delivers it twice.
    for dedupe in ["a", "b"] {
        queue
            .publish(
                "logs.user_activity.bot_manager",
                dedupe,
                event.to_string().into(),
            )
            .await
            .unwrap();
    }
    let body = wait_for(&app, &admin, "action=post.published", 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let body_after = events(&app, &admin, "action=post.published").await;
    assert_eq!(
        body_after["items"].as_array().unwrap().len(),
        1,
        "{body} {body_after}"
    );
}

/// On SQLite a queued batch is written in parts (25 events per turn at the file), and HTTP
/// submissions take their turns between the parts: a backlog of 350 queued events, taken as
/// one batch (a long linger), is stored whole and once, and the submissions made while it
/// is written are answered and stored.
#[tokio::test]
async fn a_queued_backlog_is_stored_whole_beside_http_submissions() {
    let app = spawn(
        None,
        &[
            ("VIVESPHERE_LOGGING__WRITERS", "1"),
            ("VIVESPHERE_LOGGING__BATCH_LINGER_MS", "1500"),
        ],
        None,
    )
    .await;
    let admin = admin_token(&app).await;
    let queue = app.queue.clone().unwrap();
    let now = app.clock.now_rfc3339();
    for i in 0..350 {
        let event = json!({
            "specversion": "1.0", "id": format!("backlog-{i}"), "source": "vivesphere/bot-manager",
            "type": "vivesphere.bot-manager.post.published", "time": now,
            "subject": format!("bot-{i}"), "actor": "u-1",
            "data": {"action": "backlog.written", "actor": "u-1"}
        });
        let subject = "logs.user_activity.bot_manager";
        queue
            .publish(subject, &format!("backlog-{i}"), event.to_string().into())
            .await
            .unwrap();
    }
    let stamped = platform::time_fmt::rfc3339_from_millis(app.clock.now_millis());
    let answers = futures::future::join_all((0..10).map(|i| {
        let data = json!({"timestamp": stamped, "message": format!("beside {i}"), "source": "beside-test"});
        submit(&app, &admin, "console", data)
    }))
    .await;
    for answer in answers {
        assert_eq!(answer.status(), StatusCode::CREATED);
    }
    let beside = events(
        &app,
        &admin,
        "category=console&service=beside-test&limit=500",
    )
    .await;
    assert_eq!(beside["items"].as_array().unwrap().len(), 10, "{beside}");
    let query = "action=backlog.written&limit=500";
    wait_for(&app, &admin, query, 350).await;
    let stored = events(&app, &admin, query).await;
    let ids: std::collections::HashSet<&str> = stored["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        (stored["items"].as_array().unwrap().len(), ids.len()),
        (350, 350),
        "every queued event stored, once"
    );
}

async fn seed(
    app: &TestApp,
    token: &str,
    log_type: &str,
    n: usize,
    message: impl Fn(usize) -> String,
    base: i64,
) {
    let items: Vec<Value> = (0..n)
        .map(|i| json!({"log_type": log_type, "log_data": {"timestamp": base - i as i64, "message": message(i), "source": if i % 2 == 0 { "svc-even" } else { "svc-odd" }, "level": if i % 3 == 0 { "error" } else { "info" }}}))
        .collect();
    let response = send_json(
        app,
        Method::POST,
        &format!("{PREFIX}/batch"),
        token,
        Value::Array(items),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn queries_filter_search_and_page_stably_newest_first() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let base = app.clock.now_millis() - 1000;
    seed(
        &app,
        &admin,
        "debug",
        30,
        |i| format!("worker {i} processed the queue"),
        base,
    )
    .await;
    seed(
        &app,
        &admin,
        "debug",
        3,
        |i| format!("Cache miss for key {i}"),
        base - 100,
    )
    .await;

    let all = events(&app, &admin, "category=debug&limit=500").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 33);
    let odd = events(&app, &admin, "category=debug&service=svc-odd&limit=500").await;
    assert!(
        odd["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["service"] == "svc-odd")
    );
    let errors = events(&app, &admin, "category=debug&level=error&limit=500").await;
    assert!(
        errors["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["level"] == "error")
    );
    // A common word, one page at a time, gives exactly the newest matches of the full list
    // (on PostgreSQL this takes the newest-rows path; a rare word takes the index).
    let every_worker = events(&app, &admin, "q=worker&limit=500").await;
    let first_page = events(&app, &admin, "q=worker&limit=5").await;
    assert_eq!(every_worker["items"].as_array().unwrap().len(), 30);
    assert_eq!(
        first_page["items"].as_array().unwrap()[..],
        every_worker["items"].as_array().unwrap()[..5]
    );
    assert!(first_page["next_cursor"].is_string());
    let found = events(&app, &admin, "q=cache%20miss&limit=500").await;
    assert_eq!(found["items"].as_array().unwrap().len(), 3, "{found}");
    let none = events(
        &app,
        &admin,
        "category=debug&from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z",
    )
    .await;
    assert_eq!(none["items"], json!([]));

    // Page through 7 at a time while new events keep arriving: every old event is seen once,
    // in order.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut round = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("category=debug&limit=7&cursor={c}"),
            None => "category=debug&limit=7".to_string(),
        };
        let page = events(&app, &admin, &query).await;
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| (millis_of(&e["time"]), e["id"].as_str().unwrap().to_string())),
        );
        round += 1;
        seed(
            &app,
            &admin,
            "debug",
            2,
            move |i| format!("new during paging {round} {i}"),
            app.clock.now_millis(),
        )
        .await;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let old: Vec<_> = seen.iter().filter(|(ts, _)| *ts <= base).collect();
    assert_eq!(old.len(), 33, "each old event once");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first");
    let (status, _) =
        error_of(get(&app, &format!("{PREFIX}/events?cursor=garbage"), &admin).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn roles_bound_every_query_and_export() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let base = app.clock.now_millis();
    seed(&app, &admin, "debug", 2, |i| format!("debug {i}"), base).await;
    seed(&app, &admin, "console", 2, |i| format!("console {i}"), base).await;
    let (_, manager) = user(&app, &admin, "manager", &["Manager"], None).await;
    let (_, viewer) = user(&app, &admin, "viewer", &["Viewer"], None).await;
    wait_for(
        &app,
        &admin,
        "category=user_activity&action=login.succeeded",
        3,
    )
    .await;

    // A Manager reads user_activity only, whatever it asks for.
    let seen = events(&app, &manager, "limit=500").await;
    assert!(!seen["items"].as_array().unwrap().is_empty());
    assert!(
        seen["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["category"] == "user_activity"),
        "{seen}"
    );
    let (status, _) =
        error_of(get(&app, &format!("{PREFIX}/events?category=debug"), &manager).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let export = get(&app, &format!("{PREFIX}/export?format=ndjson"), &manager).await;
    assert_eq!(export.status(), StatusCode::OK);
    let text = export.text().await.unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let last: Value = serde_json::from_str(lines.pop().unwrap()).unwrap();
    assert_eq!(last["export"], "complete", "{text}");
    assert_eq!(last["events"], lines.len(), "{text}");
    assert!(!lines.is_empty());
    for line in lines {
        let event: Value = serde_json::from_str(line).unwrap();
        assert_eq!(event["category"], "user_activity", "{line}");
    }
    // A Viewer reads nothing.
    let (status, _) = error_of(get(&app, &format!("{PREFIX}/events"), &viewer).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = error_of(get(&app, &format!("{PREFIX}/export"), &viewer).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // CSV: a header, one line per event, formulas defused (also behind a tab, CR or LF),
    // and the end marker.
    submit(
        &app,
        &admin,
        "console",
        json!({"timestamp": base, "message": "=HYPERLINK(\"x\")", "source": "web"}),
    )
    .await;
    submit(
        &app,
        &admin,
        "console",
        json!({"timestamp": base, "message": "\t=cmd|' /C calc'!A0", "source": "web"}),
    )
    .await;
    let csv = get(
        &app,
        &format!("{PREFIX}/export?format=csv&category=console"),
        &admin,
    )
    .await;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "id,time,category,service,level,actor_id,actor_name,actor_service,bot_id,team,action,request_id,message,data"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 5, "{text}");
    assert_eq!(rows[4], "\"#end\",\"complete\",\"4 events\"");
    assert!(text.contains("\"'=HYPERLINK(\"\"x\"\")\""), "{text}");
    assert!(text.contains("\"'\t=cmd|' /C calc'!A0\""), "{text}");
}

#[tokio::test]
async fn admins_delete_by_filter_and_user_activity_cannot_be_forged() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let (manager_id, manager) = user(&app, &admin, "manager", &["Manager"], None).await;
    wait_for(
        &app,
        &admin,
        &format!("actor_id={manager_id}&action=login.succeeded"),
        1,
    )
    .await;
    // People cannot write the audit trail about themselves.
    let (status, _) = error_of(
        submit(
            &app,
            &manager,
            "user_activity",
            json!({"timestamp": app.clock.now_millis(), "message": "m", "source": "s"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, _) = error_of(
        send_json(
            &app,
            Method::POST,
            &format!("{PREFIX}/delete"),
            &manager,
            json!({"actor_id": manager_id}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = error_of(
        send_json(
            &app,
            Method::POST,
            &format!("{PREFIX}/delete"),
            &admin,
            json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "deleting everything is refused"
    );
    let deleted: Value = send_json(
        &app,
        Method::POST,
        &format!("{PREFIX}/delete"),
        &admin,
        json!({"actor_id": manager_id}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(deleted["status"], "deleted");
    assert!(deleted["deleted"].as_u64().unwrap() >= 1);
    let left = events(&app, &admin, &format!("actor_id={manager_id}")).await;
    assert_eq!(left["items"], json!([]));
}

#[tokio::test]
async fn retention_removes_what_is_older_than_its_category_keeps() {
    let app = spawn(
        None,
        &[
            ("VIVESPHERE_LOGGING__RETENTION__DEBUG", "2"),
            ("VIVESPHERE_LOGGING__RETENTION_INTERVAL", "1"),
        ],
        None,
    )
    .await;
    let admin = admin_token(&app).await;
    let day = 86_400_000;
    let now = app.clock.now_millis();
    // Debug keeps 2 days: an event from 1 day ago is taken; one from 4 days ago is refused as
    // already expired; console keeps 7 days, so a 2-day-old event is taken.
    seed(
        &app,
        &admin,
        "debug",
        1,
        |_| "recent debug".into(),
        now - day,
    )
    .await;
    let (status, _) = error_of(
        submit(
            &app,
            &admin,
            "debug",
            json!({"timestamp": now - 4 * day, "message": "expired debug", "source": "s"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "an already expired event is refused"
    );
    seed(
        &app,
        &admin,
        "console",
        1,
        |_| "older console".into(),
        now - 2 * day,
    )
    .await;
    let messages = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap().to_string())
            .collect()
    };
    let window = format!("from={}&to={}", now - 10 * day, now + 10 * day);
    let stored = messages(&events(&app, &admin, &window).await);
    assert!(stored.contains(&"recent debug".to_string()), "{stored:?}");
    assert!(stored.contains(&"older console".to_string()), "{stored:?}");
    assert!(!stored.contains(&"expired debug".to_string()), "{stored:?}");

    // Three days later the debug event is four days old, past its two: the periodic pass
    // removes it (a whole day partition on PostgreSQL, rows on SQLite). The console event,
    // five days old, stays.
    app.clock.advance(Duration::from_secs(3 * 86_400));
    let admin = admin_token(&app).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = messages(&events(&app, &admin, &window).await);
        if !left.contains(&"recent debug".to_string()) {
            assert!(left.contains(&"older console".to_string()), "{left:?}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "retention never removed the aged debug event: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn an_export_that_fails_part_way_ends_with_a_line_saying_so() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let base = app.clock.now_millis();
    // About 20 MB of export, far more than the sockets between server and client buffer,
    // so most pages are read from the store only after the client starts reading.
    let filler = "x".repeat(4000);
    for batch in 0..5 {
        seed(
            &app,
            &admin,
            "terminal",
            1000,
            |i| format!("{batch}-{i} {filler}"),
            base - batch * 1000,
        )
        .await;
    }
    let window = format!("from={}&to={}", base - 10_000, base + 1);
    let mut export = get(
        &app,
        &format!("{PREFIX}/export?format=ndjson&category=terminal&{window}"),
        &admin,
    )
    .await;
    assert_eq!(export.status(), StatusCode::OK);
    let first = export.chunk().await.unwrap().expect("a first chunk");
    assert!(!first.is_empty());
    // The store fails under the running export.
    let db = crate::helpers::service_db(&app, "logging").await;
    sqlx::query("ALTER TABLE events RENAME TO events_gone")
        .execute(&db)
        .await
        .unwrap();
    let mut text = String::from_utf8(first.to_vec()).unwrap();
    while let Some(chunk) = export.chunk().await.expect("the stream ends cleanly") {
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let mut lines: Vec<&str> = text.lines().collect();
    let last: Value = serde_json::from_str(lines.pop().unwrap()).unwrap();
    assert_eq!(last["export"], "failed", "{last}");
    assert_eq!(last["events"], lines.len());
    assert!(lines.len() < 5000, "the export stopped part-way");
    assert!(!last["request_id"].as_str().unwrap().is_empty());
    sqlx::query("ALTER TABLE events_gone RENAME TO events")
        .execute(&db)
        .await
        .unwrap();
}

/// Each category has a byte budget besides its days: over it, its oldest days go whole
/// (never the current one), the drop is counted, and the space report shows what is held,
/// day by day, and how long the budget lasts.
#[tokio::test]
async fn a_category_over_its_byte_budget_lets_its_oldest_days_go() {
    let app = spawn_app().await;
    let day = 86_400_000;
    // Noon by the app's clock, so every seeded event falls on the day meant.
    let into_day = app.clock.now_millis().rem_euclid(day);
    let to_noon = (day / 2 - into_day).rem_euclid(day);
    app.clock
        .advance(Duration::from_millis(u64::try_from(to_noon).unwrap()));
    let admin = admin_token(&app).await;
    let now = app.clock.now_millis();
    let filler = "y".repeat(2_000);
    for back in 0..4 {
        seed(
            &app,
            &admin,
            "debug",
            20,
            |i| format!("day-{back} {i} {filler}"),
            now - back * day,
        )
        .await;
    }
    let report = space_of(&app, &admin, "debug").await;
    let bytes: Vec<i64> = report["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["bytes"].as_i64().unwrap())
        .collect();
    assert_eq!(bytes.len(), 4, "{report}");
    assert!(bytes.iter().all(|b| *b >= 40_000), "{report}");
    assert_eq!(
        report["budget_bytes"], 2_147_483_648_i64,
        "the default: {report}"
    );

    // A budget for the last two days and half of the one before: the two oldest go.
    let budget = bytes[2] + bytes[3] + bytes[1] / 2;
    set_logging(
        &app,
        &admin,
        json!({"logging.retention_bytes.debug": budget}),
    )
    .await;
    let report = wait_for_days(&app, &admin, "debug", 2).await;
    assert_eq!(report["budget_bytes"], budget, "{report}");
    assert!(report["bytes"].as_i64().unwrap() <= budget, "{report}");
    let window = format!(
        "category=debug&from={}&to={}&limit=500",
        now - 5 * day,
        now + 1
    );
    let left: Vec<String> = events(&app, &admin, &window).await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap()[..5].to_string())
        .collect();
    assert_eq!(left.len(), 40, "{left:?}");
    assert!(
        left.iter().all(|m| m == "day-0" || m == "day-1"),
        "{left:?}"
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"vivesphere_log_events_dropped_for_space_total{category="debug"} 40"#),
        "{metrics}"
    );

    // A budget of half of today: everything before today goes. On PostgreSQL the current
    // day stays whole (a partition is dropped whole, not before the day is over); on SQLite
    // its oldest events go too, until the category fits.
    let half_today = bytes[3] / 2;
    set_logging(
        &app,
        &admin,
        json!({"logging.retention_bytes.debug": half_today}),
    )
    .await;
    let mut report = wait_for_days(&app, &admin, "debug", 1).await;
    let on_postgres = app.postgres_url.is_some();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    // On SQLite the pass trims today after dropping yesterday: wait for the trim too.
    while !on_postgres && report["bytes"].as_i64().unwrap() > half_today {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never trimmed: {report}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        report = space_of(&app, &admin, "debug").await;
    }
    let left = events(&app, &admin, &window).await;
    let left: Vec<&str> = left["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    if on_postgres {
        assert_eq!(left.len(), 20, "{left:?}");
        assert_eq!(report["full_in_days"], 0.0, "over the budget now: {report}");
    } else {
        let held = report["bytes"].as_i64().unwrap();
        assert!(held <= half_today, "{report}");
        assert!(
            (5..=12).contains(&left.len()),
            "about half of today: {left:?}"
        );
        // The newest stay: the seeded events count back from now, so their numbers run low.
        let numbers: Vec<usize> = left
            .iter()
            .map(|m| m.split(' ').nth(1).unwrap().parse().unwrap())
            .collect();
        assert!(numbers.iter().all(|n| *n < left.len()), "{numbers:?}");
    }
    // Other categories keep what they hold; no budget (0) means none.
    set_logging(&app, &admin, json!({"logging.retention_bytes.debug": 0})).await;
    // The change applies as the service's configuration client takes it up: wait for it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut report = space_of(&app, &admin, "debug").await;
    while report["budget_bytes"] != Value::Null && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        report = space_of(&app, &admin, "debug").await;
    }
    assert_eq!(report["budget_bytes"], Value::Null, "{report}");
    assert_eq!(report["full_in_days"], Value::Null, "{report}");
}

#[tokio::test]
async fn the_space_report_is_for_admins() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let manager = crate::auth_helpers::token_of(&app, &admin, "mia", &["Manager"]).await;
    let (status, code) = error_of(get(&app, &format!("{PREFIX}/space"), &manager).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "FORBIDDEN")
    );
    let report = get(&app, &format!("{PREFIX}/space"), &admin).await;
    assert_eq!(report.status(), StatusCode::OK);
    let report: Value = report.json().await.unwrap();
    let names: Vec<&str> = report["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["category"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 4, "{report}");
    assert!(["sqlite", "postgres"].contains(&report["measured_on"].as_str().unwrap()));
}

async fn space_of(app: &TestApp, token: &str, category: &str) -> Value {
    let response = get(app, &format!("{PREFIX}/space"), token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let report: Value = response.json().await.unwrap();
    report["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == category)
        .cloned()
        .unwrap_or_else(|| panic!("no {category} in {report}"))
}

/// A live change of the logging section (it runs a retention pass at once).
async fn set_logging(app: &TestApp, token: &str, settings: Value) {
    let response = send_json(
        app,
        Method::POST,
        "/api/v1/config/update",
        token,
        json!({"service": "logging", "settings": settings}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

async fn wait_for_days(app: &TestApp, token: &str, category: &str, days: usize) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let report = space_of(app, token, category).await;
        if report["days"].as_array().unwrap().len() == days {
            return report;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{category} never came down to {days} days: {report}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
