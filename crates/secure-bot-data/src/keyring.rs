//! The key-encryption keys: read from a mounted secret directory and/or the environment,
//! held in memory only while the service is unsealed, never written to the database.
//!
//! The service is sealed when it has no usable KEK (none configured, or every one below the
//! minimum decryption version) or when an admin sealed it; sealed, every secret route answers
//! 503 `SEALED` and readiness fails, as Vault does.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use platform::db::Database;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::crypto::{KEY_LEN, Kek};
use crate::settings::Settings;
use crate::store;

/// Raw KEK versions as read from their sources.
pub type KeyMaterial = BTreeMap<u32, Zeroizing<Vec<u8>>>;

fn decode_key(source: &str, encoded: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let bytes = Zeroizing::new(
        STANDARD
            .decode(encoded.trim())
            .map_err(|_| anyhow::anyhow!("{source}: not base64"))?,
    );
    if bytes.len() != KEY_LEN {
        bail!("{source}: a KEK is base64 of 32 random bytes");
    }
    Ok(bytes)
}

fn insert(
    material: &mut KeyMaterial,
    version: u32,
    key: Zeroizing<Vec<u8>>,
    source: &str,
) -> anyhow::Result<()> {
    if version == 0 {
        bail!("{source}: KEK versions start at 1");
    }
    match material.get(&version) {
        Some(existing) if existing.as_slice() != key.as_slice() => {
            bail!("{source}: KEK version {version} is defined twice with different keys")
        }
        _ => {
            material.insert(version, key);
            Ok(())
        }
    }
}

/// Reads every configured KEK version. Files in `kek_dir` named by a number are versions;
/// other names (Kubernetes' `..data` links, dotfiles) are skipped.
pub fn read_material(settings: &Settings) -> anyhow::Result<KeyMaterial> {
    let mut material = KeyMaterial::new();
    let dir = Path::new(&settings.kek_dir);
    if dir.is_dir() {
        for entry in
            std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?
        {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().to_string();
            let Ok(version) = name.parse::<u32>() else {
                continue;
            };
            let path = entry.path();
            if !path.is_file() {
                continue;
            }
            let source = format!("KEK file {}", path.display());
            let text = Zeroizing::new(
                std::fs::read_to_string(&path).with_context(|| format!("cannot read {source}"))?,
            );
            insert(&mut material, version, decode_key(&source, &text)?, &source)?;
        }
    }
    if let Some(list) = &settings.keks {
        for (index, item) in list.expose().split(',').enumerate() {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let source = format!("secure_bot_data.keks item {}", index + 1);
            let (version, key) = item
                .split_once(':')
                .with_context(|| format!("{source}: write it as <version>:<base64>"))?;
            let version: u32 = version
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("{source}: the version is a positive number"))?;
            insert(&mut material, version, decode_key(&source, key)?, &source)?;
        }
    }
    Ok(material)
}

