//! The service's tables. Values and DEKs are stored sealed, as base64 text, so both backends
//! use the same SQL; nothing here ever sees a plaintext or a KEK.

pub mod audit;
pub mod backup;
pub mod bots;
pub mod policy;
pub mod secrets;

pub use platform::time_fmt::rfc3339_from_unix as rfc3339;
