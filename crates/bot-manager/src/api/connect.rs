//! Connecting a bot's X account over HTTP (OAuth 2.0 Authorization Code with PKCE): start
//! (the URL to send the person to) and the callback's code and state (`ops::connect` does
//! each).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use platform::auth::Caller;
use platform::config::Secret;
use platform::http::error::ErrorBody;
use platform::{ApiError, Json};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::bots::{BotView, with_etag};
use crate::ops;
use crate::ops::connect::{Callback, ConnectRequest};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"client_id": "dGhlLWFwcC1jbGllbnQtaWQ", "redirect_uri": "https://console.example.org/x/callback"}))]
pub struct StartConnectRequest {
    /// The X app's OAuth 2.0 client id.
    pub client_id: String,
    /// For a confidential client only; kept in Secure Bot Data, never returned.
    #[schema(value_type = Option<String>)]
    pub client_secret: Option<Secret>,
    /// Where X sends the person back, exactly as registered with the app (https; http only
    /// on localhost).
    pub redirect_uri: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct StartConnectView {
    /// Send the person here: X's consent page for this bot's scopes, with the state and the
    /// PKCE challenge.
    pub authorize_url: String,
    /// What X sends back with the code; completes this connection once.
    pub state: String,
    /// The scopes asked for.
    pub scopes: Vec<String>,
    /// RFC 3339: after this the connection must be started again.
    pub expires_at: String,
}

/// Start connecting the bot's X account: where to send the person (X's consent page). A new
/// start replaces a connection in progress.
#[utoipa::path(post, path = "/api/v1/bots/{bot_id}/x-connect", tag = "bots", security(("bearer" = [])),
    params(("bot_id" = String, Path)), request_body = StartConnectRequest,
    responses((status = 201, body = StartConnectView), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    Path(bot_id): Path<String>,
    Json(request): Json<StartConnectRequest>,
) -> Result<(StatusCode, Json<StartConnectView>), ApiError> {
    let request = ConnectRequest {
        client_id: request.client_id,
        client_secret: request.client_secret,
        redirect_uri: request.redirect_uri,
    };
    let started = ops::connect::start(&state, &caller, &bot_id, request).await?;
    let view = StartConnectView {
        authorize_url: started.authorize_url,
        state: started.state,
        scopes: ops::connect::SCOPES.map(String::from).to_vec(),
        expires_at: platform::time_fmt::rfc3339_from_millis(started.expires_at),
    };
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"state": "k3Jq0fYH2v6bq8m1t5sX4a9cLwzEoRuN7pD0iGhTjYc", "code": "VGhlIGNvZGUgWCBzZW50IGJhY2s"}))]
pub struct ConnectCallbackRequest {
    /// The `state` X sent back.
    pub state: String,
    /// The `code` X sent back (absent when X sent an `error`).
    pub code: Option<String>,
    /// The `error` X sent back instead of a code (`access_denied`: the person declined).
    pub error: Option<String>,
}

/// Complete connecting the bot's X account with what X sent back to the redirect URI: the
/// tokens go to Secure Bot Data, the bot learns its X id and handle. Only the person who
/// started it, once, within 10 minutes; an account other than the bot's is refused.
#[utoipa::path(post, path = "/api/v1/bots/{bot_id}/x-connect/callback", tag = "bots", security(("bearer" = [])),
    params(("bot_id" = String, Path)), request_body = ConnectCallbackRequest,
    responses((status = 200, body = BotView), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn callback(
    State(state): State<AppState>,
    caller: Caller,
    Path(bot_id): Path<String>,
    Json(request): Json<ConnectCallbackRequest>,
) -> Result<Response, ApiError> {
    let callback = Callback {
        state: request.state,
        code: request.code,
        error: request.error,
    };
    let bot = ops::connect::complete(&state, &caller, &bot_id, callback).await?;
    Ok(with_etag(StatusCode::OK, bot))
}
