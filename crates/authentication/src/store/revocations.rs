//! Revoked access tokens and subjects, kept until the tokens they cover expire.

use platform::auth::{Revocation, RevocationKind};
use platform::db::Database;
use sqlx::Row;

pub fn kind_name(kind: RevocationKind) -> &'static str {
    match kind {
        RevocationKind::Token => "token",
        RevocationKind::Subject => "subject",
        RevocationKind::Session => "session",
    }
}

fn kind_from_name(name: &str) -> RevocationKind {
    match name {
        "token" => RevocationKind::Token,
        "session" => RevocationKind::Session,
        _ => RevocationKind::Subject,
    }
}

pub async fn insert(db: &Database, revocation: &Revocation) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO revocations (kind, value, issued_before, expires_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (kind, value) DO UPDATE SET issued_before = excluded.issued_before, \
         expires_at = excluded.expires_at",
    )
    .bind(kind_name(revocation.kind))
    .bind(&revocation.value)
    .bind(revocation.issued_before)
    .bind(revocation.expires_at)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Whether a token-kind revocation exists for `jti` (used for single-use MFA tokens).
pub async fn contains_token(db: &Database, jti: &str) -> anyhow::Result<bool> {
    Ok(
        sqlx::query("SELECT value FROM revocations WHERE kind = 'token' AND value = $1")
            .bind(jti)
            .fetch_optional(db.pool())
            .await?
            .is_some(),
    )
}

/// Revocations still in force; expired ones are deleted on the way.
pub async fn active(db: &Database, now: i64) -> anyhow::Result<Vec<Revocation>> {
    sqlx::query("DELETE FROM revocations WHERE expires_at < $1")
        .bind(now)
        .execute(db.pool())
        .await?;
    sqlx::query(
        "SELECT kind, value, issued_before, expires_at FROM revocations ORDER BY kind, value",
    )
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|row| {
        let kind: String = row.try_get("kind")?;
        Ok(Revocation {
            kind: kind_from_name(&kind),
            value: row.try_get("value")?,
            issued_before: row.try_get("issued_before")?,
            expires_at: row.try_get("expires_at")?,
        })
    })
    .collect()
}
