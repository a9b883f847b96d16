//! X apps (projects), for admins: every app a bot posts through with what it did this month
//! and in the last 24 hours (the local meter), its budget, and — for an app registered with
//! its app-only bearer token — X's own word on the project's cap (`GET /2/usage/tweets`),
//! read every `x_usage_interval_seconds` by one replica and on demand.

use platform::activity::Activity;
use platform::auth::{Caller, Reach};
use platform::config::Secret;
use platform::{ApiError, ErrorCode};
use serde_json::json;

use super::bots::parse_x_app;
use super::budgets::{BudgetState, month_of};
use crate::botdata::{BotDataError, fields};
use crate::service::{AppLabels, BotManager};
use crate::store::apps::{self, AppActivity, Reading, Registered};
use crate::store::budgets::Scope;
use crate::store::usage::{self, Group};
use crate::xapi::{ProjectUsage, XCallError};

/// An app as admins see it.
pub struct AppSummary {
    pub activity: AppActivity,
    /// X's limit on the app's posts per 24 hours (`bot_manager.x_limits`; 0: not checked).
    pub posts_24h_limit: i64,
    /// This month's posts (with and without URL) and their cost, in the pricing currency.
    pub month_posts: i64,
    pub month_cost_micros: i64,
    pub currency: String,
    pub budget: Option<BudgetState>,
    /// Present when registered for reading X's usage.
    pub registered: Option<Registered>,
}

/// Every app (named by a bot or registered), admins only.
pub async fn list(m: &BotManager, caller: &Caller) -> Result<Vec<AppSummary>, ApiError> {
    caller.require_admin("reading X apps")?;
    let now = m.clock.now_millis();
    let (_, month_start, _) = month_of(m.clock.now());
    let live = m.live.get();
    let sums = usage::sums(
        &m.db,
        Reach::All,
        (month_start, now + 1),
        (None, None, None),
        Group::App,
    )
    .await?;
    let budgets = super::budgets::list(m, caller).await?;
    let registered = apps::registered(&m.db).await?;
    let mut out = Vec::new();
    for activity in apps::activity(&m.db, now).await? {
        let of_app = sums.iter().filter(|s| s.key == activity.app);
        let month_posts = of_app
            .clone()
            .filter(|s| s.kind.starts_with("post"))
            .map(|s| s.units)
            .sum();
        let month_cost_micros = of_app
            .filter(|s| s.currency == live.pricing.currency)
            .map(|s| s.cost_micros)
            .sum();
        out.push(AppSummary {
            posts_24h_limit: live.x_limits.app_posts_per_24h,
            month_posts,
            month_cost_micros,
            currency: live.pricing.currency.clone(),
            budget: budgets
                .iter()
                .find(|b| b.budget.scope == Scope::App && b.budget.name == activity.app)
                .cloned(),
            registered: registered.iter().find(|r| r.app == activity.app).cloned(),
            activity,
        });
    }
    Ok(out)
}

/// Stores the app's app-only bearer token in Secure Bot Data (never here) and registers the
/// app for usage reading; a new token for a registered app replaces the old one.
pub async fn set_token(
    m: &BotManager,
    caller: &Caller,
    app: &str,
    token: Secret,
) -> Result<Registered, ApiError> {
    caller.require_admin("registering an X app")?;
    let app = parse_x_app(app)?;
    let Some(owner) = caller.user_id() else {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "an app's token is registered by a person",
        ));
    };
    let token = token.expose().trim();
    if token.is_empty() || token.len() > 8192 || token.chars().any(char::is_whitespace) {
        return Err(ApiError::invalid_data(
            "bearer_token: X's app-only bearer token, without spaces",
        ));
    }
    let vault_id = match apps::get(&m.db, &app).await? {
        Some(known) => known.vault_id,
        None => format!("xapp-{}", crate::model::new_id()),
    };
    let data = serde_json::Map::from_iter([(fields::APP_BEARER_TOKEN.to_string(), json!(token))]);
    m.botdata
        .store(&vault_id, (owner, None), &data, None)
        .await
        .map_err(unavailable)?;
    let now = m.clock.now_millis();
    apps::register(&m.db, (&app, &vault_id), caller.display_name(), now).await?;
    m.activity
        .record(
            Activity::by(caller, "x_app.registered")
                .subject(&app)
                .details(json!({"app": app, "vault_id": vault_id})),
        )
        .await;
    registered(m, &app).await
}

async fn registered(m: &BotManager, app: &str) -> Result<Registered, ApiError> {
    apps::get(&m.db, app)
        .await?
        .ok_or_else(|| ApiError::not_found("that app is not registered"))
}

