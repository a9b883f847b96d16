//! Verifying a token: a strict algorithm allowlist (EdDSA only), no key-bearing headers,
//! a known `kid`, then signature, `iss`, `aud`, `exp`, `nbf` and revocation. Tokens that pass
//! are remembered by hash until they expire, so the signature is checked once per token
//! (revocation is still checked on every use).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use tokio_util::sync::CancellationToken;

use super::claims::{Claims, Revocation, RevocationKind, TokenUse};
use super::keys::KeySource;
use crate::config::AuthSettings;
use crate::queue::Queue;

/// Why a token was refused. The message is for logs; clients only learn "invalid token".
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token is not a well-formed JWT")]
    Malformed,
    #[error("algorithm {0} is not allowed")]
    DisallowedAlgorithm(String),
    #[error("header parameter {0} is not allowed")]
    DisallowedHeader(&'static str),
    #[error("no key with this kid")]
    UnknownKey,
    #[error("token rejected: {0}")]
    Invalid(String),
    #[error("token is not usable here ({0:?})")]
    WrongUse(TokenUse),
    #[error("token was revoked")]
    Revoked,
    #[error("signing keys unavailable: {0}")]
    KeysUnavailable(String),
}

/// Refetch the JWKS for an unknown kid at most this often, so garbage kids cannot make us
/// hammer the Authentication service.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(5);

struct Inner {
    source: Arc<dyn KeySource>,
    clock: crate::clock::Clock,
    /// Signature, algorithm, `iss` and `aud`; `exp` and `nbf` are checked against `clock`.
    validation: Validation,
    leeway: i64,
    user_audience: String,
    service_audience: String,
    keys: RwLock<HashMap<String, DecodingKey>>,
    refreshed_at: tokio::sync::Mutex<Option<Instant>>,
    cache: Mutex<HashMap<[u8; 32], Claims>>,
    cache_size: usize,
    /// Revoked `jti`s and `sid`s → when the revocation stops mattering.
    revoked_tokens: RwLock<HashMap<String, i64>>,
    revoked_sessions: RwLock<HashMap<String, i64>>,
    revoked_subjects: RwLock<HashMap<String, Revocation>>,
}

/// Checks tokens for one service. Cheap to clone.
#[derive(Clone)]
pub struct TokenVerifier {
    inner: Arc<Inner>,
}