/// Writes a new KEK version file (mode 0600, never overwriting). Returns the version.
pub fn write_new_version(dir: &Path, version: u32, key: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(version.to_string());
    let encoded = Zeroizing::new(STANDARD.encode(key));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(encoded.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// The usable KEKs: every configured version at or above the minimum decryption version.
#[derive(Debug)]
pub struct Keyring {
    keks: BTreeMap<u32, Kek>,
}

impl Keyring {
    pub fn new(material: &KeyMaterial, min_decryption_version: u32) -> anyhow::Result<Self> {
        let mut keks = BTreeMap::new();
        for (version, bytes) in material.range(min_decryption_version..) {
            keks.insert(*version, Kek::new(*version, bytes)?);
        }
        Ok(Self { keks })
    }

    /// The KEK new writes use: the highest version.
    pub fn newest(&self) -> Option<&Kek> {
        self.keks.values().next_back()
    }

    pub fn get(&self, version: u32) -> Option<&Kek> {
        self.keks.get(&version)
    }

    pub fn versions(&self) -> Vec<u32> {
        self.keks.keys().copied().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.keks.is_empty()
    }
}

/// Why no keyring is available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SealReason {
    /// No KEK at or above the minimum decryption version is configured.
    NoKeys,
    /// An admin sealed the service; only an unseal opens it again.
    SealedByAdmin,
}

/// The service is sealed.
#[derive(Debug, Clone, Copy)]
pub struct SealedError(pub SealReason);

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VaultStatus {
    pub sealed: bool,
    /// `no_keys` or `sealed_by_admin` when sealed.
    #[schema(value_type = Option<String>)]
    pub reason: Option<SealReason>,
    /// KEK versions loaded (numbers only).
    pub kek_versions: Vec<u32>,
    /// The version new writes use.
    pub active_kek_version: Option<u32>,
    pub min_decryption_version: u32,
    /// KEK versions that stored data keys are wrapped under but that are not loaded (a
    /// restore without its keys, a Secret missing a version): what to mount.
    pub missing_kek_versions: Vec<u32>,
}

struct State {
    keyring: Option<Arc<Keyring>>,
    sealed_by_admin: bool,
    min_decryption_version: u32,
    missing_kek_versions: Vec<u32>,
}

/// Holds the keyring and the sealed state, shared by every request.
pub struct KeyVault {
    settings: Settings,
    db: Database,
    /// Mirrors the sealed state for `/metrics`.
    sealed_gauge: prometheus_client::metrics::gauge::Gauge,
    state: RwLock<State>,
    last_reload: Mutex<Option<Instant>>,
}

/// At most one reread per this long when a record names a KEK version we do not have.
const MISS_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

impl KeyVault {
    /// Loads the keys; with none usable the vault starts sealed. A malformed key source is
    /// an error (bad configuration stops start-up).
    pub async fn open(
        settings: Settings,
        db: Database,
        sealed_gauge: prometheus_client::metrics::gauge::Gauge,
    ) -> anyhow::Result<Self> {
        let vault = Self {
            settings,
            db,
            sealed_gauge,
            state: RwLock::new(State {
                keyring: None,
                sealed_by_admin: false,
                min_decryption_version: 1,
                missing_kek_versions: Vec::new(),
            }),
            last_reload: Mutex::new(None),
        };
        vault.reload().await?;
        Ok(vault)
    }

    /// The current keyring, or why there is none.
    pub fn keyring(&self) -> Result<Arc<Keyring>, SealedError> {
        let state = self.state.read().expect("vault lock");
        match (&state.keyring, state.sealed_by_admin) {
            (_, true) => Err(SealedError(SealReason::SealedByAdmin)),
            (Some(keyring), false) => Ok(keyring.clone()),
            (None, false) => Err(SealedError(SealReason::NoKeys)),
        }
    }

    /// The keyring, reread first (at most once a second) if it lacks `version`: a replica
    /// that has not yet seen a newly added KEK catches up instead of failing.
    pub async fn keyring_with(&self, version: u32) -> Result<Arc<Keyring>, SealedError> {
        let keyring = self.keyring()?;
        if keyring.get(version).is_some() {
            return Ok(keyring);
        }
        let due = {
            let mut last = self.last_reload.lock().expect("reload lock");
            let due = last.is_none_or(|at| at.elapsed() >= MISS_RELOAD_INTERVAL);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if due && let Err(err) = self.reload().await {
            tracing::warn!(error = %format!("{err:#}"), "rereading the KEKs failed; keeping the loaded ones");
        }
        self.keyring()
    }

    /// Rereads the key sources and the minimum decryption version. Does nothing while an
    /// admin has the vault sealed.
    pub async fn reload(&self) -> anyhow::Result<()> {
        if self.state.read().expect("vault lock").sealed_by_admin {
            return Ok(());
        }
        let min = store::policy::min_decryption_version(&self.db).await?;
        let material = read_material(&self.settings)?;
        let keyring = Keyring::new(&material, min)?;
        let missing = store::secrets::count_by_kek(&self.db)
            .await?
            .into_iter()
            .map(|(version, _)| version)
            .filter(|version| *version >= min && keyring.get(*version).is_none())
            .collect();
        let mut state = self.state.write().expect("vault lock");
        if state.sealed_by_admin {
            return Ok(());
        }
        state.min_decryption_version = min;
        state.missing_kek_versions = missing;
        state.keyring = (!keyring.is_empty()).then(|| Arc::new(keyring));
        self.sealed_gauge.set(i64::from(state.keyring.is_none()));
        Ok(())
    }

    /// Drops every key from memory until [`KeyVault::unseal`].
    pub fn seal(&self) {
        let mut state = self.state.write().expect("vault lock");
        state.sealed_by_admin = true;
        state.keyring = None;
        self.sealed_gauge.set(1);
    }

    /// Lifts an admin seal and reloads the keys; still sealed if none are usable.
    pub async fn unseal(&self) -> anyhow::Result<()> {
        self.state.write().expect("vault lock").sealed_by_admin = false;
        self.reload().await
    }

    pub fn status(&self) -> VaultStatus {
        let state = self.state.read().expect("vault lock");
        let reason = match (&state.keyring, state.sealed_by_admin) {
            (_, true) => Some(SealReason::SealedByAdmin),
            (None, false) => Some(SealReason::NoKeys),
            (Some(_), false) => None,
        };
        let keyring = state.keyring.as_deref();
        VaultStatus {
            sealed: reason.is_some(),
            reason,
            kek_versions: keyring.map(Keyring::versions).unwrap_or_default(),
            active_kek_version: keyring.and_then(Keyring::newest).map(Kek::version),
            min_decryption_version: state.min_decryption_version,
            missing_kek_versions: state.missing_kek_versions.clone(),
        }
    }

    /// Why the vault is sealed, in words that say what to do; `None` when it is open.
    pub fn sealed_because(&self) -> Option<String> {
        let status = self.status();
        match status.reason? {
            SealReason::SealedByAdmin => Some("sealed by an admin".to_string()),
            SealReason::NoKeys if status.missing_kek_versions.is_empty() => {
                Some("sealed: no usable key-encryption key".to_string())
            }
            SealReason::NoKeys => Some(format!(
                "sealed: the stored data keys need key-encryption key version(s) {}, which \
                 are not loaded; restore them into secure_bot_data.kek_dir (or the mounted \
                 Secret) and unseal",
                status
                    .missing_kek_versions
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::random_key;

    fn settings(dir: &Path, keks: Option<&str>) -> Settings {
        Settings {
            kek_dir: dir.display().to_string(),
            keks: keks.map(platform::config::Secret::new),
            ..Settings::default()
        }
    }

    #[test]
    fn versions_come_from_numbered_files_and_the_list() {
        let dir = tempfile::tempdir().unwrap();
        write_new_version(dir.path(), 1, random_key().as_ref()).unwrap();
        write_new_version(dir.path(), 3, random_key().as_ref()).unwrap();
        std::fs::write(dir.path().join("..data"), "ignored").unwrap();
        std::fs::write(dir.path().join("README"), "ignored").unwrap();
        let listed = format!("2:{}", STANDARD.encode(random_key().as_ref()));
        let material = read_material(&settings(dir.path(), Some(&listed))).unwrap();
        assert_eq!(material.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3]);
        let keyring = Keyring::new(&material, 2).unwrap();
        assert_eq!(keyring.versions(), vec![2, 3]);
        assert_eq!(keyring.newest().unwrap().version(), 3);
        assert!(keyring.get(1).is_none(), "retired version still usable");
    }

    #[test]
    fn bad_key_sources_are_refused_with_their_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("1"), "not base64!").unwrap();
        let err = read_material(&settings(dir.path(), None)).unwrap_err();
        assert!(err.to_string().contains("KEK file"), "{err}");

        let empty = tempfile::tempdir().unwrap();
        let short = format!("1:{}", STANDARD.encode([0u8; 16]));
        let err = read_material(&settings(empty.path(), Some(&short))).unwrap_err();
        assert!(err.to_string().contains("32 random bytes"), "{err}");
        let err = read_material(&settings(empty.path(), Some("nocolon"))).unwrap_err();
        assert!(err.to_string().contains("<version>:<base64>"), "{err}");

        write_new_version(empty.path(), 1, random_key().as_ref()).unwrap();
        let clash = format!("1:{}", STANDARD.encode(random_key().as_ref()));
        let err = read_material(&settings(empty.path(), Some(&clash))).unwrap_err();
        assert!(err.to_string().contains("defined twice"), "{err}");
    }

    #[test]
    fn version_files_are_private_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        write_new_version(dir.path(), 1, random_key().as_ref()).unwrap();
        let mode = std::fs::metadata(dir.path().join("1"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(write_new_version(dir.path(), 1, random_key().as_ref()).is_err());
    }
}
