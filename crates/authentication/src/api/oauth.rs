//! OAuth 2.0 for services over HTTP: client_credentials tokens, revocation and
//! introspection, with `application/x-www-form-urlencoded` bodies as the RFCs say, and the
//! public JWKS and revocation list (`ops::oauth` does each).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use platform::auth::JwkSet;
use platform::http::error::ErrorBody;
use platform::{ApiError, ErrorCode, Json};
use serde::Serialize;
use serde_json::{Value, json};

use crate::ops::oauth::{
    self, ClientCredentials, ServiceToken, TokenForm, TokenRequest, oauth_error,
};
use crate::service::AppState;

/// Parses a form body, insisting on the form content type.
fn form<T: serde::de::DeserializeOwned>(headers: &HeaderMap, body: &Bytes) -> Result<T, ApiError> {
    let is_form = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as application/x-www-form-urlencoded",
        ));
    }
    platform::http::input::check_form(body)
        .map_err(|err| err.with_field("error", "invalid_request"))?;
    serde_urlencoded::from_bytes(body).map_err(|err| {
        oauth_error(
            ErrorCode::InvalidData,
            "invalid_request",
            &format!("bad form body: {err}"),
        )
    })
}

/// Client credentials from HTTP Basic, or else from the form.
fn client_credentials(
    headers: &HeaderMap,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> Option<ClientCredentials> {
    if let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok())
        && let Some(encoded) = value.strip_prefix("Basic ")
    {
        let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        return Some(ClientCredentials {
            id: id.to_string(),
            secret: secret.to_string(),
        });
    }
    Some(ClientCredentials {
        id: form_id?.to_string(),
        secret: form_secret?.to_string(),
    })
}

/// A form that may carry the client's credentials (RFC 6749 §2.3.1 allows the body).
trait ClientForm: serde::de::DeserializeOwned {
    fn client_id(&self) -> Option<&str>;
    fn client_secret(&self) -> Option<&str>;
}

impl ClientForm for TokenRequest {
    fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }
    fn client_secret(&self) -> Option<&str> {
        self.client_secret.as_deref()
    }
}

impl ClientForm for TokenForm {
    fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }
    fn client_secret(&self) -> Option<&str> {
        self.client_secret.as_deref()
    }
}

/// The form, and the client's credentials from HTTP Basic or else from the form.
fn client_form<T: ClientForm>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(T, Option<ClientCredentials>), ApiError> {
    let request: T = form(headers, body)?;
    let credentials = client_credentials(headers, request.client_id(), request.client_secret());
    Ok((request, credentials))
}

/// Get a service token (OAuth 2.0 client_credentials), valid for at most five minutes.
#[utoipa::path(post, path = "/api/v1/auth/token", tag = "auth",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = ServiceToken), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ServiceToken>, ApiError> {
    let (request, credentials) = client_form::<TokenRequest>(&headers, &body)?;
    Ok(Json(oauth::token(&state, credentials, &request).await?))
}

/// Revoke an access or refresh token (RFC 7009). Always 200 for an authenticated client.
#[utoipa::path(post, path = "/api/v1/auth/revoke", tag = "auth",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200), (status = 401, body = ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (request, credentials) = client_form::<TokenForm>(&headers, &body)?;
    oauth::revoke(&state, credentials, &request.token).await?;
    Ok(Json(json!({})))
}

/// Describe a token (RFC 7662): `{"active": false}` unless it is live.
#[utoipa::path(post, path = "/api/v1/auth/introspect", tag = "auth",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody)))]
pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (request, credentials) = client_form::<TokenForm>(&headers, &body)?;
    Ok(Json(
        oauth::introspect(&state, credentials, &request.token).await?,
    ))
}

/// The public signing keys (JWKS).
#[utoipa::path(get, path = "/api/v1/auth/.well-known/jwks.json", tag = "auth",
    responses((status = 200, body = JwkSet)))]
pub async fn jwks(State(state): State<AppState>) -> Result<Json<JwkSet>, ApiError> {
    Ok(Json(oauth::jwks(&state).await?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RevocationList {
    pub revocations: Vec<Value>,
}

/// Revocations still in force, for every service's verifier.
#[utoipa::path(get, path = "/api/v1/auth/revocations", tag = "auth",
    responses((status = 200, body = RevocationList)))]
pub async fn revocations(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let list = oauth::revocations(&state).await?;
    Ok(Json(json!({ "revocations": list })))
}
