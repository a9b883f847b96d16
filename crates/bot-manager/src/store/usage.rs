//! The usage meter: every billable use of X (a post created, a post deleted, a read of the
//! bot's own data), priced when it happened, and sums of it over time by bot, team, X app,
//! day or kind. SQL that both SQLite and PostgreSQL run.

use platform::auth::Reach;
use platform::db::Database;
use sqlx::Row;

/// One billable use, priced from the price table in force when it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// `post`, `post_with_url`, `delete`, `read` or `media_upload`.
    pub kind: &'static str,
    pub units: i64,
    /// Millionths of `currency`, for all `units` together.
    pub cost_micros: i64,
    pub currency: String,
}

/// Where a charge belongs.
pub struct Metered<'a> {
    /// Unique per use: the same id twice is stored once.
    pub id: &'a str,
    pub bot_id: &'a str,
    pub team: Option<&'a str>,
    /// The X app the use went through.
    pub app: &'a str,
    pub at: i64,
}

const INSERT: &str = "INSERT INTO usage_events (id, bot_id, team, kind, units, cost_micros, \
     currency, at, app) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING";

/// Records `charge`, inside the caller's transaction (the outcome it bills commits with it).
pub async fn insert(
    conn: &mut sqlx::AnyConnection,
    metered: &Metered<'_>,
    charge: &Charge,
) -> anyhow::Result<()> {
    sqlx::query(INSERT)
        .bind(metered.id)
        .bind(metered.bot_id)
        .bind(metered.team)
        .bind(charge.kind)
        .bind(charge.units)
        .bind(charge.cost_micros)
        .bind(&charge.currency)
        .bind(metered.at)
        .bind(metered.app)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records `charge` on its own (reads, which bill no state change).
pub async fn record(db: &Database, metered: &Metered<'_>, charge: &Charge) -> anyhow::Result<()> {
    let mut conn = db.pool().acquire().await?;
    insert(&mut conn, metered, charge).await
}

/// How sums are broken down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Bot,
    Team,
    /// The X app.
    App,
    /// UTC days, as the Unix day number.
    Day,
    Kind,
}

impl Group {
    fn expression(self) -> &'static str {
        match self {
            Group::Bot => "u.bot_id",
            Group::Team => "COALESCE(u.team, '')",
            Group::App => "u.app",
            Group::Day => "CAST(u.at / 86400000 AS TEXT)",
            Group::Kind => "u.kind",
        }
    }
}

/// One line of a breakdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageSum {
    pub key: String,
    pub kind: String,
    pub currency: String,
    pub units: i64,
    pub cost_micros: i64,
}

/// Sums of the uses in `[from, to)` of the bots `reach` covers (an optional `bot_id`,
/// `team` and `app` narrow it), by `group` and kind, in key order.
pub async fn sums(
    db: &Database,
    reach: Reach<'_>,
    (from, to): (i64, i64),
    (bot_id, team, app): (Option<&str>, Option<&str>, Option<&str>),
    group: Group,
) -> anyhow::Result<Vec<UsageSum>> {
    let (user, my_team) = match reach {
        Reach::All => (None, None),
        Reach::Member { user_id, team } => (Some(user_id), team),
    };
    let key = group.expression();
    let sql = format!(
        // PostgreSQL sums BIGINTs as NUMERIC: cast back.
        "SELECT {key} AS grouped, u.kind, u.currency, CAST(SUM(u.units) AS BIGINT) AS units, \
         CAST(SUM(u.cost_micros) AS BIGINT) AS cost_micros \
         FROM usage_events u JOIN bots b ON b.bot_id = u.bot_id \
         WHERE u.at >= $1 AND u.at < $2 \
         AND ($3 IS NULL OR b.owner_id = $3 OR (b.team IS NOT NULL AND b.team = $4)) \
         AND ($5 IS NULL OR u.bot_id = $5) AND ($6 IS NULL OR u.team = $6) \
         AND ($7 IS NULL OR u.app = $7) \
         GROUP BY {key}, u.kind, u.currency ORDER BY grouped, u.kind, u.currency"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(from)
        .bind(to)
        .bind(user)
        .bind(my_team)
        .bind(bot_id)
        .bind(team)
        .bind(app)
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|row| {
            Ok(UsageSum {
                key: row.try_get("grouped")?,
                kind: row.try_get("kind")?,
                currency: row.try_get("currency")?,
                units: row.try_get("units")?,
                cost_micros: row.try_get("cost_micros")?,
            })
        })
        .collect()
}
