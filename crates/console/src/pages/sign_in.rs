//! Signing in (the password, then the second factor when the account has one) and out. A
//! visit gets a session before it signs in, so the sign-in form carries a CSRF token too;
//! every step that changes who the session is gets a fresh session id.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::layout::{csrf_field, page};
use super::{Console, FormFields, csrf_refused, see_other};
use crate::api::{LoginOutcome, OnBehalf};
use crate::security;
use crate::session::{Session, SessionId, Stage};

/// The session of this request, if it is live and `wanted` accepts its stage.
pub fn session_at(
    console: &Console,
    headers: &HeaderMap,
    wanted: fn(&Stage) -> bool,
) -> Option<(SessionId, Session)> {
    let id = security::session_id(headers)?;
    let session = console.sessions.get(&id)?;
    wanted(&session.stage).then_some((id, session))
}

/// Replaces the request's session (if any) with a new one at `stage`, and answers with a
/// redirect to `to` carrying its cookie (or 503 when the store is full).
pub fn move_to(console: &Console, headers: &HeaderMap, stage: Stage, to: &str) -> Response {
    if let Some(old) = security::session_id(headers) {
        console.sessions.end(&old);
    }
    match console.sessions.start(stage) {
        Ok((id, _)) => {
            let mut response = see_other(to);
            let cookie = security::session_cookie(&id, headers, console.secure_cookie);
            response.headers_mut().insert(SET_COOKIE, cookie);
            response
        }
        Err(_) => busy(),
    }
}

fn busy() -> Response {
    let body = html! {
        h1 { "The console is busy" }
        div.notice.error role="alert" { "Too many sessions are open; try again in a minute." }
    };
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, page("Busy", None, body)).into_response();
    response
        .headers_mut()
        .insert("retry-after", axum::http::HeaderValue::from_static("60"));
    response
}

fn sign_in_form(csrf: &str, username: &str, problem: Option<&str>) -> Markup {
    let body = html! {
        div.panel.narrow {
            h1 { "Sign in" }
            @if let Some(problem) = problem {
                div.notice.error role="alert" { (problem) }
            }
            form method="post" action="/console/sign-in" {
                (csrf_field(csrf))
                label for="username" { "Username" }
                input #username type="text" name="username" value=(username)
                    autocomplete="username" required autofocus;
                label for="password" { "Password" }
                input #password type="password" name="password"
                    autocomplete="current-password" required;
                p { button type="submit" { "Sign in" } }
            }
        }
    };
    page("Sign in", None, body)
}

/// `GET /console/sign-in`.
pub async fn form(State(console): State<Console>, headers: HeaderMap) -> Response {
    if console.person(&headers).await.is_ok() {
        return see_other("/console/bots");
    }
    let signed_out = |stage: &Stage| matches!(stage, Stage::SignedOut);
    if let Some((_, session)) = session_at(&console, &headers, signed_out) {
        return sign_in_form(&session.csrf, "", None).into_response();
    }
    match console.sessions.start(Stage::SignedOut) {
        Ok((id, session)) => {
            let cookie = security::session_cookie(&id, &headers, console.secure_cookie);
            let mut response = sign_in_form(&session.csrf, "", None).into_response();
            response.headers_mut().insert(SET_COOKIE, cookie);
            response
        }
        Err(_) => busy(),
    }
}

/// `POST /console/sign-in`: the password step.
pub async fn submit(State(console): State<Console>, headers: HeaderMap, body: Bytes) -> Response {
    let form = FormFields::parse(&body);
    let signed_out = |stage: &Stage| matches!(stage, Stage::SignedOut);
    let Some((_, session)) = session_at(&console, &headers, signed_out) else {
        return see_other("/console/sign-in");
    };
    if !security::csrf_matches(&session.csrf, form.value("csrf")) {
        return csrf_refused(None);
    }
    let username = form.value("username").trim().to_string();
    let now = console.sessions.now_millis();
    let visitor = super::visitor(&headers);
    let outcome = console
        .api
        .login(&visitor, &username, form.value("password"), now)
        .await;
    let refused = |message: &str, status: StatusCode| {
        (
            status,
            sign_in_form(&session.csrf, &username, Some(message)),
        )
            .into_response()
    };
    match outcome {
        LoginOutcome::Refused(failure) => refused(&failure.message, failure.status),
        outcome => next_step(&console, &headers, username.clone(), outcome).await,
    }
}

