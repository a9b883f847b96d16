//! Monthly budgets per team and per X app, what one spent in a month (from the usage meter),
//! and the notices given when a budget's thresholds were crossed.

use platform::db::Database;
use sqlx::Row;
use sqlx::any::AnyRow;

/// Whose budget it is: a team's or an X app's. Each has its own tables; both meter from
/// `usage_events`, by its column of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Team,
    App,
}

impl Scope {
    /// `team` or `app`: the key column in its tables and in `usage_events`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Team => "team",
            Scope::App => "app",
        }
    }

    fn tables(self) -> (&'static str, &'static str) {
        match self {
            Scope::Team => ("budgets", "budget_notices"),
            Scope::App => ("app_budgets", "app_budget_notices"),
        }
    }
}

/// A team's or an app's monthly budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    pub scope: Scope,
    /// The team's or the app's name.
    pub name: String,
    /// Millionths of `currency`.
    pub monthly_micros: i64,
    pub currency: String,
    /// People are told when this share (1–100 %) is spent.
    pub soft_percent: i64,
    /// Sends stop when the budget is spent.
    pub hard_stop: bool,
    pub updated_by: String,
    pub updated_at: i64,
}

/// The columns after the key.
const COLUMNS: &str = "monthly_micros, currency, soft_percent, hard_stop, updated_by, updated_at";

fn row_to_budget(scope: Scope, row: &AnyRow) -> anyhow::Result<Budget> {
    Ok(Budget {
        scope,
        name: row.try_get(scope.as_str())?,
        monthly_micros: row.try_get("monthly_micros")?,
        currency: row.try_get("currency")?,
        soft_percent: row.try_get("soft_percent")?,
        hard_stop: row.try_get::<i64, _>("hard_stop")? != 0,
        updated_by: row.try_get("updated_by")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub async fn get(db: &Database, scope: Scope, name: &str) -> anyhow::Result<Option<Budget>> {
    let ((table, _), key) = (scope.tables(), scope.as_str());
    let sql = format!("SELECT {key}, {COLUMNS} FROM {table} WHERE {key} = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(name)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref()
        .map(|row| row_to_budget(scope, row))
        .transpose()
}

/// Every budget of a scope, or one (`Some`), in name order.
pub async fn list(db: &Database, scope: Scope, name: Option<&str>) -> anyhow::Result<Vec<Budget>> {
    let ((table, _), key) = (scope.tables(), scope.as_str());
    let sql = format!(
        "SELECT {key}, {COLUMNS} FROM {table} WHERE ($1 IS NULL OR {key} = $1) ORDER BY {key}"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(name)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(|row| row_to_budget(scope, row)).collect()
}

/// Sets a budget, replacing the one its team or app had.
pub async fn put(db: &Database, budget: &Budget) -> anyhow::Result<()> {
    let ((table, _), key) = (budget.scope.tables(), budget.scope.as_str());
    let sql = format!(
        "INSERT INTO {table} ({key}, {COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT ({key}) DO UPDATE SET monthly_micros = $2, currency = $3, \
         soft_percent = $4, hard_stop = $5, updated_by = $6, updated_at = $7"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&budget.name)
        .bind(budget.monthly_micros)
        .bind(&budget.currency)
        .bind(budget.soft_percent)
        .bind(i64::from(budget.hard_stop))
        .bind(&budget.updated_by)
        .bind(budget.updated_at)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Removes a team's or an app's budget; false if it had none.
pub async fn delete(db: &Database, scope: Scope, name: &str) -> anyhow::Result<bool> {
    let ((table, _), key) = (scope.tables(), scope.as_str());
    let sql = format!("DELETE FROM {table} WHERE {key} = $1");
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(name)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}

/// What a team or an app was billed in `currency` in `[from, to)`, in millionths.
pub async fn spent(
    db: &Database,
    (scope, name): (Scope, &str),
    currency: &str,
    (from, to): (i64, i64),
) -> anyhow::Result<i64> {
    let key = scope.as_str();
    let sql = format!(
        "SELECT CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) AS spent FROM usage_events \
         WHERE {key} = $1 AND currency = $2 AND at >= $3 AND at < $4"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(name)
        .bind(currency)
        .bind(from)
        .bind(to)
        .fetch_one(db.pool())
        .await?;
    Ok(row.try_get("spent")?)
}

/// Records that a team or an app was told `level` (`soft` or `exceeded`) for `month`; true
/// only the first time, so each crossing is announced once.
pub async fn notice_once(
    db: &Database,
    (scope, name): (Scope, &str),
    (month, level): (&str, &str),
    at: i64,
) -> anyhow::Result<bool> {
    let ((_, notices), key) = (scope.tables(), scope.as_str());
    let sql = format!(
        "INSERT INTO {notices} ({key}, month, level, at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT ({key}, month, level) DO NOTHING"
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(name)
        .bind(month)
        .bind(level)
        .bind(at)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() == 1)
}
