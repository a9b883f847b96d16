//! Fields and their sealed versions. Metadata (who and when, current version) lives in
//! `secret_fields`; each version's wrapped DEK and ciphertext in `secret_versions`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use platform::db::Database;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::bots::BotRow;
use super::rfc3339;
use crate::crypto::{RecordRef, Sealed};

/// What a write expects of the field's current version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Write whatever the current version is.
    Any,
    /// Write only if the field does not exist yet.
    Absent,
    /// Write only if the current version is this one.
    Version(i64),
}

/// A write that lost its check-and-set: the field's actual current version (0: absent).
#[derive(Debug, Clone, Copy)]
pub struct Stale {
    pub current: i64,
}

async fn current_version(
    tx: &mut sqlx::AnyConnection,
    bot_id: &str,
    field: &str,
) -> anyhow::Result<Option<i64>> {
    Ok(
        sqlx::query("SELECT current_version FROM secret_fields WHERE bot_id = $1 AND field = $2")
            .bind(bot_id)
            .bind(field)
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| row.try_get::<i64, _>("current_version"))
            .transpose()?,
    )
}

/// Claims the next version number of a field, honouring `expect`. The claim is a conditional
/// insert or update, so of two concurrent writers expecting the same version one wins.
pub async fn claim_next_version(
    tx: &mut sqlx::AnyConnection,
    bot_id: &str,
    field: &str,
    expect: Expect,
    actor: &str,
    now: i64,
) -> anyhow::Result<Result<i64, Stale>> {
    // Retried only for `Expect::Any`, which never reports a conflict.
    for _ in 0..8 {
        let current = current_version(tx, bot_id, field).await?;
        match (expect, current) {
            (Expect::Absent, Some(current)) => return Ok(Err(Stale { current })),
            (Expect::Version(want), found) if found != Some(want) => {
                return Ok(Err(Stale {
                    current: found.unwrap_or(0),
                }));
            }
            _ => {}
        }
        let claimed = match current {
            None => sqlx::query(
                "INSERT INTO secret_fields \
                 (bot_id, field, current_version, created_at, created_by, updated_at, updated_by) \
                 VALUES ($1, $2, 1, $3, $4, $3, $4) ON CONFLICT (bot_id, field) DO NOTHING",
            )
            .bind(bot_id)
            .bind(field)
            .bind(now)
            .bind(actor)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
            Some(current) => sqlx::query(
                "UPDATE secret_fields SET current_version = $3 + 1, updated_at = $4, updated_by = $5 \
                 WHERE bot_id = $1 AND field = $2 AND current_version = $3",
            )
            .bind(bot_id)
            .bind(field)
            .bind(current)
            .bind(now)
            .bind(actor)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
        };
        let next = current.unwrap_or(0) + 1;
        if claimed == 1 {
            return Ok(Ok(next));
        }
        if expect != Expect::Any {
            return Ok(Err(Stale {
                current: current_version(tx, bot_id, field).await?.unwrap_or(0),
            }));
        }
    }
    anyhow::bail!("field {bot_id}/{field} kept changing under concurrent writes")
}

