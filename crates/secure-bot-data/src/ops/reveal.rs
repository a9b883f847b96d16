//! Reading fields: masked, or in clear (a reveal). A reveal is audited before the value
//! leaves — no audit row, no value.

use std::collections::BTreeMap;

use platform::auth::Caller;
use platform::{ApiError, ErrorCode};
use serde_json::json;

use crate::access;
use crate::crypto::{self, RecordRef};
use crate::model::{BotId, FieldName, SecretValue};
use crate::service::{BotData, no_such_bot, sealed};
use crate::store::audit::AuditEntry;
use crate::store::secrets::{self, VersionRow};

/// A value as read: revealed or masked.
pub struct FieldValue {
    pub field: String,
    pub version: i64,
    pub value: SecretValue,
}

/// One field, in clear (`reveal`, audited, needs `botdata:reveal`) or masked.
pub async fn read(
    data: &BotData,
    caller: &Caller,
    bot_id: &BotId,
    field: &FieldName,
    version: Option<i64>,
    reveal: bool,
) -> Result<FieldValue, ApiError> {
    let (permission, action) = if reveal {
        ("botdata:reveal", "reveal")
    } else {
        ("botdata:read", "read")
    };
    data.require(caller, permission, action, Some(bot_id), Some(field))
        .await?;
    let row = reachable_version(data, caller, action, bot_id, field, version).await?;
    let value = open(data, bot_id, &row).await?;
    if reveal {
        let kek_version = row.sealed.as_ref().map_or(0, |s| s.kek_version);
        let mut entry = AuditEntry::new(&data.clock, caller.id(), "reveal", "ok")
            .bot(bot_id.as_str())
            .field(field.as_str(), Some(row.version));
        if let Some(hmac) = audit_hmac(data, kek_version, &value) {
            entry = entry.hmac(hmac);
        }
        record_reveal(data, vec![entry]).await?;
    }
    Ok(FieldValue {
        field: row.field,
        version: row.version,
        value,
    })
}

/// Every live field of a bot, in clear (the contract's `retrieve`).
pub async fn reveal_all(
    data: &BotData,
    caller: &Caller,
    bot_id: &BotId,
) -> Result<BTreeMap<String, SecretValue>, ApiError> {
    data.require(caller, "botdata:reveal", "reveal", Some(bot_id), None)
        .await?;
    let (bot, rows) = secrets::current_versions_with_bot(&data.db, bot_id.as_str())
        .await?
        .ok_or_else(no_such_bot)?;
    if !access::reaches(caller, &bot) {
        return Err(data.unreachable(caller, "reveal", bot_id, None).await);
    }
    let mut values = BTreeMap::new();
    let mut fields = Vec::new();
    for row in rows
        .iter()
        .filter(|r| r.deleted_at.is_none() && r.destroyed_at.is_none())
    {
        let value = open(data, bot_id, row).await?;
        let hmac = row
            .sealed
            .as_ref()
            .and_then(|s| audit_hmac(data, s.kek_version, &value));
        fields.push(json!({"field": row.field, "version": row.version, "value_hmac": hmac}));
        values.insert(row.field.clone(), value);
    }
    // One reveal, one row naming its fields (each with its version and value HMAC): the
    // contract's retrieve is the hot path, and a row per field quadrupled the audit trail
    // and the activity events for no more information.
    let entries = vec![
        AuditEntry::new(&data.clock, caller.id(), "reveal", "ok")
            .bot(bot_id.as_str())
            .details(json!({ "fields": fields })),
    ];
    record_reveal(data, entries).await?;
    Ok(values)
}

/// A live version of a field of a bot the caller may reach, in one query (this is the
/// path of every reveal). An unreachable bot is audited and answers like a missing one.
async fn reachable_version(
    data: &BotData,
    caller: &Caller,
    action: &str,
    bot_id: &BotId,
    field: &FieldName,
    version: Option<i64>,
) -> Result<VersionRow, ApiError> {
    let (bot, row) = secrets::version_with_bot(&data.db, bot_id.as_str(), field.as_str(), version)
        .await?
        .ok_or_else(no_such_bot)?;
    if !access::reaches(caller, &bot) {
        return Err(data
            .unreachable(caller, action, bot_id, Some(field.as_str()))
            .await);
    }
    let row = row.ok_or_else(|| ApiError::not_found("no such field or version"))?;
    if row.destroyed_at.is_some() {
        return Err(ApiError::not_found(format!(
            "version {} of {} is destroyed",
            row.version, row.field
        )));
    }
    if row.deleted_at.is_some() {
        return Err(ApiError::not_found(format!(
            "version {} of {} is deleted; undelete it to read it",
            row.version, row.field
        )));
    }
    Ok(row)
}

/// Opens one stored version.
async fn open(data: &BotData, bot_id: &BotId, row: &VersionRow) -> Result<SecretValue, ApiError> {
    let sealed_value = row.sealed.as_ref().ok_or_else(|| {
        ApiError::not_found(format!(
            "version {} of {} is destroyed",
            row.version, row.field
        ))
    })?;
    let keyring = data
        .vault
        .keyring_with(sealed_value.kek_version)
        .await
        .map_err(sealed)?;
    let kek = keyring.get(sealed_value.kek_version).ok_or_else(|| {
        ApiError::new(
            ErrorCode::Sealed,
            format!(
                "the key-encryption key version {} that protects this value is not available",
                sealed_value.kek_version
            ),
        )
    })?;
    let record = RecordRef {
        bot_id: bot_id.as_str(),
        field: &row.field,
        version: row.version,
    };
    let plaintext = crypto::open(kek, record, sealed_value).map_err(|_| {
        let message = format!(
            "integrity failure: {}/{} v{} does not open",
            bot_id.as_str(),
            row.field,
            row.version
        );
        data.events.debug(
            "error",
            &message,
            json!({ "bot_id": bot_id.as_str(), "field": row.field, "version": row.version }),
        );
        ApiError::internal(message)
    })?;
    Ok(SecretValue::from_plaintext(plaintext)?)
}

fn audit_hmac(data: &BotData, kek_version: u32, value: &SecretValue) -> Option<String> {
    let keyring = data.vault.keyring().ok()?;
    keyring
        .get(kek_version)
        .map(|kek| kek.audit_hmac(value.expose().as_bytes()))
}

/// Fail closed: no audit row, no value.
async fn record_reveal(data: &BotData, entries: Vec<AuditEntry>) -> Result<(), ApiError> {
    match data.audit.record(entries).await {
        Ok(()) => {
            data.metrics.count("reveal", "ok");
            Ok(())
        }
        Err(err) => {
            data.metrics.count("reveal", "unaudited");
            tracing::error!(error = %format!("{err:#}"), "reveal refused: the audit trail cannot be written");
            Err(ApiError::new(
                ErrorCode::NotReady,
                "the audit trail cannot be written; nothing was revealed",
            ))
        }
    }
}
