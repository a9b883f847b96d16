//! Operator commands behind `vivesphere botdata …`: KEK rotation, rewrap, retiring old KEKs,
//! status, backup and restore. They work on the service's database and key sources directly
//! (no HTTP), and each leaves an audit row that the running service relays as a
//! user_activity event.

use std::io::{BufRead, Write};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use platform::db::Database;
use serde_json::json;
use zeroize::Zeroizing;

use crate::crypto::{self, RecordRef};
use crate::keyring::{self, Keyring};
use crate::settings::Settings;
use crate::store;
use crate::store::audit::AuditEntry;
use crate::store::backup::{self, Record};
use crate::store::secrets;
use platform::Clock;

/// The operator as the audit trail names them.
fn operator() -> String {
    platform::activity::operator_actor()
}

async fn audit(db: &Database, entry: AuditEntry) -> anyhow::Result<()> {
    let mut tx = db.pool().begin().await?;
    store::audit::insert(&mut tx, &[entry]).await?;
    tx.commit().await?;
    Ok(())
}

/// What `rotate-kek` made.
pub struct Rotated {
    pub version: u32,
    /// Set with `print_only`: the new key, base64, for the operator to add to the Secret.
    pub key: Option<Zeroizing<String>>,
}

/// Adds KEK version max+1 (over the configured keys and every version the store uses):
/// written into `kek_dir`, or returned for the operator to add to the Secret themselves.
pub async fn rotate_kek(
    db: &Database,
    settings: &Settings,
    print_only: bool,
    clock: &Clock,
) -> anyhow::Result<Rotated> {
    let material = keyring::read_material(settings)?;
    let used = secrets::count_by_kek(db).await?;
    let highest = material
        .keys()
        .copied()
        .chain(used.iter().map(|(v, _)| *v))
        .max()
        .unwrap_or(0);
    let version = highest + 1;
    let key = crypto::random_key();
    let printed = if print_only {
        Some(Zeroizing::new(STANDARD.encode(key.as_ref())))
    } else {
        keyring::write_new_version(
            std::path::Path::new(&settings.kek_dir),
            version,
            key.as_ref(),
        )?;
        None
    };
    audit(
        db,
        AuditEntry::new(clock, &operator(), "rotate", "ok")
            .details(json!({ "kek_version": version, "written": !print_only })),
    )
    .await?;
    Ok(Rotated {
        version,
        key: printed,
    })
}

