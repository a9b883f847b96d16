//! The fake's HTTP surface: X API v2 routes with X's wire format, and `/_fake/…` controls.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::state::{CreateError, FakeX, Fault, FaultKind, LoggedRequest, NewUser, RateState};

type AppState = Arc<FakeX>;

pub fn router(fake: Arc<FakeX>) -> Router {
    Router::new()
        .route("/2/tweets", post(create_post))
        .route("/2/tweets/{id}", get(lookup_post).delete(delete_post))
        .route("/2/users/me", get(me))
        .route("/2/users/{id}/tweets", get(timeline))
        .route("/2/oauth2/token", post(token))
        .route("/_fake/users", post(add_user))
        .route("/_fake/users/{id}/expire_tokens", post(expire_tokens))
        .route("/_fake/users/{id}/metrics", post(user_metrics))
        .route("/_fake/tweets/{id}/metrics", post(post_metrics))
        .route("/_fake/faults", post(add_fault))
        .route("/_fake/requests", get(requests))
        .with_state(fake)
}

/// X's problem body (`application/problem+json`).
fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    let body =
        json!({"title": title, "type": "about:blank", "status": status.as_u16(), "detail": detail});
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

fn status_problem(status: StatusCode) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    problem(status, title, title)
}

fn set_rate_headers(response: &mut Response, rate: RateState, daily: Option<RateState>) {
    let headers = response.headers_mut();
    let mut put = |name: &'static str, value: u64| {
        headers.insert(name, HeaderValue::from(value));
    };
    put("x-rate-limit-limit", rate.limit.into());
    put("x-rate-limit-remaining", rate.remaining.into());
    put("x-rate-limit-reset", rate.reset);
    if let Some(daily) = daily {
        put("x-user-limit-24hour-limit", daily.limit.into());
        put("x-user-limit-24hour-remaining", daily.remaining.into());
        put("x-user-limit-24hour-reset", daily.reset);
    }
}

/// One request on its way through the fake: who, which window, and which fault.
struct Call {
    method: &'static str,
    path: String,
    user_id: Option<String>,
    text: Option<String>,
    rate: Option<RateState>,
    daily: Option<RateState>,
    drop_after_commit: bool,
}

impl Call {
    fn new(method: &'static str, path: String) -> Self {
        Self {
            method,
            path,
            user_id: None,
            text: None,
            rate: None,
            daily: None,
            drop_after_commit: false,
        }
    }

    /// Logs the request and puts the rate headers on its answer.
    fn finish(self, fake: &FakeX, mut response: Response) -> Response {
        if let Some(rate) = self.rate {
            set_rate_headers(&mut response, rate, self.daily);
        }
        fake.log(LoggedRequest {
            method: self.method.to_string(),
            path: self.path,
            user_id: self.user_id,
            status: response.status().as_u16(),
            text: self.text,
            at_ms: fake.now_millis(),
        });
        response
    }
}

/// Faults, bearer auth and the endpoint's window, in X's order.
async fn admit(
    fake: &FakeX,
    call: &mut Call,
    headers: &HeaderMap,
    endpoint: &'static str,
    limit: u32,
) -> Result<String, Response> {
    if let Some(fault) = fake.take_fault(call.method, &call.path) {
        match fault.kind {
            FaultKind::Status => {
                let status = fault
                    .status
                    .and_then(|s| StatusCode::from_u16(s).ok())
                    .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                return Err(status_problem(status));
            }
            FaultKind::Delay => {
                let delay = fault
                    .delay_ms
                    .map(Duration::from_millis)
                    .unwrap_or_else(FakeX::default_delay);
                tokio::time::sleep(delay).await;
            }
            FaultKind::DropAfterCommit => call.drop_after_commit = true,
        }
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    let Some(user_id) = token.and_then(|t| fake.authenticate(t)) else {
        return Err(problem(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Unauthorized",
        ));
    };
    call.user_id = Some(user_id.clone());
    match fake.count(&user_id, endpoint, limit, fake.window_seconds()) {
        Ok(rate) => call.rate = Some(rate),
        Err(rate) => {
            call.rate = Some(rate);
            return Err(problem(
                StatusCode::TOO_MANY_REQUESTS,
                "Too Many Requests",
                "Too Many Requests",
            ));
        }
    }
    Ok(user_id)
}

/// A response whose connection breaks before the body: the client never learns the outcome.
fn dropped_connection() -> Response {
    let stream = futures::stream::once(async {
        Err::<bytes::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "fake X dropped the connection",
        ))
    });
    // The status X would have sent; the client never sees it, the request log does.
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = StatusCode::CREATED;
    response
}

