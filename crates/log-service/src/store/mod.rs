//! The events table: batched idempotent inserts, filtered keyset queries, deletes by filter
//! and retention. The SQL is shared by both backends except for text search and day
//! partitions, which only PostgreSQL has.

pub mod partitions;
pub mod space;
pub mod webhooks;

use platform::db::{Backend, Database, one_off_query, values_placeholders};
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::model::{Category, LogEvent};

const COLUMNS: &str = "id, ts, category, service, level, actor_id, actor_name, actor_service, \
     bot_id, team, action, request_id, message, data";
const COLUMN_COUNT: usize = 14;
/// Rows per INSERT statement, far below both backends' bind-parameter limits.
const ROWS_PER_STATEMENT: usize = 500;

/// Inserts events; an event already stored (same id, category and time) is skipped.
/// Returns how many were new.
pub async fn insert(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    events: &[LogEvent],
) -> anyhow::Result<u64> {
    match backend {
        Backend::Postgres => insert_as_json(conn, events).await,
        Backend::Sqlite => insert_rows(conn, events).await,
    }
}

/// PostgreSQL: the whole batch as one JSON parameter, unpacked by the server. Binding ten
/// parameters per row costs the client more than the insert costs PostgreSQL.
async fn insert_as_json(
    conn: &mut sqlx::AnyConnection,
    events: &[LogEvent],
) -> anyhow::Result<u64> {
    let rows: Vec<Value> = events
        .iter()
        .map(|e| {
            serde_json::json!({
                "id": e.id, "ts": e.ts, "category": e.category.as_str(), "service": e.service,
                "level": e.level, "actor_id": e.actor_id, "actor_name": e.actor_name,
                "actor_service": e.actor_service, "bot_id": e.bot_id, "team": e.team,
                "action": e.action, "request_id": e.request_id, "message": e.message,
                "data": e.data.to_string(),
            })
        })
        .collect();
    let sql = format!(
        "INSERT INTO events ({COLUMNS}) SELECT {COLUMNS} \
         FROM json_to_recordset($1::json) AS x(id TEXT, ts BIGINT, category TEXT, service TEXT, \
              level TEXT, actor_id TEXT, actor_name TEXT, actor_service TEXT, bot_id TEXT, \
              team TEXT, action TEXT, request_id TEXT, message TEXT, data TEXT) \
         ON CONFLICT DO NOTHING"
    );
    let inserted = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(Value::Array(rows).to_string())
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(inserted)
}

async fn insert_rows(conn: &mut sqlx::AnyConnection, events: &[LogEvent]) -> anyhow::Result<u64> {
    let mut inserted = 0;
    for chunk in events.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO events ({COLUMNS}) VALUES {} ON CONFLICT DO NOTHING",
            values_placeholders(chunk.len(), COLUMN_COUNT)
        );
        let mut query = one_off_query(sql);
        for event in chunk {
            query = query
                .bind(event.id.clone())
                .bind(event.ts)
                .bind(event.category.as_str())
                .bind(event.service.clone())
                .bind(event.level.clone())
                .bind(event.actor_id.clone())
                .bind(event.actor_name.clone())
                .bind(event.actor_service.clone())
                .bind(event.bot_id.clone())
                .bind(event.team.clone())
                .bind(event.action.clone())
                .bind(event.request_id.clone())
                .bind(event.message.clone())
                .bind(event.data.to_string());
        }
        inserted += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(inserted)
}

/// Which events a query, an export or a delete covers.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Unix milliseconds, inclusive.
    pub from: Option<i64>,
    /// Unix milliseconds, exclusive.
    pub to: Option<i64>,
    /// Never empty when it reaches the store: the caller's readable categories at most.
    pub categories: Vec<Category>,
    pub service: Option<String>,
    pub level: Option<String>,
    pub actor_id: Option<String>,
    pub bot_id: Option<String>,
    pub action: Option<String>,
    pub request_id: Option<String>,
    /// Words the message must contain.
    pub text: Option<String>,
    /// Set for everyone but admins: only their own events and their team's.
    pub scope: Option<TeamScope>,
}

