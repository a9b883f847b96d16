//! Reads the layers from disk and the environment and resolves secrets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::layered::{dotted_key, forget_origins};
use super::{ConfigError, LayerKind, LayeredConfig, Origin};

/// The deployment profile, picked by the `ENV` variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Development,
    Staging,
    Production,
}

impl Profile {
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        match value {
            "development" => Ok(Self::Development),
            "staging" => Ok(Self::Staging),
            "production" => Ok(Self::Production),
            other => Err(ConfigError::Profile(other.to_string())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Staging => "staging",
            Self::Production => "production",
        }
    }
}

const ENV_PREFIX: &str = "VIVESPHERE_";
/// `VIVESPHERE_…` variables that are read, but are not settings (after the prefix).
const NON_SETTING_VARS: [&str; 2] = ["CONFIG_DIR", "SECRETS_DIR"];
const FILE_SUFFIX: &str = "_file";

/// Builds a [`LayeredConfig`] for a target. The environment is a snapshot taken once, so
/// tests pass their own instead of changing the process's.
#[derive(Debug, Clone)]
pub struct ConfigLoader {
    dir: PathBuf,
    profile: Profile,
    env: BTreeMap<String, String>,
    defaults: Map<String, Value>,
    central: Option<(String, Map<String, Value>)>,
    file_root: Option<PathBuf>,
    /// Reads nothing from this host: no YAML files, no `*_file` secrets, no secrets
    /// directory, no environment placeholders (for checking a central candidate).
    offline: bool,
    /// Per target, the sections it does not use (left out of its configuration).
    unused_sections: BTreeMap<String, Vec<&'static str>>,
}

