//! Who may read which categories, and whose events. Admins read everything; `logs:read`
//! (Managers) reads user_activity; `logs:read:debug` reads debug, terminal and console. Of
//! those, everyone but admins (and service clients) reads only events they acted in and
//! events of their team, as the Bot Manager scopes bots. The rules are applied to every
//! query, export and delete on the server, never left to the client.

use platform::auth::{Caller, Reach};
use platform::{ApiError, ErrorCode};

use crate::model::Category;
use crate::store::TeamScope;

/// Whose events the caller reads: `None` for everyone's.
pub fn scope(caller: &Caller) -> Option<TeamScope> {
    match caller.reach() {
        Reach::All => None,
        Reach::Member { user_id, team } => Some(TeamScope {
            actor_id: user_id.to_string(),
            team: team.map(str::to_string),
        }),
    }
}

/// The categories the caller may read.
pub fn readable(caller: &Caller) -> Vec<Category> {
    Category::ALL
        .into_iter()
        .filter(|category| match category {
            Category::UserActivity => caller.has("logs:read"),
            _ => caller.has("logs:read:debug"),
        })
        .collect()
}

/// The categories a request covers: the ones asked for (all readable ones if none), each of
/// which must be readable.
pub fn covered(caller: &Caller, asked: &[Category]) -> Result<Vec<Category>, ApiError> {
    let readable = readable(caller);
    if readable.is_empty() {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "reading logs needs `logs:read` (user_activity) or `logs:read:debug` (debug, terminal, console)",
        ));
    }
    if asked.is_empty() {
        return Ok(readable);
    }
    if let Some(hidden) = asked.iter().find(|c| !readable.contains(c)) {
        let permission = if *hidden == Category::UserActivity {
            "logs:read"
        } else {
            "logs:read:debug"
        };
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("reading {} logs needs `{permission}`", hidden.as_str()),
        ));
    }
    Ok(asked.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform::auth::{Claims, TokenUse};

    fn caller(perms: &[&str]) -> Caller {
        Caller::new(Claims {
            iss: "i".into(),
            aud: "a".into(),
            sub: "u".into(),
            exp: 0,
            nbf: 0,
            iat: 0,
            jti: "j".into(),
            token_use: TokenUse::Access,
            roles: vec![],
            perms: perms.iter().map(|p| p.to_string()).collect(),
            sid: None,
            username: None,
            team: None,
        })
    }

    #[test]
    fn managers_read_user_activity_only_and_debug_needs_its_permission() {
        let manager = caller(&["logs:read"]);
        assert_eq!(readable(&manager), vec![Category::UserActivity]);
        assert!(covered(&manager, &[Category::Debug]).is_err());
        assert_eq!(
            covered(&manager, &[]).unwrap(),
            vec![Category::UserActivity]
        );
        let admin = caller(&["logs:read", "logs:read:debug"]);
        assert_eq!(covered(&admin, &[]).unwrap().len(), 4);
        assert!(covered(&caller(&["bots:read"]), &[]).is_err());
    }
}