/// Stores a sealed version and drops versions beyond the newest `max_versions`.
pub async fn insert_version(
    tx: &mut sqlx::AnyConnection,
    record: RecordRef<'_>,
    sealed: &Sealed,
    actor: &str,
    now: i64,
    max_versions: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO secret_versions \
         (bot_id, field, version, kek_version, wrapped_dek, ciphertext, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(record.bot_id)
    .bind(record.field)
    .bind(record.version)
    .bind(i64::from(sealed.kek_version))
    .bind(STANDARD.encode(&sealed.wrapped_dek))
    .bind(STANDARD.encode(&sealed.ciphertext))
    .bind(now)
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM secret_versions WHERE bot_id = $1 AND field = $2 AND version <= $3")
        .bind(record.bot_id)
        .bind(record.field)
        .bind(record.version - max_versions)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

pub async fn count_fields(tx: &mut sqlx::AnyConnection, bot_id: &str) -> anyhow::Result<i64> {
    Ok(
        sqlx::query("SELECT COUNT(*) AS n FROM secret_fields WHERE bot_id = $1")
            .bind(bot_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?,
    )
}

/// One stored version.
#[derive(Debug, Clone)]
pub struct VersionRow {
    pub field: String,
    pub version: i64,
    /// None once destroyed.
    pub sealed: Option<Sealed>,
    pub created_at: i64,
    pub created_by: String,
    pub deleted_at: Option<i64>,
    pub destroyed_at: Option<i64>,
}

const VERSION_COLUMNS: &str = "v.field, v.version, v.kek_version, v.wrapped_dek, v.ciphertext, \
     v.created_at, v.created_by, v.deleted_at, v.destroyed_at";

fn version_from_row(row: &AnyRow) -> anyhow::Result<VersionRow> {
    let kek_version: Option<i64> = row.try_get("kek_version")?;
    let wrapped: Option<String> = row.try_get("wrapped_dek")?;
    let ciphertext: Option<String> = row.try_get("ciphertext")?;
    let sealed = match (kek_version, wrapped, ciphertext) {
        (Some(kek_version), Some(wrapped), Some(ciphertext)) => Some(Sealed {
            kek_version: u32::try_from(kek_version)?,
            wrapped_dek: STANDARD.decode(wrapped)?,
            ciphertext: STANDARD.decode(ciphertext)?,
        }),
        _ => None,
    };
    Ok(VersionRow {
        field: row.try_get("field")?,
        version: row.try_get("version")?,
        sealed,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
        deleted_at: row.try_get("deleted_at")?,
        destroyed_at: row.try_get("destroyed_at")?,
    })
}

/// The bot's columns of a row that joins it to its versions.
fn joined_bot(row: &AnyRow) -> anyhow::Result<BotRow> {
    super::bots::from_columns(row, "bot_created_at")
}

/// A bot and, if it exists, a version of one of its fields (`version`, or the current one).
pub async fn version_with_bot(
    db: &Database,
    bot_id: &str,
    field: &str,
    version: Option<i64>,
) -> anyhow::Result<Option<(BotRow, Option<VersionRow>)>> {
    let sql = format!(
        "SELECT b.bot_id, b.owner_id, b.team, b.created_at AS bot_created_at, {VERSION_COLUMNS} \
         FROM bots b \
         LEFT JOIN secret_fields f ON f.bot_id = b.bot_id AND f.field = $2 \
         LEFT JOIN secret_versions v ON v.bot_id = f.bot_id AND v.field = f.field \
              AND v.version = COALESCE($3, f.current_version) \
         WHERE b.bot_id = $1"
    );
    let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(bot_id)
        .bind(field)
        .bind(version)
        .fetch_optional(db.pool())
        .await?
    else {
        return Ok(None);
    };
    let bot = joined_bot(&row)?;
    let found = row.try_get::<Option<i64>, _>("version")?.is_some();
    let version = if found {
        Some(version_from_row(&row)?)
    } else {
        None
    };
    Ok(Some((bot, version)))
}

/// A bot and the current version of each of its fields, in one query (the path of every
/// retrieve): `None` if there is no such bot.
pub async fn current_versions_with_bot(
    db: &Database,
    bot_id: &str,
) -> anyhow::Result<Option<(BotRow, Vec<VersionRow>)>> {
    let sql = format!(
        "SELECT b.bot_id, b.owner_id, b.team, b.created_at AS bot_created_at, {VERSION_COLUMNS} \
         FROM bots b \
         LEFT JOIN secret_fields f ON f.bot_id = b.bot_id \
         LEFT JOIN secret_versions v ON v.bot_id = f.bot_id AND v.field = f.field \
              AND v.version = f.current_version \
         WHERE b.bot_id = $1 ORDER BY v.field"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(bot_id)
        .fetch_all(db.pool())
        .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let bot = joined_bot(first)?;
    let mut versions = Vec::with_capacity(rows.len());
    for row in &rows {
        // A bot without fields comes back as one row of NULL version columns.
        if row.try_get::<Option<i64>, _>("version")?.is_some() {
            versions.push(version_from_row(row)?);
        }
    }
    Ok(Some((bot, versions)))
}

/// A version as metadata: no ciphertext.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VersionMeta {
    pub version: i64,
    pub created_at: String,
    pub created_by: String,
    pub deleted: bool,
    pub destroyed: bool,
    /// The KEK version its DEK is wrapped under; null once destroyed.
    pub kek_version: Option<u32>,
}

/// A field's metadata and its kept versions, oldest first.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FieldMeta {
    pub field: String,
    pub current_version: i64,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    pub updated_by: String,
    pub versions: Vec<VersionMeta>,
}

fn version_meta(row: &VersionRow) -> VersionMeta {
    VersionMeta {
        version: row.version,
        created_at: rfc3339(row.created_at),
        created_by: row.created_by.clone(),
        deleted: row.deleted_at.is_some(),
        destroyed: row.destroyed_at.is_some(),
        kek_version: row.sealed.as_ref().map(|s| s.kek_version),
    }
}

/// Metadata of one field (`Some(name)`) or of every field of a bot.
pub async fn metadata(
    db: &Database,
    bot_id: &str,
    only: Option<&str>,
) -> anyhow::Result<Vec<FieldMeta>> {
    let fields = sqlx::query(
        "SELECT field, current_version, created_at, created_by, updated_at, updated_by \
         FROM secret_fields WHERE bot_id = $1 AND ($2 = '' OR field = $2) ORDER BY field",
    )
    .bind(bot_id)
    .bind(only.unwrap_or(""))
    .fetch_all(db.pool())
    .await?;
    let sql = format!(
        "SELECT {VERSION_COLUMNS} FROM secret_versions v \
         WHERE v.bot_id = $1 AND ($2 = '' OR v.field = $2) ORDER BY v.field, v.version"
    );
    let versions: Vec<VersionRow> = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(bot_id)
        .bind(only.unwrap_or(""))
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(version_from_row)
        .collect::<anyhow::Result<_>>()?;
    fields
        .iter()
        .map(|row| {
            let field: String = row.try_get("field")?;
            Ok(FieldMeta {
                versions: versions
                    .iter()
                    .filter(|v| v.field == field)
                    .map(version_meta)
                    .collect(),
                current_version: row.try_get("current_version")?,
                created_at: rfc3339(row.try_get("created_at")?),
                created_by: row.try_get("created_by")?,
                updated_at: rfc3339(row.try_get("updated_at")?),
                updated_by: row.try_get("updated_by")?,
                field,
            })
        })
        .collect()
}

/// Soft-deletes (`deleted`) or restores versions that are not destroyed. Returns the
/// versions that changed.
pub async fn set_deleted(
    tx: &mut sqlx::AnyConnection,
    bot_id: &str,
    field: &str,
    versions: &[i64],
    deleted: bool,
    actor: &str,
    now: i64,
) -> anyhow::Result<Vec<i64>> {
    let mut changed = Vec::new();
    for version in versions {
        let query = if deleted {
            sqlx::query(
                "UPDATE secret_versions SET deleted_at = $4, deleted_by = $5 \
                 WHERE bot_id = $1 AND field = $2 AND version = $3 \
                   AND deleted_at IS NULL AND destroyed_at IS NULL",
            )
            .bind(bot_id)
            .bind(field)
            .bind(version)
            .bind(now)
            .bind(actor)
        } else {
            sqlx::query(
                "UPDATE secret_versions SET deleted_at = NULL, deleted_by = NULL \
                 WHERE bot_id = $1 AND field = $2 AND version = $3 \
                   AND deleted_at IS NOT NULL AND destroyed_at IS NULL",
            )
            .bind(bot_id)
            .bind(field)
            .bind(version)
        };
        if query.execute(&mut *tx).await?.rows_affected() == 1 {
            changed.push(*version);
        }
    }
    Ok(changed)
}

/// Wipes the wrapped DEK and ciphertext of versions for good. Returns the versions that
/// changed.
pub async fn destroy(
    tx: &mut sqlx::AnyConnection,
    bot_id: &str,
    field: &str,
    versions: &[i64],
    actor: &str,
    now: i64,
) -> anyhow::Result<Vec<i64>> {
    let mut changed = Vec::new();
    for version in versions {
        let destroyed = sqlx::query(
            "UPDATE secret_versions SET kek_version = NULL, wrapped_dek = NULL, ciphertext = NULL, \
                    destroyed_at = $4, destroyed_by = $5 \
             WHERE bot_id = $1 AND field = $2 AND version = $3 AND destroyed_at IS NULL",
        )
        .bind(bot_id)
        .bind(field)
        .bind(version)
        .bind(now)
        .bind(actor)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if destroyed == 1 {
            changed.push(*version);
        }
    }
    Ok(changed)
}

/// A wrapped DEK awaiting re-wrap.
#[derive(Debug, Clone)]
pub struct WrappedDek {
    pub bot_id: String,
    pub field: String,
    pub version: i64,
    pub kek_version: u32,
    pub wrapped_dek: Vec<u8>,
}

/// Up to `limit` DEKs wrapped under a KEK older than `newest`, in key order.
pub async fn wrapped_below(
    db: &Database,
    newest: u32,
    limit: i64,
) -> anyhow::Result<Vec<WrappedDek>> {
    sqlx::query(
        "SELECT bot_id, field, version, kek_version, wrapped_dek FROM secret_versions \
         WHERE kek_version < $1 ORDER BY bot_id, field, version LIMIT $2",
    )
    .bind(i64::from(newest))
    .bind(limit)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|row| {
        Ok(WrappedDek {
            bot_id: row.try_get("bot_id")?,
            field: row.try_get("field")?,
            version: row.try_get("version")?,
            kek_version: u32::try_from(row.try_get::<i64, _>("kek_version")?)?,
            wrapped_dek: STANDARD.decode(row.try_get::<String, _>("wrapped_dek")?)?,
        })
    })
    .collect()
}

/// Replaces a wrapped DEK if it is still wrapped under `from` (a concurrent rewrap or
/// destroy wins otherwise). Returns whether it changed.
pub async fn replace_wrapped(
    db: &Database,
    dek: &WrappedDek,
    to: u32,
    wrapped: &[u8],
) -> anyhow::Result<bool> {
    Ok(sqlx::query(
        "UPDATE secret_versions SET kek_version = $5, wrapped_dek = $6 \
         WHERE bot_id = $1 AND field = $2 AND version = $3 AND kek_version = $4",
    )
    .bind(&dek.bot_id)
    .bind(&dek.field)
    .bind(dek.version)
    .bind(i64::from(dek.kek_version))
    .bind(i64::from(to))
    .bind(STANDARD.encode(wrapped))
    .execute(db.pool())
    .await?
    .rows_affected()
        == 1)
}

/// How many stored DEKs are wrapped under each KEK version.
pub async fn count_by_kek(db: &Database) -> anyhow::Result<Vec<(u32, i64)>> {
    sqlx::query(
        "SELECT kek_version, COUNT(*) AS n FROM secret_versions \
         WHERE kek_version IS NOT NULL GROUP BY kek_version ORDER BY kek_version",
    )
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|row| {
        Ok((
            u32::try_from(row.try_get::<i64, _>("kek_version")?)?,
            row.try_get("n")?,
        ))
    })
    .collect()
}
