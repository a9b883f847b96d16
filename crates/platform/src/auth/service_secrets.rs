//! Where service clients' secrets live: one file per client id in `auth.service_secrets_dir`
//! (a mounted Kubernetes Secret in a cluster). The Authentication service registers the
//! clients its config declares with the secret found there, and the calling service reads the
//! same file, so the secret is never typed into YAML or a URL. In development a missing file
//! is generated once (readable by the owner only), so one-process mode needs no setup.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine;
use ring::rand::SecureRandom;

use crate::config::{Profile, Secret};

/// The file holding `client_id`'s secret.
pub fn service_secret_path(dir: &str, client_id: &str) -> PathBuf {
    Path::new(dir).join(format!("{client_id}.secret"))
}

/// `client_id`'s secret from `dir`. In development a missing one is generated; elsewhere a
/// missing one is `None` (the client is not configured here).
pub fn service_secret(
    dir: &str,
    client_id: &str,
    profile: Profile,
) -> anyhow::Result<Option<Secret>> {
    let path = service_secret_path(dir, client_id);
    if !path.exists() {
        if profile != Profile::Development {
            return Ok(None);
        }
        generate(&path)?;
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the service secret {}", path.display()))?;
    let text = text.trim();
    if text.len() < 32 {
        anyhow::bail!(
            "the service secret {} is shorter than 32 characters",
            path.display()
        );
    }
    Ok(Some(Secret::new(text)))
}

/// Writes a random secret to `path` without ever exposing a half-written file: written
/// beside it, then hard-linked into place, which fails if another process got there first
/// (its secret then wins and both read the same one).
fn generate(path: &Path) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .context("a service secret path has a folder")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("no system randomness"))?;
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let temp = dir.join(format!(
        ".{}.{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("secret"),
        uuid::Uuid::new_v4()
    ));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .with_context(|| format!("cannot create {}", temp.display()))?;
    file.write_all(secret.as_bytes())?;
    file.sync_all()?;
    drop(file);
    let linked = std::fs::hard_link(&temp, path);
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => {
            tracing::warn!(file = %path.display(), "generated a development service-client secret");
            Ok(())
        }
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err).with_context(|| format!("cannot create {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn development_generates_once_and_then_reads_the_same_secret() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().to_str().unwrap();
        let first = service_secret(dir, "bot-manager", Profile::Development)
            .unwrap()
            .unwrap();
        let again = service_secret(dir, "bot-manager", Profile::Development)
            .unwrap()
            .unwrap();
        assert_eq!(first.expose(), again.expose());
        assert!(first.expose().len() >= 43);
        let mode = std::fs::metadata(service_secret_path(dir, "bot-manager"))
            .unwrap()
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
    }

    #[test]
    fn outside_development_a_missing_secret_is_not_invented() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().to_str().unwrap();
        assert!(
            service_secret(dir, "bot-manager", Profile::Production)
                .unwrap()
                .is_none()
        );
        assert!(!service_secret_path(dir, "bot-manager").exists());
    }

    #[test]
    fn a_short_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.secret"), "short").unwrap();
        let err = service_secret(dir.path().to_str().unwrap(), "x", Profile::Production)
            .err()
            .unwrap();
        assert!(err.to_string().contains("shorter than 32"));
    }
}
