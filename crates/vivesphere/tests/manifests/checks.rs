//! The rules every rendered overlay and scenario must keep. Each returns the problems it
//! found, one sentence each, so a failing test names every broken thing at once.

use std::collections::{BTreeMap, BTreeSet};

use gateway::routes::{PUBLIC_EVERYWHERE, ROUTES};
use platform::http::health::{LIVE_PATH, READY_PATH};
use platform::http::metrics::{METRIC_PREFIX, METRICS_PATH};
use platform::server::SERVICE_PORT;
use serde_json::Value;

use crate::model::{
    Workload, find, ident, is_our_image, items, keys_by_name, kind, labels_match, name, of_kind,
    operator_pods, workloads,
};

/// Every ConfigMap, Secret, ServiceAccount, volume and Service a resource refers to exists,
/// with the keys it asks for. Secrets come from the render or, where the render has none
/// (staging and production take them from outside), from `provided` (the documented
/// examples).
pub fn references_exist(docs: &[Value], provided: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let configmaps = keys_by_name(docs, "ConfigMap");
    let mut secrets = keys_by_name(docs, "Secret");
    if secrets.is_empty() {
        secrets = keys_by_name(provided, "Secret");
    }
    let accounts: BTreeSet<&str> = of_kind(docs, "ServiceAccount").map(name).collect();
    let mut need = |who: &str, what: &str, object: &Value, name_field: &str| {
        let objects = if what == "Secret" {
            &secrets
        } else {
            &configmaps
        };
        let wanted = object[name_field].as_str().unwrap_or_default();
        let optional = object["optional"].as_bool().unwrap_or(false);
        match objects.get(wanted) {
            None if !optional => problems.push(format!(
                "{who} uses {what} {wanted:?}, which does not exist"
            )),
            None => {}
            Some(keys) => {
                for item in items(&object["items"]) {
                    let key = item["key"].as_str().unwrap_or_default();
                    if !keys.contains(key) {
                        problems.push(format!(
                            "{who} uses key {key:?} of {what} {wanted:?}, which has no such key"
                        ));
                    }
                }
                if let Some(key) = object["key"].as_str()
                    && !keys.contains(key)
                {
                    problems.push(format!(
                        "{who} uses key {key:?} of {what} {wanted:?}, which has no such key"
                    ));
                }
            }
        }
    };
    for workload in workloads(docs) {
        let who = ident(workload.doc);
        for volume in items(&workload.pod["volumes"]) {
            if !volume["configMap"].is_null() {
                need(&who, "ConfigMap", &volume["configMap"], "name");
            }
            if !volume["secret"].is_null() {
                need(&who, "Secret", &volume["secret"], "secretName");
            }
            for source in items(&volume["projected"]["sources"]) {
                if !source["configMap"].is_null() {
                    need(&who, "ConfigMap", &source["configMap"], "name");
                }
                if !source["secret"].is_null() {
                    need(&who, "Secret", &source["secret"], "name");
                }
            }
        }
        for (container, _) in workload.containers() {
            for env in items(&container["env"]) {
                let from = &env["valueFrom"];
                if !from["configMapKeyRef"].is_null() {
                    need(&who, "ConfigMap", &from["configMapKeyRef"], "name");
                }
                if !from["secretKeyRef"].is_null() {
                    need(&who, "Secret", &from["secretKeyRef"], "name");
                }
            }
            for source in items(&container["envFrom"]) {
                if !source["configMapRef"].is_null() {
                    need(&who, "ConfigMap", &source["configMapRef"], "name");
                }
                if !source["secretRef"].is_null() {
                    need(&who, "Secret", &source["secretRef"], "name");
                }
            }
        }
    }
    for workload in workloads(docs) {
        let who = ident(workload.doc);
        for (container, _) in workload.containers() {
            for mount in items(&container["volumeMounts"]) {
                let volume = mount["name"].as_str().unwrap_or_default();
                if workload.volume(volume).is_none() {
                    problems.push(format!(
                        "{who} mounts volume {volume:?}, which it does not declare"
                    ));
                }
            }
        }
        if let Some(account) = workload.pod["serviceAccountName"].as_str()
            && !accounts.contains(account)
        {
            problems.push(format!(
                "{who} runs as ServiceAccount {account:?}, which does not exist"
            ));
        }
        if let Some(service) = workload.doc["spec"]["serviceName"].as_str()
            && find(docs, "Service", service).is_none()
        {
            problems.push(format!(
                "{who} names Service {service:?}, which does not exist"
            ));
        }
    }
    for ingress in of_kind(docs, "Ingress") {
        let who = ident(ingress);
        for tls in items(&ingress["spec"]["tls"]) {
            let secret = tls["secretName"].as_str().unwrap_or_default();
            if !secrets.contains_key(secret) {
                problems.push(format!(
                    "{who} uses TLS Secret {secret:?}, which does not exist"
                ));
            }
        }
        for rule in items(&ingress["spec"]["rules"]) {
            for path in items(&rule["http"]["paths"]) {
                let backend = &path["backend"]["service"];
                let service = backend["name"].as_str().unwrap_or_default();
                let port = &backend["port"];
                match find(docs, "Service", service) {
                    None => problems.push(format!(
                        "{who} sends {} to Service {service:?}, which does not exist",
                        path["path"]
                    )),
                    Some(found) => {
                        let has_port = items(&found["spec"]["ports"]).iter().any(|p| {
                            (port["name"].is_string() && p["name"] == port["name"])
                                || (port["number"].is_u64() && p["port"] == port["number"])
                        });
                        if !has_port {
                            problems.push(format!(
                                "{who} sends {} to port {port} of Service {service:?}, which has no such port",
                                path["path"]
                            ));
                        }
                    }
                }
            }
        }
    }
    problems
}

