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

/// Seconds since the Unix epoch: the unit of the services' stored timestamps.
pub fn unix_now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Unix milliseconds as RFC 3339 UTC (empty if out of range).
pub fn rfc3339_from_millis(millis: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Unix seconds as RFC 3339 UTC (empty if out of range), for API responses.
pub fn rfc3339_from_unix(seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}
