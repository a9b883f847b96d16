//! Who is calling and which bots they may reach. Users reach the bots they own and those of
//! their team; admins reach every bot; service clients (the Bot Manager) act for any owner,
//! limited by the narrow scopes of their client_credentials token.

use platform::auth::{Claims, TokenUse};

use crate::store::bots::{BotRow, Scope};

/// The role that reaches every bot.
pub const ADMIN_ROLE: &str = "Admin";

#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: Claims,
}

impl Caller {
    pub fn new(claims: Claims) -> Self {
        Self { claims }
    }

    /// The id written into metadata and the audit trail.
    pub fn id(&self) -> &str {
        &self.claims.sub
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

    pub fn scope(&self) -> Scope<'_> {
        if self.is_service() || self.is_admin() {
            Scope::All
        } else {
            Scope::Member {
                user_id: &self.claims.sub,
                team: self.claims.team.as_deref(),
            }
        }
    }

    pub fn may_reach(&self, bot: &BotRow) -> bool {
        self.scope().includes(bot)
    }

    /// Whether this caller may register a bot for someone else (`owner_id` in a store).
    pub fn may_assign_owner(&self) -> bool {
        self.is_service() || self.is_admin()
    }
}