fn usable_keyring(db_min: u32, settings: &Settings) -> anyhow::Result<Keyring> {
    let keyring = Keyring::new(&keyring::read_material(settings)?, db_min)?;
    if keyring.is_empty() {
        bail!("no KEK at or above the minimum decryption version {db_min} is configured");
    }
    Ok(keyring)
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RewrapReport {
    pub rewrapped: u64,
    /// Changed by someone else meanwhile (a concurrent rewrap or destroy).
    pub skipped: u64,
    pub target_version: u32,
}

/// Re-wraps every DEK that is not under the newest KEK, in batches; the values are never
/// decrypted. Resumable: it only ever picks DEKs still under an older KEK, so running it
/// again after an interruption continues where it stopped. `progress(done, remaining)` is
/// called after each batch.
pub async fn rewrap(
    db: &Database,
    settings: &Settings,
    batch: i64,
    mut progress: impl FnMut(u64, i64),
    clock: &Clock,
) -> anyhow::Result<RewrapReport> {
    let keyring = usable_keyring(store::policy::min_decryption_version(db).await?, settings)?;
    let newest = keyring.newest().expect("non-empty keyring");
    let mut report = RewrapReport {
        target_version: newest.version(),
        ..RewrapReport::default()
    };
    loop {
        let deks = secrets::wrapped_below(db, newest.version(), batch.max(1)).await?;
        if deks.is_empty() {
            break;
        }
        for dek in &deks {
            let from = keyring.get(dek.kek_version).with_context(|| {
                format!(
                    "{}/{} v{} is wrapped under KEK version {}, which is not configured",
                    dek.bot_id, dek.field, dek.version, dek.kek_version
                )
            })?;
            let record = RecordRef {
                bot_id: &dek.bot_id,
                field: &dek.field,
                version: dek.version,
            };
            let wrapped = crypto::rewrap(from, newest, record, &dek.wrapped_dek).map_err(|_| {
                anyhow::anyhow!(
                    "{}/{} v{}: the wrapped key does not open (integrity failure)",
                    dek.bot_id,
                    dek.field,
                    dek.version
                )
            })?;
            if secrets::replace_wrapped(db, dek, newest.version(), &wrapped).await? {
                report.rewrapped += 1;
            } else {
                report.skipped += 1;
            }
        }
        let remaining = remaining_below(db, newest.version()).await?;
        progress(report.rewrapped, remaining);
    }
    audit(
        db,
        AuditEntry::new(clock, &operator(), "rewrap", "ok").details(json!({
            "kek_version": report.target_version,
            "rewrapped": report.rewrapped,
        })),
    )
    .await?;
    Ok(report)
}

async fn remaining_below(db: &Database, version: u32) -> anyhow::Result<i64> {
    Ok(secrets::count_by_kek(db)
        .await?
        .iter()
        .filter(|(v, _)| *v < version)
        .map(|(_, n)| n)
        .sum())
}

/// Raises the minimum decryption version: KEKs below it are no longer used, even if still
/// mounted. Refused while any DEK is still wrapped under one of them, or if no configured KEK
/// would remain.
pub async fn retire_below(
    db: &Database,
    settings: &Settings,
    min_version: u32,
    clock: &Clock,
) -> anyhow::Result<()> {
    if min_version == 0 {
        bail!("the minimum version is at least 1");
    }
    let still = remaining_below(db, min_version).await?;
    if still > 0 {
        bail!(
            "{still} data key(s) are still wrapped under KEK versions below {min_version}; run `vivesphere botdata rewrap` first"
        );
    }
    usable_keyring(min_version, settings)?;
    store::policy::set_min_decryption_version(db, min_version, clock.unix_seconds()).await?;
    audit(
        db,
        AuditEntry::new(clock, &operator(), "retire", "ok")
            .details(json!({ "min_decryption_version": min_version })),
    )
    .await
}

/// A summary for operators: configured KEK versions, DEKs per KEK version, policy.
pub async fn status(db: &Database, settings: &Settings) -> anyhow::Result<serde_json::Value> {
    let material = keyring::read_material(settings)?;
    let min = store::policy::min_decryption_version(db).await?;
    let counts: serde_json::Map<String, serde_json::Value> = secrets::count_by_kek(db)
        .await?
        .into_iter()
        .map(|(v, n)| (v.to_string(), n.into()))
        .collect();
    Ok(json!({
        "configured_kek_versions": material.keys().collect::<Vec<_>>(),
        "active_kek_version": material.keys().next_back(),
        "min_decryption_version": min,
        "data_keys_by_kek_version": counts,
    }))
}

/// Writes a backup as NDJSON: a header, the policy, then bots, fields and sealed versions.
/// Returns how many records were written.
pub async fn backup(db: &Database, out: &mut impl Write, clock: &Clock) -> anyhow::Result<usize> {
    let header = Record::Header {
        format: backup::FORMAT.to_string(),
        version: 1,
        created_at: clock.now_rfc3339(),
    };
    let records = backup::dump(db).await?;
    for record in std::iter::once(&header).chain(&records) {
        serde_json::to_writer(&mut *out, record)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    audit(
        db,
        AuditEntry::new(clock, &operator(), "backup", "ok")
            .details(json!({ "records": records.len() })),
    )
    .await?;
    Ok(records.len())
}

/// Restores a backup into an empty store, in one transaction. Returns how many records.
pub async fn restore(db: &Database, input: impl BufRead, clock: &Clock) -> anyhow::Result<usize> {
    if !backup::is_empty(db).await? {
        bail!("the store is not empty; restore only into an empty store");
    }
    let mut records = Vec::new();
    for (index, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let record: Record = serde_json::from_str(&line)
            .map_err(|err| anyhow::anyhow!("backup line {}: {err}", index + 1))?;
        records.push(record);
    }
    match records.first() {
        Some(Record::Header {
            format, version, ..
        }) if format == backup::FORMAT && *version == 1 => {}
        _ => bail!("not a {} (version 1) file", backup::FORMAT),
    }
    let mut tx = db.pool().begin().await?;
    for record in &records[1..] {
        backup::load(&mut tx, record, clock.unix_seconds()).await?;
    }
    store::audit::insert(
        &mut tx,
        &[AuditEntry::new(clock, &operator(), "restore", "ok")
            .details(json!({ "records": records.len() - 1 }))],
    )
    .await?;
    tx.commit().await?;
    Ok(records.len() - 1)
}
