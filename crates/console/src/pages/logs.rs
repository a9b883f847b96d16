//! Logs: the Logging service's events, filtered and searched as its API filters them (and as
//! far as the person may read them), paged newest first, exported, and tailed live.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::layout::page;
use super::{Console, text};
use crate::api::with_query;

/// How often the live tail asks for what is new.
const TAIL_INTERVAL: Duration = Duration::from_secs(1);

/// The filters of the logs page, as its query string carries them.
#[derive(Debug, Default, Deserialize)]
pub struct LogFilter {
    #[serde(default)]
    category: String,
    #[serde(default)]
    level: String,
    #[serde(default)]
    service: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    bot_id: String,
    #[serde(default)]
    q: String,
    /// A `datetime-local` value, read as UTC.
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    cursor: String,
}

/// A `datetime-local` value ("2031-03-14T09:00") as RFC 3339 in UTC; anything else as given
/// (the API says what it accepts).
fn utc(local: &str) -> String {
    if local.len() == 16 && local.as_bytes().get(10) == Some(&b'T') {
        format!("{local}:00Z")
    } else {
        local.to_string()
    }
}

impl LogFilter {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("category", self.category.clone()),
            ("level", self.level.clone()),
            ("service", self.service.clone()),
            ("action", self.action.clone()),
            ("bot_id", self.bot_id.clone()),
            ("q", self.q.clone()),
            ("from", utc(&self.from)),
            ("to", utc(&self.to)),
        ]
    }

    fn path(&self, base: &str, extra: &[(&str, &str)]) -> String {
        let owned = self.pairs();
        let mut pairs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
        pairs.extend_from_slice(extra);
        with_query(base, &pairs)
    }

    /// This page's own address (the form's values, as typed) with `cursor`.
    fn page_path(&self, cursor: &str) -> String {
        with_query(
            "/console/logs",
            &[
                ("category", &self.category),
                ("level", &self.level),
                ("service", &self.service),
                ("action", &self.action),
                ("bot_id", &self.bot_id),
                ("q", &self.q),
                ("from", &self.from),
                ("to", &self.to),
                ("cursor", cursor),
            ],
        )
    }
}

const CATEGORIES: [&str; 4] = ["user_activity", "debug", "terminal", "console"];
const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "fatal"];

fn choice(id: &str, name: &str, label: &str, options: &[&str], chosen: &str) -> Markup {
    html! {
        div {
            label for=(id) { (label) }
            select #(id) name=(name) {
                option value="" selected[chosen.is_empty()] { "Any" }
                @for option in options {
                    option value=(option) selected[chosen == *option] { (option) }
                }
            }
        }
    }
}

fn field(id: &str, name: &str, label: &str, kind: &str, value: &str) -> Markup {
    html! {
        div {
            label for=(id) { (label) }
            input #(id) type=(kind) name=(name) value=(value);
        }
    }
}

fn filter_form(filter: &LogFilter) -> Markup {
    html! {
        form.panel method="get" action="/console/logs" role="search" aria-label="Filter events" {
            div.filters {
                (choice("l-category", "category", "Category", &CATEGORIES, &filter.category))
                (choice("l-level", "level", "Level", &LEVELS, &filter.level))
                (field("l-service", "service", "Service", "text", &filter.service))
                (field("l-action", "action", "Action", "text", &filter.action))
                (field("l-bot", "bot_id", "Bot id", "text", &filter.bot_id))
                (field("l-q", "q", "Words in the message", "search", &filter.q))
                (field("l-from", "from", "From (UTC)", "datetime-local", &filter.from))
                (field("l-to", "to", "To (UTC)", "datetime-local", &filter.to))
                div { button type="submit" { "Search" } }
            }
        }
    }
}

/// One event as a table row (the live tail renders the same on the page's script side).
fn event_row(event: &Value) -> Markup {
    let actor = event["actor_name"]
        .as_str()
        .or(event["actor_service"].as_str())
        .unwrap_or("");
    html! {
        tr {
            td { time datetime=(text(event, "time")) { (text(event, "time")) } }
            td.optional { (text(event, "category")) }
            td { (text(event, "level")) }
            td.optional { (text(event, "service")) }
            td.optional { (actor) }
            td { (text(event, "action")) }
            td { (text(event, "message")) }
        }
    }
}

fn events_table(events: &[Value], live_path: &str) -> Markup {
    html! {
        div.table-wrap { table data-tail=(live_path) {
            caption.muted { "Newest first" }
            thead { tr {
                th scope="col" { "Time (UTC)" }
                th.optional scope="col" { "Category" }
                th scope="col" { "Level" }
                th.optional scope="col" { "Service" }
                th.optional scope="col" { "Actor" }
                th scope="col" { "Action" }
                th scope="col" { "Message" }
            } }
            tbody { @for event in events { (event_row(event)) } }
        } }
    }
}

