//! Kong 3.9 DB-less declarative configuration, written from the one route table: a Kong
//! service per service (its Kubernetes Service on port 8000), a public route with the public
//! paths and a protected route with the `jwt` plugin, `strip_path: false` everywhere; the
//! Authentication service's public keys as one consumer's EdDSA credentials, chosen by `kid`;
//! and `rate-limiting` (local, per IP), `prometheus` and `correlation-id` for all. Kong's own
//! answers (a 401 from `jwt`, a 429) get the headers every answer of ours carries, through
//! `response-transformer`: globally, and with `Cache-Control: no-store` on the services whose
//! answers carry tokens or secrets (Kong runs the most specific instance of a plugin).
//!
//! Public routes match whole paths only: Kong regex paths anchored at the end
//! (`~/api/v1/auth/login$`), which Kong's router tries before any prefix path, so a path that
//! merely starts with a public one (`/api/v1/auth/login-anything`) falls to the protected
//! prefix route and its `jwt` plugin. `/docs` is public with what lies below it.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::routes::ROUTES;

/// The consumer that owns the Authentication service's keys.
pub const CONSUMER: &str = "vivesphere-authentication";

/// One published signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub kid: String,
    /// SubjectPublicKeyInfo PEM, as Kong's `rsa_public_key` takes it for EdDSA too.
    pub pem: String,
}

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): the raw 32 bytes follow.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

impl PublicKey {
    /// From a JWK of the JWKS (`kty: OKP`, `crv: Ed25519`, `x`: base64url).
    pub fn from_jwk(jwk: &Value) -> anyhow::Result<Self> {
        let kid = jwk["kid"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("a JWK without kid"))?;
        if jwk["kty"] != "OKP" || jwk["crv"] != "Ed25519" {
            anyhow::bail!("key {kid} is not an Ed25519 key");
        }
        let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap_or_default())?;
        if x.len() != 32 {
            anyhow::bail!("key {kid}: an Ed25519 public key has 32 bytes");
        }
        let mut der = ED25519_SPKI_PREFIX.to_vec();
        der.extend(x);
        Ok(Self {
            kid: kid.to_string(),
            pem: format!(
                "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
                STANDARD.encode(der)
            ),
        })
    }
}

/// The route's public paths as Kong regex paths matching exactly them (and below `/docs`).
pub fn public_path_patterns(route: &crate::routes::Route) -> Vec<String> {
    route
        .public_paths()
        .iter()
        .map(|path| {
            let escaped = regex_escape(path);
            if path.ends_with("/docs") {
                format!("~{escaped}(/.*)?$")
            } else {
                format!("~{escaped}$")
            }
        })
        .collect()
}

/// `path` with the characters a regular expression gives meaning escaped.
fn regex_escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Headers on every answer, as `response-transformer` adds them.
const SECURITY_HEADERS: [&str; 2] = [
    "X-Content-Type-Options:nosniff",
    "Referrer-Policy:no-referrer",
];

fn response_headers(no_store: bool) -> Value {
    let mut headers: Vec<&str> = SECURITY_HEADERS.to_vec();
    if no_store {
        headers.push("Cache-Control:no-store");
    }
    json!({"name": "response-transformer", "config": {"add": {"headers": headers}}})
}

/// The upstream of a route whose pages carry a session its service keeps in memory (the
/// console): Kong resolves the headless Service to every pod and keeps each browser on one,
/// by a cookie of its own.
fn sticky_upstream(route: &crate::routes::Route) -> Value {
    json!({
        "name": format!("{}.upstream", route.service),
        "hash_on": "cookie",
        "hash_on_cookie": format!("{}_route", route.service),
        "hash_on_cookie_path": route.prefix,
        "targets": [{"target": format!("{}-pods:{}", route.service, platform::server::SERVICE_PORT)}],
    })
}

/// A route checked by its service alone (no token at the edge), to its sticky upstream.
fn session_service(route: &crate::routes::Route) -> Value {
    json!({
        "name": route.service,
        "host": format!("{}.upstream", route.service),
        "port": platform::server::SERVICE_PORT,
        "protocol": "http",
        "routes": [{"name": route.service, "paths": [route.prefix], "strip_path": false}],
    })
}

