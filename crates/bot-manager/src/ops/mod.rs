//! Every operation of the Bot Manager: the permission and reach checks (the platform's
//! `Caller`), the rules, one transaction, and the activity record. The HTTP API and the
//! workers call these; the SQL is in `store`.

pub mod apps;
pub mod batch;
pub mod bot_imports;
pub mod bots;
pub mod budgets;
pub mod compliance;
pub mod connect;
pub mod disclosure;
pub mod imports;
pub mod media;
pub mod metrics;
pub mod posts;
pub mod recurrences;
pub mod replies;
pub mod reviews;
pub mod summaries;
pub mod text;
pub mod threads;
pub mod usage;
