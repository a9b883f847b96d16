//! The HTTP API under `/api/v1/auth`.

mod admin;
mod login;
mod me;
mod oauth;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::routing::{delete, get, post};
use platform::http::error::ErrorBody;
use platform::http::openapi::BearerAuth;
use utoipa::OpenApi;

use crate::ops::ClientInfo;
use crate::service::AppState;

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let forwarded = state
            .settings
            .trust_forwarded_for
            .then(|| parts.headers.get("x-forwarded-for"))
            .flatten()
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(',').next())
            .map(|ip| ip.trim().to_string())
            .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok());
        let ip = forwarded.unwrap_or_else(|| {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(|| "unknown".to_string(), |info| info.0.ip().to_string())
        });
        let user_agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(Self { ip, user_agent })
    }
}

pub use platform::http::page::{Listing, Page};

pub fn router(state: AppState) -> Router {
    let p = crate::ROUTE_PREFIX;
    Router::new()
        .route(&format!("{p}/login"), post(login::login))
        .route(&format!("{p}/login/mfa"), post(login::login_mfa))
        .route(&format!("{p}/refresh"), post(login::refresh))
        .route(&format!("{p}/logout"), post(login::logout))
        .route(&format!("{p}/validate"), get(login::validate))
        .route(&format!("{p}/password"), post(login::change_password))
        .route(&format!("{p}/me"), get(me::get_me).patch(me::patch_me))
        .route(&format!("{p}/sessions"), get(me::list_sessions))
        .route(
            &format!("{p}/sessions/{{session_id}}"),
            delete(me::end_session),
        )
        .route(&format!("{p}/mfa/totp/enroll"), post(me::enroll_totp))
        .route(&format!("{p}/mfa/totp/confirm"), post(me::confirm_totp))
        .route(&format!("{p}/mfa/totp"), delete(me::disable_totp))
        .route(
            &format!("{p}/users"),
            get(admin::list_users).post(admin::create_user),
        )
        .route(
            &format!("{p}/users/{{user_id}}"),
            get(admin::get_user)
                .patch(admin::patch_user)
                .delete(admin::delete_user),
        )
        .route(
            &format!("{p}/users/{{user_id}}/reset-password"),
            post(admin::reset_password),
        )
        .route(
            &format!("{p}/roles"),
            get(admin::list_roles).post(admin::create_role),
        )
        .route(
            &format!("{p}/roles/{{name}}"),
            get(admin::get_role)
                .put(admin::put_role)
                .delete(admin::delete_role),
        )
        .route(
            &format!("{p}/clients"),
            get(admin::list_clients).post(admin::create_client),
        )
        .route(
            &format!("{p}/clients/{{client_id}}"),
            delete(admin::delete_client),
        )
        .route(&format!("{p}/token"), post(oauth::token))
        .route(&format!("{p}/revoke"), post(oauth::revoke))
        .route(&format!("{p}/introspect"), post(oauth::introspect))
        .route(&format!("{p}/.well-known/jwks.json"), get(oauth::jwks))
        .route(&format!("{p}/revocations"), get(oauth::revocations))
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    paths(
        login::login, login::login_mfa, login::refresh, login::logout, login::validate,
        login::change_password,
        me::get_me, me::patch_me, me::list_sessions, me::end_session, me::enroll_totp,
        me::confirm_totp, me::disable_totp,
        admin::list_users, admin::create_user, admin::get_user, admin::patch_user,
        admin::delete_user, admin::reset_password, admin::list_roles, admin::create_role,
        admin::get_role, admin::put_role, admin::delete_role, admin::list_clients,
        admin::create_client, admin::delete_client,
        oauth::token, oauth::revoke, oauth::introspect, oauth::jwks, oauth::revocations,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth),
    tags((name = "auth", description = "Login, tokens, users, roles, MFA and service clients"))
)]
pub struct AuthApi;
