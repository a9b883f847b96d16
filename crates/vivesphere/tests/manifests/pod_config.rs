//! A service's configuration as its pod would load it: the pod's mounted ConfigMaps and
//! Secrets laid out under a directory as the kubelet would mount them, the container's
//! environment, then the binary's own `config check` and loader over them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use serde_json::Value;
use vivesphere::app::{AppOptions, load_config};

use crate::checks::served_targets;
use crate::model::{Workload, find, items, keys_by_name, kind};

/// What the Dockerfile says about the image.
pub struct Image {
    pub workdir: String,
    pub config_dir: String,
    pub user: u64,
    pub exposed: Vec<u64>,
    /// The default command (`CMD [...]`), what `docker run <image>` runs.
    pub command: Vec<String>,
}

pub fn image() -> Image {
    let text = std::fs::read_to_string(crate::render::repo_root().join("Dockerfile"))
        .expect("the Dockerfile");
    // The last stage is the image.
    let last_stage = text.rsplit("\nFROM ").next().unwrap_or_default();
    let value = |instruction: &str| -> Vec<String> {
        last_stage
            .lines()
            .filter_map(|line| line.strip_prefix(instruction))
            .map(|rest| rest.trim().to_string())
            .collect()
    };
    let config_dir = value("ENV ")
        .iter()
        .find_map(|env| {
            env.strip_prefix("VIVESPHERE_CONFIG_DIR=")
                .map(str::to_string)
        })
        .unwrap_or_default();
    let user = value("USER ")
        .last()
        .and_then(|user| user.split(':').next().and_then(|uid| uid.parse().ok()))
        .unwrap_or(0);
    Image {
        workdir: value("WORKDIR ").last().cloned().unwrap_or_default(),
        config_dir,
        user,
        exposed: value("EXPOSE ")
            .iter()
            .filter_map(|port| port.parse().ok())
            .collect(),
        command: value("CMD ")
            .last()
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_default(),
    }
}

/// A pod's files under a temporary directory.
pub struct PodFiles {
    pub root: tempfile::TempDir,
    /// Mount paths (in the container) of writable volumes.
    pub writable: Vec<String>,
}

impl PodFiles {
    pub fn path(&self, in_container: &str) -> PathBuf {
        self.root.path().join(in_container.trim_start_matches('/'))
    }

    /// Whether a path (absolute, or relative to the working directory) is on a writable
    /// volume.
    pub fn is_writable(&self, path: &str, workdir: &str) -> bool {
        let absolute = if path.starts_with('/') {
            PathBuf::from(path)
        } else {
            Path::new(workdir).join(path)
        };
        self.writable
            .iter()
            .any(|mount| absolute.starts_with(mount))
    }
}

/// A ConfigMap's or Secret's files: key → contents (Secrets' `data` decoded).
fn files_of(object: &Value) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    for (key, value) in object["data"].as_object().into_iter().flatten() {
        let text = value.as_str().unwrap_or_default();
        let contents = if kind(object) == "Secret" {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .unwrap_or_default();
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            text.to_string()
        };
        files.insert(key.clone(), contents);
    }
    for (key, value) in object["stringData"].as_object().into_iter().flatten() {
        files.insert(key.clone(), value.as_str().unwrap_or_default().to_string());
    }
    files
}

