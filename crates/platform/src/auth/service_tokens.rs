//! The calling side of service-to-service auth: fetches a client_credentials token from the
//! Authentication service and reuses it until shortly before it expires.

use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::config::Secret;
use crate::http::form::form_body;

/// Renew this long before expiry, so a token never expires in flight.
const RENEW_BEFORE: Duration = Duration::from_secs(30);

/// A service's client credentials for calling one other service.
pub struct ServiceTokens {
    http: reqwest::Client,
    authentication: super::Replicas,
    client_id: String,
    client_secret: Secret,
    audience: String,
    clock: crate::clock::Clock,
    /// The token and when to renew it (clock milliseconds).
    cached: Mutex<Option<(String, i64)>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

impl ServiceTokens {
    /// `audience` is the target name of the service to call (`logging`, `bot-manager`, …);
    /// `authentication_url` one base URL or the replicas' (see [`super::Replicas`]).
    pub fn new(
        authentication_url: &str,
        client_id: impl Into<String>,
        client_secret: Secret,
        audience: impl Into<String>,
        clock: crate::clock::Clock,
    ) -> anyhow::Result<Self> {
        crate::install_crypto_provider();
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?,
            authentication: super::Replicas::parse(authentication_url)?,
            client_id: client_id.into(),
            client_secret,
            audience: audience.into(),
            clock,
            cached: Mutex::new(None),
        })
    }

    /// A live token for the audience: the cached one, or a new one.
    pub async fn token(&self) -> anyhow::Result<String> {
        let mut cached = self.cached.lock().await;
        if let Some((token, renew_at)) = cached.as_ref()
            && self.clock.now_millis() < *renew_at
        {
            return Ok(token.clone());
        }
        // The secret goes in the body (form-encoded), never in a URL.
        let body = form_body(&[
            ("grant_type", "client_credentials"),
            ("client_id", &self.client_id),
            ("client_secret", self.client_secret.expose()),
            ("audience", &self.audience),
        ]);
        let issued: TokenResponse = self
            .authentication
            .first_ok(|base| {
                let token_url = format!("{base}/api/v1/auth/token");
                let body = body.clone();
                async move {
                    let response = self
                        .http
                        .post(&token_url)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(body)
                        .send()
                        .await
                        .with_context(|| format!("POST {token_url}"))?;
                    if !response.status().is_success() {
                        anyhow::bail!(
                            "token request for {} refused: {}",
                            self.audience,
                            response.status()
                        );
                    }
                    response.json().await.context("bad token response")
                }
            })
            .await?;
        let lifetime = Duration::from_secs(issued.expires_in);
        let renew_at = self.clock.now_millis()
            + lifetime
                .saturating_sub(RENEW_BEFORE)
                .max(lifetime / 2)
                .as_millis() as i64;
        *cached = Some((issued.access_token.clone(), renew_at));
        Ok(issued.access_token)
    }
}
