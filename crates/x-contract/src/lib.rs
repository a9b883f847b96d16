//! X API v2's published contract, checked: the document (`third_party/x-api/`, a JSON Schema
//! transcription of X's OpenAPI document 2.98) is compiled in, and requests and responses are
//! validated against it with the `jsonschema` crate. The fake X validates what it is sent, the
//! Bot Manager's X client validates what it sends, and the fake's own answers are validated
//! as they leave (see `fake_x`), so a drift between any of them and X's document is a failing
//! test rather than a surprise at X.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use jsonschema::Validator;
use serde_json::{Value, json};

const DOCUMENT_TEXT: &str = include_str!("../../../third_party/x-api/x-api-v2-2.98.schema.json");

static DOCUMENT: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(DOCUMENT_TEXT).expect("the vendored X API document is JSON")
});

/// Compiled validators, one per schema, built on first use.
static VALIDATORS: LazyLock<Mutex<HashMap<String, Arc<Validator>>>> =
    LazyLock::new(Default::default);

/// The operations of the document a posting bot uses, by their `operationId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    CreateTweet,
    DeleteTweet,
    FindTweet,
    FindMe,
    UserTweets,
}

impl Operation {
    pub const ALL: [Operation; 5] = [
        Self::CreateTweet,
        Self::DeleteTweet,
        Self::FindTweet,
        Self::FindMe,
        Self::UserTweets,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Self::CreateTweet => "createTweet",
            Self::DeleteTweet => "deleteTweetById",
            Self::FindTweet => "findTweetById",
            Self::FindMe => "findMyUser",
            Self::UserTweets => "usersIdTweets",
        }
    }

    fn endpoint(self) -> &'static Value {
        &DOCUMENT["x-endpoints"][self.id()]
    }

    /// The HTTP method and path template (`/2/tweets/{id}`) the document gives.
    pub fn route(self) -> (&'static str, &'static str) {
        let endpoint = self.endpoint();
        (
            endpoint["method"].as_str().unwrap_or(""),
            endpoint["path"].as_str().unwrap_or(""),
        )
    }

    /// The operation a request is for, if the document has it.
    pub fn matching(method: &str, path: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| {
            let (m, template) = op.route();
            m.eq_ignore_ascii_case(method) && path_matches(template, path)
        })
    }

    /// The OAuth 2.0 user-context scopes the document asks for.
    pub fn scopes(self) -> Vec<&'static str> {
        self.security("OAuth2UserToken").unwrap_or_default()
    }

    /// Whether an app-only bearer token may call it.
    pub fn allows_app_only(self) -> bool {
        self.security("BearerToken").is_some()
    }

    fn security(self, scheme: &str) -> Option<Vec<&'static str>> {
        let options = self.endpoint()["security"].as_array()?;
        options.iter().find_map(|option| {
            option[scheme]
                .as_array()
                .map(|scopes| scopes.iter().filter_map(Value::as_str).collect())
        })
    }

    /// The operation's parameters: name, where (`path` or `query`), schema.
    fn parameters(self) -> Vec<(&'static str, &'static str, &'static Value)> {
        let listed = self.endpoint()["parameters"].as_array();
        listed
            .into_iter()
            .flatten()
            .filter_map(|parameter| {
                let parameter = match parameter["$ref"].as_str() {
                    Some(reference) => resolve(reference)?,
                    None => parameter,
                };
                Some((
                    parameter["name"].as_str()?,
                    parameter["in"].as_str()?,
                    &parameter["schema"],
                ))
            })
            .collect()
    }
}

fn path_matches(template: &str, path: &str) -> bool {
    let (mut want, mut got) = (template.split('/'), path.split('/'));
    loop {
        match (want.next(), got.next()) {
            (None, None) => return true,
            (Some(w), Some(g)) if w.starts_with('{') || w == g => {}
            _ => return false,
        }
    }
}

fn resolve(reference: &str) -> Option<&'static Value> {
    DOCUMENT.pointer(reference.strip_prefix('#')?)
}

