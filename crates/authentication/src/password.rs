//! Passwords: the policy and argon2id hashing with OWASP's parameters (run on the hashing
//! threads, [`crate::hashing`], so logins never stall the async workers).
//!
//! The policy follows NIST SP 800-63B §3.1.1.2: a length range and no composition rules, but
//! a refusal, with the reason, of what is known or easy to guess — a known-breached or
//! common password of any length (the shipped list and zxcvbn's dictionaries), repetitive or
//! sequential strings, keyboard patterns, dates, and words from the context: the user's own
//! name and address, the product's name, this host's name and the configured
//! `password.context_words`. The strength estimate is zxcvbn's; a password must reach
//! `password.min_strength` (3 of 4 by default: more than 10^8 guesses).

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

/// Words of the product a password must not be built from.
const PRODUCT_WORDS: [&str; 2] = ["vivesphere", "vive sphere"];

/// Context words shorter than this are not looked for inside a password (they would refuse
/// ordinary words that happen to contain them); zxcvbn still weighs them.
const MIN_CONTAINED_WORD: usize = 4;

/// This machine's host name (a pod's, in a cluster), as a context word.
fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_lowercase())
        .filter(|name| !name.is_empty())
}

/// Checks passwords against the configured policy, as it is at the moment of the check
/// (lengths, strength and context words follow the central configuration live).
#[derive(Clone)]
pub struct PasswordPolicy {
    settings: Live<Settings>,
    common: Arc<HashSet<&'static str>>,
    host: Option<String>,
}

impl PasswordPolicy {
    pub fn new(settings: Live<Settings>) -> Self {
        Self {
            settings,
            common: Arc::new(COMMON_PASSWORDS.lines().collect()),
            host: host_name(),
        }
    }

    /// Why `password` is not acceptable for a user called `username`, if it is not.
    pub fn check(&self, username: &str, password: &str) -> Result<(), String> {
        self.check_with(username, &[], password)
    }

    /// [`PasswordPolicy::check`] with more of the user's own words in `personal` (display
    /// name, email address).
    pub fn check_with(
        &self,
        username: &str,
        personal: &[&str],
        password: &str,
    ) -> Result<(), String> {
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
            return Err(
                "this password is on the list of common (breached) passwords; choose another"
                    .into(),
            );
        }
        // Words of the context: the user's own, the product's, this host's, the configured.
        let mut context: Vec<String> = personal
            .iter()
            .flat_map(|text| text.split(['@', ' ', '.', '-', '_']))
            .map(str::to_lowercase)
            .chain(PRODUCT_WORDS.iter().map(|w| w.to_string()))
            .chain(self.host.iter().cloned())
            .chain(settings.context_words.iter().map(|w| w.to_lowercase()))
            .filter(|word| !word.trim().is_empty())
            .collect();
        if let Some(word) = context.iter().find(|word| {
            let word = word.replace(' ', "");
            word.chars().count() >= MIN_CONTAINED_WORD && lower.replace(' ', "").contains(&word)
        }) {
            return Err(format!(
                "the password must not contain {word:?}: words of this service and of its users are the first an attacker tries"
            ));
        }
        context.push(username.to_lowercase());
        let inputs: Vec<&str> = context.iter().map(String::as_str).collect();
        let estimate = zxcvbn::zxcvbn(password, &inputs);
        let strength = u8::from(estimate.score());
        if strength < settings.min_strength {
            let why = estimate
                .feedback()
                .and_then(|feedback| feedback.warning())
                .map(|warning| format!(" {warning}"))
                .unwrap_or_default();
            let hint = estimate
                .feedback()
                .and_then(|feedback| feedback.suggestions().first())
                .map(|suggestion| format!(" {suggestion}"))
                .unwrap_or_else(|| " Add another word or two; uncommon words are better.".into());
            return Err(format!(
                "the password is too easy to guess (strength {strength} of 4, at least {} needed).{why}{hint}",
                settings.min_strength
            ));
        }
        Ok(())
    }
}

/// The PHC string of `password` (~20 ms of CPU: call it off the async workers).
pub fn hash(password: &str) -> anyhow::Result<String> {
    hasher()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|err| anyhow::anyhow!("argon2 hashing failed: {err}"))
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Right, but hashed with other parameters: store a fresh hash.
    YesRehash,
}

/// Verifies `password` against a PHC string (as costly as [`hash`]).
pub fn verify(password: &str, phc: &str) -> Verified {
    let parsed = match PasswordHash::new(phc) {
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

    fn refusal(username: &str, password: &str) -> String {
        policy().check(username, password).unwrap_err()
    }

    #[test]
    fn repetitive_and_sequential_strings_are_refused_with_the_reason() {
        let why = refusal("ada", "111111111111");
        assert!(why.contains("Repeats like"), "{why}");
        let why = refusal("ada", "123456789012");
        assert!(why.contains("Sequences like"), "{why}");
        let why = refusal("ada", "qwertyuiopasdf");
        assert!(why.contains("too easy to guess"), "{why}");
    }

    #[test]
    fn context_words_are_refused_naming_the_word() {
        let why = refusal("ada", "vivesphere2026");
        assert!(why.contains("\"vivesphere\""), "{why}");
        let why = refusal("ada", "Vive Sphere rocks 99!");
        assert!(why.contains("must not contain"), "{why}");
        let why = policy()
            .check_with(
                "ada",
                &["Ada Lovelace", "ada.lovelace@engine.example"],
                "lovelace-analytical-42",
            )
            .unwrap_err();
        assert!(why.contains("lovelace"), "{why}");
        let mut settings = Settings::default();
        settings.password.context_words = vec!["Influencia".into()];
        let custom = PasswordPolicy::new(Live::fixed(settings));
        assert!(custom.check("ada", "influencia-team-rules-7").is_err());
        assert!(custom.check("ada", "tangerine-orbit-7-lanterns").is_ok());
    }

    #[test]
    fn known_breached_passwords_of_every_allowed_length_are_refused() {
        // On the shipped list (exactly) or in zxcvbn's dictionaries of leaked passwords.
        for password in [
            "1qaz2wsx3edc",
            "passwordpassword",
            "iloveyou12345",
            "trustno1trustno1",
        ] {
            assert!(policy().check("bob", password).is_err(), "{password}");
        }
    }

    #[test]
    fn the_strength_needed_follows_the_setting() {
        let mut settings = Settings::default();
        settings.password.min_strength = 0;
        let lenient = PasswordPolicy::new(Live::fixed(settings));
        assert!(lenient.check("ada", "111111111111").is_ok());
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
        // 12 characters, 27 bytes.
        assert!(policy().check("bob", "éàüöçñßøåœ€¥").is_ok());
        assert!(
            policy().check("bob", "éàüöçñßøåœ€").is_err(),
            "11 characters"
        );
    }

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let phc = hash("tangerine-orbit-7-lanterns").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_eq!(verify("tangerine-orbit-7-lanterns", &phc), Verified::Yes);
        assert_eq!(verify("wrong", &phc), Verified::No);
    }

    #[test]
    fn the_decoy_hash_has_current_parameters_and_matches_nothing_guessable() {
        // Same parameters, so verifying against it costs what a real verification costs.
        assert_eq!(verify("admin", DECOY_HASH), Verified::No);
        assert!(DECOY_HASH.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    }

    #[test]
    fn weaker_parameters_ask_for_a_rehash() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"tangerine-orbit-7-lanterns")
        .unwrap()
        .to_string();
        assert_eq!(
            verify("tangerine-orbit-7-lanterns", &weak),
            Verified::YesRehash
        );
    }
}
