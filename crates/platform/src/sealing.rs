//! Sealing secrets at rest with AES-256-GCM under a service's key: signing keys and TOTP
//! secrets in the Authentication service, webhook signing secrets in the Logging service.
//! The key comes from configuration (a mounted Secret); in development only, a key is made
//! on first start and kept in a private file.

use std::path::Path;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::config::{Profile, Secret};

/// `n` random bytes from the OS.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the OS random source works");
    bytes
}

/// Seals and opens secrets at rest. `context` is bound as associated data, so a sealed value
/// moved to another row or purpose does not open.
pub struct Sealer {
    key: LessSafeKey,
}

impl Sealer {
    /// A sealer from base64 of 32 bytes; `setting` names the key in error messages.
    pub fn from_base64(key: &str, setting: &str) -> anyhow::Result<Self> {
        let bytes = STANDARD
            .decode(key.trim())
            .with_context(|| format!("{setting} must be base64"))?;
        if bytes.len() != 32 {
            bail!("{setting} must be 32 bytes (base64 of 32 random bytes)");
        }
        Ok(Self {
            key: LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &bytes).expect("32-byte key")),
        })
    }

    /// The key in `configured`, or outside development an error naming `setting`; in
    /// development without one, the key in `development_path` (made on first start).
    pub fn from_settings(
        configured: Option<&Secret>,
        profile: Profile,
        development_path: &str,
        setting: &str,
    ) -> anyhow::Result<Self> {
        if let Some(key) = configured {
            return Self::from_base64(key.expose(), setting);
        }
        if profile != Profile::Development {
            bail!(
                "{setting} is required outside development \
                 (32 random bytes, base64, from a Secret via {setting}_file)"
            );
        }
        let path = Path::new(development_path);
        if !path.exists() {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            write_private(path, &new_key())?;
            tracing::warn!(file = %path.display(), "generated a development key; set {setting} outside development");
        }
        let key = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Self::from_base64(&key, setting)
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

/// Base64 of 32 fresh random bytes: a new key.
pub fn new_key() -> String {
    STANDARD.encode(random_bytes::<32>())
}

/// Creates `path` readable by its owner only; refuses an existing file.
pub fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTING: &str = "test.encryption_key";

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_context() {
        let sealer = Sealer::from_base64(&new_key(), SETTING).unwrap();
        let sealed = sealer.seal(b"totp secret", "totp:user-1");
        assert!(!sealed.contains("totp secret"));
        assert_eq!(sealer.open(&sealed, "totp:user-1").unwrap(), b"totp secret");
        assert!(sealer.open(&sealed, "totp:user-2").is_err());
        let other = Sealer::from_base64(&new_key(), SETTING).unwrap();
        assert!(other.open(&sealed, "totp:user-1").is_err());
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64_and_errors_name_the_setting() {
        let err = Sealer::from_base64("not base64!", SETTING).err().unwrap();
        assert!(err.to_string().contains(SETTING));
        assert!(Sealer::from_base64(&STANDARD.encode([0u8; 16]), SETTING).is_err());
    }

    #[test]
    fn development_makes_a_private_key_once_and_other_profiles_require_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/dev.key");
        let path = path.to_str().unwrap();
        let first = Sealer::from_settings(None, Profile::Development, path, SETTING).unwrap();
        let sealed = first.seal(b"x", "c");
        let again = Sealer::from_settings(None, Profile::Development, path, SETTING).unwrap();
        assert_eq!(again.open(&sealed, "c").unwrap(), b"x");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let err = Sealer::from_settings(None, Profile::Production, path, SETTING)
            .err()
            .unwrap();
        assert!(err.to_string().contains("required outside development"));
    }
}
