//! A bot's posts on its page: the composer (X's weighted count as one types, from the API's
//! own counter), publish now or schedule at a time in the bot's zone, cancel, and the states
//! kept current without a reload (Server-Sent Events).

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::layout::csrf_field;
use super::{Console, FormFields, Person, see_other, text};
use crate::api::segment;

/// How often a live page's posts are read again from the API.
const LIVE_INTERVAL: Duration = Duration::from_secs(1);
/// Posts a bot's page shows and follows.
pub const SHOWN_POSTS: usize = 20;

/// `at` (RFC 3339) as people read it in `zone`: "2031-03-14 10:30 CET".
pub fn local_time(at: &str, zone: &str) -> String {
    let Ok(timestamp) = at.parse::<jiff::Timestamp>() else {
        return at.to_string();
    };
    let tz = jiff::tz::TimeZone::get(zone).unwrap_or(jiff::tz::TimeZone::UTC);
    timestamp
        .to_zoned_datetime(tz)
        .strftime("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// A `datetime-local` value ("2031-03-14T10:30") in `zone`, as RFC 3339.
pub fn instant_in_zone(local: &str, zone: &str) -> Option<String> {
    let civil: jiff::civil::DateTime = local.parse().ok()?;
    let tz = jiff::tz::TimeZone::get(zone).ok()?;
    Some(civil.to_zoned_datetime(tz).ok()?.timestamp().to_string())
}

/// The composer for `bot`.
pub fn composer(person: &Person, bot: &Value) -> Markup {
    let id = text(bot, "bot_id");
    let zone = text(bot, "time_zone");
    html! {
        section.panel aria-labelledby="compose" {
            h2 #compose { "New post" }
            form.composer method="post" action={"/console/bots/" (segment(id)) "/posts"} data-bot=(id) {
                (csrf_field(&person.csrf))
                label for="post-text" { "Text" }
                textarea #post-text name="text" rows="4" required
                    aria-describedby="post-count post-duplicate" {}
                p #post-count .muted aria-live="polite" data-counter {
                    "X counts URLs as 23 characters and most emoji and CJK as 2; at most 280."
                }
                p #post-duplicate .over aria-live="polite" data-duplicate {}
                label for="post-at" { "Time (" (zone) ")" }
                input #post-at type="datetime-local" name="run_at";
                div.actions {
                    button type="submit" name="when" value="schedule" { "Schedule" }
                    button.secondary type="submit" name="when" value="now" { "Publish now" }
                }
            }
        }
    }
}

/// The posts table of a bot's page; rows and state cells carry the ids the live updates
/// find them by.
pub fn posts_table(person: &Person, bot: &Value, posts: &[Value]) -> Markup {
    let bot_id = text(bot, "bot_id");
    let zone = text(bot, "time_zone");
    html! {
        section.panel aria-labelledby="posts" data-live={"/console/bots/" (segment(bot_id)) "/posts/live"} {
            h2 #posts { "Latest posts" }
            @if posts.is_empty() {
                p.muted { "No posts yet." }
            } @else {
                div.table-wrap { table {
                    thead { tr {
                        th scope="col" { "Text" }
                        th scope="col" { "State" }
                        th.optional scope="col" { "Time" }
                        th.optional scope="col" { "Why it failed" }
                        th scope="col" { span.visually-hidden { "Actions" } }
                    } }
                    tbody { @for post in posts { (post_row(person, bot_id, zone, post)) } }
                } }
            }
        }
    }
}

fn post_row(person: &Person, bot_id: &str, zone: &str, post: &Value) -> Markup {
    let post_id = text(post, "post_id");
    let state = text(post, "state");
    let at = post["published_at"]
        .as_str()
        .or(post["run_at"].as_str())
        .map(|at| local_time(at, zone))
        .unwrap_or_default();
    let cancellable = matches!(state, "draft" | "scheduled" | "pending_review" | "approved");
    html! {
        tr #{"post-" (post_id)} {
            td { (text(post, "text")) }
            td { span.state data-field="state" { (state) } }
            td.optional data-field="at" { (at) }
            td.optional data-field="error" { (text(post, "error")) }
            td {
                @if state == "failed" {
                    form method="post" action={"/console/bots/" (segment(bot_id)) "/posts/" (segment(post_id)) "/retry"} {
                        (csrf_field(&person.csrf))
                        button.secondary type="submit" data-confirm="Send this post again?" { "Retry" }
                    }
                }
                @if cancellable {
                    form method="post" action={"/console/bots/" (segment(bot_id)) "/posts/" (segment(post_id)) "/cancel"} {
                        (csrf_field(&person.csrf))
                        button.secondary type="submit" data-confirm="Cancel this post?" { "Cancel" }
                    }
                }
            }
        }
    }
}

