//! Who is calling, in one model every service uses: a user (with roles, permissions and
//! maybe a team) or a service client (with the narrow scopes of its token); and the one rule
//! of reach over owned things — their owner, the owner's team, admins, and service clients
//! (which act for any owner, bounded by their scopes).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::extract::Authenticated;
use super::{Claims, TokenUse};
use crate::http::error::{ApiError, ErrorCode};

/// The role that reaches everything.
pub const ADMIN_ROLE: &str = "Admin";

/// A verified caller. As an extractor it answers 401 without a valid token.
#[derive(Debug, Clone)]
pub struct Caller {
    claims: Claims,
}

/// Which owned things a caller reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach<'a> {
    All,
    /// What `user_id` owns, and what their team owns.
    Member {
        user_id: &'a str,
        team: Option<&'a str>,
    },
}

impl Reach<'_> {
    /// Whether a thing owned by `owner_id` (of `team`) is within reach.
    pub fn includes(&self, owner_id: &str, team: Option<&str>) -> bool {
        match self {
            Reach::All => true,
            Reach::Member {
                user_id,
                team: mine,
            } => owner_id == *user_id || (mine.is_some() && team == *mine),
        }
    }
}

/// A team name, as users carry it and budgets are keyed by: 1–64 of letters, digits, `.`,
/// `_`, `-`.
pub fn check_team_name(team: &str) -> Result<(), ApiError> {
    let valid = (1..=64).contains(&team.len())
        && team
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid_data(
            "team: 1 to 64 letters, digits, '.', '_' or '-'",
        ))
    }
}

impl Caller {
    pub fn new(claims: Claims) -> Self {
        Self { claims }
    }

    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// The id written into records and the audit trail: a user id, or `client:<id>`.
    pub fn id(&self) -> &str {
        &self.claims.sub
    }

    /// The user's id; `None` for a service client.
    pub fn user_id(&self) -> Option<&str> {
        self.claims.user_id()
    }

    pub fn username(&self) -> Option<&str> {
        self.claims.username.as_deref()
    }

    /// Who, as people read it in a history: the username, else the id.
    pub fn display_name(&self) -> &str {
        self.username().unwrap_or_else(|| self.id())
    }

    pub fn team(&self) -> Option<&str> {
        self.claims.team.as_deref()
    }

    pub fn is_service(&self) -> bool {
        self.claims.token_use == TokenUse::Service
    }

    pub fn is_admin(&self) -> bool {
        !self.is_service() && self.claims.roles.iter().any(|role| role == ADMIN_ROLE)
    }

    pub fn has(&self, permission: &str) -> bool {
        self.claims.has_permission(permission)
    }

    /// 403 unless the caller holds `permission`.
    pub fn require(&self, permission: &str) -> Result<(), ApiError> {
        self.claims.require(permission)
    }

    /// 403 unless the caller is an admin.
    pub fn require_admin(&self, what: &str) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("{what} is for admins"),
            ))
        }
    }

    /// What the caller reaches: everything for admins and service clients, else their own
    /// and their team's.
    pub fn reach(&self) -> Reach<'_> {
        if self.is_service() || self.is_admin() {
            Reach::All
        } else {
            Reach::Member {
                user_id: &self.claims.sub,
                team: self.team(),
            }
        }
    }

    /// Whether a thing owned by `owner_id` (of `team`) is within reach.
    pub fn reaches(&self, owner_id: &str, team: Option<&str>) -> bool {
        self.reach().includes(owner_id, team)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Authenticated(claims) = Authenticated::from_request_parts(parts, state).await?;
        Ok(Self::new(claims))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(sub: &str, roles: &[&str], team: Option<&str>, token_use: TokenUse) -> Caller {
        Caller::new(Claims {
            iss: "i".into(),
            aud: "a".into(),
            sub: sub.into(),
            exp: 0,
            nbf: 0,
            iat: 0,
            jti: "j".into(),
            token_use,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            perms: vec!["bots:read".into()],
            sid: None,
            username: None,
            team: team.map(String::from),
        })
    }

    #[test]
    fn owners_teammates_admins_and_services_reach_a_thing_others_do_not() {
        let owner = caller("u1", &["Manager"], Some("red"), TokenUse::Access);
        let mate = caller("u2", &["Editor"], Some("red"), TokenUse::Access);
        let stranger = caller("u3", &["Manager"], Some("blue"), TokenUse::Access);
        let loner = caller("u4", &["Manager"], None, TokenUse::Access);
        let admin = caller("u5", &[ADMIN_ROLE], None, TokenUse::Access);
        let service = caller("client:bm", &[], None, TokenUse::Service);
        for (who, reaches) in [
            (&owner, true),
            (&mate, true),
            (&stranger, false),
            (&loner, false),
            (&admin, true),
            (&service, true),
        ] {
            assert_eq!(who.reaches("u1", Some("red")), reaches, "{}", who.id());
        }
        // A thing without a team: its owner only (and admins, services).
        assert!(!mate.reaches("u1", None));
        assert!(!loner.reaches("u1", None));
        assert!(owner.reaches("u1", None));
    }

    #[test]
    fn a_service_client_is_never_an_admin_and_owns_nothing() {
        let service = caller("client:bm", &[ADMIN_ROLE], None, TokenUse::Service);
        assert!(!service.is_admin());
        assert!(service.user_id().is_none());
        assert!(service.require_admin("this").is_err());
        assert!(service.require("bots:read").is_ok());
        assert!(service.require("bots:write").is_err());
    }
}
