//! Each bot's confirmed automation disclosure, and whether a bot has ever published.

use platform::db::Database;
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct ComplianceRecord {
    pub bot_id: String,
    pub automated_label: bool,
    pub bio_discloses_automation: bool,
    pub operator_account: String,
    pub confirmed_by: String,
    pub confirmed_at: i64,
}

/// Writes the bot's record, replacing an earlier one.
pub async fn confirm(db: &Database, record: &ComplianceRecord) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO compliance_records (bot_id, automated_label, bio_discloses_automation, \
         operator_account, confirmed_by, confirmed_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (bot_id) DO UPDATE SET automated_label = excluded.automated_label, \
         bio_discloses_automation = excluded.bio_discloses_automation, \
         operator_account = excluded.operator_account, confirmed_by = excluded.confirmed_by, \
         confirmed_at = excluded.confirmed_at",
    )
    .bind(&record.bot_id)
    .bind(i64::from(record.automated_label))
    .bind(i64::from(record.bio_discloses_automation))
    .bind(&record.operator_account)
    .bind(&record.confirmed_by)
    .bind(record.confirmed_at)
    .execute(db.pool())
    .await?;
    Ok(())
}

pub async fn get(db: &Database, bot_id: &str) -> anyhow::Result<Option<ComplianceRecord>> {
    let row = sqlx::query("SELECT * FROM compliance_records WHERE bot_id = $1")
        .bind(bot_id)
        .fetch_optional(db.pool())
        .await?;
    row.map(|row| {
        Ok(ComplianceRecord {
            bot_id: row.try_get("bot_id")?,
            automated_label: row.try_get::<i64, _>("automated_label")? != 0,
            bio_discloses_automation: row.try_get::<i64, _>("bio_discloses_automation")? != 0,
            operator_account: row.try_get("operator_account")?,
            confirmed_by: row.try_get("confirmed_by")?,
            confirmed_at: row.try_get("confirmed_at")?,
        })
    })
    .transpose()
}

/// Whether any post of the bot was ever published.
pub async fn has_published(db: &Database, bot_id: &str) -> anyhow::Result<bool> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM (SELECT 1 FROM posts WHERE bot_id = $1 \
         AND published_at IS NOT NULL LIMIT 1) AS first",
    )
    .bind(bot_id)
    .fetch_one(db.pool())
    .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}