fn token_hash(token: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

impl TokenVerifier {
    /// A verifier for `service`: it accepts user access tokens (`aud` = the audience) and
    /// service tokens addressed to it (`aud` = `<audience>:<service>`).
    pub fn new(
        source: Arc<dyn KeySource>,
        settings: &AuthSettings,
        service: &str,
        clock: crate::clock::Clock,
    ) -> Self {
        let user_audience = settings.audience.clone();
        let service_audience = format!("{}:{service}", settings.audience);
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&user_audience, &service_audience]);
        // The library would read the system time; the platform's clock decides instead.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        Self {
            inner: Arc::new(Inner {
                source,
                clock,
                validation,
                leeway: settings.leeway as i64,
                user_audience,
                service_audience,
                keys: RwLock::new(HashMap::new()),
                refreshed_at: tokio::sync::Mutex::new(None),
                cache: Mutex::new(HashMap::new()),
                cache_size: settings.verified_cache_size.max(1),
                revoked_tokens: RwLock::new(HashMap::new()),
                revoked_sessions: RwLock::new(HashMap::new()),
                revoked_subjects: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// Verifies an access or service token.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let hash = token_hash(token);
        let cached = self
            .inner
            .cache
            .lock()
            .expect("cache lock")
            .get(&hash)
            .cloned();
        let claims = match cached {
            Some(claims) if self.in_time(&claims).is_ok() => claims,
            _ => {
                let claims = self.verify_signature(token).await?;
                let mut cache = self.inner.cache.lock().expect("cache lock");
                if cache.len() >= self.inner.cache_size {
                    cache.clear();
                }
                cache.insert(hash, claims.clone());
                claims
            }
        };
        self.check_revoked(&claims)?;
        Ok(claims)
    }

    async fn verify_signature(&self, token: &str) -> Result<Claims, TokenError> {
        let header = decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::DisallowedAlgorithm(format!("{:?}", header.alg)));
        }
        // Keys named inside the token itself would let its author pick the key.
        if header.jku.is_some() {
            return Err(TokenError::DisallowedHeader("jku"));
        }
        if header.jwk.is_some() {
            return Err(TokenError::DisallowedHeader("jwk"));
        }
        if header.x5u.is_some() || header.x5c.is_some() {
            return Err(TokenError::DisallowedHeader("x5u/x5c"));
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = match self.key(&kid) {
            Some(key) => key,
            None => {
                self.refresh(false).await?;
                self.key(&kid).ok_or(TokenError::UnknownKey)?
            }
        };
        let claims = decode::<Claims>(token, &key, &self.inner.validation)
            .map_err(|err| TokenError::Invalid(err.to_string()))?
            .claims;
        self.in_time(&claims)?;
        let expected_audience = match claims.token_use {
            TokenUse::Access => &self.inner.user_audience,
            TokenUse::Service => &self.inner.service_audience,
            other => return Err(TokenError::WrongUse(other)),
        };
        if &claims.aud != expected_audience {
            return Err(TokenError::Invalid(format!(
                "aud {} is not for this use",
                claims.aud
            )));
        }
        Ok(claims)
    }

    /// `exp` and `nbf` against the clock, with the configured leeway either side.
    fn in_time(&self, claims: &Claims) -> Result<(), TokenError> {
        match claims.outside_lifetime(self.inner.clock.unix_seconds(), self.inner.leeway) {
            Some(why) => Err(TokenError::Invalid(why.into())),
            None => Ok(()),
        }
    }

    fn key(&self, kid: &str) -> Option<DecodingKey> {
        self.inner.keys.read().expect("keys lock").get(kid).cloned()
    }

    /// Reloads the keys and the revocation list (at most every few seconds unless `force`).
    pub async fn refresh(&self, force: bool) -> Result<(), TokenError> {
        let mut refreshed_at = self.inner.refreshed_at.lock().await;
        if !force && refreshed_at.is_some_and(|at| at.elapsed() < MIN_REFRESH_INTERVAL) {
            return Ok(());
        }
        let unavailable = |err: anyhow::Error| TokenError::KeysUnavailable(format!("{err:#}"));
        let jwks = self.inner.source.jwks().await.map_err(unavailable)?;
        let revocations = self.inner.source.revocations().await.map_err(unavailable)?;
        let mut keys = HashMap::new();
        for jwk in jwks.keys {
            if jwk.kty != "OKP" || jwk.crv != "Ed25519" || jwk.alg != "EdDSA" {
                continue;
            }
            if let Ok(key) = DecodingKey::from_ed_components(&jwk.x) {
                keys.insert(jwk.kid, key);
            }
        }
        *self.inner.keys.write().expect("keys lock") = keys;
        for revocation in revocations {
            self.apply(&revocation);
        }
        *refreshed_at = Some(Instant::now());
        Ok(())
    }

    /// Records a revocation (from the list, an event, or the Authentication service itself).
    pub fn apply(&self, revocation: &Revocation) {
        let now = self.inner.clock.unix_seconds();
        match revocation.kind {
            RevocationKind::Token | RevocationKind::Session => {
                let map = if revocation.kind == RevocationKind::Token {
                    &self.inner.revoked_tokens
                } else {
                    &self.inner.revoked_sessions
                };
                let mut map = map.write().expect("revocations lock");
                map.retain(|_, expires_at| *expires_at >= now);
                map.insert(revocation.value.clone(), revocation.expires_at);
            }
            RevocationKind::Subject => {
                let mut subjects = self
                    .inner
                    .revoked_subjects
                    .write()
                    .expect("revocations lock");
                subjects.retain(|_, r| r.expires_at >= now);
                let entry = subjects
                    .entry(revocation.value.clone())
                    .or_insert_with(|| revocation.clone());
                if revocation.issued_before > entry.issued_before {
                    *entry = revocation.clone();
                }
            }
        }
    }

    fn check_revoked(&self, claims: &Claims) -> Result<(), TokenError> {
        if self
            .inner
            .revoked_tokens
            .read()
            .expect("revocations lock")
            .contains_key(&claims.jti)
        {
            return Err(TokenError::Revoked);
        }
        if let Some(sid) = &claims.sid
            && self
                .inner
                .revoked_sessions
                .read()
                .expect("revocations lock")
                .contains_key(sid)
        {
            return Err(TokenError::Revoked);
        }
        let subjects = self
            .inner
            .revoked_subjects
            .read()
            .expect("revocations lock");
        if let Some(revocation) = subjects.get(&claims.sub)
            && claims.minted_at_millis() < revocation.issued_before
        {
            return Err(TokenError::Revoked);
        }
        Ok(())
    }

    /// Applies revocation events from the queue until `shutdown`.
    pub fn follow_revocations(
        &self,
        queue: Arc<dyn Queue>,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let verifier = self.clone();
        tokio::spawn(async move {
            let mut events = match queue.subscribe(super::REVOCATION_SUBJECT_FILTER).await {
                Ok(events) => events,
                Err(err) => {
                    tracing::error!(error = %format!("{err:#}"), "cannot follow token revocations");
                    return;
                }
            };
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    event = events.next() => match event {
                        Some(message) => match serde_json::from_slice::<Revocation>(&message.payload) {
                            Ok(revocation) => verifier.apply(&revocation),
                            Err(err) => tracing::warn!(error = %err, "malformed revocation event"),
                        },
                        None => return,
                    },
                }
            }
        })
    }
}
