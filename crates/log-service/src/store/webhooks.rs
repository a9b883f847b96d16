//! Webhook subscriptions, messages and deliveries. Deliveries are the outbox: written in
//! the transaction that stores the events they announce, claimed by a sender under a lease
//! (so replicas never send one twice at once), and kept as the delivery log until the
//! retention pass removes finished ones.

use platform::db::{Backend, Database, one_off_query, values_placeholders};
use sqlx::Row;
use sqlx::any::AnyRow;

/// Rows per INSERT statement, far below both backends' bind-parameter limits.
const ROWS_PER_STATEMENT: usize = 500;

#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: String,
    /// `None`: global (every team's events).
    pub team: Option<String>,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: String,
    pub secret_sealed: String,
    pub previous_secret_sealed: Option<String>,
    pub previous_valid_until: Option<i64>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const SUBSCRIPTION_COLUMNS: &str = "id, team, url, event_types, description, secret_sealed, \
     previous_secret_sealed, previous_valid_until, enabled, disabled_reason, created_by, \
     created_at, updated_at";

fn row_to_subscription(row: &AnyRow) -> anyhow::Result<Subscription> {
    let event_types: String = row.try_get("event_types")?;
    Ok(Subscription {
        id: row.try_get("id")?,
        team: row.try_get("team")?,
        url: row.try_get("url")?,
        event_types: serde_json::from_str(&event_types)?,
        description: row.try_get("description")?,
        secret_sealed: row.try_get("secret_sealed")?,
        previous_secret_sealed: row.try_get("previous_secret_sealed")?,
        previous_valid_until: row.try_get("previous_valid_until")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        disabled_reason: row.try_get("disabled_reason")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub async fn insert(db: &Database, s: &Subscription) -> anyhow::Result<()> {
    let sql = format!(
        "INSERT INTO webhook_subscriptions ({SUBSCRIPTION_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&s.id)
        .bind(&s.team)
        .bind(&s.url)
        .bind(serde_json::to_string(&s.event_types)?)
        .bind(&s.description)
        .bind(&s.secret_sealed)
        .bind(&s.previous_secret_sealed)
        .bind(s.previous_valid_until)
        .bind(i64::from(s.enabled))
        .bind(&s.disabled_reason)
        .bind(&s.created_by)
        .bind(s.created_at)
        .bind(s.updated_at)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Writes every changeable field of `s` back.
pub async fn update(db: &Database, s: &Subscription) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE webhook_subscriptions SET url = $2, event_types = $3, description = $4, \
         secret_sealed = $5, previous_secret_sealed = $6, previous_valid_until = $7, \
         enabled = $8, disabled_reason = $9, updated_at = $10 WHERE id = $1",
    )
    .bind(&s.id)
    .bind(&s.url)
    .bind(serde_json::to_string(&s.event_types)?)
    .bind(&s.description)
    .bind(&s.secret_sealed)
    .bind(&s.previous_secret_sealed)
    .bind(s.previous_valid_until)
    .bind(i64::from(s.enabled))
    .bind(&s.disabled_reason)
    .bind(s.updated_at)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn get(db: &Database, id: &str) -> anyhow::Result<Option<Subscription>> {
    let sql = format!("SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(row_to_subscription).transpose()
}

/// The rows of `select … WHERE id IN (…)` for `ids`, a statement per 500.
async fn rows_with_ids(db: &Database, select: &str, ids: &[String]) -> anyhow::Result<Vec<AnyRow>> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!("{select} WHERE id IN ({})", placeholders.join(", "));
        let mut query = one_off_query(sql);
        for id in chunk {
            query = query.bind(id.clone());
        }
        found.extend(query.fetch_all(db.pool()).await?);
    }
    Ok(found)
}

/// The subscriptions with these ids (those that still exist).
pub async fn by_ids(db: &Database, ids: &[String]) -> anyhow::Result<Vec<Subscription>> {
    let select = format!("SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions");
    rows_with_ids(db, &select, ids)
        .await?
        .iter()
        .map(row_to_subscription)
        .collect()
}

/// Every subscription (`None`), or one team's, oldest first.
pub async fn list(db: &Database, team: Option<&str>) -> anyhow::Result<Vec<Subscription>> {
    let sql = format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions \
         WHERE ($1 IS NULL OR team = $1) ORDER BY created_at, id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(team)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(row_to_subscription).collect()
}

/// How many subscriptions a team has (`None`: the global ones).
pub async fn count_for(db: &Database, team: Option<&str>) -> anyhow::Result<i64> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM webhook_subscriptions \
         WHERE (team = $1) OR ($1 IS NULL AND team IS NULL)",
    )
    .bind(team)
    .fetch_one(db.pool())
    .await?;
    Ok(row.try_get("n")?)
}

/// Removes a subscription and its delivery log.
pub async fn delete(db: &Database, id: &str) -> anyhow::Result<bool> {
    let mut tx = db.pool().begin().await?;
    sqlx::query("DELETE FROM webhook_deliveries WHERE subscription_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let done = sqlx::query("DELETE FROM webhook_subscriptions WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(done.rows_affected() > 0)
}

/// Turns a subscription off and pauses what it has in the outbox; whether this call did.
pub async fn disable(db: &Database, id: &str, reason: &str, now: i64) -> anyhow::Result<bool> {
    let mut tx = db.pool().begin().await?;
    let done = sqlx::query(
        "UPDATE webhook_subscriptions SET enabled = 0, disabled_reason = $2, updated_at = $3 \
         WHERE id = $1 AND enabled = 1",
    )
    .bind(id)
    .bind(reason)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE webhook_deliveries SET next_attempt_at = $2 \
         WHERE subscription_id = $1 AND state = 'pending'",
    )
    .bind(id)
    .bind(PAUSED)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected() > 0)
}

