//! `POST /2/tweets` and `DELETE /2/tweets/{id}`: the request checked against X's document
//! (content type, `TweetCreateRequest`, members X makes mutually exclusive), then X's own
//! rules (the caps, media that exist and are the user's, live reply and quote targets, the
//! weighted length, duplicates).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use x_contract::Operation;

use super::{
    Access, AppState, Call, admit, dropped_connection, invalid, invalid_request, problem,
    status_problem,
};
use crate::state::{CreateError, FakeX, NewPost, RateState};

/// The window key of the app as a whole (every user's posts through it).
const APP_KEY: &str = "app";

/// The members of a create request of which X takes at most one.
const EXCLUSIVE: [&str; 4] = ["media", "poll", "quote_tweet_id", "card_uri"];

/// The user's 24-hour post window, uncounted.
pub(super) fn daily_state(fake: &FakeX, key: &str) -> RateState {
    fake.peek(
        key,
        "tweets.create.24h",
        fake.settings.daily_post_limit,
        86_400,
    )
}

pub(super) async fn create_post(
    State(fake): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut call = Call::new("POST", "/2/tweets".into());
    let window = ("tweets.create", fake.settings.post_limit);
    let principal = match admit(
        &fake,
        &mut call,
        &headers,
        Access::of(Operation::CreateTweet),
        window,
    )
    .await
    {
        Ok(principal) => principal,
        Err(response) => return call.finish(&fake, response),
    };
    let Some(user_id) = principal.user_id else {
        return call.finish(&fake, status_problem(StatusCode::FORBIDDEN));
    };
    let new = match parse_request(&headers, &body) {
        Ok(new) => new,
        Err(response) => return call.finish(&fake, response),
    };
    call.text = Some(new.text.clone());
    if let Err(response) = spend_caps(&fake, &mut call, &user_id) {
        return call.finish(&fake, response);
    }
    let response = match fake.create_post(&user_id, new) {
        Ok(_) if call.drop_after_commit => dropped_connection(),
        Ok((id, text)) => (
            StatusCode::CREATED,
            Json(json!({"data": {"id": id, "text": text, "edit_history_tweet_ids": [id]}})),
        )
            .into_response(),
        Err(error) => {
            fake.return_monthly_usage();
            refusal(error)
        }
    };
    call.finish(&fake, response)
}

/// How X answers a post it will not create.
fn refusal(error: CreateError) -> Response {
    let forbidden = |detail: &str| {
        problem(
            StatusCode::FORBIDDEN,
            "about:blank",
            "Forbidden",
            detail,
            Value::Null,
        )
    };
    match error {
        CreateError::Duplicate => {
            forbidden("You are not allowed to create a Tweet with duplicate content.")
        }
        CreateError::ReplyTargetGone => {
            forbidden("You attempted to reply to a Tweet that is deleted or not visible to you.")
        }
        CreateError::QuoteTargetGone => {
            forbidden("You attempted to quote a Tweet that is deleted or not visible to you.")
        }
        CreateError::ReplyNotAllowed => forbidden(
            "Reply to this conversation is not allowed because you have not been mentioned or \
             otherwise engaged by the author of the post you are replying to.",
        ),
        CreateError::TooLong => invalid("text", "", "Your Tweet text is too long."),
        CreateError::Empty => invalid("text", "", "Your Tweet must have text or media."),
        CreateError::UnknownMedia => invalid("media.media_ids", "", "Your media IDs are invalid."),
    }
}

