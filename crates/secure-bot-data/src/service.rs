//! The service's operations, shared by the contract routes and the RESTful ones: permission
//! and reach checks (audited when refused), sealing and opening values, and the audit rows
//! that go with every write and reveal.

use std::collections::BTreeMap;

use platform::db::Database;
use platform::{ApiError, ErrorCode};
use serde_json::json;

use platform::auth::Caller;

use crate::access;
use crate::audit::AuditLog;
use crate::crypto::{self, RecordRef};
use crate::keyring::{KeyVault, SealReason, SealedError};
use crate::model::{BotId, FieldName, SecretValue};
use crate::settings::Settings;
use crate::store;
use crate::store::audit::AuditEntry;
use crate::store::bots::{self, BotRow, BotSummary};
use crate::store::secrets::{self, Expect, FieldMeta, VersionRow};

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

fn no_such_bot() -> ApiError {
    ApiError::not_found("no such bot")
}

/// A field to write.
pub struct FieldWrite {
    pub field: FieldName,
    pub value: SecretValue,
    pub expect: Expect,
}

/// Who a new bot belongs to, when a service or an admin registers it for someone.
#[derive(Debug, Default, Clone)]
pub struct Ownership {
    owner_id: Option<String>,
    team: Option<String>,
}

impl Ownership {
    pub fn parse(owner_id: Option<String>, team: Option<String>) -> Result<Self, ApiError> {
        for (name, value) in [("owner_id", &owner_id), ("team", &team)] {
            if value
                .as_ref()
                .is_some_and(|v| v.is_empty() || v.len() > 128)
            {
                return Err(ApiError::invalid_data(format!(
                    "{name}: 1 to 128 characters"
                )));
            }
        }
        Ok(Self { owner_id, team })
    }
}

/// A written field.
#[derive(Debug, Clone)]
pub struct Written {
    pub field: String,
    pub version: i64,
}

