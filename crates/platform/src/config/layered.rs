//! The merged configuration tree and the origin of each of its values.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::ConfigError;
use super::loader::Profile;

/// Where a layer comes from, in priority order: a later kind beats an earlier one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LayerKind {
    Default,
    GlobalFile,
    ServiceFile,
    ProfileFile,
    /// The seam for the central Configuration service: above the files, below the environment.
    Central,
    Env,
}

/// Where one value came from: its layer and a description for people
/// (`config/global.yaml`, `env VIVESPHERE_DATABASE__URL`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub layer: LayerKind,
    pub source: String,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// The effective configuration of one target: every layer merged, placeholders and `*_file`
/// keys resolved. Read typed sections out of it with [`LayeredConfig::section`].
#[derive(Debug, Clone)]
pub struct LayeredConfig {
    pub(super) profile: Profile,
    pub(super) target: Option<String>,
    pub(super) tree: Map<String, Value>,
    /// Dotted path of each leaf → its origin.
    pub(super) origins: BTreeMap<String, Origin>,
    /// Dotted paths whose values came from a secret source (`${VAR}` or `*_file`).
    pub(super) secret_paths: BTreeSet<String>,
}

impl LayeredConfig {
    pub(super) fn empty(profile: Profile, target: Option<String>) -> Self {
        Self {
            profile,
            target,
            tree: Map::new(),
            origins: BTreeMap::new(),
            secret_paths: BTreeSet::new(),
        }
    }

    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// The target this configuration was loaded for; `None` for the all-in-one process.
    pub fn target(&self) -> Option<&str> {
        self.target.as_deref()
    }

    /// The raw value at a dotted path, if any.
    pub fn get(&self, path: &str) -> Option<&Value> {
        let mut parts = path.split('.');
        let mut current = self.tree.get(parts.next()?)?;
        for part in parts {
            current = current.as_object()?.get(part)?;
        }
        Some(current)
    }

    /// Where the value at a dotted path (or the first value below it) came from.
    pub fn origin_of(&self, path: &str) -> Option<&Origin> {
        if let Some(origin) = self.origins.get(path) {
            return Some(origin);
        }
        let below = format!("{path}.");
        self.origins
            .range(below.clone()..)
            .find(|(key, _)| key.starts_with(&below))
            .map(|(_, origin)| origin)
    }

    fn origin_text(&self, path: &str) -> String {
        self.origin_of(path)
            .map(ToString::to_string)
            .unwrap_or_else(|| "default".to_string())
    }

    /// Merges one layer on top: objects merge key by key, anything else replaces.
    pub(super) fn merge_layer(&mut self, layer: Map<String, Value>, origin: &Origin) {
        merge_object(&mut self.tree, layer, "", origin, &mut self.origins);
    }

