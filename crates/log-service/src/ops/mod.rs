//! Every operation of the Logging service: who may write and read which categories (the
//! platform's `Caller`), the retention rules, the store calls and the activity record of a
//! delete. The HTTP API and the queue consumer call these; the SQL is in `store`.

pub mod group_commit;
pub mod ingest;
pub mod read;
pub mod retention;
pub mod space;
pub mod webhooks;
