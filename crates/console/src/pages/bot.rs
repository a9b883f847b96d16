//! One bot: its status with the pause/resume action, the composer, its latest posts with
//! their states (kept current), its followers and posts over 30 days as charts, its profile
//! (editable), its credentials and its latest activity.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde_json::Value;

use super::charts::{Point, line_chart};
use super::layout::{csrf_field, page};
use super::{Console, Person, text};
use crate::api::{ApiFailure, segment};

/// How far back the charts look.
const CHART_DAYS: i64 = 30;
/// Activity events the page shows.
const SHOWN_EVENTS: usize = 20;

/// The bot's figures over the last days, as charts in the bot's zone.
fn metrics(bot: &Value, snapshots: &Result<Value, ApiFailure>) -> Markup {
    let zone = text(bot, "time_zone");
    let items = match snapshots {
        Ok(listing) => listing["items"].as_array().cloned().unwrap_or_default(),
        Err(failure) => return unavailable("metrics", "Followers and posts", failure),
    };
    let series = |field: &str| -> Vec<Point> {
        items
            .iter()
            .filter_map(|snapshot| {
                let at: jiff::Timestamp = snapshot["taken_at"].as_str()?.parse().ok()?;
                Some((at.as_millisecond(), snapshot[field].as_i64()?))
            })
            .collect()
    };
    html! {
        section.panel aria-labelledby="metrics" {
            h2 #metrics { "Followers and posts, last " (CHART_DAYS) " days" }
            (line_chart("chart-followers", "Followers", &series("followers"), zone))
            (line_chart("chart-posts", "Posts on X", &series("posts"), zone))
        }
    }
}

/// The bot's latest activity, as far as the person may read the logs.
fn activity(events: &Result<Value, ApiFailure>) -> Markup {
    let items = match events {
        Ok(listing) => listing["items"].as_array().cloned().unwrap_or_default(),
        Err(failure) => return unavailable("activity", "Activity", failure),
    };
    html! {
        section.panel aria-labelledby="activity" {
            h2 #activity { "Activity, last " (CHART_DAYS) " days" }
            @if items.is_empty() {
                p.muted { "Nothing recorded yet." }
            } @else {
                div.table-wrap { table {
                    caption.muted { "Newest first" }
                    thead { tr {
                        th scope="col" { "Time (UTC)" } th scope="col" { "Who" }
                        th scope="col" { "What" } th.optional scope="col" { "Details" }
                    } }
                    tbody { @for event in &items { tr {
                        td { time datetime=(text(event, "time")) { (text(event, "time")) } }
                        td { (event["actor_name"].as_str().or(event["actor_service"].as_str()).unwrap_or("")) }
                        td { (text(event, "action")) }
                        td.optional { (text(event, "message")) }
                    } } }
                } }
            }
        }
    }
}

/// A section the API would not fill for this person (their role) or could not.
fn unavailable(id: &str, title: &str, failure: &ApiFailure) -> Markup {
    html! {
        section.panel aria-labelledby=(id) {
            h2 #(id) { (title) }
            @if failure.status == StatusCode::FORBIDDEN {
                p.muted { "Your role does not read this." }
            } @else {
                p.muted { (failure.message) }
            }
        }
    }
}

fn status_form(person: &Person, bot: &Value) -> Markup {
    let id = text(bot, "bot_id");
    let active = text(bot, "status") == "active";
    html! {
        form.actions method="post" action="/console/bots/batch" {
            (csrf_field(&person.csrf))
            input type="hidden" name="bot_id" value=(id);
            @if active {
                button type="submit" name="action" value="pause-selected" { "Pause this bot" }
            } @else {
                button type="submit" name="action" value="resume-selected" { "Resume this bot" }
            }
        }
    }
}

/// `GET /console/bots/{bot_id}`.
pub async fn show(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(bot_id): Path<String>,
) -> Response {
    let person = match console.person(&headers).await {
        Ok(person) => person,
        Err(to_sign_in) => return to_sign_in,
    };
    let bot_path = format!("/api/v1/bots/{}", segment(&bot_id));
    let posts_path = format!("{bot_path}/posts?limit={}", super::posts::SHOWN_POSTS);
    let secrets_path = format!("/api/v1/botdata/bots/{}", segment(&bot_id));
    let since = console.sessions.now_millis() - CHART_DAYS * 86_400_000;
    let since = jiff::Timestamp::from_millisecond(since).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let metrics_path = format!("{bot_path}/metrics?from={since}");
    // The Logging service reads the last hour unless told; the page looks as far back as
    // its charts.
    let events_path = format!(
        "/api/v1/logs/events?category=user_activity&bot_id={}&from={since}&limit={SHOWN_EVENTS}",
        segment(&bot_id)
    );
    let (bot, posts, secrets, snapshots, events) = tokio::join!(
        console.api.get(&person.api, &bot_path),
        console.api.get(&person.api, &posts_path),
        console.api.get(&person.api, &secrets_path),
        console.api.get(&person.api, &metrics_path),
        console.api.get(&person.api, &events_path)
    );
    let bot = match bot {
        Ok(bot) => bot,
        Err(failure) => return console.failure_page(Some(&person), &failure),
    };
    let posts = match posts {
        Ok(listing) => listing["items"].as_array().cloned().unwrap_or_default(),
        Err(failure) => return console.failure_page(Some(&person), &failure),
    };
    let name = text(&bot, "name").to_string();
    let body = html! {
        p { a href="/console/bots" { "← Fleet" } }
        h1 { (name) }
        (status_form(&person, &bot))
        (super::posts::composer(&person, &bot))
        (super::posts::posts_table(&person, &bot, &posts))
        (metrics(&bot, &snapshots))
        (super::profile::section(&person, &bot))
        (super::secrets::section(&person, &bot_id, &secrets))
        (activity(&events))
    };
    page(&name, Some(&person), body).into_response()
}