/// Selectors select something: workloads their own pods, Services and budgets some pods
/// (whose named ports the Service targets), network policies some pods, ServiceMonitors
/// some Services with the port they scrape.
pub fn selectors_match(docs: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut with_operator_pods = docs.to_vec();
    with_operator_pods.extend(operator_pods(docs));
    let pods = workloads(&with_operator_pods);
    let selected = |selector: &Value| -> Vec<&Workload> {
        pods.iter()
            .filter(|pod| labels_match(selector, pod.labels))
            .collect()
    };
    for workload in &pods {
        let selector = &workload.doc["spec"]["selector"]["matchLabels"];
        if !selector.is_null() && !labels_match(selector, workload.labels) {
            problems.push(format!(
                "{}: its selector {selector} does not match its own pod labels",
                ident(workload.doc)
            ));
        }
    }
    for service in of_kind(docs, "Service") {
        let selector = &service["spec"]["selector"];
        let matching = selected(selector);
        if matching.is_empty() {
            problems.push(format!(
                "{}: selector {selector} matches no pod",
                ident(service)
            ));
        }
        for port in items(&service["spec"]["ports"]) {
            for pod in &matching {
                let target = &port["targetPort"];
                let served = match (target.as_str(), target.as_u64()) {
                    (Some(port_name), _) => pod.port_names().contains_key(port_name),
                    (None, Some(number)) => pod.port_numbers().contains(&number),
                    _ => pod
                        .port_numbers()
                        .contains(&port["port"].as_u64().unwrap_or(0)),
                };
                if !served {
                    problems.push(format!(
                        "{}: port {} targets {target}, which {} does not serve",
                        ident(service),
                        port["name"],
                        ident(pod.doc)
                    ));
                }
            }
        }
    }
    for budget in of_kind(docs, "PodDisruptionBudget") {
        let selector = &budget["spec"]["selector"]["matchLabels"];
        if selected(selector).is_empty() {
            problems.push(format!(
                "{}: selector {selector} matches no pod",
                ident(budget)
            ));
        }
    }
    for policy in of_kind(docs, "NetworkPolicy") {
        let own = &policy["spec"]["podSelector"]["matchLabels"];
        let own_pods = selected(own);
        if own_pods.is_empty() {
            problems.push(format!(
                "{}: podSelector {own} matches no pod",
                ident(policy)
            ));
        }
        for (rules, peers_field) in [("ingress", "from"), ("egress", "to")] {
            for rule in items(&policy["spec"][rules]) {
                let mut peer_pods = Vec::new();
                let mut peers_known = true;
                for peer in items(&rule[peers_field]) {
                    // Peers in other namespaces or outside the cluster are not in the render.
                    if !peer["namespaceSelector"].is_null() || !peer["ipBlock"].is_null() {
                        peers_known = false;
                        continue;
                    }
                    let selector = &peer["podSelector"]["matchLabels"];
                    let found = selected(selector);
                    if found.is_empty() {
                        problems.push(format!(
                            "{}: {rules} peer {selector} matches no pod",
                            ident(policy)
                        ));
                    }
                    peer_pods.extend(found);
                }
                // A named port is the destination's: the policy's own pods for ingress.
                let destinations = if rules == "ingress" {
                    &own_pods
                } else {
                    &peer_pods
                };
                if rules == "egress" && !peers_known {
                    continue;
                }
                for port in items(&rule["ports"]) {
                    if let Some(port_name) = port["port"].as_str()
                        && !destinations
                            .iter()
                            .any(|pod| pod.port_names().contains_key(port_name))
                    {
                        problems.push(format!(
                            "{}: {rules} port {port_name:?} is no named port of the pods it reaches",
                            ident(policy)
                        ));
                    }
                }
            }
        }
    }
    for monitor in of_kind(docs, "ServiceMonitor") {
        let selector = &monitor["spec"]["selector"]["matchLabels"];
        let services: Vec<&Value> = of_kind(docs, "Service")
            .filter(|service| labels_match(selector, &service["metadata"]["labels"]))
            .collect();
        if services.is_empty() {
            problems.push(format!(
                "{}: selector {selector} matches no Service",
                ident(monitor)
            ));
        }
        for endpoint in items(&monitor["spec"]["endpoints"]) {
            for service in &services {
                if !items(&service["spec"]["ports"])
                    .iter()
                    .any(|port| port["name"] == endpoint["port"])
                {
                    problems.push(format!(
                        "{} scrapes port {} of {}, which has no such port",
                        ident(monitor),
                        endpoint["port"],
                        ident(service)
                    ));
                }
            }
        }
    }
    problems
}

