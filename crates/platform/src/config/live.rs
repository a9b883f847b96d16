//! A service's configuration while it runs: the files and environment it started with, plus
//! the central layer, which the config client replaces when the Configuration service
//! releases a change. Applying is all or nothing: the new configuration is loaded (the
//! environment still beats it), type-checked and range-checked, every subscriber prepares
//! its new value, and only when all of them accept does anything swap.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, RwLock};

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::central::{CentralSnapshot, flatten, unflatten};
use super::{Catalog, ConfigError, ConfigLoader, LayeredConfig};

/// A value that follows the configuration; `get` is cheap and never blocks on an apply.
pub struct Live<T>(Arc<RwLock<Arc<T>>>);

impl<T> Clone for Live<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> std::fmt::Debug for Live<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Live(..)")
    }
}

impl<T> Live<T> {
    /// A value that never changes (tools and tests that run without a config client).
    pub fn fixed(value: T) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(value))))
    }

    pub fn get(&self) -> Arc<T> {
        self.0.read().expect("live value lock").clone()
    }

    fn set(&self, value: T) {
        *self.0.write().expect("live value lock") = Arc::new(value);
    }
}

/// The second half of an apply: runs only once every subscriber has accepted.
pub type Commit = Box<dyn FnOnce() + Send>;

type Prepare = dyn Fn(&LayeredConfig) -> Result<Commit, ConfigError> + Send + Sync;

/// What an apply did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub revision: i64,
    /// Keys whose effective value changed.
    pub changed: Vec<String>,
    /// Those of them that only a restart puts into effect.
    pub restart_required: Vec<String>,
}

struct State {
    config: Arc<LayeredConfig>,
    revision: i64,
    subscribers: Vec<Arc<Prepare>>,
    restart_pending: BTreeSet<String>,
}

struct Inner {
    service: String,
    loader: ConfigLoader,
    target: Option<String>,
    catalog: Arc<Catalog>,
    state: Mutex<State>,
    applied: watch::Sender<i64>,
}

/// One service's (or the all-in-one process's) live configuration.
#[derive(Clone)]
pub struct LiveConfig {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LiveConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveConfig")
            .field("service", &self.inner.service)
            .field("revision", &self.revision())
            .finish()
    }
}

