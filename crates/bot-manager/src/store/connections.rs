//! Connections to X in progress: the state's hash → the bot, who started it, the client and
//! redirect URI the code will be redeemed with. One per bot (a new one replaces the old);
//! taken once.

use platform::db::Database;
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct PendingConnection {
    pub state_hash: String,
    pub bot_id: String,
    pub requested_by: String,
    pub client_id: String,
    pub redirect_uri: String,
    /// The client authenticates with a secret (kept in Secure Bot Data meanwhile).
    pub confidential: bool,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Records a connection, replacing any the bot had, and forgets every expired one.
pub async fn start(db: &Database, pending: &PendingConnection) -> anyhow::Result<()> {
    let mut tx = db.pool().begin().await?;
    sqlx::query("DELETE FROM x_connections WHERE bot_id = $1 OR expires_at <= $2")
        .bind(&pending.bot_id)
        .bind(pending.created_at)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO x_connections (state_hash, bot_id, requested_by, client_id, redirect_uri, \
         confidential, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&pending.state_hash)
    .bind(&pending.bot_id)
    .bind(&pending.requested_by)
    .bind(&pending.client_id)
    .bind(&pending.redirect_uri)
    .bind(i64::from(pending.confidential))
    .bind(pending.created_at)
    .bind(pending.expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Takes the bot's connection with this state (it cannot be taken twice), expired or not:
/// the caller judges it.
pub async fn take(
    db: &Database,
    bot_id: &str,
    state_hash: &str,
) -> anyhow::Result<Option<PendingConnection>> {
    let row = sqlx::query(
        "DELETE FROM x_connections WHERE state_hash = $1 AND bot_id = $2 \
         RETURNING state_hash, bot_id, requested_by, client_id, redirect_uri, confidential, \
         created_at, expires_at",
    )
    .bind(state_hash)
    .bind(bot_id)
    .fetch_optional(db.pool())
    .await?;
    row.map(|row| {
        Ok(PendingConnection {
            state_hash: row.try_get("state_hash")?,
            bot_id: row.try_get("bot_id")?,
            requested_by: row.try_get("requested_by")?,
            client_id: row.try_get("client_id")?,
            redirect_uri: row.try_get("redirect_uri")?,
            confidential: row.try_get::<i64, _>("confidential")? != 0,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
        })
    })
    .transpose()
}
