//! OAuth 2.0 service clients (client_credentials). Secrets are 256 random bits, so a plain
//! SHA-256 is enough to store them: there is nothing to brute-force.

use platform::db::Database;
use serde::Serialize;
use sqlx::Row;

use crate::crypto::{constant_time_eq, random_token, sha256_hex};
use crate::rfc3339;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ServiceClient {
    pub client_id: String,
    /// Services this client may get tokens for (`bot-manager`, `logging`, …).
    pub audiences: Vec<String>,
    /// Permissions its tokens may carry.
    pub scopes: Vec<String>,
    pub description: String,
    pub created_at: String,
}

fn row_to_client(row: &sqlx::any::AnyRow) -> anyhow::Result<ServiceClient> {
    Ok(ServiceClient {
        client_id: row.try_get("client_id")?,
        audiences: serde_json::from_str(&row.try_get::<String, _>("audiences")?)?,
        scopes: serde_json::from_str(&row.try_get::<String, _>("scopes")?)?,
        description: row.try_get("description")?,
        created_at: rfc3339(row.try_get("created_at")?),
    })
}

/// Registers a client; returns it and its secret (shown once), or `None` if the id is taken.
pub async fn create(
    db: &Database,
    client_id: &str,
    audiences: &[String],
    scopes: &[String],
    description: &str,
    now: i64,
) -> anyhow::Result<Option<(ServiceClient, String)>> {
    let secret = random_token();
    let result = sqlx::query(
        "INSERT INTO service_clients (client_id, secret_hash, audiences, scopes, description, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(client_id)
    .bind(sha256_hex(&secret))
    .bind(serde_json::to_string(audiences)?)
    .bind(serde_json::to_string(scopes)?)
    .bind(description)
    .bind(now)
    .execute(db.pool())
    .await;
    match result {
        Ok(_) => Ok(get(db, client_id).await?.map(|client| (client, secret))),
        Err(err) if super::is_unique_violation(&err) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

pub async fn get(db: &Database, client_id: &str) -> anyhow::Result<Option<ServiceClient>> {
    sqlx::query("SELECT * FROM service_clients WHERE client_id = $1")
        .bind(client_id)
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(row_to_client)
        .transpose()
}

pub async fn list(db: &Database) -> anyhow::Result<Vec<ServiceClient>> {
    sqlx::query("SELECT * FROM service_clients ORDER BY client_id")
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(row_to_client)
        .collect()
}

pub async fn delete(db: &Database, client_id: &str) -> anyhow::Result<bool> {
    Ok(
        sqlx::query("DELETE FROM service_clients WHERE client_id = $1")
            .bind(client_id)
            .execute(db.pool())
            .await?
            .rows_affected()
            == 1,
    )
}

/// The client, if `secret` is its secret.
pub async fn authenticate(
    db: &Database,
    client_id: &str,
    secret: &str,
) -> anyhow::Result<Option<ServiceClient>> {
    let row = sqlx::query("SELECT * FROM service_clients WHERE client_id = $1")
        .bind(client_id)
        .fetch_optional(db.pool())
        .await?;
    let Some(row) = row else { return Ok(None) };
    let stored: String = row.try_get("secret_hash")?;
    if constant_time_eq(stored.as_bytes(), sha256_hex(secret).as_bytes()) {
        Ok(Some(row_to_client(&row)?))
    } else {
        Ok(None)
    }
}

/// Registers a client the configuration declares, or brings an existing one in line with
/// it (secret, audiences, scopes): the config and the mounted secret are the truth for it.
pub async fn upsert_declared(
    db: &Database,
    client_id: &str,
    secret: &str,
    audiences: &[String],
    scopes: &[String],
    description: &str,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO service_clients (client_id, secret_hash, audiences, scopes, description, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (client_id) DO UPDATE SET secret_hash = excluded.secret_hash, \
         audiences = excluded.audiences, scopes = excluded.scopes, description = excluded.description",
    )
    .bind(client_id)
    .bind(sha256_hex(secret))
    .bind(serde_json::to_string(audiences)?)
    .bind(serde_json::to_string(scopes)?)
    .bind(description)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(())
}