/// `GET /console/logs`.
pub async fn show(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(filter): Query<LogFilter>,
) -> Response {
    let person = match console.person(&headers).await {
        Ok(person) => person,
        Err(to_sign_in) => return to_sign_in,
    };
    let api_path = filter.path(
        "/api/v1/logs/events",
        &[("limit", "50"), ("cursor", &filter.cursor)],
    );
    let listing = match console.api.get(&person.api, &api_path).await {
        Ok(listing) => listing,
        Err(failure) => return console.failure_page(Some(&person), &failure),
    };
    let events = listing["items"].as_array().cloned().unwrap_or_default();
    let body = html! {
        h1 { "Logs" }
        (filter_form(&filter))
        div.actions {
            a href=(filter.path("/console/logs/export", &[("format", "csv")])) download { "Export as CSV" }
            a href=(filter.path("/console/logs/export", &[("format", "ndjson")])) download { "Export as NDJSON" }
        }
        @if events.is_empty() {
            p.notice { "No event you may read matches." }
        }
        p.follow hidden {
            input #follow type="checkbox" data-follow;
            label for="follow" { "Follow new events as they arrive" }
        }
        (events_table(&events, &filter.path("/console/logs/live", &[])))
        nav.actions aria-label="Pages" {
            @if !filter.cursor.is_empty() {
                a href=(filter.page_path("")) { "Newest" }
            }
            @if let Some(next) = listing["next_cursor"].as_str() {
                a href=(filter.page_path(next)) rel="next" { "Older" }
            }
        }
    };
    page("Logs", Some(&person), body).into_response()
}

/// `GET /console/logs/export`: the API's export, streamed through as a download.
pub async fn export(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(filter): Query<LogFilter>,
    Query(format): Query<ExportFormat>,
) -> Response {
    let person = match console.person(&headers).await {
        Ok(person) => person,
        Err(to_sign_in) => return to_sign_in,
    };
    let csv = format.format == "csv";
    let path = filter.path(
        "/api/v1/logs/export",
        &[("format", if csv { "csv" } else { "ndjson" })],
    );
    match console.api.get_stream(&person.api, &path).await {
        Ok(answer) => {
            let (kind, name) = if csv {
                ("text/csv; charset=utf-8", "events.csv")
            } else {
                ("application/x-ndjson", "events.ndjson")
            };
            let disposition = format!("attachment; filename=\"{name}\"");
            (
                [
                    (CONTENT_TYPE, kind.to_string()),
                    (CONTENT_DISPOSITION, disposition),
                ],
                Body::from_stream(answer.bytes_stream()),
            )
                .into_response()
        }
        Err(failure) => console.failure_page(Some(&person), &failure),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ExportFormat {
    #[serde(default)]
    format: String,
}

/// `GET /console/logs/live`: every second, the events newer than the newest sent, as the
/// person reads them; the stream ends with the session.
pub async fn live(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(filter): Query<LogFilter>,
) -> Response {
    let permit = match super::posts::open_live(&console, &headers).await {
        Ok(permit) => permit,
        Err(answer) => return answer,
    };
    // From now on: the page already shows what came before.
    let mut filter = filter;
    filter.from.clear();
    let since = platform::time_fmt::rfc3339_from_millis(console.sessions.now_millis());
    let state = (console, headers, filter, since, permit);
    let stream = futures::stream::unfold(
        state,
        |(console, headers, filter, since, permit)| async move {
            loop {
                tokio::time::sleep(TAIL_INTERVAL).await;
                let person = console.person_quietly(&headers).await.ok()?;
                let path =
                    filter.path("/api/v1/logs/events", &[("from", &since), ("limit", "200")]);
                let listing = console.api.get(&person.api, &path).await.ok()?;
                let events = listing["items"].as_array().cloned().unwrap_or_default();
                if let Some(newest) = events.first() {
                    // `from` is inclusive: the next read starts just after the newest sent.
                    let next = newest["time"]
                        .as_str()
                        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                        .map(|t| (t + jiff::SignedDuration::from_millis(1)).to_string())
                        .unwrap_or(since.clone());
                    let rows: Vec<String> =
                        events.iter().map(|e| event_row(e).into_string()).collect();
                    let event = Event::default().event("events").json_data(rows).ok()?;
                    return Some((
                        Ok::<_, Infallible>(event),
                        (console, headers, filter, next, permit),
                    ));
                }
            }
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
