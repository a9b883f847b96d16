//! `cargo bench --bench auth`: the Authentication numbers the issue asks for.
//!
//! 1. Token verifications per second on one core: the platform verifier every service uses,
//!    on tokens it has not seen (EdDSA signature checked) and on tokens it has (cache hit).
//! 2. Logins per second against the release binary (argon2id, OWASP parameters).
//! 3. p50/p99 of a cheap authenticated GET (`/api/v1/auth/validate`) idle, and while logins
//!    run flat out — logins must not starve other requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use platform::auth::{Claims, Jwk, JwkSet, KeySource, Revocation, TokenUse, TokenVerifier};
use platform::config::AuthSettings;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::json;

mod support;

use support::{ADMIN_PASSWORD, Server, ms, percentile};

struct StaticKeys(JwkSet);

#[async_trait]
impl KeySource for StaticKeys {
    async fn jwks(&self) -> anyhow::Result<JwkSet> {
        Ok(self.0.clone())
    }
    async fn revocations(&self) -> anyhow::Result<Vec<Revocation>> {
        Ok(Vec::new())
    }
}

fn verification_rates() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let jwks = JwkSet {
        keys: vec![Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
            kid: "bench".into(),
            alg: "EdDSA".into(),
            key_use: "sig".into(),
        }],
    };
    let settings = AuthSettings {
        verified_cache_size: 1_000_000,
        ..AuthSettings::default()
    };
    let verifier = TokenVerifier::new(
        Arc::new(StaticKeys(jwks)),
        &settings,
        "bot-manager",
        platform::Clock::system(),
    );
    let key = EncodingKey::from_ed_der(pkcs8.as_ref());
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("bench".into());
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let count = 20_000;
    let tokens: Vec<String> = (0..count)
        .map(|i| {
            let claims = Claims {
                iss: "vivesphere".into(),
                aud: "vivesphere".into(),
                sub: format!("user-{i}"),
                exp: now + 900,
                nbf: now,
                iat: now,
                jti: uuid::Uuid::now_v7().to_string(),
                token_use: TokenUse::Access,
                roles: vec!["Editor".into()],
                perms: vec!["bots:read".into(), "bots:write".into()],
                sid: Some("s".into()),
                username: Some(format!("user{i}")),
                team: None,
            };
            encode(&header, &claims, &key).unwrap()
        })
        .collect();
    // The floor: the Ed25519 signature check alone (ring), on the same tokens.
    let public = ring::signature::UnparsedPublicKey::new(
        &ring::signature::ED25519,
        pair.public_key().as_ref().to_vec(),
    );
    let split: Vec<(String, Vec<u8>)> = tokens
        .iter()
        .map(|t| {
            let (input, signature) = t.rsplit_once('.').unwrap();
            (
                input.to_string(),
                URL_SAFE_NO_PAD.decode(signature).unwrap(),
            )
        })
        .collect();
    let started = Instant::now();
    for (input, signature) in &split {
        public.verify(input.as_bytes(), signature).unwrap();
    }
    let raw = count as f64 / started.elapsed().as_secs_f64();
    println!("Ed25519 signature check alone, one core: {raw:>10.0}/s");
    runtime.block_on(async {
        verifier.refresh(true).await.unwrap();
        let started = Instant::now();
        for token in &tokens {
            verifier.verify(token).await.unwrap();
        }
        let cold = count as f64 / started.elapsed().as_secs_f64();
        let started = Instant::now();
        for token in &tokens {
            verifier.verify(token).await.unwrap();
        }
        let warm = count as f64 / started.elapsed().as_secs_f64();
        println!("token verification, one core: {cold:>10.0}/s new tokens (signature checked)   (goal >= 20000)");
        println!("token verification, one core: {warm:>10.0}/s seen tokens (cache hit)");
    });
}

async fn probe_latencies(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    duration: Duration,
) -> Vec<Duration> {
    let mut latencies = Vec::new();
    let until = Instant::now() + duration;
    while Instant::now() < until {
        let started = Instant::now();
        let response = client
            .get(format!("{base}/api/v1/auth/validate"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
        latencies.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    latencies.sort();
    latencies
}

fn http_numbers() {
    let server = Server::start(&[]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        platform::install_crypto_provider();
        let client = reqwest::Client::new();
        let base = server.base.clone();
        let token = server.ready_admin_token(&client).await;
        let login = json!({"username": "admin", "password": ADMIN_PASSWORD});

        let idle = probe_latencies(&client, &base, &token, Duration::from_secs(3)).await;

        let running = Arc::new(AtomicBool::new(true));
        let logins = Arc::new(AtomicU64::new(0));
        let workers: Vec<_> = (0..8)
            .map(|_| {
                let (client, base, login, running, logins) = (
                    client.clone(),
                    base.clone(),
                    login.clone(),
                    running.clone(),
                    logins.clone(),
                );
                tokio::spawn(async move {
                    while running.load(Ordering::Relaxed) {
                        let response = client
                            .post(format!("{base}/api/v1/auth/login"))
                            .json(&login)
                            .send()
                            .await
                            .unwrap();
                        assert!(response.status().is_success(), "{}", response.status());
                        logins.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let counted_from = logins.load(Ordering::Relaxed);
        let window = Instant::now();
        let loaded = probe_latencies(&client, &base, &token, Duration::from_secs(6)).await;
        let rate =
            (logins.load(Ordering::Relaxed) - counted_from) as f64 / window.elapsed().as_secs_f64();
        running.store(false, Ordering::Relaxed);
        for worker in workers {
            worker.await.unwrap();
        }
        println!("logins (argon2id m=19MiB t=2 p=1), 8 clients: {rate:>7.1}/s");
        println!(
            "GET /validate idle:              p50 {:6.2} ms  p99 {:6.2} ms  ({} requests)",
            ms(percentile(&idle, 0.5)),
            ms(percentile(&idle, 0.99)),
            idle.len()
        );
        println!(
            "GET /validate while logins flat: p50 {:6.2} ms  p99 {:6.2} ms  ({} requests)",
            ms(percentile(&loaded, 0.5)),
            ms(percentile(&loaded, 0.99)),
            loaded.len()
        );
    });
}

fn main() {
    verification_rates();
    http_numbers();
}
