//! The Kubernetes manifests against the binary they deploy. Every overlay and scenario under
//! infrastructure/kubernetes is rendered with `kubectl kustomize` and held to rules whose
//! values come from the code, not from a copy: the port, health and metrics paths, target
//! names, the gateway's route table, the configuration loader, the metrics registry, the
//! Dockerfile. Each rule also gets a broken manifest it must reject.
//! Without kubectl these tests print `=== SKIPPED` and pass (CI has kubectl).

mod checks;
#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;
mod model;
mod pod_config;
mod render;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Value, json};

use model::{items, kind, name};
use render::{Scenario, example_secrets, scenario, scenarios};

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_vivesphere"))
}

/// Runs a rule over every overlay and scenario and fails naming every problem.
fn every_scenario(rule: &str, check: impl Fn(&Scenario) -> Vec<String>) {
    let Some(scenarios) = scenarios() else { return };
    let problems: Vec<String> = scenarios
        .iter()
        .flat_map(|scenario| {
            check(scenario)
                .into_iter()
                .map(|problem| format!("{}: {problem}", scenario.name))
        })
        .collect();
    assert!(problems.is_empty(), "{rule}:\n{}", problems.join("\n"));
}

/// A copy of a scenario with one thing broken, and the problems a rule reports on it: the
/// rule must report the planted mistake (a problem containing `expected`).
fn rejects(
    scenario_name: &str,
    break_it: impl FnOnce(&mut Vec<Value>),
    rule: impl Fn(&[Value]) -> Vec<String>,
    expected: &str,
) {
    let Some(original) = scenario(scenario_name) else {
        return;
    };
    assert!(
        rule(&original.docs).is_empty(),
        "the unbroken {scenario_name} must pass first: {:?}",
        rule(&original.docs)
    );
    let mut docs = original.docs.clone();
    break_it(&mut docs);
    let problems = rule(&docs);
    assert!(
        problems.iter().any(|problem| problem.contains(expected)),
        "the broken {scenario_name} should be reported with {expected:?}; got {problems:#?}"
    );
}

fn doc_mut<'a>(docs: &'a mut [Value], wanted_kind: &str, wanted_name: &str) -> &'a mut Value {
    docs.iter_mut()
        .find(|doc| kind(doc) == wanted_kind && name(doc) == wanted_name)
        .unwrap_or_else(|| panic!("no {wanted_kind}/{wanted_name}"))
}

fn at<'a>(doc: &'a mut Value, pointer: &str) -> &'a mut Value {
    doc.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("nothing at {pointer}"))
}

/// What the streams reserve on each NATS server with the default settings.
fn reservation() -> u64 {
    platform::queue::store_reservation(&platform::config::QueueSettings::default())
}

fn targets() -> Vec<&'static str> {
    vivesphere::registry::target_names()
}

// ---- what is rendered ---------------------------------------------------------------

#[test]
fn the_four_overlays_and_the_scenarios_render() {
    let Some(scenarios) = scenarios() else { return };
    let names: BTreeSet<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
    for wanted in [
        "overlays/dev",
        "overlays/staging",
        "overlays/prod",
        "overlays/kind",
        "tests/minimal",
        "tests/all-components",
        "tests/kong-ingress-controller",
    ] {
        assert!(names.contains(wanted), "{wanted} missing from {names:?}");
    }
    for scenario in scenarios {
        assert!(
            scenario.docs.iter().any(|doc| kind(doc) == "Deployment"),
            "{} renders no Deployment",
            scenario.name
        );
    }
}

#[test]
fn every_service_runs_in_every_overlay_and_prod_runs_the_production_profile() {
    let Some(scenarios) = scenarios() else { return };
    for scenario in scenarios.iter().filter(|s| s.is_overlay()) {
        let served = checks::served_targets(&scenario.docs);
        for service in [
            authentication::NAME,
            bot_manager::NAME,
            configuration::NAME,
            log_service::NAME,
            secure_bot_data::NAME,
        ] {
            let Some((_, container)) = served.get(service) else {
                panic!("{}: nothing serves {service}", scenario.name);
            };
            let profile = items(&container["env"])
                .iter()
                .find(|env| env["name"] == "ENV")
                .map(|env| env["value"].clone());
            let expected = if scenario.name == "overlays/prod" {
                "production"
            } else {
                "staging"
            };
            assert_eq!(
                profile,
                Some(json!(expected)),
                "{}: {service}",
                scenario.name
            );
        }
        let fake_x = served.contains_key(fake_x::NAME);
        let local = ["overlays/dev", "overlays/kind"].contains(&scenario.name.as_str());
        assert_eq!(
            fake_x, local,
            "{}: the fake X runs in local clusters only",
            scenario.name
        );
    }
}

#[test]
fn released_overlays_run_this_version_and_say_so_in_their_labels() {
    let Some(scenarios) = scenarios() else { return };
    for scenario in scenarios.iter().filter(|s| s.is_overlay()) {
        for workload in model::workloads(&scenario.docs) {
            let label = &workload.labels["app.kubernetes.io/version"];
            for (container, _) in workload.containers() {
                let image = container["image"].as_str().unwrap_or_default();
                if !model::is_our_image(image) {
                    continue;
                }
                let tag = image
                    .rsplit_once(':')
                    .map(|(_, tag)| tag)
                    .unwrap_or_default();
                assert_eq!(
                    label,
                    &json!(tag),
                    "{}: {} runs {image}",
                    scenario.name,
                    model::ident(workload.doc)
                );
                if ["overlays/staging", "overlays/prod"].contains(&scenario.name.as_str()) {
                    assert_eq!(
                        tag,
                        env!("CARGO_PKG_VERSION"),
                        "{}: a release runs the crate's version",
                        scenario.name
                    );
                }
            }
        }
    }
}