/// What a Manager (or any non-admin) reads: events they acted in, and events of their team.
#[derive(Debug, Clone)]
pub struct TeamScope {
    pub actor_id: String,
    pub team: Option<String>,
}

/// A position in newest-first order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub ts: i64,
    pub id: String,
}

enum Arg {
    Int(i64),
    Text(String),
}

/// A WHERE clause with its numbered arguments.
struct Where {
    conditions: Vec<String>,
    args: Vec<Arg>,
}

impl Where {
    fn arg(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    fn eq(&mut self, column: &str, value: &Option<String>) {
        if let Some(value) = value {
            let p = self.arg(Arg::Text(value.clone()));
            self.conditions.push(format!("{column} = {p}"));
        }
    }

    fn build(backend: Backend, filter: &Filter, cursor: Option<&Cursor>) -> Self {
        let mut w = Where {
            conditions: Vec::new(),
            args: Vec::new(),
        };
        if let Some(from) = filter.from {
            let p = w.arg(Arg::Int(from));
            w.conditions.push(format!("ts >= {p}"));
        }
        if let Some(to) = filter.to {
            let p = w.arg(Arg::Int(to));
            w.conditions.push(format!("ts < {p}"));
        }
        let categories: Vec<String> = filter
            .categories
            .iter()
            .map(|c| w.arg(Arg::Text(c.as_str().to_string())))
            .collect();
        w.conditions
            .push(format!("category IN ({})", categories.join(", ")));
        w.eq("service", &filter.service);
        w.eq("level", &filter.level);
        w.eq("actor_id", &filter.actor_id);
        w.eq("bot_id", &filter.bot_id);
        w.eq("action", &filter.action);
        if let Some(scope) = &filter.scope {
            let me = w.arg(Arg::Text(scope.actor_id.clone()));
            let condition = match &scope.team {
                Some(team) => {
                    let team = w.arg(Arg::Text(team.clone()));
                    format!("(actor_id = {me} OR team = {team})")
                }
                None => format!("actor_id = {me}"),
            };
            w.conditions.push(condition);
        }
        w.eq("request_id", &filter.request_id);
        if let Some(text) = &filter.text {
            match backend {
                Backend::Postgres => {
                    let p = w.arg(Arg::Text(text.clone()));
                    w.conditions.push(format!(
                        "to_tsvector('simple', message) @@ plainto_tsquery('simple', {p})"
                    ));
                }
                Backend::Sqlite => {
                    // Every word, anywhere in the message, case-insensitively (ASCII).
                    for word in text.split_whitespace() {
                        let escaped = word
                            .replace('\\', "\\\\")
                            .replace('%', "\\%")
                            .replace('_', "\\_");
                        let p = w.arg(Arg::Text(format!("%{escaped}%")));
                        w.conditions.push(format!("message LIKE {p} ESCAPE '\\'"));
                    }
                }
            }
        }
        if let Some(cursor) = cursor {
            let ts = w.arg(Arg::Int(cursor.ts));
            let id = w.arg(Arg::Text(cursor.id.clone()));
            w.conditions
                .push(format!("(ts < {ts} OR (ts = {ts} AND id < {id}))"));
        }
        w
    }

    fn bind<'q>(
        self,
        mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        for arg in self.args {
            query = match arg {
                Arg::Int(v) => query.bind(v),
                Arg::Text(v) => query.bind(v),
            };
        }
        query
    }
}

fn from_row(row: &AnyRow) -> anyhow::Result<LogEvent> {
    let category: String = row.try_get("category")?;
    Ok(LogEvent {
        id: row.try_get("id")?,
        ts: row.try_get("ts")?,
        category: Category::parse(&category)
            .ok_or_else(|| anyhow::anyhow!("stored category {category:?}"))?,
        service: row.try_get("service")?,
        level: row.try_get("level")?,
        actor_id: row.try_get("actor_id")?,
        actor_name: row.try_get("actor_name")?,
        actor_service: row.try_get("actor_service")?,
        bot_id: row.try_get("bot_id")?,
        team: row.try_get("team")?,
        action: row.try_get("action")?,
        request_id: row.try_get("request_id")?,
        message: row.try_get("message")?,
        data: serde_json::from_str(&row.try_get::<String, _>("data")?).unwrap_or(Value::Null),
    })
}

