//! A bot's credentials: what Secure Bot Data holds for it as metadata only (field, version,
//! who changed it when); a value shown in clear only on a deliberate reveal, confirmed on a
//! page of its own and recorded by Secure Bot Data's audit; new credentials set through the
//! Bot Manager (which stores them in Secure Bot Data and resumes a bot waiting for them).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde_json::{Map, Value, json};

use super::layout::{csrf_field, page};
use super::{Console, FormFields, Person, see_other, text};
use crate::api::{ApiFailure, segment};

/// The credentials section of a bot's page, from Secure Bot Data's metadata (or why there
/// is none to show).
pub fn section(person: &Person, bot_id: &str, metadata: &Result<Value, ApiFailure>) -> Markup {
    html! {
        section.panel aria-labelledby="credentials" {
            h2 #credentials { "Credentials" }
            @match metadata {
                Ok(metadata) => (fields_table(bot_id, metadata)),
                Err(failure) if failure.status == StatusCode::NOT_FOUND => {
                    p.muted { "No credentials are stored for this bot." }
                }
                Err(failure) => p.muted { (failure.message) },
            }
            (replace_form(person, bot_id))
        }
    }
}

fn fields_table(bot_id: &str, metadata: &Value) -> Markup {
    let fields = metadata["fields"].as_array().cloned().unwrap_or_default();
    html! {
        div.table-wrap { table {
            thead { tr {
                th scope="col" { "Field" }
                th scope="col" { "Version" }
                th.optional scope="col" { "Changed" }
                th.optional scope="col" { "By" }
                th scope="col" { span.visually-hidden { "Actions" } }
            } }
            tbody { @for field in &fields {
                @let name = text(field, "field");
                tr {
                    td { code { (name) } }
                    td { (field["current_version"]) }
                    td.optional { (text(field, "updated_at")) }
                    td.optional { (text(field, "updated_by")) }
                    td { a href={"/console/bots/" (segment(bot_id)) "/secrets/" (segment(name)) "/reveal"} {
                        "Reveal" span.visually-hidden { " " (name) } } }
                }
            } }
        } }
    }
}

fn replace_form(person: &Person, bot_id: &str) -> Markup {
    html! {
        details {
            summary { "Set new credentials" }
            form method="post" action={"/console/bots/" (segment(bot_id)) "/credentials"} {
                (csrf_field(&person.csrf))
                p.muted { "The OAuth 2.0 user tokens X issued for the bot's account, and your X app's client id." }
                label for="c-access" { "Access token" }
                input #c-access type="password" name="access_token" autocomplete="off" required;
                label for="c-refresh" { "Refresh token" }
                input #c-refresh type="password" name="refresh_token" autocomplete="off";
                label for="c-client" { "Client id" }
                input #c-client type="text" name="client_id" autocomplete="off" required;
                p { button type="submit" { "Store the credentials" } }
            }
        }
    }
}

/// `POST /console/bots/{bot_id}/credentials`: new credentials through the Bot Manager.
pub async fn replace(
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
    let mut credentials = Map::new();
    for name in ["access_token", "refresh_token", "client_id"] {
        let value = form.value(name).trim();
        if !value.is_empty() {
            credentials.insert(name.into(), json!(value));
        }
    }
    let path = format!("/api/v1/bots/{}/credentials", segment(&bot_id));
    let request = json!({"credentials": credentials});
    match console.api.put(&person.api, &path, &request).await {
        Ok(_) => see_other(&format!("/console/bots/{}#credentials", segment(&bot_id))),
        Err(failure) => console.failure_page(Some(&person), &failure),
    }
}

/// `GET /console/bots/{bot_id}/secrets/{field}/reveal`: asks before anything is revealed.
pub async fn confirm(
    State(console): State<Console>,
    headers: HeaderMap,
    Path((bot_id, field)): Path<(String, String)>,
) -> Response {
    let person = match console.person(&headers).await {
        Ok(person) => person,
        Err(answer) => return answer,
    };
    let action = format!(
        "/console/bots/{}/secrets/{}/reveal",
        segment(&bot_id),
        segment(&field)
    );
    let body = html! {
        p { a href={"/console/bots/" (segment(&bot_id)) "#credentials"} { "← The bot" } }
        h1 { "Reveal " code { (field) } "?" }
        div.notice role="note" {
            "The value will be shown in clear on the next page. Secure Bot Data records that you "
            "revealed it, when, and from where; the record is in the audit trail."
        }
        form method="post" action=(action) {
            (csrf_field(&person.csrf))
            button type="submit" { "Reveal the value" }
        }
    };
    page("Reveal a credential", Some(&person), body).into_response()
}

/// `POST /console/bots/{bot_id}/secrets/{field}/reveal`: the value, once, on a page no
/// cache keeps.
pub async fn reveal(
    State(console): State<Console>,
    headers: HeaderMap,
    Path((bot_id, field)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = FormFields::parse(&body);
    let person = match console.form_person(&headers, &form).await {
        Ok(person) => person,
        Err(answer) => return answer,
    };
    let path = format!(
        "/api/v1/botdata/bots/{}/fields/{}/reveal",
        segment(&bot_id),
        segment(&field)
    );
    let revealed = match console.api.post(&person.api, &path, &json!({})).await {
        Ok(revealed) => revealed,
        Err(failure) => return console.failure_page(Some(&person), &failure),
    };
    let body = html! {
        p { a href={"/console/bots/" (segment(&bot_id)) "#credentials"} { "← The bot" } }
        h1 { code { (field) } ", version " (revealed["version"]) }
        p { code.secret { (text(&revealed, "value")) } }
        p.muted { "This reveal is recorded. Leave this page when you are done; it is not kept." }
    };
    page("Revealed credential", Some(&person), body).into_response()
}
