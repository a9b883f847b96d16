//! Every operation of Secure Bot Data: the permission and reach checks (the platform's
//! `Caller`; a refusal is audited), sealing and opening values, one transaction, and the
//! audit rows that go with every write and reveal. The HTTP API calls these; the SQL is in
//! `store`.

pub mod bots;
pub mod lifecycle;
pub mod reveal;
pub mod sys;
pub mod write;