fn unavailable(err: BotDataError) -> ApiError {
    tracing::warn!(error = %err, "Secure Bot Data unavailable for an app token");
    ApiError::new(
        ErrorCode::NotReady,
        "the credential store is unavailable; nothing was changed, try again",
    )
}

/// Stops reading the app's usage and deletes its token from Secure Bot Data.
pub async fn forget(m: &BotManager, caller: &Caller, app: &str) -> Result<(), ApiError> {
    caller.require_admin("unregistering an X app")?;
    let known = registered(m, app).await?;
    m.botdata
        .delete_field(&known.vault_id, fields::APP_BEARER_TOKEN)
        .await
        .map_err(unavailable)?;
    apps::unregister(&m.db, app).await?;
    let labels = AppLabels { app: app.into() };
    m.metrics.x_project_cap.remove(&labels);
    m.metrics.x_project_usage.remove(&labels);
    m.activity
        .record(
            Activity::by(caller, "x_app.unregistered")
                .subject(app)
                .details(json!({"app": app})),
        )
        .await;
    Ok(())
}

/// Asks X for the app's usage now (admins).
pub async fn refresh(m: &BotManager, caller: &Caller, app: &str) -> Result<Registered, ApiError> {
    caller.require_admin("reading an X app's usage")?;
    let known = registered(m, app).await?;
    read(m, &known).await?;
    registered(m, app).await
}

/// Reads each registered app whose reading is due (one replica per app and interval), then
/// shows every registered app's last reading in this replica's metrics.
pub async fn read_due(m: &BotManager, interval_ms: i64) -> anyhow::Result<()> {
    let now = m.clock.now_millis();
    for known in apps::registered(&m.db).await? {
        if apps::claim_read(&m.db, &known.app, now, interval_ms).await? {
            read(m, &known).await?;
        }
    }
    for known in apps::registered(&m.db).await? {
        show(m, &known);
    }
    Ok(())
}

fn show(m: &BotManager, known: &Registered) {
    if let Some(reading) = &known.reading {
        let labels = AppLabels {
            app: known.app.clone(),
        };
        m.metrics
            .x_project_cap
            .get_or_create(&labels)
            .set(reading.cap);
        m.metrics
            .x_project_usage
            .get_or_create(&labels)
            .set(reading.used);
    }
}

/// Asks X and records its answer (or why there is none).
async fn read(m: &BotManager, known: &Registered) -> anyhow::Result<()> {
    let answer = ask_x(m, known).await;
    let now = m.clock.now_millis();
    m.metrics
        .count("usage_read", if answer.is_ok() { "ok" } else { "failed" });
    match &answer {
        Ok(reading) => apps::save_reading(&m.db, &known.app, Ok(reading), now).await?,
        Err(why) => {
            tracing::warn!(app = %known.app, error = %why, "X's usage could not be read");
            apps::save_reading(&m.db, &known.app, Err(why), now).await?
        }
    }
    if let Some(fresh) = apps::get(&m.db, &known.app).await? {
        show(m, &fresh);
    }
    Ok(())
}

async fn ask_x(m: &BotManager, known: &Registered) -> Result<Reading, String> {
    let token = match m
        .botdata
        .reveal(&known.vault_id, fields::APP_BEARER_TOKEN)
        .await
    {
        Ok(Some(revealed)) => revealed.value,
        Ok(None) => return Err("the app's token is gone from Secure Bot Data".into()),
        Err(err) => return Err(format!("{err}")),
    };
    let answer = match m.x.project_usage(&token).await {
        Ok(answer) => answer,
        Err(XCallError::NotSent(why) | XCallError::NoAnswer(why)) => {
            return Err(format!("X did not answer: {why}"));
        }
        Err(err) => return Err(err.to_string()),
    };
    if answer.is_success() {
        return ProjectUsage::from_body(&answer.body)
            .map(|usage| Reading {
                project_id: usage.project_id,
                cap: usage.cap,
                used: usage.used,
                reset_day: usage.reset_day,
            })
            .ok_or_else(|| "X's answer had no project usage".to_string());
    }
    let problem = answer.problem();
    Err(match answer.status {
        401 => "X refused the app's token (401): register a new one".to_string(),
        429 => match answer.reset_of("usage.tweets") {
            Some(reset) => format!(
                "X's usage endpoint is rate limited until {}",
                platform::time_fmt::rfc3339_from_millis(reset * 1000)
            ),
            None => "X's usage endpoint is rate limited".to_string(),
        },
        status => format!("X answered {status}: {}", problem.detail),
    })
}
