//! Webhook subscriptions and their delivery logs. Managing them needs `webhooks:manage`;
//! a team's subscriptions belong to its members who hold it, global ones (told about every
//! team's events, and about the vault, which is nobody's team) to admins. A subscription
//! outside the caller's reach answers 404, as if it did not exist.

use platform::activity::Activity;
use platform::auth::{Caller, Reach};
use platform::{ApiError, ErrorCode};
use serde_json::json;

use crate::service::Logs;
use crate::store::webhooks::{
    self as store, Attempted, Delivery, Message, NewDelivery, Subscription,
};
use crate::webhooks::catalog;
use crate::webhooks::sender::{self, Outgoing};
use crate::webhooks::signing;
use crate::webhooks::targets::check_url;

pub const PERMISSION: &str = "webhooks:manage";

/// A new subscription as asked for.
pub struct NewSubscription {
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
    /// Admins: a team's, or global when `None`. Others: their own team (or `None`).
    pub team: Option<String>,
}

/// What may change.
pub struct Change {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

/// A subscription with the secret it was just given (shown once).
pub struct WithSecret {
    pub subscription: Subscription,
    pub secret: String,
}

fn require(caller: &Caller) -> Result<(), ApiError> {
    if caller.has(PERMISSION) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("webhooks need `{PERMISSION}`"),
        ))
    }
}

/// The team a new subscription belongs to, as the caller may have it.
fn team_for(caller: &Caller, asked: Option<String>) -> Result<Option<String>, ApiError> {
    if let Some(team) = &asked {
        platform::auth::check_team_name(team)?;
    }
    match caller.reach() {
        Reach::All => Ok(asked),
        Reach::Member { team: mine, .. } => match (mine, asked) {
            (None, _) => Err(ApiError::new(
                ErrorCode::Forbidden,
                "only admins create global webhooks; you are in no team",
            )),
            (Some(mine), None) => Ok(Some(mine.to_string())),
            (Some(mine), Some(asked)) if asked == mine => Ok(Some(asked)),
            (Some(_), Some(_)) => Err(ApiError::new(
                ErrorCode::Forbidden,
                "you create webhooks for your own team only",
            )),
        },
    }
}

fn check_event_types(types: &[String]) -> Result<(), ApiError> {
    if types.is_empty() {
        return Err(ApiError::invalid_data("event_types: name at least one"));
    }
    if let Some(unknown) = types.iter().find(|t| !catalog::is_known(t)) {
        let known: Vec<&str> = catalog::EVENT_TYPES.iter().map(|(n, _)| *n).collect();
        return Err(ApiError::invalid_data(format!(
            "event_types: {unknown:?} is not one of {}",
            known.join(", ")
        )));
    }
    Ok(())
}

fn check_description(description: &str) -> Result<(), ApiError> {
    if description.chars().count() > 500 {
        return Err(ApiError::invalid_data(
            "description is at most 500 characters",
        ));
    }
    Ok(())
}

fn normalized(mut types: Vec<String>) -> Vec<String> {
    types.sort();
    types.dedup();
    types
}

pub async fn create(
    logs: &Logs,
    caller: &Caller,
    new: NewSubscription,
) -> Result<WithSecret, ApiError> {
    require(caller)?;
    let team = team_for(caller, new.team)?;
    let url = check_url(&new.url, logs.settings.webhooks.allow_loopback)
        .map_err(ApiError::invalid_data)?;
    check_event_types(&new.event_types)?;
    let description = new.description.unwrap_or_default();
    check_description(&description)?;
    let limit = logs.settings.webhooks.max_subscriptions_per_team;
    if store::count_for(&logs.db, team.as_deref()).await? >= limit as i64 {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("at most {limit} webhooks per team; remove one first"),
        ));
    }
    let id = uuid::Uuid::now_v7().to_string();
    let secret = signing::new_secret();
    let now = logs.clock.now_millis();
    let subscription = Subscription {
        secret_sealed: logs.webhooks.seal_secret(&id, &secret),
        id,
        team,
        url: url.to_string(),
        event_types: normalized(new.event_types),
        description,
        previous_secret_sealed: None,
        previous_valid_until: None,
        enabled: true,
        disabled_reason: None,
        created_by: caller.id().to_string(),
        created_at: now,
        updated_at: now,
    };
    store::insert(&logs.db, &subscription).await?;
    record(logs, caller, "webhook.created", &subscription).await;
    Ok(WithSecret {
        subscription,
        secret,
    })
}

