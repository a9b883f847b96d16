//! The history of releases: newest first, one release, the diff between two, and redacting a
//! value written in clear from every release of a scope.

use platform::activity::Activity;
use platform::auth::Caller;
use platform::config::Profile;
use platform::http::error::{ApiError, ErrorCode};
use serde_json::json;

use super::releases::{Change, check_reason, named_scope};
use super::settings::scope_of;
use crate::model::Diff;
use crate::service::ConfigService;
use crate::store::{self, Release};

/// Releases newest first, of one scope and profile if named, older than `before`.
pub async fn list(
    config: &ConfigService,
    caller: &Caller,
    scope: Option<&str>,
    profile: Option<Profile>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Release>, ApiError> {
    caller.require("config:read")?;
    store::history(
        &config.db,
        scope,
        profile.map(Profile::as_str),
        before,
        limit,
    )
    .await
    .map_err(ApiError::from)
}

pub async fn release(
    config: &ConfigService,
    caller: &Caller,
    revision: i64,
) -> Result<Release, ApiError> {
    caller.require("config:read")?;
    load(config, revision).await
}

/// What differs between the snapshots of releases `from` and `to`.
pub async fn diff(
    config: &ConfigService,
    caller: &Caller,
    from: i64,
    to: i64,
) -> Result<Diff, ApiError> {
    caller.require("config:read")?;
    let (old, new) = (load(config, from).await?, load(config, to).await?);
    Ok(Diff::between(&old.snapshot, &new.snapshot))
}

async fn load(config: &ConfigService, revision: i64) -> Result<Release, ApiError> {
    store::get(&config.db, revision)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::not_found(format!("no release {revision}")))
}

/// What a redaction changed.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Redacted {
    pub scope: String,
    pub profile: String,
    pub key: String,
    /// The releases whose snapshot or diff held the value in clear.
    pub revisions: Vec<i64>,
}

/// Replaces every value of `key` in the history of `scope` with a marker, except secret
/// references: for a secret that was written in clear before secrets were refused, or
/// into a key that is not a secret. The releases stay. Refused while the scope's newest
/// release still holds a value for the key in clear (change it first, so what runs is
/// not a marker).
pub async fn redact_history(
    config: &ConfigService,
    caller: &Caller,
    change: &Change,
    key: &str,
) -> Result<Redacted, ApiError> {
    caller.require("config:write")?;
    caller.require_admin("redacting history")?;
    named_scope(config, &change.scope)?;
    check_reason(config, &change.reason)?;
    crate::model::check_key_syntax(key)?;
    let (current, head) = scope_of(config, &change.scope, change.profile).await?;
    if current.get(key).is_some_and(store::holds_plaintext) {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "release {head} of {} still holds `{key}` in clear: remove it or replace it by a ${{secret:NAME}} reference with /update first, then redact its history",
                change.scope
            ),
        )
        .with_field("revision", head));
    }
    let revisions = store::redact(
        &config.db,
        &change.scope,
        change.profile.as_str(),
        key,
        head,
    )
    .await
    .map_err(ApiError::from)?;
    config
        .activity
        .record(
            Activity::by(caller, "settings.redacted")
                .team(None)
                .subject(change.scope.clone())
                .details(json!({
                    "scope": change.scope,
                    "profile": change.profile.as_str(),
                    "key": key,
                    "revisions": revisions,
                    "reason": change.reason,
                })),
        )
        .await;
    Ok(Redacted {
        scope: change.scope.clone(),
        profile: change.profile.as_str().to_string(),
        key: key.to_string(),
        revisions,
    })
}
