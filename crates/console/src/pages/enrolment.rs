//! The steps some accounts take before they are signed in: changing a password that must be
//! changed (a temporary one, or one an admin reset), and setting up an authenticator app
//! (TOTP) where the account must have one — the secret as a QR code drawn on the server,
//! confirmed with the app's first code, then the recovery codes, shown once.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, PreEscaped, html};
use secrecy::ExposeSecret;

use super::layout::{csrf_field, page};
use super::sign_in::{next_step, session_at};
use super::{Console, FormFields, csrf_refused, see_other};
use crate::api::OnBehalf;
use crate::security;
use crate::session::{Enrolment, Stage};

fn changing(stage: &Stage) -> bool {
    matches!(stage, Stage::PasswordChangeRequired { .. })
}

fn enrolling(stage: &Stage) -> bool {
    matches!(stage, Stage::Enrolling { .. })
}

fn password_markup(csrf: &str, problem: Option<&str>) -> Markup {
    let body = html! {
        div.panel.narrow {
            h1 { "Choose a new password" }
            p { "Your password was set for you (or reset); choose your own before you go on." }
            @if let Some(problem) = problem {
                div.notice.error role="alert" { (problem) }
            }
            form method="post" action="/console/sign-in/password" {
                (csrf_field(csrf))
                label for="current" { "Current password" }
                input #current type="password" name="current_password" autocomplete="current-password" required;
                label for="new" { "New password" }
                input #new type="password" name="new_password" autocomplete="new-password" required;
                label for="repeat" { "New password, again" }
                input #repeat type="password" name="repeat_password" autocomplete="new-password" required;
                p { button type="submit" { "Change it and sign in" } }
            }
        }
    };
    page("Choose a new password", None, body)
}

/// `GET /console/sign-in/password`.
pub async fn password_form(State(console): State<Console>, headers: HeaderMap) -> Response {
    match session_at(&console, &headers, changing) {
        Some((_, session)) => password_markup(&session.csrf, None).into_response(),
        None => see_other("/console/sign-in"),
    }
}

/// `POST /console/sign-in/password`: the Authentication service's own rules decide the new
/// password; then the account signs in with it (and takes its next step, if any).
pub async fn password_submit(
    State(console): State<Console>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = FormFields::parse(&body);
    let Some((_, session)) = session_at(&console, &headers, changing) else {
        return see_other("/console/sign-in");
    };
    if !security::csrf_matches(&session.csrf, form.value("csrf")) {
        return csrf_refused(None);
    }
    let Stage::PasswordChangeRequired { username } = session.stage else {
        return see_other("/console/sign-in");
    };
    let refused = |status: StatusCode, message: &str| {
        (status, password_markup(&session.csrf, Some(message))).into_response()
    };
    let new = form.value("new_password");
    if new != form.value("repeat_password") {
        return refused(StatusCode::BAD_REQUEST, "The two new passwords differ.");
    }
    let visitor = super::visitor(&headers);
    let current = form.value("current_password");
    let api = &console.api;
    if let Err(failure) = api.change_password(&visitor, &username, current, new).await {
        return refused(failure.status, &failure.message);
    }
    let now = console.sessions.now_millis();
    let outcome = api.login(&visitor, &username, new, now).await;
    next_step(&console, &headers, username, outcome).await
}

/// The otpauth URI as a QR code: an SVG drawn here, inline, nothing fetched.
pub fn qr_code(uri: &str) -> Markup {
    let svg = qrcode::QrCode::new(uri.as_bytes())
        .map(|code| {
            code.render::<qrcode::render::svg::Color>()
                .min_dimensions(200, 200)
                .build()
        })
        .unwrap_or_default();
    // Inline in HTML: without the XML declaration, named for assistive technology.
    let svg = svg
        .find("<svg")
        .map(|start| &svg[start..])
        .unwrap_or_default()
        .replacen(
            "<svg ",
            "<svg role=\"img\" aria-label=\"QR code of the authenticator secret\" ",
            1,
        );
    html! { div.qr { (PreEscaped(svg)) } }
}

fn enrol_markup(csrf: &str, enrolment: &Enrolment, problem: Option<&str>) -> Markup {
    let body = html! {
        div.panel.narrow {
            h1 { "Set up your authenticator app" }
            p { "Your account signs in with a second factor. Scan the code with an authenticator app "
                "(or type the secret into it), then enter the 6-digit code it shows." }
            (qr_code(enrolment.otpauth_uri.expose_secret()))
            p { "Secret: " code.secret { (enrolment.secret.expose_secret()) } }
            @if let Some(problem) = problem {
                div.notice.error role="alert" { (problem) }
            }
            form method="post" action="/console/sign-in/enrol" {
                (csrf_field(csrf))
                label for="code" { "The 6-digit code" }
                input #code type="text" name="code" inputmode="numeric" autocomplete="one-time-code" required;
                p { button type="submit" { "Confirm" } }
            }
        }
    };
    page("Set up your authenticator app", None, body)
}

/// `GET /console/sign-in/enrol`.
pub async fn enrol_form(State(console): State<Console>, headers: HeaderMap) -> Response {
    match session_at(&console, &headers, enrolling) {
        Some((_, session)) => match &session.stage {
            Stage::Enrolling { enrolment, .. } => {
                enrol_markup(&session.csrf, enrolment, None).into_response()
            }
            _ => see_other("/console/sign-in"),
        },
        None => see_other("/console/sign-in"),
    }
}

fn recovery_codes_page(codes: &[String]) -> Markup {
    let body = html! {
        div.panel.narrow {
            h1 { "Your recovery codes" }
            p { "Each signs you in once if you lose your authenticator app. Keep them somewhere safe: "
                "they are shown only now." }
            ul.recovery-codes { @for code in codes { li { code { (code) } } } }
            p { a href="/console/bots" { "Continue to the fleet" } }
        }
    };
    page("Your recovery codes", None, body)
}

/// `POST /console/sign-in/enrol`: the app's first code confirms the secret; the account is
/// signed in, and its recovery codes are shown once.
pub async fn enrol_submit(
    State(console): State<Console>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = FormFields::parse(&body);
    let Some((_, session)) = session_at(&console, &headers, enrolling) else {
        return see_other("/console/sign-in");
    };
    if !security::csrf_matches(&session.csrf, form.value("csrf")) {
        return csrf_refused(None);
    }
    let Stage::Enrolling {
        username,
        mfa_token,
        enrolment,
    } = session.stage
    else {
        return see_other("/console/sign-in");
    };
    let on_behalf = OnBehalf {
        token: Some(mfa_token),
        address: super::visitor(&headers).address,
    };
    let now = console.sessions.now_millis();
    let confirmed = console
        .api
        .confirm_totp(&on_behalf, form.value("code"), now)
        .await;
    match confirmed {
        Ok((codes, Some(tokens))) => {
            let stage = Stage::SignedIn { username, tokens };
            let mut response = super::sign_in::move_to(&console, &headers, stage, "/console/bots");
            if response.status() != StatusCode::SEE_OTHER {
                return response;
            }
            let cookie = response.headers_mut().remove(SET_COOKIE);
            let mut page = recovery_codes_page(&codes).into_response();
            if let Some(cookie) = cookie {
                page.headers_mut().insert(SET_COOKIE, cookie);
            }
            page
        }
        Ok((_, None)) => see_other("/console/sign-in"),
        Err(failure) => {
            let page = enrol_markup(&session.csrf, &enrolment, Some(&failure.message));
            (failure.status, page).into_response()
        }
    }
}