/// Makes a subscription's paused deliveries due now (it was turned on again).
pub async fn resume(db: &Database, id: &str, now: i64) -> anyhow::Result<u64> {
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET next_attempt_at = $3 \
         WHERE subscription_id = $1 AND state = 'pending' AND next_attempt_at = $2",
    )
    .bind(id)
    .bind(PAUSED)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected())
}

/// What the intake needs to route events: enabled subscriptions' ids, teams and types.
pub struct Route {
    pub id: String,
    pub team: Option<String>,
    pub event_types: Vec<String>,
}

pub async fn routes(conn: &mut sqlx::AnyConnection) -> anyhow::Result<Vec<Route>> {
    let rows =
        sqlx::query("SELECT id, team, event_types FROM webhook_subscriptions WHERE enabled = 1")
            .fetch_all(&mut *conn)
            .await?;
    rows.iter()
        .map(|row| {
            let types: String = row.try_get("event_types")?;
            Ok(Route {
                id: row.try_get("id")?,
                team: row.try_get("team")?,
                event_types: serde_json::from_str(&types)?,
            })
        })
        .collect()
}

/// A notification's body, stored once.
pub struct Message {
    pub id: String,
    pub event_type: String,
    pub payload: String,
    pub created_at: i64,
}

/// A message owed to a subscription.
pub struct NewDelivery {
    pub id: String,
    pub subscription_id: String,
    pub message_id: String,
    pub event_type: String,
}

/// Puts messages and their deliveries into the outbox; what is already there (the same
/// message for the same subscription) stays as it is. Returns how many deliveries are new.
pub async fn enqueue(
    conn: &mut sqlx::AnyConnection,
    messages: &[Message],
    deliveries: &[NewDelivery],
    now: i64,
) -> anyhow::Result<u64> {
    for chunk in messages.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO webhook_messages (id, event_type, payload, created_at) VALUES {} \
             ON CONFLICT DO NOTHING",
            values_placeholders(chunk.len(), 4)
        );
        let mut query = one_off_query(sql);
        for m in chunk {
            query = query
                .bind(m.id.clone())
                .bind(m.event_type.clone())
                .bind(m.payload.clone())
                .bind(m.created_at);
        }
        query.execute(&mut *conn).await?;
    }
    let mut new = 0;
    for chunk in deliveries.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO webhook_deliveries (id, subscription_id, message_id, event_type, state, \
             attempts, next_attempt_at, lease_until, created_at) VALUES {} ON CONFLICT DO NOTHING",
            values_placeholders(chunk.len(), 9)
        );
        let mut query = one_off_query(sql);
        for d in chunk {
            query = query
                .bind(d.id.clone())
                .bind(d.subscription_id.clone())
                .bind(d.message_id.clone())
                .bind(d.event_type.clone())
                .bind("pending")
                .bind(0_i64)
                .bind(now)
                .bind(0_i64)
                .bind(now);
        }
        new += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(new)
}

