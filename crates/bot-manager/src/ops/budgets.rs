//! Monthly budgets per team and per X app: set and removed by admins, a team's read by the
//! team (admins read all), checked before every send — a hard stop parks the send with the
//! reason — and after every billed use, so that crossing the soft threshold
//! (`usage.threshold`) or the whole budget (`budget.exceeded`) is announced once a month.

use platform::activity::Activity;
use platform::auth::Caller;
use platform::{ApiError, ErrorCode};
use serde_json::json;
use time::OffsetDateTime;

use crate::metering::money;
use crate::service::BotManager;
use crate::store::budgets::{self, Budget, Scope};
use crate::store::usage::Charge;

/// What an admin sets.
#[derive(Debug, Clone, Copy)]
pub struct BudgetChange {
    /// Millionths of the pricing currency per UTC month.
    pub monthly_micros: i64,
    /// 1–100; default 80.
    pub soft_percent: Option<i64>,
    /// Default false: tell, do not stop.
    pub hard_stop: Option<bool>,
}

/// A budget and where its team stands this month.
#[derive(Debug, Clone)]
pub struct BudgetState {
    pub budget: Budget,
    /// `YYYY-MM`, UTC.
    pub month: String,
    pub spent_micros: i64,
}

impl BudgetState {
    /// `ok`, `soft` (past the soft threshold) or `exceeded`.
    pub fn standing(&self) -> &'static str {
        standing(&self.budget, self.spent_micros)
    }
}

fn standing(budget: &Budget, spent: i64) -> &'static str {
    if spent >= budget.monthly_micros {
        "exceeded"
    } else if spent * 100 >= budget.monthly_micros * budget.soft_percent {
        "soft"
    } else {
        "ok"
    }
}

/// The UTC month `now` falls in: its name and `[start, next start)` in Unix milliseconds.
pub fn month_of(now: OffsetDateTime) -> (String, i64, i64) {
    let date = now.date();
    let start = date.replace_day(1).unwrap_or(date).midnight().assume_utc();
    let next = if date.month() == time::Month::December {
        start
            .replace_year(date.year() + 1)
            .map(|t| t.replace_month(time::Month::January))
    } else {
        Ok(start.replace_month(date.month().next()))
    };
    let next = next
        .and_then(|t| t)
        .unwrap_or(start + time::Duration::days(31));
    let millis = |t: OffsetDateTime| (t.unix_timestamp_nanos() / 1_000_000) as i64;
    (
        format!("{}-{:02}", date.year(), u8::from(date.month())),
        millis(start),
        millis(next),
    )
}

async fn state_of(m: &BotManager, budget: Budget) -> Result<BudgetState, ApiError> {
    let (month, from, to) = month_of(m.clock.now());
    let whose = (budget.scope, budget.name.as_str());
    let spent = budgets::spent(&m.db, whose, &budget.currency, (from, to)).await?;
    Ok(BudgetState {
        budget,
        month,
        spent_micros: spent,
    })
}

/// The name a budget is set for, checked: a team's name, or an X app's.
fn checked_name(scope: Scope, name: &str) -> Result<(), ApiError> {
    match scope {
        Scope::Team => platform::auth::check_team_name(name),
        Scope::App => super::bots::parse_x_app(name).map(drop),
    }
}

/// Sets a team's or an app's monthly budget (admins), in the pricing currency.
pub async fn put(
    m: &BotManager,
    caller: &Caller,
    (scope, name): (Scope, &str),
    change: BudgetChange,
) -> Result<BudgetState, ApiError> {
    caller.require_admin("setting a budget")?;
    checked_name(scope, name)?;
    let soft_percent = change.soft_percent.unwrap_or(80);
    if !(1..=100).contains(&soft_percent) {
        return Err(ApiError::invalid_data("soft_threshold_percent: 1 to 100"));
    }
    if !(0..=1_000_000_000_000_000).contains(&change.monthly_micros) {
        return Err(ApiError::invalid_data(
            "monthly_micros: 0 to 10^15 millionths of the currency",
        ));
    }
    let budget = Budget {
        scope,
        name: name.to_string(),
        monthly_micros: change.monthly_micros,
        currency: m.live.get().pricing.currency.clone(),
        soft_percent,
        hard_stop: change.hard_stop.unwrap_or(false),
        updated_by: caller.display_name().to_string(),
        updated_at: m.clock.now_millis(),
    };
    budgets::put(&m.db, &budget).await?;
    m.activity
        .record(
            Activity::by(caller, "budget.set")
                .team(team_of(&budget))
                .subject(name)
                .details(
                    json!({scope.as_str(): name, "monthly_micros": budget.monthly_micros,
                    "currency": budget.currency, "soft_percent": soft_percent,
                    "hard_stop": budget.hard_stop}),
                ),
        )
        .await;
    state_of(m, budget).await
}

/// The team a budget's events belong to: an app's belong to no team (admins see them).
fn team_of(budget: &Budget) -> Option<&str> {
    (budget.scope == Scope::Team).then_some(budget.name.as_str())
}

/// The budgets the caller may read: every team's and app's for admins, else their own
/// team's.
pub async fn list(m: &BotManager, caller: &Caller) -> Result<Vec<BudgetState>, ApiError> {
    caller.require("bots:read")?;
    let found = if caller.is_admin() || caller.is_service() {
        let mut all = budgets::list(&m.db, Scope::Team, None).await?;
        all.extend(budgets::list(&m.db, Scope::App, None).await?);
        all
    } else {
        match caller.team() {
            Some(team) => budgets::list(&m.db, Scope::Team, Some(team)).await?,
            None => Vec::new(),
        }
    };
    let mut states = Vec::with_capacity(found.len());
    for budget in found {
        states.push(state_of(m, budget).await?);
    }
    Ok(states)
}