/// Up to `limit` events newest first, after `cursor`.
pub async fn query(
    db: &Database,
    filter: &Filter,
    cursor: Option<&Cursor>,
    limit: i64,
) -> anyhow::Result<Vec<LogEvent>> {
    if db.backend() == Backend::Postgres
        && filter.text.is_some()
        && let Some(found) = query_text_in_newest(db, filter, cursor, limit).await?
    {
        return Ok(found);
    }
    let mut w = Where::build(db.backend(), filter, cursor);
    let limit_param = w.arg(Arg::Int(limit));
    let sql = format!(
        "SELECT {COLUMNS} FROM events WHERE {} ORDER BY ts DESC, id DESC LIMIT {limit_param}",
        w.conditions.join(" AND ")
    );
    let query = w.bind(sqlx::query(sqlx::AssertSqlSafe(sql)));
    query
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// Rows a text search first looks through, newest first, before it asks the full-text index.
const TEXT_PROBE_ROWS: i64 = 5000;

/// A text search for a common word: the full-text index would hand over every match in the
/// window to be sorted (a second for a word in one row of twenty), while the newest few
/// thousand rows already hold a page of matches. If they do, those are exactly the newest
/// matches; if not (a rare word), `None`, and the index answers instead.
async fn query_text_in_newest(
    db: &Database,
    filter: &Filter,
    cursor: Option<&Cursor>,
    limit: i64,
) -> anyhow::Result<Option<Vec<LogEvent>>> {
    let without_text = Filter {
        text: None,
        ..filter.clone()
    };
    let mut w = Where::build(db.backend(), &without_text, cursor);
    let probe = w.arg(Arg::Int(TEXT_PROBE_ROWS));
    let text = w.arg(Arg::Text(filter.text.clone().unwrap_or_default()));
    let limit_param = w.arg(Arg::Int(limit));
    let sql = format!(
        "SELECT {COLUMNS} FROM ( \
             SELECT {COLUMNS} FROM events WHERE {} ORDER BY ts DESC, id DESC LIMIT {probe} \
         ) newest \
         WHERE to_tsvector('simple', message) @@ plainto_tsquery('simple', {text}) \
         ORDER BY ts DESC, id DESC LIMIT {limit_param}",
        w.conditions.join(" AND ")
    );
    let rows = w
        .bind(sqlx::query(sqlx::AssertSqlSafe(sql)))
        .fetch_all(db.pool())
        .await?;
    if (rows.len() as i64) < limit {
        return Ok(None);
    }
    rows.iter()
        .map(from_row)
        .collect::<anyhow::Result<_>>()
        .map(Some)
}

/// Deletes every event the filter covers. Returns how many.
pub async fn delete(db: &Database, filter: &Filter) -> anyhow::Result<u64> {
    let w = Where::build(db.backend(), filter, None);
    let sql = format!("DELETE FROM events WHERE {}", w.conditions.join(" AND "));
    let query = w.bind(sqlx::query(sqlx::AssertSqlSafe(sql)));
    Ok(query.execute(db.pool()).await?.rows_affected())
}

/// Retention on SQLite: deletes a category's events older than `cutoff` (ms).
pub async fn delete_older(db: &Database, category: Category, cutoff: i64) -> anyhow::Result<u64> {
    let _turn = db.write_turn().await;
    Ok(
        sqlx::query("DELETE FROM events WHERE category = $1 AND ts < $2")
            .bind(category.as_str())
            .bind(cutoff)
            .execute(db.pool())
            .await?
            .rows_affected(),
    )
}