    /// Reads one top-level section as `T`. A key `T` does not know, or a value of the wrong
    /// type, is an error naming the key and the file (or variable) that set it.
    pub fn section<T: DeserializeOwned>(&self, name: &str) -> Result<T, ConfigError> {
        let value = self
            .tree
            .get(name)
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new()));
        let mut unknown = Vec::new();
        let mut record = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
        let result: Result<T, _> =
            serde_path_to_error::deserialize(serde_ignored::Deserializer::new(value, &mut record));
        if let Some(path) = unknown.first() {
            let key = format!("{name}.{path}");
            return Err(ConfigError::UnknownKey {
                origin: self.origin_text(&key),
                suggestion: self.closest_known(&key),
                key,
            });
        }
        result.map_err(|err| {
            let inner = err.path().to_string();
            let key = if inner == "." {
                name.to_string()
            } else {
                format!("{name}.{inner}")
            };
            let message = err.into_inner().to_string();
            // A section that denies unknown fields says so through serde, with the fields it
            // expected: the same mistake as any unknown key, and the same suggestion.
            if let Some((field, expected)) = unknown_field(&message) {
                let parent = key
                    .strip_suffix(&field)
                    .unwrap_or(&key)
                    .trim_end_matches('.');
                return ConfigError::UnknownKey {
                    origin: self.origin_text(&key),
                    suggestion: closest(&field, expected.iter().map(String::as_str))
                        .map(|near| dotted_key(parent, &near)),
                    key,
                };
            }
            ConfigError::Invalid {
                origin: self.origin_text(&key),
                message,
                key,
            }
        })
    }

    /// Shows `value` for `key` where no layer set one: what the process computes itself (a
    /// one-target process's `server.listen`), marked as such, so that `config check` prints
    /// what will be used rather than `null`.
    pub fn with_derived(mut self, key: &str, value: Value, why: &str) -> Self {
        if self.get(key).is_some_and(|set| !set.is_null()) {
            return self;
        }
        let mut layer = value;
        for segment in key.rsplit('.') {
            let mut map = Map::new();
            map.insert(segment.to_string(), layer);
            layer = Value::Object(map);
        }
        if let Value::Object(map) = layer {
            let origin = Origin {
                layer: LayerKind::Default,
                source: format!("computed: {why}"),
            };
            self.merge_layer(map, &origin);
        }
        self
    }

    /// Fails on a top-level section nobody owns (a typo such as `databse:`).
    pub fn check_sections(&self, known: &[&str]) -> Result<(), ConfigError> {
        match self.tree.keys().find(|key| !known.contains(&key.as_str())) {
            Some(key) => Err(ConfigError::UnknownKey {
                key: key.clone(),
                origin: self.origin_text(key),
                suggestion: closest(key, known.iter().copied()),
            }),
            None => Ok(()),
        }
    }
}

/// The known key a misspelt one was most likely meant to be: among its siblings (which the
/// defaults layer fills with every known key), the nearest by edit distance, if near enough.
impl LayeredConfig {
    fn closest_known(&self, key: &str) -> Option<String> {
        let (parent, leaf) = key.rsplit_once('.').unwrap_or(("", key));
        let siblings = if parent.is_empty() {
            &self.tree
        } else {
            self.tree
                .get(parent.split('.').next()?)
                .and_then(|root| {
                    parent
                        .split('.')
                        .skip(1)
                        .try_fold(root, |node, part| node.get(part))
                })?
                .as_object()?
        };
        let candidates = siblings.keys().map(String::as_str).filter(|k| *k != leaf);
        closest(leaf, candidates).map(|near| dotted_key(parent, &near))
    }
}

/// serde's "unknown field `x`, expected one of `a`, `b`": the field and the expected ones.
fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    message.strip_prefix("unknown field `")?;
    let names: Vec<String> = message
        .split('`')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect();
    let (field, expected) = names.split_first()?;
    Some((field.clone(), expected.to_vec()))
}

/// The candidate nearest to `typed` by edit distance, if within a third of its length (at
/// least 2): `log_levels` → `log_level`, `databse` → `database`.
fn closest<'a>(typed: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    let limit = (typed.len() / 3).max(2);
    candidates
        .map(|candidate| (strsim::levenshtein(typed, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate.to_string())
}

/// `key` under `prefix` as a dotted settings key (`database` + `url` → `database.url`).
pub(crate) fn dotted_key(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn merge_object(
    target: &mut Map<String, Value>,
    layer: Map<String, Value>,
    prefix: &str,
    origin: &Origin,
    origins: &mut BTreeMap<String, Origin>,
) {
    for (key, value) in layer {
        let path = dotted_key(prefix, &key);
        match (target.get_mut(&key), value) {
            (Some(Value::Object(existing)), Value::Object(incoming)) => {
                merge_object(existing, incoming, &path, origin, origins);
            }
            (_, value) => {
                forget_origins(origins, &path);
                record_leaves(&value, &path, origin, origins);
                target.insert(key, value);
            }
        }
    }
}

pub(super) fn forget_origins(origins: &mut BTreeMap<String, Origin>, path: &str) {
    let below = format!("{path}.");
    origins.retain(|key, _| key != path && !key.starts_with(&below));
}

fn record_leaves(
    value: &Value,
    path: &str,
    origin: &Origin,
    origins: &mut BTreeMap<String, Origin>,
) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                record_leaves(child, &dotted_key(path, key), origin, origins);
            }
        }
        _ => {
            origins.insert(path.to_string(), origin.clone());
        }
    }
}