impl ConfigLoader {
    /// A loader reading `dir` with the given environment; `ENV` in it picks the profile.
    pub fn new(
        dir: impl Into<PathBuf>,
        env: impl IntoIterator<Item = (String, String)>,
        defaults: Value,
    ) -> Result<Self, ConfigError> {
        let env: BTreeMap<String, String> = env.into_iter().collect();
        let profile = match env.get("ENV") {
            Some(value) if !value.is_empty() => Profile::parse(value)?,
            _ => Profile::Development,
        };
        let defaults = match defaults {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        Ok(Self {
            dir: dir.into(),
            profile,
            env,
            defaults,
            central: None,
            file_root: None,
            offline: false,
            unused_sections: BTreeMap::new(),
        })
    }

    /// A loader for checking settings written centrally: the defaults and `profile` only,
    /// and nothing read from this host. A `*_file` key or a placeholder stands for its text
    /// as it is, unread, so that an answer never tells whether a file exists here.
    pub fn offline(profile: Profile, defaults: Value) -> Self {
        let mut loader = Self::new(
            PathBuf::new(),
            [("ENV".to_string(), profile.as_str().to_string())],
            defaults,
        )
        .expect("a profile's own name parses");
        loader.offline = true;
        loader
    }

    /// The `VIVESPHERE_…` variables this loader will not read: a single underscore where a
    /// setting needs two (`VIVESPHERE_SERVER_LISTEN`), or a name that is no setting at all.
    /// One sentence each, with the variable meant when the name starts with a section.
    pub fn ignored_env_vars(&self) -> Vec<String> {
        self.env
            .keys()
            .filter_map(|var| {
                let rest = var.strip_prefix(ENV_PREFIX)?;
                let read_elsewhere = NON_SETTING_VARS.contains(&rest) || rest.starts_with("TEST_");
                if rest.contains("__") || read_elsewhere {
                    return None;
                }
                let lower = rest.to_ascii_lowercase();
                let meant = self.defaults.keys().find_map(|section| {
                    let key = lower.strip_prefix(section.as_str())?.strip_prefix('_')?;
                    (!key.is_empty()).then(|| env_var(&format!("{section}.{}", key.replace("__", "."))))
                });
                Some(match meant {
                    Some(meant) => format!(
                        "{var} is not read: a setting's variable is VIVESPHERE_<SECTION>__<KEY>; did you mean {meant}?"
                    ),
                    None => format!(
                        "{var} is not read: a setting's variable is VIVESPHERE_<SECTION>__<KEY>"
                    ),
                })
            })
            .collect()
    }

    /// A loader using this process's environment.
    pub fn from_process_env(dir: impl Into<PathBuf>, defaults: Value) -> Result<Self, ConfigError> {
        Self::new(dir, std::env::vars(), defaults)
    }

    pub fn profile(&self) -> Profile {
        self.profile
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Plugs in the central Configuration service's settings (fetched by the caller) as the
    /// layer between the profile file and the environment.
    pub fn with_central_layer(
        mut self,
        source: impl Into<String>,
        layer: Map<String, Value>,
    ) -> Self {
        self.central = Some((source.into(), layer));
        self
    }

    /// Reads `*_file` secrets under `root`, as a container whose filesystem is mounted there
    /// would see them: for checking a rendered Kubernetes manifest offline
    /// (`vivesphere config check --root`).
    pub fn with_file_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.file_root = Some(root.into());
        self
    }

    /// `target` does not use `section` (a target without a database, its `database`): the
    /// section is left out of its configuration, so a secret file it names (mounted only
    /// where a service uses it) is not read.
    pub fn without_section_for(mut self, target: &str, section: &'static str) -> Self {
        self.unused_sections
            .entry(target.to_string())
            .or_default()
            .push(section);
        self
    }

    /// The effective configuration for `target` (`None`: the all-in-one process, which
    /// reads no service file).
    pub fn load(&self, target: Option<&str>) -> Result<LayeredConfig, ConfigError> {
        let mut config = LayeredConfig::empty(self.profile, target.map(str::to_string));
        config.merge_layer(
            self.defaults.clone(),
            &Origin {
                layer: LayerKind::Default,
                source: "default".into(),
            },
        );
        let mut files = vec![(LayerKind::GlobalFile, self.dir.join("global.yaml"))];
        if let Some(target) = target {
            files.push((
                LayerKind::ServiceFile,
                self.dir.join(format!("{target}.yaml")),
            ));
        }
        files.push((
            LayerKind::ProfileFile,
            self.dir
                .join("profiles")
                .join(format!("{}.yaml", self.profile.as_str())),
        ));
        if self.offline {
            files.clear();
        }
        for (layer, path) in files {
            if let Some(map) = read_yaml_file(&path)? {
                let source = path.display().to_string();
                config.merge_layer(map, &Origin { layer, source });
            }
        }
        if let Some((source, map)) = &self.central {
            config.merge_layer(
                map.clone(),
                &Origin {
                    layer: LayerKind::Central,
                    source: source.clone(),
                },
            );
        }
        for (var, map) in env_layers(&self.env)? {
            config.merge_layer(
                map,
                &Origin {
                    layer: LayerKind::Env,
                    source: format!("env {var}"),
                },
            );
        }
        for section in target
            .and_then(|target| self.unused_sections.get(target))
            .into_iter()
            .flatten()
        {
            config.tree.remove(*section);
        }
        if !self.offline {
            resolve_secrets(&mut config, &self.env, self.file_root.as_deref())?;
        }
        Ok(config)
    }
}

fn read_yaml_file(path: &Path) -> Result<Option<Map<String, Value>>, ConfigError> {
    let file = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => {
            return Err(ConfigError::Read {
                file,
                message: err.to_string(),
            });
        }
    };
    let value: Value = serde_norway::from_str(&text).map_err(|err| ConfigError::Parse {
        file: file.clone(),
        message: err.to_string(),
    })?;
    match value {
        Value::Null => Ok(Some(Map::new())),
        Value::Object(map) => Ok(Some(map)),
        _ => Err(ConfigError::Parse {
            file,
            message: "the top level must be a mapping of sections".into(),
        }),
    }
}

/// A layer from one environment variable: the variable's name and the tree it sets.
type EnvLayer = (String, Map<String, Value>);

/// The environment variable that sets the dotted key `key` (`database.url` →
/// `VIVESPHERE_DATABASE__URL`), for launchers that configure processes they start.
pub fn env_var(key: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        key.to_ascii_uppercase().replace('.', "__")
    )
}

/// One single-key layer per `VIVESPHERE_A__B…` variable, in name order.
fn env_layers(env: &BTreeMap<String, String>) -> Result<Vec<EnvLayer>, ConfigError> {
    let mut layers = Vec::new();
    for (var, raw) in env {
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if !rest.contains("__") {
            continue;
        }
        let segments: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        if segments.iter().any(String::is_empty) {
            return Err(ConfigError::Env {
                var: var.clone(),
                message: "empty key segment; use VIVESPHERE_<SECTION>__<KEY>".into(),
            });
        }
        let mut value = parse_env_value(raw);
        for segment in segments.iter().rev() {
            let mut map = Map::new();
            map.insert(segment.clone(), value);
            value = Value::Object(map);
        }
        if let Value::Object(map) = value {
            layers.push((var.clone(), map));
        }
    }
    Ok(layers)
}

