//! Bots' X access tokens: read from Secure Bot Data once and kept in memory (zeroized when
//! dropped) until X refuses them; refreshed with the rotating refresh token, one refresh at
//! a time per bot, and the new pair saved back in one check-and-set write so a refresh that
//! raced another can never overwrite the newer refresh token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use platform::config::Secret;
use serde_json::{Map, Value, json};

use crate::botdata::{BotDataClient, BotDataError, fields};
use crate::xapi::{RefreshError, Refreshed, XClient};

/// Why a bot has no usable token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// A person must authorise the bot again (no tokens, or the refresh was refused).
    #[error("the bot needs new credentials: {0}")]
    NeedsReauth(String),
    /// Secure Bot Data or X could not be asked now; try later.
    #[error("credentials unavailable now: {0}")]
    Unavailable(String),
}

impl From<BotDataError> for TokenError {
    fn from(err: BotDataError) -> Self {
        Self::Unavailable(err.to_string())
    }
}

pub struct Tokens {
    botdata: Arc<BotDataClient>,
    x: Arc<XClient>,
    cache: Mutex<HashMap<String, Secret>>,
    refreshing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Whose bot it is: Secure Bot Data wants the owner and team with a write.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    pub user_id: &'a str,
    pub team: Option<&'a str>,
}

impl Tokens {
    pub fn new(botdata: Arc<BotDataClient>, x: Arc<XClient>) -> Self {
        Self {
            botdata,
            x,
            cache: Mutex::new(HashMap::new()),
            refreshing: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, bot_id: &str) -> Option<Secret> {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(bot_id)
            .cloned()
    }

    fn remember(&self, bot_id: &str, token: Secret) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(bot_id.to_string(), token);
    }

    /// Drops what is cached for a bot (its credentials were replaced).
    pub fn forget(&self, bot_id: &str) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(bot_id);
    }

    /// The bot's access token: cached, or revealed from Secure Bot Data.
    pub async fn access_token(&self, bot_id: &str, owner: Owner<'_>) -> Result<Secret, TokenError> {
        if let Some(token) = self.cached(bot_id) {
            return Ok(token);
        }
        match self.botdata.reveal(bot_id, fields::ACCESS_TOKEN).await? {
            Some(revealed) => {
                self.remember(bot_id, revealed.value.clone());
                Ok(revealed.value)
            }
            // No access token yet, but perhaps a refresh token: get one.
            None => self.refresh(bot_id, owner, None).await,
        }
    }

    fn refresh_lock(&self, bot_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.refreshing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(bot_id.to_string())
            .or_default()
            .clone()
    }

    /// A new access token after X refused `stale`. One refresh per bot at a time in this
    /// process (the bot's lease makes it one across replicas); a caller that waited behind
    /// another refresh takes its result instead of spending the refresh token again.
    pub async fn refresh(
        &self,
        bot_id: &str,
        owner: Owner<'_>,
        stale: Option<&Secret>,
    ) -> Result<Secret, TokenError> {
        let lock = self.refresh_lock(bot_id);
        let _one_at_a_time = lock.lock().await;
        if let (Some(current), Some(stale)) = (self.cached(bot_id), stale)
            && current.expose() != stale.expose()
        {
            return Ok(current);
        }
        let (refreshed, refresh_version) = self.exchange(bot_id).await?;
        let saved = self
            .save_rotated(bot_id, owner, &refreshed, refresh_version)
            .await;
        match saved {
            Ok(()) => {
                self.remember(bot_id, refreshed.access_token.clone());
                Ok(refreshed.access_token)
            }
            // Another refresh saved a newer pair: use that one.
            Err(BotDataError::Conflict) => {
                self.forget(bot_id);
                let current = self
                    .botdata
                    .reveal(bot_id, fields::ACCESS_TOKEN)
                    .await?
                    .ok_or_else(|| TokenError::NeedsReauth("no access token stored".into()))?;
                self.remember(bot_id, current.value.clone());
                Ok(current.value)
            }
            Err(err) => {
                // The new pair exists only here now. Keep the access token for this process;
                // without the refresh token the bot will need a person after it expires.
                tracing::error!(bot_id, error = %err, "could not save a rotated refresh token");
                self.remember(bot_id, refreshed.access_token.clone());
                Ok(refreshed.access_token)
            }
        }
    }

    /// Spends the stored refresh token at X for a new pair; also the stored refresh token's
    /// version, which the new pair must replace.
    async fn exchange(&self, bot_id: &str) -> Result<(Refreshed, i64), TokenError> {
        let refresh = self
            .botdata
            .reveal(bot_id, fields::REFRESH_TOKEN)
            .await?
            .ok_or_else(|| TokenError::NeedsReauth("no refresh token stored".into()))?;
        let client_id = self
            .botdata
            .reveal(bot_id, fields::CLIENT_ID)
            .await?
            .ok_or_else(|| TokenError::NeedsReauth("no OAuth client id stored".into()))?;
        let client_secret = self.botdata.reveal(bot_id, fields::CLIENT_SECRET).await?;
        let refreshed = self
            .x
            .refresh(
                &refresh.value,
                client_id.value.expose(),
                client_secret.as_ref().map(|s| &s.value),
            )
            .await
            .map_err(|err| match err {
                RefreshError::Refused(reason) => TokenError::NeedsReauth(reason),
                other => TokenError::Unavailable(other.to_string()),
            })?;
        Ok((refreshed, refresh.version))
    }

    /// Saves a rotated pair with check-and-set on the refresh token it replaces (the old one
    /// is spent now: the new one must be saved), trying again while Secure Bot Data is
    /// unavailable. A conflict means another refresh saved a newer pair.
    async fn save_rotated(
        &self,
        bot_id: &str,
        owner: Owner<'_>,
        refreshed: &Refreshed,
        replaces_version: i64,
    ) -> Result<(), BotDataError> {
        let mut data = Map::new();
        data.insert(
            fields::ACCESS_TOKEN.into(),
            json!(refreshed.access_token.expose()),
        );
        data.insert(
            fields::REFRESH_TOKEN.into(),
            json!(refreshed.refresh_token.expose()),
        );
        let mut expect = Map::new();
        expect.insert(fields::REFRESH_TOKEN.into(), Value::from(replaces_version));
        let mut saved = Err(BotDataError::Unavailable(anyhow::anyhow!("not tried")));
        for attempt in 0..3u32 {
            saved = self
                .botdata
                .store(
                    bot_id,
                    (owner.user_id, owner.team),
                    &data,
                    Some(expect.clone()),
                )
                .await;
            match &saved {
                Err(BotDataError::Unavailable(_)) => {
                    tokio::time::sleep(std::time::Duration::from_millis(200 << attempt)).await;
                }
                _ => break,
            }
        }
        saved
    }
}
