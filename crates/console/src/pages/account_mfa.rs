//! A signed-in person's own second factor, from their account page: setting up an
//! authenticator app (the API's pending secret as a QR code drawn on the server, confirmed by
//! the app's first code, then the recovery codes shown once) and turning it off with their
//! password. The console keeps nothing of the secret: the API holds it until confirmed.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use secrecy::ExposeSecret;
use serde_json::json;

use super::enrolment::qr_code;
use super::layout::{csrf_field, page};
use super::{Console, FormFields, Person, see_other};

/// The second-factor section of the account page.
pub fn section(person: &Person, enabled: bool) -> Markup {
    html! {
        section.panel aria-labelledby="mfa" {
            h2 #mfa { "Second factor" }
            @if enabled {
                p { "You sign in with an authenticator app's code after your password." }
                form method="post" action="/console/account/mfa/remove" {
                    (csrf_field(&person.csrf))
                    label for="m-password" { "Your password, to turn it off" }
                    input #m-password type="password" name="password" autocomplete="current-password" required;
                    p { button.secondary type="submit" { "Turn off the second factor" } }
                }
            } @else {
                p { "You sign in with your password alone." }
                form method="post" action="/console/account/mfa/start" {
                    (csrf_field(&person.csrf))
                    button type="submit" { "Set up an authenticator app" }
                }
            }
        }
    }
}

/// `POST /console/account/mfa/start`: a new pending secret from the API, shown to scan.
pub async fn start(State(console): State<Console>, headers: HeaderMap, body: Bytes) -> Response {
    let form = FormFields::parse(&body);
    let person = match console.form_person(&headers, &form).await {
        Ok(person) => person,
        Err(answer) => return answer,
    };
    let enrolment = match console.api.enrol_totp(&person.api).await {
        Ok(enrolment) => enrolment,
        Err(failure) => return console.failure_page(Some(&person), &failure),
    };
    let body = html! {
        h1 { "Set up your authenticator app" }
        section.panel {
            p { "Scan the code with an authenticator app (or type the secret into it), then enter "
                "the 6-digit code it shows." }
            (qr_code(enrolment.otpauth_uri.expose_secret()))
            p { "Secret: " code.secret { (enrolment.secret.expose_secret()) } }
            form method="post" action="/console/account/mfa/confirm" {
                (csrf_field(&person.csrf))
                label for="code" { "The 6-digit code" }
                input #code type="text" name="code" inputmode="numeric" autocomplete="one-time-code" required;
                p { button type="submit" { "Confirm" } }
            }
        }
    };
    page("Set up your authenticator app", Some(&person), body).into_response()
}

/// `POST /console/account/mfa/confirm`: the app's first code turns the second factor on; the
/// recovery codes are shown once.
pub async fn confirm(State(console): State<Console>, headers: HeaderMap, body: Bytes) -> Response {
    let form = FormFields::parse(&body);
    let person = match console.form_person(&headers, &form).await {
        Ok(person) => person,
        Err(answer) => return answer,
    };
    let now = console.sessions.now_millis();
    let codes = match console
        .api
        .confirm_totp(&person.api, form.value("code"), now)
        .await
    {
        Ok((codes, _)) => codes,
        Err(failure) => return console.failure_page(Some(&person), &failure),
    };
    let body = html! {
        h1 { "Your recovery codes" }
        section.panel {
            p { "Each signs you in once if you lose your authenticator app. Keep them somewhere "
                "safe: they are shown only now." }
            ul.recovery-codes { @for code in &codes { li { code { (code) } } } }
            p { a href="/console/account" { "Back to your account" } }
        }
    };
    page("Your recovery codes", Some(&person), body).into_response()
}

/// `POST /console/account/mfa/remove`: the second factor off, with the person's password.
pub async fn remove(State(console): State<Console>, headers: HeaderMap, body: Bytes) -> Response {
    let form = FormFields::parse(&body);
    let person = match console.form_person(&headers, &form).await {
        Ok(person) => person,
        Err(answer) => return answer,
    };
    let request = json!({"password": form.value("password")});
    match console
        .api
        .delete_with(&person.api, "/api/v1/auth/mfa/totp", &request)
        .await
    {
        Ok(_) => see_other("/console/account#mfa"),
        Err(failure) => console.failure_page(Some(&person), &failure),
    }
}