/// The declarative configuration as YAML.
pub fn render(keys: &[PublicKey], rate_limit_per_minute: u32) -> anyhow::Result<String> {
    let services: Vec<Value> = ROUTES
        .iter()
        .map(|route| {
            if !route.token_at_edge {
                return session_service(route);
            }
            let mut service = json!({
                "name": route.service,
                "url": format!("http://{}:{}", route.service, platform::server::SERVICE_PORT),
                "routes": [
                    {
                        "name": format!("{}-public", route.service),
                        "paths": public_path_patterns(route),
                        "strip_path": false,
                    },
                    {
                        "name": route.service,
                        "paths": [route.prefix],
                        "strip_path": false,
                        "plugins": [{
                            "name": "jwt",
                            "config": {
                                "key_claim_name": "kid",
                                "claims_to_verify": ["exp"],
                                "header_names": ["authorization"],
                                "uri_param_names": [],
                                "cookie_names": [],
                            },
                        }],
                    },
                ],
            });
            if route.no_store {
                service["plugins"] = json!([response_headers(true)]);
            }
            service
        })
        .collect();
    let secrets: Vec<Value> = keys
        .iter()
        .map(|key| json!({"key": key.kid, "algorithm": "EdDSA", "rsa_public_key": key.pem}))
        .collect();
    let upstreams: Vec<Value> = ROUTES
        .iter()
        .filter(|route| !route.token_at_edge)
        .map(sticky_upstream)
        .collect();
    let document = json!({
        "_format_version": "3.0",
        "services": services,
        "upstreams": upstreams,
        "consumers": [{"username": CONSUMER, "jwt_secrets": secrets}],
        "plugins": [
            {"name": "rate-limiting", "config": {"minute": rate_limit_per_minute, "policy": "local", "limit_by": "ip"}},
            {"name": "prometheus", "config": {"per_consumer": false, "status_code_metrics": true, "latency_metrics": true, "upstream_health_metrics": true}},
            {"name": "correlation-id", "config": {"header_name": "x-request-id", "generator": "uuid", "echo_downstream": true}},
            response_headers(false),
        ],
    });
    let header = "# Kong 3.9 DB-less configuration, written by `vivesphere gateway export-kong` from the\n\
                  # gateway's route table. Do not edit: change crates/gateway/src/routes.rs and export again.\n\
                  # The committed copy has no keys; the deployed one is exported with\n\
                  # `--authentication-url` so the consumer carries the current public keys.\n";
    Ok(format!("{header}{}", serde_norway::to_string(&document)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jwk_becomes_an_spki_pem() {
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": "k1",
            "x": URL_SAFE_NO_PAD.encode([7u8; 32])});
        let key = PublicKey::from_jwk(&jwk).unwrap();
        assert_eq!(key.kid, "k1");
        let body: String = key
            .pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let der = STANDARD.decode(body).unwrap();
        assert_eq!(&der[..12], &ED25519_SPKI_PREFIX);
        assert_eq!(&der[12..], &[7u8; 32]);
        assert!(PublicKey::from_jwk(&json!({"kty": "RSA", "kid": "r"})).is_err());
    }

    #[test]
    fn the_committed_kong_file_matches_the_route_table() {
        let committed = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../infrastructure/api_gateway/kong.yaml"
        ))
        .expect("infrastructure/api_gateway/kong.yaml exists");
        let expected = render(&[], crate::RateLimitSettings::default().per_minute).unwrap();
        assert!(
            committed == expected,
            "infrastructure/api_gateway/kong.yaml is out of date: run `vivesphere gateway export-kong --output infrastructure/api_gateway/kong.yaml`"
        );
    }

    #[test]
    fn every_route_is_in_the_kong_file_with_its_public_paths() {
        let text = render(&[], 100).unwrap();
        let document: Value = serde_norway::from_str(&text).unwrap();
        for route in ROUTES.iter().filter(|r| r.token_at_edge) {
            let service = document["services"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["name"] == route.service)
                .unwrap();
            assert_eq!(service["routes"][1]["paths"], json!([route.prefix]));
            assert_eq!(service["routes"][1]["plugins"][0]["name"], "jwt");
            assert_eq!(
                service["routes"][0]["paths"],
                json!(public_path_patterns(route))
            );
            assert!(service["routes"][0].get("plugins").is_none());
            let no_store = service["plugins"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|plugin| {
                    plugin["name"] == "response-transformer"
                        && plugin["config"]["add"]["headers"]
                            .as_array()
                            .unwrap()
                            .contains(&json!("Cache-Control:no-store"))
                });
            assert_eq!(no_store, route.no_store, "{}", route.service);
        }
        let global: Vec<&str> = document["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(global.contains(&"response-transformer"), "{global:?}");
    }

    #[test]
    fn the_console_route_has_no_token_check_and_keeps_a_browser_on_one_replica() {
        let document: Value = serde_norway::from_str(&render(&[], 100).unwrap()).unwrap();
        let services = document["services"].as_array().unwrap();
        let console = services.iter().find(|s| s["name"] == "console").unwrap();
        assert_eq!(
            console["routes"],
            json!([{"name": "console", "paths": ["/console"], "strip_path": false}])
        );
        assert_eq!(console["host"], "console.upstream");
        let upstream = &document["upstreams"][0];
        assert_eq!(upstream["name"], "console.upstream");
        assert_eq!(upstream["hash_on"], "cookie");
        assert_eq!(upstream["hash_on_cookie_path"], "/console");
        assert_eq!(upstream["targets"][0]["target"], "console-pods:8000");
        assert_eq!(
            kong_route(&document, "/console/bots").as_deref(),
            Some("console")
        );
        assert_eq!(
            document["upstreams"].as_array().unwrap().len(),
            1,
            "the API is not sticky"
        );
    }

    /// Which route Kong's router picks for `path` in `document`: regex paths first (Kong
    /// anchors them at the start), then the longest prefix.
    fn kong_route(document: &Value, path: &str) -> Option<String> {
        let routes: Vec<&Value> = document["services"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["routes"].as_array().unwrap())
            .collect();
        let paths = |route: &&Value| -> Vec<String> {
            route["paths"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap().to_string())
                .collect()
        };
        let by_regex = routes.iter().find(|route| {
            paths(route).iter().any(|p| {
                p.strip_prefix('~').is_some_and(|pattern| {
                    regex::Regex::new(&format!("^{pattern}"))
                        .unwrap()
                        .is_match(path)
                })
            })
        });
        if let Some(route) = by_regex {
            return route["name"].as_str().map(String::from);
        }
        routes
            .iter()
            .filter_map(|route| {
                paths(route)
                    .into_iter()
                    .filter(|p| !p.starts_with('~') && path.starts_with(p.as_str()))
                    .map(|p| p.len())
                    .max()
                    .map(|len| (len, route))
            })
            .max_by_key(|(len, _)| *len)
            .and_then(|(_, route)| route["name"].as_str().map(String::from))
    }

    #[test]
    fn only_whole_public_paths_pass_without_a_token() {
        let document: Value = serde_norway::from_str(&render(&[], 100).unwrap()).unwrap();
        for route in ROUTES.iter().filter(|r| r.token_at_edge) {
            let public = format!("{}-public", route.service);
            for path in route.public_paths() {
                assert_eq!(kong_route(&document, &path), Some(public.clone()), "{path}");
            }
            let docs_page = format!("{}/docs/index.html", route.prefix);
            assert_eq!(kong_route(&document, &docs_page), Some(public.clone()));
            for protected in ["", "/healthz", "/health/x", "/docsx", "/openapi.json.bak"] {
                let path = format!("{}{protected}", route.prefix);
                assert_eq!(
                    kong_route(&document, &path).as_deref(),
                    Some(route.service),
                    "{path}"
                );
            }
        }
        for protected in [
            "/api/v1/auth/login-as-admin",
            "/api/v1/auth/loginx",
            "/api/v1/auth/login/",
            "/api/v1/auth/login/mfa/x",
            "/api/v1/auth/-well-known/jwks-json",
            "/api/v1/auth/.well-known/jwks.json/keys",
        ] {
            assert_eq!(
                kong_route(&document, protected).as_deref(),
                Some("authentication"),
                "{protected} must be behind the jwt plugin"
            );
        }
    }
}
