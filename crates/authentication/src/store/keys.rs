//! Signing keys: the private half sealed, the public half base64url; `retired_at` set when
//! a newer key took over.

use platform::db::Database;
use sqlx::Row;

/// The newest key not retired: its id and sealed private half.
pub async fn active(db: &Database) -> anyhow::Result<Option<(String, String)>> {
    let row = sqlx::query(
        "SELECT kid, private_key_sealed FROM signing_keys WHERE retired_at IS NULL \
         ORDER BY created_at DESC, kid DESC LIMIT 1",
    )
    .fetch_optional(db.pool())
    .await?;
    row.map(|row| Ok((row.try_get("kid")?, row.try_get("private_key_sealed")?)))
        .transpose()
}

/// Retires every key and adds the new one, in one transaction.
pub async fn replace_active(
    db: &Database,
    kid: &str,
    private_key_sealed: &str,
    public_key: &str,
    now: i64,
) -> anyhow::Result<()> {
    let mut tx = db.pool().begin().await?;
    sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL")
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO signing_keys (kid, private_key_sealed, public_key, created_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(kid)
    .bind(private_key_sealed)
    .bind(public_key)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Ids and public halves of the active key and of those retired after `retired_after`,
/// newest first.
pub async fn published(db: &Database, retired_after: i64) -> anyhow::Result<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT kid, public_key FROM signing_keys WHERE retired_at IS NULL OR retired_at > $1 \
         ORDER BY created_at DESC",
    )
    .bind(retired_after)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("kid")?, row.try_get("public_key")?)))
        .collect()
}