/// Lays out what `container` of `workload` mounts. Secrets come from the render, or from
/// `provided` where the render has none.
pub fn lay_out(
    workload: &Workload,
    container: &Value,
    docs: &[Value],
    provided: &[Value],
) -> Result<PodFiles, String> {
    let secrets_from = if keys_by_name(docs, "Secret").is_empty() {
        provided
    } else {
        docs
    };
    let files = PodFiles {
        root: tempfile::tempdir().map_err(|err| err.to_string())?,
        writable: Vec::new(),
    };
    let mut writable = Vec::new();
    for mount in items(&container["volumeMounts"]) {
        let mount_path = mount["mountPath"].as_str().unwrap_or_default();
        let dir = files.path(mount_path);
        std::fs::create_dir_all(&dir).map_err(|err| err.to_string())?;
        let volume_name = mount["name"].as_str().unwrap_or_default();
        let volume = workload
            .volume(volume_name)
            .ok_or_else(|| format!("no volume {volume_name}"))?;
        let mut sources: Vec<(&str, &Value, &str)> = Vec::new();
        if !volume["configMap"].is_null() {
            sources.push(("ConfigMap", &volume["configMap"], "name"));
        }
        if !volume["secret"].is_null() {
            sources.push(("Secret", &volume["secret"], "secretName"));
        }
        for source in items(&volume["projected"]["sources"]) {
            if !source["configMap"].is_null() {
                sources.push(("ConfigMap", &source["configMap"], "name"));
            }
            if !source["secret"].is_null() {
                sources.push(("Secret", &source["secret"], "name"));
            }
        }
        for (source_kind, source, name_field) in sources {
            let from = if source_kind == "Secret" {
                secrets_from
            } else {
                docs
            };
            let Some(object) = find(
                from,
                source_kind,
                source[name_field].as_str().unwrap_or_default(),
            ) else {
                continue; // optional, or reported by references_exist
            };
            let contents = files_of(object);
            let wanted: Vec<(String, String)> = if items(&source["items"]).is_empty() {
                contents
                    .keys()
                    .map(|key| (key.clone(), key.clone()))
                    .collect()
            } else {
                items(&source["items"])
                    .iter()
                    .map(|item| {
                        (
                            item["key"].as_str().unwrap_or_default().to_string(),
                            item["path"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            };
            for (key, path) in wanted {
                let Some(text) = contents.get(&key) else {
                    continue;
                };
                let file = dir.join(&path);
                std::fs::create_dir_all(file.parent().unwrap()).map_err(|err| err.to_string())?;
                std::fs::write(&file, text).map_err(|err| err.to_string())?;
            }
        }
        if !volume["emptyDir"].is_null() || !volume["persistentVolumeClaim"].is_null() {
            writable.push(mount_path.to_string());
        }
    }
    Ok(PodFiles { writable, ..files })
}

/// The container's plain environment (`valueFrom` entries are the cluster's to fill in).
fn environment(container: &Value) -> Vec<(String, String)> {
    items(&container["env"])
        .iter()
        .filter_map(|env| {
            Some((
                env["name"].as_str()?.to_string(),
                env["value"].as_str()?.to_string(),
            ))
        })
        .collect()
}

/// Each served target's configuration, as its pod loads it, passes `vivesphere config
/// check`, and points at what the pod and the cluster have: database and queue Services,
/// writable directories for what the service writes, its client secret, its KEKs, and a
/// termination grace period that covers the drain.
pub fn config_problems(docs: &[Value], provided: &[Value], binary: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let image = image();
    for (target, (workload, container)) in served_targets(docs) {
        let who = format!("{} ({target})", crate::model::ident(workload.doc));
        let files = match lay_out(&workload, &container, docs, provided) {
            Ok(files) => files,
            Err(err) => {
                problems.push(format!("{who}: cannot lay out its volumes: {err}"));
                continue;
            }
        };
        let env = environment(&container);
        let config_dir_in_container = env
            .iter()
            .find(|(key, _)| key == "VIVESPHERE_CONFIG_DIR")
            .map(|(_, value)| value.clone())
            .unwrap_or_else(|| image.config_dir.clone());
        let config_dir = files.path(&config_dir_in_container);
        let output = Command::new(binary)
            .env_clear()
            .envs(env.iter().cloned())
            .arg("--config-dir")
            .arg(&config_dir)
            .args(["config", "check", "--target", &target, "--root"])
            .arg(files.root.path())
            .output()
            .expect("the vivesphere binary runs");
        if !output.status.success() {
            problems.push(format!(
                "{who}: `vivesphere config check` refuses the rendered configuration: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
            continue;
        }
        let options = AppOptions {
            config_dir,
            env,
            target: Some(target.clone()),
            listen: None,
            file_root: Some(files.root.path().to_path_buf()),
            log_level: None,
            clock: platform::Clock::system(),
        };
        let loaded = match load_config(&options) {
            Ok(loaded) => loaded,
            Err(err) => {
                problems.push(format!(
                    "{who}: the loader refuses what config check took: {err:#}"
                ));
                continue;
            }
        };
        let entry = &loaded.targets[0];
        problems.extend(
            settings_problems(docs, &files, &image, &target, entry)
                .into_iter()
                .map(|problem| format!("{who}: {problem}")),
        );
        problems.extend(
            grace_problems(
                &workload,
                &container,
                entry.platform.server.shutdown_timeout,
            )
            .into_iter()
            .map(|problem| format!("{who}: {problem}")),
        );
    }
    problems
}

fn settings_problems(
    docs: &[Value],
    files: &PodFiles,
    image: &Image,
    target: &str,
    entry: &vivesphere::app::TargetConfig,
) -> Vec<String> {
    let mut problems = Vec::new();
    let platform = &entry.platform;
    let profile = entry.config.profile();
    let service_at = |url: &str, what: &str, problems: &mut Vec<String>| {
        let Ok(parsed) = reqwest::Url::parse(url) else {
            problems.push(format!("{what} {url:?} is not a URL"));
            return;
        };
        let host = parsed.host_str().unwrap_or_default();
        let port = parsed.port().unwrap_or_default();
        let served = find(docs, "Service", host).is_some_and(|service| {
            items(&service["spec"]["ports"])
                .iter()
                .any(|p| p["port"] == port)
        });
        if !served {
            problems.push(format!(
                "{what} is {host}:{port}, and no Service of the render serves it"
            ));
        }
    };
    if profile != platform::config::Profile::Development {
        if platform.queue.kind != platform::config::QueueKind::Nats {
            problems.push("the cluster profiles must use NATS".into());
        } else {
            service_at(&platform.queue.url, "queue.url", &mut problems);
            if let Some(host) = reqwest::Url::parse(&platform.queue.url)
                .ok()
                .and_then(|url| url.host_str().map(str::to_string))
            {
                problems.extend(crate::checks::queue_cluster_problems(
                    docs,
                    &host,
                    (
                        platform.queue.stream_replicas,
                        platform::queue::store_reservation(&platform.queue),
                    ),
                ));
            }
        }
        if entry.info.uses_database {
            match &platform.database.url {
                None => {
                    problems.push("no database.url: each replica would have its own SQLite".into())
                }
                Some(url) => service_at(url.expose(), "database.url", &mut problems),
            }
        }
    }
    let mut written = vec![("telemetry.spill_dir", platform.telemetry.spill_dir.clone())];
    if platform.config_client.enabled {
        written.push((
            "config_client.cache_dir",
            platform.config_client.cache_dir.clone(),
        ));
    }
    if profile == platform::config::Profile::Development || !entry.info.uses_database {
        written.push((
            "database.path",
            platform.database.path.replace("{service}", target),
        ));
    }
    for (key, path) in written {
        if !files.is_writable(&path, &image.workdir) {
            problems.push(format!("{key} {path} is not on a writable volume"));
        }
    }
    let declared_clients: BTreeSet<String> = authentication::Settings::default()
        .service_clients
        .into_iter()
        .map(|client| client.client_id)
        .collect();
    let secrets_dir = &platform.auth.service_secrets_dir;
    let expected_clients: Vec<&String> = if target == authentication::NAME {
        declared_clients.iter().collect()
    } else {
        declared_clients.iter().filter(|id| *id == target).collect()
    };
    if profile != platform::config::Profile::Development {
        for client in expected_clients {
            let file = files.path(&format!("{secrets_dir}/{client}.secret"));
            if !file.is_file() {
                problems.push(format!(
                    "no client secret {secrets_dir}/{client}.secret is mounted"
                ));
            }
        }
    }
    if target == secure_bot_data::NAME && profile != platform::config::Profile::Development {
        let kek_dir = entry
            .config
            .get("secure_bot_data.kek_dir")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let has_version = std::fs::read_dir(files.path(&kek_dir))
            .map(|entries| {
                entries
                    .flatten()
                    .any(|entry| entry.file_name().to_string_lossy().parse::<u32>().is_ok())
            })
            .unwrap_or(false);
        if !has_version {
            problems.push(format!(
                "no KEK version file is mounted in secure_bot_data.kek_dir {kek_dir}"
            ));
        }
    }
    problems
}

/// The kubelet waits `terminationGracePeriodSeconds` after the preStop hook starts: the
/// hook's sleep plus the drain (`server.shutdown_timeout`) must fit, with at most 15 s more.
fn grace_problems(workload: &Workload, container: &Value, shutdown_timeout: u64) -> Vec<String> {
    let grace = workload.pod["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap_or(30);
    let pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .unwrap_or(0);
    let needed = pre_stop + shutdown_timeout;
    if grace < needed || grace > needed + 15 {
        vec![format!(
            "terminationGracePeriodSeconds is {grace}; preStop {pre_stop} s + server.shutdown_timeout {shutdown_timeout} s want {needed}..{}",
            needed + 15
        )]
    } else {
        Vec::new()
    }
}

/// The image runs as the user the manifests set, with the config directory where they mount
/// it, a working directory on a writable volume, and exposes the binary's port.
pub fn image_problems(docs: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let image = image();
    let port = u64::from(platform::server::SERVICE_PORT);
    if image.exposed != [port] {
        problems.push(format!(
            "the Dockerfile exposes {:?}, the binary listens on {port}",
            image.exposed
        ));
    }
    if image.user < 10_000 {
        problems.push(format!("the image's user {} is below 10000", image.user));
    }
    // A container is reached through its network interface, never its loopback: `docker run
    // -p 8000:8000 <image>` must answer.
    let all_interfaces = format!("0.0.0.0:{port}");
    let listens = image
        .command
        .windows(2)
        .any(|w| w[0] == "--listen" && w[1] == all_interfaces);
    if image.command.first().map(String::as_str) != Some("serve") || !listens {
        problems.push(format!(
            "the image's default command is {:?}; it must serve on {all_interfaces}",
            image.command
        ));
    }
    for (target, (workload, container)) in served_targets(docs) {
        let who = format!("{} ({target})", crate::model::ident(workload.doc));
        let uid = container["securityContext"]["runAsUser"]
            .as_u64()
            .or(workload.pod["securityContext"]["runAsUser"].as_u64());
        if uid != Some(image.user) {
            problems.push(format!(
                "{who} runs as {uid:?}, the image's user is {}",
                image.user
            ));
        }
        let mounts: Vec<(&str, &str)> = items(&container["volumeMounts"])
            .iter()
            .map(|m| {
                (
                    m["mountPath"].as_str().unwrap_or_default(),
                    m["name"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        let config_mount = mounts.iter().find(|(path, _)| *path == image.config_dir);
        if config_mount.is_none() {
            problems.push(format!(
                "{who}: nothing is mounted at the image's config directory {}",
                image.config_dir
            ));
        }
        let workdir_writable = mounts.iter().any(|(path, volume)| {
            *path == image.workdir
                && workload.volume(volume).is_some_and(|v| {
                    !v["emptyDir"].is_null() || !v["persistentVolumeClaim"].is_null()
                })
        });
        if !workdir_writable {
            problems.push(format!(
                "{who}: the working directory {} is not a writable volume",
                image.workdir
            ));
        }
    }
    problems
}