/// The bot a form acts on, as the API shows it to the person.
async fn bot_of(console: &Console, person: &Person, bot_id: &str) -> Result<Value, Response> {
    let path = format!("/api/v1/bots/{}", segment(bot_id));
    console
        .api
        .get(&person.api, &path)
        .await
        .map_err(|failure| console.failure_page(Some(person), &failure))
}

/// `POST /console/bots/{bot_id}/posts`: publish now, or schedule at the time given in the
/// bot's zone; back to the bot's page, where the post shows with its state.
pub async fn create(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(bot_id): Path<String>,
    body: Bytes,
) -> Response {
    let form = FormFields::parse(&body);
    let person = match console.form_person(&headers, &form).await {
        Ok(person) => person,
        Err(answer) => return answer,
    };
    let bot = match bot_of(&console, &person, &bot_id).await {
        Ok(bot) => bot,
        Err(answer) => return answer,
    };
    match submit(&console, &person, &bot_id, &form, text(&bot, "time_zone")).await {
        Ok(()) => see_other(&format!("/console/bots/{}#posts", segment(&bot_id))),
        Err(answer) => answer,
    }
}

/// Sends a composer's post for `bot_id` to the API: published now, or scheduled at the
/// form's local time read in `zone`; else the page saying why not.
pub async fn submit(
    console: &Console,
    person: &Person,
    bot_id: &str,
    form: &FormFields,
    zone: &str,
) -> Result<(), Response> {
    let mut request = Map::new();
    request.insert("text".into(), json!(form.value("text")));
    if form.value("when") == "now" {
        request.insert("publish_now".into(), json!(true));
    } else {
        let Some(at) = instant_in_zone(form.value("run_at"), zone) else {
            let failure =
                crate::api::ApiFailure::refused("Give the time to schedule at (or publish now).");
            return Err(console.failure_page(Some(person), &failure));
        };
        request.insert("run_at".into(), json!(at));
    }
    let path = format!("/api/v1/bots/{}/posts", segment(bot_id));
    match console
        .api
        .post(&person.api, &path, &Value::Object(request))
        .await
    {
        Ok(_) => Ok(()),
        Err(failure) => Err(console.failure_page(Some(person), &failure)),
    }
}

/// `POST /console/bots/{bot_id}/posts/{post_id}/cancel`.
pub async fn cancel(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(ids): Path<(String, String)>,
    body: Bytes,
) -> Response {
    post_action(&console, &headers, ids, &body, "cancel").await
}

/// `POST /console/bots/{bot_id}/posts/{post_id}/retry`: a failed post sent again.
pub async fn retry(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(ids): Path<(String, String)>,
    body: Bytes,
) -> Response {
    post_action(&console, &headers, ids, &body, "retry").await
}

/// One of the API's actions on a post (`…/posts/{post_id}/{action}`), then back to its bot.
async fn post_action(
    console: &Console,
    headers: &HeaderMap,
    (bot_id, post_id): (String, String),
    body: &Bytes,
    action: &str,
) -> Response {
    let form = FormFields::parse(body);
    let person = match console.form_person(headers, &form).await {
        Ok(person) => person,
        Err(answer) => return answer,
    };
    let path = format!(
        "/api/v1/bots/{}/posts/{}/{action}",
        segment(&bot_id),
        segment(&post_id)
    );
    match console.api.post(&person.api, &path, &json!({})).await {
        Ok(_) => see_other(&format!("/console/bots/{}#posts", segment(&bot_id))),
        Err(failure) => console.failure_page(Some(&person), &failure),
    }
}

