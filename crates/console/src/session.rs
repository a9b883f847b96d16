//! Server-side sessions. The browser holds a random 256-bit id in an HttpOnly cookie; the
//! tokens the API issued stay here, out of reach of any script. Sessions are kept by the
//! SHA-256 of their id (an id is a bearer secret, like a token), end after the idle and the
//! absolute timeout on the platform's clock, and are bounded in number: a flood of
//! signed-out visits cannot grow the console's memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use platform::Clock;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::SecretString;

/// How long sessions last and how many there may be.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub idle: Duration,
    pub absolute: Duration,
    pub max_sessions: usize,
}

/// The API's tokens for a signed-in person.
#[derive(Clone)]
pub struct Tokens {
    pub access: SecretString,
    /// When the access token expires (unix milliseconds); refreshed a little before.
    pub access_expires_at: i64,
    pub refresh: SecretString,
}

/// Where a session is in signing in.
#[derive(Clone)]
pub enum Stage {
    /// A visit that has not signed in: it holds a CSRF token for the sign-in form.
    SignedOut,
    /// The password was right; the API asks for the second factor with this token.
    AwaitingSecondFactor {
        username: String,
        mfa_token: SecretString,
    },
    /// The password was right but must be changed before the account signs in.
    PasswordChangeRequired {
        username: String,
    },
    /// The account must enrol TOTP before it signs in; the MFA token enrols it, and the
    /// secret is shown until the first code confirms it.
    Enrolling {
        username: String,
        mfa_token: SecretString,
        enrolment: Enrolment,
    },
    SignedIn {
        username: String,
        tokens: Tokens,
    },
}

/// A TOTP secret on its way to an authenticator app.
#[derive(Clone)]
pub struct Enrolment {
    pub secret: SecretString,
    pub otpauth_uri: SecretString,
}

/// One session.
#[derive(Clone)]
pub struct Session {
    pub stage: Stage,
    /// The synchronizer token every state-changing form carries.
    pub csrf: String,
    created_at: i64,
    last_seen: i64,
}

/// A session's id as the cookie carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionId(pub String);

/// Every session of this console process.
pub struct Sessions {
    by_hash: Mutex<HashMap<[u8; 32], Session>>,
    clock: Clock,
    limits: Limits,
    random: SystemRandom,
}

/// The store is full of live, signed-in sessions.
#[derive(Debug)]
pub struct Full;

impl Sessions {
    pub fn new(clock: Clock, limits: Limits) -> Self {
        Self {
            by_hash: Mutex::new(HashMap::new()),
            clock,
            limits,
            random: SystemRandom::new(),
        }
    }

