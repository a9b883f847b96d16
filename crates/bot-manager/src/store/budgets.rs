//! Monthly budgets per team, what a team spent in a month (from the usage meter), and the
//! notices given when a budget's thresholds were crossed.

use platform::db::Database;
use sqlx::Row;
use sqlx::any::AnyRow;

/// A team's monthly budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    pub team: String,
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

const COLUMNS: &str =
    "team, monthly_micros, currency, soft_percent, hard_stop, updated_by, updated_at";

fn row_to_budget(row: &AnyRow) -> anyhow::Result<Budget> {
    Ok(Budget {
        team: row.try_get("team")?,
        monthly_micros: row.try_get("monthly_micros")?,
        currency: row.try_get("currency")?,
        soft_percent: row.try_get("soft_percent")?,
        hard_stop: row.try_get::<i64, _>("hard_stop")? != 0,
        updated_by: row.try_get("updated_by")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub async fn get(db: &Database, team: &str) -> anyhow::Result<Option<Budget>> {
    let sql = format!("SELECT {COLUMNS} FROM budgets WHERE team = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(team)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(row_to_budget).transpose()
}

/// Every budget, or one team's (`Some`), in team order.
pub async fn list(db: &Database, team: Option<&str>) -> anyhow::Result<Vec<Budget>> {
    let sql =
        format!("SELECT {COLUMNS} FROM budgets WHERE ($1 IS NULL OR team = $1) ORDER BY team");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(team)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(row_to_budget).collect()
}

/// Sets a team's budget, replacing the one it had.
pub async fn put(db: &Database, budget: &Budget) -> anyhow::Result<()> {
    let sql = format!(
        "INSERT INTO budgets ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (team) DO UPDATE SET monthly_micros = $2, currency = $3, \
         soft_percent = $4, hard_stop = $5, updated_by = $6, updated_at = $7"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&budget.team)
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

/// Removes a team's budget; false if it had none.
pub async fn delete(db: &Database, team: &str) -> anyhow::Result<bool> {
    let done = sqlx::query("DELETE FROM budgets WHERE team = $1")
        .bind(team)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}

/// What `team` was billed in `currency` in `[from, to)`, in millionths.
pub async fn spent(
    db: &Database,
    team: &str,
    currency: &str,
    (from, to): (i64, i64),
) -> anyhow::Result<i64> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) AS spent FROM usage_events \
         WHERE team = $1 AND currency = $2 AND at >= $3 AND at < $4",
    )
    .bind(team)
    .bind(currency)
    .bind(from)
    .bind(to)
    .fetch_one(db.pool())
    .await?;
    Ok(row.try_get("spent")?)
}

/// Records that `team` was told `level` (`soft` or `exceeded`) for `month`; true only the
/// first time, so each crossing is announced once.
pub async fn notice_once(
    db: &Database,
    (team, month, level): (&str, &str, &str),
    at: i64,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO budget_notices (team, month, level, at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (team, month, level) DO NOTHING",
    )
    .bind(team)
    .bind(month)
    .bind(level)
    .bind(at)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}
