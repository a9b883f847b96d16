//! The vault itself: its status (no secrets), seal and unseal (admins, audited), and the audit
//! trail (admins).

use platform::auth::Caller;
use platform::{ApiError, ErrorCode};

use crate::keyring::VaultStatus;
use crate::model::BotId;
use crate::service::{BotData, sealed};
use crate::store::audit::{self, AuditEntry};

pub fn status(data: &BotData) -> VaultStatus {
    data.vault.status()
}

/// Drops every key from memory; secret routes answer 503 `SEALED` until unsealed.
pub async fn seal(data: &BotData, caller: &Caller) -> Result<VaultStatus, ApiError> {
    data.require_admin(caller, "seal").await?;
    data.vault.seal();
    record(data, caller, "seal").await?;
    Ok(data.vault.status())
}

/// Reloads the keys from their sources; still sealed (503) if none is usable.
pub async fn unseal(data: &BotData, caller: &Caller) -> Result<VaultStatus, ApiError> {
    data.require_admin(caller, "unseal").await?;
    data.vault.unseal().await.map_err(|err| {
        ApiError::new(
            ErrorCode::Sealed,
            format!("the keys could not be loaded: {err:#}"),
        )
    })?;
    record(data, caller, "unseal").await?;
    let status = data.vault.status();
    if status.sealed {
        return Err(sealed(data.vault.keyring().unwrap_err()));
    }
    Ok(status)
}

/// The audit trail, newest first, `limit` entries after `cursor`.
pub async fn audit_trail(
    data: &BotData,
    caller: &Caller,
    bot_id: Option<&BotId>,
    limit: i64,
    cursor: Option<&str>,
) -> Result<Vec<AuditEntry>, ApiError> {
    data.require_admin(caller, "audit").await?;
    Ok(audit::list(&data.db, bot_id.map(BotId::as_str), limit, cursor).await?)
}

async fn record(data: &BotData, caller: &Caller, action: &str) -> Result<(), ApiError> {
    data.audit
        .record(vec![AuditEntry::new(
            &data.clock,
            caller.id(),
            action,
            "ok",
        )])
        .await
        .map_err(ApiError::from)
}
