//! Roles and their permissions. Admin, Manager, Editor and Viewer are seeded and cannot be
//! deleted; admins add custom roles.

use platform::db::Database;
use serde::Serialize;
use sqlx::Row;

/// Every permission the system knows, as `resource:action`.
pub const PERMISSIONS: &[&str] = &[
    "users:admin",
    "roles:admin",
    "clients:admin",
    "bots:read",
    "bots:write",
    "posts:write",
    "posts:approve",
    "botdata:read",
    "botdata:write",
    "botdata:reveal",
    "botdata:delete",
    "botdata:destroy",
    "config:read",
    "config:write",
    "logs:read",
    "logs:read:debug",
    "logs:write",
    "logs:delete",
    "webhooks:manage",
];

/// The seeded role that holds every permission (the platform names it for every service).
pub const ADMIN: &str = platform::auth::ADMIN_ROLE;

/// The seeded roles.
pub fn builtin_roles() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    vec![
        (
            ADMIN,
            "Everything, including users, roles and clients",
            PERMISSIONS.to_vec(),
        ),
        (
            "Manager",
            "Runs bots and their secrets, approves posts, reads settings and activity, manages the \
             team's webhooks",
            vec![
                "bots:read",
                "bots:write",
                "posts:write",
                "posts:approve",
                "botdata:read",
                "botdata:write",
                "botdata:reveal",
                "botdata:delete",
                "config:read",
                "logs:read",
                "webhooks:manage",
            ],
        ),
        (
            "Editor",
            "Writes and schedules posts",
            vec![
                "bots:read",
                "bots:write",
                "posts:write",
                "botdata:read",
                "config:read",
            ],
        ),
        (
            "Viewer",
            "Reads bots and posts",
            vec!["bots:read", "botdata:read", "config:read"],
        ),
    ]
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Role {
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
    pub builtin: bool,
}

/// A permission string: lowercase `resource:action[:qualifier]`.
pub fn valid_permission(permission: &str) -> bool {
    let parts: Vec<&str> = permission.split(':').collect();
    parts.len() >= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
        })
}

/// A role name: 1–64 letters, digits, `_`, `-` or spaces.
pub fn valid_role_name(name: &str) -> bool {
    !name.trim().is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ' '))
}

fn row_to_role(row: &sqlx::any::AnyRow) -> anyhow::Result<Role> {
    let permissions: String = row.try_get("permissions")?;
    Ok(Role {
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        permissions: serde_json::from_str(&permissions)?,
        builtin: row.try_get::<i64, _>("builtin")? != 0,
    })
}

pub async fn seed(db: &Database, now: i64) -> anyhow::Result<()> {
    for (name, description, permissions) in builtin_roles() {
        let exists = sqlx::query("SELECT name FROM roles WHERE name = $1")
            .bind(name)
            .fetch_optional(db.pool())
            .await?
            .is_some();
        if exists {
            // Built-in roles follow the code, so new permissions reach them on upgrade.
            sqlx::query("UPDATE roles SET permissions = $1, description = $2 WHERE name = $3")
                .bind(serde_json::to_string(&permissions)?)
                .bind(description)
                .bind(name)
                .execute(db.pool())
                .await?;
        } else {
            sqlx::query(
                "INSERT INTO roles (name, description, permissions, builtin, created_at) \
                 VALUES ($1, $2, $3, 1, $4)",
            )
            .bind(name)
            .bind(description)
            .bind(serde_json::to_string(&permissions)?)
            .bind(now)
            .execute(db.pool())
            .await?;
        }
    }
    Ok(())
}

pub async fn list(db: &Database) -> anyhow::Result<Vec<Role>> {
    sqlx::query("SELECT name, description, permissions, builtin FROM roles ORDER BY name")
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(row_to_role)
        .collect()
}

pub async fn get(db: &Database, name: &str) -> anyhow::Result<Option<Role>> {
    sqlx::query("SELECT name, description, permissions, builtin FROM roles WHERE name = $1")
        .bind(name)
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(row_to_role)
        .transpose()
}

/// Inserts a custom role; `Ok(false)` if the name is taken.
pub async fn create(
    db: &Database,
    name: &str,
    description: &str,
    permissions: &[String],
    now: i64,
) -> anyhow::Result<bool> {
    let result = sqlx::query(
        "INSERT INTO roles (name, description, permissions, builtin, created_at) VALUES ($1, $2, $3, 0, $4)",
    )
    .bind(name)
    .bind(description)
    .bind(serde_json::to_string(permissions)?)
    .bind(now)
    .execute(db.pool())
    .await;
    match result {
        Ok(_) => Ok(true),
        Err(err) if super::is_unique_violation(&err) => Ok(false),
        Err(err) => Err(err.into()),
    }
}

