//! A bot's profile on its page, and editing it: name, description, time zone and posting
//! slots, sent as the API's `PATCH` with the version the page was read at, so an edit made
//! from a stale page is refused (412) rather than written over someone else's.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};
use serde_json::{Value, json};

use super::layout::csrf_field;
use super::{Console, FormFields, Person, see_other, text};
use crate::api::{ApiFailure, segment};

/// The profile as facts, and the form that edits it.
pub fn section(person: &Person, bot: &Value) -> Markup {
    let status = text(bot, "status");
    let slots = slots_text(bot);
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
                dd { (slots) }
            }
            details {
                summary { "Edit the profile" }
                (edit_form(person, bot, &slots))
            }
        }
    }
}

fn edit_form(person: &Person, bot: &Value, slots: &str) -> Markup {
    let id = text(bot, "bot_id");
    html! {
        form method="post" action={"/console/bots/" (segment(id)) "/profile"} {
            (csrf_field(&person.csrf))
            input type="hidden" name="version" value=(bot["version"].as_i64().unwrap_or(0));
            label for="p-name" { "Name" }
            input #p-name type="text" name="name" value=(text(bot, "name")) required;
            label for="p-description" { "Description (X's bio; it must say the account is automated)" }
            textarea #p-description name="description" rows="3" { (text(bot, "description")) }
            label for="p-zone" { "Time zone (IANA, e.g. Europe/Lisbon)" }
            input #p-zone type="text" name="time_zone" value=(text(bot, "time_zone")) required;
            label for="p-slots" { "Posting slots, in that zone" }
            input #p-slots type="text" name="posting_slots" value=(slots)
                aria-describedby="p-slots-help";
            p #p-slots-help .muted { "Each as a day and a time range, separated by commas: mon 09:00-17:00, tue 09:00-12:00" }
            div.actions { button type="submit" { "Save the profile" } }
        }
    }
}

/// The bot's posting slots as the form writes them: "mon 09:00-17:00, tue 09:00-12:00".
fn slots_text(bot: &Value) -> String {
    bot["posting_slots"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|slot| {
            format!(
                "{} {}-{}",
                text(slot, "day"),
                text(slot, "start"),
                text(slot, "end")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The form's slots as the API takes them; the API checks days and times, this only splits.
fn parse_slots(written: &str) -> Result<Vec<Value>, ApiFailure> {
    written
        .split([',', '\n'])
        .map(str::trim)
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (day, range) = piece.split_once(' ').ok_or_else(|| bad_slot(piece))?;
            let (start, end) = range
                .trim()
                .split_once('-')
                .ok_or_else(|| bad_slot(piece))?;
            Ok(json!({"day": day.to_lowercase(), "start": start.trim(), "end": end.trim()}))
        })
        .collect()
}

fn bad_slot(piece: &str) -> ApiFailure {
    ApiFailure::refused(&format!(
        "posting slots: \"{piece}\" is not a day and a time range, such as mon 09:00-17:00"
    ))
}

/// `POST /console/bots/{bot_id}/profile`.
pub async fn update(
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
    let slots = match parse_slots(form.value("posting_slots")) {
        Ok(slots) => slots,
        Err(failure) => return console.failure_page(Some(&person), &failure),
    };
    let changes = json!({
        "name": form.value("name"),
        "description": form.value("description"),
        "time_zone": form.value("time_zone"),
        "posting_slots": slots,
    });
    let version = form.value("version").parse().unwrap_or(0);
    let path = format!("/api/v1/bots/{}", segment(&bot_id));
    match console
        .api
        .patch(&person.api, &path, version, &changes)
        .await
    {
        Ok(_) => see_other(&format!("/console/bots/{}#profile", segment(&bot_id))),
        Err(failure) => console.failure_page(Some(&person), &failure),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_split_as_written_and_a_piece_without_a_range_is_named() {
        let slots = parse_slots("Mon 09:00-17:00, tue 09:00 - 12:00\nsat 10:00-11:00,").unwrap();
        assert_eq!(
            slots,
            vec![
                json!({"day": "mon", "start": "09:00", "end": "17:00"}),
                json!({"day": "tue", "start": "09:00", "end": "12:00"}),
                json!({"day": "sat", "start": "10:00", "end": "11:00"}),
            ]
        );
        assert!(parse_slots("").unwrap().is_empty(), "no slots is a choice");
        let refused = parse_slots("mon 09:00-17:00, sometimes").unwrap_err();
        assert!(
            refused.message.contains("\"sometimes\""),
            "{}",
            refused.message
        );
    }
}
