//! A visitor of the console over plain HTTP: it keeps the session cookie as a browser would
//! (and nothing else), follows no redirect by itself, and reads the CSRF token off forms.

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

use crate::helpers::TestApp;

pub struct Visitor {
    http: reqwest::Client,
    base: String,
    /// `name=value` of the session cookie, as the last `Set-Cookie` left it.
    pub cookie: Option<String>,
    /// Sent as `X-Forwarded-Proto`, as a TLS-terminating proxy would.
    pub forwarded_proto: Option<&'static str>,
    /// Sent as `X-Forwarded-For`, as a proxy on this host would for the person behind it.
    pub forwarded_for: Option<&'static str>,
}

/// One answer: its status, where it redirects, the cookie it set, its page.
pub struct Answer {
    pub status: StatusCode,
    pub location: Option<String>,
    pub set_cookie: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub html: String,
}

impl Answer {
    /// The CSRF token of the page's first form that carries one.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self
            .html
            .find(marker)
            .unwrap_or_else(|| panic!("no CSRF field in {}", self.html))
            + marker.len();
        let end = start + self.html[start..].find('"').unwrap();
        self.html[start..end].to_string()
    }
}

impl Visitor {
    pub fn new(app: &TestApp) -> Self {
        platform::install_crypto_provider();
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.url(""),
            cookie: None,
            forwarded_proto: None,
            forwarded_for: None,
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Answer {
        let mut request = request;
        if let Some(cookie) = &self.cookie {
            request = request.header(COOKIE, cookie);
        }
        if let Some(proto) = self.forwarded_proto {
            request = request.header("x-forwarded-proto", proto);
        }
        if let Some(address) = self.forwarded_for {
            request = request.header("x-forwarded-for", address);
        }
        let response = request.send().await.unwrap();
        let header = |name| {
            response
                .headers()
                .get(name)
                .map(|v: &reqwest::header::HeaderValue| v.to_str().unwrap().to_string())
        };
        let set_cookie = header(SET_COOKIE);
        let location = header(LOCATION);
        if let Some(set) = &set_cookie {
            let pair = set.split(';').next().unwrap().to_string();
            self.cookie = if set.contains("Max-Age=0") {
                None
            } else {
                Some(pair)
            };
        }
        Answer {
            status: response.status(),
            location,
            set_cookie,
            headers: response.headers().clone(),
            html: response.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Answer {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(request).await
    }

    /// Signs in with a password (no second factor); the fleet page's answer.
    pub async fn sign_in(&mut self, username: &str, password: &str) -> Answer {
        let form = self.get("/console/sign-in").await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.html);
        let csrf = form.csrf();
        let signed_in = self
            .post(
                "/console/sign-in",
                &[
                    ("csrf", &csrf),
                    ("username", username),
                    ("password", password),
                ],
            )
            .await;
        assert_eq!(
            signed_in.status,
            StatusCode::SEE_OTHER,
            "{}",
            signed_in.html
        );
        assert_eq!(signed_in.location.as_deref(), Some("/console/bots"));
        self.get("/console/bots").await
    }
}
