//! Envelope encryption, as Vault's Transit engine does it: every record version gets a fresh
//! 256-bit data key (DEK) and a random 96-bit nonce; the value is sealed with AES-256-GCM
//! under the DEK, and the DEK is sealed (wrapped) under a versioned key-encryption key (KEK).
//! The associated data of both seals names the record (bot, field, version) and, for the DEK,
//! the KEK version, so a ciphertext or wrapped key copied to another record does not open.
//!
//! Keys and plaintexts live in `Zeroizing` buffers or zeroize-on-drop ciphers, so they are
//! wiped when dropped.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Fills a buffer from the OS random source.
fn fill_random(buffer: &mut [u8]) {
    SystemRandom::new()
        .fill(buffer)
        .expect("the OS random source works");
}

/// A fresh random 256-bit key.
pub fn random_key() -> Zeroizing<[u8; KEY_LEN]> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    fill_random(key.as_mut());
    key
}

/// The record a ciphertext belongs to; bound into every seal as associated data.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    pub bot_id: &'a str,
    pub field: &'a str,
    pub version: i64,
}

impl RecordRef<'_> {
    // Bot ids and field names cannot contain NUL (see `model`), so the encoding is unambiguous.
    fn value_aad(&self) -> Vec<u8> {
        format!(
            "vivesphere/botdata/value/v1\0{}\0{}\0{}",
            self.bot_id, self.field, self.version
        )
        .into_bytes()
    }

    fn dek_aad(&self, kek_version: u32) -> Vec<u8> {
        format!(
            "vivesphere/botdata/dek/v1\0{}\0{}\0{}\0{kek_version}",
            self.bot_id, self.field, self.version
        )
        .into_bytes()
    }
}

/// A sealed record version as stored: which KEK wrapped its DEK, the wrapped DEK and the
/// ciphertext (each `nonce || ciphertext || tag`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub kek_version: u32,
    pub wrapped_dek: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// Why a sealed value did not open. Deliberately vague: the caller learns nothing about
/// which part failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the sealed value does not open with this key for this record")]
pub struct OpenError;

/// One version of the key-encryption key. Its cipher state is wiped on drop.
pub struct Kek {
    version: u32,
    cipher: Aes256Gcm,
    /// Keys the HMAC that stands in for values in the audit trail; derived from the KEK so
    /// that it is exactly as secret.
    audit_mac: ring::hmac::Key,
}

impl Kek {
    /// `bytes` must be 32 bytes.
    pub fn new(version: u32, bytes: &[u8]) -> anyhow::Result<Self> {
        anyhow::ensure!(version >= 1, "KEK versions start at 1");
        anyhow::ensure!(
            bytes.len() == KEY_LEN,
            "a KEK is 32 bytes (base64 of 32 random bytes), got {} bytes",
            bytes.len()
        );
        let derivation = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, bytes);
        let derived = Zeroizing::new(
            ring::hmac::sign(&derivation, b"vivesphere/botdata/audit-hmac/v1")
                .as_ref()
                .to_vec(),
        );
        Ok(Self {
            version,
            cipher: Aes256Gcm::new_from_slice(bytes).expect("32-byte key"),
            audit_mac: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &derived),
        })
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    /// `hmac-sha256:v<kek>:<hex>` of a value: lets an auditor see that two writes carried the
    /// same value, never the value.
    pub fn audit_hmac(&self, value: &[u8]) -> String {
        let tag = ring::hmac::sign(&self.audit_mac, value);
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        format!("hmac-sha256:v{}:{hex}", self.version)
    }
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kek")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

fn encrypt(cipher: &Aes256Gcm, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce);
    let mut buffer = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    buffer.extend_from_slice(plaintext);
    cipher
        .encrypt_in_place(&Nonce::from(nonce), aad, &mut buffer)
        .expect("AES-GCM encrypts any in-memory buffer of this size");
    let mut out = Vec::with_capacity(NONCE_LEN + buffer.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&buffer);
    // The buffer held plaintext until it was encrypted in place; it is ciphertext now.
    out
}

fn decrypt(cipher: &Aes256Gcm, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(OpenError);
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| OpenError)?;
    let mut buffer = Zeroizing::new(body.to_vec());
    cipher
        .decrypt_in_place(&Nonce::from(nonce), aad, &mut *buffer)
        .map_err(|_| OpenError)?;
    Ok(buffer)
}

/// Seals `plaintext` for `record` under a fresh DEK wrapped by `kek`.
pub fn seal(kek: &Kek, record: RecordRef<'_>, plaintext: &[u8]) -> Sealed {
    let dek = random_key();
    let data_cipher = Aes256Gcm::new_from_slice(dek.as_ref()).expect("32-byte key");
    let ciphertext = encrypt(&data_cipher, &record.value_aad(), plaintext);
    let wrapped_dek = encrypt(&kek.cipher, &record.dek_aad(kek.version), dek.as_ref());
    Sealed {
        kek_version: kek.version,
        wrapped_dek,
        ciphertext,
    }
}

fn unwrap_dek(
    kek: &Kek,
    record: RecordRef<'_>,
    wrapped_dek: &[u8],
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let dek = decrypt(&kek.cipher, &record.dek_aad(kek.version), wrapped_dek)?;
    if dek.len() != KEY_LEN {
        return Err(OpenError);
    }
    Ok(dek)
}