/// An environment value is read as a YAML scalar, so `30` is a number and `true` a bool;
/// anything that is not valid YAML stays a string.
fn parse_env_value(raw: &str) -> Value {
    if raw.is_empty() {
        return Value::String(String::new());
    }
    match serde_norway::from_str::<Value>(raw) {
        Ok(Value::Null) if raw != "null" && raw != "~" => Value::String(raw.to_string()),
        Ok(value) => value,
        Err(_) => Value::String(raw.to_string()),
    }
}

/// Replaces `${VAR}` placeholders with environment values and `key_file: /path` entries with
/// `key: <file contents>`, marking the results secret. Anything unresolved stops loading.
fn resolve_secrets(
    config: &mut LayeredConfig,
    env: &BTreeMap<String, String>,
    file_root: Option<&Path>,
) -> Result<(), ConfigError> {
    let mut tree = std::mem::take(&mut config.tree);
    let result = resolve_object(&mut tree, "", config, env, file_root);
    config.tree = tree;
    result
}

fn resolve_object(
    map: &mut Map<String, Value>,
    prefix: &str,
    config: &mut LayeredConfig,
    env: &BTreeMap<String, String>,
    file_root: Option<&Path>,
) -> Result<(), ConfigError> {
    resolve_file_keys(map, prefix, config, file_root)?;
    for (key, value) in map.iter_mut() {
        let path = dotted_key(prefix, key);
        match value {
            Value::Object(child) => resolve_object(child, &path, config, env, file_root)?,
            Value::String(text) if text.contains("${") => {
                *text = expand_placeholders(text, env).map_err(|message| ConfigError::Invalid {
                    origin: config
                        .origin_of(&path)
                        .map(ToString::to_string)
                        .unwrap_or_else(|| "default".into()),
                    key: path.clone(),
                    message,
                })?;
                config.secret_paths.insert(path);
            }
            _ => {}
        }
    }
    Ok(())
}

/// Every `<key>_file: /path` of this object becomes `<key>: <file contents>`, a secret whose
/// origin names the file — unless a higher layer set `<key>` itself.
fn resolve_file_keys(
    map: &mut Map<String, Value>,
    prefix: &str,
    config: &mut LayeredConfig,
    file_root: Option<&Path>,
) -> Result<(), ConfigError> {
    let file_keys: Vec<String> = map
        .keys()
        .filter(|key| key.ends_with(FILE_SUFFIX) && key.len() > FILE_SUFFIX.len())
        .cloned()
        .collect();
    for file_key in file_keys {
        let file_path = dotted_key(prefix, &file_key);
        let base_key = file_key[..file_key.len() - FILE_SUFFIX.len()].to_string();
        let base_path = dotted_key(prefix, &base_key);
        let file_origin = config.origin_of(&file_path).cloned();
        let value = map.remove(&file_key).unwrap_or(Value::Null);
        forget_origins(&mut config.origins, &file_path);
        let Some(file_origin) = file_origin else {
            continue;
        };
        let file = match value {
            Value::Null => continue,
            Value::String(file) => file,
            _ => {
                return Err(ConfigError::Invalid {
                    key: file_path,
                    origin: file_origin.source,
                    message: "a *_file key must be a file path".into(),
                });
            }
        };
        // A plain value set in a higher layer beats a file reference from a lower one.
        let base_is_set = map.get(&base_key).is_some_and(|value| !value.is_null());
        if base_is_set
            && config
                .origin_of(&base_path)
                .is_some_and(|origin| origin.layer > file_origin.layer)
        {
            continue;
        }
        let contents =
            read_secret_file(&file, file_root).map_err(|message| ConfigError::Invalid {
                key: file_path.clone(),
                origin: file_origin.source.clone(),
                message,
            })?;
        map.insert(base_key, Value::String(contents));
        forget_origins(&mut config.origins, &base_path);
        config.origins.insert(
            base_path.clone(),
            Origin {
                layer: file_origin.layer,
                source: format!("file {file} (via {file_path} in {file_origin})"),
            },
        );
        config.secret_paths.insert(base_path);
    }
    Ok(())
}