fn validator(key: &str, schema: &Value) -> Arc<Validator> {
    let mut cache = VALIDATORS.lock().unwrap_or_else(|p| p.into_inner());
    cache
        .entry(key.to_string())
        .or_insert_with(|| {
            // The schema with the document's definitions around it, so `#/$defs/…` resolve.
            let mut root = json!({"$defs": DOCUMENT["$defs"].clone()});
            if let (Some(root), Some(schema)) = (root.as_object_mut(), schema.as_object()) {
                root.extend(schema.clone());
            }
            Arc::new(
                jsonschema::draft202012::new(&root)
                    .unwrap_or_else(|e| panic!("X API schema {key} does not compile: {e}")),
            )
        })
        .clone()
}

/// One way an instance differs from its schema: where (a JSON pointer) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub at: String,
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.at.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.at, self.message)
        }
    }
}

fn violations(key: &str, schema: &Value, instance: &Value) -> Vec<Violation> {
    validator(key, schema)
        .iter_errors(instance)
        .map(|error| Violation {
            at: error.instance_path().as_str().to_string(),
            message: error.to_string(),
        })
        .collect()
}

/// Validates `instance` against the document's definition `name` (`TweetCreateRequest`, …).
pub fn check_definition(name: &str, instance: &Value) -> Vec<Violation> {
    violations(name, &json!({"$ref": format!("#/$defs/{name}")}), instance)
}

/// Validates a request body against what the operation's `requestBody` says.
pub fn check_request_body(operation: Operation, body: &Value) -> Vec<Violation> {
    let schema = &operation.endpoint()["requestBody"]["content"]["application/json"]["schema"];
    if schema.is_null() {
        return vec![Violation {
            at: String::new(),
            message: format!("{} takes no body", operation.id()),
        }];
    }
    violations(&format!("{}.request", operation.id()), schema, body)
}

/// A parameter the document does not allow: its name, the value sent, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadParameter {
    pub name: String,
    pub value: String,
    pub message: String,
}

/// Validates path and query parameters as the document describes them: unknown query
/// parameters, values outside a field list's enum, ids that do not match their pattern,
/// numbers out of range. Comma-separated lists are checked item by item, as X does.
pub fn check_parameters(
    operation: Operation,
    path: &[(&str, &str)],
    query: &[(String, String)],
) -> Vec<BadParameter> {
    let declared = operation.parameters();
    let mut bad = Vec::new();
    for (name, value) in query {
        if !declared
            .iter()
            .any(|(n, place, _)| n == name && *place == "query")
        {
            let known: Vec<&str> = declared
                .iter()
                .filter(|(_, place, _)| *place == "query")
                .map(|(n, _, _)| *n)
                .collect();
            bad.push(BadParameter {
                name: name.clone(),
                value: value.clone(),
                message: format!(
                    "The query parameter [{name}] is not one of [{}]",
                    known.join(",")
                ),
            });
        }
    }
    for (name, place, schema) in declared {
        let given: Vec<&str> = match place {
            "path" => path
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, v)| *v)
                .collect(),
            _ => query
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .collect(),
        };
        for value in given {
            let key = format!("{}.{place}.{name}", operation.id());
            if let Some(message) = parameter_problem(&key, name, schema, value) {
                bad.push(BadParameter {
                    name: name.to_string(),
                    value: value.to_string(),
                    message,
                });
            }
        }
    }
    bad
}

/// Why one parameter value does not fit its schema, as X words it.
fn parameter_problem(key: &str, name: &str, schema: &Value, value: &str) -> Option<String> {
    let schema = match schema["$ref"].as_str() {
        Some(reference) => resolve(reference).unwrap_or(schema),
        None => schema,
    };
    let instance = match schema["type"].as_str() {
        Some("array") => Value::from(value.split(',').map(Value::from).collect::<Vec<_>>()),
        Some("integer") => match value.parse::<i64>() {
            Ok(n) => Value::from(n),
            Err(_) => {
                return Some(format!(
                    "The `{name}` query parameter value [{value}] is not a number"
                ));
            }
        },
        _ => Value::from(value),
    };
    let found = violations(key, schema, &instance);
    if found.is_empty() {
        return None;
    }
    if let Some(allowed) = schema["items"]["enum"].as_array() {
        let allowed: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
        let wrong: Vec<&str> = value.split(',').filter(|v| !allowed.contains(v)).collect();
        if !wrong.is_empty() {
            return Some(format!(
                "The `{name}` query parameter value [{}] is not one of [{}]",
                wrong.join(","),
                allowed.join(",")
            ));
        }
    }
    if let Some(pattern) = schema["pattern"].as_str() {
        return Some(format!(
            "The `{name}` query parameter value [{value}] does not match {pattern}"
        ));
    }
    Some(format!(
        "The `{name}` query parameter value [{value}] is invalid: {}",
        found[0]
    ))
}

