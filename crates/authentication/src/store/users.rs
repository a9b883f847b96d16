//! Users and their role assignments. The password hash and the TOTP secret never leave this
//! module except in [`Credentials`], which is never serialized.

use platform::db::Database;
use serde::Serialize;
use sqlx::Row;

use crate::rfc3339;

/// A user as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    /// Teammates reach each other's bots.
    pub team: Option<String>,
    pub roles: Vec<String>,
    pub disabled: bool,
    pub must_change_password: bool,
    pub mfa_enabled: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// What login needs; deliberately not `Serialize`.
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
    pub totp_secret_sealed: Option<String>,
}

const COLUMNS: &str = "id, username, display_name, email, team, password_hash, must_change_password, \
     disabled, totp_secret_sealed, totp_enabled, totp_last_step, created_at, updated_at, password_changed_at";

async fn roles_of(db: &Database, user_id: &str) -> anyhow::Result<Vec<String>> {
    sqlx::query("SELECT role FROM user_roles WHERE user_id = $1 ORDER BY role")
        .bind(user_id)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|row| row.try_get::<String, _>("role").map_err(Into::into))
        .collect()
}

async fn from_row(db: &Database, row: &sqlx::any::AnyRow) -> anyhow::Result<Credentials> {
    let id: String = row.try_get("id")?;
    let roles = roles_of(db, &id).await?;
    Ok(Credentials {
        user: User {
            username: row.try_get("username")?,
            display_name: row.try_get("display_name")?,
            email: row.try_get("email")?,
            team: row.try_get("team")?,
            roles,
            disabled: row.try_get::<i64, _>("disabled")? != 0,
            must_change_password: row.try_get::<i64, _>("must_change_password")? != 0,
            mfa_enabled: row.try_get::<i64, _>("totp_enabled")? != 0,
            created_at: rfc3339(row.try_get("created_at")?),
            updated_at: rfc3339(row.try_get("updated_at")?),
            id,
        },
        password_hash: row.try_get("password_hash")?,
        totp_secret_sealed: row.try_get("totp_secret_sealed")?,
    })
}

pub async fn by_username(db: &Database, username: &str) -> anyhow::Result<Option<Credentials>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users WHERE username = $1"
    )))
    .bind(username)
    .fetch_optional(db.pool())
    .await?;
    match row {
        Some(row) => Ok(Some(from_row(db, &row).await?)),
        None => Ok(None),
    }
}

pub async fn by_id(db: &Database, id: &str) -> anyhow::Result<Option<Credentials>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(db.pool())
    .await?;
    match row {
        Some(row) => Ok(Some(from_row(db, &row).await?)),
        None => Ok(None),
    }
}

/// Users ordered by id (creation order), after `cursor`.
pub async fn list(db: &Database, limit: i64, cursor: Option<&str>) -> anyhow::Result<Vec<User>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users WHERE id > $1 ORDER BY id LIMIT $2"
    )))
    .bind(cursor.unwrap_or(""))
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    let mut users = Vec::with_capacity(rows.len());
    for row in &rows {
        users.push(from_row(db, row).await?.user);
    }
    Ok(users)
}

pub async fn count(db: &Database) -> anyhow::Result<i64> {
    Ok(sqlx::query("SELECT COUNT(*) AS n FROM users")
        .fetch_one(db.pool())
        .await?
        .try_get("n")?)
}

pub struct NewUser<'a> {
    pub username: &'a str,
    pub display_name: &'a str,
    pub email: Option<&'a str>,
    pub team: Option<&'a str>,
    pub password_hash: &'a str,
    pub roles: &'a [String],
    pub must_change_password: bool,
}

/// Creates a user; `Ok(None)` if the username is taken.
pub async fn create(db: &Database, new: NewUser<'_>, now: i64) -> anyhow::Result<Option<User>> {
    let id = uuid::Uuid::now_v7().to_string();
    let mut tx = db.pool().begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO users (id, username, display_name, email, password_hash, must_change_password, \
         created_at, updated_at, password_changed_at, team) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $7, $8)",
    )
    .bind(&id)
    .bind(new.username)
    .bind(new.display_name)
    .bind(new.email)
    .bind(new.password_hash)
    .bind(i64::from(new.must_change_password))
    .bind(now)
    .bind(new.team)
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {}
        Err(err) if super::is_unique_violation(&err) => return Ok(None),
        Err(err) => return Err(err.into()),
    }
    for role in new.roles {
        sqlx::query("INSERT INTO user_roles (user_id, role) VALUES ($1, $2)")
            .bind(&id)
            .bind(role)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(by_id(db, &id).await?.map(|c| c.user))
}

/// The fields an admin may change.
#[derive(Default)]
pub struct UserPatch {
    pub display_name: Option<String>,
    pub email: Option<Option<String>>,
    pub team: Option<Option<String>>,
    pub disabled: Option<bool>,
    pub roles: Option<Vec<String>>,
}

pub async fn update(db: &Database, id: &str, patch: UserPatch, now: i64) -> anyhow::Result<bool> {
    let mut tx = db.pool().begin().await?;
    let found = sqlx::query("UPDATE users SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if found == 0 {
        return Ok(false);
    }
    if let Some(display_name) = patch.display_name {
        sqlx::query("UPDATE users SET display_name = $1 WHERE id = $2")
            .bind(display_name)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(email) = patch.email {
        sqlx::query("UPDATE users SET email = $1 WHERE id = $2")
            .bind(email)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(team) = patch.team {
        sqlx::query("UPDATE users SET team = $1 WHERE id = $2")
            .bind(team)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(disabled) = patch.disabled {
        sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
            .bind(i64::from(disabled))
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(roles) = patch.roles {
        sqlx::query("DELETE FROM user_roles WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for role in roles {
            sqlx::query("INSERT INTO user_roles (user_id, role) VALUES ($1, $2)")
                .bind(id)
                .bind(role)
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(true)
}

pub async fn delete(db: &Database, id: &str) -> anyhow::Result<bool> {
    Ok(sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(db.pool())
        .await?
        .rows_affected()
        == 1)
}

pub async fn set_password(
    db: &Database,
    id: &str,
    hash: &str,
    must_change: bool,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE users SET password_hash = $1, must_change_password = $2, password_changed_at = $3, \
         updated_at = $3 WHERE id = $4",
    )
    .bind(hash)
    .bind(i64::from(must_change))
    .bind(now)
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Stores a fresh hash of the same password (parameters changed), keeping everything else.
pub async fn rehash(db: &Database, id: &str, hash: &str) -> anyhow::Result<()> {
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

pub async fn set_totp(
    db: &Database,
    id: &str,
    sealed: Option<&str>,
    enabled: bool,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE users SET totp_secret_sealed = $1, totp_enabled = $2, totp_last_step = 0, updated_at = $3 \
         WHERE id = $4",
    )
    .bind(sealed)
    .bind(i64::from(enabled))
    .bind(now)
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Records that TOTP step `step` was used; false if it (or a later one) already was, so a
/// code cannot be replayed, even by two requests at once.
pub async fn claim_totp_step(db: &Database, id: &str, step: i64) -> anyhow::Result<bool> {
    Ok(
        sqlx::query("UPDATE users SET totp_last_step = $1 WHERE id = $2 AND totp_last_step < $1")
            .bind(step)
            .bind(id)
            .execute(db.pool())
            .await?
            .rows_affected()
            == 1,
    )
}
