//! Writing fields: each a new version sealed under the newest KEK, check-and-set against the
//! version the caller read, the bot registered on its first write, all in one transaction
//! with its audit rows.

use platform::auth::Caller;
use platform::{ApiError, ErrorCode};
use serde_json::json;

use crate::access;
use crate::crypto::{self, RecordRef};
use crate::keyring::{SealReason, SealedError};
use crate::model::{BotId, FieldName, SecretValue};
use crate::service::{BotData, no_such_bot, sealed};
use crate::store;
use crate::store::audit::AuditEntry;
use crate::store::bots;
use crate::store::secrets::{self, Expect};

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

/// Writes fields as new versions in one transaction, registering the bot on first write.
pub async fn write(
    data: &BotData,
    caller: &Caller,
    bot_id: &BotId,
    ownership: Ownership,
    writes: Vec<FieldWrite>,
) -> Result<Vec<Written>, ApiError> {
    let first_field = writes.first().map(|w| &w.field);
    data.require(caller, "botdata:write", "write", Some(bot_id), first_field)
        .await?;
    if writes.is_empty() {
        return Err(ApiError::invalid_data("at least one field to write"));
    }
    let (owner_id, team) = owner_of_new_bot(caller, ownership)?;
    let keyring = data.vault.keyring().map_err(sealed)?;
    let kek = keyring
        .newest()
        .ok_or_else(|| sealed(SealedError(SealReason::NoKeys)))?;
    let mut tx = data.db.pool().begin().await.map_err(anyhow::Error::from)?;
    let outcome = write_in(
        data,
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
            data.audit.committed();
            data.metrics.count("write", "ok");
            Ok(written)
        }
        Err(refusal) => {
            // Roll back now rather than when the pool next hands out this connection,
            // so no row lock outlives the request.
            tx.rollback().await.map_err(anyhow::Error::from)?;
            if refusal.code == ErrorCode::NotFound {
                let field = writes.first().map(|w| w.field.as_str());
                return Err(data.unreachable(caller, "write", bot_id, field).await);
            }
            Err(refusal)
        }
    }
}

/// The body of a write, inside its transaction: registers the bot if new, checks reach,
/// claims versions and stores the sealed values. Returns what was written and its audit.
async fn write_in(
    data: &BotData,
    tx: &mut sqlx::AnyConnection,
    caller: &Caller,
    bot_id: &BotId,
    (owner_id, team): (&str, Option<&str>),
    kek: &crate::crypto::Kek,
    writes: &[FieldWrite],
) -> Result<(Vec<Written>, Vec<AuditEntry>), ApiError> {
    let now = data.clock.unix_seconds();
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
            data.settings.max_versions,
        )
        .await?;
        entries.push(
            AuditEntry::new(&data.clock, caller.id(), "write", "ok")
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
    if secrets::count_fields(&mut *tx, bot_id.as_str()).await? > data.settings.max_fields_per_bot {
        return Err(ApiError::invalid_data(format!(
            "a bot holds at most {} fields",
            data.settings.max_fields_per_bot
        )));
    }
    Ok((written, entries))
}

fn owner_of_new_bot(
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
