//! The Configuration service's state, and what its operations share: the scope check, the
//! announcement of a release to every config client, its activity record, and following the
//! releases other replicas write.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use platform::activity::{Activity, ActivityLog};
use platform::auth::Caller;
use platform::config::central::{
    CHANGE_SUBJECT_FILTER, CentralProvider, CentralSnapshot, ChangeNotice, ConfigHub,
    change_subject,
};
use platform::config::{Catalog, Live, Profile};
use platform::db::Database;
use platform::http::error::ApiError;
use platform::queue::Queue;
use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::Settings;
use crate::model::{Diff, check_scope};
use crate::store::{self, Release};

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

    pub(crate) fn known_scope(&self, scope: &str) -> Result<(), ApiError> {
        if check_scope(&self.catalog, scope) {
            Ok(())
        } else {
            Err(ApiError::not_found(format!(
                "no service {scope:?}; services: global, {}",
                self.catalog.services().collect::<Vec<_>>().join(", ")
            )))
        }
    }

    /// Tells every config client: in this process through the hub, elsewhere on the queue.
    pub(crate) async fn announce(&self, release: &Release) {
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

    /// Settings belong to no team: only admins read these events in the Logging service.
    pub(crate) async fn audit(&self, caller: &Caller, release: &Release, diff: &Diff) {
        let action = if release.kind == "rollback" {
            "settings.rolled_back"
        } else {
            "settings.updated"
        };
        self.activity
            .record(
                Activity::by(caller, action)
                    .team(None)
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

/// In one-process mode the other targets read their settings straight from here.
pub struct InProcessProvider(pub Arc<ConfigService>);

#[async_trait]
impl CentralProvider for InProcessProvider {
    async fn effective(&self, service: &str, profile: Profile) -> anyhow::Result<CentralSnapshot> {
        crate::ops::settings::resolve(&self.0, service, profile)
            .await
            .map(|(snapshot, _)| snapshot)
            .map_err(|err| anyhow::anyhow!("{}", err.message))
    }
}
