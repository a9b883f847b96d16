//! The public REST API as the console calls it: with the signed-in person's own token, so
//! everything a page shows or does is what the API allows that person.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::session::{Enrolment, Tokens};

/// What the API answered instead of success: its status and the standard error body.
#[derive(Debug, Clone)]
pub struct ApiFailure {
    pub status: StatusCode,
    pub error_code: String,
    pub message: String,
}

impl ApiFailure {
    fn unreachable(err: reqwest::Error) -> Self {
        // Without the URL: a query string may carry what a person typed into a filter.
        tracing::warn!(error = %err.without_url(), "the console cannot reach the API");
        Self {
            status: StatusCode::BAD_GATEWAY,
            error_code: "API_UNREACHABLE".into(),
            message: "The API did not answer; try again in a moment.".into(),
        }
    }

    /// The API's refusal, from its standard error body.
    fn from_body(status: StatusCode, body: &Value) -> Self {
        let text = |field: &str| body[field].as_str().map(str::to_string);
        Self {
            status,
            error_code: text("error_code").unwrap_or_else(|| "API_ERROR".into()),
            message: text("message").unwrap_or_else(|| format!("The API answered {status}.")),
        }
    }

    /// The console refuses what it cannot send to the API as asked (a form left incomplete).
    pub fn refused(message: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error_code: "INVALID_DATA".into(),
            message: message.into(),
        }
    }

    /// The token was refused: the session is over at the API. (A wrong password given to
    /// change a password is a 401 too, `AUTH_FAILED`, and ends nothing.)
    pub fn is_unauthenticated(&self) -> bool {
        self.status == StatusCode::UNAUTHORIZED && self.error_code != "AUTH_FAILED"
    }
}

/// How a password login went.
pub enum LoginOutcome {
    SignedIn(Tokens),
    /// The API wants the second factor; the token is for `/login/mfa` only.
    SecondFactor(SecretString),
    /// The account must enrol TOTP before it can sign in; this token enrols it.
    EnrolmentRequired(SecretString),
    /// The password must be changed (a temporary one, or reset) before the account signs in.
    PasswordChangeRequired,
    Refused(ApiFailure),
}

#[derive(Deserialize)]
struct TokenPair {
    token: String,
    expires_in: i64,
    refresh_token: String,
}

impl TokenPair {
    fn into_tokens(self, now_millis: i64) -> Tokens {
        Tokens {
            access: SecretString::from(self.token),
            access_expires_at: now_millis + self.expires_in * 1000,
            refresh: SecretString::from(self.refresh_token),
        }
    }
}

/// Whom a call is made for: the person's access token (none before they sign in) and the
/// address their browser connected from, passed on as `X-Forwarded-For` so that limits kept
/// per address count the person, not the console.
#[derive(Clone, Default)]
pub struct OnBehalf {
    pub token: Option<SecretString>,
    pub address: Option<String>,
}

