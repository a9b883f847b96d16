//! The central Configuration service as its clients see it: the effective settings of one
//! service in one profile at one revision, the change notice the service sends after every
//! release, the last-good copy a client keeps on disk, and the in-process hub through which
//! the Configuration service answers clients in its own process.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::broadcast;

use super::Profile;
use super::layered::dotted_key;

/// The scope whose settings apply to every service (a service's own scope beats it).
pub const GLOBAL_SCOPE: &str = "global";

/// The profile of a notice that concerns every profile (a receiver that missed notices).
pub const ANY_PROFILE: &str = "*";

/// Queue subjects carrying [`ChangeNotice`]s: `config.changes.<scope>`.
pub const CHANGE_SUBJECT_FILTER: &str = "config.changes.>";

/// The subject a change of `scope` is announced on.
pub fn change_subject(scope: &str) -> String {
    format!("config.changes.{}", scope.replace('-', "_"))
}

/// The central settings of one service: its profile's global scope merged with its own,
/// as dotted keys, at the newest revision of either.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CentralSnapshot {
    pub service: String,
    pub profile: String,
    /// The newest release either scope is at; 0 when neither has one.
    pub revision: i64,
    #[schema(value_type = Object)]
    pub settings: BTreeMap<String, Value>,
}

/// Sent after every release: which scope changed, in which profile, at which revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeNotice {
    pub revision: i64,
    pub scope: String,
    pub profile: String,
}

impl ChangeNotice {
    /// Whether the change can alter `service`'s settings in `profile`.
    pub fn concerns(&self, service: &str, profile: Profile) -> bool {
        (self.profile == profile.as_str() || self.profile == ANY_PROFILE)
            && (self.scope == GLOBAL_SCOPE || self.scope == service)
    }
}

/// A nested settings tree as dotted keys; arrays and scalars are leaves.
pub fn flatten(tree: &Map<String, Value>) -> BTreeMap<String, Value> {
    fn walk(prefix: &str, tree: &Map<String, Value>, out: &mut BTreeMap<String, Value>) {
        for (key, value) in tree {
            let path = dotted_key(prefix, key);
            match value {
                Value::Object(child) if !child.is_empty() => walk(&path, child, out),
                other => {
                    out.insert(path, other.clone());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", tree, &mut out);
    out
}

/// Dotted keys as a nested tree (the shape a configuration layer has).
pub fn unflatten(settings: &BTreeMap<String, Value>) -> Map<String, Value> {
    let mut root = Map::new();
    for (key, value) in settings {
        let mut node = &mut root;
        let mut parts = key.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                node.insert(part.to_string(), value.clone());
                break;
            }
            let child = node
                .entry(part.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !child.is_object() {
                *child = Value::Object(Map::new());
            }
            node = child.as_object_mut().expect("just made an object");
        }
    }
    root
}

/// The last central settings a service applied, kept on disk so that it starts with them
/// even while the Configuration service is down.
#[derive(Debug, Clone)]
pub struct DiskCopy {
    path: PathBuf,
}

impl DiskCopy {
    /// `<dir>/<service>.<profile>.json`.
    pub fn new(dir: impl AsRef<Path>, service: &str, profile: Profile) -> Self {
        Self {
            path: dir
                .as_ref()
                .join(format!("{service}.{}.json", profile.as_str())),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved copy; `None` when there is none; an error (for a warning: the service then
    /// starts without it) when it cannot be read or is corrupt.
    pub fn load(&self) -> Result<Option<CentralSnapshot>, String> {
        let path = self.path.display();
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(format!("cannot read {path}: {err}")),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|err| format!("{path} is not a saved central configuration: {err}"))
    }

    /// Replaces the copy atomically: a reader sees the old file or the new one, never half.
    pub fn save(&self, snapshot: &CentralSnapshot) -> std::io::Result<()> {
        use std::io::Write;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&serde_json::to_vec_pretty(snapshot).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &self.path)
    }
}

/// What the Configuration service offers clients in its own process.
#[async_trait]
pub trait CentralProvider: Send + Sync {
    async fn effective(&self, service: &str, profile: Profile) -> anyhow::Result<CentralSnapshot>;
}

/// One per process: in one-process mode the Configuration service registers itself here,
/// and every other target's config client reads and follows it without HTTP or the queue.
#[derive(Clone)]
pub struct ConfigHub {
    provider: Arc<RwLock<Option<Arc<dyn CentralProvider>>>>,
    notices: broadcast::Sender<ChangeNotice>,
}

impl Default for ConfigHub {
    fn default() -> Self {
        Self {
            provider: Arc::default(),
            notices: broadcast::channel(1024).0,
        }
    }
}

impl ConfigHub {
    pub fn provide(&self, provider: Arc<dyn CentralProvider>) {
        *self.provider.write().expect("hub lock") = Some(provider);
    }

    /// The Configuration service of this process, if it runs here.
    pub fn provider(&self) -> Option<Arc<dyn CentralProvider>> {
        self.provider.read().expect("hub lock").clone()
    }

    pub fn notify(&self, notice: ChangeNotice) {
        // No receiver is fine: nobody in this process follows the central settings.
        let _ = self.notices.send(notice);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ChangeNotice> {
        self.notices.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flatten_and_unflatten_are_inverse_for_leaves() {
        let tree = json!({"telemetry": {"log_level": "debug"}, "bot_manager": {"execution": {"max_attempts": 3}, "tags": ["a"]}});
        let flat = flatten(tree.as_object().unwrap());
        assert_eq!(flat["bot_manager.execution.max_attempts"], json!(3));
        assert_eq!(flat["bot_manager.tags"], json!(["a"]));
        assert_eq!(Value::Object(unflatten(&flat)), tree);
    }

    #[test]
    fn a_notice_concerns_its_scope_and_global_in_its_profile_only() {
        let notice = |scope: &str, profile: &str| ChangeNotice {
            revision: 1,
            scope: scope.into(),
            profile: profile.into(),
        };
        assert!(notice("global", "development").concerns("logging", Profile::Development));
        assert!(notice("logging", "development").concerns("logging", Profile::Development));
        assert!(!notice("bot-manager", "development").concerns("logging", Profile::Development));
        assert!(!notice("logging", "production").concerns("logging", Profile::Development));
    }

    #[test]
    fn the_disk_copy_round_trips_and_ignores_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let copy = DiskCopy::new(dir.path(), "logging", Profile::Staging);
        assert_eq!(copy.load(), Ok(None));
        let snapshot = CentralSnapshot {
            service: "logging".into(),
            profile: "staging".into(),
            revision: 7,
            settings: BTreeMap::from([("logging.x".to_string(), json!(1))]),
        };
        copy.save(&snapshot).unwrap();
        assert_eq!(copy.load(), Ok(Some(snapshot)));
        std::fs::write(copy.path(), b"{not json").unwrap();
        assert!(
            copy.load()
                .unwrap_err()
                .contains("not a saved central configuration")
        );
    }
}
