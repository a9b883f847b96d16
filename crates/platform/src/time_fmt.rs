//! Time formatting: the platform writes every timestamp as RFC 3339 in UTC (the API
//! convention) and stores instants as milliseconds or seconds since the Unix epoch. What time
//! it is comes from [`crate::clock::Clock`], never from here.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A time as RFC 3339 in UTC.
pub fn rfc3339(time: OffsetDateTime) -> String {
    time.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .expect("RFC 3339 formatting of a UTC time cannot fail")
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

/// Serde: Unix milliseconds written as RFC 3339 UTC, the API convention
/// (`#[serde(serialize_with = "platform::time_fmt::millis_as_rfc3339")]`).
pub fn millis_as_rfc3339<S: serde::Serializer>(
    millis: &i64,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&rfc3339_from_millis(*millis))
}
