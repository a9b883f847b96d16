//! The console's pages, each a module of its own; this one holds the routes, the signed-in
//! person every page acts as, and how an API refusal becomes a page.

mod account_mfa;
mod accounts;
mod bot;
mod calendar;
mod charts;
mod enrolment;
mod fleet;
mod layout;
mod logs;
mod people;
mod posts;
mod profile;
mod secrets;
mod settings;
mod sign_in;
mod system;

use std::sync::Arc;

use axum::Router;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::api::{Api, ApiFailure, OnBehalf};
use crate::security;
use crate::session::{SessionId, Sessions, Stage, Tokens};

/// What every page handler shares.
#[derive(Clone)]
pub struct Console {
    pub api: Arc<Api>,
    pub sessions: Arc<Sessions>,
    pub secure_cookie: bool,
    /// `console.trust_forwarded_for`.
    pub trust_forwarded_for: bool,
    /// Live pages (Server-Sent Events) open at once, each reading the API every second.
    pub live_streams: Arc<tokio::sync::Semaphore>,
    /// Held while a token is refreshed: a refresh token is single use, and the API ends the
    /// whole session when one is used twice, so two requests (a page and its live stream)
    /// must not both refresh it.
    pub refreshing: Arc<tokio::sync::Mutex<()>>,
}

/// The console's routes under `/console`.
pub fn router(state: Console) -> Router {
    let p = crate::PREFIX;
    Router::new()
        .route(p, get(|| async { see_other("/console/") }))
        .route(
            &format!("{p}/"),
            get(|| async { see_other("/console/bots") }),
        )
        .route(&format!("{p}/assets/{{name}}"), get(crate::assets::serve))
        .route(
            &format!("{p}/sign-in"),
            get(sign_in::form).post(sign_in::submit),
        )
        .route(
            &format!("{p}/sign-in/second-factor"),
            get(sign_in::second_factor_form).post(sign_in::second_factor_submit),
        )
        .route(
            &format!("{p}/sign-in/password"),
            get(enrolment::password_form).post(enrolment::password_submit),
        )
        .route(
            &format!("{p}/sign-in/enrol"),
            get(enrolment::enrol_form).post(enrolment::enrol_submit),
        )
        .route(&format!("{p}/sign-out"), post(sign_in::sign_out))
        .merge(fleet_routes())
        .route(&format!("{p}/system"), get(system::show))
        .route(
            &format!("{p}/people"),
            get(people::show).post(accounts::create),
        )
        .route(
            &format!("{p}/people/{{user_id}}"),
            get(accounts::show).post(accounts::update),
        )
        .route(
            &format!("{p}/people/{{user_id}}/reset-password"),
            post(accounts::reset_password),
        )
        .route(&format!("{p}/account"), get(people::account))
        .route(
            &format!("{p}/account/password"),
            post(people::change_password),
        )
        .route(&format!("{p}/account/mfa/start"), post(account_mfa::start))
        .route(
            &format!("{p}/account/mfa/confirm"),
            post(account_mfa::confirm),
        )
        .route(
            &format!("{p}/account/mfa/remove"),
            post(account_mfa::remove),
        )
        .route(
            &format!("{p}/account/sessions/{{session_id}}/end"),
            post(people::end_session),
        )
        .route(
            &format!("{p}/settings"),
            get(settings::show).post(settings::update),
        )
        .route(&format!("{p}/settings/rollback"), post(settings::rollback))
        .route(&format!("{p}/logs"), get(logs::show))
        .route(&format!("{p}/logs/export"), get(logs::export))
        .route(&format!("{p}/logs/live"), get(logs::live))
        .layer(axum::middleware::from_fn(security::headers))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            forward_client,
        ))
        .with_state(state)
}

