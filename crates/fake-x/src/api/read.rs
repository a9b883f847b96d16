//! The lookups: `GET /2/tweets/{id}`, `GET /2/users/{id}/tweets` and `GET /2/users/me`, with
//! their path ids and query parameters checked against X's document before anything is read.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use x_contract::Operation;

use super::{Access, AppState, Call, admit, invalid_request, status_problem};
use crate::state::{Rendered, View};

type Params = Query<Vec<(String, String)>>;

/// The parameters as X's document allows them, or X's 400 listing every one that is not.
fn checked(
    operation: Operation,
    path: &[(&str, &str)],
    query: &[(String, String)],
) -> Result<(), Response> {
    let bad = x_contract::check_parameters(operation, path, query);
    if bad.is_empty() {
        return Ok(());
    }
    Err(invalid_request(
        bad.into_iter()
            .map(|b| (b.name, b.value, b.message))
            .collect(),
    ))
}

fn list<'a>(query: &'a [(String, String)], name: &str) -> impl Iterator<Item = String> + 'a {
    let name = name.to_string();
    query
        .iter()
        .filter(move |(n, _)| *n == name)
        .flat_map(|(_, v)| v.split(',').map(String::from))
}

fn view(query: &[(String, String)]) -> View {
    View {
        tweet_fields: list(query, "tweet.fields").collect(),
        expansions: list(query, "expansions").collect(),
        poll_fields: list(query, "poll.fields").collect(),
    }
}

/// X's answer to a lookup of something that is not there: 200 with a `resource-not-found`
/// problem in `errors`.
fn not_found(kind: &str, id: &str) -> Response {
    Json(json!({"errors": [{
        "value": id,
        "detail": format!("Could not find {kind} with id: [{id}]."),
        "title": "Not Found Error",
        "resource_type": kind,
        "parameter": "id",
        "resource_id": id,
        "type": "https://api.twitter.com/2/problems/resource-not-found",
    }]}))
    .into_response()
}

fn with_includes(mut body: Value, includes: Option<Value>) -> Response {
    if let Some(includes) = includes {
        body["includes"] = includes;
    }
    Json(body).into_response()
}

pub(super) async fn lookup_post(
    State(fake): State<AppState>,
    Path(id): Path<String>,
    Query(query): Params,
    headers: HeaderMap,
) -> Response {
    let mut call = Call::new("GET", format!("/2/tweets/{id}"));
    let window = ("tweets.lookup", fake.settings.read_limit);
    let viewer = match admit(
        &fake,
        &mut call,
        &headers,
        Access::of(Operation::FindTweet),
        window,
    )
    .await
    {
        Ok(principal) => principal.user_id.unwrap_or_default(),
        Err(response) => return call.finish(&fake, response),
    };
    if let Err(response) = checked(Operation::FindTweet, &[("id", &id)], &query) {
        return call.finish(&fake, response);
    }
    let response = match fake.post_json(&viewer, &id, &view(&query)) {
        Some(Rendered { mut data, includes }) => {
            with_includes(json!({"data": data.remove(0)}), includes)
        }
        None => not_found("tweet", &id),
    };
    call.finish(&fake, response)
}

pub(super) async fn me(
    State(fake): State<AppState>,
    Query(query): Params,
    headers: HeaderMap,
) -> Response {
    let mut call = Call::new("GET", "/2/users/me".into());
    let window = ("users.me", fake.settings.me_limit);
    let user_id = match admit(
        &fake,
        &mut call,
        &headers,
        Access::of(Operation::FindMe),
        window,
    )
    .await
    {
        Ok(principal) => principal.user_id.unwrap_or_default(),
        Err(response) => return call.finish(&fake, response),
    };
    if let Err(response) = checked(Operation::FindMe, &[], &query) {
        return call.finish(&fake, response);
    }
    let with_metrics = list(&query, "user.fields").any(|f| f == "public_metrics");
    let response = match fake.user_json(&user_id, with_metrics) {
        Some(data) => Json(json!({"data": data})).into_response(),
        None => status_problem(axum::http::StatusCode::UNAUTHORIZED),
    };
    call.finish(&fake, response)
}

pub(super) async fn timeline(
    State(fake): State<AppState>,
    Path(id): Path<String>,
    Query(query): Params,
    headers: HeaderMap,
) -> Response {
    let mut call = Call::new("GET", format!("/2/users/{id}/tweets"));
    let window = ("users.tweets", fake.settings.read_limit);
    if let Err(response) = admit(
        &fake,
        &mut call,
        &headers,
        Access::of(Operation::UserTweets),
        window,
    )
    .await
    {
        return call.finish(&fake, response);
    }
    if let Err(response) = checked(Operation::UserTweets, &[("id", &id)], &query) {
        return call.finish(&fake, response);
    }
    let max = query
        .iter()
        .find(|(n, _)| n == "max_results")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(10);
    let response = match fake.timeline(&id, max, &view(&query)) {
        Some(Rendered { data, .. }) if data.is_empty() => {
            Json(json!({"meta": {"result_count": 0}})).into_response()
        }
        Some(Rendered { data, includes }) => {
            let meta = json!({
                "result_count": data.len(),
                "newest_id": data.first().map(|p| p["id"].clone()),
                "oldest_id": data.last().map(|p| p["id"].clone()),
            });
            with_includes(json!({"data": data, "meta": meta}), includes)
        }
        None => not_found("user", &id),
    };
    call.finish(&fake, response)
}
