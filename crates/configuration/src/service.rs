//! The Configuration service's operations: effective settings, updates and rollbacks as
//! releases (validated, check-and-set, audited, announced), history and diffs, and waiting
//! for a change.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use platform::activity::{Activity, ActivityLog};
use platform::config::central::{
    CHANGE_SUBJECT_FILTER, CentralProvider, CentralSnapshot, ChangeNotice, ConfigHub, GLOBAL_SCOPE,
    change_subject,
};
use platform::config::{Catalog, Live, Profile};
use platform::db::Database;
use platform::http::error::{ApiError, ErrorCode};
use platform::queue::Queue;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::Settings;
use crate::model::{
    Diff, Snapshot, check_entry, check_scope, config_error_to_api, invalid_setting,
};
use crate::store::{self, NewRelease, Release, WriteOutcome};

/// How often a write without `If-Match` starts again after a concurrent one won. Each round
/// has one winner, so this many writers at once all get through.
const WRITE_ATTEMPTS: usize = 16;

/// Who asked for a change, and why.
pub struct Change {
    pub scope: String,
    pub profile: Profile,
    pub author: String,
    pub reason: String,
    pub request_id: Option<String>,
    /// `If-Match`: the scope's revision the caller saw.
    pub expected: Option<i64>,
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

/// A release just written.
pub struct Written {
    pub release: Release,
    /// Changed keys that running services apply only at their next start.
    pub restart_required: Vec<String>,
}

pub struct ConfigService {
    pub db: Database,
    pub catalog: Arc<Catalog>,
    pub settings: Live<Settings>,
    /// The profile a request means when it names none.
    pub profile: Profile,
    pub queue: Arc<dyn Queue>,
    pub hub: ConfigHub,
    pub activity: ActivityLog,
    /// The newest revision this replica knows of, for watchers.
    pub head: watch::Sender<i64>,
    /// The service's request timeout: a long poll must answer before it.
    pub request_timeout: Duration,
    pub clock: platform::Clock,
}

impl ConfigService {
    /// The longest a long poll may wait: the setting, and always 5 s short of the request
    /// timeout so the answer is a 304, never a 503.
    pub fn max_wait(&self) -> Duration {
        let setting = Duration::from_secs(self.settings.get().max_wait_seconds);
        setting.min(self.request_timeout.saturating_sub(Duration::from_secs(5)))
    }

    fn known_scope(&self, scope: &str) -> Result<(), ApiError> {
        if check_scope(&self.catalog, scope) {
            Ok(())
        } else {
            Err(ApiError::not_found(format!(
                "no service {scope:?}; services: global, {}",
                self.catalog.services().collect::<Vec<_>>().join(", ")
            )))
        }
    }

    /// One scope's own settings and the revision it is at (0: never written).
    pub async fn scope(&self, scope: &str, profile: Profile) -> Result<(Snapshot, i64), ApiError> {
        self.known_scope(scope)?;
        let latest = store::latest(&self.db, scope, profile.as_str())
            .await
            .map_err(ApiError::internal)?;
        Ok(latest
            .map(|release| (release.snapshot, release.revision))
            .unwrap_or_default())
    }

