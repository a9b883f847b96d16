//! What every console answer carries and every form is checked for: a strict
//! Content-Security-Policy (scripts and styles from this origin only, never inline), no
//! framing, no caching of pages that hold a person's data; the session cookie's attributes;
//! the CSRF token of state-changing forms.

use axum::extract::Request;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, COOKIE, X_FRAME_OPTIONS};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use crate::session::SessionId;

/// The policy: nothing from another origin, no inline script or style, forms post here only.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// The session cookie's name.
pub const COOKIE_NAME: &str = "vivesphere_console";

/// Adds the headers every console answer carries beside the platform's (`nosniff`, no
/// referrer): assets keep their own cache policy.
pub async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        CONTENT_SECURITY_POLICY,
        CONTENT_SECURITY_POLICY_VALUE,
    );
    set(headers, X_FRAME_OPTIONS, "DENY");
    if !headers.contains_key(CACHE_CONTROL) {
        set(headers, CACHE_CONTROL, "no-store");
    }
    response
}

/// The session id the request's cookie carries, if any.
pub fn session_id(headers: &HeaderMap) -> Option<SessionId> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| SessionId(value.to_string()))
        .filter(|id| !id.0.is_empty())
}

/// Whether the request reached us over TLS (Kong and the Ingress say so).
fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// The `Set-Cookie` value that hands `id` to the browser: HttpOnly (no script reads it),
/// SameSite=Strict (no other site's page sends it), `Secure` behind TLS, for the console's
/// paths only, ending with the browser.
pub fn session_cookie(id: &SessionId, request: &HeaderMap, always_secure: bool) -> HeaderValue {
    let secure = if always_secure || over_tls(request) {
        "; Secure"
    } else {
        ""
    };
    let value = format!(
        "{COOKIE_NAME}={}; Path=/console; HttpOnly; SameSite=Strict{secure}",
        id.0
    );
    HeaderValue::from_str(&value).expect("a base64url id is a valid header")
}

/// The `Set-Cookie` value that removes the cookie.
pub fn cleared_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "vivesphere_console=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0",
    )
}

/// Whether a form's CSRF token is the session's. The digests are compared, not the tokens:
/// how long a comparison takes then says nothing about the token.
pub fn csrf_matches(expected: &str, sent: &str) -> bool {
    let digest = |text: &str| ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest(expected).as_ref() == digest(sent).as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others_and_marked_as_the_request_came() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=1; vivesphere_console=xyz; b=2"),
        );
        assert_eq!(session_id(&headers), Some(SessionId("xyz".into())));
        let plain = session_cookie(&SessionId("xyz".into()), &headers, false);
        assert!(!plain.to_str().unwrap().contains("Secure"));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        let tls = session_cookie(&SessionId("xyz".into()), &headers, false);
        assert!(tls.to_str().unwrap().ends_with("; Secure"), "{tls:?}");
        assert!(tls.to_str().unwrap().contains("HttpOnly; SameSite=Strict"));
    }

    #[test]
    fn csrf_tokens_must_match_exactly() {
        assert!(csrf_matches("abc", "abc"));
        assert!(!csrf_matches("abc", "abd"));
        assert!(!csrf_matches("abc", ""));
        assert!(!csrf_matches("abc", "abcd"));
    }
}
