//! MFA recovery codes: ten single-use codes, stored as SHA-256.

use platform::db::Database;

use crate::crypto::{random_bytes, sha256_hex};

pub const COUNT: usize = 10;

/// A code like `k3x9-7qpd-m2vf`: 60 random bits in an alphabet without look-alikes.
fn new_code() -> String {
    const ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";
    let bytes = random_bytes::<12>();
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    format!(
        "{}-{}-{}",
        chars[0..4].iter().collect::<String>(),
        chars[4..8].iter().collect::<String>(),
        chars[8..12].iter().collect::<String>()
    )
}

fn normalize(code: &str) -> String {
    code.trim().to_lowercase()
}

/// Replaces the user's codes with ten new ones, returned once in plaintext.
pub async fn replace(db: &Database, user_id: &str) -> anyhow::Result<Vec<String>> {
    let codes: Vec<String> = (0..COUNT).map(|_| new_code()).collect();
    let mut tx = db.pool().begin().await?;
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    for code in &codes {
        sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
            .bind(user_id)
            .bind(sha256_hex(code))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(codes)
}

/// Uses a code; false if it is unknown or already used.
pub async fn consume(db: &Database, user_id: &str, code: &str, now: i64) -> anyhow::Result<bool> {
    Ok(sqlx::query(
        "UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
    )
    .bind(now)
    .bind(user_id)
    .bind(sha256_hex(&normalize(code)))
    .execute(db.pool())
    .await?
    .rows_affected()
        == 1)
}

pub async fn delete_all(db: &Database, user_id: &str) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(db.pool())
        .await?;
    Ok(())
}