/// Opens a sealed value with the KEK it was wrapped under.
pub fn open(
    kek: &Kek,
    record: RecordRef<'_>,
    sealed: &Sealed,
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    if sealed.kek_version != kek.version {
        return Err(OpenError);
    }
    let dek = unwrap_dek(kek, record, &sealed.wrapped_dek)?;
    let data_cipher = Aes256Gcm::new_from_slice(&dek).map_err(|_| OpenError)?;
    decrypt(&data_cipher, &record.value_aad(), &sealed.ciphertext)
}

/// Re-wraps a DEK from `from` to `to`. The value itself is never decrypted.
pub fn rewrap(
    from: &Kek,
    to: &Kek,
    record: RecordRef<'_>,
    wrapped_dek: &[u8],
) -> Result<Vec<u8>, OpenError> {
    let dek = unwrap_dek(from, record, wrapped_dek)?;
    Ok(encrypt(&to.cipher, &record.dek_aad(to.version), &dek))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek(version: u32) -> Kek {
        Kek::new(version, random_key().as_ref()).unwrap()
    }

    fn record(field: &str, version: i64) -> RecordRef<'_> {
        RecordRef {
            bot_id: "bot-1",
            field,
            version,
        }
    }

    #[test]
    fn a_sealed_value_opens_to_the_same_plaintext() {
        let kek = kek(1);
        let sealed = seal(&kek, record("password", 1), b"hunter2-canary");
        assert_eq!(
            open(&kek, record("password", 1), &sealed)
                .unwrap()
                .as_slice(),
            b"hunter2-canary"
        );
        assert!(
            !sealed.ciphertext.windows(7).any(|w| w == b"hunter2"),
            "ciphertext carries plaintext"
        );
    }

    #[test]
    fn the_same_plaintext_seals_differently_each_time() {
        let kek = kek(1);
        let a = seal(&kek, record("password", 1), b"same");
        let b = seal(&kek, record("password", 1), b"same");
        assert_ne!(a.ciphertext, b.ciphertext);
        assert_ne!(a.wrapped_dek, b.wrapped_dek);
        assert_ne!(a.ciphertext[..NONCE_LEN], b.ciphertext[..NONCE_LEN]);
    }

    #[test]
    fn a_ciphertext_moved_to_another_record_does_not_open() {
        let kek = kek(1);
        let sealed = seal(&kek, record("password", 1), b"secret");
        assert_eq!(open(&kek, record("email", 1), &sealed), Err(OpenError));
        assert_eq!(open(&kek, record("password", 2), &sealed), Err(OpenError));
        let other_bot = RecordRef {
            bot_id: "bot-2",
            field: "password",
            version: 1,
        };
        assert_eq!(open(&kek, other_bot, &sealed), Err(OpenError));
        // Swapping only the ciphertext between two records fails too.
        let other = seal(&kek, record("email", 1), b"mail");
        let swapped = Sealed {
            ciphertext: other.ciphertext,
            ..sealed
        };
        assert_eq!(open(&kek, record("password", 1), &swapped), Err(OpenError));
    }

    #[test]
    fn a_wrong_or_tampered_key_or_ciphertext_fails() {
        let kek1 = kek(1);
        let sealed = seal(&kek1, record("password", 1), b"secret");
        assert_eq!(
            open(&kek(1), record("password", 1), &sealed),
            Err(OpenError)
        );
        let mut tampered = sealed.clone();
        let last = tampered.ciphertext.len() - 1;
        tampered.ciphertext[last] ^= 1;
        assert_eq!(
            open(&kek1, record("password", 1), &tampered),
            Err(OpenError)
        );
        let short = Sealed {
            ciphertext: vec![0; 5],
            ..sealed
        };
        assert_eq!(open(&kek1, record("password", 1), &short), Err(OpenError));
    }

    #[test]
    fn rewrap_moves_the_dek_to_the_new_kek_without_changing_the_ciphertext() {
        let (old, new) = (kek(1), kek(2));
        let sealed = seal(&old, record("token", 3), b"value");
        let wrapped = rewrap(&old, &new, record("token", 3), &sealed.wrapped_dek).unwrap();
        let moved = Sealed {
            kek_version: 2,
            wrapped_dek: wrapped,
            ciphertext: sealed.ciphertext.clone(),
        };
        assert_eq!(
            open(&new, record("token", 3), &moved).unwrap().as_slice(),
            b"value"
        );
        assert_eq!(open(&old, record("token", 3), &moved), Err(OpenError));
    }

    #[test]
    fn audit_hmacs_are_stable_per_key_and_hide_the_value() {
        let kek = kek(4);
        let a = kek.audit_hmac(b"canary-value");
        assert_eq!(a, kek.audit_hmac(b"canary-value"));
        assert_ne!(a, kek.audit_hmac(b"canary-valuf"));
        assert!(a.starts_with("hmac-sha256:v4:"));
        assert!(!a.contains("canary"));
    }

    #[test]
    fn keks_must_be_32_bytes_and_versioned_from_1() {
        assert!(Kek::new(1, &[0u8; 16]).is_err());
        assert!(Kek::new(0, &[0u8; 32]).is_err());
        assert!(!format!("{:?}", kek(1)).contains("cipher"));
    }
}
