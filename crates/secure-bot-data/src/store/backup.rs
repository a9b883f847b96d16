//! Backup records: every row of the store as it is sealed (ciphertexts and wrapped DEKs, base64)
//! plus the KEK policy. A KEK is never part of a backup, so a backup alone opens nothing.

use platform::db::Database;
use serde::{Deserialize, Serialize};
use sqlx::Row;

pub const FORMAT: &str = "vivesphere-botdata-backup";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Record {
    Header {
        format: String,
        version: u32,
        created_at: String,
    },
    Policy {
        min_decryption_version: i64,
    },
    Bot {
        bot_id: String,
        owner_id: String,
        team: Option<String>,
        created_at: i64,
        created_by: String,
    },
    Field {
        bot_id: String,
        field: String,
        current_version: i64,
        created_at: i64,
        created_by: String,
        updated_at: i64,
        updated_by: String,
    },
    Version {
        bot_id: String,
        field: String,
        version: i64,
        kek_version: Option<i64>,
        wrapped_dek: Option<String>,
        ciphertext: Option<String>,
        created_at: i64,
        created_by: String,
        deleted_at: Option<i64>,
        deleted_by: Option<String>,
        destroyed_at: Option<i64>,
        destroyed_by: Option<String>,
    },
}

/// Every record, parents before children.
pub async fn dump(db: &Database) -> anyhow::Result<Vec<Record>> {
    let mut records = vec![Record::Policy {
        min_decryption_version: i64::from(super::policy::min_decryption_version(db).await?),
    }];
    for row in sqlx::query(
        "SELECT bot_id, owner_id, team, created_at, created_by FROM bots ORDER BY bot_id",
    )
    .fetch_all(db.pool())
    .await?
    {
        records.push(Record::Bot {
            bot_id: row.try_get("bot_id")?,
            owner_id: row.try_get("owner_id")?,
            team: row.try_get("team")?,
            created_at: row.try_get("created_at")?,
            created_by: row.try_get("created_by")?,
        });
    }
    for row in sqlx::query(
        "SELECT bot_id, field, current_version, created_at, created_by, updated_at, updated_by \
         FROM secret_fields ORDER BY bot_id, field",
    )
    .fetch_all(db.pool())
    .await?
    {
        records.push(Record::Field {
            bot_id: row.try_get("bot_id")?,
            field: row.try_get("field")?,
            current_version: row.try_get("current_version")?,
            created_at: row.try_get("created_at")?,
            created_by: row.try_get("created_by")?,
            updated_at: row.try_get("updated_at")?,
            updated_by: row.try_get("updated_by")?,
        });
    }
    for row in sqlx::query(
        "SELECT bot_id, field, version, kek_version, wrapped_dek, ciphertext, created_at, created_by, \
                deleted_at, deleted_by, destroyed_at, destroyed_by \
         FROM secret_versions ORDER BY bot_id, field, version",
    )
    .fetch_all(db.pool())
    .await?
    {
        records.push(Record::Version {
            bot_id: row.try_get("bot_id")?,
            field: row.try_get("field")?,
            version: row.try_get("version")?,
            kek_version: row.try_get("kek_version")?,
            wrapped_dek: row.try_get("wrapped_dek")?,
            ciphertext: row.try_get("ciphertext")?,
            created_at: row.try_get("created_at")?,
            created_by: row.try_get("created_by")?,
            deleted_at: row.try_get("deleted_at")?,
            deleted_by: row.try_get("deleted_by")?,
            destroyed_at: row.try_get("destroyed_at")?,
            destroyed_by: row.try_get("destroyed_by")?,
        });
    }
    Ok(records)
}

pub async fn is_empty(db: &Database) -> anyhow::Result<bool> {
    let bots: i64 = sqlx::query("SELECT COUNT(*) AS n FROM bots")
        .fetch_one(db.pool())
        .await?
        .try_get("n")?;
    Ok(bots == 0)
}

/// Inserts one record inside the caller's transaction.
/// `now` (Unix seconds) stamps what the backup does not carry.
pub async fn load(tx: &mut sqlx::AnyConnection, record: &Record, now: i64) -> anyhow::Result<()> {
    match record {
        Record::Header { .. } => {}
        Record::Policy {
            min_decryption_version,
        } => {
            sqlx::query(
                "UPDATE kek_policy SET min_decryption_version = $1, updated_at = $2 WHERE id = 1",
            )
            .bind(min_decryption_version)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        Record::Bot {
            bot_id,
            owner_id,
            team,
            created_at,
            created_by,
        } => {
            sqlx::query(
                "INSERT INTO bots (bot_id, owner_id, team, created_at, created_by) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(bot_id)
            .bind(owner_id)
            .bind(team)
            .bind(created_at)
            .bind(created_by)
            .execute(&mut *tx)
            .await?;
        }
        Record::Field {
            bot_id,
            field,
            current_version,
            created_at,
            created_by,
            updated_at,
            updated_by,
        } => {
            sqlx::query(
                "INSERT INTO secret_fields \
                 (bot_id, field, current_version, created_at, created_by, updated_at, updated_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(bot_id)
            .bind(field)
            .bind(current_version)
            .bind(created_at)
            .bind(created_by)
            .bind(updated_at)
            .bind(updated_by)
            .execute(&mut *tx)
            .await?;
        }
        Record::Version {
            bot_id,
            field,
            version,
            kek_version,
            wrapped_dek,
            ciphertext,
            created_at,
            created_by,
            deleted_at,
            deleted_by,
            destroyed_at,
            destroyed_by,
        } => {
            sqlx::query(
                "INSERT INTO secret_versions \
                 (bot_id, field, version, kek_version, wrapped_dek, ciphertext, created_at, created_by, \
                  deleted_at, deleted_by, destroyed_at, destroyed_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(bot_id)
            .bind(field)
            .bind(version)
            .bind(kek_version)
            .bind(wrapped_dek)
            .bind(ciphertext)
            .bind(created_at)
            .bind(created_by)
            .bind(deleted_at)
            .bind(deleted_by)
            .bind(destroyed_at)
            .bind(destroyed_by)
            .execute(&mut *tx)
            .await?;
        }
    }
    Ok(())
}
