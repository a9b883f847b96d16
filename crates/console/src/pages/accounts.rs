//! Managing people (admins, as the Authentication API allows): a new account with a one-time
//! password shown once, an account's name, email, team and roles changed, disabled or enabled
//! again (which ends its sessions at the API), and its password reset to a one-time one.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde_json::{Value, json};

use super::layout::{csrf_field, page};
use super::{Console, FormFields, Person, see_other, text};
use crate::api::{ApiFailure, segment};

/// The roles' names as checkboxes, those in `held` ticked.
fn role_boxes(roles: &Value, held: &Value, prefix: &str) -> Markup {
    let held: Vec<&str> = held
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    html! {
        fieldset {
            legend { "Roles" }
            @for role in roles.as_array().into_iter().flatten() {
                @let name = text(role, "name");
                div {
                    input type="checkbox" name="roles" value=(name) id={(prefix) "-" (name)} checked[held.contains(&name)];
                    label.inline for={(prefix) "-" (name)} { (name) }
                }
            }
        }
    }
}

/// The form for a new account, on the People page (for those who may read roles: admins).
pub fn new_account_form(person: &Person, roles: &Result<Value, ApiFailure>) -> Markup {
    let Ok(roles) = roles else {
        return html! {};
    };
    html! {
        section.panel aria-labelledby="new-account" {
            h2 #new-account { "New account" }
            form method="post" action="/console/people" {
                (csrf_field(&person.csrf))
                label for="n-username" { "Username" }
                input #n-username type="text" name="username" required autocomplete="off";
                label for="n-name" { "Name" }
                input #n-name type="text" name="display_name";
                label for="n-email" { "Email" }
                input #n-email type="text" name="email" autocomplete="off";
                label for="n-team" { "Team" }
                input #n-team type="text" name="team";
                (role_boxes(roles, &Value::Null, "n-role"))
                p.muted { "The account gets a one-time password, shown once, to be changed at first sign-in." }
                div.actions { button type="submit" { "Create the account" } }
            }
        }
    }
}

/// A one-time password, shown once.
fn one_time_password(person: &Person, title: &str, username: &str, password: &str) -> Response {
    let body = html! {
        p { a href="/console/people" { "← People" } }
        h1 { (title) }
        p { "The one-time password of " strong { (username) } ":" }
        p { code.secret { (password) } }
        p.muted { "It is shown only now. " (username) " must change it at the next sign-in." }
    };
    page(title, Some(person), body).into_response()
}

/// The form's fields as the API's user fields (an empty team: none).
fn user_fields(form: &FormFields) -> serde_json::Map<String, Value> {
    let mut fields = serde_json::Map::new();
    fields.insert("display_name".into(), json!(form.value("display_name")));
    let email = form.value("email").trim();
    if !email.is_empty() {
        fields.insert("email".into(), json!(email));
    }
    fields.insert("team".into(), json!(form.value("team").trim()));
    fields.insert("roles".into(), json!(form.values("roles")));
    fields
}

/// `POST /console/people`: a new account.
pub async fn create(State(console): State<Console>, headers: HeaderMap, body: Bytes) -> Response {
    let form = FormFields::parse(&body);
    let person = match console.form_person(&headers, &form).await {
        Ok(person) => person,
        Err(answer) => return answer,
    };
    let mut request = user_fields(&form);
    request.insert("username".into(), json!(form.value("username").trim()));
    if form.value("team").trim().is_empty() {
        request.remove("team");
    }
    let made = match console
        .api
        .post(&person.api, "/api/v1/auth/users", &Value::Object(request))
        .await
    {
        Ok(made) => made,
        Err(failure) => return console.failure_page(Some(&person), &failure),
    };
    let username = text(&made["user"], "username");
    match made["temporary_password"].as_str() {
        Some(password) => one_time_password(&person, "Account created", username, password),
        None => see_other("/console/people"),
    }
}

/// `GET /console/people/{user_id}`: one account, its edit form and its password reset.
pub async fn show(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
) -> Response {
    let person = match console.person(&headers).await {
        Ok(person) => person,
        Err(answer) => return answer,
    };
    let path = format!("/api/v1/auth/users/{}", segment(&user_id));
    let (user, roles) = tokio::join!(
        console.api.get(&person.api, &path),
        console.api.get(&person.api, "/api/v1/auth/roles")
    );
    let (user, roles) = match (user, roles) {
        (Ok(user), Ok(roles)) => (user, roles),
        (Err(failure), _) | (_, Err(failure)) => {
            return console.failure_page(Some(&person), &failure);
        }
    };
    let username = text(&user, "username").to_string();
    let action = format!("/console/people/{}", segment(&user_id));
    let body = html! {
        p { a href="/console/people" { "← People" } }
        h1 { (username) }
        section.panel aria-labelledby="edit" {
            h2 #edit { "Account" }
            form method="post" action=(action) {
                (csrf_field(&person.csrf))
                label for="e-name" { "Name" }
                input #e-name type="text" name="display_name" value=(text(&user, "display_name"));
                label for="e-email" { "Email" }
                input #e-email type="text" name="email" value=(text(&user, "email"));
                label for="e-team" { "Team (changing it ends the account's sessions)" }
                input #e-team type="text" name="team" value=(text(&user, "team"));
                (role_boxes(&roles, &user["roles"], "e-role"))
                div {
                    input #e-disabled type="checkbox" name="disabled" value="true" checked[user["disabled"] == true];
                    label.inline for="e-disabled" { "Disabled (ends every session)" }
                }
                div.actions { button type="submit" { "Save the account" } }
            }
        }
        section.panel aria-labelledby="reset" {
            h2 #reset { "Password" }
            form method="post" action={(action) "/reset-password"} {
                (csrf_field(&person.csrf))
                button.secondary type="submit" data-confirm={"Give " (username) " a one-time password?"} { "Reset to a one-time password" }
            }
        }
    };
    page(&username, Some(&person), body).into_response()
}

/// `POST /console/people/{user_id}`: the account changed as the form says.
pub async fn update(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    body: Bytes,
) -> Response {
    let form = FormFields::parse(&body);
    let person = match console.form_person(&headers, &form).await {
        Ok(person) => person,
        Err(answer) => return answer,
    };
    let mut changes = user_fields(&form);
    changes.insert("disabled".into(), json!(form.value("disabled") == "true"));
    let path = format!("/api/v1/auth/users/{}", segment(&user_id));
    match console
        .api
        .patch_any(&person.api, &path, &Value::Object(changes))
        .await
    {
        Ok(_) => see_other(&format!("/console/people/{}", segment(&user_id))),
        Err(failure) => console.failure_page(Some(&person), &failure),
    }
}

/// `POST /console/people/{user_id}/reset-password`.
pub async fn reset_password(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    body: Bytes,
) -> Response {
    let form = FormFields::parse(&body);
    let person = match console.form_person(&headers, &form).await {
        Ok(person) => person,
        Err(answer) => return answer,
    };
    let path = format!("/api/v1/auth/users/{}", segment(&user_id));
    let reset = format!("{path}/reset-password");
    let (answer, user) = (
        console.api.post(&person.api, &reset, &json!({})).await,
        console.api.get(&person.api, &path).await,
    );
    match answer {
        Ok(reset) => {
            let username = user.as_ref().map_or("", |user| text(user, "username"));
            let password = text(&reset, "temporary_password");
            one_time_password(&person, "Password reset", username, password)
        }
        Err(failure) => console.failure_page(Some(&person), &failure),
    }
}
