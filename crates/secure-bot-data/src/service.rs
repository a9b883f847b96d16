//! The service's state, and the checks every operation starts with: the caller's
//! permission, the Admin role, and reach over a bot — each refusal audited, and a bot out of
//! reach answering exactly like a missing one.

use platform::auth::Caller;
use platform::db::Database;
use platform::{ApiError, ErrorCode};
use serde_json::json;

use crate::access;
use crate::audit::AuditLog;
use crate::keyring::{KeyVault, SealReason, SealedError};
use crate::model::{BotId, FieldName};
use crate::settings::Settings;
use crate::store::audit::AuditEntry;
use crate::store::bots::{self, BotRow};

pub struct BotData {
    pub db: Database,
    pub settings: Settings,
    pub vault: KeyVault,
    pub audit: AuditLog,
    pub metrics: crate::metrics::BotDataMetrics,
    /// Debug events for the Logging service (an integrity failure, for one).
    pub events: platform::activity::ActivityLog,
    pub clock: platform::Clock,
}

pub fn sealed(err: SealedError) -> ApiError {
    let message = match err.0 {
        SealReason::NoKeys => {
            "the secret store is sealed: no key-encryption key is available; \
             mount one and unseal (POST /api/v1/botdata/sys/unseal)"
        }
        SealReason::SealedByAdmin => {
            "the secret store was sealed by an admin; an admin must unseal it \
             (POST /api/v1/botdata/sys/unseal)"
        }
    };
    ApiError::new(ErrorCode::Sealed, message)
}

pub(crate) fn no_such_bot() -> ApiError {
    ApiError::not_found("no such bot")
}

impl BotData {
    async fn audit_denied(
        &self,
        caller: &Caller,
        action: &str,
        bot_id: Option<&str>,
        field: Option<&str>,
        why: &str,
    ) {
        let mut entry = AuditEntry::new(&self.clock, caller.id(), action, "denied")
            .details(json!({ "reason": why }));
        if let Some(bot_id) = bot_id {
            entry = entry.bot(bot_id);
        }
        if let Some(field) = field {
            entry = entry.field(field, None);
        }
        self.metrics.count(action, "denied");
        if let Err(err) = self.audit.record(vec![entry]).await {
            tracing::error!(error = %format!("{err:#}"), "a denied attempt could not be audited");
        }
    }

    /// 403 unless the caller holds `permission`; the refusal is audited.
    pub async fn require(
        &self,
        caller: &Caller,
        permission: &str,
        action: &str,
        bot_id: Option<&BotId>,
        field: Option<&FieldName>,
    ) -> Result<(), ApiError> {
        if caller.has(permission) {
            return Ok(());
        }
        self.audit_denied(
            caller,
            action,
            bot_id.map(BotId::as_str),
            field.map(FieldName::as_str),
            &format!("missing {permission}"),
        )
        .await;
        Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("this needs the `{permission}` permission"),
        ))
    }

    /// 403 unless the caller has the Admin role; the refusal is audited.
    pub async fn require_admin(&self, caller: &Caller, action: &str) -> Result<(), ApiError> {
        if caller.is_admin() {
            return Ok(());
        }
        self.audit_denied(caller, action, None, None, "needs the Admin role")
            .await;
        Err(ApiError::new(
            ErrorCode::Forbidden,
            "this needs the Admin role",
        ))
    }

    /// The bot, if the caller may reach it. A bot they may not reach answers exactly like one
    /// that does not exist (404), and the attempt is audited.
    pub async fn reachable(
        &self,
        caller: &Caller,
        action: &str,
        bot_id: &BotId,
        field: Option<&FieldName>,
    ) -> Result<BotRow, ApiError> {
        let bot = bots::get(self.db.pool(), bot_id.as_str())
            .await?
            .ok_or_else(no_such_bot)?;
        if access::reaches(caller, &bot) {
            return Ok(bot);
        }
        Err(self
            .unreachable(caller, action, bot_id, field.map(FieldName::as_str))
            .await)
    }

    /// The answer to a bot the caller may not reach: audited, and the same 404 as a bot that
    /// does not exist.
    pub(crate) async fn unreachable(
        &self,
        caller: &Caller,
        action: &str,
        bot_id: &BotId,
        field: Option<&str>,
    ) -> ApiError {
        self.audit_denied(
            caller,
            action,
            Some(bot_id.as_str()),
            field,
            "not the owner or the owner's team",
        )
        .await;
        no_such_bot()
    }
}
