//! A sweep over every operation of every service's OpenAPI document: each path parameter,
//! query parameter and string field of a body is sent once with a NUL character in it and
//! once as 64 KiB of text, and each body once larger than its route accepts. Whatever the
//! route and its extractor, the answer is never a 5xx, and every 4xx is in the standard
//! error shape; a NUL is always a 4xx and an oversized body a 413. It runs on SQLite, and on
//! PostgreSQL (which cannot store a NUL at all) with `VIVESPHERE_TEST_APP_DATABASE=postgres`.

use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::auth_helpers::admin_token;
use crate::helpers::{TestApp, spawn};

const PREFIXES: [&str; 5] = [
    "/api/v1/auth",
    "/api/v1/bots",
    "/api/v1/config",
    "/api/v1/logs",
    "/api/v1/botdata",
];

const NUL_TEXT: &str = "a\u{0}b";
const FORM: &str = "application/x-www-form-urlencoded";

/// Above the largest body limit of any service (the Logging service's 5 MiB).
const OVERSIZED_BYTES: usize = 6 * 1024 * 1024;

fn long_text() -> String {
    "x".repeat(64 * 1024)
}

/// Follows a `$ref` into the document's components.
fn resolve<'a>(schema: &'a Value, doc: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            resolve(doc.pointer(pointer).expect("a $ref that resolves"), doc)
        }
        None => schema,
    }
}

fn has_type(schema: &Value, name: &str) -> bool {
    match schema.get("type") {
        Some(Value::String(t)) => t == name,
        Some(Value::Array(types)) => types.iter().any(|t| t == name),
        _ => false,
    }
}

/// A value of `schema`, every field filled: strings are "sample" (or the first allowed
/// value), numbers 1, lists one item, free-form objects one string entry.
fn sample(schema: &Value, doc: &Value, depth: usize) -> Value {
    let schema = resolve(schema, doc);
    if depth > 6 {
        return Value::from("sample");
    }
    for combinator in ["allOf", "oneOf", "anyOf"] {
        if let Some(Value::Array(parts)) = schema.get(combinator) {
            let parts: Vec<Value> = parts
                .iter()
                .map(|part| sample(part, doc, depth + 1))
                .filter(|value| !value.is_null())
                .collect();
            if combinator != "allOf" {
                return parts.into_iter().next().unwrap_or(Value::Null);
            }
            let mut merged = Map::new();
            for part in parts {
                if let Value::Object(map) = part {
                    merged.extend(map);
                } else {
                    return part;
                }
            }
            return Value::Object(merged);
        }
    }
    if let Some(Value::Array(values)) = schema.get("enum") {
        return values.first().cloned().unwrap_or(Value::Null);
    }
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        return Value::Object(
            properties
                .iter()
                .map(|(name, property)| (name.clone(), sample(property, doc, depth + 1)))
                .collect(),
        );
    }
    if has_type(schema, "string") {
        Value::from("sample")
    } else if has_type(schema, "integer") || has_type(schema, "number") {
        Value::from(schema.get("minimum").and_then(Value::as_i64).unwrap_or(1))
    } else if has_type(schema, "boolean") {
        Value::from(true)
    } else if has_type(schema, "array") {
        let item = schema
            .get("items")
            .cloned()
            .unwrap_or(json!({"type": "string"}));
        Value::Array(vec![sample(&item, doc, depth + 1)])
    } else if has_type(schema, "null") {
        Value::Null
    } else {
        // A free-form object (or an untyped value).
        json!({"sample": "sample"})
    }
}

/// JSON pointers of every string in `value`.
fn string_pointers(value: &Value, prefix: String, out: &mut Vec<String>) {
    match value {
        Value::String(_) => out.push(prefix),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                string_pointers(item, format!("{prefix}/{i}"), out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                string_pointers(item, format!("{prefix}/{key}"), out);
            }
        }
        _ => {}
    }
}

fn with_string(value: &Value, pointer: &str, text: &str) -> Value {
    let mut copy = value.clone();
    *copy.pointer_mut(pointer).unwrap() = Value::from(text);
    copy
}

fn form_of(value: &Value) -> String {
    let pairs: Vec<(String, String)> = value
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), text)
                })
                .collect()
        })
        .unwrap_or_default();
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// One request of the sweep and what it may answer.
struct Probe {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    body: Option<(&'static str, Vec<u8>)>,
    expect: Expect,
    what: String,
}

#[derive(Clone, Copy, Debug)]
enum Expect {
    /// A 4xx in the error shape.
    ClientError,
    /// 413 in the error shape.
    TooLarge,
    /// Anything but a 5xx; a 4xx in the error shape.
    NoServerError,
}

fn percent_encoded(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Every probe of one operation.
fn probes_of(path: &str, method: Method, operation: &Value, doc: &Value) -> Vec<Probe> {
    let parameters: Vec<&Value> = operation
        .get("parameters")
        .and_then(Value::as_array)
        .map(|ps| ps.iter().map(|p| resolve(p, doc)).collect())
        .unwrap_or_default();
    let path_params: Vec<&str> = parameters
        .iter()
        .filter(|p| p["in"] == "path")
        .filter_map(|p| p["name"].as_str())
        .collect();
    let concrete = |nul_in: Option<&str>| {
        let mut concrete = path.to_string();
        for name in &path_params {
            let value = if Some(*name) == nul_in {
                percent_encoded(NUL_TEXT)
            } else {
                "sample".to_string()
            };
            concrete = concrete.replace(&format!("{{{name}}}"), &value);
        }
        concrete
    };
    let body = operation
        .pointer("/requestBody/content")
        .and_then(Value::as_object)
        .and_then(|content| {
            content
                .iter()
                .find(|(media, _)| media.as_str() == "application/json" || media.as_str() == FORM)
                .map(|(media, body)| {
                    let media: &'static str = if media == FORM {
                        FORM
                    } else {
                        "application/json"
                    };
                    (media, sample(&body["schema"], doc, 0))
                })
        });
    let encode = |media: &'static str, value: &Value| -> (&'static str, Vec<u8>) {
        if media == FORM {
            (media, form_of(value).into_bytes())
        } else {
            (media, value.to_string().into_bytes())
        }
    };
    let base_body = body.as_ref().map(|(media, value)| encode(media, value));
    let probe = |path: String, query: Vec<(String, String)>, body, expect, what: String| Probe {
        method: method.clone(),
        path,
        query,
        body,
        expect,
        what,
    };