/// Removes a team's or an app's budget (admins).
pub async fn delete(
    m: &BotManager,
    caller: &Caller,
    (scope, name): (Scope, &str),
) -> Result<(), ApiError> {
    caller.require_admin("removing a budget")?;
    if !budgets::delete(&m.db, scope, name).await? {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("that {} has no budget", scope.as_str()),
        ));
    }
    let team = (scope == Scope::Team).then_some(name);
    m.activity
        .record(
            Activity::by(caller, "budget.removed")
                .team(team)
                .subject(name)
                .details(json!({scope.as_str(): name})),
        )
        .await;
    Ok(())
}

/// Who a billed use counts against: its team (if any) and its app.
#[derive(Debug, Clone, Copy)]
pub struct Payers<'a> {
    pub team: Option<&'a str>,
    pub app: &'a str,
}

impl<'a> Payers<'a> {
    fn each(self) -> impl Iterator<Item = (Scope, &'a str)> {
        self.team
            .map(|team| (Scope::Team, team))
            .into_iter()
            .chain(std::iter::once((Scope::App, self.app)))
    }
}

/// Why a send that would cost `price` must wait, when its team's or its app's budget has a
/// hard stop and the send would take the month past it; announces `budget.exceeded` (once a
/// month).
pub async fn blocked(
    m: &BotManager,
    payers: Payers<'_>,
    price: &Charge,
) -> anyhow::Result<Option<String>> {
    for (scope, name) in payers.each() {
        let Some(budget) = budgets::get(&m.db, scope, name).await? else {
            continue;
        };
        if !budget.hard_stop || budget.currency != price.currency {
            continue;
        }
        let (month, from, to) = month_of(m.clock.now());
        let spent = budgets::spent(&m.db, (scope, name), &budget.currency, (from, to)).await?;
        if spent + price.cost_micros <= budget.monthly_micros {
            continue;
        }
        announce(m, &budget, (&month, "exceeded"), spent).await?;
        return Ok(Some(format!(
            "{} {name}'s budget for {month} ({} {}) would be exceeded: {} spent, this post \
             costs {}; it waits until the budget is raised or the month ends",
            scope.as_str(),
            money(budget.monthly_micros),
            budget.currency,
            money(spent),
            money(price.cost_micros)
        )));
    }
    Ok(None)
}

/// After a use was billed to its team and app: announces a crossing of the soft threshold or
/// of the whole budget, once a month each.
pub async fn after_billing(m: &BotManager, payers: Payers<'_>) -> anyhow::Result<()> {
    for (scope, name) in payers.each() {
        let Some(budget) = budgets::get(&m.db, scope, name).await? else {
            continue;
        };
        let (month, from, to) = month_of(m.clock.now());
        let spent = budgets::spent(&m.db, (scope, name), &budget.currency, (from, to)).await?;
        match standing(&budget, spent) {
            "exceeded" => announce(m, &budget, (&month, "exceeded"), spent).await?,
            "soft" => announce(m, &budget, (&month, "soft"), spent).await?,
            _ => {}
        }
    }
    Ok(())
}

async fn announce(
    m: &BotManager,
    budget: &Budget,
    (month, level): (&str, &str),
    spent: i64,
) -> anyhow::Result<()> {
    let now = m.clock.now_millis();
    let whose = (budget.scope, budget.name.as_str());
    if !budgets::notice_once(&m.db, whose, (month, level), now).await? {
        return Ok(());
    }
    m.metrics
        .budget_notices
        .get_or_create(&crate::service::LevelLabels {
            level: level.to_string(),
        })
        .inc();
    let (action, what) = match level {
        "exceeded" => ("budget.exceeded", "is spent".to_string()),
        _ => (
            "usage.threshold",
            format!("is {} % spent", budget.soft_percent),
        ),
    };
    let message = format!(
        "{} {}'s budget for {month} ({} {}) {what}: {} spent",
        budget.scope.as_str(),
        budget.name,
        money(budget.monthly_micros),
        budget.currency,
        money(spent)
    );
    m.activity
        .record(
            Activity::new(action)
                .by_service(crate::NAME)
                .team(team_of(budget))
                .subject(&budget.name)
                .message(message)
                .details(json!({budget.scope.as_str(): budget.name, "month": month,
                    "spent_micros": spent, "monthly_micros": budget.monthly_micros,
                    "currency": budget.currency, "hard_stop": budget.hard_stop})),
        )
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_runs_from_its_first_midnight_to_the_next_months() {
        let (name, from, to) = month_of(time::macros::datetime!(2031-12-14 09:30 UTC));
        assert_eq!(name, "2031-12");
        assert_eq!(from, 1_953_849_600_000); // 2031-12-01T00:00:00Z
        assert_eq!(to, 1_956_528_000_000); // 2032-01-01T00:00:00Z
        let (name, _, to) = month_of(time::macros::datetime!(2031-02-28 23:59 UTC));
        assert_eq!(name, "2031-02");
        assert_eq!(to, 1_930_089_600_000); // 2031-03-01T00:00:00Z
    }

    #[test]
    fn standing_is_ok_then_soft_then_exceeded() {
        let budget = Budget {
            scope: Scope::Team,
            name: "blue".into(),
            monthly_micros: 100_000,
            currency: "USD".into(),
            soft_percent: 80,
            hard_stop: true,
            updated_by: "admin".into(),
            updated_at: 0,
        };
        assert_eq!(standing(&budget, 79_999), "ok");
        assert_eq!(standing(&budget, 80_000), "soft");
        assert_eq!(standing(&budget, 100_000), "exceeded");
    }
}
