//! The service's storage, one module per table group. All SQL runs unchanged on SQLite and
//! PostgreSQL.

pub mod clients;
pub mod keys;
pub mod recovery;
pub mod revocations;
pub mod roles;
pub mod sessions;
pub mod throttle;
pub mod users;

pub use platform::db::is_unique_violation;