/// The subscriptions the caller manages: every one for admins, their team's for others.
pub async fn list(logs: &Logs, caller: &Caller) -> Result<Vec<Subscription>, ApiError> {
    require(caller)?;
    match caller.reach() {
        Reach::All => Ok(store::list(&logs.db, None).await?),
        Reach::Member {
            team: Some(team), ..
        } => Ok(store::list(&logs.db, Some(team)).await?),
        Reach::Member { team: None, .. } => Ok(Vec::new()),
    }
}

/// One subscription within the caller's reach, else 404.
pub async fn get(logs: &Logs, caller: &Caller, id: &str) -> Result<Subscription, ApiError> {
    require(caller)?;
    let found = store::get(&logs.db, id).await?;
    match found {
        Some(s) if reaches(caller, &s) => Ok(s),
        _ => Err(ApiError::new(ErrorCode::NotFound, "no such webhook")),
    }
}

fn reaches(caller: &Caller, subscription: &Subscription) -> bool {
    match caller.reach() {
        Reach::All => true,
        Reach::Member { team, .. } => team.is_some() && subscription.team.as_deref() == team,
    }
}

pub async fn update(
    logs: &Logs,
    caller: &Caller,
    id: &str,
    change: Change,
) -> Result<Subscription, ApiError> {
    let mut s = get(logs, caller, id).await?;
    if let Some(url) = change.url {
        s.url = check_url(&url, logs.settings.webhooks.allow_loopback)
            .map_err(ApiError::invalid_data)?
            .to_string();
    }
    if let Some(types) = change.event_types {
        check_event_types(&types)?;
        s.event_types = normalized(types);
    }
    if let Some(description) = change.description {
        check_description(&description)?;
        s.description = description;
    }
    let now = logs.clock.now_millis();
    s.updated_at = now;
    let turned_on = change.enabled == Some(true) && !s.enabled;
    let turned_off = change.enabled == Some(false) && s.enabled;
    if turned_on {
        s.enabled = true;
        s.disabled_reason = None;
    }
    store::update(&logs.db, &s).await?;
    if turned_off {
        let reason = format!("turned off by {}", caller.id());
        store::disable(&logs.db, &s.id, &reason, now).await?;
        s.enabled = false;
        s.disabled_reason = Some(reason);
    }
    if turned_on {
        // What waited while it was off goes now.
        store::resume(&logs.db, &s.id, now).await?;
        logs.webhooks.wake.notify_one();
    }
    record(logs, caller, "webhook.updated", &s).await;
    Ok(s)
}

pub async fn delete(logs: &Logs, caller: &Caller, id: &str) -> Result<(), ApiError> {
    let s = get(logs, caller, id).await?;
    store::delete(&logs.db, &s.id).await?;
    record(logs, caller, "webhook.deleted", &s).await;
    Ok(())
}

/// A new secret signs from now on; the one it replaces signs beside it for
/// `rotation_overlap_seconds`, so receivers can switch without missing a message. Rotating
/// again during an overlap ends the older one's at once.
pub async fn rotate_secret(logs: &Logs, caller: &Caller, id: &str) -> Result<WithSecret, ApiError> {
    let mut s = get(logs, caller, id).await?;
    let secret = signing::new_secret();
    let now = logs.clock.now_millis();
    s.previous_secret_sealed = Some(std::mem::replace(
        &mut s.secret_sealed,
        logs.webhooks.seal_secret(&s.id, &secret),
    ));
    s.previous_valid_until =
        Some(now + logs.settings.webhooks.rotation_overlap_seconds as i64 * 1000);
    s.updated_at = now;
    store::update(&logs.db, &s).await?;
    record(logs, caller, "webhook.secret_rotated", &s).await;
    Ok(WithSecret {
        subscription: s,
        secret,
    })
}

