//! Soft delete, undelete and destroy of a field's versions, audited per version.

use platform::ApiError;
use platform::auth::Caller;

use crate::model::{BotId, FieldName};
use crate::service::BotData;
use crate::store;
use crate::store::audit::AuditEntry;
use crate::store::secrets;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Delete,
    Undelete,
    Destroy,
}

/// Soft delete (`delete`), `undelete` or `destroy` of versions (default: the current
/// one). Returns the versions that changed.
pub async fn apply(
    data: &BotData,
    caller: &Caller,
    action: Lifecycle,
    bot_id: &BotId,
    field: &FieldName,
    versions: Option<Vec<i64>>,
) -> Result<Vec<i64>, ApiError> {
    let (permission, name) = match action {
        Lifecycle::Delete => ("botdata:delete", "delete"),
        Lifecycle::Undelete => ("botdata:delete", "undelete"),
        Lifecycle::Destroy => ("botdata:destroy", "destroy"),
    };
    data.require(caller, permission, name, Some(bot_id), Some(field))
        .await?;
    if action == Lifecycle::Destroy {
        data.require_admin(caller, name).await?;
    }
    data.reachable(caller, name, bot_id, Some(field)).await?;
    let versions = kept_versions(data, bot_id, field, versions).await?;
    let now = data.clock.unix_seconds();
    let (bot, field_name) = (bot_id.as_str(), field.as_str());
    let mut tx = data.db.pool().begin().await.map_err(anyhow::Error::from)?;
    let changed = match action {
        Lifecycle::Delete | Lifecycle::Undelete => {
            let deleted = action == Lifecycle::Delete;
            secrets::set_deleted(
                &mut tx,
                bot,
                field_name,
                &versions,
                deleted,
                caller.id(),
                now,
            )
            .await?
        }
        Lifecycle::Destroy => {
            secrets::destroy(&mut tx, bot, field_name, &versions, caller.id(), now).await?
        }
    };
    let entries: Vec<AuditEntry> = changed
        .iter()
        .map(|version| {
            AuditEntry::new(&data.clock, caller.id(), name, "ok")
                .bot(bot)
                .field(field_name, Some(*version))
        })
        .collect();
    store::audit::insert(&mut tx, &entries).await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    data.audit.committed();
    data.metrics.count(name, "ok");
    Ok(changed)
}

/// The versions asked for (default: the current one), each one the field keeps: 1 to 100
/// of them, and an unknown one is not found.
async fn kept_versions(
    data: &BotData,
    bot_id: &BotId,
    field: &FieldName,
    versions: Option<Vec<i64>>,
) -> Result<Vec<i64>, ApiError> {
    let metas = secrets::metadata(&data.db, bot_id.as_str(), Some(field.as_str())).await?;
    let meta = metas
        .first()
        .ok_or_else(|| ApiError::not_found("no such field"))?;
    let versions = versions.unwrap_or_else(|| vec![meta.current_version]);
    if versions.is_empty() || versions.len() > 100 {
        return Err(ApiError::invalid_data("versions: 1 to 100 version numbers"));
    }
    if let Some(unknown) = versions
        .iter()
        .find(|v| !meta.versions.iter().any(|m| m.version == **v))
    {
        return Err(ApiError::not_found(format!(
            "{} has no version {unknown}",
            field.as_str()
        )));
    }
    Ok(versions)
}
