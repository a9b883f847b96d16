//! `GET /2/usage/tweets`: the project's use of its monthly cap, as X's usage endpoint reports
//! it — app-only bearer, 50 requests per 15 minutes per app, numbers of the cap as strings
//! (as X sends them), `days` 1–90 and `usage.fields` checked. Not in X's document 2.98; the
//! shape follows X's API reference for the endpoint. The fake's cap counts the posts the
//! project created (`fake_x.monthly_post_cap`), the same cap whose 429 `usage-capped` it
//! answers, and resets with the UTC month (reset day 1).

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Access, AppState, Call, admit, invalid, invalid_request};

/// The fields X's usage object has; the first four are sent when none is asked for.
const FIELDS: [&str; 6] = [
    "cap_reset_day",
    "project_cap",
    "project_id",
    "project_usage",
    "daily_project_usage",
    "daily_client_app_usage",
];

/// `days` (1–90, default 7) and the fields asked for, or X's 400 naming what is wrong.
fn parameters(query: &[(String, String)]) -> Result<(u32, Vec<String>), Response> {
    let mut days = 7;
    let mut fields: Vec<String> = FIELDS[..4].iter().map(|f| f.to_string()).collect();
    for (name, value) in query {
        match name.as_str() {
            "days" => match value.parse::<u32>() {
                Ok(n) if (1..=90).contains(&n) => days = n,
                _ => {
                    return Err(invalid(
                        "days",
                        value,
                        &format!(
                            "The `days` query parameter value [{value}] is not between 1 and 90"
                        ),
                    ));
                }
            },
            "usage.fields" => {
                let asked: Vec<&str> = value.split(',').collect();
                let unknown: Vec<(String, String, String)> = asked
                    .iter()
                    .filter(|f| !FIELDS.contains(f))
                    .map(|f| {
                        let message = format!(
                            "The `usage.fields` query parameter value [{f}] is not one of [{}]",
                            FIELDS.join(",")
                        );
                        ("usage.fields".to_string(), f.to_string(), message)
                    })
                    .collect();
                if !unknown.is_empty() {
                    return Err(invalid_request(unknown));
                }
                fields.extend(asked.iter().map(|f| f.to_string()));
            }
            other => {
                let message =
                    format!("The query parameter [{other}] is not one of [days,usage.fields]");
                return Err(invalid(other, value, &message));
            }
        }
    }
    Ok((days, fields))
}

fn day_of(midnight: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(midnight)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T00:00:00.000Z",
        at.year(),
        u8::from(at.month()),
        at.day()
    )
}

pub(super) async fn tweets(
    State(fake): State<AppState>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let mut call = Call::new("GET", "/2/usage/tweets".to_string());
    let window = ("usage.tweets", fake.settings.usage_limit);
    if let Err(response) = admit(&fake, &mut call, &headers, Access::app_only(), window).await {
        return call.finish(&fake, response);
    }
    let (days, fields) = match parameters(&query) {
        Ok(asked) => asked,
        Err(response) => return call.finish(&fake, response),
    };
    let usage = fake.project_usage(days);
    let project_id = fake.settings.project_id.clone();
    let mut data = serde_json::Map::new();
    for field in fields {
        let value = match field.as_str() {
            "cap_reset_day" => json!(1),
            "project_cap" => json!(usage.cap.to_string()),
            "project_id" => json!(project_id),
            "project_usage" => json!(usage.used.to_string()),
            "daily_project_usage" => json!({
                "project_id": project_id,
                "usage": usage.daily.iter()
                    .map(|(day, n)| json!({"date": day_of(*day), "usage": n.to_string()}))
                    .collect::<Vec<Value>>(),
            }),
            // One app in the fake's project: its uses are the project's.
            _ => json!([{
                "client_app_id": "fake-app",
                "usage_result_count": usage.daily.len(),
                "usage": usage.daily.iter()
                    .map(|(day, n)| json!({"date": day_of(*day), "usage": n.to_string()}))
                    .collect::<Vec<Value>>(),
            }]),
        };
        data.insert(field, value);
    }
    call.finish(&fake, Json(json!({"data": data})).into_response())
}
