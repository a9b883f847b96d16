//! Writing settings: an update or a rollback becomes a new release — validated against what
//! every service it reaches declares, written with check-and-set (retried when a concurrent
//! writer won and the caller asked for no particular revision), announced and audited.

use std::collections::BTreeMap;

use platform::auth::Caller;
use platform::config::Profile;
use platform::config::central::GLOBAL_SCOPE;
use platform::http::error::{ApiError, ErrorCode};
use serde_json::Value;

use super::settings::scope_of;
use crate::model::{
    Diff, Snapshot, check_entry, check_scope, config_error_to_api, invalid_setting,
};
use crate::service::ConfigService;
use crate::store::{self, NewRelease, Release, WriteOutcome};

/// How often a write without `If-Match` starts again after a concurrent one won. Each round
/// has one winner, so this many writers at once all get through.
const WRITE_ATTEMPTS: usize = 16;

/// A change as asked: which scope, why, in which request, and the revision the caller saw.
/// Who made it is the caller.
pub struct Change {
    pub scope: String,
    pub profile: Profile,
    pub reason: String,
    pub request_id: Option<String>,
    /// `If-Match`: the scope's revision the caller saw.
    pub expected: Option<i64>,
}

/// A release just written.
pub struct Written {
    pub release: Release,
    /// Changed keys that running services apply only at their next start.
    pub restart_required: Vec<String>,
}

/// Merges `updates` (a `null` removes a key) into the scope as a new release.
pub async fn update(
    config: &ConfigService,
    caller: &Caller,
    change: &Change,
    updates: &BTreeMap<String, Value>,
) -> Result<Written, ApiError> {
    caller.require("config:write")?;
    named_scope(config, &change.scope)?;
    write(config, caller, change, "update", None, |current| {
        let mut next = current.clone();
        for (key, value) in updates {
            if value.is_null() {
                next.remove(key);
            } else {
                next.insert(key.clone(), value.clone());
            }
        }
        next
    })
    .await
}

/// Which snapshot a rollback restores: release `revision`'s, or with revision 0 none at all
/// (the defaults) for `scope`, which it then must name.
pub struct RollbackTarget {
    pub revision: i64,
    /// The scope and profile the caller named, if any.
    pub scope: Option<(String, Profile)>,
}

/// The scope, profile and snapshot a rollback restores.
async fn restored(
    config: &ConfigService,
    target: RollbackTarget,
) -> Result<(String, Profile, Snapshot), ApiError> {
    if target.revision == 0 {
        let Some((scope, profile)) = target.scope else {
            return Err(ApiError::invalid_data(
                "service: rolling back to revision 0 (the defaults) names the scope: a service, or global",
            )
            .with_field("field", "service"));
        };
        named_scope(config, &scope)?;
        return Ok((scope, profile, Snapshot::new()));
    }
    let revision = target.revision;
    let release = store::get(&config.db, revision)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::not_found(format!("no release {revision}")))?;
    let profile = Profile::parse(&release.profile).map_err(ApiError::internal)?;
    if let Some((scope, asked)) = &target.scope
        && (*scope != release.scope || *asked != profile)
    {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "release {revision} is of {} ({}), not {scope} ({})",
                release.scope,
                profile.as_str(),
                asked.as_str()
            ),
        ));
    }
    check_not_redacted(revision, &release.snapshot)?;
    Ok((release.scope, profile, release.snapshot))
}

/// A release with redacted values cannot come back as it was.
fn check_not_redacted(revision: i64, snapshot: &Snapshot) -> Result<(), ApiError> {
    let redacted: Vec<&str> = snapshot
        .iter()
        .filter(|(_, value)| value.as_str() == Some(store::REDACTED_VALUE))
        .map(|(key, _)| key.as_str())
        .collect();
    if redacted.is_empty() {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::Conflict,
        format!(
            "release {revision} had values redacted ({}), so it cannot be restored as it was; write those settings again with /update",
            redacted.join(", ")
        ),
    ))
}

/// A new release of a scope with the snapshot of an earlier one, or with none (the defaults).
pub async fn rollback(
    config: &ConfigService,
    caller: &Caller,
    target: RollbackTarget,
    reason: String,
    request_id: Option<String>,
    expected: Option<i64>,
) -> Result<Written, ApiError> {
    caller.require("config:write")?;
    let revision = target.revision;
    let (scope, profile, snapshot) = restored(config, target).await?;
    let change = Change {
        scope,
        profile,
        reason,
        request_id,
        expected,
    };
    write(
        config,
        caller,
        &change,
        "rollback",
        Some(revision),
        move |_| snapshot.clone(),
    )
    .await
}