/// Every HorizontalPodAutoscaler scales a Deployment that exists and leaves `replicas` to
/// it (a Deployment's own count would reset the HPA's on every apply).
pub fn hpa_targets_exist(docs: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    for hpa in of_kind(docs, "HorizontalPodAutoscaler") {
        let target = &hpa["spec"]["scaleTargetRef"];
        let target_kind = target["kind"].as_str().unwrap_or_default();
        let target_name = target["name"].as_str().unwrap_or_default();
        match find(docs, target_kind, target_name) {
            None => problems.push(format!(
                "{} scales {target_kind}/{target_name}, which does not exist",
                ident(hpa)
            )),
            Some(workload) if !workload["spec"]["replicas"].is_null() => problems.push(format!(
                "{target_kind}/{target_name} sets replicas although {} owns them",
                ident(hpa)
            )),
            Some(_) => {}
        }
        let min = hpa["spec"]["minReplicas"].as_u64().unwrap_or(1);
        let max = hpa["spec"]["maxReplicas"].as_u64().unwrap_or(0);
        if min < 2 || max < min {
            problems.push(format!(
                "{}: replicas {min}..{max}, want at least 2",
                ident(hpa)
            ));
        }
    }
    problems
}

/// What the pods of this project's image say about the binary is what the binary does:
/// `serve --target` names a real target and the Deployment and Service carry its name (peers
/// call `http://<target>:<port>`), the port is the binary's, the probes are its health
/// paths, the Services listen on its port.
pub fn binary_contract(docs: &[Value], targets: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    for workload in workloads(docs) {
        let who = ident(workload.doc);
        for (container, init) in workload.containers() {
            if !is_our_image(container["image"].as_str().unwrap_or_default()) {
                continue;
            }
            let args: Vec<&str> = items(&container["args"])
                .iter()
                .filter_map(Value::as_str)
                .collect();
            if init {
                check_export_kong(&who, &args, &mut problems);
                continue;
            }
            if args.starts_with(&["gateway", "export-kong"]) {
                check_export_kong(&who, &args, &mut problems);
                check_kong_key_sync(&workload, &who, &args, &mut problems);
                continue;
            }
            if let ["migrate", "--target", target] = args.as_slice() {
                if !targets.contains(target) {
                    problems.push(format!(
                        "{who} migrates target {target:?}, which the binary does not have"
                    ));
                }
                if !workload.runs_to_completion() {
                    problems.push(format!("{who} migrates {target:?} but is not a Job"));
                }
                continue;
            }
            match args.as_slice() {
                ["serve", "--target", target] => {
                    if !targets.contains(target) {
                        problems.push(format!(
                            "{who} serves target {target:?}, which the binary does not have"
                        ));
                    }
                    if name(workload.doc) != *target {
                        problems.push(format!(
                            "{who} serves {target:?}: peers reach it as http://{target}:{SERVICE_PORT}, so the Deployment must be called {target}"
                        ));
                    }
                    match find(docs, "Service", target) {
                        None => {
                            problems.push(format!("{who}: no Service {target:?} in front of it"))
                        }
                        Some(service) => {
                            if !items(&service["spec"]["ports"])
                                .iter()
                                .any(|port| port["port"] == SERVICE_PORT)
                            {
                                problems.push(format!(
                                    "Service/{target}: does not listen on the binary's port {SERVICE_PORT}"
                                ));
                            }
                        }
                    }
                }
                other => problems.push(format!(
                    "{who} runs {other:?}, not `serve --target <service>`"
                )),
            }
            let ports = workload.port_names();
            if ports.get("http") != Some(&u64::from(SERVICE_PORT)) {
                problems.push(format!(
                    "{who}: port `http` is {:?}, the binary listens on {SERVICE_PORT}",
                    ports.get("http")
                ));
            }
            for (probe, path) in [
                ("startupProbe", LIVE_PATH),
                ("livenessProbe", LIVE_PATH),
                ("readinessProbe", READY_PATH),
            ] {
                let get = &container[probe]["httpGet"];
                if get.is_null() {
                    problems.push(format!("{who}: no {probe} on {path}"));
                    continue;
                }
                if get["path"] != path {
                    problems.push(format!(
                        "{who}: {probe} asks {}, the binary answers it on {path}",
                        get["path"]
                    ));
                }
                let port = match (get["port"].as_str(), get["port"].as_u64()) {
                    (Some(port_name), _) => ports.get(port_name).copied(),
                    (None, number) => number,
                };
                if port != Some(u64::from(SERVICE_PORT)) {
                    problems.push(format!(
                        "{who}: {probe} goes to port {}, the binary listens on {SERVICE_PORT}",
                        get["port"]
                    ));
                }
            }
        }
    }
    problems
}

/// Kong's init container renders its configuration from the Authentication service's keys.
fn check_export_kong(who: &str, args: &[&str], problems: &mut Vec<String>) {
    let authentication = format!("http://{}:{SERVICE_PORT}", authentication::NAME);
    if args.first() != Some(&"gateway") || args.get(1) != Some(&"export-kong") {
        problems.push(format!(
            "{who}: init container runs {args:?}, not `gateway export-kong`"
        ));
    }
    let url = args
        .iter()
        .position(|arg| *arg == "--authentication-url")
        .and_then(|at| args.get(at + 1));
    if url != Some(&authentication.as_str()) {
        problems.push(format!(
            "{who}: export-kong reads keys from {url:?}, the Authentication service is {authentication}"
        ));
    }
}

