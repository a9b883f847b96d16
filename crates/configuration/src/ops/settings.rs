//! Reading settings: one scope's own, what a service runs with (global, then its own),
//! every scope's revision, the catalogue of declared settings, and waiting for a change.

use std::sync::Arc;
use std::time::Duration;

use platform::auth::Caller;
use platform::config::central::{CentralSnapshot, GLOBAL_SCOPE};
use platform::config::{Catalog, Profile};
use platform::http::error::ApiError;

use crate::model::Snapshot;
use crate::service::ConfigService;
use crate::store;

/// One scope's own settings (not merged with global) and the revision it is at.
pub async fn scope(
    config: &ConfigService,
    caller: &Caller,
    scope: &str,
    profile: Profile,
) -> Result<(Snapshot, i64), ApiError> {
    caller.require("config:read")?;
    scope_of(config, scope, profile).await
}

/// The effective central settings of `service`, and its own scope's revision (for
/// check-and-set).
pub async fn effective(
    config: &ConfigService,
    caller: &Caller,
    service: &str,
    profile: Profile,
) -> Result<(CentralSnapshot, i64), ApiError> {
    caller.require("config:read")?;
    resolve(config, service, profile).await
}

/// Every scope (global, then each service) with the revision it is at (0: never written).
pub async fn scopes(
    config: &ConfigService,
    caller: &Caller,
    profile: Profile,
) -> Result<Vec<(String, i64)>, ApiError> {
    caller.require("config:read")?;
    let written: std::collections::BTreeMap<String, i64> =
        store::scopes(&config.db, profile.as_str())
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .collect();
    let mut names = vec![GLOBAL_SCOPE.to_string()];
    names.extend(config.catalog.services().map(str::to_string));
    Ok(names
        .into_iter()
        .map(|scope| {
            let revision = written.get(&scope).copied().unwrap_or(0);
            (scope, revision)
        })
        .collect())
}

/// The settings services declare.
pub fn catalog(config: &ConfigService, caller: &Caller) -> Result<Arc<Catalog>, ApiError> {
    caller.require("config:read")?;
    Ok(config.catalog.clone())
}

/// One scope's own settings and the revision it is at (0: never written).
pub(crate) async fn scope_of(
    config: &ConfigService,
    scope: &str,
    profile: Profile,
) -> Result<(Snapshot, i64), ApiError> {
    config.known_scope(scope)?;
    let latest = store::latest(&config.db, scope, profile.as_str())
        .await
        .map_err(ApiError::from)?;
    Ok(latest
        .map(|release| (release.snapshot, release.revision))
        .unwrap_or_default())
}

/// What `service` runs with from the central configuration: global, then its own.
pub(crate) async fn resolve(
    config: &ConfigService,
    service: &str,
    profile: Profile,
) -> Result<(CentralSnapshot, i64), ApiError> {
    let (mut settings, global_revision) = scope_of(config, GLOBAL_SCOPE, profile).await?;
    let (own, own_revision) = if service == GLOBAL_SCOPE {
        (Snapshot::new(), 0)
    } else {
        scope_of(config, service, profile).await?
    };
    settings.extend(own);
    let scope_revision = if service == GLOBAL_SCOPE {
        global_revision
    } else {
        own_revision
    };
    Ok((
        CentralSnapshot {
            service: service.to_string(),
            profile: profile.as_str().to_string(),
            revision: global_revision.max(own_revision),
            settings,
        },
        scope_revision,
    ))
}

/// The effective settings once they are newer than `since`, or `None` after `wait`.
pub async fn wait_for_change(
    config: &ConfigService,
    caller: &Caller,
    service: &str,
    profile: Profile,
    since: i64,
    wait: Duration,
) -> Result<Option<CentralSnapshot>, ApiError> {
    caller.require("config:read")?;
    let mut head = config.head.subscribe();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        head.borrow_and_update();
        let (snapshot, _) = resolve(config, service, profile).await?;
        if snapshot.revision > since {
            return Ok(Some(snapshot));
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return Ok(None),
            changed = head.changed() => if changed.is_err() { return Ok(None) },
        }
    }
}
