//! Headers every answer of the process carries: `X-Content-Type-Options: nosniff` and a
//! strict `Referrer-Policy` on all of them, a `Content-Security-Policy` on HTML pages (the
//! Swagger UI: everything from this origin, nothing from another), and `Cache-Control:
//! no-store` on every answer under a prefix whose answers carry tokens or secrets — whoever
//! produced it (the service, its health route, a 404, the edge's 401 or 429).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The policy of the HTML pages the binary serves. Swagger UI needs its own scripts and
/// styles (and inline style attributes), its images (some as data: URIs) and the document
/// it fetches; nothing else, and never anything from elsewhere.
pub const CONTENT_SECURITY_POLICY_HTML: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
    connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Which answers must never be stored by a cache.
#[derive(Debug, Clone, Default)]
pub struct ResponsePolicy {
    no_store_prefixes: Arc<[&'static str]>,
}

impl ResponsePolicy {
    /// Every answer for a path under one of `prefixes` is `no-store`.
    pub fn no_store_under(prefixes: impl IntoIterator<Item = &'static str>) -> Self {
        Self {
            no_store_prefixes: prefixes.into_iter().collect(),
        }
    }

    fn no_store(&self, path: &str) -> bool {
        self.no_store_prefixes.iter().any(|prefix| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    }
}

/// Whether the answer is an HTML page.
pub(crate) fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"))
}

/// Middleware: puts the headers on every answer.
pub async fn response_headers(
    State(policy): State<ResponsePolicy>,
    request: Request,
    next: Next,
) -> Response {
    let no_store = policy.no_store(request.uri().path());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // A page that brings its own policy (the console's, stricter) keeps it.
    if is_html(headers) && !headers.contains_key(CONTENT_SECURITY_POLICY) {
        headers.insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY_HTML),
        );
    }
    if no_store {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_store_covers_the_prefix_and_below_only() {
        let policy = ResponsePolicy::no_store_under(["/api/v1/botdata"]);
        assert!(policy.no_store("/api/v1/botdata"));
        assert!(policy.no_store("/api/v1/botdata/health"));
        assert!(policy.no_store("/api/v1/botdata/bots/b/fields/f/reveal"));
        assert!(!policy.no_store("/api/v1/botdatax"));
        assert!(!policy.no_store("/api/v1/bots"));
    }
}