/// The API's base URL and one pooled HTTP client.
pub struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str, timeout: Duration) -> anyhow::Result<Self> {
        let base = base.trim_end_matches('/').to_string();
        url::Url::parse(&base).map_err(|err| anyhow::anyhow!("console.api_url {base:?}: {err}"))?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { base, http })
    }

    fn request(
        &self,
        method: Method,
        path_and_query: &str,
        on_behalf: &OnBehalf,
    ) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .request(method, format!("{}{path_and_query}", self.base));
        if let Some(token) = &on_behalf.token {
            request = request.bearer_auth(token.expose_secret());
        }
        if let Some(address) = &on_behalf.address {
            request = request.header("x-forwarded-for", address);
        }
        request
    }

    /// Sends one request for `on_behalf`; the standard error body becomes an [`ApiFailure`].
    async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        on_behalf: &OnBehalf,
        body: Option<&Value>,
    ) -> Result<Value, ApiFailure> {
        let mut request = self.request(method, path_and_query, on_behalf);
        if let Some(body) = body {
            request = request.json(body);
        }
        Self::answer(request).await
    }

    /// Sends a built request; the standard error body becomes an [`ApiFailure`].
    async fn answer(request: reqwest::RequestBuilder) -> Result<Value, ApiFailure> {
        let response = request.send().await.map_err(ApiFailure::unreachable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(ApiFailure::unreachable)?;
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        if status.is_success() {
            return Ok(value);
        }
        Err(ApiFailure::from_body(status, &value))
    }

    pub async fn get(
        &self,
        on_behalf: &OnBehalf,
        path_and_query: &str,
    ) -> Result<Value, ApiFailure> {
        self.send(Method::GET, path_and_query, on_behalf, None)
            .await
    }

    /// A GET whose answer is passed on as it arrives (an export), once the API said yes.
    pub async fn get_stream(
        &self,
        on_behalf: &OnBehalf,
        path_and_query: &str,
    ) -> Result<reqwest::Response, ApiFailure> {
        let response = self
            .request(Method::GET, path_and_query, on_behalf)
            .send()
            .await
            .map_err(ApiFailure::unreachable)?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        Err(ApiFailure::from_body(status, &value))
    }

    pub async fn post(
        &self,
        on_behalf: &OnBehalf,
        path: &str,
        body: &Value,
    ) -> Result<Value, ApiFailure> {
        self.send(Method::POST, path, on_behalf, Some(body)).await
    }

    pub async fn put(
        &self,
        on_behalf: &OnBehalf,
        path: &str,
        body: &Value,
    ) -> Result<Value, ApiFailure> {
        self.send(Method::PUT, path, on_behalf, Some(body)).await
    }

    /// A PATCH that applies only while the resource is still at `version` (`If-Match`): a
    /// form sent from a page read before someone else's change is refused (412), not applied
    /// over it.
    pub async fn patch(
        &self,
        on_behalf: &OnBehalf,
        path: &str,
        version: i64,
        body: &Value,
    ) -> Result<Value, ApiFailure> {
        let request = self
            .request(Method::PATCH, path, on_behalf)
            .header("if-match", format!("\"{version}\""))
            .json(body);
        Self::answer(request).await
    }

    /// A PATCH of a resource without versions (a user account: the last change wins).
    pub async fn patch_any(
        &self,
        on_behalf: &OnBehalf,
        path: &str,
        body: &Value,
    ) -> Result<Value, ApiFailure> {
        self.send(Method::PATCH, path, on_behalf, Some(body)).await
    }

    /// A DELETE that carries a body (turning a second factor off takes the password).
    pub async fn delete_with(
        &self,
        on_behalf: &OnBehalf,
        path: &str,
        body: &Value,
    ) -> Result<Value, ApiFailure> {
        self.send(Method::DELETE, path, on_behalf, Some(body)).await
    }

    pub async fn delete(&self, on_behalf: &OnBehalf, path: &str) -> Result<Value, ApiFailure> {
        self.send(Method::DELETE, path, on_behalf, None).await
    }

    /// Signs in with a password.
    pub async fn login(
        &self,
        visitor: &OnBehalf,
        username: &str,
        password: &str,
        now_millis: i64,
    ) -> LoginOutcome {
        let body = json!({"username": username, "password": password});
        let answer = self
            .send(Method::POST, "/api/v1/auth/login", visitor, Some(&body))
            .await;
        match answer {
            Ok(value) => match value["status"].as_str() {
                Some("mfa_required") => {
                    let token = value["mfa_token"].as_str().unwrap_or_default();
                    LoginOutcome::SecondFactor(SecretString::from(token.to_string()))
                }
                Some("mfa_enrollment_required") => {
                    let token = value["mfa_token"].as_str().unwrap_or_default();
                    LoginOutcome::EnrolmentRequired(SecretString::from(token.to_string()))
                }
                _ => match serde_json::from_value::<TokenPair>(value) {
                    Ok(pair) => LoginOutcome::SignedIn(pair.into_tokens(now_millis)),
                    Err(_) => LoginOutcome::Refused(unexpected_answer()),
                },
            },
            Err(failure) if failure.error_code == "PASSWORD_CHANGE_REQUIRED" => {
                LoginOutcome::PasswordChangeRequired
            }
            Err(failure) => LoginOutcome::Refused(failure),
        }
    }

    /// Changes the password of an account that must change it before signing in.
    pub async fn change_password(
        &self,
        visitor: &OnBehalf,
        username: &str,
        current: &str,
        new: &str,
    ) -> Result<(), ApiFailure> {
        let body = json!({"username": username, "current_password": current, "new_password": new});
        self.send(Method::POST, "/api/v1/auth/password", visitor, Some(&body))
            .await
            .map(|_| ())
    }

    /// Starts a TOTP enrolment for whoever `on_behalf`'s token speaks for.
    pub async fn enrol_totp(&self, on_behalf: &OnBehalf) -> Result<Enrolment, ApiFailure> {
        let value = self
            .send(
                Method::POST,
                "/api/v1/auth/mfa/totp/enroll",
                on_behalf,
                Some(&json!({})),
            )
            .await?;
        let text = |field: &str| {
            value[field]
                .as_str()
                .map(|s| SecretString::from(s.to_string()))
        };
        match (text("secret"), text("otpauth_uri")) {
            (Some(secret), Some(otpauth_uri)) => Ok(Enrolment {
                secret,
                otpauth_uri,
            }),
            _ => Err(unexpected_answer()),
        }
    }

    /// Confirms an enrolment with the app's first code: the recovery codes, and the tokens
    /// when the enrolment finished a sign-in.
    pub async fn confirm_totp(
        &self,
        on_behalf: &OnBehalf,
        code: &str,
        now_millis: i64,
    ) -> Result<(Vec<String>, Option<Tokens>), ApiFailure> {
        let body = json!({"code": code.trim()});
        let value = self
            .send(
                Method::POST,
                "/api/v1/auth/mfa/totp/confirm",
                on_behalf,
                Some(&body),
            )
            .await?;
        let codes = value["recovery_codes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|code| code.as_str().map(str::to_string))
            .collect();
        let tokens = match &value["tokens"] {
            Value::Null => None,
            tokens => Some(Self::tokens(tokens.clone(), now_millis)?),
        };
        Ok((codes, tokens))
    }

    /// Finishes a sign-in with a TOTP code or a recovery code.
    pub async fn login_second_factor(
        &self,
        visitor: &OnBehalf,
        mfa_token: &SecretString,
        code: &str,
        now_millis: i64,
    ) -> Result<Tokens, ApiFailure> {
        let code = code.trim();
        // Six digits are a TOTP code; anything else can only be a recovery code.
        let body = if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
            json!({"mfa_token": mfa_token.expose_secret(), "code": code})
        } else {
            json!({"mfa_token": mfa_token.expose_secret(), "recovery_code": code})
        };
        let value = self
            .send(Method::POST, "/api/v1/auth/login/mfa", visitor, Some(&body))
            .await?;
        Self::tokens(value, now_millis)
    }

    /// A new token pair for the refresh token (which is spent).
    pub async fn refresh(
        &self,
        visitor: &OnBehalf,
        refresh: &SecretString,
        now_millis: i64,
    ) -> Result<Tokens, ApiFailure> {
        let body = json!({"refresh_token": refresh.expose_secret()});
        let value = self
            .send(Method::POST, "/api/v1/auth/refresh", visitor, Some(&body))
            .await?;
        Self::tokens(value, now_millis)
    }

    /// Ends the session at the API: its refresh token and every access token issued in it.
    pub async fn logout(&self, person: &OnBehalf) -> Result<(), ApiFailure> {
        self.send(Method::POST, "/api/v1/auth/logout", person, None)
            .await
            .map(|_| ())
    }

    fn tokens(value: Value, now_millis: i64) -> Result<Tokens, ApiFailure> {
        serde_json::from_value::<TokenPair>(value)
            .map(|pair| pair.into_tokens(now_millis))
            .map_err(|_| unexpected_answer())
    }
}

fn unexpected_answer() -> ApiFailure {
    ApiFailure {
        status: StatusCode::BAD_GATEWAY,
        error_code: "API_ERROR".into(),
        message: "The API answered in a form the console does not know.".into(),
    }
}

/// `path` with `pairs` as its query string (empty values left out), each value encoded.
pub fn with_query(path: &str, pairs: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        query.append_pair(key, value);
    }
    let query = query.finish();
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    }
}

/// One path segment, percent-encoded (a bot id comes from the URL the browser sent).
pub fn segment(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
