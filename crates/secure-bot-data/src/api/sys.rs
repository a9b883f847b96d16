//! The vault's system routes: status (no secrets), seal and unseal (admins), and the audit
//! trail (admins).

use axum::extract::State;
use platform::http::error::ErrorBody;
use platform::http::page::clamp_limit;
use platform::{ApiError, Json, Query};
use serde::Deserialize;

use super::{AppState, Listing};
use crate::keyring::VaultStatus;
use crate::model::BotId;
use crate::ops::sys;
use crate::store::audit::AuditEntry;
use platform::auth::Caller;

/// Whether the vault is sealed, and which KEK versions are loaded (numbers only).
#[utoipa::path(get, path = "/api/v1/botdata/sys/status", tag = "botdata", security(("bearer" = [])),
    responses((status = 200, body = VaultStatus), (status = 401, body = ErrorBody)))]
pub async fn status(State(state): State<AppState>, _caller: Caller) -> Json<VaultStatus> {
    Json(sys::status(&state))
}

/// Seal: drop every key from memory; secret routes answer 503 `SEALED` until unsealed.
#[utoipa::path(post, path = "/api/v1/botdata/sys/seal", tag = "botdata", security(("bearer" = [])),
    responses((status = 200, body = VaultStatus), (status = 403, body = ErrorBody)))]
pub async fn seal(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<VaultStatus>, ApiError> {
    Ok(Json(sys::seal(&state, &caller).await?))
}

/// Unseal: reload the keys from their sources; still sealed (503) if none is usable.
#[utoipa::path(post, path = "/api/v1/botdata/sys/unseal", tag = "botdata", security(("bearer" = [])),
    responses((status = 200, body = VaultStatus), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn unseal(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<VaultStatus>, ApiError> {
    Ok(Json(sys::unseal(&state, &caller).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub bot_id: Option<String>,
    /// 1 to 500, default 50.
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The audit trail, newest first (Admin only). Values appear only as HMACs.
#[utoipa::path(get, path = "/api/v1/botdata/audit", tag = "botdata", security(("bearer" = [])),
    params(AuditQuery),
    responses((status = 200, body = Listing<AuditEntry>), (status = 403, body = ErrorBody)))]
pub async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Listing<AuditEntry>>, ApiError> {
    let bot_id = query.bot_id.as_deref().map(BotId::parse).transpose()?;
    let limit = clamp_limit(query.limit);
    let items = sys::audit_trail(
        &state,
        &caller,
        bot_id.as_ref(),
        limit + 1,
        query.cursor.as_deref(),
    )
    .await?;
    Ok(Json(Listing::from_overfetch(items, limit, |entry| {
        entry.id.clone()
    })))
}