/// A secret file's contents without the trailing newline editors add; `file_root` (tests)
/// stands in for `/`.
fn read_secret_file(file: &str, file_root: Option<&Path>) -> Result<String, String> {
    let read_from = match file_root {
        Some(root) => root.join(Path::new(file).strip_prefix("/").unwrap_or(Path::new(file))),
        None => PathBuf::from(file),
    };
    let contents = std::fs::read_to_string(&read_from)
        .map_err(|err| format!("cannot read secret file {file}: {err}"))?;
    Ok(contents.trim_end_matches(['\n', '\r']).to_string())
}

/// `${secret:NAME}`: how the central configuration refers to a secret it must not hold.
const SECRET_REFERENCE: &str = "secret:";
/// Where `${secret:NAME}` files are mounted; `VIVESPHERE_SECRETS_DIR` overrides it.
const DEFAULT_SECRETS_DIR: &str = "/var/run/secrets/vivesphere/config";

fn is_secret_name_valid(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `text` is a valid `${secret:NAME}` reference and nothing else.
pub fn is_secret_reference(text: &str) -> bool {
    text.strip_prefix("${secret:")
        .and_then(|rest| rest.strip_suffix('}'))
        .is_some_and(is_secret_name_valid)
}

/// The value of secret `NAME`: the environment variable `NAME`, else the file `NAME` in the
/// secrets directory.
fn resolve_secret_reference(name: &str, env: &BTreeMap<String, String>) -> Result<String, String> {
    if !is_secret_name_valid(name) {
        return Err(format!(
            "`${{secret:{name}}}` is not a valid secret reference"
        ));
    }
    if let Some(value) = env.get(name) {
        return Ok(value.clone());
    }
    let dir = env
        .get("VIVESPHERE_SECRETS_DIR")
        .map(String::as_str)
        .unwrap_or(DEFAULT_SECRETS_DIR);
    let path = Path::new(dir).join(name);
    std::fs::read_to_string(&path)
        .map(|text| text.trim_end_matches(['\n', '\r']).to_string())
        .map_err(|_| {
            format!(
                "secret {name} is unresolved: set the environment variable {name} or mount {}",
                path.display()
            )
        })
}

/// Expands every `${NAME}` in `text` from `env`, and every `${secret:NAME}` from the
/// environment or the secrets directory.
fn expand_placeholders(text: &str, env: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "unterminated ${ placeholder".to_string())?;
        let name = &after[..end];
        if let Some(secret) = name.strip_prefix(SECRET_REFERENCE) {
            out.push_str(&resolve_secret_reference(secret, env)?);
            rest = &after[end + 1..];
            continue;
        }
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!("`${{{name}}}` is not a valid placeholder"));
        }
        let value = env.get(name).ok_or_else(|| {
            format!("placeholder ${{{name}}} is unresolved: environment variable {name} is not set")
        })?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn placeholders_expand_from_the_environment() {
        let vars = env(&[("DB_PASS", "s3cret"), ("DB_HOST", "db")]);
        assert_eq!(
            expand_placeholders("postgres://u:${DB_PASS}@${DB_HOST}/x", &vars).unwrap(),
            "postgres://u:s3cret@db/x"
        );
    }

    #[test]
    fn secret_references_resolve_from_the_environment_then_the_secrets_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("WEBHOOK_TOKEN"), "from-file\n").unwrap();
        let vars = env(&[
            ("API_KEY", "from-env"),
            ("VIVESPHERE_SECRETS_DIR", dir.path().to_str().unwrap()),
        ]);
        assert_eq!(
            expand_placeholders("${secret:API_KEY}", &vars).unwrap(),
            "from-env"
        );
        assert_eq!(
            expand_placeholders("${secret:WEBHOOK_TOKEN}", &vars).unwrap(),
            "from-file"
        );
        let err = expand_placeholders("${secret:MISSING}", &vars).unwrap_err();
        assert!(err.contains("MISSING"), "{err}");
        assert!(is_secret_reference("${secret:API_KEY}"));
        assert!(!is_secret_reference("${API_KEY}"));
        assert!(!is_secret_reference("x${secret:API_KEY}"));
        assert!(!is_secret_reference("${secret:a-b}"));
    }

    #[test]
    fn env_var_names_the_variable_that_sets_a_key() {
        assert_eq!(env_var("database.url"), "VIVESPHERE_DATABASE__URL");
        assert_eq!(
            env_var("bot_manager.x_api.base_url"),
            "VIVESPHERE_BOT_MANAGER__X_API__BASE_URL"
        );
        let layers = env_layers(&env(&[(&env_var("queue.namespace"), "t1")])).unwrap();
        assert_eq!(layers.len(), 1);
        assert_eq!(
            Value::Object(layers[0].1.clone()),
            serde_json::json!({"queue": {"namespace": "t1"}})
        );
    }

    #[test]
    fn unresolved_placeholder_names_the_variable() {
        let err = expand_placeholders("${MISSING_ONE}", &env(&[])).unwrap_err();
        assert!(err.contains("MISSING_ONE"), "{err}");
    }

    #[test]
    fn malformed_placeholders_are_rejected() {
        assert!(expand_placeholders("${", &env(&[])).is_err());
        assert!(expand_placeholders("${1ABC}", &env(&[("1ABC", "x")])).is_err());
        assert!(expand_placeholders("${A-B}", &env(&[])).is_err());
    }

    #[test]
    fn env_values_are_typed_as_yaml_scalars() {
        assert_eq!(parse_env_value("30"), Value::from(30));
        assert_eq!(parse_env_value("true"), Value::from(true));
        assert_eq!(
            parse_env_value("info,sqlx=warn"),
            Value::from("info,sqlx=warn")
        );
        assert_eq!(parse_env_value(""), Value::from(""));
        assert_eq!(parse_env_value("null"), Value::Null);
    }

    #[test]
    fn variables_that_are_not_read_are_named_with_the_one_meant() {
        let defaults =
            serde_json::json!({"server": {"listen": "x"}, "bot_manager": {"grace_seconds": 1}});
        let loader = ConfigLoader::new(
            ".",
            env(&[
                ("VIVESPHERE_SERVER_LISTEN", "0.0.0.0:1"),
                ("VIVESPHERE_BOT_MANAGER_GRACE_SECONDS", "5"),
                ("VIVESPHERE_NONSENSE", "1"),
                ("VIVESPHERE_SERVER__LISTEN", "0.0.0.0:1"),
                ("VIVESPHERE_CONFIG_DIR", "config"),
                ("VIVESPHERE_TEST_DATABASE_URL", "postgres://x"),
                ("OTHER_VAR", "1"),
            ]),
            defaults,
        )
        .unwrap();
        let ignored = loader.ignored_env_vars();
        assert_eq!(ignored.len(), 3, "{ignored:?}");
        assert!(
            ignored[0].contains("did you mean VIVESPHERE_BOT_MANAGER__GRACE_SECONDS?"),
            "{ignored:?}"
        );
        assert!(
            ignored[1].starts_with("VIVESPHERE_NONSENSE is not read"),
            "{ignored:?}"
        );
        assert!(!ignored[1].contains("did you mean"), "{ignored:?}");
        assert!(
            ignored[2].contains("did you mean VIVESPHERE_SERVER__LISTEN?"),
            "{ignored:?}"
        );
    }

    #[test]
    fn a_section_a_target_does_not_use_is_left_out_and_its_secret_file_not_read() {
        let defaults = serde_json::json!({"database": {"url": "sqlite::memory:"}});
        let missing = [("VIVESPHERE_DATABASE__URL_FILE", "/nonexistent/database/url")];
        let loader = ConfigLoader::new(".", env(&missing), defaults).unwrap();
        assert!(loader.load(Some("console")).is_err(), "the file is read");
        let loader = loader.without_section_for("console", "database");
        let config = loader.load(Some("console")).unwrap();
        assert!(config.get("database.url").is_none(), "the section is gone");
        assert!(
            loader.load(Some("logging")).is_err(),
            "other targets still read it"
        );
    }

    #[test]
    fn env_variables_without_a_double_underscore_are_not_config() {
        let layers = env_layers(&env(&[
            ("VIVESPHERE_TEST_DATABASE_URL", "postgres://x"),
            ("VIVESPHERE_SERVER__SHUTDOWN_TIMEOUT", "5"),
            ("PATH", "/bin"),
        ]))
        .unwrap();
        assert_eq!(layers.len(), 1);
        assert_eq!(layers[0].1["server"]["shutdown_timeout"], Value::from(5));
    }

    #[test]
    fn empty_env_key_segment_is_an_error() {
        let err = env_layers(&env(&[("VIVESPHERE_SERVER____X", "1")])).unwrap_err();
        assert!(err.to_string().contains("VIVESPHERE_SERVER____X"));
    }

    #[test]
    fn profile_parses_only_known_names() {
        assert_eq!(Profile::parse("staging").unwrap(), Profile::Staging);
        let err = Profile::parse("prod").unwrap_err().to_string();
        assert!(err.contains("development, staging or production"), "{err}");
    }
}
