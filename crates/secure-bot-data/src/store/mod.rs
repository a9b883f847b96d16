//! The service's tables. Values and DEKs are stored sealed, as base64 text, so both backends
//! use the same SQL; nothing here ever sees a plaintext or a KEK.

pub mod audit;
pub mod backup;
pub mod bots;
pub mod policy;
pub mod secrets;

/// Unix seconds now.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Unix seconds as RFC 3339 UTC.
pub fn rfc3339(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
