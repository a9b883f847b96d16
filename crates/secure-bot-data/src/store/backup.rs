//! Backup records: every row of the store as it is sealed (ciphertexts and wrapped DEKs, base64)
//! plus the KEK policy. A KEK is never part of a backup, so a backup alone opens nothing.

use platform::db::Database;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

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
    Bot(BotRow),
    Field(FieldRow),
    Version(VersionRow),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotRow {
    bot_id: String,
    owner_id: String,
    team: Option<String>,
    created_at: i64,
    created_by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRow {
    bot_id: String,
    field: String,
    current_version: i64,
    created_at: i64,
    created_by: String,
    updated_at: i64,
    updated_by: String,
}

/// A sealed value as stored: its ciphertext and wrapped DEK (base64), never plaintext.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionRow {
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
}

impl BotRow {
    fn read(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            bot_id: row.try_get("bot_id")?,
            owner_id: row.try_get("owner_id")?,
            team: row.try_get("team")?,
            created_at: row.try_get("created_at")?,
            created_by: row.try_get("created_by")?,
        })
    }
}

impl FieldRow {
    fn read(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            bot_id: row.try_get("bot_id")?,
            field: row.try_get("field")?,
            current_version: row.try_get("current_version")?,
            created_at: row.try_get("created_at")?,
            created_by: row.try_get("created_by")?,
            updated_at: row.try_get("updated_at")?,
            updated_by: row.try_get("updated_by")?,
        })
    }
}

impl VersionRow {
    fn read(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
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
        })
    }
}

/// Every record, parents before children.
pub async fn dump(db: &Database) -> anyhow::Result<Vec<Record>> {
    let mut records = vec![Record::Policy {
        min_decryption_version: i64::from(super::policy::min_decryption_version(db).await?),
    }];
    let bots = sqlx::query(
        "SELECT bot_id, owner_id, team, created_at, created_by FROM bots ORDER BY bot_id",
    )
    .fetch_all(db.pool())
    .await?;
    for row in &bots {
        records.push(Record::Bot(BotRow::read(row)?));
    }
    let fields = sqlx::query(
        "SELECT bot_id, field, current_version, created_at, created_by, updated_at, updated_by \
         FROM secret_fields ORDER BY bot_id, field",
    )
    .fetch_all(db.pool())
    .await?;
    for row in &fields {
        records.push(Record::Field(FieldRow::read(row)?));
    }
    let versions = sqlx::query(
        "SELECT bot_id, field, version, kek_version, wrapped_dek, ciphertext, created_at, created_by, \
                deleted_at, deleted_by, destroyed_at, destroyed_by \
         FROM secret_versions ORDER BY bot_id, field, version",
    )
    .fetch_all(db.pool())
    .await?;
    for row in &versions {
        records.push(Record::Version(VersionRow::read(row)?));
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
        Record::Bot(bot) => insert_bot(tx, bot).await?,
        Record::Field(field) => insert_field(tx, field).await?,
        Record::Version(version) => insert_version(tx, version).await?,
    }
    Ok(())
}

async fn insert_bot(tx: &mut sqlx::AnyConnection, bot: &BotRow) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO bots (bot_id, owner_id, team, created_at, created_by) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&bot.bot_id)
    .bind(&bot.owner_id)
    .bind(&bot.team)
    .bind(bot.created_at)
    .bind(&bot.created_by)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn insert_field(tx: &mut sqlx::AnyConnection, field: &FieldRow) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO secret_fields \
         (bot_id, field, current_version, created_at, created_by, updated_at, updated_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&field.bot_id)
    .bind(&field.field)
    .bind(field.current_version)
    .bind(field.created_at)
    .bind(&field.created_by)
    .bind(field.updated_at)
    .bind(&field.updated_by)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn insert_version(tx: &mut sqlx::AnyConnection, version: &VersionRow) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO secret_versions \
         (bot_id, field, version, kek_version, wrapped_dek, ciphertext, created_at, created_by, \
          deleted_at, deleted_by, destroyed_at, destroyed_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&version.bot_id)
    .bind(&version.field)
    .bind(version.version)
    .bind(version.kek_version)
    .bind(&version.wrapped_dek)
    .bind(&version.ciphertext)
    .bind(version.created_at)
    .bind(&version.created_by)
    .bind(version.deleted_at)
    .bind(&version.deleted_by)
    .bind(version.destroyed_at)
    .bind(&version.destroyed_by)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Backups written by earlier releases must keep loading: the lines are flat objects
    /// tagged by `type`.
    #[test]
    fn a_backup_line_keeps_its_flat_tagged_shape() {
        let lines = [
            r#"{"type":"bot","bot_id":"b1","owner_id":"u1","team":null,"created_at":1,"created_by":"u1"}"#,
            r#"{"type":"field","bot_id":"b1","field":"api_key","current_version":2,"created_at":1,"created_by":"u1","updated_at":2,"updated_by":"u1"}"#,
            r#"{"type":"version","bot_id":"b1","field":"api_key","version":2,"kek_version":1,"wrapped_dek":"d2s=","ciphertext":"Y3Q=","created_at":2,"created_by":"u1","deleted_at":null,"deleted_by":null,"destroyed_at":null,"destroyed_by":null}"#,
            r#"{"type":"policy","min_decryption_version":1}"#,
        ];
        for line in lines {
            let record: Record = serde_json::from_str(line).expect(line);
            assert_eq!(serde_json::to_string(&record).unwrap(), line);
        }
    }

    #[test]
    fn a_backup_line_with_an_unknown_field_is_refused() {
        let line = r#"{"type":"bot","bot_id":"b1","owner_id":"u1","team":null,"created_at":1,"created_by":"u1","plaintext":"x"}"#;
        assert!(serde_json::from_str::<Record>(line).is_err());
    }
}
