//! X's OAuth 2.0 user context: `GET /i/oauth2/authorize` (the consent step of the
//! Authorization Code flow with PKCE) and `POST /2/oauth2/token` with the
//! `authorization_code` and `refresh_token` grants. Each code and refresh token works once,
//! for the client it was issued to; errors are named as RFC 6749 §5.2 names them.
//!
//! Consent is a person at X's page; here the request names who consents in the
//! `x-fake-user` header (and `x-fake-decision: deny` to refuse). Without it the page asks to
//! sign in, as X's does.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use super::{AppState, Call, status_problem};
use crate::state::{Consent, FaultKind};

#[derive(Deserialize)]
pub(super) struct TokenForm {
    grant_type: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
}

/// The scopes X's OAuth 2.0 knows.
const X_SCOPES: &[&str] = &[
    "tweet.read",
    "tweet.write",
    "tweet.moderate.write",
    "users.read",
    "follows.read",
    "follows.write",
    "offline.access",
    "space.read",
    "mute.read",
    "mute.write",
    "like.read",
    "like.write",
    "list.read",
    "list.write",
    "block.read",
    "block.write",
    "bookmark.read",
    "bookmark.write",
    "media.write",
    "dm.read",
    "dm.write",
];

#[derive(Deserialize)]
pub(super) struct AuthorizeQuery {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// X's page for a request it cannot send back to the app (no client or redirect URI).
fn authorize_page(status: StatusCode, message: &str) -> Response {
    let html = format!("<!doctype html><title>X</title><p>{message}</p>");
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

/// Back to the app with `pairs` on its redirect URI (RFC 6749 §4.1.2).
fn redirect_back(redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return authorize_page(StatusCode::BAD_REQUEST, "Invalid redirect_uri.");
    };
    url.query_pairs_mut().extend_pairs(pairs);
    (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
}

/// What is wrong with the request's PKCE and scopes, as an RFC 6749 error code and text.
fn check_request(query: &AuthorizeQuery) -> Result<Vec<String>, (&'static str, String)> {
    if query.response_type.as_deref() != Some("code") {
        return Err((
            "unsupported_response_type",
            "response_type must be code".into(),
        ));
    }
    let method = query.code_challenge_method.as_deref().unwrap_or("plain");
    match query.code_challenge.as_deref() {
        Some(c) if (43..=128).contains(&c.len()) && method == "S256" => {}
        Some(c) if !c.is_empty() && method == "plain" => {}
        _ => {
            return Err((
                "invalid_request",
                "code_challenge is required (PKCE), with code_challenge_method S256 or plain"
                    .into(),
            ));
        }
    }
    let scopes: Vec<String> = query
        .scope
        .as_deref()
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    if scopes.is_empty() {
        return Err(("invalid_scope", "scope is required".into()));
    }
    if let Some(unknown) = scopes.iter().find(|s| !X_SCOPES.contains(&s.as_str())) {
        return Err(("invalid_scope", format!("unknown scope {unknown}")));
    }
    Ok(scopes)
}

/// `GET /i/oauth2/authorize`: the user named in `x-fake-user` consents, and the browser is
/// sent back to the app's redirect URI with a code and the app's `state`.
pub(super) async fn authorize(
    State(fake): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<AuthorizeQuery>,
) -> Response {
    let call = Call::new("GET", "/i/oauth2/authorize".into());
    let (Some(client_id), Some(redirect_uri)) = (&query.client_id, &query.redirect_uri) else {
        let page = authorize_page(
            StatusCode::BAD_REQUEST,
            "Something went wrong: client_id and redirect_uri are required.",
        );
        return call.finish(&fake, page);
    };
    let state = query.state.clone().unwrap_or_default();
    let scopes = match check_request(&query) {
        Ok(scopes) => scopes,
        Err((error, description)) => {
            let pairs = [
                ("error", error),
                ("error_description", &description),
                ("state", &state),
            ];
            return call.finish(&fake, redirect_back(redirect_uri, &pairs));
        }
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(username) = header("x-fake-user") else {
        let page = authorize_page(StatusCode::OK, "Sign in to X to authorize this app.");
        return call.finish(&fake, page);
    };
    if header("x-fake-decision") == Some("deny") {
        let pairs = [("error", "access_denied"), ("state", state.as_str())];
        return call.finish(&fake, redirect_back(redirect_uri, &pairs));
    }
    let method = query.code_challenge_method.as_deref().unwrap_or("plain");
    let challenge = query.code_challenge.clone().unwrap_or_default();
    let consent = Consent {
        username,
        client_id,
        redirect_uri,
        code_challenge: &challenge,
        plain: method == "plain",
        scopes,
    };
    let response = match fake.consent(consent) {
        Some(code) => redirect_back(redirect_uri, &[("state", &state), ("code", &code)]),
        None => authorize_page(StatusCode::OK, "Sign in to X to authorize this app."),
    };
    call.finish(&fake, response)
}

#[derive(Deserialize)]
pub(super) struct RevokeForm {
    token: Option<String>,
    client_id: Option<String>,
}

/// `POST /2/oauth2/revoke` (RFC 7009): the token no longer works; revoking one that does not
/// exist succeeds, one issued to another client is refused.
pub(super) async fn revoke(
    State(fake): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<RevokeForm>,
) -> Response {
    let call = Call::new("POST", "/2/oauth2/revoke".into());
    let client = client_id_of(&headers).or(form.client_id.clone());
    let response = match form.token.as_deref() {
        None => oauth_error("invalid_request", "Missing required parameter [token]."),
        Some(token) if fake.revoke(token, client.as_deref()) => {
            Json(json!({"revoked": true})).into_response()
        }
        Some(_) => oauth_error("invalid_client", "The token was issued to another client."),
    };
    call.finish(&fake, response)
}

/// Tokens in X's answer shape.
fn tokens_answer(
    fake: &AppState,
    (access, refresh, scopes): (String, String, Vec<String>),
) -> Response {
    let mut body = json!({
        "token_type": "bearer",
        "expires_in": fake.settings.access_token_ttl,
        "access_token": access,
        "scope": scopes.join(" "),
    });
    // X issues a refresh token only with offline.access.
    if !refresh.is_empty() {
        body["refresh_token"] = json!(refresh);
    }
    Json(body).into_response()
}

/// The `authorization_code` grant: the code, for the client and redirect URI it was issued
/// to, with the verifier of its challenge.
fn code_grant(
    fake: &AppState,
    call: &mut Call,
    client: Option<&str>,
    form: &TokenForm,
) -> Response {
    let Some(code) = form.code.as_deref() else {
        return oauth_error("invalid_request", "Missing required parameter [code].");
    };
    let redeemed = fake.redeem_code(
        code,
        client,
        form.redirect_uri.as_deref(),
        form.code_verifier.as_deref(),
    );
    match redeemed {
        Ok(tokens) => {
            call.user_id = fake.authenticate(&tokens.0).and_then(|p| p.user_id);
            tokens_answer(fake, tokens)
        }
        Err(refused) => oauth_error(refused.error, refused.description),
    }
}

fn oauth_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// A confidential client authenticates with Basic; a public one names itself in the form.
fn client_id(headers: &HeaderMap, form: &TokenForm) -> Option<String> {
    client_id_of(headers).or_else(|| form.client_id.clone())
}

/// The client a Basic authorization names.
fn client_id_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|v| v.split(':').next().map(String::from))
}

pub(super) async fn token(
    State(fake): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    let mut call = Call::new("POST", "/2/oauth2/token".into());
    // The token endpoint takes status faults only.
    if let Some(fault) = fake.take_fault("POST", "/2/oauth2/token")
        && fault.kind == FaultKind::Status
    {
        let status = fault
            .status
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return call.finish(&fake, status_problem(status));
    }
    let client = client_id(&headers, &form);
    let response = match (form.grant_type.as_deref(), form.refresh_token.as_deref()) {
        (None, _) => oauth_error(
            "invalid_request",
            "Missing required parameter [grant_type].",
        ),
        (Some("refresh_token"), None) => oauth_error(
            "invalid_request",
            "Missing required parameter [refresh_token].",
        ),
        (Some("authorization_code"), _) => code_grant(&fake, &mut call, client.as_deref(), &form),
        (Some("refresh_token"), Some(refresh_token)) => {
            match fake.refresh(refresh_token, client.as_deref()) {
                Some(tokens) => {
                    call.user_id = fake.authenticate(&tokens.0).and_then(|p| p.user_id);
                    tokens_answer(&fake, tokens)
                }
                // Unknown, spent, or issued to another client: the grant is invalid (RFC 6749).
                None => oauth_error("invalid_grant", "Value passed for the token was invalid."),
            }
        }
        (Some(other), _) => oauth_error(
            "unsupported_grant_type",
            &format!("Grant type [{other}] is not supported."),
        ),
    };
    call.finish(&fake, response)
}
