//! Time helpers: the platform writes every timestamp as RFC 3339 in UTC (the API convention)
//! and measures queue deadlines in milliseconds since the Unix epoch.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Now, formatted as RFC 3339 in UTC.
pub fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .expect("RFC 3339 formatting of a UTC time cannot fail")
}

/// Milliseconds since the Unix epoch, the unit of every stored deadline.
pub fn now_millis() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}
