//! People: the accounts, roles and service clients (admins, as the API allows), and a
//! person's own account — profile, sessions (each can be ended), and a password change.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::layout::{csrf_field, page};
use super::{Console, FormFields, Person, see_other, text};
use crate::api::{ApiFailure, segment, with_query};

fn words(value: &Value) -> String {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

fn yes(value: &Value) -> &'static str {
    if value == &Value::Bool(true) {
        "yes"
    } else {
        "no"
    }
}

fn users_section(users: &Result<Value, ApiFailure>) -> Markup {
    html! {
        section.panel aria-labelledby="users" {
            h2 #users { "Accounts" }
            @match users {
                Ok(listing) => {
                    div.table-wrap { table {
                        thead { tr {
                            th scope="col" { "Username" } th scope="col" { "Name" } th scope="col" { "Team" }
                            th scope="col" { "Roles" } th.optional scope="col" { "Second factor" }
                            th.optional scope="col" { "Must change password" } th.optional scope="col" { "Disabled" }
                        } }
                        tbody { @for user in listing["items"].as_array().into_iter().flatten() { tr {
                            td { a href={"/console/people/" (segment(text(user, "id")))} { (text(user, "username")) } }
                            td { (text(user, "display_name")) }
                            td { (text(user, "team")) } td { (words(&user["roles"])) }
                            td.optional { (yes(&user["mfa_enabled"])) }
                            td.optional { (yes(&user["must_change_password"])) }
                            td.optional { (yes(&user["disabled"])) }
                        } } }
                    } }
                    @if let Some(next) = listing["next_cursor"].as_str() {
                        p { a href=(with_query("/console/people", &[("cursor", next)])) rel="next" { "More accounts" } }
                    }
                }
                Err(failure) => p.muted { (failure.message) },
            }
        }
    }
}

fn roles_section(roles: &Result<Value, ApiFailure>) -> Markup {
    html! {
        section.panel aria-labelledby="roles" {
            h2 #roles { "Roles" }
            @match roles {
                Ok(roles) => dl.facts { @for role in roles.as_array().into_iter().flatten() {
                    dt { (text(role, "name")) }
                    dd { (text(role, "description")) br; span.muted { (words(&role["permissions"])) } }
                } },
                Err(failure) => p.muted { (failure.message) },
            }
        }
    }
}

