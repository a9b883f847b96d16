//! Releases: one row per change, never updated except to redact a value that should never
//! have been written (the release stays; the value becomes [`REDACTED_VALUE`]). The same SQL
//! on SQLite and PostgreSQL.
//!
//! A release is written by one statement that takes the next revision and checks that its
//! scope is still at the revision the change was based on: two writers can never both win,
//! and revisions become visible in order (a concurrent writer collides on the primary key
//! and retries), which is what lets watchers wait for "anything after revision N".

use platform::db::{Database, is_unique_violation};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::model::{Diff, Snapshot};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Release {
    pub revision: i64,
    pub scope: String,
    pub profile: String,
    /// `update` or `rollback`.
    pub kind: String,
    #[schema(value_type = Object)]
    pub snapshot: Snapshot,
    #[schema(value_type = Object)]
    pub diff: serde_json::Value,
    pub author: String,
    pub reason: String,
    pub request_id: Option<String>,
    /// For a rollback: the release it copied.
    pub rollback_of: Option<i64>,
    /// When it was written (RFC 3339; Unix milliseconds inside).
    #[serde(serialize_with = "platform::time_fmt::millis_as_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

fn row_to_release(row: &AnyRow) -> anyhow::Result<Release> {
    Ok(Release {
        revision: row.try_get("revision")?,
        scope: row.try_get("scope")?,
        profile: row.try_get("profile")?,
        kind: row.try_get("kind")?,
        snapshot: serde_json::from_str(&row.try_get::<String, _>("snapshot")?)?,
        diff: serde_json::from_str(&row.try_get::<String, _>("diff")?)?,
        author: row.try_get("author")?,
        reason: row.try_get("reason")?,
        request_id: row.try_get("request_id")?,
        rollback_of: row.try_get("rollback_of")?,
        created_at: row.try_get("created_at")?,
    })
}

const COLUMNS: &str = "revision, scope, profile, kind, snapshot, diff, author, reason, request_id, rollback_of, created_at";

/// The newest release of a scope in a profile.
pub async fn latest(db: &Database, scope: &str, profile: &str) -> anyhow::Result<Option<Release>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM releases WHERE scope = $1 AND profile = $2 ORDER BY revision DESC LIMIT 1"
    )))
    .bind(scope)
    .bind(profile)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(row_to_release).transpose()
}

pub async fn get(db: &Database, revision: i64) -> anyhow::Result<Option<Release>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM releases WHERE revision = $1"
    )))
    .bind(revision)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(row_to_release).transpose()
}

/// History, newest first, optionally of one scope and profile, below `before`.
pub async fn history(
    db: &Database,
    scope: Option<&str>,
    profile: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> anyhow::Result<Vec<Release>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM releases
         WHERE ($1 IS NULL OR scope = $1) AND ($2 IS NULL OR profile = $2) AND revision < $3
         ORDER BY revision DESC LIMIT $4"
    )))
    .bind(scope)
    .bind(profile)
    .bind(before.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(row_to_release).collect()
}

/// Every scope with a release in `profile`, and its newest revision and key count.
pub async fn scopes(db: &Database, profile: &str) -> anyhow::Result<Vec<(String, i64)>> {
    let rows = sqlx::query(
        "SELECT scope, MAX(revision) AS revision FROM releases WHERE profile = $1 GROUP BY scope ORDER BY scope",
    )
    .bind(profile)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("scope")?, row.try_get("revision")?)))
        .collect()
}

/// The newest revision of any scope.
pub async fn head(db: &Database) -> anyhow::Result<i64> {
    let row = sqlx::query("SELECT COALESCE(MAX(revision), 0) AS head FROM releases")
        .fetch_one(db.pool())
        .await?;
    Ok(row.try_get("head")?)
}

/// A release to write.
pub struct NewRelease<'a> {
    pub scope: &'a str,
    pub profile: &'a str,
    pub kind: &'a str,
    pub snapshot: &'a Snapshot,
    pub diff: &'a Diff,
    pub author: &'a str,
    pub reason: &'a str,
    pub request_id: Option<&'a str>,
    pub rollback_of: Option<i64>,
    pub created_at: i64,
}

