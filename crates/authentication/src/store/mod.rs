//! The service's storage, one module per table group. All SQL runs unchanged on SQLite and
//! PostgreSQL.

pub mod clients;
pub mod recovery;
pub mod revocations;
pub mod roles;
pub mod sessions;
pub mod throttle;
pub mod users;

/// Whether a database error is a unique-constraint violation (a duplicate name).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                || db.message().contains("UNIQUE constraint failed")
                || db.code().as_deref() == Some("23505")
        }
        _ => false,
    }
}