/// One message for one subscription, held until `lease_until` by whoever sends it now.
pub async fn enqueue_held(
    db: &Database,
    message: Message,
    delivery: NewDelivery,
    now: i64,
    lease_until: i64,
) -> anyhow::Result<()> {
    let mut tx = db.pool().begin().await?;
    let id = delivery.id.clone();
    enqueue(&mut tx, &[message], &[delivery], now).await?;
    sqlx::query("UPDATE webhook_deliveries SET lease_until = $2 WHERE id = $1")
        .bind(id)
        .bind(lease_until)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// A delivery a sender holds.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: String,
    pub subscription_id: String,
    pub message_id: String,
    pub attempts: i64,
    pub created_at: i64,
}

/// Where a delivery waits while its subscription is off: never due, until turned on again.
pub const PAUSED: i64 = i64::MAX;

/// Takes up to `limit` due deliveries until `lease_until`, oldest due first (deliveries of a
/// subscription that is off are [`PAUSED`], so one table and its due index answer). On
/// PostgreSQL the chosen rows are locked (`SKIP LOCKED`), so replicas racing for the outbox
/// take different rows, and the times are written into the statement: with them as
/// parameters a prepared statement's generic plan guesses a third of the outbox is due and
/// scans all of it (numbers we make, so nothing from outside reaches the SQL). SQLite has
/// one writer.
pub async fn claim_due(
    db: &Database,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> anyhow::Result<Vec<Claimed>> {
    let due = format!(
        "SELECT id FROM webhook_deliveries \
         WHERE state = 'pending' AND next_attempt_at <= {now} AND lease_until <= {now} \
         ORDER BY next_attempt_at LIMIT {limit}"
    );
    let picked = match db.backend() {
        Backend::Postgres => format!("id = ANY(ARRAY({due} FOR UPDATE SKIP LOCKED))"),
        Backend::Sqlite => format!("id IN ({due})"),
    };
    let sql = format!(
        "UPDATE webhook_deliveries SET lease_until = {lease_until} WHERE {picked} \
         RETURNING id, subscription_id, message_id, attempts, created_at"
    );
    // Not prepared: a new text each round would only fill the statement cache.
    let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Claimed {
                id: row.try_get("id")?,
                subscription_id: row.try_get("subscription_id")?,
                message_id: row.try_get("message_id")?,
                attempts: row.try_get("attempts")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect()
}

/// The stored bodies of `ids`.
pub async fn payloads(db: &Database, ids: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    rows_with_ids(db, "SELECT id, payload FROM webhook_messages", ids)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("id")?, row.try_get("payload")?)))
        .collect()
}

/// What one attempt came to.
pub struct Attempted {
    pub id: String,
    pub status: Option<i64>,
    pub error: Option<String>,
    pub at: i64,
    /// `Some(time)`: try again then; `None`: finished (delivered or given up).
    pub next_attempt_at: Option<i64>,
    pub delivered: bool,
}

/// Writes the attempts of one round and releases their leases: one statement per 500
/// (a round trip per delivery is what PostgreSQL would spend its time on).
pub async fn record_attempts(db: &Database, attempts: &[Attempted]) -> anyhow::Result<()> {
    const COLUMNS: usize = 7;
    for chunk in attempts.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "WITH attempt (id, state, next_attempt_at, last_status, last_error, at, finished_at) \
             AS (VALUES {}) \
             UPDATE webhook_deliveries SET state = attempt.state, \
               attempts = webhook_deliveries.attempts + 1, \
               next_attempt_at = COALESCE(attempt.next_attempt_at, webhook_deliveries.next_attempt_at), \
               lease_until = 0, last_status = attempt.last_status, last_error = attempt.last_error, \
               last_attempt_at = attempt.at, finished_at = attempt.finished_at \
             FROM attempt WHERE webhook_deliveries.id = attempt.id",
            values_placeholders(chunk.len(), COLUMNS)
        );
        let mut query = one_off_query(sql);
        for a in chunk {
            let (state, finished_at) = match (a.delivered, a.next_attempt_at) {
                (true, _) => ("delivered", Some(a.at)),
                (false, Some(_)) => ("pending", None),
                (false, None) => ("failed", Some(a.at)),
            };
            query = query
                .bind(a.id.clone())
                .bind(state)
                .bind(a.next_attempt_at)
                .bind(a.status)
                .bind(a.error.clone())
                .bind(a.at)
                .bind(finished_at);
        }
        query.execute(db.pool()).await?;
    }
    Ok(())
}

