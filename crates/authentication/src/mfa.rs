//! TOTP (RFC 6238: SHA-1, 6 digits, 30-second steps, one step of skew). The secret is sealed
//! at rest; the last accepted step is stored so that a code cannot be replayed.

use platform::http::form::percent_encode;
use totp_rs::{Algorithm, Builder, Totp};

use crate::crypto::{Sealer, random_bytes};

pub const STEP: u64 = 30;

fn totp(secret: &[u8]) -> anyhow::Result<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(STEP)
        .with_secret(secret.to_vec())
        .build()
        .map_err(|err| anyhow::anyhow!("TOTP parameters rejected: {err:?}"))
}

/// A new 160-bit secret.
pub fn new_secret() -> [u8; 20] {
    random_bytes::<20>()
}

/// RFC 4648 base32 without padding, as authenticator apps expect.
pub fn base32(secret: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let mut buffer = 0u32;
    let mut bits = 0;
    for byte in secret {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            out.push(ALPHABET[((buffer >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The `otpauth://` URI an authenticator app scans.
pub fn otpauth_uri(issuer: &str, username: &str, secret: &[u8]) -> String {
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits=6&period={STEP}",
        percent_encode(issuer),
        percent_encode(username),
        base32(secret),
        percent_encode(issuer)
    )
}

pub fn seal(sealer: &Sealer, user_id: &str, secret: &[u8]) -> String {
    sealer.seal(secret, &format!("totp:{user_id}"))
}

pub fn open(sealer: &Sealer, user_id: &str, sealed: &str) -> anyhow::Result<Vec<u8>> {
    sealer.open(sealed, &format!("totp:{user_id}"))
}

/// The time step `code` is valid for at `unix_time`, if any.
pub fn matching_step(secret: &[u8], code: &str, unix_time: u64) -> Option<i64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    totp(secret)
        .ok()?
        .check(code, unix_time)
        .map(|step| step as i64)
}

/// The code for `unix_time`.
#[cfg(test)]
pub fn code_at(secret: &[u8], unix_time: u64) -> String {
    totp(secret)
        .expect("valid TOTP parameters")
        .generate(unix_time)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_sha1_vectors_truncated_to_six_digits() {
        // RFC 6238 appendix B, secret "12345678901234567890".
        let secret = b"12345678901234567890";
        assert_eq!(code_at(secret, 59), "287082");
        assert_eq!(code_at(secret, 1111111109), "081804");
        assert_eq!(code_at(secret, 1234567890), "005924");
    }

    #[test]
    fn codes_match_one_step_either_side_only() {
        let secret = new_secret();
        let now = 1_700_000_000;
        let code = code_at(&secret, now);
        assert_eq!(
            matching_step(&secret, &code, now),
            Some((now / STEP) as i64)
        );
        assert!(matching_step(&secret, &code, now + STEP).is_some());
        assert!(matching_step(&secret, &code, now + 3 * STEP).is_none());
        assert!(matching_step(&secret, "12345", now).is_none());
        assert!(matching_step(&secret, "abcdef", now).is_none());
    }

    #[test]
    fn base32_matches_rfc_4648() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"f"), "MY");
    }

    #[test]
    fn otpauth_uri_escapes_names() {
        let uri = otpauth_uri("ViveSphere", "ada lovelace", b"12345678901234567890");
        assert!(
            uri.starts_with(
                "otpauth://totp/ViveSphere:ada%20lovelace?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
            ),
            "{uri}"
        );
    }
}