/// Replaces a custom role's description and permissions; `Ok(false)` if there is no such
/// custom role.
pub async fn update(
    db: &Database,
    name: &str,
    description: &str,
    permissions: &[String],
) -> anyhow::Result<bool> {
    let updated = sqlx::query(
        "UPDATE roles SET description = $1, permissions = $2 WHERE name = $3 AND builtin = 0",
    )
    .bind(description)
    .bind(serde_json::to_string(permissions)?)
    .bind(name)
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(updated == 1)
}

pub async fn delete(db: &Database, name: &str) -> anyhow::Result<bool> {
    let deleted = sqlx::query("DELETE FROM roles WHERE name = $1 AND builtin = 0")
        .bind(name)
        .execute(db.pool())
        .await?
        .rows_affected();
    Ok(deleted == 1)
}

/// The users holding `role`.
pub async fn holders(db: &Database, role: &str) -> anyhow::Result<Vec<String>> {
    sqlx::query("SELECT user_id FROM user_roles WHERE role = $1")
        .bind(role)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|row| row.try_get::<String, _>("user_id").map_err(Into::into))
        .collect()
}

/// The union of the permissions of `roles`, sorted.
pub async fn permissions_of(db: &Database, roles: &[String]) -> anyhow::Result<Vec<String>> {
    let mut permissions = std::collections::BTreeSet::new();
    for role in roles {
        if let Some(role) = get(db, role).await? {
            permissions.extend(role.permissions);
        }
    }
    Ok(permissions.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The upgrade that gave posts their own permissions keeps every custom role and service
    /// client that could draft able to: `bots:write` gains `posts:write`, once.
    #[tokio::test]
    async fn the_post_permissions_migration_gives_drafters_posts_write() {
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        sqlx::raw_sql(
            "CREATE TABLE roles (name TEXT, permissions TEXT, builtin BIGINT); \
             CREATE TABLE service_clients (client_id TEXT, scopes TEXT); \
             INSERT INTO roles VALUES ('Publisher', '[\"bots:read\",\"bots:write\"]', 0); \
             INSERT INTO roles VALUES ('Reader', '[\"bots:read\"]', 0); \
             INSERT INTO roles VALUES ('Both', '[\"bots:write\",\"posts:write\"]', 0); \
             INSERT INTO roles VALUES ('Editor', '[\"bots:write\"]', 1); \
             INSERT INTO service_clients VALUES ('scheduler', '[\"bots:write\"]');",
        )
        .execute(&pool)
        .await
        .unwrap();
        sqlx::raw_sql(include_str!("../../migrations/0004_post_permissions.sql"))
            .execute(&pool)
            .await
            .unwrap();
        let pool = &pool;
        let of = |table: &'static str, key: &'static str, name: &'static str| async move {
            let sql = format!("SELECT * FROM {table} WHERE {key} = '{name}'");
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_one(pool)
                .await
                .unwrap();
            let column = if table == "roles" {
                "permissions"
            } else {
                "scopes"
            };
            let list: String = row.try_get(column).unwrap();
            serde_json::from_str::<Vec<String>>(&list).unwrap()
        };
        assert_eq!(
            of("roles", "name", "Publisher").await,
            ["bots:read", "bots:write", "posts:write"]
        );
        assert_eq!(of("roles", "name", "Reader").await, ["bots:read"]);
        assert_eq!(
            of("roles", "name", "Both").await,
            ["bots:write", "posts:write"]
        );
        // Built-in roles follow the code at start instead.
        assert_eq!(of("roles", "name", "Editor").await, ["bots:write"]);
        assert_eq!(
            of("service_clients", "client_id", "scheduler").await,
            ["bots:write", "posts:write"]
        );
    }

    #[test]
    fn permission_and_role_names_are_restricted() {
        assert!(valid_permission("logs:read:debug"));
        assert!(valid_permission("bots:write"));
        assert!(!valid_permission("bots"));
        assert!(!valid_permission("Bots:Write"));
        assert!(!valid_permission("bots::write"));
        assert!(valid_role_name("Night shift"));
        assert!(!valid_role_name(""));
        assert!(!valid_role_name("<script>"));
    }

    #[test]
    fn every_builtin_permission_is_valid_and_admin_has_all() {
        for permission in PERMISSIONS {
            assert!(valid_permission(permission), "{permission}");
        }
        let roles = builtin_roles();
        assert_eq!(roles[0].2.len(), PERMISSIONS.len());
        let viewer = roles.iter().find(|r| r.0 == "Viewer").unwrap();
        assert!(!viewer.2.contains(&"users:admin"));
    }
}