/// The container beside Kong that keeps its keys current loads them through the Admin API
/// Kong listens on, on the pod's loopback only, and looks often enough that a rotated key is
/// in Kong long before it signs.
fn check_kong_key_sync(workload: &Workload, who: &str, args: &[&str], problems: &mut Vec<String>) {
    let value_of = |flag: &str| {
        args.iter()
            .position(|arg| *arg == flag)
            .and_then(|at| args.get(at + 1))
            .copied()
    };
    let admin_listen = workload
        .containers()
        .filter(|(_, init)| !init)
        .flat_map(|(container, _)| items(&container["env"]).to_vec())
        .find(|env| env["name"] == "KONG_ADMIN_LISTEN")
        .and_then(|env| env["value"].as_str().map(str::to_string));
    let expected = admin_listen
        .as_deref()
        .filter(|listen| listen.starts_with("127.0.0.1:"))
        .map(|listen| format!("http://{listen}"));
    match (value_of("--kong-admin-url"), &expected) {
        (Some(url), Some(expected)) if url == expected => {}
        (url, _) => problems.push(format!(
            "{who}: the key sync loads into {url:?}; Kong's Admin API listens on {admin_listen:?} (it must be the pod's loopback)"
        )),
    }
    let lead = authentication::Settings::default().signing_key_lead_seconds;
    let interval: u64 = value_of("--interval-seconds")
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    // Two rounds, and a failed one, fit in the lead time.
    if interval * 3 > lead {
        problems.push(format!(
            "{who}: the key sync looks every {interval} s; a rotated key signs {lead} s after it is published"
        ));
    }
}

/// A route whose service checks its own session (the console) is one Ingress of class kong
/// for its prefix, to its service, without the jwt plugin, and its Service keeps a browser
/// on one pod (a KongUpstreamPolicy that hashes on a cookie).
fn session_route_ingress(
    docs: &[Value],
    route: &gateway::routes::Route,
    problems: &mut Vec<String>,
) {
    let Some(ingress) = find(docs, "Ingress", route.service) else {
        problems.push(format!("no Ingress {}", route.service));
        return;
    };
    let paths: Vec<(String, String)> = items(&ingress["spec"]["rules"])
        .iter()
        .flat_map(|rule| items(&rule["http"]["paths"]))
        .map(|path| {
            let backend = path["backend"]["service"]["name"]
                .as_str()
                .unwrap_or_default();
            (
                path["path"].as_str().unwrap_or_default().to_string(),
                backend.to_string(),
            )
        })
        .collect();
    if paths != [(route.prefix.to_string(), route.service.to_string())] {
        problems.push(format!(
            "{}: routes {paths:?}, want {} to {}",
            ident(ingress),
            route.prefix,
            route.service
        ));
    }
    if plugins(ingress).contains("jwt") {
        problems.push(format!(
            "{}: a session route behind the jwt plugin",
            ident(ingress)
        ));
    }
    let policy = find(docs, "Service", route.service)
        .and_then(|service| {
            service["metadata"]["annotations"]["konghq.com/upstream-policy"].as_str()
        })
        .and_then(|name| find(docs, "KongUpstreamPolicy", name));
    if policy.is_none_or(|policy| policy["spec"]["hashOn"]["cookie"].is_null()) {
        problems.push(format!(
            "Service/{}: no KongUpstreamPolicy that keeps a browser on one pod",
            route.service
        ));
    }
}

