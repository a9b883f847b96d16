//! The KEK policy row: the minimum KEK version still allowed to decrypt.

use platform::db::Database;
use sqlx::Row;

pub async fn min_decryption_version(db: &Database) -> anyhow::Result<u32> {
    let row = sqlx::query("SELECT min_decryption_version FROM kek_policy WHERE id = 1")
        .fetch_one(db.pool())
        .await?;
    Ok(u32::try_from(
        row.try_get::<i64, _>("min_decryption_version")?,
    )?)
}

pub async fn set_min_decryption_version(
    db: &Database,
    version: u32,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE kek_policy SET min_decryption_version = $1, updated_at = $2 WHERE id = 1")
        .bind(i64::from(version))
        .bind(now)
        .execute(db.pool())
        .await?;
    Ok(())
}