/// The fleet, bots, their posts and credentials, and the calendar.
fn fleet_routes() -> Router<Console> {
    let p = crate::PREFIX;
    Router::new()
        .route(&format!("{p}/bots"), get(fleet::show))
        .route(&format!("{p}/bots/batch"), post(fleet::batch))
        .route(&format!("{p}/bots/{{bot_id}}"), get(bot::show))
        .route(&format!("{p}/bots/{{bot_id}}/posts"), post(posts::create))
        .route(
            &format!("{p}/bots/{{bot_id}}/profile"),
            post(profile::update),
        )
        .route(
            &format!("{p}/bots/{{bot_id}}/posts/{{post_id}}/retry"),
            post(posts::retry),
        )
        .route(&format!("{p}/bots/{{bot_id}}/posts/live"), get(posts::live))
        .route(
            &format!("{p}/bots/{{bot_id}}/posts/{{post_id}}/cancel"),
            post(posts::cancel),
        )
        .route(
            &format!("{p}/bots/{{bot_id}}/credentials"),
            post(secrets::replace),
        )
        .route(
            &format!("{p}/bots/{{bot_id}}/secrets/{{field}}/reveal"),
            get(secrets::confirm).post(secrets::reveal),
        )
        .route(&format!("{p}/calendar"), get(calendar::show))
        .route(&format!("{p}/calendar/posts"), post(calendar::create))
        .route(
            &format!("{p}/calendar/reschedule"),
            post(calendar::reschedule),
        )
        .route(&format!("{p}/calendar/cancel"), post(calendar::cancel))
        .route(&format!("{p}/calendar/live"), get(calendar::live))
        .route(&format!("{p}/check-text"), post(posts::check_text))
}

