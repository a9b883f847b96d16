//! Small cryptographic helpers: random secrets, hashes for stored tokens, and sealing of
//! secrets at rest (signing keys, TOTP secrets) with AES-256-GCM under the service's key.

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// `n` random bytes from the OS.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the OS random source works");
    bytes
}

/// An opaque token of 256 random bits, URL-safe.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// SHA-256, hex: how opaque tokens and client secrets are stored.
pub fn sha256_hex(value: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, value.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time equality for secrets.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Seals and opens secrets at rest. `context` is bound as associated data, so a sealed value
/// moved to another row or purpose does not open.
pub struct Sealer {
    key: LessSafeKey,
}

impl Sealer {
    pub fn from_base64(key: &str) -> anyhow::Result<Self> {
        let bytes = STANDARD
            .decode(key.trim())
            .context("authentication.encryption_key must be base64")?;
        if bytes.len() != 32 {
            bail!("authentication.encryption_key must be 32 bytes (base64 of 32 random bytes)");
        }
        Ok(Self {
            key: LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &bytes).expect("32-byte key")),
        })
    }

    pub fn seal(&self, plaintext: &[u8], context: &str) -> String {
        let nonce_bytes = random_bytes::<NONCE_LEN>();
        let mut buffer = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(context.as_bytes()),
                &mut buffer,
            )
            .expect("sealing cannot fail for in-memory buffers");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buffer);
        format!("v1:{}", STANDARD.encode(out))
    }

    pub fn open(&self, sealed: &str, context: &str) -> anyhow::Result<Vec<u8>> {
        let encoded = sealed
            .strip_prefix("v1:")
            .context("unknown sealed format")?;
        let bytes = STANDARD
            .decode(encoded)
            .context("sealed value is not base64")?;
        if bytes.len() < NONCE_LEN {
            bail!("sealed value too short");
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let mut buffer = ciphertext.to_vec();
        let nonce = Nonce::try_assume_unique_for_key(nonce).expect("nonce length checked");
        let plaintext = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buffer)
            .map_err(|_| anyhow::anyhow!("sealed value does not open with this key and context"))?;
        Ok(plaintext.to_vec())
    }
}

/// Base64 of 32 fresh random bytes: a new encryption key.
pub fn new_encryption_key() -> String {
    STANDARD.encode(random_bytes::<32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_context() {
        let sealer = Sealer::from_base64(&new_encryption_key()).unwrap();
        let sealed = sealer.seal(b"totp secret", "totp:user-1");
        assert!(!sealed.contains("totp secret"));
        assert_eq!(sealer.open(&sealed, "totp:user-1").unwrap(), b"totp secret");
        assert!(sealer.open(&sealed, "totp:user-2").is_err());
        let other = Sealer::from_base64(&new_encryption_key()).unwrap();
        assert!(other.open(&sealed, "totp:user-1").is_err());
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert!(Sealer::from_base64("not base64!").is_err());
        assert!(Sealer::from_base64(&STANDARD.encode([0u8; 16])).is_err());
    }

    #[test]
    fn random_tokens_carry_256_bits_and_differ() {
        let a = random_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert_ne!(a, random_token());
    }
}