#[test]
fn local_secrets_have_the_names_and_keys_of_the_examples() {
    let Some(kind_overlay) = scenario("overlays/kind") else {
        return;
    };
    let local = model::keys_by_name(&kind_overlay.docs, "Secret");
    let mut examples = model::keys_by_name(&example_secrets(), "Secret");
    // Only the cloudnative-pg component uses them, and no local overlay does.
    examples.remove("postgres-owner");
    examples.remove("postgres-backup-store");
    assert_eq!(local, examples);
}

const EXTERNAL_SECRETS_SCENARIOS: [&str; 2] =
    ["tests/external-secrets-vault", "tests/external-secrets-aws"];

/// A secret manager through the External Secrets Operator replaces the hand-made Secrets
/// with no Deployment changed: its ExternalSecrets produce exactly the documented Secrets,
/// with their types and keys, from a store the overlay defines, and every Secret and key
/// a pod uses is among them.
#[test]
fn external_secrets_produce_every_secret_and_key_the_pods_use() {
    let examples = example_secrets();
    for scenario_name in EXTERNAL_SECRETS_SCENARIOS {
        let Some(rendered) = scenario(scenario_name) else {
            return;
        };
        let produced = model::secrets_from_external_secrets(&rendered.docs);
        assert_eq!(
            model::keys_by_name(&produced, "Secret"),
            model::keys_by_name(&examples, "Secret"),
            "{scenario_name}"
        );
        for secret in &produced {
            let example = model::find(&examples, "Secret", name(secret)).unwrap();
            assert_eq!(
                secret["type"],
                example["type"],
                "{scenario_name}: {}",
                name(secret)
            );
        }
        let problems = checks::references_exist(&rendered.docs, &produced);
        assert!(problems.is_empty(), "{scenario_name}: {problems:#?}");
        for external in model::of_kind(&rendered.docs, "ExternalSecret") {
            let store = external["spec"]["secretStoreRef"]["name"].as_str().unwrap();
            assert!(
                model::find(&rendered.docs, "SecretStore", store).is_some(),
                "{scenario_name}: {} reads from SecretStore/{store}, which is not there",
                name(external)
            );
        }
    }
}

#[test]
fn an_external_secret_that_leaves_out_a_key_is_reported() {
    let Some(rendered) = scenario(EXTERNAL_SECRETS_SCENARIOS[0]) else {
        return;
    };
    let mut docs = rendered.docs.clone();
    let external = doc_mut(&mut docs, "ExternalSecret", "vivesphere-database");
    at(external, "/spec/data")
        .as_array_mut()
        .unwrap()
        .retain(|entry| entry["secretKey"] != "logging");
    let produced = model::secrets_from_external_secrets(&docs);
    let problems = checks::references_exist(&docs, &produced);
    assert!(
        problems
            .iter()
            .any(|problem| problem.contains("vivesphere-database") && problem.contains("logging")),
        "{problems:#?}"
    );
}

#[test]
fn a_local_overlay_without_generated_secrets_names_the_generator() {
    if scenarios().is_none() {
        return;
    }
    // A fresh clone: the manifests (and the config they include) without what `generate`
    // writes.
    let clone = tempfile::tempdir().unwrap();
    let repo = render::k8s_dir().join("../..");
    for folder in ["infrastructure", "config"] {
        let copied = std::process::Command::new("cp")
            .arg("-r")
            .arg(repo.join(folder))
            .arg(clone.path())
            .status()
            .unwrap();
        assert!(copied.success());
    }
    let k8s = clone.path().join("infrastructure/kubernetes");
    std::fs::remove_dir_all(k8s.join("components/local-secrets/run-generate-first")).unwrap();
    for overlay in ["dev", "kind"] {
        let err = render::render(&k8s.join("overlays").join(overlay)).unwrap_err();
        assert!(
            err.contains("components/local-secrets/run-generate-first: no such file"),
            "{overlay}: {err}"
        );
    }
}

/// ingress-nginx is retired (March 2026): the laptop path needs no Ingress controller at all.
/// Kong is the edge on a NodePort, which kind's cluster config maps to localhost:80.
#[test]
fn the_kind_overlay_needs_no_ingress_controller() {
    let Some(kind_overlay) = scenario("overlays/kind") else {
        return;
    };
    let rendered = serde_json::to_string(&kind_overlay.docs).unwrap();
    assert!(
        !rendered.contains("ingress-nginx"),
        "the kind overlay names ingress-nginx"
    );
    assert_eq!(
        model::of_kind(&kind_overlay.docs, "Ingress").count(),
        0,
        "an Ingress needs a controller"
    );
    let proxy = model::of_kind(&kind_overlay.docs, "Service")
        .find(|service| name(service) == "kong-proxy")
        .expect("the Service kong-proxy");
    assert_eq!(proxy["spec"]["type"], "NodePort");
    let node_port = &proxy["spec"]["ports"][0]["nodePort"];
    let cluster = render::parse_documents(
        &std::fs::read_to_string(render::k8s_dir().join("kind/cluster.yaml")).unwrap(),
    );
    let mappings = &cluster[0]["nodes"][0]["extraPortMappings"];
    assert_eq!(mappings[0]["containerPort"], *node_port, "{mappings}");
    assert_eq!(mappings[0]["hostPort"], 80);
}