/// A page of the delivery log, newest first.
pub async fn deliveries(
    logs: &Logs,
    caller: &Caller,
    id: &str,
    state: Option<&str>,
    after: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<Delivery>, ApiError> {
    let s = get(logs, caller, id).await?;
    if let Some(state) = state
        && !["pending", "delivered", "failed"].contains(&state)
    {
        return Err(ApiError::invalid_data(
            "state: pending, delivered or failed",
        ));
    }
    Ok(store::deliveries(&logs.db, &s.id, state, after, limit).await?)
}

/// Sends a delivery again (same message id) as soon as the sender gets to it.
pub async fn redeliver(
    logs: &Logs,
    caller: &Caller,
    id: &str,
    delivery_id: &str,
) -> Result<Delivery, ApiError> {
    let s = get(logs, caller, id).await?;
    if !s.enabled {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the webhook is off: turn it on (PATCH enabled true) and what waited is sent",
        ));
    }
    let now = logs.clock.now_millis();
    if !store::redeliver(&logs.db, &s.id, delivery_id, now).await? {
        return match store::delivery(&logs.db, &s.id, delivery_id).await? {
            None => Err(ApiError::new(ErrorCode::NotFound, "no such delivery")),
            Some(_) => Err(ApiError::new(
                ErrorCode::Conflict,
                "the delivery is being sent right now; look again in a moment",
            )),
        };
    }
    logs.webhooks.wake.notify_one();
    record(logs, caller, "webhook.redelivered", &s).await;
    store::delivery(&logs.db, &s.id, delivery_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such delivery"))
}

/// Sends a `webhook.ping` now, once, and answers with what came of it; it stays in the
/// delivery log and is never retried (a failing ping does not turn the subscription off).
pub async fn ping(logs: &Logs, caller: &Caller, id: &str) -> Result<Delivery, ApiError> {
    let s = get(logs, caller, id).await?;
    let hooks = &logs.webhooks;
    let now = logs.clock.now_millis();
    let message_id = catalog::message_id(&uuid::Uuid::now_v7().to_string());
    let payload = json!({
        "type": catalog::PING,
        "timestamp": platform::time_fmt::rfc3339_from_millis(now),
        "data": {"subscription_id": s.id, "requested_by": caller.id()},
    })
    .to_string();
    let delivery_id = uuid::Uuid::now_v7().to_string();
    // Held by this call (as a sender holds what it claims) so the sender leaves it alone.
    store::enqueue_held(
        &logs.db,
        Message {
            id: message_id.clone(),
            event_type: catalog::PING.into(),
            payload: payload.clone(),
            created_at: now,
        },
        NewDelivery {
            id: delivery_id.clone(),
            subscription_id: s.id.clone(),
            message_id: message_id.clone(),
            event_type: catalog::PING.into(),
        },
        now,
        now + 2 * logs.settings.webhooks.timeout_ms as i64 + 30_000,
    )
    .await?;
    let secrets = hooks.signing_secrets(&s, now).map_err(|_| {
        ApiError::new(
            ErrorCode::NotReady,
            "the webhook's secret does not open with logging.webhooks.encryption_key",
        )
    })?;
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let answer = sender::send(
        &hooks.client,
        logs.settings.webhooks.allow_loopback,
        Outgoing {
            url: &s.url,
            message_id: &message_id,
            body: &payload,
            secrets: &secrets,
            timestamp: now / 1000,
        },
    )
    .await;
    hooks
        .metrics
        .attempt_seconds
        .observe(answer.took.as_secs_f64());
    store::record_attempts(
        &logs.db,
        &[Attempted {
            id: delivery_id.clone(),
            status: answer.status,
            error: answer.error,
            at: logs.clock.now_millis(),
            next_attempt_at: None,
            delivered: answer.delivered,
        }],
    )
    .await?;
    store::delivery(&logs.db, &s.id, &delivery_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such delivery"))
}

/// The activity record names the receiver's origin only: a webhook URL's path and query
/// often carry the receiver's own token (as chat services' incoming-webhook URLs do).
async fn record(logs: &Logs, caller: &Caller, action: &str, s: &Subscription) {
    let origin = url::Url::parse(&s.url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    logs.activity
        .record(
            Activity::by(caller, action)
                .team(s.team.as_deref())
                .subject(&s.id)
                .message(format!("{action} {} ({origin})", s.id))
                .details(json!({"origin": origin, "event_types": s.event_types,
                    "enabled": s.enabled})),
        )
        .await;
}