/// One line of a subscription's delivery log.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub message_id: String,
    pub event_type: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<i64>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

const DELIVERY_COLUMNS: &str = "id, message_id, event_type, state, attempts, next_attempt_at, \
     last_status, last_error, last_attempt_at, created_at, finished_at";

fn row_to_delivery(row: &AnyRow) -> anyhow::Result<Delivery> {
    Ok(Delivery {
        id: row.try_get("id")?,
        message_id: row.try_get("message_id")?,
        event_type: row.try_get("event_type")?,
        state: row.try_get("state")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_status: row.try_get("last_status")?,
        last_error: row.try_get("last_error")?,
        last_attempt_at: row.try_get("last_attempt_at")?,
        created_at: row.try_get("created_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

/// A page of a subscription's delivery log, newest first, after `(created_at, id)`.
pub async fn deliveries(
    db: &Database,
    subscription_id: &str,
    state: Option<&str>,
    after: Option<(i64, String)>,
    limit: i64,
) -> anyhow::Result<Vec<Delivery>> {
    let (after_at, after_id) = match after {
        Some((at, id)) => (Some(at), Some(id)),
        None => (None, None),
    };
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE subscription_id = $1 \
         AND ($2 IS NULL OR state = $2) \
         AND ($3 IS NULL OR created_at < $3 OR (created_at = $3 AND id < $4)) \
         ORDER BY created_at DESC, id DESC LIMIT $5"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(subscription_id)
        .bind(state)
        .bind(after_at)
        .bind(after_id)
        .bind(limit)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(row_to_delivery).collect()
}

pub async fn delivery(
    db: &Database,
    subscription_id: &str,
    id: &str,
) -> anyhow::Result<Option<Delivery>> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE subscription_id = $1 AND id = $2"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(subscription_id)
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(row_to_delivery).transpose()
}

/// Puts a delivery back in the outbox, due now, with a fresh count of attempts (the same
/// message id, so a receiver that had it can tell). False if it is not there or a sender
/// holds it right now.
pub async fn redeliver(
    db: &Database,
    subscription_id: &str,
    id: &str,
    now: i64,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_attempt_at = $3, \
         finished_at = NULL WHERE subscription_id = $1 AND id = $2 AND lease_until <= $3",
    )
    .bind(subscription_id)
    .bind(id)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Deliveries waiting in the outbox, and subscriptions turned off: for the gauges.
pub async fn health(db: &Database) -> anyhow::Result<(i64, i64)> {
    let pending: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM webhook_deliveries WHERE state = 'pending'")
            .fetch_one(db.pool())
            .await?
            .try_get("n")?;
    let disabled: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM webhook_subscriptions WHERE enabled = 0")
            .fetch_one(db.pool())
            .await?
            .try_get("n")?;
    Ok((pending, disabled))
}

/// Drops finished deliveries older than `before`, then messages no delivery needs any more.
pub async fn purge_finished(db: &Database, before: i64) -> anyhow::Result<u64> {
    let deliveries =
        sqlx::query("DELETE FROM webhook_deliveries WHERE state <> 'pending' AND finished_at < $1")
            .bind(before)
            .execute(db.pool())
            .await?
            .rows_affected();
    sqlx::query(
        "DELETE FROM webhook_messages WHERE created_at < $1 AND NOT EXISTS \
         (SELECT 1 FROM webhook_deliveries d WHERE d.message_id = webhook_messages.id)",
    )
    .bind(before)
    .execute(db.pool())
    .await?;
    Ok(deliveries)
}