// ---- references ---------------------------------------------------------------------

#[test]
fn every_referenced_configmap_secret_and_service_exists() {
    let provided = example_secrets();
    every_scenario("references", |s| {
        checks::references_exist(&s.docs, &provided)
    });
}

#[test]
fn a_missing_secret_or_key_is_reported() {
    let provided = example_secrets();
    let rule = |docs: &[Value]| checks::references_exist(docs, &provided);
    rejects(
        "tests/minimal",
        |docs| docs.retain(|doc| !(kind(doc) == "Secret" && name(doc) == "botdata-kek")),
        rule,
        "Secret \"botdata-kek\"",
    );
    rejects(
        "tests/minimal",
        |docs| {
            let deployment = doc_mut(docs, "Deployment", "logging");
            let volumes = at(deployment, "/spec/template/spec/volumes");
            for volume in volumes.as_array_mut().unwrap() {
                if volume["name"] == "database" {
                    volume["secret"]["items"][0]["key"] = json!("loging");
                }
            }
        },
        rule,
        "key \"loging\"",
    );
    rejects(
        "tests/minimal",
        |docs| {
            let deployment = doc_mut(docs, "Deployment", "bot-manager");
            *at(deployment, "/spec/template/spec/serviceAccountName") = json!("bots");
        },
        rule,
        "ServiceAccount \"bots\"",
    );
}

// ---- selectors and autoscaling ------------------------------------------------------

#[test]
fn service_selectors_match_pod_labels_and_named_ports() {
    every_scenario("selectors", |s| checks::selectors_match(&s.docs));
}

#[test]
fn a_selector_that_matches_nothing_is_reported() {
    rejects(
        "tests/all-components",
        |docs| {
            let service = doc_mut(docs, "Service", "logging");
            *at(service, "/spec/selector") = json!({"app.kubernetes.io/name": "loging"});
        },
        checks::selectors_match,
        "Service/logging: selector",
    );
    rejects(
        "tests/all-components",
        |docs| {
            let service = doc_mut(docs, "Service", "nats");
            *at(service, "/spec/ports/0/targetPort") = json!("nats-client");
        },
        checks::selectors_match,
        "targets \"nats-client\"",
    );
    rejects(
        "tests/all-components",
        |docs| {
            let policy = doc_mut(docs, "NetworkPolicy", "postgres");
            *at(policy, "/spec/podSelector/matchLabels") =
                json!({"app.kubernetes.io/name": "postgresql"});
        },
        checks::selectors_match,
        "NetworkPolicy/postgres: podSelector",
    );
}

#[test]
fn every_hpa_target_exists_and_owns_its_replicas() {
    every_scenario("HPA targets", |s| checks::hpa_targets_exist(&s.docs));
    let Some(prod) = scenario("overlays/prod") else {
        return;
    };
    assert!(
        model::of_kind(&prod.docs, "HorizontalPodAutoscaler").count() >= 5,
        "prod autoscales every service"
    );
}

#[test]
fn an_hpa_without_its_target_or_beside_replicas_is_reported() {
    rejects(
        "tests/all-components",
        |docs| {
            let hpa = doc_mut(docs, "HorizontalPodAutoscaler", "bot-manager");
            *at(hpa, "/spec/scaleTargetRef/name") = json!("bot-manger");
        },
        checks::hpa_targets_exist,
        "Rollout/bot-manger, which does not exist",
    );
    rejects(
        "tests/all-components",
        |docs| {
            let deployment = doc_mut(docs, "Deployment", "kong");
            deployment["spec"]["replicas"] = json!(3);
        },
        checks::hpa_targets_exist,
        "Deployment/kong sets replicas",
    );
}

/// Production releases go out as canaries that abort on their own metrics.
#[test]
fn every_rollout_runs_a_deployment_and_is_judged_by_its_canary_s_metrics() {
    every_scenario("canary", |s| checks::canary_contract(&s.docs));
    let Some(prod) = scenario("overlays/prod") else {
        return;
    };
    let rollouts: BTreeSet<&str> = model::of_kind(&prod.docs, "Rollout").map(name).collect();
    for target in [
        "authentication",
        "bot-manager",
        "configuration",
        "logging",
        "secure-bot-data",
    ] {
        assert!(rollouts.contains(target), "prod: no Rollout for {target}");
    }
}