fn clients_section(clients: &Result<Value, ApiFailure>) -> Markup {
    html! {
        section.panel aria-labelledby="clients" {
            h2 #clients { "Service clients" }
            @match clients {
                Ok(clients) => dl.facts { @for client in clients.as_array().into_iter().flatten() {
                    dt { code { (text(client, "client_id")) } }
                    dd { (text(client, "description")) br; span.muted { "scopes: " (words(&client["scopes"])) } }
                } },
                Err(failure) => p.muted { (failure.message) },
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct PeopleQuery {
    #[serde(default)]
    cursor: String,
}

/// `GET /console/people`.
pub async fn show(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(query): Query<PeopleQuery>,
) -> Response {
    let person = match console.person(&headers).await {
        Ok(person) => person,
        Err(answer) => return answer,
    };
    let users_path = with_query(
        "/api/v1/auth/users",
        &[("limit", "50"), ("cursor", &query.cursor)],
    );
    let (users, roles, clients) = tokio::join!(
        console.api.get(&person.api, &users_path),
        console.api.get(&person.api, "/api/v1/auth/roles"),
        console.api.get(&person.api, "/api/v1/auth/clients")
    );
    let body = html! {
        h1 { "People" }
        (users_section(&users))
        (super::accounts::new_account_form(&person, &roles))
        (roles_section(&roles))
        (clients_section(&clients))
    };
    page("People", Some(&person), body).into_response()
}

fn sessions_section(person: &Person, sessions: &Value) -> Markup {
    let current = sessions["current"].as_str();
    html! {
        section.panel aria-labelledby="sessions" {
            h2 #sessions { "Your sessions" }
            div.table-wrap { table {
                thead { tr {
                    th scope="col" { "Started" } th scope="col" { "Last used" }
                    th.optional scope="col" { "From" } th.optional scope="col" { "Browser or client" }
                    th scope="col" { span.visually-hidden { "Actions" } }
                } }
                tbody { @for session in sessions["items"].as_array().into_iter().flatten() {
                    @let id = text(session, "id");
                    tr {
                        td { (text(session, "created_at")) } td { (text(session, "last_used_at")) }
                        td.optional { (text(session, "ip")) } td.optional { (text(session, "user_agent")) }
                        td { @if Some(id) == current { "this console" } @else {
                            form method="post" action={"/console/account/sessions/" (segment(id)) "/end"} {
                                (csrf_field(&person.csrf))
                                button.secondary type="submit" { "End it" }
                            }
                        } }
                    }
                } }
            } }
        }
    }
}

fn password_section(person: &Person) -> Markup {
    html! {
        section.panel aria-labelledby="password" {
            h2 #password { "Change your password" }
            form method="post" action="/console/account/password" {
                (csrf_field(&person.csrf))
                label for="a-current" { "Current password" }
                input #a-current type="password" name="current_password" autocomplete="current-password" required;
                label for="a-new" { "New password" }
                input #a-new type="password" name="new_password" autocomplete="new-password" required;
                p { button type="submit" { "Change it" } }
            }
        }
    }
}

/// `GET /console/account`: the person's own profile, sessions and password.
pub async fn account(State(console): State<Console>, headers: HeaderMap) -> Response {
    let person = match console.person(&headers).await {
        Ok(person) => person,
        Err(answer) => return answer,
    };
    let (me, sessions) = tokio::join!(
        console.api.get(&person.api, "/api/v1/auth/me"),
        console.api.get(&person.api, "/api/v1/auth/sessions")
    );
    let (me, sessions) = match (me, sessions) {
        (Ok(me), Ok(sessions)) => (me, sessions),
        (Err(failure), _) | (_, Err(failure)) => {
            return console.failure_page(Some(&person), &failure);
        }
    };
    let body = html! {
        h1 { "Your account" }
        section.panel aria-labelledby="profile" {
            h2 #profile { "Profile" }
            dl.facts {
                dt { "Username" } dd { (text(&me, "username")) }
                dt { "Name" } dd { (text(&me, "display_name")) }
                dt { "Team" } dd { (text(&me, "team")) }
                dt { "Roles" } dd { (words(&me["roles"])) }
                dt { "Second factor" } dd { (yes(&me["mfa_enabled"])) }
            }
        }
        (sessions_section(&person, &sessions))
        (password_section(&person))
        (super::account_mfa::section(&person, me["mfa_enabled"] == true))
    };
    page("Your account", Some(&person), body).into_response()
}

/// `POST /console/account/password`: the Authentication service's own rules decide.
pub async fn change_password(
    State(console): State<Console>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = FormFields::parse(&body);
    let person = match console.form_person(&headers, &form).await {
        Ok(person) => person,
        Err(answer) => return answer,
    };
    let request = json!({
        "current_password": form.value("current_password"),
        "new_password": form.value("new_password"),
    });
    match console
        .api
        .post(&person.api, "/api/v1/auth/password", &request)
        .await
    {
        Ok(_) => see_other("/console/account#password"),
        Err(failure) => console.failure_page(Some(&person), &failure),
    }
}

/// `POST /console/account/sessions/{session_id}/end`: ends another session of the person's.
pub async fn end_session(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(session_id): Path<String>,
    body: Bytes,
) -> Response {
    let form = FormFields::parse(&body);
    let person = match console.form_person(&headers, &form).await {
        Ok(person) => person,
        Err(answer) => return answer,
    };
    let path = format!("/api/v1/auth/sessions/{}", segment(&session_id));
    match console.api.delete(&person.api, &path).await {
        Ok(_) => see_other("/console/account#sessions"),
        Err(failure) => console.failure_page(Some(&person), &failure),
    }
}
