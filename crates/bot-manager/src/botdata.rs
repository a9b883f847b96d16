//! The client of Secure Bot Data: bots' X credentials are stored and read there, never in
//! the Bot Manager's tables. It calls with its own client_credentials token (audience
//! `secure-bot-data`) and names the bot's owner when it registers one.

use std::time::Duration;

use anyhow::Context;
use platform::auth::ServiceTokens;
use platform::config::Secret;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Secure Bot Data's field names for a bot's OAuth 2.0 user-context credentials, and for an
/// X app's own token.
pub mod fields {
    pub const ACCESS_TOKEN: &str = "oauth_access_token";
    pub const REFRESH_TOKEN: &str = "oauth_refresh_token";
    pub const CLIENT_ID: &str = "oauth_client_id";
    pub const CLIENT_SECRET: &str = "oauth_client_secret";
    /// An X app's app-only bearer token (OAuth 2.0 client credentials).
    pub const APP_BEARER_TOKEN: &str = "bearer_token";
}

#[derive(Debug, thiserror::Error)]
pub enum BotDataError {
    /// A check-and-set lost: someone wrote the field since it was read.
    #[error("the credentials changed meanwhile")]
    Conflict,
    /// Refused the request as invalid (a bad field name or value).
    #[error("Secure Bot Data refused the credentials: {0}")]
    Invalid(String),
    #[error("Secure Bot Data is unavailable: {0:#}")]
    Unavailable(anyhow::Error),
}

impl From<anyhow::Error> for BotDataError {
    fn from(err: anyhow::Error) -> Self {
        Self::Unavailable(err)
    }
}

/// A revealed field: its value (zeroized when dropped) and version.
pub struct Revealed {
    pub value: Secret,
    pub version: i64,
}

pub struct BotDataClient {
    http: reqwest::Client,
    base: String,
    tokens: ServiceTokens,
}

#[derive(Deserialize)]
struct FieldResponse {
    value: String,
    version: i64,
}

#[derive(Deserialize)]
struct ErrorResponse {
    message: String,
}

impl BotDataClient {
    pub fn new(base: &str, tokens: ServiceTokens) -> anyhow::Result<Self> {
        platform::install_crypto_provider();
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            base: format!("{}/api/v1/botdata", base.trim_end_matches('/')),
            tokens,
        })
    }

    /// Writes `data` (field → secret) for the bot in one all-or-nothing write; `expect`
    /// pins fields to the versions they must still be at.
    pub async fn store(
        &self,
        bot_id: &str,
        owner: (&str, Option<&str>),
        data: &Map<String, Value>,
        expect: Option<Map<String, Value>>,
    ) -> Result<(), BotDataError> {
        let token = self.tokens.token().await?;
        let mut body = json!({"bot_id": bot_id, "data": data, "owner_id": owner.0});
        if let Some(team) = owner.1 {
            body["team"] = json!(team);
        }
        if let Some(expect) = expect {
            body["expect"] = Value::Object(expect);
        }
        let response = self
            .http
            .post(format!("{}/store", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .context("POST /api/v1/botdata/store")?;
        match response.status() {
            status if status.is_success() => Ok(()),
            StatusCode::CONFLICT => Err(BotDataError::Conflict),
            StatusCode::BAD_REQUEST => {
                let message = response
                    .json::<ErrorResponse>()
                    .await
                    .map(|e| e.message)
                    .unwrap_or_else(|_| "bad request".into());
                Err(BotDataError::Invalid(message))
            }
            status => Err(BotDataError::Unavailable(anyhow::anyhow!(
                "store answered {status}"
            ))),
        }
    }

    /// Soft-deletes the field's current version (Secure Bot Data keeps it for an admin to
    /// undelete or destroy); a field that is not there is already gone.
    pub async fn delete_field(&self, bot_id: &str, field: &str) -> Result<(), BotDataError> {
        let token = self.tokens.token().await?;
        let response = self
            .http
            .delete(format!("{}/bots/{bot_id}/fields/{field}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .with_context(|| format!("delete {field}"))?;
        match response.status() {
            status if status.is_success() => Ok(()),
            StatusCode::NOT_FOUND => Ok(()),
            status => Err(BotDataError::Unavailable(anyhow::anyhow!(
                "delete {field} answered {status}"
            ))),
        }
    }

    /// A field in clear (an audited reveal), or `None` when the bot has no such field.
    pub async fn reveal(
        &self,
        bot_id: &str,
        field: &str,
    ) -> Result<Option<Revealed>, BotDataError> {
        let token = self.tokens.token().await?;
        let response = self
            .http
            .post(format!("{}/bots/{bot_id}/fields/{field}/reveal", self.base))
            .bearer_auth(token)
            .send()
            .await
            .with_context(|| format!("reveal {field}"))?;
        match response.status() {
            StatusCode::OK => {
                let body: FieldResponse = response.json().await.context("reveal answer")?;
                Ok(Some(Revealed {
                    value: Secret::new(body.value),
                    version: body.version,
                }))
            }
            StatusCode::NOT_FOUND => Ok(None),
            status => Err(BotDataError::Unavailable(anyhow::anyhow!(
                "reveal {field} answered {status}"
            ))),
        }
    }
}
