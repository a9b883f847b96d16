//! The service's shared state, built once at start.

use std::sync::Arc;

use async_trait::async_trait;
use platform::activity::ActivityLog;
use platform::auth::{JwkSet, KeySource, Revocation, TokenVerifier};
use platform::config::AuthSettings;
use platform::db::Database;
use platform::queue::Queue;

use crate::crypto::Sealer;
use crate::keys::KeyStore;
use crate::password::PasswordPolicy;
use platform::config::Live;

use crate::settings::Settings;
use crate::store;

/// The Authentication service: its store, settings, keys, policy and verifier, shared by
/// every operation.
pub struct Authentication {
    pub db: Database,
    /// The section as the service started; `live` for the parts that change at run time
    /// (password policy, brute-force thresholds).
    pub settings: Settings,
    pub live: Live<Settings>,
    pub auth: AuthSettings,
    pub keys: Arc<KeyStore>,
    pub sealer: Arc<Sealer>,
    pub policy: PasswordPolicy,
    pub verifier: TokenVerifier,
    pub queue: Arc<dyn Queue>,
    pub activity: ActivityLog,
    /// Verified against when a username is unknown, to take as long as a real check.
    pub decoy_hash: String,
    /// Where argon2 runs: one low-priority thread per core, so logins reach the cores'
    /// budget yet yield to every other request.
    pub hashing: crate::hashing::HashingPool,
    /// What time it is for sessions, tokens, lockouts and TOTP.
    pub clock: platform::Clock,
}

pub type AppState = Arc<Authentication>;

/// The service's own keys and revocations, for its own verifier (no HTTP round trip).
pub struct LocalKeys {
    pub keys: Arc<KeyStore>,
    pub db: Database,
    pub clock: platform::Clock,
}

#[async_trait]
impl KeySource for LocalKeys {
    async fn jwks(&self) -> anyhow::Result<JwkSet> {
        self.keys.jwks().await
    }

    async fn revocations(&self) -> anyhow::Result<Vec<Revocation>> {
        store::revocations::active(&self.db, self.clock.unix_seconds()).await
    }
}

impl Authentication {
    pub async fn hash_password(&self, password: String) -> anyhow::Result<String> {
        self.hashing
            .run(move || crate::password::hash(&password))
            .await?
    }

    pub async fn verify_password(
        &self,
        password: String,
        phc: String,
    ) -> anyhow::Result<crate::password::Verified> {
        self.hashing
            .run(move || crate::password::verify(&password, &phc))
            .await
    }

    /// Records a revocation, applies it here at once, and announces it to every service.
    pub async fn revoke(&self, revocation: Revocation) -> anyhow::Result<()> {
        store::revocations::insert(&self.db, &revocation).await?;
        self.verifier.apply(&revocation);
        let kind = crate::store::revocations::kind_name(revocation.kind);
        let id = format!("{kind}:{}:{}", revocation.value, revocation.issued_before);
        self.queue
            .publish(
                &format!("auth.revocations.{kind}"),
                &id,
                serde_json::to_vec(&revocation)?.into(),
            )
            .await?;
        Ok(())
    }

    /// Revokes every token of `user_id` issued until now and ends all their sessions.
    pub async fn revoke_user(&self, user_id: &str) -> anyhow::Result<()> {
        let now = self.clock.unix_seconds();
        store::sessions::revoke_all_of_user(&self.db, user_id, now).await?;
        self.revoke(Revocation {
            kind: platform::auth::RevocationKind::Subject,
            value: user_id.to_string(),
            issued_before: self.clock.now_millis(),
            expires_at: now + self.settings.access_token_ttl as i64 + self.auth.leeway as i64 + 1,
        })
        .await
    }

    /// Ends one session and every access token issued in it.
    pub async fn revoke_session(&self, session_id: &str) -> anyhow::Result<()> {
        let now = self.clock.unix_seconds();
        store::sessions::revoke(&self.db, session_id, now).await?;
        self.revoke(Revocation {
            kind: platform::auth::RevocationKind::Session,
            value: session_id.to_string(),
            issued_before: now,
            expires_at: now + self.settings.access_token_ttl as i64 + self.auth.leeway as i64,
        })
        .await
    }
}