async fn write(
    config: &ConfigService,
    caller: &Caller,
    change: &Change,
    kind: &str,
    rollback_of: Option<i64>,
    next: impl Fn(&Snapshot) -> Snapshot,
) -> Result<Written, ApiError> {
    check_reason(config, &change.reason)?;
    for _ in 0..WRITE_ATTEMPTS {
        let (current, based_on) = scope_of(config, &change.scope, change.profile).await?;
        if let Some(expected) = change.expected
            && expected != based_on
        {
            return Err(stale(&change.scope, expected, based_on));
        }
        let snapshot = next(&current);
        let diff = Diff::between(&current, &snapshot);
        // Setting what is already set changes nothing and makes no release.
        if diff.is_empty()
            && kind == "update"
            && let Some(release) = store::get(&config.db, based_on)
                .await
                .map_err(ApiError::from)?
        {
            return Ok(Written {
                release,
                restart_required: Vec::new(),
            });
        }
        let others = other_scopes(config, &change.scope, change.profile).await?;
        validate(
            config,
            &change.scope,
            change.profile,
            &snapshot,
            &diff,
            &others,
        )?;
        let release = NewRelease {
            scope: &change.scope,
            profile: change.profile.as_str(),
            kind,
            snapshot: &snapshot,
            diff: &diff,
            author: caller.display_name(),
            reason: &change.reason,
            request_id: change.request_id.as_deref(),
            rollback_of,
            created_at: config.clock.now_millis(),
        };
        let outcome = store::write(&config.db, &release, based_on)
            .await
            .map_err(ApiError::from)?;
        let revision = match outcome {
            WriteOutcome::Written(revision) => revision,
            WriteOutcome::Stale if change.expected.is_some() => {
                let (_, actual) = scope_of(config, &change.scope, change.profile).await?;
                return Err(stale(&change.scope, based_on, actual));
            }
            // Someone else wrote first: start again from what they wrote.
            WriteOutcome::Stale | WriteOutcome::Collided => continue,
        };
        return published(config, caller, revision, &diff).await;
    }
    Err(ApiError::new(
        ErrorCode::Conflict,
        "the scope kept changing while this change was written; try again",
    ))
}

/// A release just written, announced and audited, with the keys that apply at restart.
async fn published(
    config: &ConfigService,
    caller: &Caller,
    revision: i64,
    diff: &Diff,
) -> Result<Written, ApiError> {
    let release = store::get(&config.db, revision)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::internal("a written release vanished"))?;
    config.announce(&release).await;
    config.audit(caller, &release, diff).await;
    let restart_required = diff
        .keys()
        .into_iter()
        .filter(|key| !config.catalog.is_live(key))
        .collect();
    Ok(Written {
        release,
        restart_required,
    })
}

/// A scope a change names in its body: 400 (with the field) when there is no such service.
pub(crate) fn named_scope(config: &ConfigService, scope: &str) -> Result<(), ApiError> {
    if check_scope(&config.catalog, scope) {
        return Ok(());
    }
    Err(ApiError::invalid_data(format!(
        "service: no service {scope:?}; services: global, {}",
        config.catalog.services().collect::<Vec<_>>().join(", ")
    ))
    .with_field("field", "service"))
}

pub(crate) fn check_reason(config: &ConfigService, reason: &str) -> Result<(), ApiError> {
    let max = config.settings.get().max_reason_chars;
    if reason.chars().count() > max {
        return Err(
            ApiError::invalid_data(format!("reason: at most {max} characters"))
                .with_field("field", "reason"),
        );
    }
    Ok(())
}

/// The scopes a change of `scope` combines with: global for a service's own scope,
/// every service's own scope for global.
async fn other_scopes(
    config: &ConfigService,
    scope: &str,
    profile: Profile,
) -> Result<BTreeMap<String, Snapshot>, ApiError> {
    let names: Vec<String> = if scope == GLOBAL_SCOPE {
        config.catalog.services().map(str::to_string).collect()
    } else {
        vec![GLOBAL_SCOPE.to_string()]
    };
    let mut others = BTreeMap::new();
    for name in names {
        let (snapshot, _) = scope_of(config, &name, profile).await?;
        others.insert(name, snapshot);
    }
    Ok(others)
}

/// Every rule a new snapshot of `scope` must pass, checked for each service it reaches.
fn validate(
    config: &ConfigService,
    scope: &str,
    profile: Profile,
    snapshot: &Snapshot,
    diff: &Diff,
    others: &BTreeMap<String, Snapshot>,
) -> Result<(), ApiError> {
    let settings = config.settings.get();
    if snapshot.len() > settings.max_keys {
        let key = diff.keys().into_iter().next().unwrap_or_default();
        return Err(invalid_setting(
            &key,
            format!(
                "a scope holds at most {} settings; this change makes {}",
                settings.max_keys,
                snapshot.len()
            ),
        ));
    }
    for key in diff.added.keys().chain(diff.changed.keys()) {
        check_entry(&config.catalog, &settings, scope, key, &snapshot[key])?;
    }
    let empty = Snapshot::new();
    if scope == GLOBAL_SCOPE {
        // A change of global reaches every service, under each one's own settings.
        for service in config.catalog.services() {
            let mut effective = snapshot.clone();
            effective.extend(others.get(service).unwrap_or(&empty).clone());
            config
                .catalog
                .check_central(Some(service), profile, &effective)
                .map_err(config_error_to_api)?;
        }
        config
            .catalog
            .check_central(None, profile, snapshot)
            .map_err(config_error_to_api)?;
    } else {
        let mut effective = others.get(GLOBAL_SCOPE).unwrap_or(&empty).clone();
        effective.extend(snapshot.clone());
        config
            .catalog
            .check_central(Some(scope), profile, &effective)
            .map_err(config_error_to_api)?;
    }
    Ok(())
}

fn stale(scope: &str, expected: i64, actual: i64) -> ApiError {
    ApiError::new(
        ErrorCode::Conflict,
        format!(
            "scope {scope} is at revision {actual}, not {expected}: read it again and reapply your change"
        ),
    )
    .with_field("revision", actual)
}
