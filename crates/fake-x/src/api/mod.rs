//! The fake's HTTP surface: X API v2 routes with X's wire format, and `/_fake/…` controls.
//! Every answer to a route of X's document passes `contract::check` on its way out.

// The checks answer early with X's response itself; boxing it would only add noise to a
// fake that answers one request at a time per connection.
#![allow(clippy::result_large_err)]

mod contract;
mod control;
mod media;
mod oauth;
mod read;
mod usage;
mod write;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use x_contract::Operation;

use crate::state::{FakeX, FaultKind, LoggedRequest, Principal, RateState};

type AppState = Arc<FakeX>;

pub fn router(fake: Arc<FakeX>) -> Router {
    Router::new()
        .route("/2/tweets", post(write::create_post))
        .route(
            "/2/tweets/{id}",
            get(read::lookup_post).delete(write::delete_post),
        )
        .route("/2/users/me", get(read::me))
        .route("/2/users/{id}/tweets", get(read::timeline))
        .route("/2/oauth2/token", post(oauth::token))
        .route("/2/oauth2/revoke", post(oauth::revoke))
        .route("/i/oauth2/authorize", get(oauth::authorize))
        .route("/2/media/upload", post(media::upload).get(media::status))
        .route("/2/media/upload/initialize", post(media::initialize))
        .route("/2/media/upload/{id}/append", post(media::append))
        .route("/2/media/upload/{id}/finalize", post(media::finalize))
        .route("/2/media/metadata", post(media::metadata))
        .route("/2/usage/tweets", get(usage::tweets))
        .merge(control::routes())
        .layer(axum::middleware::from_fn_with_state(
            fake.clone(),
            contract::check,
        ))
        .with_state(fake)
}

/// An X problem (`application/problem+json`, RFC 7807) of `kind` (`about:blank` or one of
/// the document's problem types), with any extra members the type carries.
fn problem(status: StatusCode, kind: &str, title: &str, detail: &str, extra: Value) -> Response {
    let mut body =
        json!({"title": title, "type": kind, "status": status.as_u16(), "detail": detail});
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

/// A problem with no more to say than its status.
fn status_problem(status: StatusCode) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    problem(status, "about:blank", title, title, Value::Null)
}

const INVALID_REQUEST: &str = "https://api.twitter.com/2/problems/invalid-request";

/// X's 400 for bad parameters: one error per parameter, naming it and the value sent.
fn invalid_request(errors: Vec<(String, String, String)>) -> Response {
    let errors: Vec<Value> = errors
        .into_iter()
        .map(|(name, value, message)| {
            let mut parameters = Map::new();
            if !name.is_empty() {
                parameters.insert(name, json!([value]));
            }
            json!({"parameters": parameters, "message": message})
        })
        .collect();
    problem(
        StatusCode::BAD_REQUEST,
        INVALID_REQUEST,
        "Invalid Request",
        "One or more parameters to your request was invalid.",
        json!({"errors": errors}),
    )
}

/// One invalid parameter.
fn invalid(name: &str, value: &str, message: &str) -> Response {
    invalid_request(vec![(name.into(), value.into(), message.into())])
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

/// The queued fault for this call, applied: a status answers now, a delay waits, a drop is
/// remembered for after the work is done.
async fn apply_fault(fake: &FakeX, call: &mut Call) -> Result<(), Response> {
    let Some(fault) = fake.take_fault(call.method, &call.path) else {
        return Ok(());
    };
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
    Ok(())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
}

/// What a route asks of a token: these OAuth 2.0 scopes, and whether an app-only token may
/// call it. For the document's operations, read from the document.
struct Access {
    scopes: Vec<&'static str>,
    app_only: bool,
    /// Whether a user's token may call it (all but the app's own endpoints).
    user_context: bool,
    /// The operation, for what depends on it (the 24-hour headers of a post's 429).
    operation: Option<Operation>,
}

impl Access {
    fn of(operation: Operation) -> Self {
        Self {
            scopes: operation.scopes(),
            app_only: operation.allows_app_only(),
            user_context: true,
            operation: Some(operation),
        }
    }

    /// `GET /2/usage/tweets` (not in document 2.98; X's docs: OAuth 2.0 App-only).
    fn app_only() -> Self {
        Self {
            scopes: Vec::new(),
            app_only: true,
            user_context: false,
            operation: None,
        }
    }

    /// `POST /2/media/upload` (not in document 2.98; X's docs: user context, `media.write`).
    fn media_upload() -> Self {
        Self {
            scopes: vec!["media.write"],
            app_only: false,
            user_context: true,
            operation: None,
        }
    }
}

/// Whether the token may call the route: app-only tokens only where allowed, user tokens
/// only with every scope it asks for.
fn authorize(principal: &Principal, access: &Access) -> Result<(), Response> {
    if principal.user_id.is_none() {
        if access.app_only {
            return Ok(());
        }
        return Err(problem(
            StatusCode::FORBIDDEN,
            "https://api.twitter.com/2/problems/unsupported-authentication",
            "Unsupported Authentication",
            "Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint.  \
             Supported authentication types are [OAuth 1.0a User Context, OAuth 2.0 User Context].",
            Value::Null,
        ));
    }
    if !access.user_context {
        return Err(problem(
            StatusCode::FORBIDDEN,
            "https://api.twitter.com/2/problems/unsupported-authentication",
            "Unsupported Authentication",
            "Authenticating with OAuth 2.0 User Context is forbidden for this endpoint.  \
             Supported authentication types are [OAuth 2.0 Application-Only].",
            Value::Null,
        ));
    }
    let missing: Vec<&str> = access
        .scopes
        .iter()
        .copied()
        .filter(|scope| !principal.scopes.iter().any(|s| s == scope))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(problem(
        StatusCode::FORBIDDEN,
        "about:blank",
        "Forbidden",
        &format!("Missing OAuth 2.0 scope(s): {}", missing.join(", ")),
        Value::Null,
    ))
}

/// Faults, bearer auth, scopes and the endpoint's window, in X's order. Rate windows are per
/// user, or per app for an app-only token.
async fn admit(
    fake: &FakeX,
    call: &mut Call,
    headers: &HeaderMap,
    access: Access,
    (window, limit): (&'static str, u32),
) -> Result<Principal, Response> {
    apply_fault(fake, call).await?;
    let Some(principal) = bearer(headers).and_then(|t| fake.authenticate(t)) else {
        return Err(status_problem(StatusCode::UNAUTHORIZED));
    };
    call.user_id = principal.user_id.clone();
    authorize(&principal, &access)?;
    let key = principal
        .user_id
        .clone()
        .unwrap_or_else(|| format!("app:{}", principal.client_id));
    match fake.count(&key, window, limit, fake.window_seconds()) {
        Ok(rate) => call.rate = Some(rate),
        Err(rate) => {
            call.rate = Some(rate);
            if access.operation == Some(Operation::CreateTweet) {
                // X states the 24-hour limit on every answer to a post, a 429 included.
                call.daily = Some(write::daily_state(fake, &key));
            }
            return Err(status_problem(StatusCode::TOO_MANY_REQUESTS));
        }
    }
    Ok(principal)
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
