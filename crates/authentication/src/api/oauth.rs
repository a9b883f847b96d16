//! OAuth 2.0 for services: client_credentials tokens (RFC 6749 §4.4), revocation (RFC 7009)
//! and introspection (RFC 7662), plus the public JWKS and revocation list every verifier
//! reads. Bodies are `application/x-www-form-urlencoded`, as the RFCs say; errors keep our
//! shape and add OAuth's `error` field.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use platform::activity::Activity;
use platform::auth::{JwkSet, Revocation, RevocationKind, TokenUse};
use platform::http::error::ErrorBody;
use platform::{ApiError, ErrorCode, Json};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::state::AppState;
use crate::store::clients::{self, ServiceClient};
use crate::store::{self as stores, users};

fn oauth_error(code: ErrorCode, error: &str, message: &str) -> ApiError {
    ApiError::new(code, message).with_field("error", error)
}

fn invalid_client() -> ApiError {
    oauth_error(
        ErrorCode::Unauthorized,
        "invalid_client",
        "client authentication failed",
    )
}

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
) -> Option<(String, String)> {
    if let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok())
        && let Some(encoded) = value.strip_prefix("Basic ")
    {
        let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        return Some((id.to_string(), secret.to_string()));
    }
    Some((form_id?.to_string(), form_secret?.to_string()))
}

async fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<ServiceClient, ApiError> {
    let (id, secret) =
        client_credentials(headers, form_id, form_secret).ok_or_else(invalid_client)?;
    clients::authenticate(&state.db, &id, &secret)
        .await?
        .ok_or_else(invalid_client)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TokenRequest {
    /// Must be `client_credentials`.
    pub grant_type: String,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// The target the token is for (`bot-manager`, …); optional if the client has one.
    pub audience: Option<String>,
    /// Space-separated subset of the client's scopes; all of them if omitted.
    pub scope: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ServiceToken {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub scope: String,
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
    let request: TokenRequest = form(&headers, &body)?;
    if request.grant_type != "client_credentials" {
        return Err(oauth_error(
            ErrorCode::InvalidData,
            "unsupported_grant_type",
            "only grant_type=client_credentials is supported here",
        ));
    }
    let client = authenticate_client(
        &state,
        &headers,
        request.client_id.as_deref(),
        request.client_secret.as_deref(),
    )
    .await?;
    let audience = match (&request.audience, client.audiences.as_slice()) {
        (Some(audience), allowed) if allowed.contains(audience) => audience.clone(),
        (None, [only]) => only.clone(),
        _ => {
            return Err(oauth_error(
                ErrorCode::InvalidData,
                "invalid_target",
                "name an audience this client is allowed to call",
            ));
        }
    };
    let scopes: Vec<String> = match &request.scope {
        Some(scope) => scope.split_whitespace().map(str::to_string).collect(),
        None => client.scopes.clone(),
    };
    if let Some(extra) = scopes.iter().find(|s| !client.scopes.contains(s)) {
        return Err(oauth_error(
            ErrorCode::InvalidData,
            "invalid_scope",
            &format!("scope {extra:?} is not granted to this client"),
        ));
    }
    let access_token = state
        .service_token(&client.client_id, &audience, scopes.clone())
        .await?;
    state
        .activity
        .record(
            Activity::new("client.token_issued")
                .actor(format!("client:{}", client.client_id))
                .details(json!({"audience": audience, "scopes": scopes})),
        )
        .await;
    Ok(Json(ServiceToken {
        access_token,
        token_type: "Bearer",
        expires_in: state.settings.service_token_ttl.min(300),
        scope: scopes.join(" "),
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TokenForm {
    pub token: String,
    /// Accepted (RFC 7009 §2.1) but not needed: the two kinds cannot be confused.
    #[allow(dead_code)]
    pub token_type_hint: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
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
    let request: TokenForm = form(&headers, &body)?;
    let client = authenticate_client(
        &state,
        &headers,
        request.client_id.as_deref(),
        request.client_secret.as_deref(),
    )
    .await?;
    // An access token is a JWT and a refresh token is not, so both kinds are simply tried.
    if let Some(claims) = state.decode_any(&request.token).await {
        state
            .revoke(Revocation {
                kind: RevocationKind::Token,
                value: claims.jti.clone(),
                issued_before: claims.iat,
                expires_at: claims.exp + state.auth.leeway as i64,
            })
            .await?;
    } else if let Some(session) =
        stores::sessions::session_of_token(&state.db, &request.token).await?
    {
        state.revoke_session(&session.id).await?;
    }
    state
        .activity
        .record(Activity::new("token.revoked").actor(format!("client:{}", client.client_id)))
        .await;
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
    let request: TokenForm = form(&headers, &body)?;
    authenticate_client(
        &state,
        &headers,
        request.client_id.as_deref(),
        request.client_secret.as_deref(),
    )
    .await?;
    if let Ok(claims) = state.verifier.verify(&request.token).await {
        let active = match (&claims.token_use, claims.user_id()) {
            (TokenUse::Access, Some(user_id)) => users::by_id(&state.db, user_id)
                .await?
                .is_some_and(|c| !c.user.disabled),
            _ => true,
        };
        if active {
            return Ok(Json(json!({
                "active": true,
                "token_type": "Bearer",
                "scope": claims.perms.join(" "),
                "sub": claims.sub,
                "username": claims.username,
                "aud": claims.aud,
                "iss": claims.iss,
                "exp": claims.exp,
                "iat": claims.iat,
                "nbf": claims.nbf,
                "jti": claims.jti,
                "roles": claims.roles,
                "token_use": claims.token_use,
            })));
        }
    }
    if let Some(session) = stores::sessions::session_of_token(&state.db, &request.token).await? {
        return Ok(Json(json!({
            "active": true,
            "token_type": "refresh_token",
            "sub": session.user_id,
            "exp": time::OffsetDateTime::parse(&session.expires_at, &time::format_description::well_known::Rfc3339)
                .map(|t| t.unix_timestamp())
                .ok(),
        })));
    }
    Ok(Json(json!({"active": false})))
}

/// The public signing keys (JWKS).
#[utoipa::path(get, path = "/api/v1/auth/.well-known/jwks.json", tag = "auth",
    responses((status = 200, body = JwkSet)))]
pub async fn jwks(State(state): State<AppState>) -> Result<Json<JwkSet>, ApiError> {
    Ok(Json(state.keys.jwks().await?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RevocationList {
    pub revocations: Vec<Value>,
}

/// Revocations still in force, for every service's verifier.
#[utoipa::path(get, path = "/api/v1/auth/revocations", tag = "auth",
    responses((status = 200, body = RevocationList)))]
pub async fn revocations(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let list = stores::revocations::active(&state.db, state.clock.unix_seconds()).await?;
    Ok(Json(json!({ "revocations": list })))
}