    let mut probes = Vec::new();
    for name in &path_params {
        probes.push(probe(
            concrete(Some(name)),
            Vec::new(),
            base_body.clone(),
            Expect::ClientError,
            format!("NUL in path parameter {name}"),
        ));
    }
    for parameter in parameters.iter().filter(|p| p["in"] == "query") {
        let name = parameter["name"].as_str().unwrap().to_string();
        let schema = resolve(&parameter["schema"], doc);
        if !has_type(schema, "string") && schema.get("type").is_some() {
            continue;
        }
        probes.push(probe(
            concrete(None),
            vec![(name.clone(), NUL_TEXT.to_string())],
            base_body.clone(),
            Expect::ClientError,
            format!("NUL in query parameter {name}"),
        ));
    }
    if let Some((media, value)) = &body {
        let mut pointers = Vec::new();
        string_pointers(value, String::new(), &mut pointers);
        for pointer in &pointers {
            probes.push(probe(
                concrete(None),
                Vec::new(),
                Some(encode(media, &with_string(value, pointer, NUL_TEXT))),
                Expect::ClientError,
                format!("NUL in body field {pointer}"),
            ));
            probes.push(probe(
                concrete(None),
                Vec::new(),
                Some(encode(media, &with_string(value, pointer, &long_text()))),
                Expect::NoServerError,
                format!("64 KiB in body field {pointer}"),
            ));
        }
        let oversized = match *media {
            FORM => format!("sample={}", "x".repeat(OVERSIZED_BYTES)).into_bytes(),
            _ => json!({"sample": "x".repeat(OVERSIZED_BYTES)})
                .to_string()
                .into_bytes(),
        };
        probes.push(probe(
            concrete(None),
            Vec::new(),
            Some((media, oversized)),
            Expect::TooLarge,
            "an oversized body".to_string(),
        ));
    }
    probes
}

fn is_error_shape(body: &Value) -> bool {
    body["status"] == "error"
        && body["error_code"].is_string()
        && body["message"].is_string()
        && body["request_id"].as_str().is_some_and(|id| !id.is_empty())
}

async fn send(app: &TestApp, token: &str, probe: &Probe) -> (StatusCode, String) {
    let mut url = reqwest::Url::parse(&app.url(&probe.path)).unwrap();
    if !probe.query.is_empty() {
        url.query_pairs_mut().extend_pairs(&probe.query);
    }
    let mut request = app
        .client
        .request(probe.method.clone(), url)
        .bearer_auth(token);
    if let Some((media, body)) = &probe.body {
        request = request.header("content-type", *media).body(body.clone());
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

/// Signs in again if something in the sweep ended the admin's session (a logout).
async fn live_token(app: &TestApp, token: &mut String) {
    let valid = app
        .client
        .get(app.url("/api/v1/auth/validate"))
        .bearer_auth(&*token)
        .send()
        .await
        .unwrap()
        .status()
        .is_success();
    if !valid {
        *token = admin_token(app).await;
    }
}

#[tokio::test]
async fn every_operation_refuses_nul_and_oversized_input_in_the_error_shape() {
    // Failed sign-ins from the sweep must not lock the admin's address out.
    let app = spawn(
        None,
        &[("VIVESPHERE_AUTHENTICATION__BRUTE_FORCE__ENABLED", "false")],
        None,
    )
    .await;
    let mut token = admin_token(&app).await;
    let mut failures = Vec::new();
    let mut sent = 0;
    for prefix in PREFIXES {
        let doc: Value = app
            .get(&format!("{prefix}/openapi.json"))
            .await
            .json()
            .await
            .unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let Ok(method) = method.to_uppercase().parse::<Method>() else {
                    continue;
                };
                if !operation.is_object() {
                    continue;
                }
                for probe in probes_of(path, method, operation, &doc) {
                    live_token(&app, &mut token).await;
                    let (status, text) = send(&app, &token, &probe).await;
                    sent += 1;
                    let shaped = serde_json::from_str::<Value>(&text)
                        .is_ok_and(|body| is_error_shape(&body));
                    let ok = match probe.expect {
                        Expect::ClientError => status.is_client_error() && shaped,
                        Expect::TooLarge => status == StatusCode::PAYLOAD_TOO_LARGE && shaped,
                        Expect::NoServerError => {
                            !status.is_server_error() && (!status.is_client_error() || shaped)
                        }
                    };
                    if !ok {
                        let shown: String = text.chars().take(300).collect();
                        failures.push(format!(
                            "{} {} ({}): expected {:?}, got {status} {shown}",
                            probe.method, probe.path, probe.what, probe.expect
                        ));
                    }
                }
            }
        }
    }
    eprintln!("sweep: {sent} probes");
    assert!(sent > 300, "the sweep sent only {sent} requests");
    assert!(
        failures.is_empty(),
        "{} of {sent} probes failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