impl LiveConfig {
    /// `service` is the scope it follows (a target name, or `global` for the all-in-one
    /// process); `loader` and `target` reload files and environment; `initial` is what the
    /// process started with, at central `revision` (0: no central layer).
    pub fn new(
        service: impl Into<String>,
        loader: ConfigLoader,
        target: Option<String>,
        catalog: Arc<Catalog>,
        initial: Arc<LayeredConfig>,
        revision: i64,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                service: service.into(),
                loader,
                target,
                catalog,
                state: Mutex::new(State {
                    config: initial,
                    revision,
                    subscribers: Vec::new(),
                    restart_pending: BTreeSet::new(),
                }),
                applied: watch::channel(revision).0,
            }),
        }
    }

    /// A configuration that never changes (operator commands, unit tests).
    pub fn fixed(config: Arc<LayeredConfig>) -> Self {
        let loader = ConfigLoader::new(".", Vec::new(), Value::Null).expect("an empty loader");
        let service = config.target().unwrap_or("global").to_string();
        Self::new(
            service,
            loader,
            None,
            Arc::new(Catalog::permissive()),
            config,
            0,
        )
    }

    pub fn service(&self) -> &str {
        &self.inner.service
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.inner.catalog
    }

    pub fn current(&self) -> Arc<LayeredConfig> {
        self.lock().config.clone()
    }

    /// The central revision in effect.
    pub fn revision(&self) -> i64 {
        self.lock().revision
    }

    /// Changes to the applied revision.
    pub fn watch_revision(&self) -> watch::Receiver<i64> {
        self.inner.applied.subscribe()
    }

    /// `{"revision": n, "restart_required": [...]}` for /health.
    pub fn status(&self) -> Value {
        let state = self.lock();
        json!({
            "revision": state.revision,
            "restart_required": state.restart_pending.iter().collect::<Vec<_>>(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().expect("live config lock")
    }

    /// Declares everything applied so far in effect: the service (re)started with it, so
    /// nothing waits for a restart.
    pub fn mark_in_effect(&self) {
        self.lock().restart_pending.clear();
    }

    /// The section `name` as `T`, kept current. `validate` can refuse a value the type
    /// allows: at start (the service does not start) and in every later change (the
    /// refusal names the section and stops the whole apply).
    pub fn section<T>(
        &self,
        name: &'static str,
        validate: fn(&T) -> Result<(), String>,
    ) -> Result<Live<T>, ConfigError>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        let value: T = self.current().section(name)?;
        validate(&value).map_err(|message| ConfigError::Invalid {
            key: name.to_string(),
            origin: "the service's configuration".into(),
            message,
        })?;
        let live = Live::fixed(value);
        let target = live.clone();
        self.on_change(move |config| {
            let value: T = config.section(name)?;
            validate(&value).map_err(|message| ConfigError::Invalid {
                key: name.to_string(),
                origin: "the central configuration".into(),
                message,
            })?;
            let target = target.clone();
            Ok(Box::new(move || target.set(value)))
        });
        Ok(live)
    }

    /// Registers a subscriber: given a candidate configuration it either refuses it or
    /// returns the commit that puts it into effect.
    pub fn on_change(
        &self,
        prepare: impl Fn(&LayeredConfig) -> Result<Commit, ConfigError> + Send + Sync + 'static,
    ) {
        self.lock().subscribers.push(Arc::new(prepare));
    }

    /// Puts `snapshot` into effect, or changes nothing and says why.
    pub fn apply(&self, snapshot: &CentralSnapshot) -> Result<Applied, ConfigError> {
        let mut state = self.lock();
        let candidate = self
            .inner
            .loader
            .clone()
            .with_central_layer(
                format!("configuration service revision {}", snapshot.revision),
                unflatten(&snapshot.settings),
            )
            .load(self.inner.target.as_deref())?;
        self.inner.catalog.check(&candidate)?;
        self.inner.catalog.check_ranges(&candidate)?;
        let commits = state
            .subscribers
            .iter()
            .map(|prepare| prepare(&candidate))
            .collect::<Result<Vec<_>, _>>()?;
        for commit in commits {
            commit();
        }
        let changed = changed_keys(&state.config, &candidate);
        let restart_required: Vec<String> = changed
            .iter()
            .filter(|key| !self.inner.catalog.is_live(key))
            .cloned()
            .collect();
        state
            .restart_pending
            .extend(restart_required.iter().cloned());
        state.config = Arc::new(candidate);
        state.revision = snapshot.revision;
        self.inner.applied.send_replace(snapshot.revision);
        Ok(Applied {
            revision: snapshot.revision,
            changed,
            restart_required,
        })
    }
}

/// Dotted keys whose value differs between two configurations.
fn changed_keys(old: &LayeredConfig, new: &LayeredConfig) -> Vec<String> {
    let old = flatten(&old.tree);
    let new = flatten(&new.tree);
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter()
        .filter(|key| old.get(*key) != new.get(*key))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Clone, Deserialize, PartialEq)]
    #[serde(default)]
    struct Knobs {
        limit: u32,
        level: String,
    }

    impl Default for Knobs {
        fn default() -> Self {
            Self {
                limit: 10,
                level: "info".into(),
            }
        }
    }

    fn live(env: &[(&str, &str)]) -> LiveConfig {
        let dir = tempfile::tempdir().unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let loader = ConfigLoader::new(
            dir.path(),
            env,
            json!({"knobs": {"limit": 10, "level": "info"}}),
        )
        .unwrap();
        let initial = Arc::new(loader.load(Some("svc")).unwrap());
        LiveConfig::new(
            "svc",
            loader,
            Some("svc".into()),
            Arc::new(Catalog::permissive()),
            initial,
            0,
        )
    }

    fn snapshot(revision: i64, pairs: &[(&str, Value)]) -> CentralSnapshot {
        CentralSnapshot {
            service: "svc".into(),
            profile: "development".into(),
            revision,
            settings: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn an_apply_swaps_every_subscriber_or_none() {
        let config = live(&[]);
        let knobs = config.section::<Knobs>("knobs", |_| Ok(())).unwrap();
        let strict = config
            .section::<Knobs>("knobs", |k| {
                if k.limit > 100 {
                    Err("limit is at most 100".into())
                } else {
                    Ok(())
                }
            })
            .unwrap();
        let applied = config
            .apply(&snapshot(1, &[("knobs.limit", json!(50))]))
            .unwrap();
        assert_eq!(applied.changed, vec!["knobs.limit"]);
        assert_eq!(knobs.get().limit, 50);
        assert_eq!(strict.get().limit, 50);
        assert_eq!(config.revision(), 1);

        // One subscriber refuses: neither changes, the revision stays.
        let err = config
            .apply(&snapshot(
                2,
                &[("knobs.limit", json!(500)), ("knobs.level", json!("debug"))],
            ))
            .unwrap_err();
        assert!(err.to_string().contains("at most 100"), "{err}");
        assert_eq!(knobs.get().limit, 50);
        assert_eq!(knobs.get().level, "info");
        assert_eq!(config.revision(), 1);

        // A wrong type is refused before any subscriber is asked.
        assert!(
            config
                .apply(&snapshot(3, &[("knobs.limit", json!("many"))]))
                .is_err()
        );
        assert_eq!(knobs.get().limit, 50);
    }

    #[test]
    fn the_environment_still_beats_the_central_layer_and_restart_keys_are_reported() {
        let config = live(&[("VIVESPHERE_KNOBS__LIMIT", "7")]);
        let knobs = config.section::<Knobs>("knobs", |_| Ok(())).unwrap();
        let applied = config
            .apply(&snapshot(
                4,
                &[("knobs.limit", json!(50)), ("knobs.level", json!("warn"))],
            ))
            .unwrap();
        assert_eq!(knobs.get().limit, 7);
        assert_eq!(knobs.get().level, "warn");
        // Nothing in the permissive catalogue is live.
        assert_eq!(applied.restart_required, vec!["knobs.level"]);
        assert_eq!(config.status()["restart_required"], json!(["knobs.level"]));
    }
}