/// Where a password that the API accepted leads: signed in, the second factor, a password
/// change, or the enrolment of an authenticator app — each a session of its own.
pub async fn next_step(
    console: &Console,
    headers: &HeaderMap,
    username: String,
    outcome: LoginOutcome,
) -> Response {
    let stage = match outcome {
        LoginOutcome::SignedIn(tokens) => Stage::SignedIn { username, tokens },
        LoginOutcome::SecondFactor(mfa_token) => Stage::AwaitingSecondFactor {
            username,
            mfa_token,
        },
        LoginOutcome::PasswordChangeRequired => Stage::PasswordChangeRequired { username },
        LoginOutcome::EnrolmentRequired(mfa_token) => {
            let enrolling = OnBehalf {
                token: Some(mfa_token.clone()),
                address: super::visitor(headers).address,
            };
            match console.api.enrol_totp(&enrolling).await {
                Ok(enrolment) => Stage::Enrolling {
                    username,
                    mfa_token,
                    enrolment,
                },
                Err(failure) => return console.failure_page(None, &failure),
            }
        }
        LoginOutcome::Refused(failure) => return console.failure_page(None, &failure),
    };
    let to = match &stage {
        Stage::SignedIn { .. } => "/console/bots",
        Stage::AwaitingSecondFactor { .. } => "/console/sign-in/second-factor",
        Stage::PasswordChangeRequired { .. } => "/console/sign-in/password",
        _ => "/console/sign-in/enrol",
    };
    move_to(console, headers, stage, to)
}

fn second_factor_markup(csrf: &str, problem: Option<&str>) -> Markup {
    let body = html! {
        div.panel.narrow {
            h1 { "Second factor" }
            @if let Some(problem) = problem {
                div.notice.error role="alert" { (problem) }
            }
            form method="post" action="/console/sign-in/second-factor" {
                (csrf_field(csrf))
                label for="code" { "The 6-digit code from your authenticator app, or a recovery code" }
                input #code type="text" name="code" autocomplete="one-time-code"
                    inputmode="text" required autofocus;
                p { button type="submit" { "Continue" } }
            }
            p { a href="/console/sign-in" { "Start again" } }
        }
    };
    page("Second factor", None, body)
}

fn awaiting(stage: &Stage) -> bool {
    matches!(stage, Stage::AwaitingSecondFactor { .. })
}

/// `GET /console/sign-in/second-factor`.
pub async fn second_factor_form(State(console): State<Console>, headers: HeaderMap) -> Response {
    match session_at(&console, &headers, awaiting) {
        Some((_, session)) => second_factor_markup(&session.csrf, None).into_response(),
        None => see_other("/console/sign-in"),
    }
}

/// `POST /console/sign-in/second-factor`.
pub async fn second_factor_submit(
    State(console): State<Console>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = FormFields::parse(&body);
    let Some((_, session)) = session_at(&console, &headers, awaiting) else {
        return see_other("/console/sign-in");
    };
    if !security::csrf_matches(&session.csrf, form.value("csrf")) {
        return csrf_refused(None);
    }
    let Stage::AwaitingSecondFactor {
        username,
        mfa_token,
    } = session.stage
    else {
        return see_other("/console/sign-in");
    };
    let now = console.sessions.now_millis();
    match console
        .api
        .login_second_factor(
            &super::visitor(&headers),
            &mfa_token,
            form.value("code"),
            now,
        )
        .await
    {
        Ok(tokens) => {
            let stage = Stage::SignedIn { username, tokens };
            move_to(&console, &headers, stage, "/console/bots")
        }
        Err(failure) => {
            let form = second_factor_markup(&session.csrf, Some(&failure.message));
            (failure.status, form).into_response()
        }
    }
}

/// `POST /console/sign-out`: ends the session here and at the API.
pub async fn sign_out(State(console): State<Console>, headers: HeaderMap, body: Bytes) -> Response {
    let form = FormFields::parse(&body);
    let person = match console.form_person(&headers, &form).await {
        Ok(person) => person,
        Err(answer) => return answer,
    };
    if let Err(failure) = console.api.logout(&person.api).await {
        tracing::warn!(error_code = %failure.error_code, "the API did not end the session; it ends here");
    }
    console.sessions.end(&person.session);
    let mut response = see_other("/console/sign-in");
    response
        .headers_mut()
        .insert(SET_COOKIE, security::cleared_cookie());
    response
}
