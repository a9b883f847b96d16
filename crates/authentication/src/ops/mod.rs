//! Every operation of the Authentication service: the checks (the platform's `Caller` and
//! its permissions, throttling, the password policy), the store calls, the revocations that
//! follow a change, and the activity record. The HTTP API calls these; the SQL is in `store`.

pub mod clients;
pub mod login;
pub mod me;
pub mod oauth;
pub mod roles;
pub mod users;

/// Where a request comes from, for throttling, sessions and activity.
pub struct ClientInfo {
    pub ip: String,
    pub user_agent: Option<String>,
}
