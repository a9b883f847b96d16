//! Reading rendered Kubernetes documents: kinds, names, the pods inside workloads, their
//! containers, label selectors.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

pub fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or_default()
}

pub fn name(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap_or_default()
}

/// `Kind/name`, for messages.
pub fn ident(doc: &Value) -> String {
    format!("{}/{}", kind(doc), name(doc))
}

pub fn of_kind<'a>(docs: &'a [Value], wanted: &'a str) -> impl Iterator<Item = &'a Value> {
    docs.iter().filter(move |doc| kind(doc) == wanted)
}

pub fn find<'a>(docs: &'a [Value], wanted_kind: &str, wanted_name: &str) -> Option<&'a Value> {
    docs.iter()
        .find(|doc| kind(doc) == wanted_kind && name(doc) == wanted_name)
}

/// The items of an array field, or none.
pub fn items(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or_default()
}

/// A pod template inside a workload (or a bare Pod).
pub struct Workload<'a> {
    pub doc: &'a Value,
    /// The pod's `spec`.
    pub pod: &'a Value,
    /// The pod's labels.
    pub labels: &'a Value,
}

/// The pods operators create from custom resources, as the Pods they will be: a
/// CloudNativePG `Cluster`'s instances carry its inherited labels plus the operator's, and
/// serve PostgreSQL on the port `postgresql` (CloudNativePG's documented pod shape).
pub fn operator_pods(docs: &[Value]) -> Vec<Value> {
    of_kind(docs, "Cluster")
        .filter(|doc| {
            doc["apiVersion"]
                .as_str()
                .unwrap_or_default()
                .starts_with("postgresql.cnpg.io/")
        })
        .map(|cluster| {
            let mut labels = cluster["spec"]["inheritedMetadata"]["labels"].clone();
            if !labels.is_object() {
                labels = serde_json::json!({});
            }
            labels["cnpg.io/cluster"] = serde_json::json!(name(cluster));
            labels["cnpg.io/instanceRole"] = serde_json::json!("primary");
            serde_json::json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": format!("{}-1", name(cluster)), "labels": labels},
                "spec": {"containers": [{"name": "postgres", "ports": [
                    {"name": "postgresql", "containerPort": 5432},
                    {"name": "metrics", "containerPort": 9187},
                    {"name": "status", "containerPort": 8000},
                ]}]},
            })
        })
        .collect()
}

pub fn workloads(docs: &[Value]) -> Vec<Workload<'_>> {
    docs.iter()
        .filter_map(|doc| {
            let template = match kind(doc) {
                "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
                    &doc["spec"]["template"]
                }
                "CronJob" => &doc["spec"]["jobTemplate"]["spec"]["template"],
                "Pod" => doc,
                _ => return None,
            };
            Some(Workload {
                doc,
                pod: &template["spec"],
                labels: &template["metadata"]["labels"],
            })
        })
        .collect()
}

impl Workload<'_> {
    /// A Job's or CronJob's pod runs to completion: nothing to probe.
    pub fn runs_to_completion(&self) -> bool {
        matches!(kind(self.doc), "Job" | "CronJob")
    }

    /// Init containers first, then the containers; the flag says which.
    pub fn containers(&self) -> impl Iterator<Item = (&Value, bool)> {
        items(&self.pod["initContainers"])
            .iter()
            .map(|c| (c, true))
            .chain(items(&self.pod["containers"]).iter().map(|c| (c, false)))
    }

    /// A volume of the pod, or of a StatefulSet's claim templates (as a claim).
    pub fn volume(&self, name: &str) -> Option<Value> {
        let declared = items(&self.pod["volumes"])
            .iter()
            .find(|volume| volume["name"] == name)
            .cloned();
        declared.or_else(|| {
            items(&self.doc["spec"]["volumeClaimTemplates"])
                .iter()
                .find(|claim| claim["metadata"]["name"] == name)
                .map(|_| serde_json::json!({"name": name, "persistentVolumeClaim": {"claimName": name}}))
        })
    }

    /// The named container ports of every container.
    pub fn port_names(&self) -> BTreeMap<String, u64> {
        let mut ports = BTreeMap::new();
        for (container, _) in self.containers() {
            for port in items(&container["ports"]) {
                if let (Some(name), Some(number)) =
                    (port["name"].as_str(), port["containerPort"].as_u64())
                {
                    ports.insert(name.to_string(), number);
                }
            }
        }
        ports
    }

    pub fn port_numbers(&self) -> BTreeSet<u64> {
        self.port_names().values().copied().collect()
    }
}

/// Whether every `key: value` of `selector` is among `labels` (an empty selector matches).
pub fn labels_match(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .map(|wanted| wanted.iter().all(|(key, value)| labels[key] == *value))
        .unwrap_or(true)
}

/// The keys a ConfigMap or Secret holds, by name.
pub fn keys_by_name(docs: &[Value], wanted_kind: &str) -> BTreeMap<String, BTreeSet<String>> {
    of_kind(docs, wanted_kind)
        .map(|doc| {
            let keys = ["data", "binaryData", "stringData"]
                .iter()
                .filter_map(|field| doc[field].as_object())
                .flat_map(|map| map.keys().cloned())
                .collect();
            (name(doc).to_string(), keys)
        })
        .collect()
}

/// Whether `image` is this project's image (`vivesphere`, `…/vivesphere:tag`).
pub fn is_our_image(image: &str) -> bool {
    let without_tag = image.split(['@', ':']).next().unwrap_or_default();
    without_tag.rsplit('/').next() == Some("vivesphere")
}

/// The Secrets the ExternalSecrets among `docs` make the External Secrets Operator write: the
/// target's name and type, a key per `data` entry (values are the secret manager's).
pub fn secrets_from_external_secrets(docs: &[Value]) -> Vec<Value> {
    of_kind(docs, "ExternalSecret")
        .map(|external| {
            let target = &external["spec"]["target"];
            let keys: serde_json::Map<String, Value> = items(&external["spec"]["data"])
                .iter()
                .filter_map(|entry| entry["secretKey"].as_str())
                .map(|key| (key.to_string(), Value::String(String::new())))
                .collect();
            serde_json::json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": target["name"]},
                "type": target["template"]["type"],
                "data": keys,
            })
        })
        .collect()
}
