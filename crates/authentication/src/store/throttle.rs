//! Brute-force protection: failures are counted per account name (whether or not it exists,
//! so unknown and known names behave alike) and per client address. After `backoff_after`
//! failures each attempt must wait a delay that doubles per failure; after `lock_after` the
//! key is locked for `lock_duration`. Counters live in the database, so every replica sees
//! them.

use platform::db::Database;
use sqlx::Row;

use crate::settings::BruteForceSettings;

/// Client addresses get this many times the per-account thresholds (offices share NATs).
const ADDRESS_FACTOR: u32 = 5;

/// A throttled key: per account or per address.
#[derive(Debug, Clone)]
pub struct ThrottleKey {
    key: String,
    factor: u32,
}

impl ThrottleKey {
    pub fn account(username: &str) -> Self {
        Self {
            key: format!("account:{}", username.to_lowercase()),
            factor: 1,
        }
    }

    pub fn address(ip: &str) -> Self {
        Self {
            key: format!("address:{ip}"),
            factor: ADDRESS_FACTOR,
        }
    }
}

/// Seconds until `key` may try again, or 0.
fn wait_for(
    settings: &BruteForceSettings,
    factor: u32,
    failures: i64,
    last: i64,
    locked_until: i64,
    now: i64,
) -> i64 {
    if locked_until > now {
        return locked_until - now;
    }
    if now - last > settings.window as i64 {
        return 0;
    }
    let backoff_after = i64::from(settings.backoff_after * factor);
    if failures < backoff_after {
        return 0;
    }
    let exponent = (failures - backoff_after).min(20) as u32;
    let delay = (settings.backoff_base as i64)
        .saturating_mul(1 << exponent)
        .min(settings.lock_duration as i64);
    (last + delay - now).max(0)
}

/// The longest wait among `keys`: 0 means the attempt may go ahead.
pub async fn retry_after(
    db: &Database,
    settings: &BruteForceSettings,
    keys: &[ThrottleKey],
    now: i64,
) -> anyhow::Result<i64> {
    if !settings.enabled {
        return Ok(0);
    }
    let mut wait = 0;
    for key in keys {
        let row = sqlx::query(
            "SELECT failures, last_failure_at, locked_until FROM login_throttle WHERE throttle_key = $1",
        )
        .bind(&key.key)
        .fetch_optional(db.pool())
        .await?;
        if let Some(row) = row {
            wait = wait.max(wait_for(
                settings,
                key.factor,
                row.try_get("failures")?,
                row.try_get("last_failure_at")?,
                row.try_get("locked_until")?,
                now,
            ));
        }
    }
    Ok(wait)
}

/// Counts a failure against every key; returns true if this failure locked one of them.
pub async fn record_failure(
    db: &Database,
    settings: &BruteForceSettings,
    keys: &[ThrottleKey],
    now: i64,
) -> anyhow::Result<bool> {
    if !settings.enabled {
        return Ok(false);
    }
    let mut locked = false;
    for key in keys {
        let row = sqlx::query(
            "SELECT failures, last_failure_at FROM login_throttle WHERE throttle_key = $1",
        )
        .bind(&key.key)
        .fetch_optional(db.pool())
        .await?;
        let failures = match &row {
            Some(row)
                if now - row.try_get::<i64, _>("last_failure_at")? <= settings.window as i64 =>
            {
                row.try_get::<i64, _>("failures")? + 1
            }
            _ => 1,
        };
        let lock = failures >= i64::from(settings.lock_after * key.factor);
        let locked_until = if lock {
            now + settings.lock_duration as i64
        } else {
            0
        };
        locked |= lock;
        sqlx::query(
            "INSERT INTO login_throttle (throttle_key, failures, last_failure_at, locked_until) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (throttle_key) DO UPDATE SET \
             failures = excluded.failures, last_failure_at = excluded.last_failure_at, \
             locked_until = excluded.locked_until",
        )
        .bind(&key.key)
        .bind(failures)
        .bind(now)
        .bind(locked_until)
        .execute(db.pool())
        .await?;
    }
    Ok(locked)
}

/// Forgets the failures of `key` (after a successful login).
pub async fn clear(db: &Database, key: &ThrottleKey) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM login_throttle WHERE throttle_key = $1")
        .bind(&key.key)
        .execute(db.pool())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_starts_at_the_threshold_doubles_and_is_capped() {
        let s = BruteForceSettings::default();
        let now = 10_000;
        assert_eq!(wait_for(&s, 1, 4, now, 0, now), 0);
        assert_eq!(wait_for(&s, 1, 5, now, 0, now), 1);
        assert_eq!(wait_for(&s, 1, 6, now, 0, now), 2);
        assert_eq!(wait_for(&s, 1, 8, now, 0, now), 8);
        assert_eq!(wait_for(&s, 1, 40, now, 0, now), 900);
        assert_eq!(
            wait_for(&s, 1, 6, now - 1, 0, now),
            1,
            "the delay runs from the last failure"
        );
        assert_eq!(
            wait_for(&s, 1, 9, now - 2000, 0, now),
            0,
            "old failures are forgotten"
        );
        assert_eq!(wait_for(&s, 1, 10, now, now + 900, now), 900, "locked");
        assert_eq!(
            wait_for(&s, 5, 24, now, 0, now),
            0,
            "addresses get more room"
        );
    }
}
