//! The audit trail: one row per reveal, write, delete, denied attempt, seal and rotation. It
//! is also the outbox of the matching user_activity events.

use platform::db::{Database, one_off_query, values_placeholders};
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

/// One audited action. Never carries a value, only its HMAC.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// UUIDv7; also the id of the user_activity event.
    pub id: String,
    /// Unix milliseconds.
    pub at: i64,
    /// A user id or `client:<id>`.
    pub actor: String,
    /// `reveal`, `write`, `delete`, `undelete`, `destroy`, `seal`, `unseal`, `rotate`,
    /// `rewrap`, `retire`, `restore`, or the attempted action when denied.
    pub action: String,
    /// `ok` or `denied`.
    pub result: String,
    pub bot_id: Option<String>,
    pub field: Option<String>,
    pub version: Option<i64>,
    pub request_id: Option<String>,
    pub value_hmac: Option<String>,
    #[schema(value_type = Object)]
    pub details: Value,
}

impl AuditEntry {
    /// An entry for something that happens now, by `clock`.
    pub fn new(clock: &platform::Clock, actor: &str, action: &str, result: &str) -> Self {
        Self {
            id: clock.uuid_v7().to_string(),
            at: clock.now_millis(),
            actor: actor.to_string(),
            action: action.to_string(),
            result: result.to_string(),
            bot_id: None,
            field: None,
            version: None,
            request_id: platform::http::observe::current_request_id(),
            value_hmac: None,
            details: Value::Object(Default::default()),
        }
    }

    pub fn bot(mut self, bot_id: &str) -> Self {
        self.bot_id = Some(bot_id.to_string());
        self
    }

    pub fn field(mut self, field: &str, version: Option<i64>) -> Self {
        self.field = Some(field.to_string());
        self.version = version;
        self
    }

    pub fn hmac(mut self, hmac: String) -> Self {
        self.value_hmac = Some(hmac);
        self
    }

    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

const COLUMNS: &str =
    "id, at, actor, action, result, bot_id, field, version, request_id, value_hmac, details";
const COLUMN_COUNT: usize = 11;
/// Rows per INSERT statement: far below both backends' bind-parameter limits.
const ROWS_PER_STATEMENT: usize = 200;

/// Inserts entries in as few statements as possible, on the caller's connection (so inside
/// its transaction when it has one).
pub async fn insert(conn: &mut sqlx::AnyConnection, entries: &[AuditEntry]) -> anyhow::Result<()> {
    for chunk in entries.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO audit ({COLUMNS}) VALUES {}",
            values_placeholders(chunk.len(), COLUMN_COUNT)
        );
        let mut query = one_off_query(sql);
        for entry in chunk {
            query = query
                .bind(entry.id.clone())
                .bind(entry.at)
                .bind(entry.actor.clone())
                .bind(entry.action.clone())
                .bind(entry.result.clone())
                .bind(entry.bot_id.clone())
                .bind(entry.field.clone())
                .bind(entry.version)
                .bind(entry.request_id.clone())
                .bind(entry.value_hmac.clone())
                .bind(entry.details.to_string());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

fn from_row(row: &AnyRow) -> anyhow::Result<AuditEntry> {
    Ok(AuditEntry {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        result: row.try_get("result")?,
        bot_id: row.try_get("bot_id")?,
        field: row.try_get("field")?,
        version: row.try_get("version")?,
        request_id: row.try_get("request_id")?,
        value_hmac: row.try_get("value_hmac")?,
        details: serde_json::from_str(&row.try_get::<String, _>("details")?)?,
    })
}

/// Entries whose event is not on the queue yet, oldest first.
pub async fn unpublished(db: &Database, limit: i64) -> anyhow::Result<Vec<AuditEntry>> {
    let sql = format!("SELECT {COLUMNS} FROM audit WHERE published = 0 ORDER BY id LIMIT $1");
    entries(db, sqlx::query(sqlx::AssertSqlSafe(sql)).bind(limit)).await
}

/// Marks entries as published, one statement per `ROWS_PER_STATEMENT` ids.
pub async fn mark_published(db: &Database, ids: &[String]) -> anyhow::Result<()> {
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "UPDATE audit SET published = 1 WHERE id IN ({})",
            placeholders.join(", ")
        );
        // Its text changes with the number of ids: not kept in the statement cache.
        let mut query = one_off_query(sql);
        for id in chunk {
            query = query.bind(id.clone());
        }
        query.execute(db.pool()).await?;
    }
    Ok(())
}

/// Rows removed per statement, so a long backlog does not hold SQLite's one writer.
const TRIM_CHUNK: i64 = 5_000;

/// Removes published entries from before `cutoff` (ms), a chunk at a time; on SQLite the
/// freed pages go back to the file system. Returns how many went.
pub async fn remove_published_before(db: &Database, cutoff: i64) -> anyhow::Result<u64> {
    // Ids are UUIDv7, ordered by their time: the bound lets the primary key find the
    // oldest entries instead of scanning the table.
    let cutoff = cutoff.max(0);
    let before = format!(
        "{:08x}-{:04x}-0000-0000-000000000000",
        cutoff >> 16,
        cutoff & 0xffff
    );
    let mut removed = 0;
    loop {
        let n = sqlx::query(
            "DELETE FROM audit WHERE id IN (SELECT id FROM audit \
             WHERE id < $1 AND published = 1 AND at < $2 LIMIT $3)",
        )
        .bind(before.clone())
        .bind(cutoff)
        .bind(TRIM_CHUNK)
        .execute(db.pool())
        .await?
        .rows_affected();
        removed += n;
        if n < TRIM_CHUNK as u64 {
            break;
        }
    }
    if removed > 0 && db.backend() == platform::db::Backend::Sqlite {
        sqlx::query("PRAGMA incremental_vacuum")
            .execute(db.pool())
            .await?;
    }
    Ok(removed)
}

/// Entries newest first, optionally of one bot, before `cursor` (an entry id).
pub async fn list(
    db: &Database,
    bot_id: Option<&str>,
    limit: i64,
    cursor: Option<&str>,
) -> anyhow::Result<Vec<AuditEntry>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM audit WHERE ($1 = '' OR bot_id = $1) AND ($2 = '' OR id < $2) \
         ORDER BY id DESC LIMIT $3"
    );
    let query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(bot_id.unwrap_or(""))
        .bind(cursor.unwrap_or(""))
        .bind(limit);
    entries(db, query).await
}

async fn entries(
    db: &Database,
    query: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
) -> anyhow::Result<Vec<AuditEntry>> {
    query
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(from_row)
        .collect()
}
