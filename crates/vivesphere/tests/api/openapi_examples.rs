//! Every request body in the five OpenAPI documents has an example (what Swagger UI's "Try it
//! out" fills in) that matches the body's own schema, and the examples of requests that need
//! nothing else first are accepted by the running service as they are.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::auth_helpers::{admin_token, send_json};
use crate::helpers::spawn_app;
use crate::routes::operations;

const PREFIXES: [&str; 5] = [
    "/api/v1/auth",
    "/api/v1/bots",
    "/api/v1/config",
    "/api/v1/logs",
    "/api/v1/botdata",
];

/// The example of a request body and the schema it must match, resolved in `doc`.
fn example_and_schema(doc: &Value, body: &Value) -> (Option<Value>, Value) {
    let content = body["content"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap();
    let schema = content["schema"].clone();
    let component = |reference: &Value| {
        let name = reference.as_str()?.rsplit('/').next()?;
        doc["components"]["schemas"][name]["example"]
            .as_object()
            .map(|example| Value::Object(example.clone()))
    };
    let example = content
        .get("example")
        .cloned()
        .or_else(|| component(&schema["$ref"]))
        // An array of a documented item: one item's example.
        .or_else(|| component(&schema["items"]["$ref"]).map(|item| json!([item])));
    (example, schema)
}

/// Whether the body is a file (`type: string, format: binary`), directly or by reference.
fn is_file(doc: &Value, schema: &Value) -> bool {
    let resolved = schema["$ref"]
        .as_str()
        .and_then(|r| r.rsplit('/').next())
        .map(|name| &doc["components"]["schemas"][name])
        .unwrap_or(schema);
    resolved["type"] == "string" && resolved["format"] == "binary"
}

fn matches(doc: &Value, schema: &Value, instance: &Value) -> Result<(), String> {
    let mut root = json!({"components": doc["components"]});
    root.as_object_mut()
        .unwrap()
        .extend(schema.as_object().unwrap().clone());
    let validator = jsonschema::draft202012::new(&root).map_err(|err| err.to_string())?;
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|err| err.to_string())
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

#[tokio::test]
async fn every_request_body_has_an_example_that_matches_its_schema_and_works() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let mut examples = std::collections::BTreeMap::new();
    for prefix in PREFIXES {
        let doc: Value = app
            .get(&format!("{prefix}/openapi.json"))
            .await
            .json()
            .await
            .unwrap();
        for (method, path, operation) in operations(&doc) {
            let Some(body) = operation.get("requestBody") else {
                continue;
            };
            let (example, schema) = example_and_schema(&doc, body);
            if is_file(&doc, &schema) {
                // A file upload: Swagger UI offers a file picker, not an example.
                continue;
            }
            let example = example.unwrap_or_else(|| panic!("{method} {path}: no example"));
            if let Err(why) = matches(&doc, &schema, &example) {
                panic!("{method} {path}: the example does not match its schema: {why}");
            }
            examples.insert((method, path), example);
        }
    }
    assert!(examples.len() >= 30, "{} request bodies", examples.len());

    // The ones that need nothing created first, sent as published.
    for (method, path, expected) in [
        ("POST", "/api/v1/auth/users", StatusCode::CREATED),
        ("POST", "/api/v1/auth/roles", StatusCode::CREATED),
        ("POST", "/api/v1/auth/clients", StatusCode::CREATED),
        ("POST", "/api/v1/bots/check-text", StatusCode::OK),
        ("POST", "/api/v1/config/update", StatusCode::OK),
        ("POST", "/api/v1/botdata/store", StatusCode::CREATED),
    ] {
        let example = examples[&(method.to_string(), path.to_string())].clone();
        let response = send_json(&app, Method::POST, path, &admin, example).await;
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, expected, "{method} {path}: {body}");
    }
}
