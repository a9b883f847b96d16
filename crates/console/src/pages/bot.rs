//! One bot: its status with the pause/resume action, the composer, its latest posts with
//! their states (kept current), and its profile.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde_json::Value;

use super::layout::{csrf_field, page};
use super::{Console, Person, text};
use crate::api::segment;

fn profile(bot: &Value) -> Markup {
    let status = text(bot, "status");
    html! {
        section.panel aria-labelledby="profile" {
            h2 #profile { "Profile" }
            dl.facts {
                dt { "Status" }
                dd { span class={"status status-" (status)} { (status) }
                    @if let Some(reason) = bot["status_reason"].as_str() { " " span.muted { (reason) } } }
                dt { "X handle" }
                dd { @if let Some(handle) = bot["x_handle"].as_str() { "@" (handle) } @else { span.muted { "not connected" } } }
                dt { "Team" }
                dd { (text(bot, "team")) }
                dt { "Owner" }
                dd { (text(bot, "owner_id")) }
                dt { "Time zone" }
                dd { (text(bot, "time_zone")) }
                dt { "X app" }
                dd { (text(bot, "x_app")) }
                dt { "Description" }
                dd { (text(bot, "description")) }
                dt { "Posting slots" }
                dd { @for slot in bot["posting_slots"].as_array().into_iter().flatten() {
                    (slot_text(slot)) br;
                } }
            }
        }
    }
}

/// A posting slot as people read it: "mon 09:00".
fn slot_text(slot: &Value) -> String {
    match slot {
        Value::Object(map) => map
            .values()
            .filter_map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .or_else(|| Some(v.to_string()))
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
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
    let (bot, posts, secrets) = tokio::join!(
        console.api.get(&person.api, &bot_path),
        console.api.get(&person.api, &posts_path),
        console.api.get(&person.api, &secrets_path)
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
        (profile(&bot))
        (super::secrets::section(&person, &bot_id, &secrets))
    };
    page(&name, Some(&person), body).into_response()
}
