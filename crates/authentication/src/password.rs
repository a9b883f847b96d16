//! Passwords: the policy (length, no username inside, not a common password) and argon2id
//! hashing with OWASP's parameters, run on the blocking pool so logins never stall the
//! async workers.

use std::collections::HashSet;
use std::sync::Arc;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

use platform::config::Live;

use crate::settings::{PasswordSettings, Settings};

/// The shipped list: passwords of 8 or more characters from zxcvbn's frequency list of leaked
/// passwords (MIT licence), lowercased.
const COMMON_PASSWORDS: &str = include_str!("../data/common-passwords.txt");

/// OWASP: argon2id, m = 19 MiB, t = 2, p = 1.
fn owasp_params() -> Params {
    Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters")
}

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, owasp_params())
}

/// Checks passwords against the configured policy, as it is at the moment of the check
/// (the lengths follow the central configuration live).
#[derive(Clone)]
pub struct PasswordPolicy {
    settings: Live<Settings>,
    common: Arc<HashSet<&'static str>>,
}

impl PasswordPolicy {
    pub fn new(settings: Live<Settings>) -> Self {
        Self {
            settings,
            common: Arc::new(COMMON_PASSWORDS.lines().collect()),
        }
    }

    /// Why `password` is not acceptable for `username`, if it is not.
    pub fn check(&self, username: &str, password: &str) -> Result<(), String> {
        let settings: PasswordSettings = self.settings.get().password.clone();
        let length = password.chars().count();
        if length < settings.min_length {
            return Err(format!(
                "the password must have at least {} characters",
                settings.min_length
            ));
        }
        if length > settings.max_length.max(128) {
            return Err(format!(
                "the password must have at most {} characters",
                settings.max_length.max(128)
            ));
        }
        let lower = password.to_lowercase();
        if !username.is_empty() && lower.contains(&username.to_lowercase()) {
            return Err("the password must not contain the username".into());
        }
        if self.common.contains(lower.as_str()) {
            return Err("this password is on the list of common passwords; choose another".into());
        }
        Ok(())
    }
}

/// The PHC string of `password`, computed on the blocking pool.
pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        hasher()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|err| anyhow::anyhow!("argon2 hashing failed: {err}"))
    })
    .await?
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Right, but hashed with other parameters: store a fresh hash.
    YesRehash,
}

/// Verifies `password` against a PHC string, on the blocking pool.
pub async fn verify(password: String, phc: String) -> anyhow::Result<Verified> {
    tokio::task::spawn_blocking(move || {
        let parsed = match PasswordHash::new(&phc) {
            Ok(parsed) => parsed,
            Err(_) => return Verified::No,
        };
        if hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_err()
        {
            return Verified::No;
        }
        let current = parsed.algorithm.as_str() == "argon2id"
            && Params::try_from(&parsed).is_ok_and(|p| {
                let want = owasp_params();
                p.m_cost() == want.m_cost()
                    && p.t_cost() == want.t_cost()
                    && p.p_cost() == want.p_cost()
            });
        if current {
            Verified::Yes
        } else {
            Verified::YesRehash
        }
    })
    .await
    .map_err(Into::into)
}

/// A hash to verify against when the user does not exist, so that an unknown username costs
/// the same time as a wrong password. It is the argon2id hash (OWASP parameters) of a random
/// password nobody kept; a constant, so start-up does not spend a hash (and its 19 MiB) on it.
pub const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$G19gJxbeIYs+Pw9aQvPJdw$RSc2ZqUQ0+UCC59S5HOrkZmdsBhcy7o+3BiBjDylYmc";

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PasswordPolicy {
        PasswordPolicy::new(Live::fixed(Settings::default()))
    }

    #[test]
    fn short_long_username_and_common_passwords_are_refused() {
        assert!(policy().check("ada", "short").is_err());
        assert!(policy().check("ada", &"x".repeat(129)).is_err());
        assert!(
            policy()
                .check("ada", &"Correct horse 🐎 battery".repeat(5))
                .is_ok()
        );
        assert!(policy().check("ada", "my-ADA-password-42").is_err());
        assert!(policy().check("bob", "1qaz2wsx3edc").is_err());
        assert!(
            policy().check("bob", "1QAZ2WSX3EDC").is_err(),
            "case does not help"
        );
        assert!(policy().check("bob", "tangerine-orbit-7-lanterns").is_ok());
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        // 12 characters, 36 bytes.
        assert!(policy().check("bob", "ééééééééééé€").is_ok());
    }

    #[tokio::test]
    async fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let phc = hash("tangerine-orbit-7-lanterns".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_eq!(
            verify("tangerine-orbit-7-lanterns".into(), phc.clone())
                .await
                .unwrap(),
            Verified::Yes
        );
        assert_eq!(verify("wrong".into(), phc).await.unwrap(), Verified::No);
    }

    #[tokio::test]
    async fn the_decoy_hash_has_current_parameters_and_matches_nothing_guessable() {
        // Same parameters, so verifying against it costs what a real verification costs.
        assert_eq!(
            verify("admin".into(), DECOY_HASH.into()).await.unwrap(),
            Verified::No
        );
        assert!(DECOY_HASH.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    }

    #[tokio::test]
    async fn weaker_parameters_ask_for_a_rehash() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"tangerine-orbit-7-lanterns")
        .unwrap()
        .to_string();
        assert_eq!(
            verify("tangerine-orbit-7-lanterns".into(), weak)
                .await
                .unwrap(),
            Verified::YesRehash
        );
    }
}
