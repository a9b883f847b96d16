//! Issuing tokens: user access tokens, MFA-pending tokens and service tokens, all EdDSA with
//! the active key's `kid`; and checking MFA-pending tokens, which no other service accepts.

use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation, decode, decode_header, encode};
use platform::auth::{Claims, TokenUse};
use serde::Serialize;

use crate::service::Authentication;
use crate::store;
use crate::store::users::User;

/// What login and refresh answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    /// The access token (a JWT): send it as `Authorization: Bearer`.
    pub token: String,
    pub token_type: &'static str,
    /// Seconds until `token` expires.
    pub expires_in: u64,
    /// Opaque, single use: exchange it at `/refresh` for a new pair.
    pub refresh_token: String,
}

pub const MFA_VERIFY: &str = "mfa:verify";
pub const MFA_ENROLL: &str = "mfa:enroll";

impl Authentication {
    async fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        let key = self.keys.active().await?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        Ok(encode(&header, claims, &key.encoding)?)
    }

    fn claims(&self, sub: &str, aud: String, ttl: u64, token_use: TokenUse) -> Claims {
        let now = self.clock.unix_seconds();
        Claims {
            iss: self.auth.issuer.clone(),
            aud,
            sub: sub.to_string(),
            exp: now + ttl as i64,
            nbf: now,
            iat: now,
            jti: self.clock.uuid_v7().to_string(),
            token_use,
            roles: Vec::new(),
            perms: Vec::new(),
            sid: None,
            username: None,
            team: None,
        }
    }

    /// An access token for `user` in session `sid`, with its roles and their permissions.
    pub async fn access_token(&self, user: &User, sid: &str) -> anyhow::Result<String> {
        let mut claims = self.claims(
            &user.id,
            self.auth.audience.clone(),
            self.settings.access_token_ttl,
            TokenUse::Access,
        );
        claims.roles = user.roles.clone();
        claims.perms = store::roles::permissions_of(&self.db, &user.roles).await?;
        claims.sid = Some(sid.to_string());
        claims.username = Some(user.username.clone());
        claims.team = user.team.clone();
        self.sign(&claims).await
    }

    /// Starts a session for `user` and returns its first token pair.
    pub async fn open_session(
        &self,
        user: &User,
        user_agent: Option<&str>,
        ip: Option<&str>,
    ) -> anyhow::Result<TokenPair> {
        let (sid, refresh_token) = store::sessions::start(
            &self.db,
            &user.id,
            self.settings.session_absolute_timeout as i64,
            user_agent,
            ip,
            self.clock.unix_seconds(),
        )
        .await?;
        self.pair(user, &sid, refresh_token).await
    }

    pub async fn pair(
        &self,
        user: &User,
        sid: &str,
        refresh_token: String,
    ) -> anyhow::Result<TokenPair> {
        Ok(TokenPair {
            token: self.access_token(user, sid).await?,
            token_type: "Bearer",
            expires_in: self.settings.access_token_ttl,
            refresh_token,
        })
    }

    fn mfa_audience(&self) -> String {
        format!("{}:mfa", self.auth.audience)
    }

    /// The short-lived token the password step yields when a second factor is needed;
    /// `purpose` is [`MFA_VERIFY`] or [`MFA_ENROLL`].
    pub async fn mfa_token(&self, user: &User, purpose: &str) -> anyhow::Result<String> {
        let mut claims = self.claims(
            &user.id,
            self.mfa_audience(),
            self.settings.mfa_token_ttl,
            TokenUse::MfaPending,
        );
        claims.perms = vec![purpose.to_string()];
        claims.username = Some(user.username.clone());
        self.sign(&claims).await
    }

    /// Checks an MFA-pending token for `purpose`; it must not have been used before.
    pub async fn check_mfa_token(&self, token: &str, purpose: &str) -> Option<Claims> {
        let header = decode_header(token).ok()?;
        if header.alg != Algorithm::EdDSA
            || header.jku.is_some()
            || header.jwk.is_some()
            || header.x5u.is_some()
        {
            return None;
        }
        let kid = header.kid?;
        let jwks = self.keys.jwks().await.ok()?;
        let jwk = jwks.keys.into_iter().find(|k| k.kid == kid)?;
        let key = DecodingKey::from_ed_components(&jwk.x).ok()?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.auth.issuer]);
        validation.set_audience(&[self.mfa_audience()]);
        // Lifetime by the service's clock, not the library's reading of the system time.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        let claims = decode::<Claims>(token, &key, &validation).ok()?.claims;
        if claims.token_use != TokenUse::MfaPending
            || !claims.has_permission(purpose)
            || claims
                .outside_lifetime(self.clock.unix_seconds(), self.auth.leeway as i64)
                .is_some()
        {
            return None;
        }
        if store::revocations::contains_token(&self.db, &claims.jti)
            .await
            .ok()?
        {
            return None;
        }
        Some(claims)
    }

    /// Spends an MFA-pending token so it cannot be used twice.
    pub async fn spend_mfa_token(&self, claims: &Claims) -> anyhow::Result<()> {
        store::revocations::insert(
            &self.db,
            &platform::auth::Revocation {
                kind: platform::auth::RevocationKind::Token,
                value: claims.jti.clone(),
                issued_before: claims.iat,
                expires_at: claims.exp + self.auth.leeway as i64,
            },
        )
        .await
    }

    /// A service token for `client_id` addressed to `service`, carrying `scopes`.
    pub async fn service_token(
        &self,
        client_id: &str,
        service: &str,
        scopes: Vec<String>,
    ) -> anyhow::Result<String> {
        let mut claims = self.claims(
            &format!("client:{client_id}"),
            format!("{}:{service}", self.auth.audience),
            self.settings.service_token_ttl.min(300),
            TokenUse::Service,
        );
        claims.perms = scopes;
        self.sign(&claims).await
    }

    /// Decodes one of our JWTs whatever its state (for revocation and introspection).
    pub async fn decode_any(&self, token: &str) -> Option<Claims> {
        let header = decode_header(token).ok()?;
        if header.alg != Algorithm::EdDSA {
            return None;
        }
        let jwks = self.keys.jwks().await.ok()?;
        let jwk = jwks
            .keys
            .into_iter()
            .find(|k| Some(&k.kid) == header.kid.as_ref())?;
        let key = DecodingKey::from_ed_components(&jwk.x).ok()?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.set_issuer(&[&self.auth.issuer]);
        validation.set_required_spec_claims::<&str>(&[]);
        decode::<Claims>(token, &key, &validation)
            .ok()
            .map(|d| d.claims)
    }
}
