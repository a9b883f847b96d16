//! Text no request may carry: the NUL character (U+0000).
//!
//! PostgreSQL's `text` and `jsonb` cannot hold it, so a NUL that got as far as a query made
//! the request fail with a 500 there, while SQLite stored it. Both backends must answer the
//! same, so a NUL is refused where requests come in, naming where it was: in the path or a
//! query parameter ([`refuse_nul_in_uri`], around every route), in a JSON body (our `Json`
//! extractor, with [`nul_field`]) and in a form body ([`check_form`]). A NUL that still
//! reaches the database (from a path no check covered) is a 400 too, not a 500
//! ([`is_nul_in_database`]).

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::error::ApiError;

/// The refusal, naming the field.
pub fn nul_error(field: &str) -> ApiError {
    ApiError::invalid_data(format!(
        "{field}: text must not contain the NUL character (\\u0000 or %00)"
    ))
    .with_field("field", field)
}

/// Where in `value` a key or a string holds a NUL, as a path (`log_data.tags[2]`), if
/// anywhere.
pub fn nul_field(value: &Value) -> Option<String> {
    fn walk(value: &Value, path: &mut String) -> bool {
        match value {
            Value::String(text) => text.contains('\0'),
            Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            Value::Object(map) => map.iter().any(|(key, item)| {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&key.replace('\0', "\\u0000"));
                let found = key.contains('\0') || walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            _ => false,
        }
    }
    let mut path = String::new();
    walk(value, &mut path).then(|| {
        if path.is_empty() {
            "body".to_string()
        } else {
            path
        }
    })
}

/// Whether raw JSON text may hold a NUL: the only way JSON writes one is the escape
/// `\u0000` (raw control characters are not valid JSON, and the `u` is lowercase). A cheap
/// first look; `nul_field` on the parsed value decides (`\\u0000` is no NUL).
pub fn json_may_hold_nul(body: &[u8]) -> bool {
    memchr::memmem::find(body, b"\\u0000").is_some()
}

/// Refuses a form body (`application/x-www-form-urlencoded`) with a NUL in a name or value.
pub fn check_form(body: &[u8]) -> Result<(), ApiError> {
    match form_urlencoded::parse(body)
        .find(|(key, value)| key.contains('\0') || value.contains('\0'))
    {
        Some((key, _)) => Err(nul_error(&key.replace('\0', "\\u0000"))),
        None => Ok(()),
    }
}

/// The field of a request's URI that holds a percent-encoded NUL: `path`, or the query
/// parameter's name.
fn nul_in_uri(uri: &axum::http::Uri) -> Option<String> {
    if uri.path().contains("%00") {
        return Some("path".to_string());
    }
    let query = uri.query()?;
    if !query.contains("%00") {
        return None;
    }
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, value)| key.contains('\0') || value.contains('\0'))
        .map(|(key, _)| format!("query parameter {}", key.replace('\0', "\\u0000")))
        .or(Some("query".to_string()))
}

/// Middleware: 400 `INVALID_DATA` for a request whose path or query holds a NUL.
pub async fn refuse_nul_in_uri(request: Request, next: Next) -> Response {
    match nul_in_uri(request.uri()) {
        Some(field) => nul_error(&field).into_response(),
        None => next.run(request).await,
    }
}

/// Whether a failure is the database refusing a NUL in text (PostgreSQL's `22021`
/// "invalid byte sequence" and `22P05` "unsupported Unicode escape sequence").
pub fn is_nul_in_database(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<sqlx::Error>(),
            Some(sqlx::Error::Database(db))
                if matches!(db.code().as_deref(), Some("22021" | "22P05"))
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_field_holding_a_nul_is_named() {
        assert_eq!(nul_field(&json!({"a": "fine", "b": 1})), None);
        assert_eq!(
            nul_field(&json!({"log_data": {"message": "x\u{0}y"}})).as_deref(),
            Some("log_data.message")
        );
        assert_eq!(
            nul_field(&json!({"tags": ["ok", "b\u{0}ad"]})).as_deref(),
            Some("tags[1]")
        );
        assert_eq!(
            nul_field(&json!({"k\u{0}": 1})).as_deref(),
            Some("k\\u0000")
        );
        assert_eq!(nul_field(&json!("\u{0}")).as_deref(), Some("body"));
    }

    #[test]
    fn json_text_is_looked_at_cheaply_first() {
        assert!(json_may_hold_nul(br#"{"a":"\u0000"}"#));
        assert!(!json_may_hold_nul(br#"{"a":"\u0001"}"#));
    }

    #[test]
    fn forms_and_uris_name_the_field() {
        assert!(check_form(b"grant_type=client_credentials&client_id=a").is_ok());
        let err = check_form(b"grant_type=client_credentials&client_id=a%00b").unwrap_err();
        assert!(err.message.starts_with("client_id:"), "{}", err.message);
        let uri: axum::http::Uri = "/api/v1/logs/export?format=csv&q=%00".parse().unwrap();
        assert_eq!(nul_in_uri(&uri).as_deref(), Some("query parameter q"));
        let uri: axum::http::Uri = "/api/v1/bots/ab%00c".parse().unwrap();
        assert_eq!(nul_in_uri(&uri).as_deref(), Some("path"));
        let uri: axum::http::Uri = "/api/v1/bots?cursor=%2500".parse().unwrap();
        assert_eq!(nul_in_uri(&uri), None, "%2500 is the text %00, not a NUL");
    }
}