async fn create_post(
    State(fake): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let mut call = Call::new("POST", "/2/tweets".into());
    let limit = fake.settings.post_limit;
    let user_id = match admit(&fake, &mut call, &headers, "tweets.create", limit).await {
        Ok(user) => user,
        Err(response) => return call.finish(&fake, response),
    };
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    let Ok(request) = parsed else {
        return call.finish(&fake, invalid_request("Request body is not valid JSON."));
    };
    let text = request
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    call.text = Some(text.clone());
    let media_ids: Vec<String> = request
        .pointer("/media/media_ids")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    // The 24-hour cap counts posts only.
    let daily_limit = fake.settings.daily_post_limit;
    match fake.count(&user_id, "tweets.create.24h", daily_limit, 86_400) {
        Ok(daily) => call.daily = Some(daily),
        Err(daily) => {
            call.daily = Some(daily);
            fake.uncount(&user_id, "tweets.create");
            let response = problem(
                StatusCode::TOO_MANY_REQUESTS,
                "Too Many Requests",
                "Too Many Requests",
            );
            return call.finish(&fake, response);
        }
    }
    let response = match fake.create_post(&user_id, &text, media_ids) {
        Ok((id, text)) => {
            if call.drop_after_commit {
                dropped_connection()
            } else {
                (
                    StatusCode::CREATED,
                    Json(json!({"data": {"id": id, "text": text, "edit_history_tweet_ids": [id]}})),
                )
                    .into_response()
            }
        }
        Err(CreateError::Duplicate) => problem(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "You are not allowed to create a Tweet with duplicate content.",
        ),
        Err(CreateError::TooLong) => invalid_text("Your Tweet text is too long."),
        Err(CreateError::Empty) => invalid_text("Your Tweet must have text or media."),
    };
    call.finish(&fake, response)
}

/// X's 400 for a bad parameter: a problem with the parameter's errors.
fn invalid_text(message: &str) -> Response {
    let body = json!({
        "errors": [{"parameters": {"text": []}, "message": message}],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": "https://api.twitter.com/2/problems/invalid-request",
        "status": 400,
    });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

fn invalid_request(detail: &str) -> Response {
    let body = json!({
        "errors": [{"message": detail}],
        "title": "Invalid Request",
        "detail": detail,
        "type": "https://api.twitter.com/2/problems/invalid-request",
        "status": 400,
    });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

async fn delete_post(
    State(fake): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut call = Call::new("DELETE", format!("/2/tweets/{id}"));
    let limit = fake.settings.post_limit;
    let user_id = match admit(&fake, &mut call, &headers, "tweets.delete", limit).await {
        Ok(user) => user,
        Err(response) => return call.finish(&fake, response),
    };
    let response = match fake.delete_post(&user_id, &id) {
        Ok(deleted) => Json(json!({"data": {"deleted": deleted}})).into_response(),
        Err(()) => problem(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "You are not allowed to delete a Tweet that you did not create.",
        ),
    };
    call.finish(&fake, response)
}

#[derive(Deserialize)]
struct Fields {
    #[serde(rename = "tweet.fields")]
    tweet_fields: Option<String>,
    #[serde(rename = "user.fields")]
    user_fields: Option<String>,
    max_results: Option<usize>,
}

fn split(fields: &Option<String>) -> Vec<&str> {
    fields
        .as_deref()
        .map(|f| f.split(',').collect())
        .unwrap_or_default()
}

async fn lookup_post(
    State(fake): State<AppState>,
    Path(id): Path<String>,
    Query(fields): Query<Fields>,
    headers: HeaderMap,
) -> Response {
    let mut call = Call::new("GET", format!("/2/tweets/{id}"));
    let limit = fake.settings.read_limit;
    let user_id = match admit(&fake, &mut call, &headers, "tweets.lookup", limit).await {
        Ok(user) => user,
        Err(response) => return call.finish(&fake, response),
    };
    let response = match fake.post_json(&user_id, &id, &split(&fields.tweet_fields)) {
        Some(data) => Json(json!({"data": data})).into_response(),
        // X answers a missing post with 200 and an `errors` array.
        None => Json(json!({"errors": [{
            "value": id,
            "detail": format!("Could not find tweet with id: [{id}]."),
            "title": "Not Found Error",
            "resource_type": "tweet",
            "parameter": "id",
            "resource_id": id,
            "type": "https://api.twitter.com/2/problems/resource-not-found",
        }]}))
        .into_response(),
    };
    call.finish(&fake, response)
}

async fn me(
    State(fake): State<AppState>,
    Query(fields): Query<Fields>,
    headers: HeaderMap,
) -> Response {
    let mut call = Call::new("GET", "/2/users/me".into());
    let limit = fake.settings.me_limit;
    let user_id = match admit(&fake, &mut call, &headers, "users.me", limit).await {
        Ok(user) => user,
        Err(response) => return call.finish(&fake, response),
    };
    let with_metrics = split(&fields.user_fields).contains(&"public_metrics");
    let response = match fake.user_json(&user_id, with_metrics) {
        Some(data) => Json(json!({"data": data})).into_response(),
        None => status_problem(StatusCode::UNAUTHORIZED),
    };
    call.finish(&fake, response)
}

async fn timeline(
    State(fake): State<AppState>,
    Path(id): Path<String>,
    Query(fields): Query<Fields>,
    headers: HeaderMap,
) -> Response {
    let mut call = Call::new("GET", format!("/2/users/{id}/tweets"));
    let limit = fake.settings.read_limit;
    if let Err(response) = admit(&fake, &mut call, &headers, "users.tweets", limit).await {
        return call.finish(&fake, response);
    }
    let max = fields.max_results.unwrap_or(10);
    if !(5..=100).contains(&max) {
        return call.finish(&fake, invalid_request("max_results: 5 to 100"));
    }
    let response = match fake.timeline(&id, max, &split(&fields.tweet_fields)) {
        Some(posts) => {
            let meta = json!({
                "result_count": posts.len(),
                "newest_id": posts.first().map(|p| p["id"].clone()),
                "oldest_id": posts.last().map(|p| p["id"].clone()),
            });
            if posts.is_empty() {
                Json(json!({"meta": {"result_count": 0}})).into_response()
            } else {
                Json(json!({"data": posts, "meta": meta})).into_response()
            }
        }
        None => invalid_request(&format!("Could not find user with id: [{id}].")),
    };
    call.finish(&fake, response)
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    refresh_token: Option<String>,
    client_id: Option<String>,
}

fn oauth_error(description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "invalid_request", "error_description": description})),
    )
        .into_response()
}

