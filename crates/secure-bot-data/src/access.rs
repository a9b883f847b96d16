//! Which bots a caller reaches, by the platform's one rule (`platform::auth::Caller`): users
//! the bots they own and those of their team, admins every bot, service clients (the Bot
//! Manager) any owner's, limited by the narrow scopes of their client_credentials token.

use platform::auth::Caller;

use crate::store::bots::BotRow;

/// Whether `caller` reaches `bot`.
pub fn reaches(caller: &Caller, bot: &BotRow) -> bool {
    caller.reaches(&bot.owner_id, bot.team.as_deref())
}

/// Whether `caller` may register a bot for someone else (`owner_id` in a store).
pub fn may_assign_owner(caller: &Caller) -> bool {
    caller.is_service() || caller.is_admin()
}
