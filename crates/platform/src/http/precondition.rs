//! Versions as ETags and `If-Match` for check-and-set writes: the ETag is the version number
//! in quotes (`"12"`), and a write carrying `If-Match` proceeds only at that version.

use axum::http::{HeaderMap, HeaderValue};

use super::error::ApiError;

pub fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("digits are a valid header")
}

/// The version an `If-Match` header names, if one was sent; 400 when it is not one.
pub fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get(axum::http::header::IF_MATCH) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .map(|v| v.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|v| v.parse::<i64>().ok())
        .map(Some)
        .ok_or_else(|| ApiError::invalid_data("If-Match: the ETag as it was given, e.g. \"3\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_reads_strong_and_weak_etags_and_refuses_others() {
        let headers = |value: &str| {
            let mut map = HeaderMap::new();
            map.insert(axum::http::header::IF_MATCH, value.parse().unwrap());
            map
        };
        assert_eq!(if_match(&HeaderMap::new()).unwrap(), None);
        assert_eq!(if_match(&headers("\"12\"")).unwrap(), Some(12));
        assert_eq!(if_match(&headers("W/\"3\"")).unwrap(), Some(3));
        assert!(if_match(&headers("\"abc\"")).is_err());
        assert_eq!(etag(7), "\"7\"");
    }
}