    /// What `service` runs with from the central configuration: global, then its own.
    pub async fn effective(
        &self,
        service: &str,
        profile: Profile,
    ) -> Result<(CentralSnapshot, i64), ApiError> {
        let (mut settings, global_revision) = self.scope(GLOBAL_SCOPE, profile).await?;
        let (own, own_revision) = if service == GLOBAL_SCOPE {
            (Snapshot::new(), 0)
        } else {
            self.scope(service, profile).await?
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

    /// Merges `updates` (a `null` removes a key) into the scope as a new release.
    pub async fn update(
        &self,
        change: &Change,
        updates: &BTreeMap<String, Value>,
    ) -> Result<Written, ApiError> {
        self.known_scope(&change.scope)?;
        self.write(change, "update", None, |current| {
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

    /// A new release of the same scope with the snapshot of an earlier one.
    pub async fn rollback(
        &self,
        revision: i64,
        author: String,
        reason: String,
        request_id: Option<String>,
        expected: Option<i64>,
    ) -> Result<Written, ApiError> {
        let target = store::get(&self.db, revision)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found(format!("no release {revision}")))?;
        let profile = Profile::parse(&target.profile).map_err(ApiError::internal)?;
        let redacted: Vec<&String> = target
            .snapshot
            .iter()
            .filter(|(_, value)| value.as_str() == Some(store::REDACTED_VALUE))
            .map(|(key, _)| key)
            .collect();
        if !redacted.is_empty() {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "release {revision} had values redacted ({}), so it cannot be restored as it was; write those settings again with /update",
                    redacted
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let change = Change {
            scope: target.scope.clone(),
            profile,
            author,
            reason,
            request_id,
            expected,
        };
        let snapshot = target.snapshot.clone();
        self.write(&change, "rollback", Some(revision), move |_| {
            snapshot.clone()
        })
        .await
    }

    async fn write(
        &self,
        change: &Change,
        kind: &str,
        rollback_of: Option<i64>,
        next: impl Fn(&Snapshot) -> Snapshot,
    ) -> Result<Written, ApiError> {
        self.check_reason(&change.reason)?;
        for _ in 0..WRITE_ATTEMPTS {
            let (current, based_on) = self.scope(&change.scope, change.profile).await?;
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
                && let Some(release) = store::get(&self.db, based_on)
                    .await
                    .map_err(ApiError::internal)?
            {
                return Ok(Written {
                    release,
                    restart_required: Vec::new(),
                });
            }
            let others = self.other_scopes(&change.scope, change.profile).await?;
            self.validate(&change.scope, change.profile, &snapshot, &diff, &others)?;
            let author = change.author.as_str();
            let outcome = store::write(
                &self.db,
                &NewRelease {
                    scope: &change.scope,
                    profile: change.profile.as_str(),
                    kind,
                    snapshot: &snapshot,
                    diff: &diff,
                    author,
                    reason: &change.reason,
                    request_id: change.request_id.as_deref(),
                    rollback_of,
                    created_at: self.clock.now_millis(),
                },
                based_on,
            )
            .await
            .map_err(ApiError::internal)?;
            let revision = match outcome {
                WriteOutcome::Written(revision) => revision,
                WriteOutcome::Stale if change.expected.is_some() => {
                    let (_, actual) = self.scope(&change.scope, change.profile).await?;
                    return Err(stale(&change.scope, based_on, actual));
                }
                // Someone else wrote first: start again from what they wrote.
                WriteOutcome::Stale | WriteOutcome::Collided => continue,
            };
            let release = store::get(&self.db, revision)
                .await
                .map_err(ApiError::internal)?
                .ok_or_else(|| ApiError::internal("a written release vanished"))?;
            self.announce(&release).await;
            self.audit(&release, &diff).await;
            let restart_required = diff
                .keys()
                .into_iter()
                .filter(|key| !self.catalog.is_live(key))
                .collect();
            return Ok(Written {
                release,
                restart_required,
            });
        }
        Err(ApiError::new(
            ErrorCode::Conflict,
            "the scope kept changing while this change was written; try again",
        ))
    }

    fn check_reason(&self, reason: &str) -> Result<(), ApiError> {
        let max = self.settings.get().max_reason_chars;
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
        &self,
        scope: &str,
        profile: Profile,
    ) -> Result<BTreeMap<String, Snapshot>, ApiError> {
        let names: Vec<String> = if scope == GLOBAL_SCOPE {
            self.catalog.services().map(str::to_string).collect()
        } else {
            vec![GLOBAL_SCOPE.to_string()]
        };
        let mut others = BTreeMap::new();
        for name in names {
            let (snapshot, _) = self.scope(&name, profile).await?;
            others.insert(name, snapshot);
        }
        Ok(others)
    }

    /// Every rule a new snapshot of `scope` must pass, checked for each service it reaches.
    fn validate(
        &self,
        scope: &str,
        profile: Profile,
        snapshot: &Snapshot,
        diff: &Diff,
        others: &BTreeMap<String, Snapshot>,
    ) -> Result<(), ApiError> {
        let settings = self.settings.get();
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
            check_entry(&self.catalog, &settings, scope, key, &snapshot[key])?;
        }
        let empty = Snapshot::new();
        if scope == GLOBAL_SCOPE {
            // A change of global reaches every service, under each one's own settings.
            for service in self.catalog.services() {
                let mut effective = snapshot.clone();
                effective.extend(others.get(service).unwrap_or(&empty).clone());
                self.catalog
                    .check_central(Some(service), profile, &effective)
                    .map_err(config_error_to_api)?;
            }
            self.catalog
                .check_central(None, profile, snapshot)
                .map_err(config_error_to_api)?;
        } else {
            let mut effective = others.get(GLOBAL_SCOPE).unwrap_or(&empty).clone();
            effective.extend(snapshot.clone());
            self.catalog
                .check_central(Some(scope), profile, &effective)
                .map_err(config_error_to_api)?;
        }
        Ok(())
    }

    /// Replaces every value of `key` in the history of `scope` with a marker, except secret
    /// references: for a secret that was written in clear before secrets were refused, or
    /// into a key that is not a secret. The releases stay. Refused while the scope's newest
    /// release still holds a value for the key in clear (change it first, so what runs is
    /// not a marker).
    pub async fn redact_history(&self, change: &Change, key: &str) -> Result<Redacted, ApiError> {
        self.check_reason(&change.reason)?;
        crate::model::check_key_syntax(key)?;
        let (current, head) = self.scope(&change.scope, change.profile).await?;
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
        let revisions = store::redact(&self.db, &change.scope, change.profile.as_str(), key, head)
            .await
            .map_err(ApiError::internal)?;
        self.activity
            .record(
                Activity::new("settings.redacted")
                    .actor(change.author.clone())
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

    /// Tells every config client: in this process through the hub, elsewhere on the queue.
    async fn announce(&self, release: &Release) {
        let notice = ChangeNotice {
            revision: release.revision,
            scope: release.scope.clone(),
            profile: release.profile.clone(),
        };
        self.head.send_if_modified(|head| {
            let newer = release.revision > *head;
            if newer {
                *head = release.revision;
            }
            newer
        });
        self.hub.notify(notice.clone());
        let payload = Bytes::from(serde_json::to_vec(&notice).expect("a notice serializes"));
        if let Err(err) = self
            .queue
            .publish(
                &change_subject(&release.scope),
                &format!("config-release-{}", release.revision),
                payload,
            )
            .await
        {
            // Clients re-read on a timer, so a lost notice delays a change, never loses it.
            tracing::warn!(revision = release.revision, error = %format!("{err:#}"), "cannot announce the release on the queue");
        }
    }

    async fn audit(&self, release: &Release, diff: &Diff) {
        let action = if release.kind == "rollback" {
            "settings.rolled_back"
        } else {
            "settings.updated"
        };
        self.activity
            .record(
                Activity::new(action)
                    .actor(release.author.clone())
                    .subject(release.scope.clone())
                    .details(json!({
                        "scope": release.scope,
                        "profile": release.profile,
                        "revision": release.revision,
                        "rollback_of": release.rollback_of,
                        "reason": release.reason,
                        "diff": diff,
                    })),
            )
            .await;
    }

    /// The effective settings once they are newer than `since`, or `None` after `wait`.
    pub async fn wait_for_change(
        &self,
        service: &str,
        profile: Profile,
        since: i64,
        wait: Duration,
    ) -> Result<Option<CentralSnapshot>, ApiError> {
        let mut head = self.head.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            head.borrow_and_update();
            let (snapshot, _) = self.effective(service, profile).await?;
            if snapshot.revision > since {
                return Ok(Some(snapshot));
            }
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return Ok(None),
                changed = head.changed() => if changed.is_err() { return Ok(None) },
            }
        }
    }

    /// Keeps `head` current with releases other replicas write, and passes them on to the
    /// config clients in this process.
    pub async fn follow_other_replicas(self: Arc<Self>, shutdown: CancellationToken) {
        if let Ok(head) = store::head(&self.db).await {
            self.head.send_replace(head);
        }
        let mut notices = match self.queue.subscribe(CHANGE_SUBJECT_FILTER).await {
            Ok(stream) => stream,
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "cannot follow other replicas' releases; watchers see only this replica's");
                return;
            }
        };
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                message = notices.next() => match message {
                    Some(message) => {
                        if let Ok(notice) = serde_json::from_slice::<ChangeNotice>(&message.payload) {
                            let newer = self.head.send_if_modified(|head| {
                                let newer = notice.revision > *head;
                                if newer { *head = notice.revision; }
                                newer
                            });
                            // Another replica's release: this process's own clients hear it
                            // too. (Its own releases come back here as well, but are not newer.)
                            if newer {
                                self.hub.notify(notice);
                            }
                        }
                    }
                    None => return,
                },
            }
        }
    }
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

/// In one-process mode the other targets read their settings straight from here.
pub struct InProcessProvider(pub Arc<ConfigService>);

#[async_trait]
impl CentralProvider for InProcessProvider {
    async fn effective(&self, service: &str, profile: Profile) -> anyhow::Result<CentralSnapshot> {
        self.0
            .effective(service, profile)
            .await
            .map(|(snapshot, _)| snapshot)
            .map_err(|err| anyhow::anyhow!("{}", err.message))
    }
}
