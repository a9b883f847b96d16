//! OAuth 2.0 for services: client_credentials tokens (RFC 6749 §4.4), revocation (RFC 7009)
//! and introspection (RFC 7662); and the public keys and revocation list every verifier
//! reads. Errors keep our shape and add OAuth's `error` field.

use platform::activity::Activity;
use platform::auth::{JwkSet, Revocation, RevocationKind, TokenUse};
use platform::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::service::Authentication;
use crate::store::clients::{self, ServiceClient};
use crate::store::{self as stores, users};

/// A client's id and secret, from HTTP Basic or the form.
pub struct ClientCredentials {
    pub id: String,
    pub secret: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"grant_type": "client_credentials", "client_id": "report-exporter", "client_secret": "<the client's secret>", "audience": "logging"}))]
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

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"token": "<an access or refresh token>", "client_id": "report-exporter", "client_secret": "<the client's secret>"}))]
pub struct TokenForm {
    pub token: String,
    /// Accepted (RFC 7009 §2.1) but not needed: the two kinds cannot be confused.
    #[allow(dead_code)]
    pub token_type_hint: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

pub fn oauth_error(code: ErrorCode, error: &str, message: &str) -> ApiError {
    ApiError::new(code, message).with_field("error", error)
}

fn invalid_client() -> ApiError {
    oauth_error(
        ErrorCode::Unauthorized,
        "invalid_client",
        "client authentication failed",
    )
}

async fn authenticate(
    a: &Authentication,
    credentials: Option<ClientCredentials>,
) -> Result<ServiceClient, ApiError> {
    let credentials = credentials.ok_or_else(invalid_client)?;
    clients::authenticate(&a.db, &credentials.id, &credentials.secret)
        .await?
        .ok_or_else(invalid_client)
}

/// The audience and scopes a client asked for, if it may have them.
fn grant(
    client: &ServiceClient,
    request: &TokenRequest,
) -> Result<(String, Vec<String>), ApiError> {
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
    Ok((audience, scopes))
}

/// A service token (client_credentials), valid for at most five minutes.
pub async fn token(
    a: &Authentication,
    credentials: Option<ClientCredentials>,
    request: &TokenRequest,
) -> Result<ServiceToken, ApiError> {
    if request.grant_type != "client_credentials" {
        return Err(oauth_error(
            ErrorCode::InvalidData,
            "unsupported_grant_type",
            "only grant_type=client_credentials is supported here",
        ));
    }
    let client = authenticate(a, credentials).await?;
    let (audience, scopes) = grant(&client, request)?;
    let access_token = a
        .service_token(&client.client_id, &audience, scopes.clone())
        .await?;
    a.activity
        .record(
            Activity::new("client.token_issued")
                .actor(format!("client:{}", client.client_id))
                .details(json!({"audience": audience, "scopes": scopes})),
        )
        .await;
    Ok(ServiceToken {
        access_token,
        token_type: "Bearer",
        expires_in: a.settings.service_token_ttl.min(300),
        scope: scopes.join(" "),
    })
}

/// Revokes an access or refresh token (an unknown one is no error).
pub async fn revoke(
    a: &Authentication,
    credentials: Option<ClientCredentials>,
    token: &str,
) -> Result<(), ApiError> {
    let client = authenticate(a, credentials).await?;
    // An access token is a JWT and a refresh token is not, so both kinds are simply tried.
    if let Some(claims) = a.decode_any(token).await {
        a.revoke(Revocation {
            kind: RevocationKind::Token,
            value: claims.jti.clone(),
            issued_before: claims.iat,
            expires_at: claims.exp + a.auth.leeway as i64,
        })
        .await?;
    } else if let Some(session) = stores::sessions::session_of_token(&a.db, token).await? {
        a.revoke_session(&session.id).await?;
    }
    a.activity
        .record(Activity::new("token.revoked").actor(format!("client:{}", client.client_id)))
        .await;
    Ok(())
}

/// What a live access token says, if it is live (its user still enabled).
async fn live_access_token(a: &Authentication, token: &str) -> Result<Option<Value>, ApiError> {
    let Ok(claims) = a.verifier.verify(token).await else {
        return Ok(None);
    };
    let active = match (&claims.token_use, claims.user_id()) {
        (TokenUse::Access, Some(user_id)) => users::by_id(&a.db, user_id)
            .await?
            .is_some_and(|c| !c.user.disabled),
        _ => true,
    };
    Ok(active.then(|| {
        json!({
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
        })
    }))
}

/// Describes a token: `{"active": false}` unless it is live.
pub async fn introspect(
    a: &Authentication,
    credentials: Option<ClientCredentials>,
    token: &str,
) -> Result<Value, ApiError> {
    authenticate(a, credentials).await?;
    if let Some(described) = live_access_token(a, token).await? {
        return Ok(described);
    }
    if let Some(session) = stores::sessions::session_of_token(&a.db, token).await? {
        let rfc3339 = time::format_description::well_known::Rfc3339;
        return Ok(json!({
            "active": true,
            "token_type": "refresh_token",
            "sub": session.user_id,
            "exp": time::OffsetDateTime::parse(&session.expires_at, &rfc3339)
                .map(|t| t.unix_timestamp())
                .ok(),
        }));
    }
    Ok(json!({"active": false}))
}

/// The public signing keys.
pub async fn jwks(a: &Authentication) -> Result<JwkSet, ApiError> {
    Ok(a.keys.jwks().await?)
}

/// Revocations still in force.
pub async fn revocations(a: &Authentication) -> Result<Vec<Revocation>, ApiError> {
    Ok(stores::revocations::active(&a.db, a.clock.unix_seconds()).await?)
}