/// A redirect the browser follows with a GET.
pub fn see_other(to: &str) -> Response {
    let location = HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/console/"));
    (StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response()
}

/// To the sign-in page, forgetting the cookie.
fn to_sign_in() -> Response {
    let mut response = see_other("/console/sign-in");
    response
        .headers_mut()
        .insert(SET_COOKIE, security::cleared_cookie());
    response
}

/// The signed-in person a page acts as.
pub struct Person {
    pub session: SessionId,
    pub username: String,
    pub csrf: String,
    /// Their token and address, for every API call made for them.
    pub api: OnBehalf,
}

/// The request's client, as [`forward_client`] left it, before anyone has signed in.
pub fn visitor(headers: &HeaderMap) -> OnBehalf {
    OnBehalf {
        token: None,
        address: headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    }
}

/// Sets `X-Forwarded-For` to the one address the request came from (a loopback proxy's word
/// for it, else the connection's), dropping whatever else a client sent: the console passes
/// it on to the API, whose limits per address then count the person.
async fn forward_client(
    State(console): State<Console>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let client = platform::http::client::client_address_behind(
        request.headers(),
        peer,
        console.trust_forwarded_for,
    );
    let headers = request.headers_mut();
    headers.remove("x-forwarded-for");
    if let Some(value) = client.and_then(|ip| HeaderValue::from_str(&ip.to_string()).ok()) {
        headers.insert("x-forwarded-for", value);
    }
    next.run(request).await
}

/// Refresh the access token when it has less than this left.
const REFRESH_AHEAD_MS: i64 = 30_000;

impl Console {
    /// The person signed in with this request's cookie, with a token good for the page's
    /// calls (refreshed when it is about to expire); else the sign-in page as the answer.
    pub async fn person(&self, headers: &HeaderMap) -> Result<Person, Response> {
        self.person_at(headers, true).await
    }

    /// [`Self::person`] for a live page's stream, which asks every second: its asking is not
    /// the person's activity, so an open tab does not keep a session from its idle timeout.
    pub async fn person_quietly(&self, headers: &HeaderMap) -> Result<Person, Response> {
        self.person_at(headers, false).await
    }

    async fn person_at(&self, headers: &HeaderMap, activity: bool) -> Result<Person, Response> {
        let id = security::session_id(headers).ok_or_else(to_sign_in)?;
        let session = if activity {
            self.sessions.get(&id)
        } else {
            self.sessions.peek(&id)
        };
        let session = session.ok_or_else(to_sign_in)?;
        let (username, tokens) = match session.stage {
            Stage::SignedIn { username, tokens } => (username, tokens),
            // Half signed in: back to the step it is at, keeping the session.
            Stage::AwaitingSecondFactor { .. } => {
                return Err(see_other("/console/sign-in/second-factor"));
            }
            Stage::PasswordChangeRequired { .. } => {
                return Err(see_other("/console/sign-in/password"));
            }
            Stage::Enrolling { .. } => return Err(see_other("/console/sign-in/enrol")),
            Stage::SignedOut => return Err(see_other("/console/sign-in")),
        };
        let visitor = visitor(headers);
        let tokens = if tokens.access_expires_at - self.sessions.now_millis() < REFRESH_AHEAD_MS {
            self.refreshed(&id, &visitor).await?
        } else {
            tokens
        };
        Ok(Person {
            session: id,
            username,
            csrf: session.csrf,
            api: OnBehalf {
                token: Some(tokens.access),
                address: visitor.address,
            },
        })
    }

    /// The session's tokens, refreshed once however many requests ask at the same time: the
    /// first refreshes, the others find its new tokens.
    async fn refreshed(&self, id: &SessionId, visitor: &OnBehalf) -> Result<Tokens, Response> {
        let _one_at_a_time = self.refreshing.lock().await;
        // A peek: whether this is activity was decided by the caller.
        let Some(Stage::SignedIn { tokens, .. }) = self.sessions.peek(id).map(|s| s.stage) else {
            return Err(to_sign_in());
        };
        let now = self.sessions.now_millis();
        if tokens.access_expires_at - now >= REFRESH_AHEAD_MS {
            return Ok(tokens);
        }
        match self.api.refresh(visitor, &tokens.refresh, now).await {
            Ok(fresh) => {
                self.sessions.update_tokens(id, fresh.clone());
                Ok(fresh)
            }
            Err(failure) if failure.is_unauthenticated() => {
                self.sessions.end(id);
                Err(to_sign_in())
            }
            Err(failure) => Err(self.failure_page(None, &failure)),
        }
    }

    /// The person who sent a state-changing form, if it carries their session's CSRF token;
    /// else the answer (the sign-in page, or the refusal of a forged form).
    pub async fn form_person(
        &self,
        headers: &HeaderMap,
        form: &FormFields,
    ) -> Result<Person, Response> {
        let person = self.person(headers).await?;
        if !person.sent_csrf(form) {
            return Err(csrf_refused(Some(&person)));
        }
        Ok(person)
    }

    /// The page for an API refusal: a refused token ends the session; anything else is
    /// shown with the API's own status and message.
    pub fn failure_page(&self, person: Option<&Person>, failure: &ApiFailure) -> Response {
        if failure.is_unauthenticated() {
            if let Some(person) = person {
                self.sessions.end(&person.session);
            }
            return to_sign_in();
        }
        let title = match failure.status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Not allowed",
            status if status.is_server_error() => "The system could not answer",
            _ => "Refused",
        };
        let body = maud::html! {
            h1 { (title) }
            div.notice.error role="alert" { (failure.message) }
            p { a href="/console/bots" { "Back to the fleet" } }
        };
        let page = layout::page(title, person, body);
        (failure.status, page).into_response()
    }
}

/// A string member of an API answer, or "" when it is absent or not a string.
pub fn text<'a>(value: &'a serde_json::Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or("")
}

/// A form's fields in order, repeated names kept (checkbox lists send one pair per box).
pub struct FormFields(Vec<(String, String)>);

impl FormFields {
    pub fn parse(body: &Bytes) -> Self {
        Self(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `name`, or "".
    pub fn value(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.as_str())
    }

    /// Every value of `name`.
    pub fn values(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }
}

/// The answer to a form whose CSRF token is not the session's.
pub fn csrf_refused(person: Option<&Person>) -> Response {
    let body = maud::html! {
        h1 { "The form has expired" }
        div.notice.error role="alert" {
            "This form was not sent from your current session (or it was sent from another site). "
            "Nothing was changed. Go back, reload the page and try again."
        }
    };
    (
        StatusCode::FORBIDDEN,
        layout::page("The form has expired", person, body),
    )
        .into_response()
}

impl Person {
    /// Whether the form carries this session's CSRF token.
    pub fn sent_csrf(&self, form: &FormFields) -> bool {
        security::csrf_matches(&self.csrf, form.value("csrf"))
    }
}
