//! Login sessions and their refresh tokens. A refresh token is used once: the update that
//! spends it is conditional, so of two concurrent refreshes exactly one wins; presenting a
//! spent token again means it was stolen or replayed, and the whole session is revoked.

use platform::db::Database;
use serde::Serialize;
use sqlx::Row;

use crate::crypto::{random_token, sha256_hex};
use crate::rfc3339;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Session {
    pub id: String,
    #[serde(skip)]
    pub user_id: String,
    pub created_at: String,
    pub last_used_at: String,
    pub expires_at: String,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

fn row_to_session(row: &sqlx::any::AnyRow) -> anyhow::Result<Session> {
    Ok(Session {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        created_at: rfc3339(row.try_get("created_at")?),
        last_used_at: rfc3339(row.try_get("last_used_at")?),
        expires_at: rfc3339(row.try_get("expires_at")?),
        user_agent: row.try_get("user_agent")?,
        ip: row.try_get("ip")?,
    })
}

/// Starts a session; returns its id and its first refresh token.
pub async fn start(
    db: &Database,
    user_id: &str,
    absolute_timeout: i64,
    user_agent: Option<&str>,
    ip: Option<&str>,
    now: i64,
) -> anyhow::Result<(String, String)> {
    let id = uuid::Uuid::now_v7().to_string();
    let token = random_token();
    let mut tx = db.pool().begin().await?;
    sqlx::query(
        "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, user_agent, ip) \
         VALUES ($1, $2, $3, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(user_id)
    .bind(now)
    .bind(now + absolute_timeout)
    .bind(user_agent.map(|ua| ua.chars().take(256).collect::<String>()))
    .bind(ip)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES ($1, $2, $3)",
    )
    .bind(sha256_hex(&token))
    .bind(&id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((id, token))
}

#[derive(Debug, PartialEq, Eq)]
pub enum Refreshed {
    /// The new refresh token, for this session and user.
    Rotated {
        session_id: String,
        user_id: String,
        token: String,
    },
    /// Unknown token, or its session ended.
    Invalid,
    /// A spent token came back: the caller must revoke the session (and so every token it
    /// issued); the user is named for the activity log.
    Reused { session_id: String, user_id: String },
}

/// Spends `token` and hands out its successor.
pub async fn refresh(
    db: &Database,
    token: &str,
    idle_timeout: i64,
    now: i64,
) -> anyhow::Result<Refreshed> {
    let hash = sha256_hex(token);
    let row = sqlx::query(
        "SELECT r.session_id, r.spent_at, s.user_id, s.last_used_at, s.expires_at, s.revoked_at \
         FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE r.token_hash = $1",
    )
    .bind(&hash)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else {
        return Ok(Refreshed::Invalid);
    };
    let session_id: String = row.try_get("session_id")?;
    let user_id: String = row.try_get("user_id")?;
    let revoked_at: Option<i64> = row.try_get("revoked_at")?;
    let spent_at: Option<i64> = row.try_get("spent_at")?;
    if revoked_at.is_some() {
        return Ok(Refreshed::Invalid);
    }
    if spent_at.is_some() {
        return Ok(Refreshed::Reused {
            session_id,
            user_id,
        });
    }
    let last_used_at: i64 = row.try_get("last_used_at")?;
    let expires_at: i64 = row.try_get("expires_at")?;
    if now > expires_at || now > last_used_at + idle_timeout {
        revoke(db, &session_id, now).await?;
        return Ok(Refreshed::Invalid);
    }
    let mut tx = db.pool().begin().await?;
    let won = sqlx::query(
        "UPDATE refresh_tokens SET spent_at = $1 WHERE token_hash = $2 AND spent_at IS NULL",
    )
    .bind(now)
    .bind(&hash)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !won {
        // Another request spent it between our read and this update.
        tx.rollback().await?;
        return Ok(Refreshed::Reused {
            session_id,
            user_id,
        });
    }
    let next = random_token();
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES ($1, $2, $3)",
    )
    .bind(sha256_hex(&next))
    .bind(&session_id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE sessions SET last_used_at = $1 WHERE id = $2")
        .bind(now)
        .bind(&session_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Refreshed::Rotated {
        session_id,
        user_id,
        token: next,
    })
}

/// The session a refresh token belongs to, if it is live.
pub async fn session_of_token(db: &Database, token: &str) -> anyhow::Result<Option<Session>> {
    sqlx::query(
        "SELECT s.* FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id \
         WHERE r.token_hash = $1 AND s.revoked_at IS NULL",
    )
    .bind(sha256_hex(token))
    .fetch_optional(db.pool())
    .await?
    .as_ref()
    .map(row_to_session)
    .transpose()
}

pub async fn revoke(db: &Database, session_id: &str, now: i64) -> anyhow::Result<bool> {
    Ok(
        sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(session_id)
            .execute(db.pool())
            .await?
            .rows_affected()
            == 1,
    )
}

pub async fn revoke_all_of_user(db: &Database, user_id: &str, now: i64) -> anyhow::Result<u64> {
    Ok(
        sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .execute(db.pool())
        .await?
        .rows_affected(),
    )
}

/// The user's live sessions, newest first.
pub async fn list_live(db: &Database, user_id: &str, now: i64) -> anyhow::Result<Vec<Session>> {
    sqlx::query(
        "SELECT * FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
         ORDER BY created_at DESC",
    )
    .bind(user_id)
    .bind(now)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(row_to_session)
    .collect()
}

pub async fn get(db: &Database, session_id: &str) -> anyhow::Result<Option<Session>> {
    sqlx::query("SELECT * FROM sessions WHERE id = $1")
        .bind(session_id)
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(row_to_session)
        .transpose()
}
