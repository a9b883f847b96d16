//! Signing keys: the private half sealed, the public half base64url; `signs_from` when a key
//! starts signing (a lead time after it is published), `retired_at` when the next one does.

use platform::db::Database;
use sqlx::Row;

/// The key that signs at `now` (Unix seconds).
pub struct ActiveKey {
    pub kid: String,
    pub private_key_sealed: String,
    /// When the next key takes over (Unix seconds), once a rotation has set it.
    pub retires_at: Option<i64>,
}

/// The key that signs at `now` (Unix seconds): the latest whose time to sign has come and
/// that is not retired yet.
pub async fn active(db: &Database, now: i64) -> anyhow::Result<Option<ActiveKey>> {
    let row = sqlx::query(
        "SELECT kid, private_key_sealed, retired_at FROM signing_keys WHERE signs_from <= $1 \
         AND (retired_at IS NULL OR retired_at > $1) ORDER BY signs_from DESC, kid DESC LIMIT 1",
    )
    .bind(now)
    .fetch_optional(db.pool())
    .await?;
    row.map(|row| {
        Ok(ActiveKey {
            kid: row.try_get("kid")?,
            private_key_sealed: row.try_get("private_key_sealed")?,
            retires_at: row.try_get("retired_at")?,
        })
    })
    .transpose()
}

/// A new key, published from `now` and signing from `signs_from`; every key still signing
/// (or due to) then retires at `signs_from`. One transaction.
pub async fn add_next(
    db: &Database,
    (kid, private_key_sealed, public_key): (&str, &str, &str),
    now: i64,
    signs_from: i64,
) -> anyhow::Result<()> {
    let mut tx = db.pool().begin().await?;
    sqlx::query(
        "UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL OR retired_at > $1",
    )
    .bind(signs_from)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO signing_keys (kid, private_key_sealed, public_key, created_at, signs_from) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(kid)
    .bind(private_key_sealed)
    .bind(public_key)
    .bind(now)
    .bind(signs_from)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Ids and public halves of every key not yet retired (one waiting to sign included) and of
/// those retired after `retired_after`, newest first.
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