    fn random_token(&self) -> String {
        let mut bytes = [0u8; 32];
        self.random
            .fill(&mut bytes)
            .expect("the system's random source works");
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn hash(id: &SessionId) -> [u8; 32] {
        let digest = ring::digest::digest(&ring::digest::SHA256, id.0.as_bytes());
        digest.as_ref().try_into().expect("SHA-256 is 32 bytes")
    }

    fn expired(&self, session: &Session, now: i64) -> bool {
        let idle = i64::try_from(self.limits.idle.as_millis()).unwrap_or(i64::MAX);
        let absolute = i64::try_from(self.limits.absolute.as_millis()).unwrap_or(i64::MAX);
        now > session.last_seen.saturating_add(idle)
            || now > session.created_at.saturating_add(absolute)
    }

    /// The session of `id`, if it is live; using it counts as activity.
    pub fn get(&self, id: &SessionId) -> Option<Session> {
        self.lookup(id, true)
    }

    /// The session of `id`, if it is live, without counting as activity: what a live page's
    /// stream reads every second, so a tab left open still meets the idle timeout.
    pub fn peek(&self, id: &SessionId) -> Option<Session> {
        self.lookup(id, false)
    }

    fn lookup(&self, id: &SessionId, touch: bool) -> Option<Session> {
        let now = self.clock.now_millis();
        let mut sessions = self.by_hash.lock().expect("sessions lock");
        let key = Self::hash(id);
        let session = sessions.get_mut(&key)?;
        if self.expired(session, now) {
            sessions.remove(&key);
            return None;
        }
        if touch {
            session.last_seen = now;
        }
        Some(session.clone())
    }

    /// Starts a session at `stage`, under a fresh id (a new id at every step of signing in,
    /// so an id seen before sign-in is worth nothing after it).
    pub fn start(&self, stage: Stage) -> Result<(SessionId, Session), Full> {
        let now = self.clock.now_millis();
        let id = SessionId(self.random_token());
        let session = Session {
            stage,
            csrf: self.random_token(),
            created_at: now,
            last_seen: now,
        };
        let mut sessions = self.by_hash.lock().expect("sessions lock");
        if sessions.len() >= self.limits.max_sessions {
            self.make_room(&mut sessions, now);
        }
        if sessions.len() >= self.limits.max_sessions {
            return Err(Full);
        }
        sessions.insert(Self::hash(&id), session.clone());
        Ok((id, session))
    }

    /// Drops the expired sessions, then the oldest signed-out ones, to below the limit.
    fn make_room(&self, sessions: &mut HashMap<[u8; 32], Session>, now: i64) {
        sessions.retain(|_, s| !self.expired(s, now));
        let excess = (sessions.len() + 1).saturating_sub(self.limits.max_sessions);
        if excess == 0 {
            return;
        }
        let mut waiting: Vec<([u8; 32], i64)> = sessions
            .iter()
            .filter(|(_, s)| !matches!(s.stage, Stage::SignedIn { .. }))
            .map(|(k, s)| (*k, s.last_seen))
            .collect();
        waiting.sort_by_key(|(_, last_seen)| *last_seen);
        for (key, _) in waiting.into_iter().take(excess) {
            sessions.remove(&key);
        }
    }

    /// Replaces the tokens of a signed-in session (after a refresh).
    pub fn update_tokens(&self, id: &SessionId, tokens: Tokens) {
        let mut sessions = self.by_hash.lock().expect("sessions lock");
        if let Some(session) = sessions.get_mut(&Self::hash(id))
            && let Stage::SignedIn { tokens: held, .. } = &mut session.stage
        {
            *held = tokens;
        }
    }

    /// Ends a session.
    pub fn end(&self, id: &SessionId) -> Option<Session> {
        self.by_hash
            .lock()
            .expect("sessions lock")
            .remove(&Self::hash(id))
    }

    pub fn now_millis(&self) -> i64 {
        self.clock.now_millis()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn sessions(max: usize) -> (Clock, Sessions) {
        let clock = Clock::frozen(datetime!(2031-03-14 09:00 UTC));
        let limits = Limits {
            idle: Duration::from_secs(60),
            absolute: Duration::from_secs(300),
            max_sessions: max,
        };
        (clock.clone(), Sessions::new(clock, limits))
    }

    fn signed_in() -> Stage {
        Stage::SignedIn {
            username: "alice".into(),
            tokens: Tokens {
                access: SecretString::from("a"),
                access_expires_at: 0,
                refresh: SecretString::from("r"),
            },
        }
    }

    #[test]
    fn a_session_ends_when_idle_and_at_its_absolute_limit() {
        let (clock, sessions) = sessions(10);
        let (idle, _) = sessions.start(signed_in()).unwrap();
        clock.advance(Duration::from_secs(61));
        assert!(sessions.get(&idle).is_none(), "idle past 60 s");

        let (busy, _) = sessions.start(signed_in()).unwrap();
        for _ in 0..5 {
            clock.advance(Duration::from_secs(50));
            assert!(sessions.get(&busy).is_some(), "in use within its idle time");
        }
        clock.advance(Duration::from_secs(51));
        assert!(sessions.get(&busy).is_none(), "past 300 s however busy");
    }

    #[test]
    fn a_peek_finds_a_live_session_without_keeping_it_alive() {
        let (clock, sessions) = sessions(10);
        let (watched, _) = sessions.start(signed_in()).unwrap();
        for _ in 0..5 {
            clock.advance(Duration::from_secs(10));
            assert!(
                sessions.peek(&watched).is_some(),
                "live within its idle time"
            );
        }
        clock.advance(Duration::from_secs(11));
        assert!(
            sessions.peek(&watched).is_none(),
            "idle 61 s: peeks are no activity"
        );
    }

    #[test]
    fn ids_are_random_and_only_the_id_finds_its_session() {
        let (_, sessions) = sessions(10);
        let (a, session_a) = sessions.start(Stage::SignedOut).unwrap();
        let (b, session_b) = sessions.start(Stage::SignedOut).unwrap();
        assert_ne!(a, b);
        assert_ne!(session_a.csrf, session_b.csrf);
        assert_eq!(a.0.len(), 43, "256 bits, base64url");
        assert!(sessions.get(&SessionId("forged".into())).is_none());
        assert!(sessions.end(&a).is_some());
        assert!(sessions.get(&a).is_none());
        assert!(sessions.get(&b).is_some());
    }

    #[test]
    fn a_flood_of_visits_pushes_out_visits_never_signed_in_sessions() {
        let (clock, sessions) = sessions(3);
        let (alice, _) = sessions.start(signed_in()).unwrap();
        for _ in 0..100 {
            clock.advance(Duration::from_millis(10));
            sessions.start(Stage::SignedOut).unwrap();
        }
        assert!(
            sessions.get(&alice).is_some(),
            "the signed-in session stays"
        );
        sessions.start(signed_in()).unwrap();
        sessions.start(signed_in()).unwrap();
        assert!(
            sessions.start(Stage::SignedOut).is_err(),
            "full of signed-in sessions: refused, none pushed out"
        );
        assert!(sessions.get(&alice).is_some());
    }
}
