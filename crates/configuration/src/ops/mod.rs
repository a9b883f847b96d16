//! Every operation of the Configuration service: the caller's permission (and the Admin role
//! where history is rewritten), the rules every release must pass, the store calls, and the
//! announcement and activity record of a change. The HTTP API and the in-process provider
//! call these; the SQL is in `store`.

pub mod history;
pub mod releases;
pub mod settings;
