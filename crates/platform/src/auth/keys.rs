//! Where a verifier gets the public keys and the revocation list: over HTTP from the
//! Authentication service, or (inside that service) straight from its own store.

use anyhow::Context;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::Revocation;

/// One public key of the JWKS (RFC 7517, OKP / Ed25519 per RFC 8037).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    /// The public key, base64url without padding.
    pub x: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub key_use: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

#[async_trait]
pub trait KeySource: Send + Sync + 'static {
    async fn jwks(&self) -> anyhow::Result<JwkSet>;
    async fn revocations(&self) -> anyhow::Result<Vec<Revocation>>;
}

/// The Authentication service's public endpoints, at any of its replicas.
pub struct HttpKeySource {
    replicas: super::Replicas,
    client: reqwest::Client,
}

impl HttpKeySource {
    /// `base_urls`: one base URL, or the replicas' comma-separated (see [`super::Replicas`]).
    pub fn new(base_urls: &str) -> anyhow::Result<Self> {
        crate::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            replicas: super::Replicas::parse(base_urls)?,
            client,
        })
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.replicas
            .first_ok(|base| {
                let url = format!("{base}{path}");
                async move {
                    let response = self
                        .client
                        .get(&url)
                        .send()
                        .await
                        .with_context(|| format!("GET {url}"))?
                        .error_for_status()
                        .with_context(|| format!("GET {url}"))?;
                    response
                        .json()
                        .await
                        .with_context(|| format!("GET {url}: bad body"))
                }
            })
            .await
    }
}

#[derive(Deserialize)]
struct RevocationList {
    revocations: Vec<Revocation>,
}

#[async_trait]
impl KeySource for HttpKeySource {
    async fn jwks(&self) -> anyhow::Result<JwkSet> {
        self.get("/api/v1/auth/.well-known/jwks.json").await
    }

    async fn revocations(&self) -> anyhow::Result<Vec<Revocation>> {
        Ok(self
            .get::<RevocationList>("/api/v1/auth/revocations")
            .await?
            .revocations)
    }
}