/// The 24-hour cap per user, then the project's monthly usage cap; a refused post gives back
/// what it counted, so one refusal does not spend a window twice.
fn spend_caps(fake: &FakeX, call: &mut Call, user_id: &str) -> Result<(), Response> {
    match fake.count(
        user_id,
        "tweets.create.24h",
        fake.settings.daily_post_limit,
        86_400,
    ) {
        Ok(daily) => call.daily = Some(daily),
        Err(daily) => {
            call.daily = Some(daily);
            fake.uncount(user_id, "tweets.create");
            return Err(status_problem(StatusCode::TOO_MANY_REQUESTS));
        }
    }
    // The account's 3 hours and the app's 24 hours: no header reports them, and a spent one
    // is a bare 429.
    let give_back = |extra: &[(&str, &'static str)]| {
        fake.uncount(user_id, "tweets.create");
        fake.uncount(user_id, "tweets.create.24h");
        for (key, endpoint) in extra {
            fake.uncount(key, endpoint);
        }
    };
    let user_3h = (user_id, "tweets.create.3h");
    if fake
        .count(
            user_3h.0,
            user_3h.1,
            fake.settings.user_3h_post_limit,
            10_800,
        )
        .is_err()
    {
        give_back(&[]);
        call.daily = Some(daily_state(fake, user_id));
        return Err(status_problem(StatusCode::TOO_MANY_REQUESTS));
    }
    let app = (APP_KEY, "tweets.create.app.24h");
    if fake
        .count(app.0, app.1, fake.settings.app_daily_post_limit, 86_400)
        .is_err()
    {
        give_back(&[user_3h]);
        call.daily = Some(daily_state(fake, user_id));
        return Err(status_problem(StatusCode::TOO_MANY_REQUESTS));
    }
    if fake.take_monthly_usage().is_err() {
        give_back(&[user_3h, app]);
        call.daily = Some(daily_state(fake, user_id));
        return Err(problem(
            StatusCode::TOO_MANY_REQUESTS,
            "https://api.twitter.com/2/problems/usage-capped",
            "UsageCapExceeded",
            "Usage cap exceeded: Monthly product cap",
            json!({"period": "Monthly", "scope": "Product"}),
        ));
    }
    Ok(())
}

/// The request as X's document describes it, or X's 4xx saying what is wrong.
fn parse_request(headers: &HeaderMap, body: &[u8]) -> Result<NewPost, Response> {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.split(';').next().map(str::trim) != Some("application/json") {
        return Err(problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "about:blank",
            "Unsupported Media Type",
            &format!("Content-Type `{content_type}` is not supported; send application/json"),
            Value::Null,
        ));
    }
    let request: Value = serde_json::from_slice(body)
        .map_err(|_| invalid("", "", "Request body is not valid JSON."))?;
    let violations = x_contract::check_request_body(Operation::CreateTweet, &request);
    if !violations.is_empty() {
        return Err(invalid_request(
            violations
                .iter()
                .map(|v| {
                    (
                        parameter_name(&v.at),
                        value_at(&request, &v.at),
                        v.to_string(),
                    )
                })
                .collect(),
        ));
    }
    let given: Vec<&str> = EXCLUSIVE
        .into_iter()
        .filter(|m| !request[*m].is_null())
        .collect();
    if given.len() > 1 {
        let message = format!(
            "[{}] are mutually exclusive; a post takes one of them",
            given.join(", ")
        );
        return Err(invalid(given[0], "", &message));
    }
    Ok(new_post(&request))
}

/// X names a nested parameter with dots and without array positions (`media.media_ids`).
fn parameter_name(pointer: &str) -> String {
    pointer
        .split('/')
        .filter(|segment| !segment.is_empty() && !segment.bytes().all(|b| b.is_ascii_digit()))
        .collect::<Vec<_>>()
        .join(".")
}

fn value_at(request: &Value, pointer: &str) -> String {
    match request.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// A schema-valid request as the post to create.
fn new_post(request: &Value) -> NewPost {
    let text = |v: &Value| v.as_str().map(String::from);
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(String::from))
            .collect()
    };
    NewPost {
        text: request["text"].as_str().unwrap_or("").to_string(),
        media_ids: strings(&request["media"]["media_ids"]),
        reply_to: text(&request["reply"]["in_reply_to_tweet_id"]),
        quote_of: text(&request["quote_tweet_id"]),
        reply_settings: text(&request["reply_settings"]),
        poll: request["poll"].as_object().map(|poll| {
            (
                strings(&poll["options"]),
                poll["duration_minutes"].as_u64().unwrap_or(0),
            )
        }),
    }
}

pub(super) async fn delete_post(
    State(fake): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut call = Call::new("DELETE", format!("/2/tweets/{id}"));
    let window = ("tweets.delete", fake.settings.post_limit);
    let user_id = match admit(
        &fake,
        &mut call,
        &headers,
        Access::of(Operation::DeleteTweet),
        window,
    )
    .await
    {
        Ok(principal) => principal.user_id.unwrap_or_default(),
        Err(response) => return call.finish(&fake, response),
    };
    if let Some(bad) =
        x_contract::check_parameters(Operation::DeleteTweet, &[("id", &id)], &[]).pop()
    {
        return call.finish(&fake, invalid(&bad.name, &bad.value, &bad.message));
    }
    let response = match fake.delete_post(&user_id, &id) {
        Ok(deleted) => Json(json!({"data": {"deleted": deleted}})).into_response(),
        Err(()) => problem(
            StatusCode::FORBIDDEN,
            "about:blank",
            "Forbidden",
            "You are not allowed to delete a Tweet that you did not create.",
            Value::Null,
        ),
    };
    call.finish(&fake, response)
}