/// The Ingress in front of Kong (unless Kong is the edge, on a NodePort) has one rule per
/// route prefix of the gateway's route table;
/// with the Kong Ingress Controller, each route's public paths and protected prefix are
/// Ingresses to the route's service, the protected one behind the jwt plugin; the
/// rate-limiting plugin has the gateway's default.
pub fn kong_routes_match_the_route_table(docs: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let prefixes: BTreeSet<String> = ROUTES.iter().map(|r| r.prefix.to_string()).collect();
    let ingress_paths = |ingress: &Value| -> Vec<(String, String, String)> {
        items(&ingress["spec"]["rules"])
            .iter()
            .flat_map(|rule| items(&rule["http"]["paths"]))
            .map(|path| {
                (
                    path["path"].as_str().unwrap_or_default().to_string(),
                    path["pathType"].as_str().unwrap_or_default().to_string(),
                    path["backend"]["service"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect()
    };
    let db_less = find(docs, "Deployment", "kong").is_some();
    // On a laptop cluster Kong itself is the edge, on a NodePort: no Ingress in front.
    let kong_is_the_edge = find(docs, "Service", "kong-proxy")
        .is_some_and(|service| matches!(service["spec"]["type"].as_str(), Some("NodePort")));
    if db_less {
        match find(docs, "Ingress", "vivesphere") {
            None if kong_is_the_edge => {}
            None => problems.push(
                "the DB-less Kong has no Ingress `vivesphere` in front, nor a NodePort".into(),
            ),
            Some(ingress) => {
                let paths = ingress_paths(ingress);
                let got: BTreeSet<String> = paths.iter().map(|(p, _, _)| p.clone()).collect();
                if got != prefixes {
                    problems.push(format!(
                        "Ingress/vivesphere routes {got:?}, the route table has {prefixes:?}"
                    ));
                }
                for (path, path_type, backend) in paths {
                    if path_type != "Prefix" || backend != "kong-proxy" {
                        problems.push(format!(
                            "Ingress/vivesphere: {path} is {path_type} to {backend}, want Prefix to kong-proxy"
                        ));
                    }
                }
            }
        }
    }
    let controller: Vec<&Value> = of_kind(docs, "Ingress")
        .filter(|ingress| ingress["spec"]["ingressClassName"] == "kong")
        .collect();
    if !db_less && controller.is_empty() {
        problems.push("neither the DB-less Kong nor Ingresses of class kong route the API".into());
    }
    if !controller.is_empty() {
        for route in ROUTES.iter().filter(|route| !route.token_at_edge) {
            session_route_ingress(docs, route, &mut problems);
        }
        for route in ROUTES.iter().filter(|route| route.token_at_edge) {
            let expected_public: BTreeSet<(String, String)> = route
                .public_paths()
                .into_iter()
                .map(|path| {
                    let prefix_match = PUBLIC_EVERYWHERE
                        .iter()
                        .any(|p| *p == "/docs" && path.ends_with(p));
                    (
                        path,
                        if prefix_match { "Prefix" } else { "Exact" }.to_string(),
                    )
                })
                .collect();
            let public = find(docs, "Ingress", &format!("{}-public", route.service));
            let protected = find(docs, "Ingress", route.service);
            // Kong's own answers on the route carry our headers, `no-store` where the
            // route table says so.
            let headers_plugin = if route.no_store {
                "no-store-headers"
            } else {
                "security-headers"
            };
            for ingress in public.iter().chain(protected.iter()) {
                if !plugins(ingress).contains(headers_plugin) {
                    problems.push(format!(
                        "{}: Kong's own answers lack the {headers_plugin} plugin",
                        ident(ingress)
                    ));
                }
            }
            match public {
                None => problems.push(format!("no Ingress {}-public", route.service)),
                Some(ingress) => {
                    let paths = ingress_paths(ingress);
                    let got: BTreeSet<(String, String)> = paths
                        .iter()
                        .map(|(p, t, _)| (p.clone(), t.clone()))
                        .collect();
                    if got != expected_public {
                        problems.push(format!(
                            "{}: public paths {got:?}, the route table has {expected_public:?}",
                            ident(ingress)
                        ));
                    }
                    if paths.iter().any(|(_, _, backend)| backend != route.service) {
                        problems.push(format!(
                            "{}: not every path goes to {}",
                            ident(ingress),
                            route.service
                        ));
                    }
                    if plugins(ingress).contains("jwt") {
                        problems.push(format!(
                            "{}: public paths behind the jwt plugin",
                            ident(ingress)
                        ));
                    }
                }
            }
            match protected {
                None => problems.push(format!("no Ingress {}", route.service)),
                Some(ingress) => {
                    let paths = ingress_paths(ingress);
                    let expected = vec![(
                        route.prefix.to_string(),
                        "Prefix".to_string(),
                        route.service.to_string(),
                    )];
                    if paths != expected {
                        problems.push(format!(
                            "{}: routes {paths:?}, want {expected:?}",
                            ident(ingress)
                        ));
                    }
                    if !plugins(ingress).contains("jwt") {
                        problems.push(format!("{}: not behind the jwt plugin", ident(ingress)));
                    }
                }
            }
        }
        let default_limit = gateway::RateLimitSettings::default().per_minute;
        match find(docs, "KongPlugin", "rate-limiting") {
            Some(plugin) if plugin["config"]["minute"] == default_limit => {}
            other => problems.push(format!(
                "KongPlugin/rate-limiting allows {:?} per minute, the gateway's default is {default_limit}",
                other.map(|p| &p["config"]["minute"])
            )),
        }
    }
    problems
}

fn plugins(ingress: &Value) -> BTreeSet<String> {
    ingress["metadata"]["annotations"]["konghq.com/plugins"]
        .as_str()
        .unwrap_or_default()
        .split(',')
        .map(|p| p.trim().to_string())
        .collect()
}

/// Pod Security "restricted" (and the rest of the container rules) for every pod:
/// non-root with a UID of at least 10000, seccomp RuntimeDefault, no privilege escalation,
/// ALL capabilities dropped, a read-only root filesystem, no host namespaces, ports or
/// paths, no service-account token, requests and limits, liveness and readiness probes.
pub fn pod_security_restricted(docs: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let namespaces: Vec<&Value> = of_kind(docs, "Namespace").collect();
    for namespace in &namespaces {
        let labels = &namespace["metadata"]["labels"];
        if labels["pod-security.kubernetes.io/enforce"] != "restricted" {
            problems.push(format!(
                "{}: Pod Security \"restricted\" is not enforced",
                ident(namespace)
            ));
        }
    }
    let home = namespaces.first().map(|ns| name(ns)).unwrap_or_default();
    for doc in docs {
        let namespaced = !matches!(
            kind(doc),
            "Namespace" | "ClusterRole" | "ClusterRoleBinding"
        );
        if namespaced && doc["metadata"]["namespace"] != home {
            problems.push(format!(
                "{} is in namespace {}, not {home:?}",
                ident(doc),
                doc["metadata"]["namespace"]
            ));
        }
    }
    const ALLOWED_VOLUMES: [&str; 8] = [
        "configMap",
        "secret",
        "projected",
        "emptyDir",
        "persistentVolumeClaim",
        "downwardAPI",
        "ephemeral",
        "csi",
    ];
    for workload in workloads(docs) {
        let who = ident(workload.doc);
        let pod = workload.pod;
        for host in ["hostNetwork", "hostPID", "hostIPC"] {
            if pod[host] == true {
                problems.push(format!("{who}: {host}"));
            }
        }
        if pod["automountServiceAccountToken"] != false {
            problems.push(format!("{who}: the service-account token is mounted"));
        }
        for volume in items(&pod["volumes"]) {
            let volume_kind = volume
                .as_object()
                .and_then(|v| v.keys().find(|k| *k != "name"))
                .map(String::as_str)
                .unwrap_or_default();
            if !ALLOWED_VOLUMES.contains(&volume_kind) {
                problems.push(format!(
                    "{who}: volume {} is a {volume_kind}",
                    volume["name"]
                ));
            }
        }
        let pod_context = &pod["securityContext"];
        for (container, init) in workload.containers() {
            let who = format!("{who} container {}", container["name"]);
            let context = &container["securityContext"];
            let setting = |field: &str| {
                if context[field].is_null() {
                    &pod_context[field]
                } else {
                    &context[field]
                }
            };
            if setting("runAsNonRoot") != true {
                problems.push(format!("{who}: runAsNonRoot is not true"));
            }
            if setting("runAsUser").as_u64().is_none_or(|uid| uid < 10_000) {
                problems.push(format!(
                    "{who}: runAsUser {} is below 10000",
                    setting("runAsUser")
                ));
            }
            if setting("seccompProfile")["type"] != "RuntimeDefault" {
                problems.push(format!("{who}: seccomp is not RuntimeDefault"));
            }
            if context["allowPrivilegeEscalation"] != false {
                problems.push(format!("{who}: allowPrivilegeEscalation is not false"));
            }
            if context["privileged"] == true {
                problems.push(format!("{who}: privileged"));
            }
            if context["readOnlyRootFilesystem"] != true {
                problems.push(format!("{who}: the root filesystem is writable"));
            }
            if !items(&context["capabilities"]["drop"]).contains(&Value::from("ALL")) {
                problems.push(format!("{who}: capabilities are not dropped (ALL)"));
            }
            if items(&context["capabilities"]["add"])
                .iter()
                .any(|cap| cap != "NET_BIND_SERVICE")
            {
                problems.push(format!(
                    "{who}: adds capabilities {}",
                    context["capabilities"]["add"]
                ));
            }
            if items(&container["ports"])
                .iter()
                .any(|p| !p["hostPort"].is_null())
            {
                problems.push(format!("{who}: uses a hostPort"));
            }
            for resource in ["cpu", "memory"] {
                for bound in ["requests", "limits"] {
                    if container["resources"][bound][resource].is_null() {
                        problems.push(format!("{who}: no {resource} {bound}"));
                    }
                }
            }
            if !init && !workload.runs_to_completion() {
                for probe in ["livenessProbe", "readinessProbe"] {
                    if container[probe].is_null() {
                        problems.push(format!("{who}: no {probe}"));
                    }
                }
            }
        }
    }
    problems
}

/// Every metric named in an alert rule or a Grafana dashboard is one the binary exposes
/// (`exposed`: its sample names), and the ServiceMonitor scrapes the binary's metrics path.
pub fn metrics_exist(docs: &[Value], exposed: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut queries: Vec<(String, String)> = Vec::new();
    for rule_set in of_kind(docs, "PrometheusRule") {
        for group in items(&rule_set["spec"]["groups"]) {
            for rule in items(&group["rules"]) {
                let rule_name = rule["alert"].as_str().or(rule["record"].as_str());
                queries.push((
                    format!("{} {}", ident(rule_set), rule_name.unwrap_or_default()),
                    rule["expr"].as_str().unwrap_or_default().to_string(),
                ));
            }
        }
    }
    // A canary's analysis (components/canary) judges a release by these.
    for template in of_kind(docs, "AnalysisTemplate") {
        for metric in items(&template["spec"]["metrics"]) {
            queries.push((
                format!("{} {}", ident(template), metric["name"]),
                metric["provider"]["prometheus"]["query"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            ));
        }
    }
    for map in of_kind(docs, "ConfigMap")
        .filter(|map| map["metadata"]["labels"]["grafana_dashboard"] == "1")
    {
        for (file, text) in map["data"].as_object().into_iter().flatten() {
            let dashboard: Value = match serde_json::from_str(text.as_str().unwrap_or_default()) {
                Ok(dashboard) => dashboard,
                Err(err) => {
                    problems.push(format!("{} {file}: not JSON: {err}", ident(map)));
                    continue;
                }
            };
            for panel in items(&dashboard["panels"]) {
                for target in items(&panel["targets"]) {
                    queries.push((
                        format!("{file} panel {}", panel["title"]),
                        target["expr"].as_str().unwrap_or_default().to_string(),
                    ));
                }
            }
            for variable in items(&dashboard["templating"]["list"]) {
                if let Some(query) = variable["query"].as_str() {
                    queries.push((
                        format!("{file} variable {}", variable["name"]),
                        query.into(),
                    ));
                }
            }
        }
    }
    let prefix = format!("{METRIC_PREFIX}_");
    for (place, query) in &queries {
        for metric in metric_names_in(query, &prefix) {
            if !exposed.contains(&metric) {
                problems.push(format!(
                    "{place}: {metric} is not a metric the binary exposes"
                ));
            }
        }
    }
    for monitor in of_kind(docs, "ServiceMonitor").filter(|m| {
        m["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "service"
    }) {
        for endpoint in items(&monitor["spec"]["endpoints"]) {
            if endpoint["path"] != METRICS_PATH {
                problems.push(format!(
                    "{} scrapes {}, the binary serves {METRICS_PATH}",
                    ident(monitor),
                    endpoint["path"]
                ));
            }
        }
    }
    problems
}

/// The metric names (`prefix…`, as far as identifier characters go) in a PromQL query.
pub fn metric_names_in(query: &str, prefix: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = query;
    while let Some(at) = rest.find(prefix) {
        let boundary = at == 0 || {
            let before = rest.as_bytes()[at - 1];
            !(before.is_ascii_alphanumeric() || before == b'_')
        };
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        if boundary {
            names.insert(tail[..end].to_string());
        }
        rest = &tail[end..];
    }
    names
}

/// The container of this project's image that serves `target`, with its pod.
pub fn served_targets(docs: &[Value]) -> BTreeMap<String, (Workload<'_>, Value)> {
    let mut served = BTreeMap::new();
    for workload in workloads(docs) {
        let found = workload
            .containers()
            .filter(|(container, init)| {
                !init && is_our_image(container["image"].as_str().unwrap_or_default())
            })
            .find_map(|(container, _)| {
                let args: Vec<&str> = items(&container["args"])
                    .iter()
                    .filter_map(Value::as_str)
                    .collect();
                match args.as_slice() {
                    ["serve", "--target", target] => Some((target.to_string(), container.clone())),
                    _ => None,
                }
            });
        if let Some((target, container)) = found {
            served.insert(target, (workload, container));
        }
    }
    served
}

/// The queue a service is pointed at can keep what it asks for: the NATS StatefulSet behind
/// the queue URL's Service runs at least `queue.stream_replicas` servers, and its
/// `max_file_store` holds what the streams reserve on each server (`reservation`: JetStream
/// refuses a stream whose byte limit does not fit); a clustered one keeps every stream on
/// each of them (fewer copies than servers would lose messages with one server), lists
/// every one of its pods as a route and opens its cluster port on the headless Service.
pub fn queue_cluster_problems(
    docs: &[Value],
    queue_host: &str,
    (stream_replicas, reservation): (usize, u64),
) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(service) = find(docs, "Service", queue_host) else {
        return vec![format!("no Service {queue_host} for the queue")];
    };
    let selector = &service["spec"]["selector"];
    let Some(nats) = crate::model::of_kind(docs, "StatefulSet").find(|s| {
        crate::model::labels_match(selector, &s["spec"]["template"]["metadata"]["labels"])
    }) else {
        return vec![format!("Service {queue_host} selects no StatefulSet")];
    };
    let servers = nats["spec"]["replicas"].as_u64().unwrap_or(1) as usize;
    let config_map = items(&nats["spec"]["template"]["spec"]["volumes"])
        .iter()
        .find_map(|v| v["configMap"]["name"].as_str())
        .and_then(|name| find(docs, "ConfigMap", name));
    let conf = config_map
        .and_then(|c| c["data"]["nats.conf"].as_str())
        .unwrap_or_default();
    match max_file_store(conf) {
        Some(store) if reservation <= store => {}
        store => problems.push(format!(
            "the streams reserve {reservation} bytes on each NATS server; its max_file_store is {store:?}"
        )),
    }
    if stream_replicas > servers {
        problems.push(format!(
            "queue.stream_replicas is {stream_replicas}, and the NATS StatefulSet runs {servers} server(s): no stream can be created"
        ));
    }
    if servers == 1 {
        return problems;
    }
    if stream_replicas != servers {
        problems.push(format!(
            "queue.stream_replicas is {stream_replicas} on {servers} NATS servers: each stream must be on every server"
        ));
    }
    let headless = nats["spec"]["serviceName"].as_str().unwrap_or_default();
    for pod in 0..servers {
        let route = format!("nats://{}-{pod}.{headless}:6222", name(nats));
        if !conf.contains(&route) {
            problems.push(format!("the NATS configuration has no route {route}"));
        }
    }
    let cluster_port_open = find(docs, "Service", headless)
        .is_some_and(|s| items(&s["spec"]["ports"]).iter().any(|p| p["port"] == 6222));
    if !cluster_port_open {
        problems.push(format!(
            "Service {headless} does not open the cluster port 6222"
        ));
    }
    problems
}

/// `max_file_store` of a nats.conf in bytes, reading a unit suffix as powers of 1000 (the
/// smaller reading, so the check errs on the safe side).
fn max_file_store(conf: &str) -> Option<u64> {
    let value = conf
        .lines()
        .find_map(|line| line.trim().strip_prefix("max_file_store:"))?
        .trim()
        .to_ascii_uppercase();
    let digits: String = value.chars().take_while(char::is_ascii_digit).collect();
    let number: u64 = digits.parse().ok()?;
    let unit = match value[digits.len()..].trim_end_matches('B') {
        "" => 1,
        "K" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        _ => return None,
    };
    Some(number * unit)
}

#[test]
fn max_file_store_is_read_with_its_unit() {
    assert_eq!(
        max_file_store("jetstream {\n  max_file_store: 8GB\n}"),
        Some(8_000_000_000)
    );
    assert_eq!(max_file_store("max_file_store: 512M"), Some(512_000_000));
    assert_eq!(max_file_store("max_file_store: 1024"), Some(1024));
    assert_eq!(max_file_store("port: 4222"), None);
}

/// Where the services only verify their schema (`database.migrations = verify`), a release's
/// migration Job applies every one of those services' migrations: a service missing from
/// the Job would never start.
pub fn migration_contract(docs: &[Value]) -> Vec<String> {
    let mut migrated = BTreeSet::new();
    let mut verifying = BTreeSet::new();
    for workload in workloads(docs) {
        for (container, _) in workload.containers() {
            let args: Vec<&str> = items(&container["args"])
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let verifies = items(&container["env"]).iter().any(|env| {
                env["name"] == "VIVESPHERE_DATABASE__MIGRATIONS" && env["value"] == "verify"
            });
            match args.as_slice() {
                ["migrate", "--target", target] => {
                    migrated.insert(target.to_string());
                }
                ["serve", "--target", target] if verifies => {
                    verifying.insert(target.to_string());
                }
                _ => {}
            }
        }
    }
    // A target without a database (the console) has no schema to verify.
    let keeps_data: BTreeSet<String> = vivesphere::registry::targets()
        .iter()
        .map(|target| target.info())
        .filter(|info| info.uses_database)
        .map(|info| info.name.to_string())
        .collect();
    verifying
        .intersection(&keeps_data)
        .filter(|target| !migrated.contains(*target))
        .map(|target| {
            format!("{target} only verifies its schema, and no migration Job runs `migrate --target {target}`")
        })
        .collect()
}

/// Every Rollout runs a Deployment of the release (workloadRef) whose pods its selector
/// matches, is judged by an AnalysisTemplate that exists and reads the canary's own series,
/// and never runs without an abort: a canary without analysis would promote anything.
pub fn canary_contract(docs: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    for rollout in of_kind(docs, "Rollout") {
        let who = ident(rollout);
        let reference = &rollout["spec"]["workloadRef"];
        let name = reference["name"].as_str().unwrap_or_default();
        match find(docs, "Deployment", name) {
            Some(deployment) if reference["kind"] == "Deployment" => {
                if !deployment["spec"]["replicas"].is_null() {
                    problems.push(format!(
                        "Deployment/{name} sets replicas, which every apply would restore \
                         while {who} scales it down"
                    ));
                }
                let labels = &deployment["spec"]["template"]["metadata"]["labels"];
                for (key, value) in rollout["spec"]["selector"]["matchLabels"]
                    .as_object()
                    .into_iter()
                    .flatten()
                {
                    if &labels[key] != value {
                        problems.push(format!(
                            "{who}: selector {key}={value} does not match Deployment/{name}'s pods"
                        ));
                    }
                }
            }
            _ => problems.push(format!(
                "{who} runs Deployment/{name:?}, which does not exist"
            )),
        }
        let analysis = &rollout["spec"]["strategy"]["canary"]["analysis"];
        let templates = items(&analysis["templates"]);
        if templates.is_empty() {
            problems.push(format!("{who}: a canary without analysis is never aborted"));
        }
        for template in templates {
            let template_name = template["templateName"].as_str().unwrap_or_default();
            match find(docs, "AnalysisTemplate", template_name) {
                None => problems.push(format!(
                    "{who}: AnalysisTemplate/{template_name} does not exist"
                )),
                Some(found) => {
                    for metric in items(&found["spec"]["metrics"]) {
                        let query = metric["provider"]["prometheus"]["query"]
                            .as_str()
                            .unwrap_or_default();
                        if !query.contains("rollouts_pod_template_hash") {
                            problems.push(format!(
                                "{}: {} measures every pod, not the canary's",
                                ident(found),
                                metric["name"]
                            ));
                        }
                    }
                }
            }
        }
    }
    problems
}

/// The Cluster Autoscaler leaves a node alone while a pod on it has an emptyDir, unless the
/// pod says it may go: every long-running pod with one says which it is
/// (`cluster-autoscaler.kubernetes.io/safe-to-evict`), so that scale-down is decided here,
/// not by accident. A pod that must stay says so to Karpenter too.
pub fn eviction_is_declared(docs: &[Value]) -> Vec<String> {
    const SAFE_TO_EVICT: &str = "cluster-autoscaler.kubernetes.io/safe-to-evict";
    const DO_NOT_DISRUPT: &str = "karpenter.sh/do-not-disrupt";
    let mut problems = Vec::new();
    for workload in workloads(docs) {
        if workload.runs_to_completion() {
            continue;
        }
        let uses_empty_dir = items(&workload.pod["volumes"])
            .iter()
            .any(|volume| volume.get("emptyDir").is_some());
        let annotations = &workload.doc["spec"]["template"]["metadata"]["annotations"];
        match annotations[SAFE_TO_EVICT].as_str() {
            Some("true") => {}
            Some("false") if annotations[DO_NOT_DISRUPT] != "true" => problems.push(format!(
                "{}: kept from the Cluster Autoscaler but not from Karpenter ({DO_NOT_DISRUPT})",
                ident(workload.doc)
            )),
            Some("false") => {}
            Some(other) => problems.push(format!(
                "{}: {SAFE_TO_EVICT} is {other:?}, not \"true\" or \"false\"",
                ident(workload.doc)
            )),
            None if uses_empty_dir => problems.push(format!(
                "{} has an emptyDir and does not say whether a node autoscaler may evict it",
                ident(workload.doc)
            )),
            None => {}
        }
    }
    problems
}