#[test]
fn a_rollout_without_its_deployment_or_its_analysis_is_reported() {
    rejects(
        "overlays/prod",
        |docs| {
            let rollout = doc_mut(docs, "Rollout", "logging");
            *at(rollout, "/spec/workloadRef/name") = json!("loging");
        },
        checks::canary_contract,
        "runs Deployment/\"loging\", which does not exist",
    );
    rejects(
        "overlays/prod",
        |docs| {
            let rollout = doc_mut(docs, "Rollout", "logging");
            *at(rollout, "/spec/strategy/canary/analysis") = json!({});
        },
        checks::canary_contract,
        "a canary without analysis is never aborted",
    );
    rejects(
        "overlays/prod",
        |docs| {
            let deployment = doc_mut(docs, "Deployment", "configuration");
            deployment["spec"]["replicas"] = json!(3);
        },
        checks::canary_contract,
        "Deployment/configuration sets replicas",
    );
    rejects(
        "overlays/prod",
        |docs| {
            let template = doc_mut(docs, "AnalysisTemplate", "vivesphere-canary");
            let query = at(template, "/spec/metrics/0/provider/prometheus/query");
            let everyone = query
                .as_str()
                .unwrap()
                .replace(r#"rollouts_pod_template_hash="{{args.canary-hash}}""#, "");
            *query = json!(everyone);
        },
        checks::canary_contract,
        "measures every pod, not the canary's",
    );
}

/// Node autoscalers (Cluster Autoscaler, Karpenter) know which pods they may move.
#[test]
fn every_pod_says_whether_a_node_autoscaler_may_evict_it() {
    every_scenario("eviction", |s| checks::eviction_is_declared(&s.docs));
}

#[test]
fn a_pod_that_does_not_say_or_says_it_half_is_reported() {
    rejects(
        "overlays/prod",
        |docs| {
            let kong = doc_mut(docs, "Deployment", "kong");
            kong["spec"]["template"]["metadata"]["annotations"] = json!({});
        },
        checks::eviction_is_declared,
        "Deployment/kong has an emptyDir and does not say",
    );
    rejects(
        "overlays/kind",
        |docs| {
            let postgres = doc_mut(docs, "StatefulSet", "postgres");
            at(postgres, "/spec/template/metadata/annotations")
                .as_object_mut()
                .unwrap()
                .remove("karpenter.sh/do-not-disrupt");
        },
        checks::eviction_is_declared,
        "kept from the Cluster Autoscaler but not from Karpenter",
    );
}

// ---- the binary's own values --------------------------------------------------------

#[test]
fn ports_probes_and_targets_are_the_binarys() {
    let targets = targets();
    every_scenario("binary contract", |s| {
        checks::binary_contract(&s.docs, &targets)
    });
}

/// Staging and production migrate once per release, in a Job, and their pods only verify.
#[test]
fn every_service_that_only_verifies_its_schema_is_migrated_by_the_release_job() {
    every_scenario("migrations", |s| checks::migration_contract(&s.docs));
    for overlay in ["overlays/staging", "overlays/prod"] {
        let Some(rendered) = scenario(overlay) else {
            return;
        };
        assert!(
            model::find(&rendered.docs, "Job", "vivesphere-migrate").is_some(),
            "{overlay}: no migration Job"
        );
    }
}

#[test]
fn a_service_the_migration_job_leaves_out_is_reported() {
    rejects(
        "overlays/prod",
        |docs| {
            let job = doc_mut(docs, "Job", "vivesphere-migrate");
            let containers = at(job, "/spec/template/spec/containers");
            containers
                .as_array_mut()
                .unwrap()
                .retain(|c| c["name"] != "secure-bot-data");
        },
        checks::migration_contract,
        "secure-bot-data only verifies its schema",
    );
}

#[test]
fn a_probe_port_or_target_the_binary_does_not_have_is_reported() {
    let targets = targets();
    let rule = |docs: &[Value]| checks::binary_contract(docs, &targets);
    let container = "/spec/template/spec/containers/0";
    rejects(
        "tests/minimal",
        |docs| {
            let deployment = doc_mut(docs, "Deployment", "logging");
            *at(
                deployment,
                &format!("{container}/readinessProbe/httpGet/path"),
            ) = json!("/healthz");
        },
        rule,
        "readinessProbe asks \"/healthz\"",
    );
    rejects(
        "tests/minimal",
        |docs| {
            let deployment = doc_mut(docs, "Deployment", "configuration");
            *at(deployment, &format!("{container}/ports/0/containerPort")) = json!(8080);
        },
        rule,
        "port `http` is Some(8080)",
    );
    rejects(
        "tests/minimal",
        |docs| {
            let deployment = doc_mut(docs, "Deployment", "bot-manager");
            *at(deployment, &format!("{container}/args/2")) = json!("bots");
        },
        rule,
        "target \"bots\", which the binary does not have",
    );
    rejects(
        "tests/minimal",
        |docs| {
            let kong = doc_mut(docs, "Deployment", "kong");
            *at(kong, "/spec/template/spec/initContainers/0/args/3") = json!("http://auth:8000");
        },
        rule,
        "export-kong reads keys from",
    );
}

#[test]
fn kong_routes_match_the_gateway_route_table() {
    every_scenario("Kong routes", |s| {
        checks::kong_routes_match_the_route_table(&s.docs)
    });
}

#[test]
fn a_route_missing_from_kong_is_reported() {
    rejects(
        "tests/minimal",
        |docs| {
            let ingress = doc_mut(docs, "Ingress", "vivesphere");
            at(ingress, "/spec/rules/0/http/paths")
                .as_array_mut()
                .unwrap()
                .retain(|path| path["path"] != "/api/v1/logs");
        },
        checks::kong_routes_match_the_route_table,
        "Ingress/vivesphere routes",
    );
    rejects(
        "tests/kong-ingress-controller",
        |docs| {
            let ingress = doc_mut(docs, "Ingress", "secure-bot-data");
            *at(ingress, "/metadata/annotations/konghq.com~1plugins") =
                json!("rate-limiting,correlation-id");
        },
        checks::kong_routes_match_the_route_table,
        "Ingress/secure-bot-data: not behind the jwt plugin",
    );
    rejects(
        "tests/kong-ingress-controller",
        |docs| {
            let ingress = doc_mut(docs, "Ingress", "secure-bot-data-public");
            *at(ingress, "/metadata/annotations/konghq.com~1plugins") =
                json!("rate-limiting,correlation-id,security-headers");
        },
        checks::kong_routes_match_the_route_table,
        "Ingress/secure-bot-data-public: Kong's own answers lack the no-store-headers plugin",
    );
    rejects(
        "tests/kong-ingress-controller",
        |docs| {
            let ingress = doc_mut(docs, "Ingress", "authentication-public");
            at(ingress, "/spec/rules/0/http/paths")
                .as_array_mut()
                .unwrap()
                .retain(|path| path["path"] != "/api/v1/auth/login/mfa");
        },
        checks::kong_routes_match_the_route_table,
        "Ingress/authentication-public: public paths",
    );
}

// ---- Pod Security -------------------------------------------------------------------

#[test]
fn every_pod_meets_pod_security_restricted() {
    every_scenario("Pod Security restricted", |s| {
        checks::pod_security_restricted(&s.docs)
    });
}

#[test]
fn a_pod_below_restricted_is_reported() {
    let pod = "/spec/template/spec";
    rejects(
        "tests/minimal",
        |docs| {
            let nats = doc_mut(docs, "StatefulSet", "nats");
            *at(
                nats,
                &format!("{pod}/containers/0/securityContext/runAsUser"),
            ) = json!(1000);
        },
        checks::pod_security_restricted,
        "runAsUser 1000 is below 10000",
    );
    rejects(
        "tests/minimal",
        |docs| {
            let kong = doc_mut(docs, "Deployment", "kong");
            *at(
                kong,
                &format!("{pod}/initContainers/0/securityContext/readOnlyRootFilesystem"),
            ) = json!(false);
        },
        checks::pod_security_restricted,
        "container \"export-kong\": the root filesystem is writable",
    );
    rejects(
        "tests/minimal",
        |docs| {
            let deployment = doc_mut(docs, "Deployment", "authentication");
            at(deployment, pod)["automountServiceAccountToken"] = json!(true);
        },
        checks::pod_security_restricted,
        "the service-account token is mounted",
    );
    rejects(
        "tests/minimal",
        |docs| {
            let namespace = doc_mut(docs, "Namespace", "vivesphere");
            at(namespace, "/metadata/labels")
                .as_object_mut()
                .unwrap()
                .remove("pod-security.kubernetes.io/enforce");
        },
        checks::pod_security_restricted,
        "not enforced",
    );
}

// ---- configuration ------------------------------------------------------------------

#[test]
fn every_services_rendered_config_passes_config_check() {
    let provided = example_secrets();
    every_scenario("configuration", |s| {
        pod_config::config_problems(&s.docs, &provided, binary())
    });
}

#[test]
fn a_config_the_binary_refuses_or_that_misses_its_files_is_reported() {
    let provided = example_secrets();
    let rule = |docs: &[Value]| pod_config::config_problems(docs, &provided, binary());
    let container = "/spec/template/spec/containers/0";
    rejects(
        "tests/minimal",
        |docs| {
            let deployment = doc_mut(docs, "Deployment", "logging");
            at(deployment, &format!("{container}/env"))
                .as_array_mut()
                .unwrap()
                .push(json!({"name": "VIVESPHERE_SERVER__SHUTDOWN_TIMEOUT", "value": "soon"}));
        },
        rule,
        "`vivesphere config check` refuses",
    );
    rejects(
        "tests/minimal",
        |docs| {
            let deployment = doc_mut(docs, "Deployment", "configuration");
            at(deployment, &format!("{container}/volumeMounts"))
                .as_array_mut()
                .unwrap()
                .retain(|mount| mount["name"] != "database");
        },
        rule,
        "database.url_file",
    );
    rejects(
        "tests/minimal",
        |docs| {
            let deployment = doc_mut(docs, "Deployment", "bot-manager");
            at(deployment, &format!("{container}/volumeMounts"))
                .as_array_mut()
                .unwrap()
                .retain(|mount| mount["name"] != "service-client");
        },
        rule,
        "no client secret",
    );
    rejects(
        "tests/minimal",
        |docs| {
            let deployment = doc_mut(docs, "Deployment", "secure-bot-data");
            at(deployment, &format!("{container}/volumeMounts"))
                .as_array_mut()
                .unwrap()
                .retain(|mount| mount["name"] != "state");
        },
        rule,
        "telemetry.spill_dir /var/lib/vivesphere/spill is not on a writable volume",
    );
    rejects(
        "tests/minimal",
        |docs| {
            let deployment = doc_mut(docs, "Deployment", "authentication");
            *at(
                deployment,
                "/spec/template/spec/terminationGracePeriodSeconds",
            ) = json!(10);
        },
        rule,
        "terminationGracePeriodSeconds is 10",
    );
    rejects(
        "tests/minimal",
        |docs| {
            let service = doc_mut(docs, "Service", "nats");
            *at(service, "/spec/ports/0/port") = json!(4223);
        },
        rule,
        "queue.url is nats:4222",
    );
}

#[test]
fn the_image_matches_the_manifests() {
    every_scenario("image", |s| pod_config::image_problems(&s.docs));
}

#[test]
fn a_pod_that_runs_the_image_differently_is_reported() {
    rejects(
        "tests/minimal",
        |docs| {
            let deployment = doc_mut(docs, "Deployment", "logging");
            *at(
                deployment,
                "/spec/template/spec/containers/0/securityContext/runAsUser",
            ) = json!(10002);
        },
        pod_config::image_problems,
        "runs as Some(10002)",
    );
}

// ---- monitoring ---------------------------------------------------------------------

/// Every sample name the whole app (every target in one process) can expose.
async fn exposed_metrics() -> BTreeSet<String> {
    let data_dir = tempfile::tempdir().unwrap();
    let app = vivesphere::app::App::build(helpers::options(&data_dir, None, &[]))
        .await
        .expect("the app builds");
    app.metric_sample_names()
}

#[tokio::test]
async fn alerts_and_dashboards_query_metrics_the_binary_exposes() {
    if scenarios().is_none() {
        return;
    }
    let exposed = exposed_metrics().await;
    let with_monitoring: Vec<&Scenario> = scenarios()
        .unwrap()
        .iter()
        .filter(|s| s.docs.iter().any(|doc| kind(doc) == "PrometheusRule"))
        .collect();
    assert!(
        with_monitoring.iter().any(|s| s.name == "overlays/prod"),
        "prod has monitoring"
    );
    every_scenario("metrics", |s| checks::metrics_exist(&s.docs, &exposed));
    // Each alert the issue asks for is there.
    let prod = scenario("overlays/prod").unwrap();
    let alerts: BTreeMap<String, String> = model::of_kind(&prod.docs, "PrometheusRule")
        .flat_map(|rules| items(&rules["spec"]["groups"]))
        .flat_map(|group| items(&group["rules"]))
        .map(|rule| {
            (
                rule["alert"].as_str().unwrap_or_default().to_string(),
                rule["expr"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for (alert, metric) in [
        ("VivesphereHighErrorRate", "vivesphere_http_requests_total"),
        (
            "VivesphereHighLatency",
            "vivesphere_http_request_duration_seconds_bucket",
        ),
        ("VivespherePodNotReady", "kube_pod_status_ready"),
        (
            "VivesphereQueueBacklog",
            "vivesphere_queue_consumer_backlog",
        ),
        ("VivesphereDeadLetters", "vivesphere_bot_actions_total"),
        (
            "VivesphereBudgetExceeded",
            "vivesphere_bot_budget_notices_total",
        ),
        ("VivesphereQueueDown", "vivesphere_queue_up"),
        (
            "VivesphereXProjectCapNear",
            "vivesphere_bot_x_project_usage",
        ),
        (
            "VivesphereWebhooksFailing",
            "vivesphere_webhook_attempts_total",
        ),
        (
            "VivesphereWebhookTurnedOff",
            "vivesphere_webhook_subscriptions_disabled",
        ),
    ] {
        assert!(
            alerts.get(alert).is_some_and(|expr| expr.contains(metric)),
            "alert {alert} on {metric} in {alerts:#?}"
        );
    }
}

#[tokio::test]
async fn a_dashboard_or_alert_on_an_unknown_metric_is_reported() {
    if scenarios().is_none() {
        return;
    }
    let exposed = exposed_metrics().await;
    let rule = |docs: &[Value]| checks::metrics_exist(docs, &exposed);
    rejects(
        "overlays/prod",
        |docs| {
            let rules = docs
                .iter_mut()
                .find(|doc| kind(doc) == "PrometheusRule")
                .unwrap();
            *at(rules, "/spec/groups/0/rules/0/expr") =
                json!("rate(vivesphere_http_request_total[5m]) > 1");
        },
        rule,
        "vivesphere_http_request_total is not a metric the binary exposes",
    );
    rejects(
        "overlays/prod",
        |docs| {
            let dashboards = docs
                .iter_mut()
                .find(|doc| doc["metadata"]["labels"]["grafana_dashboard"] == "1")
                .unwrap();
            let text = at(dashboards, "/data/vivesphere-pipeline.json");
            let edited = text.as_str().unwrap().replace(
                "vivesphere_queue_consumer_backlog",
                "vivesphere_queue_depth",
            );
            *text = json!(edited);
        },
        rule,
        "vivesphere_queue_depth is not a metric the binary exposes",
    );
}

#[test]
fn metric_names_are_found_in_queries() {
    let names = checks::metric_names_in(
        r#"sum(rate(vivesphere_a_total{x="1"}[5m])) / on() xvivesphere_b + vivesphere_c"#,
        "vivesphere_",
    );
    assert_eq!(
        names,
        BTreeSet::from(["vivesphere_a_total".to_string(), "vivesphere_c".to_string()])
    );
}

/// Backups (issue 24): the plain PostgreSQL gets a nightly logical dump to a PVC with the
/// script `vivesphere restore` reads; staging and prod, on CloudNativePG, archive WAL and
/// take nightly base backups to their own place in an object store, with credentials from a
/// Secret the examples document — and no CronJob.
#[test]
fn every_database_shape_is_backed_up() {
    let Some(_) = scenarios() else { return };
    for plain in ["overlays/dev", "overlays/kind", "tests/minimal"] {
        let docs = &scenario(plain).unwrap().docs;
        let cronjob = model::of_kind(docs, "CronJob")
            .find(|c| name(c) == "postgres-backup")
            .unwrap_or_else(|| panic!("{plain}: no postgres-backup CronJob"));
        let pod = &cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"];
        assert_eq!(
            pod["containers"][0]["command"],
            json!(["/bin/bash", "/scripts/backup.sh"])
        );
        let claims: Vec<&str> = items(&pod["volumes"])
            .iter()
            .filter_map(|v| v["persistentVolumeClaim"]["claimName"].as_str())
            .collect();
        assert_eq!(claims, ["postgres-backups"], "{plain}");
        assert_eq!(
            model::of_kind(docs, "ScheduledBackup").count(),
            0,
            "{plain}"
        );
    }
    let examples = model::keys_by_name(&example_secrets(), "Secret");
    for (overlay, place) in [
        ("overlays/staging", "staging"),
        ("overlays/prod", "production"),
    ] {
        let docs = &scenario(overlay).unwrap().docs;
        assert_eq!(model::of_kind(docs, "CronJob").count(), 0, "{overlay}");
        let scheduled: Vec<&Value> = model::of_kind(docs, "ScheduledBackup").collect();
        assert_eq!(scheduled.len(), 1, "{overlay}");
        assert_eq!(scheduled[0]["spec"]["cluster"]["name"], "postgres");
        let cluster = model::of_kind(docs, "Cluster").next().unwrap();
        let store = &cluster["spec"]["backup"]["barmanObjectStore"];
        assert_eq!(
            store["destinationPath"],
            format!("s3://vivesphere-backups/{place}"),
            "{overlay}"
        );
        for credential in ["accessKeyId", "secretAccessKey"] {
            let secret = store["s3Credentials"][credential]["name"].as_str().unwrap();
            let key = store["s3Credentials"][credential]["key"].as_str().unwrap();
            assert!(
                examples.get(secret).is_some_and(|keys| keys.contains(key)),
                "{overlay}: {secret}/{key} is not in components/example-secrets"
            );
        }
    }
}

/// Staging, production and kind run NATS as three clustered JetStream servers (the NATS Helm
/// chart's shape): a volume each, started together, never two on one node and spread over
/// zones, a disruption budget that keeps two, routes between them through the network
/// policies; every service keeps each stream on all three. Development and the minimal
/// scenario keep one server and one copy.
#[test]
fn clustered_overlays_run_three_nats_servers_and_keep_every_stream_on_each() {
    let Some(_) = scenarios() else { return };
    let replicas_setting = |docs: &[Value], deployment: &str| -> Option<String> {
        let deployment = model::find(docs, "Deployment", deployment)?;
        items(&deployment["spec"]["template"]["spec"]["containers"][0]["env"])
            .iter()
            .find(|e| e["name"] == "VIVESPHERE_QUEUE__STREAM_REPLICAS")
            .and_then(|e| e["value"].as_str().map(str::to_string))
    };
    for overlay in [
        "overlays/staging",
        "overlays/prod",
        "overlays/kind",
        "tests/all-components",
    ] {
        let docs = &scenario(overlay).unwrap().docs;
        let nats = model::find(docs, "StatefulSet", "nats").unwrap();
        assert_eq!(nats["spec"]["replicas"], 3, "{overlay}");
        assert_eq!(nats["spec"]["podManagementPolicy"], "Parallel", "{overlay}");
        assert_eq!(
            nats["spec"]["volumeClaimTemplates"][0]["metadata"]["name"], "data",
            "{overlay}: a volume per server"
        );
        let spread: Vec<(&str, &str)> =
            items(&nats["spec"]["template"]["spec"]["topologySpreadConstraints"])
                .iter()
                .map(|c| {
                    (
                        c["topologyKey"].as_str().unwrap_or_default(),
                        c["whenUnsatisfiable"].as_str().unwrap_or_default(),
                    )
                })
                .collect();
        assert!(
            spread.contains(&("kubernetes.io/hostname", "DoNotSchedule")),
            "{overlay}: {spread:?}"
        );
        assert!(
            spread
                .iter()
                .any(|(key, _)| *key == "topology.kubernetes.io/zone"),
            "{overlay}: {spread:?}"
        );
        let pdb = model::find(docs, "PodDisruptionBudget", "nats").expect("a NATS budget");
        assert_eq!(pdb["spec"]["maxUnavailable"], 1, "{overlay}");
        assert_eq!(
            pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"], "nats",
            "{overlay}"
        );
        let policy = model::find(docs, "NetworkPolicy", "nats").unwrap();
        let routes_allowed = |direction: &str| {
            items(&policy["spec"][direction])
                .iter()
                .any(|rule| items(&rule["ports"]).iter().any(|p| p["port"] == 6222))
        };
        assert!(
            routes_allowed("ingress") && routes_allowed("egress"),
            "{overlay}: the servers must reach each other's cluster port"
        );
        let services: Vec<&str> = model::of_kind(docs, "Deployment")
            .filter(|d| d["metadata"]["labels"]["app.kubernetes.io/component"] == "service")
            .map(name)
            // The stand-in for X's API uses no queue.
            .filter(|deployment| *deployment != "fake-x")
            .collect();
        assert!(services.len() >= 5, "{overlay}: {services:?}");
        for service in services {
            assert_eq!(
                replicas_setting(docs, service).as_deref(),
                Some("3"),
                "{overlay}: {service} keeps every stream on the three servers"
            );
        }
        assert!(
            checks::queue_cluster_problems(docs, "nats", (3, reservation())).is_empty(),
            "{overlay}: {:?}",
            checks::queue_cluster_problems(docs, "nats", (3, reservation()))
        );
    }
    for single in ["overlays/dev", "tests/minimal"] {
        let docs = &scenario(single).unwrap().docs;
        let nats = model::find(docs, "StatefulSet", "nats").unwrap();
        assert_eq!(nats["spec"]["replicas"], 1, "{single}");
        assert_eq!(replicas_setting(docs, "bot-manager"), None, "{single}");
    }
}

#[test]
fn a_stream_replica_count_the_nats_servers_cannot_keep_is_reported() {
    let provided = example_secrets();
    let rule = |docs: &[Value]| pod_config::config_problems(docs, &provided, binary());
    let replicas = |value: &'static str| {
        move |docs: &mut Vec<Value>| {
            let deployment = doc_mut(docs, "Deployment", "logging");
            at(deployment, "/spec/template/spec/containers/0/env")
                .as_array_mut()
                .unwrap()
                .push(json!({"name": "VIVESPHERE_QUEUE__STREAM_REPLICAS", "value": value}));
        }
    };
    rejects(
        "tests/minimal",
        replicas("3"),
        rule,
        "queue.stream_replicas is 3, and the NATS StatefulSet runs 1 server(s)",
    );
    // Limits the server's store cannot reserve: JetStream would refuse the streams.
    rejects(
        "overlays/prod",
        |docs| {
            let deployment = doc_mut(docs, "Deployment", "logging");
            at(deployment, "/spec/template/spec/containers/0/env")
                .as_array_mut()
                .unwrap()
                .push(json!({"name": "VIVESPHERE_QUEUE__STREAM_MAX_BYTES", "value": "4294967296"}));
        },
        rule,
        "its max_file_store is Some(8000000000)",
    );
    rejects(
        "overlays/staging",
        |docs| {
            let deployment = doc_mut(docs, "Deployment", "logging");
            at(deployment, "/spec/template/spec/containers/0/env")
                .as_array_mut()
                .unwrap()
                .retain(|e| e["name"] != "VIVESPHERE_QUEUE__STREAM_REPLICAS");
        },
        rule,
        "queue.stream_replicas is 1 on 3 NATS servers",
    );
    rejects(
        "overlays/staging",
        |docs| {
            let headless = doc_mut(docs, "Service", "nats-headless");
            at(headless, "/spec/ports")
                .as_array_mut()
                .unwrap()
                .retain(|p| p["port"] != 6222);
        },
        |docs: &[Value]| checks::queue_cluster_problems(docs, "nats", (3, reservation())),
        "does not open the cluster port 6222",
    );
    rejects(
        "overlays/prod",
        |docs| {
            let config = docs
                .iter_mut()
                .find(|d| kind(d) == "ConfigMap" && name(d).starts_with("nats-config"))
                .unwrap();
            let conf = at(config, "/data/nats.conf");
            *conf = json!(conf.as_str().unwrap().replace("nats-2.", "nats-9."));
        },
        |docs: &[Value]| checks::queue_cluster_problems(docs, "nats", (3, reservation())),
        "no route nats://nats-2.nats-headless:6222",
    );
}

/// The container beside Kong must load into Kong's own Admin API on the pod's loopback, and
/// look for new keys well within the lead time before a rotated key signs.
#[test]
fn a_kong_key_sync_that_cannot_keep_kong_current_is_reported() {
    let rule = |docs: &[Value]| checks::binary_contract(docs, &targets());
    rejects(
        "overlays/prod",
        |docs| {
            let kong = doc_mut(docs, "Deployment", "kong");
            let args = at(kong, "/spec/template/spec/containers/1/args")
                .as_array_mut()
                .unwrap();
            let flag = args.iter().position(|a| a == "--interval-seconds").unwrap();
            args[flag + 1] = json!("600");
        },
        rule,
        "the key sync looks every 600 s; a rotated key signs 600 s after it is published",
    );
    rejects(
        "overlays/prod",
        |docs| {
            let kong = doc_mut(docs, "Deployment", "kong");
            let env = at(kong, "/spec/template/spec/containers/0/env")
                .as_array_mut()
                .unwrap();
            let admin = env
                .iter_mut()
                .find(|e| e["name"] == "KONG_ADMIN_LISTEN")
                .unwrap();
            admin["value"] = json!("0.0.0.0:8001");
        },
        rule,
        "it must be the pod's loopback",
    );
}