/// `POST /2/oauth2/token` with `grant_type=refresh_token`: each refresh token works once.
async fn token(
    State(fake): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    let mut call = Call::new("POST", "/2/oauth2/token".into());
    // The token endpoint takes status faults only.
    if let Some(fault) = fake.take_fault("POST", "/2/oauth2/token")
        && fault.kind == FaultKind::Status
    {
        let status = fault
            .status
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return call.finish(&fake, status_problem(status));
    }
    // A confidential client authenticates with Basic; a public one names itself in the form.
    let basic_client = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|v| v.split(':').next().map(String::from));
    let client_id = basic_client.or(form.client_id);
    let response = if form.grant_type != "refresh_token" {
        oauth_error("Missing required parameter [grant_type].")
    } else if let Some((access, refresh)) = form
        .refresh_token
        .as_deref()
        .and_then(|t| fake.refresh(t, client_id.as_deref()))
    {
        call.user_id = fake.authenticate(&access);
        Json(json!({
            "token_type": "bearer",
            "expires_in": fake.settings.access_token_ttl,
            "access_token": access,
            "scope": "tweet.write users.read tweet.read offline.access",
            "refresh_token": refresh,
        }))
        .into_response()
    } else {
        oauth_error("Value passed for the token was invalid.")
    };
    call.finish(&fake, response)
}

async fn add_user(State(fake): State<AppState>, Json(user): Json<NewUser>) -> Response {
    (StatusCode::CREATED, Json(fake.add_user(user))).into_response()
}

async fn expire_tokens(State(fake): State<AppState>, Path(id): Path<String>) -> StatusCode {
    if fake.expire_access_tokens(&id) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn user_metrics(
    State(fake): State<AppState>,
    Path(id): Path<String>,
    Json(metrics): Json<HashMap<String, u64>>,
) -> StatusCode {
    if fake.set_user_metrics(&id, metrics) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn post_metrics(
    State(fake): State<AppState>,
    Path(id): Path<String>,
    Json(metrics): Json<HashMap<String, u64>>,
) -> StatusCode {
    if fake.set_post_metrics(&id, metrics) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn add_fault(State(fake): State<AppState>, Json(fault): Json<Fault>) -> StatusCode {
    if fault.times == 0 {
        return StatusCode::BAD_REQUEST;
    }
    fake.add_fault(fault);
    StatusCode::NO_CONTENT
}

async fn requests(State(fake): State<AppState>) -> Json<Value> {
    Json(json!({"requests": fake.requests()}))
}