#[derive(Deserialize)]
pub struct CheckText {
    csrf: String,
    text: String,
    /// The bot the composer writes for: the answer then says whether another bot has the
    /// same text (X's rule against duplicates across accounts).
    #[serde(default)]
    bot_id: Option<String>,
}

/// `POST /console/check-text` (JSON): the composer's counter, from the API's own rules.
pub async fn check_text(
    State(console): State<Console>,
    headers: HeaderMap,
    Json(request): Json<CheckText>,
) -> Response {
    let person = match console.person(&headers).await {
        Ok(person) => person,
        Err(_) => return StatusCode::UNAUTHORIZED.into_response(),
    };
    if !crate::security::csrf_matches(&person.csrf, &request.csrf) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let mut body = json!({"text": request.text});
    if let Some(bot_id) = request.bot_id.filter(|id| !id.is_empty()) {
        body["bot_id"] = json!(bot_id);
    }
    match console
        .api
        .post(&person.api, "/api/v1/bots/check-text", &body)
        .await
    {
        Ok(check) => Json(json!({
            "weighted_length": check["weighted_length"],
            "max_weighted_length": check["max_weighted_length"],
            "remaining": check["remaining"],
            "valid": check["valid"],
            "duplicate_elsewhere": check["duplicate_elsewhere"],
        }))
        .into_response(),
        Err(failure) => (failure.status, Json(json!({"message": failure.message}))).into_response(),
    }
}

/// What a live page needs of a post to update its row.
fn live_view(post: &Value) -> Value {
    json!({
        "post_id": post["post_id"],
        "state": post["state"],
        "error": post["error"],
    })
}

/// `GET /console/bots/{bot_id}/posts/live`: an event each time one of the bot's latest posts
/// changes state, read from the API every second as the person; the stream ends when the
/// session does.
pub async fn live(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(bot_id): Path<String>,
) -> Response {
    let permit = match open_live(&console, &headers).await {
        Ok(permit) => permit,
        Err(answer) => return answer,
    };
    let path = format!(
        "/api/v1/bots/{}/posts?limit={SHOWN_POSTS}",
        segment(&bot_id)
    );
    follow(console, headers, path, permit)
}

/// A place for one more live stream, for a signed-in person; else the answer (503 when the
/// console follows as many as it may, or the sign-in page).
pub async fn open_live(
    console: &Console,
    headers: &HeaderMap,
) -> Result<tokio::sync::OwnedSemaphorePermit, Response> {
    let Ok(permit) = console.live_streams.clone().try_acquire_owned() else {
        return Err(StatusCode::SERVICE_UNAVAILABLE.into_response());
    };
    console.person(headers).await?;
    Ok(permit)
}

/// The stream of a live page: an event each time a post of the API's listing at `path`
/// changes, read every second as the person; it ends when the session does.
pub fn follow(
    console: Console,
    headers: HeaderMap,
    path: String,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Response {
    let state = (console, headers, path, Map::<String, Value>::new(), permit);
    let stream = futures::stream::unfold(
        state,
        |(console, headers, path, mut seen, permit)| async move {
            loop {
                tokio::time::sleep(LIVE_INTERVAL).await;
                let person = console.person_quietly(&headers).await.ok()?;
                let listing = console.api.get(&person.api, &path).await.ok()?;
                let changed: Vec<Value> = listing["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(live_view)
                    .filter(|view| {
                        let id = text(view, "post_id").to_string();
                        seen.insert(id, view.clone()).as_ref() != Some(view)
                    })
                    .collect();
                if !changed.is_empty() {
                    let event = Event::default().event("posts").json_data(changed).ok()?;
                    return Some((
                        Ok::<_, Infallible>(event),
                        (console, headers, path, seen, permit),
                    ));
                }
            }
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
