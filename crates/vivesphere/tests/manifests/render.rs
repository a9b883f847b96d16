//! Rendering: every overlay and test scenario under infrastructure/kubernetes through
//! `kubectl kustomize`, once per test run, parsed into one JSON value per document.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

pub fn k8s_dir() -> PathBuf {
    repo_root().join("infrastructure/kubernetes")
}

/// One rendered overlay or scenario.
pub struct Scenario {
    /// `overlays/prod`, `tests/minimal`, …
    pub name: String,
    pub docs: Vec<Value>,
}

impl Scenario {
    pub fn is_overlay(&self) -> bool {
        self.name.starts_with("overlays/")
    }
}

/// Every YAML document of a multi-document text.
pub fn parse_documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|document| Value::deserialize(document).expect("valid YAML"))
        .filter(|value| !value.is_null())
        .collect()
}

/// `kubectl kustomize <dir>`, parsed; the error is kubectl's message.
pub fn render(dir: &Path) -> Result<Vec<Value>, String> {
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .map_err(|err| format!("cannot run kubectl: {err}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    Ok(parse_documents(&String::from_utf8_lossy(&output.stdout)))
}

/// kubectl with kustomize v4 or later: the overlays use Kustomize components, which an older
/// kubectl (Debian's kubernetes-client is 1.20) cannot render at all.
pub fn kubectl_works() -> bool {
    let Ok(output) = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
    else {
        return false;
    };
    output.status.success() && kustomize_major(&String::from_utf8_lossy(&output.stdout)) >= Some(4)
}

/// The major version in kubectl's "Kustomize Version: v5.5.0" line.
fn kustomize_major(version_output: &str) -> Option<u32> {
    version_output
        .lines()
        .find_map(|line| line.strip_prefix("Kustomize Version: v"))
        .and_then(|version| version.split('.').next()?.parse().ok())
}

#[test]
fn kustomize_version_is_read_from_kubectl_output() {
    let current = "Client Version: v1.32.4\nKustomize Version: v5.5.0\n";
    assert_eq!(kustomize_major(current), Some(5));
    assert_eq!(kustomize_major("Client Version: v1.20.2\n"), None);
    assert_eq!(kustomize_major("Kustomize Version: v2.0.3\n"), Some(2));
}

/// Every overlay and scenario (not the broken-on-purpose ones), rendered once; `None`, with
/// a SKIPPED line, where kubectl is not installed.
pub fn scenarios() -> Option<&'static [Scenario]> {
    static SCENARIOS: OnceLock<Option<Vec<Scenario>>> = OnceLock::new();
    SCENARIOS
        .get_or_init(|| {
            if !kubectl_works() {
                eprintln!("=== SKIPPED Kubernetes manifest checks: no kubectl with kustomize v4+");
                return None;
            }
            generate_local_secrets();
            let mut scenarios = Vec::new();
            for group in ["overlays", "tests"] {
                let mut dirs: Vec<PathBuf> = std::fs::read_dir(k8s_dir().join(group))
                    .expect("the scenario folders")
                    .map(|entry| entry.expect("a folder entry").path())
                    .filter(|path| path.join("kustomization.yaml").is_file())
                    .collect();
                dirs.sort();
                for dir in dirs {
                    let name = format!("{group}/{}", dir.file_name().unwrap().to_string_lossy());
                    let docs = render(&dir)
                        .unwrap_or_else(|err| panic!("kubectl kustomize {name}: {err}"));
                    scenarios.push(Scenario { name, docs });
                }
            }
            Some(scenarios)
        })
        .as_deref()
}

/// The one scenario called `name` (for the broken-manifest tests).
pub fn scenario(name: &str) -> Option<&'static Scenario> {
    scenarios().map(|all| {
        all.iter()
            .find(|scenario| scenario.name == name)
            .unwrap_or_else(|| panic!("no scenario {name}"))
    })
}

/// The dev and kind overlays render random local Secrets; the script writes them once.
fn generate_local_secrets() {
    let script = k8s_dir().join("components/local-secrets/generate");
    let output = Command::new(&script)
        .output()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", script.display()));
    assert!(
        output.status.success(),
        "{}: {}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The placeholder Secrets that document what an operator provides in staging and
/// production (components/example-secrets).
pub fn example_secrets() -> Vec<Value> {
    let path = k8s_dir().join("components/example-secrets/secrets.yaml");
    parse_documents(&std::fs::read_to_string(&path).expect("the example Secrets"))
}
