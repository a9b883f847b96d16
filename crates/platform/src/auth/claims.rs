//! The claims of a ViveSphere token and of a revocation.

use serde::{Deserialize, Serialize};

use crate::http::error::{ApiError, ErrorCode};

/// What a token may be used for. Only `Access` and `Service` tokens open API routes; an
/// `MfaPending` token is accepted by the MFA step of login and nowhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenUse {
    Access,
    Service,
    MfaPending,
}

/// The claims of every token the Authentication service signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// A user id, or `client:<client_id>` for a service client.
    pub sub: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    pub token_use: TokenUse,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub perms: Vec<String>,
    /// The login session (refresh-token family) the token belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The user's team: teammates reach each other's bots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
}

impl Claims {
    pub fn has_permission(&self, permission: &str) -> bool {
        self.perms.iter().any(|p| p == permission)
    }

    /// 403 unless the token carries `permission`.
    pub fn require(&self, permission: &str) -> Result<(), ApiError> {
        if self.has_permission(permission) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("this needs the `{permission}` permission"),
            ))
        }
    }

    /// Why the token is not usable at `now` (Unix seconds, from the platform clock), with
    /// `leeway` seconds either side: expired, or not valid yet.
    pub fn outside_lifetime(&self, now: i64, leeway: i64) -> Option<&'static str> {
        if self.exp + leeway < now {
            Some("expired")
        } else if self.nbf - leeway > now {
            Some("not valid yet")
        } else {
            None
        }
    }

    /// When the token was minted, in Unix milliseconds: from its UUIDv7 `jti` if it has
    /// one, else from `iat`.
    pub fn minted_at_millis(&self) -> i64 {
        uuid::Uuid::parse_str(&self.jti)
            .ok()
            .and_then(|id| id.get_timestamp())
            .map(|ts| {
                let (seconds, nanos) = ts.to_unix();
                seconds as i64 * 1000 + i64::from(nanos / 1_000_000)
            })
            .unwrap_or(self.iat * 1000)
    }

    /// The user id, for user tokens.
    pub fn user_id(&self) -> Option<&str> {
        (self.token_use == TokenUse::Access).then_some(self.sub.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationKind {
    /// One token, by `jti`.
    Token,
    /// Every token of a subject issued before `issued_before` (logout everywhere, password
    /// change, disabled user, changed roles).
    Subject,
    /// Every token of one login session (`sid`): logout, or a session ended by its owner.
    Session,
}

/// A revocation as published by the Authentication service, on the revocation list and as a
/// fan-out event. It matters only until `expires_at`, when the tokens it covers expire anyway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub kind: RevocationKind,
    /// The `jti`, the `sub` or the `sid`.
    pub value: String,
    /// For `Subject`: tokens minted before this instant (Unix milliseconds) are refused.
    /// The mint time is read from the token's UUIDv7 `jti` (millisecond precision, so a
    /// login right after a password change is not caught), else from `iat`.
    pub issued_before: i64,
    pub expires_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(jti: &str, iat: i64) -> Claims {
        Claims {
            iss: "i".into(),
            aud: "a".into(),
            sub: "s".into(),
            exp: iat + 60,
            nbf: iat,
            iat,
            jti: jti.into(),
            token_use: TokenUse::Access,
            roles: vec![],
            perms: vec!["bots:read".into()],
            sid: None,
            username: None,
            team: None,
        }
    }

    #[test]
    fn mint_time_comes_from_a_v7_jti_in_milliseconds_else_from_iat() {
        let id = uuid::Uuid::now_v7();
        let (seconds, nanos) = id.get_timestamp().unwrap().to_unix();
        let expected = seconds as i64 * 1000 + i64::from(nanos / 1_000_000);
        assert_eq!(claims(&id.to_string(), 5).minted_at_millis(), expected);
        assert_eq!(
            claims("not-a-uuid", 1_700_000_000).minted_at_millis(),
            1_700_000_000_000
        );
    }

    #[test]
    fn lifetime_is_exp_and_nbf_with_leeway_either_side() {
        let c = claims("x", 1_000); // nbf 1000, exp 1060
        assert_eq!(c.outside_lifetime(1_000, 0), None);
        assert_eq!(c.outside_lifetime(1_060, 0), None);
        assert_eq!(c.outside_lifetime(1_061, 0), Some("expired"));
        assert_eq!(c.outside_lifetime(1_065, 5), None);
        assert_eq!(c.outside_lifetime(999, 0), Some("not valid yet"));
        assert_eq!(c.outside_lifetime(995, 5), None);
    }

    #[test]
    fn permissions_are_required_exactly() {
        let c = claims("x", 0);
        assert!(c.require("bots:read").is_ok());
        assert!(c.require("bots:write").is_err());
        assert!(c.require("bots").is_err());
    }
}
