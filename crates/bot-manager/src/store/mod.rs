//! The Bot Manager's tables: bots, posts with their jobs, outbox and history, threads,
//! recurring posts, review policies, content claims, connections to X in progress, leases and rate windows for execution, metric snapshots and the usage meter.
//! SQL that both SQLite and PostgreSQL run.

pub mod apps;
pub mod bots;
pub mod budgets;
pub mod claims;
pub mod compliance;
pub mod connections;
pub mod execution;
pub mod history;
pub mod media;
pub mod metrics;
pub mod posts;
pub mod recurrences;
pub mod reviews;
pub mod summaries;
pub mod threads;
pub mod usage;

pub use platform::db::is_unique_violation;

/// `FOR UPDATE SKIP LOCKED` where the database has it (PostgreSQL), so that replicas
/// claiming rows never take the same one; SQLite serializes writers anyway.
pub fn skip_locked(db: &platform::db::Database) -> &'static str {
    match db.backend() {
        platform::db::Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        platform::db::Backend::Sqlite => "",
    }
}