/// A value as read: revealed or masked.
pub struct FieldValue {
    pub field: String,
    pub version: i64,
    pub value: SecretValue,
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
    async fn unreachable(
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

    /// Writes fields as new versions in one transaction, registering the bot on first write.
    pub async fn write(
        &self,
        caller: &Caller,
        bot_id: &BotId,
        ownership: Ownership,
        writes: Vec<FieldWrite>,
    ) -> Result<Vec<Written>, ApiError> {
        let first_field = writes.first().map(|w| &w.field);
        self.require(caller, "botdata:write", "write", Some(bot_id), first_field)
            .await?;
        if writes.is_empty() {
            return Err(ApiError::invalid_data("at least one field to write"));
        }
        let (owner_id, team) = self.owner_of_new_bot(caller, ownership)?;
        let keyring = self.vault.keyring().map_err(sealed)?;
        let kek = keyring
            .newest()
            .ok_or_else(|| sealed(SealedError(SealReason::NoKeys)))?;
        let mut tx = self.db.pool().begin().await.map_err(anyhow::Error::from)?;
        let outcome = self
            .write_in(
                &mut tx,
                caller,
                bot_id,
                (&owner_id, team.as_deref()),
                kek,
                &writes,
            )
            .await;
        match outcome {
            Ok((written, entries)) => {
                store::audit::insert(&mut tx, &entries).await?;
                tx.commit().await.map_err(anyhow::Error::from)?;
                self.audit.committed();
                self.metrics.count("write", "ok");
                Ok(written)
            }
            Err(refusal) => {
                // Roll back now rather than when the pool next hands out this connection,
                // so no row lock outlives the request.
                tx.rollback().await.map_err(anyhow::Error::from)?;
                if refusal.code == ErrorCode::NotFound {
                    let field = writes.first().map(|w| w.field.as_str());
                    return Err(self.unreachable(caller, "write", bot_id, field).await);
                }
                Err(refusal)
            }
        }
    }

    /// The body of a write, inside its transaction: registers the bot if new, checks reach,
    /// claims versions and stores the sealed values. Returns what was written and its audit.
    async fn write_in(
        &self,
        tx: &mut sqlx::AnyConnection,
        caller: &Caller,
        bot_id: &BotId,
        (owner_id, team): (&str, Option<&str>),
        kek: &crate::crypto::Kek,
        writes: &[FieldWrite],
    ) -> Result<(Vec<Written>, Vec<AuditEntry>), ApiError> {
        let now = self.clock.unix_seconds();
        bots::create_if_absent(&mut *tx, bot_id.as_str(), owner_id, team, caller.id(), now).await?;
        let bot = bots::get(&mut *tx, bot_id.as_str())
            .await?
            .ok_or_else(no_such_bot)?;
        if !access::reaches(caller, &bot) {
            return Err(no_such_bot());
        }
        let mut written = Vec::with_capacity(writes.len());
        let mut entries = Vec::with_capacity(writes.len());
        for write in writes {
            let field = write.field.as_str();
            let version = secrets::claim_next_version(
                &mut *tx,
                bot_id.as_str(),
                field,
                write.expect,
                caller.id(),
                now,
            )
            .await?
            .map_err(|stale| {
                ApiError::new(
                    ErrorCode::Conflict,
                    format!(
                        "{field} is at version {}; read it again and retry with that version",
                        stale.current
                    ),
                )
                .with_field("current_version", stale.current)
            })?;
            let record = RecordRef {
                bot_id: bot_id.as_str(),
                field,
                version,
            };
            let plaintext = write.value.expose().as_bytes();
            let sealed_value = crypto::seal(kek, record, plaintext);
            secrets::insert_version(
                &mut *tx,
                record,
                &sealed_value,
                caller.id(),
                now,
                self.settings.max_versions,
            )
            .await?;
            entries.push(
                AuditEntry::new(&self.clock, caller.id(), "write", "ok")
                    .bot(bot_id.as_str())
                    .field(field, Some(version))
                    .hmac(kek.audit_hmac(plaintext))
                    .details(json!({ "kek_version": kek.version() })),
            );
            written.push(Written {
                field: field.to_string(),
                version,
            });
        }
        if secrets::count_fields(&mut *tx, bot_id.as_str()).await?
            > self.settings.max_fields_per_bot
        {
            return Err(ApiError::invalid_data(format!(
                "a bot holds at most {} fields",
                self.settings.max_fields_per_bot
            )));
        }
        Ok((written, entries))
    }

    fn owner_of_new_bot(
        &self,
        caller: &Caller,
        ownership: Ownership,
    ) -> Result<(String, Option<String>), ApiError> {
        let assigns = ownership
            .owner_id
            .as_deref()
            .is_some_and(|owner| owner != caller.id())
            || ownership.team.is_some();
        if assigns && !access::may_assign_owner(caller) {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "only admins and service clients register bots for another owner or team",
            ));
        }
        if caller.is_service() && ownership.owner_id.is_none() {
            return Err(ApiError::invalid_data(
                "owner_id: a service client must name the user a new bot belongs to",
            ));
        }
        let owner = ownership
            .owner_id
            .unwrap_or_else(|| caller.id().to_string());
        let team = ownership.team.or_else(|| caller.team().map(String::from));
        Ok((owner, team))
    }

    /// Opens one stored version.
    async fn open(&self, bot_id: &BotId, row: &VersionRow) -> Result<SecretValue, ApiError> {
        let sealed_value = row.sealed.as_ref().ok_or_else(|| {
            ApiError::not_found(format!(
                "version {} of {} is destroyed",
                row.version, row.field
            ))
        })?;
        let keyring = self
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
            self.events.debug(
                "error",
                &message,
                json!({ "bot_id": bot_id.as_str(), "field": row.field, "version": row.version }),
            );
            ApiError::internal(message)
        })?;
        Ok(SecretValue::from_plaintext(plaintext)?)
    }

    fn audit_hmac(&self, kek_version: u32, value: &SecretValue) -> Option<String> {
        let keyring = self.vault.keyring().ok()?;
        keyring
            .get(kek_version)
            .map(|kek| kek.audit_hmac(value.expose().as_bytes()))
    }

    /// A live version of a field of a bot the caller may reach, in one query (this is the
    /// path of every reveal). An unreachable bot is audited and answers like a missing one.
    async fn reachable_version(
        &self,
        caller: &Caller,
        action: &str,
        bot_id: &BotId,
        field: &FieldName,
        version: Option<i64>,
    ) -> Result<VersionRow, ApiError> {
        let (bot, row) =
            secrets::version_with_bot(&self.db, bot_id.as_str(), field.as_str(), version)
                .await?
                .ok_or_else(no_such_bot)?;
        if !access::reaches(caller, &bot) {
            return Err(self
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

    /// One field, in clear (`reveal`, audited, needs `botdata:reveal`) or masked.
    pub async fn read(
        &self,
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
        self.require(caller, permission, action, Some(bot_id), Some(field))
            .await?;
        let row = self
            .reachable_version(caller, action, bot_id, field, version)
            .await?;
        let value = self.open(bot_id, &row).await?;
        if reveal {
            let kek_version = row.sealed.as_ref().map_or(0, |s| s.kek_version);
            let mut entry = AuditEntry::new(&self.clock, caller.id(), "reveal", "ok")
                .bot(bot_id.as_str())
                .field(field.as_str(), Some(row.version));
            if let Some(hmac) = self.audit_hmac(kek_version, &value) {
                entry = entry.hmac(hmac);
            }
            self.record_reveal(vec![entry]).await?;
        }
        Ok(FieldValue {
            field: row.field,
            version: row.version,
            value,
        })
    }

    /// Fail closed: no audit row, no value.
    async fn record_reveal(&self, entries: Vec<AuditEntry>) -> Result<(), ApiError> {
        match self.audit.record(entries).await {
            Ok(()) => {
                self.metrics.count("reveal", "ok");
                Ok(())
            }
            Err(err) => {
                self.metrics.count("reveal", "unaudited");
                tracing::error!(error = %format!("{err:#}"), "reveal refused: the audit trail cannot be written");
                Err(ApiError::new(
                    ErrorCode::NotReady,
                    "the audit trail cannot be written; nothing was revealed",
                ))
            }
        }
    }

    /// Every live field of a bot, in clear (the contract's `retrieve`).
    pub async fn reveal_all(
        &self,
        caller: &Caller,
        bot_id: &BotId,
    ) -> Result<BTreeMap<String, SecretValue>, ApiError> {
        self.require(caller, "botdata:reveal", "reveal", Some(bot_id), None)
            .await?;
        self.reachable(caller, "reveal", bot_id, None).await?;
        let rows = secrets::current_versions(&self.db, bot_id.as_str()).await?;
        let mut values = BTreeMap::new();
        let mut entries = Vec::new();
        for row in rows
            .iter()
            .filter(|r| r.deleted_at.is_none() && r.destroyed_at.is_none())
        {
            let value = self.open(bot_id, row).await?;
            let mut entry = AuditEntry::new(&self.clock, caller.id(), "reveal", "ok")
                .bot(bot_id.as_str())
                .field(&row.field, Some(row.version));
            if let Some(hmac) = row
                .sealed
                .as_ref()
                .and_then(|s| self.audit_hmac(s.kek_version, &value))
            {
                entry = entry.hmac(hmac);
            }
            entries.push(entry);
            values.insert(row.field.clone(), value);
        }
        if entries.is_empty() {
            entries.push(
                AuditEntry::new(&self.clock, caller.id(), "reveal", "ok")
                    .bot(bot_id.as_str())
                    .details(json!({ "fields": 0 })),
            );
        }
        self.record_reveal(entries).await?;
        Ok(values)
    }

    pub async fn list_bots(
        &self,
        caller: &Caller,
        limit: i64,
        cursor: Option<&str>,
    ) -> Result<Vec<BotSummary>, ApiError> {
        self.require(caller, "botdata:read", "list", None, None)
            .await?;
        Ok(bots::list(&self.db, caller.reach(), limit, cursor).await?)
    }

    pub async fn metadata(
        &self,
        caller: &Caller,
        bot_id: &BotId,
        field: Option<&FieldName>,
    ) -> Result<(BotRow, Vec<FieldMeta>), ApiError> {
        self.require(caller, "botdata:read", "read", Some(bot_id), field)
            .await?;
        let bot = self.reachable(caller, "read", bot_id, field).await?;
        let fields =
            secrets::metadata(&self.db, bot_id.as_str(), field.map(FieldName::as_str)).await?;
        if field.is_some() && fields.is_empty() {
            return Err(ApiError::not_found("no such field"));
        }
        Ok((bot, fields))
    }

    /// Soft delete (`delete`), `undelete` or `destroy` of versions (default: the current
    /// one). Returns how many versions changed.
    pub async fn lifecycle(
        &self,
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
        self.require(caller, permission, name, Some(bot_id), Some(field))
            .await?;
        if action == Lifecycle::Destroy {
            self.require_admin(caller, name).await?;
        }
        self.reachable(caller, name, bot_id, Some(field)).await?;
        let metas = secrets::metadata(&self.db, bot_id.as_str(), Some(field.as_str())).await?;
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
        let now = self.clock.unix_seconds();
        let mut tx = self.db.pool().begin().await.map_err(anyhow::Error::from)?;
        let changed = match action {
            Lifecycle::Delete => {
                secrets::set_deleted(
                    &mut tx,
                    bot_id.as_str(),
                    field.as_str(),
                    &versions,
                    true,
                    caller.id(),
                    now,
                )
                .await?
            }
            Lifecycle::Undelete => {
                secrets::set_deleted(
                    &mut tx,
                    bot_id.as_str(),
                    field.as_str(),
                    &versions,
                    false,
                    caller.id(),
                    now,
                )
                .await?
            }
            Lifecycle::Destroy => {
                secrets::destroy(
                    &mut tx,
                    bot_id.as_str(),
                    field.as_str(),
                    &versions,
                    caller.id(),
                    now,
                )
                .await?
            }
        };
        let entries: Vec<AuditEntry> = changed
            .iter()
            .map(|version| {
                AuditEntry::new(&self.clock, caller.id(), name, "ok")
                    .bot(bot_id.as_str())
                    .field(field.as_str(), Some(*version))
            })
            .collect();
        store::audit::insert(&mut tx, &entries).await?;
        tx.commit().await.map_err(anyhow::Error::from)?;
        self.audit.committed();
        self.metrics.count(name, "ok");
        Ok(changed)
    }

    /// An admin action on the vault itself (seal, unseal), audited.
    pub async fn audit_system(&self, caller: &Caller, action: &str) -> Result<(), ApiError> {
        self.audit
            .record(vec![AuditEntry::new(
                &self.clock,
                caller.id(),
                action,
                "ok",
            )])
            .await
            .map_err(ApiError::from)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Delete,
    Undelete,
    Destroy,
}
