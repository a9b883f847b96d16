//! Review policies: which teams and bots must have their posts approved, and whether a team
//! lets an author approve their own post.

use platform::db::Database;
use sqlx::Row;
use sqlx::any::AnyRow;

/// What a team or a bot has said about review.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyRow {
    pub approval_required: bool,
    /// `None`: as the setting says (always `None` for a bot).
    pub allow_self_approval: Option<bool>,
    pub updated_by: String,
    pub updated_at: i64,
}

/// Whose policy a row is.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    Team(&'a str),
    Bot(&'a str),
}

impl Scope<'_> {
    fn key(self) -> String {
        match self {
            Self::Team(team) => format!("team:{team}"),
            Self::Bot(bot_id) => format!("bot:{bot_id}"),
        }
    }
}

fn row_to_policy(row: &AnyRow) -> anyhow::Result<PolicyRow> {
    Ok(PolicyRow {
        approval_required: row.try_get::<i64, _>("approval_required")? != 0,
        allow_self_approval: row
            .try_get::<Option<i64>, _>("allow_self_approval")?
            .map(|v| v != 0),
        updated_by: row.try_get("updated_by")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const COLUMNS: &str = "scope, approval_required, allow_self_approval, updated_by, updated_at";

pub async fn get(db: &Database, scope: Scope<'_>) -> anyhow::Result<Option<PolicyRow>> {
    let sql = format!("SELECT {COLUMNS} FROM review_policies WHERE scope = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(scope.key())
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(row_to_policy)
        .transpose()
}

/// The rows of a bot's team and of the bot, in one query (it runs on every post that asks
/// to go out).
pub async fn of_bot(
    db: &Database,
    bot_id: &str,
    team: Option<&str>,
) -> anyhow::Result<(Option<PolicyRow>, Option<PolicyRow>)> {
    let team_key = team.map(|t| Scope::Team(t).key());
    let bot_key = Scope::Bot(bot_id).key();
    let sql = format!("SELECT {COLUMNS} FROM review_policies WHERE scope IN ($1, $2)");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(team_key.as_deref().unwrap_or(""))
        .bind(&bot_key)
        .fetch_all(db.pool())
        .await?;
    let (mut of_team, mut of_bot) = (None, None);
    for row in &rows {
        let scope: String = row.try_get("scope")?;
        if scope == bot_key {
            of_bot = Some(row_to_policy(row)?);
        } else {
            of_team = Some(row_to_policy(row)?);
        }
    }
    Ok((of_team, of_bot))
}

pub async fn put(db: &Database, scope: Scope<'_>, policy: &PolicyRow) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO review_policies (scope, approval_required, allow_self_approval, updated_by, \
         updated_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scope) DO UPDATE SET \
         approval_required = excluded.approval_required, \
         allow_self_approval = excluded.allow_self_approval, \
         updated_by = excluded.updated_by, updated_at = excluded.updated_at",
    )
    .bind(scope.key())
    .bind(i64::from(policy.approval_required))
    .bind(policy.allow_self_approval.map(i64::from))
    .bind(&policy.updated_by)
    .bind(policy.updated_at)
    .execute(db.pool())
    .await?;
    Ok(())
}

pub async fn delete(db: &Database, scope: Scope<'_>) -> anyhow::Result<bool> {
    let result = sqlx::query("DELETE FROM review_policies WHERE scope = $1")
        .bind(scope.key())
        .execute(db.pool())
        .await?;
    Ok(result.rows_affected() > 0)
}
