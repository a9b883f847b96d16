//! `vivesphere gateway export-kong`: the public keys Kong verifies tokens with, read from the
//! Authentication service's JWKS.

use gateway::kong::PublicKey;

/// Every key the JWKS publishes (the current one and those whose tokens may still be live).
pub async fn public_keys(authentication_url: &str) -> anyhow::Result<Vec<PublicKey>> {
    platform::install_crypto_provider();
    let url = format!(
        "{}/api/v1/auth/.well-known/jwks.json",
        authentication_url.trim_end_matches('/')
    );
    let response = reqwest::get(&url)
        .await
        .map_err(|err| anyhow::anyhow!("GET {url}: {err}"))?;
    if !response.status().is_success() {
        anyhow::bail!("GET {url}: {}", response.status());
    }
    let jwks: serde_json::Value = response.json().await?;
    jwks["keys"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("{url} is not a JWKS"))?
        .iter()
        .map(PublicKey::from_jwk)
        .collect()
}