/// The values a field-list parameter allows (`tweet.fields`, `expansions`, …), by the name
/// of its definition in the document (`TweetFieldsParameter`).
pub fn allowed_values(parameter: &str) -> Vec<&'static str> {
    DOCUMENT["x-parameters"][parameter]["schema"]["items"]["enum"]
        .as_array()
        .map(|values| values.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Validates a response: a status the operation lists is checked against its schema; any
/// other status is an error, `application/json` → `Error` or `application/problem+json` →
/// `Problem` narrowed by its `type` to the problem the document maps it to.
pub fn check_response(
    operation: Operation,
    status: u16,
    content_type: &str,
    body: &Value,
) -> Vec<Violation> {
    let responses = &operation.endpoint()["responses"];
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    let declared = &responses[status.to_string()];
    let (response, key) = if declared.is_null() {
        (
            &responses["default"],
            format!("{}.default.{media_type}", operation.id()),
        )
    } else {
        (
            declared,
            format!("{}.{status}.{media_type}", operation.id()),
        )
    };
    let Some(schema) = response["content"][media_type]["schema"].as_object() else {
        return vec![Violation {
            at: String::new(),
            message: format!(
                "{} answers {status} with content type `{content_type}`, which the document does not list",
                operation.id()
            ),
        }];
    };
    let mut found = violations(&key, &Value::Object(schema.clone()), body);
    found.retain(|v| !is_known_document_defect(v));
    if media_type == "application/problem+json" {
        found.extend(check_problem_type(body));
    }
    found
}

/// Where X's document contradicts itself, X's behaviour wins: `ReplySettingsWithVerifiedUsers`
/// lists `mentionedUsers` in its enum (and posts are created with it) but its pattern allows
/// at most 12 letters, so a post X shows with `reply_settings: mentionedUsers` breaks it.
fn is_known_document_defect(violation: &Violation) -> bool {
    violation.at.ends_with("/reply_settings")
        && violation
            .message
            .starts_with("\"mentionedUsers\" does not match")
}

/// A problem checked against the definition its `type` maps to (the document's
/// discriminator, which JSON Schema itself does not apply).
fn check_problem_type(body: &Value) -> Vec<Violation> {
    let mapping = &DOCUMENT["$defs"]["Problem"]["discriminator"]["mapping"];
    let kind = body["type"].as_str().unwrap_or("");
    match mapping[kind].as_str().and_then(|r| r.rsplit('/').next()) {
        Some(definition) => check_definition(definition, body),
        None => vec![Violation {
            at: "/type".into(),
            message: format!("`{kind}` is not a problem type of the document"),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_in_the_document_with_its_route() {
        let routes: Vec<_> = Operation::ALL.iter().map(|op| op.route()).collect();
        assert_eq!(
            routes,
            [
                ("POST", "/2/tweets"),
                ("DELETE", "/2/tweets/{id}"),
                ("GET", "/2/tweets/{id}"),
                ("GET", "/2/users/me"),
                ("GET", "/2/users/{id}/tweets"),
            ]
        );
        assert_eq!(
            Operation::matching("GET", "/2/tweets/123"),
            Some(Operation::FindTweet)
        );
        assert_eq!(
            Operation::matching("GET", "/2/users/me"),
            Some(Operation::FindMe)
        );
        assert_eq!(
            Operation::matching("GET", "/2/users/1/tweets"),
            Some(Operation::UserTweets)
        );
        assert_eq!(Operation::matching("PUT", "/2/tweets"), None);
    }

    #[test]
    fn scopes_and_app_only_come_from_the_security_requirements() {
        assert_eq!(
            Operation::CreateTweet.scopes(),
            ["tweet.read", "tweet.write", "users.read"]
        );
        assert!(!Operation::CreateTweet.allows_app_only());
        assert!(Operation::FindTweet.allows_app_only());
        assert!(!Operation::FindMe.allows_app_only());
    }

    #[test]
    fn a_create_request_is_checked_against_tweet_create_request() {
        assert!(check_request_body(Operation::CreateTweet, &json!({"text": "hi"})).is_empty());
        for bad in [
            json!({"text": 5}),
            json!({"text": "hi", "colour": "red"}),
            json!({"media": {"media_ids": []}}),
            json!({"media": {"media_ids": ["1", "2", "3", "4", "5"]}}),
            json!({"media": {"media_ids": ["12345678901234567890"]}}),
            json!({"poll": {"options": ["only one"], "duration_minutes": 60}}),
            json!({"poll": {"options": ["a", "b"], "duration_minutes": 4}}),
            json!({"reply_settings": "everyone"}),
            json!({"reply": {"in_reply_to_tweet_id": "not-an-id"}}),
        ] {
            assert!(
                !check_request_body(Operation::CreateTweet, &bad).is_empty(),
                "{bad}"
            );
        }
    }

    #[test]
    fn parameters_are_checked_by_their_schemas() {
        let q = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        assert!(
            check_parameters(
                Operation::FindTweet,
                &[("id", "123")],
                &q("tweet.fields", "created_at,author_id")
            )
            .is_empty()
        );
        let bad = check_parameters(Operation::FindTweet, &[("id", "not-an-id")], &[]);
        assert_eq!(bad.len(), 1);
        assert!(bad[0].message.contains("^[0-9]{1,19}$"), "{:?}", bad[0]);
        let bad = check_parameters(
            Operation::FindTweet,
            &[("id", "1")],
            &q("tweet.fields", "created_at,bogus"),
        );
        assert!(
            bad[0].message.contains("[bogus] is not one of"),
            "{:?}",
            bad[0]
        );
        let bad = check_parameters(Operation::FindTweet, &[("id", "1")], &q("colour", "red"));
        assert!(bad[0].message.contains("[colour]"), "{:?}", bad[0]);
        let bad = check_parameters(
            Operation::UserTweets,
            &[("id", "1")],
            &q("max_results", "500"),
        );
        assert_eq!(bad.len(), 1);
        assert!(allowed_values("TweetFieldsParameter").contains(&"conversation_id"));
    }

    #[test]
    fn responses_are_checked_by_status_and_content_type() {
        let created = json!({"data": {"id": "1", "text": "hi"}});
        assert!(
            check_response(Operation::CreateTweet, 201, "application/json", &created).is_empty()
        );
        let bad_id = json!({"data": {"id": "x1", "text": "hi"}});
        assert!(
            !check_response(Operation::CreateTweet, 201, "application/json", &bad_id).is_empty()
        );
        let problem = json!({"type": "about:blank", "title": "Unauthorized", "status": 401, "detail": "Unauthorized"});
        assert!(
            check_response(
                Operation::CreateTweet,
                401,
                "application/problem+json",
                &problem
            )
            .is_empty()
        );
        // A problem sent as plain JSON is not an `Error {code, message}`.
        assert!(
            !check_response(Operation::CreateTweet, 400, "application/json", &problem).is_empty()
        );
        let unknown = json!({"type": "https://example.com/nope", "title": "Nope"});
        assert!(
            !check_response(
                Operation::CreateTweet,
                400,
                "application/problem+json",
                &unknown
            )
            .is_empty()
        );
        let not_found = json!({"type": "https://api.twitter.com/2/problems/resource-not-found", "title": "Not Found Error"});
        assert!(
            !check_response(
                Operation::FindTweet,
                404,
                "application/problem+json",
                &not_found
            )
            .is_empty()
        );
        assert!(!check_response(Operation::FindTweet, 200, "text/plain", &json!({})).is_empty());
        // The one place the document contradicts itself is let through, and only that.
        let post = |setting: &str| json!({"data": {"id": "1", "text": "t", "edit_history_tweet_ids": ["1"], "reply_settings": setting}});
        assert!(
            check_response(
                Operation::FindTweet,
                200,
                "application/json",
                &post("mentionedUsers")
            )
            .is_empty()
        );
        assert!(
            !check_response(
                Operation::FindTweet,
                200,
                "application/json",
                &post("mentionedUsersX")
            )
            .is_empty()
        );
    }
}