/// Why a release was not written.
pub enum WriteOutcome {
    Written(i64),
    /// The scope is no longer at the revision the change was based on.
    Stale,
    /// Another release took the revision at the same moment; read again and retry.
    Collided,
}

/// Writes the release if its scope is still at `based_on` (0: no release yet).
pub async fn write(
    db: &Database,
    release: &NewRelease<'_>,
    based_on: i64,
) -> anyhow::Result<WriteOutcome> {
    let result = sqlx::query(
        "INSERT INTO releases (revision, scope, profile, kind, snapshot, diff, author, reason, request_id, rollback_of, created_at)
         SELECT (SELECT COALESCE(MAX(revision), 0) + 1 FROM releases), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10
         WHERE (SELECT COALESCE(MAX(revision), 0) FROM releases WHERE scope = $1 AND profile = $2) = $11
         RETURNING revision",
    )
    .bind(release.scope)
    .bind(release.profile)
    .bind(release.kind)
    .bind(serde_json::to_string(release.snapshot)?)
    .bind(serde_json::to_string(release.diff)?)
    .bind(release.author)
    .bind(release.reason)
    .bind(release.request_id)
    .bind(release.rollback_of)
    .bind(release.created_at)
    .bind(based_on)
    .fetch_optional(db.pool())
    .await;
    match result {
        Ok(Some(row)) => Ok(WriteOutcome::Written(row.try_get("revision")?)),
        Ok(None) => Ok(WriteOutcome::Stale),
        Err(err) if is_unique_violation(&err) => Ok(WriteOutcome::Collided),
        Err(err) => Err(err.into()),
    }
}

/// What a redacted value reads as, in snapshots and diffs (as everywhere a secret is hidden).
pub use platform::config::REDACTED as REDACTED_VALUE;

/// Replaces every value of `key` in the releases of `scope` and `profile` up to `through`
/// (snapshots and diffs alike) with [`REDACTED_VALUE`], except `${secret:NAME}` references,
/// which are not secrets. One transaction; returns the revisions it changed.
pub async fn redact(
    db: &Database,
    scope: &str,
    profile: &str,
    key: &str,
    through: i64,
) -> anyhow::Result<Vec<i64>> {
    let mut tx = db.pool().begin().await?;
    let rows = sqlx::query(
        "SELECT revision, snapshot, diff FROM releases
         WHERE scope = $1 AND profile = $2 AND revision <= $3 ORDER BY revision",
    )
    .bind(scope)
    .bind(profile)
    .bind(through)
    .fetch_all(&mut *tx)
    .await?;
    let mut changed = Vec::new();
    for row in rows {
        let revision: i64 = row.try_get("revision")?;
        let mut snapshot: serde_json::Value =
            serde_json::from_str(&row.try_get::<String, _>("snapshot")?)?;
        let mut diff: serde_json::Value = serde_json::from_str(&row.try_get::<String, _>("diff")?)?;
        let mut touched = redact_entry(&mut snapshot, key);
        for part in ["added", "removed"] {
            touched |= redact_entry(&mut diff[part], key);
        }
        if let Some(change) = diff["changed"].get_mut(key) {
            touched |= redact_entry(change, "from");
            touched |= redact_entry(change, "to");
        }
        if touched {
            sqlx::query("UPDATE releases SET snapshot = $1, diff = $2 WHERE revision = $3")
                .bind(snapshot.to_string())
                .bind(diff.to_string())
                .bind(revision)
                .execute(&mut *tx)
                .await?;
            changed.push(revision);
        }
    }
    tx.commit().await?;
    Ok(changed)
}

/// Redacts `map[key]` unless it is absent, already redacted or a secret reference.
fn redact_entry(map: &mut serde_json::Value, key: &str) -> bool {
    match map.get_mut(key) {
        Some(value) if holds_plaintext(value) => {
            *value = serde_json::Value::from(REDACTED_VALUE);
            true
        }
        _ => false,
    }
}

/// Whether a stored value could be a secret in clear: anything but nothing, the redaction
/// marker, or a `${secret:NAME}` reference.
pub fn holds_plaintext(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Null => false,
        serde_json::Value::String(text) => {
            text != REDACTED_VALUE && !platform::config::is_secret_reference(text)
        }
        _ => true,
    }
}
