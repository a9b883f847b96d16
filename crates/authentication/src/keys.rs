//! Signing keys: Ed25519 pairs whose private halves are sealed at rest. Publish before sign:
//! a rotated key is in the JWKS a lead time before it signs (the first key of a new store
//! signs at once); the key it replaces signs until then, and stays in the JWKS until every
//! token it signed has expired.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;
use platform::auth::{Jwk, JwkSet};
use platform::db::Database;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};

use crate::crypto::Sealer;
use crate::store;

/// The key that signs new tokens.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub encoding: EncodingKey,
}

/// How long a replica signs with its cached key at most before looking for a newer one, so
/// a rotation by another replica or by the CLI reaches it; shorter when the lead time is
/// (half of it), so every replica learns when the next key signs before that comes, and
/// switches to it then (the cached key is dropped at its retirement).
pub const KEY_CACHE: Duration = Duration::from_secs(60);

/// The signing keys in the service's database.
pub struct KeyStore {
    db: Database,
    sealer: Arc<Sealer>,
    /// Seconds a retired key stays published: long enough for every token it signed
    /// (including on replicas that had not yet noticed the rotation) to expire.
    publish_after_retirement: i64,
    /// Seconds a rotated key is published before it signs.
    lead: i64,
    /// The signing key and until when (platform clock, ms) it may be used without looking
    /// again.
    active: RwLock<Option<(SigningKey, i64)>>,
    /// How long a loaded key is used before looking for a newer one (ms).
    cache_ms: i64,
    clock: platform::Clock,
}

fn sealing_context(kid: &str) -> String {
    format!("signing-key:{kid}")
}

impl KeyStore {
    /// `longest_token` is the longest lifetime of a token signed here, leeway included;
    /// `lead` how long a rotated key is published before it signs.
    pub fn new(
        db: Database,
        sealer: Arc<Sealer>,
        (longest_token, lead): (i64, i64),
        clock: platform::Clock,
    ) -> Self {
        Self {
            db,
            sealer,
            publish_after_retirement: longest_token + KEY_CACHE.as_secs() as i64,
            lead,
            active: RwLock::new(None),
            cache_ms: (KEY_CACHE.as_millis() as i64)
                .min(lead * 1000 / 2)
                .max(1000),
            clock,
        }
    }

    /// Creates a key if there is none, and loads the active one.
    pub async fn ensure_key(&self) -> anyhow::Result<SigningKey> {
        if let Some(key) = self.load_active().await? {
            return Ok(key);
        }
        Ok(self.rotate().await?.0)
    }

    /// The key that signs now (reloaded from the database, so a rotation done by another
    /// replica or by `vivesphere auth rotate-keys` is picked up).
    pub async fn active(&self) -> anyhow::Result<SigningKey> {
        let now = self.clock.now_millis();
        if let Some((key, fresh_until)) = self.active.read().expect("key lock").clone()
            && now < fresh_until
        {
            return Ok(key);
        }
        self.ensure_key().await
    }

    async fn load_active(&self) -> anyhow::Result<Option<SigningKey>> {
        let now = self.clock.unix_seconds();
        let Some(active) = store::keys::active(&self.db, now).await? else {
            return Ok(None);
        };
        let pkcs8 = self
            .sealer
            .open(&active.private_key_sealed, &sealing_context(&active.kid))
            .context("cannot open the signing key: is authentication.encryption_key the one it was sealed with?")?;
        let key = SigningKey {
            kid: active.kid,
            encoding: EncodingKey::from_ed_der(&pkcs8),
        };
        let mut fresh_until = self.clock.now_millis() + self.cache_ms;
        if let Some(retires_at) = active.retires_at {
            fresh_until = fresh_until.min(retires_at * 1000);
        }
        *self.active.write().expect("key lock") = Some((key.clone(), fresh_until));
        Ok(Some(key))
    }

    /// Adds the next signing key: published now, signing after the lead time (at once when
    /// no key signs yet); the one it replaces signs until then and stays published until
    /// its tokens expire. Returns the new key and when it starts signing (Unix seconds).
    pub async fn rotate(&self) -> anyhow::Result<(SigningKey, i64)> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| anyhow::anyhow!("Ed25519 key generation failed"))?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .map_err(|_| anyhow::anyhow!("generated key does not parse"))?;
        let kid = self.clock.uuid_v7().to_string();
        let public = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        let sealed = self.sealer.seal(pkcs8.as_ref(), &sealing_context(&kid));
        let now = self.clock.unix_seconds();
        let signing_now = store::keys::active(&self.db, now).await?.is_some();
        let signs_from = if signing_now { now + self.lead } else { now };
        store::keys::add_next(&self.db, (&kid, &sealed, &public), now, signs_from).await?;
        let key = SigningKey {
            kid,
            encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
        };
        if !signing_now {
            *self.active.write().expect("key lock") =
                Some((key.clone(), self.clock.now_millis() + self.cache_ms));
        }
        Ok((key, signs_from))
    }

    /// The published keys: the active one and those retired recently enough that tokens
    /// they signed may still be alive.
    pub async fn jwks(&self) -> anyhow::Result<JwkSet> {
        let since = self.clock.unix_seconds() - self.publish_after_retirement;
        let keys = store::keys::published(&self.db, since)
            .await?
            .into_iter()
            .map(|(kid, x)| Jwk {
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                x,
                kid,
                alg: "EdDSA".into(),
                key_use: "sig".into(),
            })
            .collect();
        Ok(JwkSet { keys })
    }
}
