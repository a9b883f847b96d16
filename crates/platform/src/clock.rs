//! The platform's one clock: every decision a service makes by time (retention, token
//! expiry, schedules, rate windows, lockouts, the time stamped on a record or an event) reads
//! it, never the system time directly.
//!
//! Production runs on [`Clock::system`]. Tests build the app with a [`Clock::settable`] one:
//! it starts at an instant the test picks, moves on with real time (so timers, queues and
//! background loops behave as they do in production), and can be set or moved forward at
//! once, so a test about "seven days later" or "after the lock expires" neither sleeps nor
//! depends on today's date.
//!
//! Timers (`tokio::time::sleep`, queue ack deadlines) still run on real time: they measure
//! how long to wait, not what time it is.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

/// A cheap-to-clone handle on the time source of one app.
#[derive(Clone, Default)]
pub struct Clock {
    source: Source,
}

#[derive(Clone, Default)]
enum Source {
    #[default]
    System,
    Settable(Arc<Mutex<Settable>>),
}

/// A test clock: `origin` at the real moment `anchor`, then moving with real time unless
/// `frozen`.
struct Settable {
    origin: OffsetDateTime,
    anchor: Instant,
    frozen: bool,
}

impl Settable {
    fn now(&self) -> OffsetDateTime {
        if self.frozen {
            self.origin
        } else {
            self.origin + self.anchor.elapsed()
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            Source::System => f.write_str("Clock::system"),
            Source::Settable(_) => write!(f, "Clock::settable({})", self.now_rfc3339()),
        }
    }
}

impl Clock {
    /// The operating system's clock: what production runs on.
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that reads `start` now and moves on with real time from here; tests move it
    /// with [`Clock::advance`] and [`Clock::set`].
    pub fn settable(start: OffsetDateTime) -> Self {
        Self::settable_with(start, false)
    }

    /// A clock that stands still at `start` until a test moves it.
    pub fn frozen(start: OffsetDateTime) -> Self {
        Self::settable_with(start, true)
    }

    fn settable_with(start: OffsetDateTime, frozen: bool) -> Self {
        Self {
            source: Source::Settable(Arc::new(Mutex::new(Settable {
                origin: start,
                anchor: Instant::now(),
                frozen,
            }))),
        }
    }

    /// Now, in UTC.
    pub fn now(&self) -> OffsetDateTime {
        match &self.source {
            Source::System => OffsetDateTime::now_utc(),
            Source::Settable(state) => state.lock().expect("clock lock").now(),
        }
    }

    /// Milliseconds since the Unix epoch: the unit of stored instants and deadlines.
    pub fn now_millis(&self) -> i64 {
        (self.now().unix_timestamp_nanos() / 1_000_000) as i64
    }

    /// Seconds since the Unix epoch: the unit of the services' stored timestamps and of JWT
    /// claims.
    pub fn unix_seconds(&self) -> i64 {
        self.now().unix_timestamp()
    }

    /// Now, as RFC 3339 in UTC (the API convention).
    pub fn now_rfc3339(&self) -> String {
        crate::time_fmt::rfc3339(self.now())
    }

    /// A UUIDv7 stamped with this clock's time, for ids whose time order matters (a token's
    /// `jti`, whose mint time revocations compare).
    pub fn uuid_v7(&self) -> uuid::Uuid {
        let nanos = self.now().unix_timestamp_nanos().max(0);
        let seconds = (nanos / 1_000_000_000) as u64;
        let subsec = (nanos % 1_000_000_000) as u32;
        uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, seconds, subsec))
    }

    /// Moves a test clock forward by `by`.
    ///
    /// # Panics
    /// On the system clock, which nobody sets: only tests call this.
    pub fn advance(&self, by: Duration) {
        let mut state = self.settable_state("advance");
        state.origin += by;
    }

    /// Sets a test clock to `to` (it moves on from there unless frozen).
    ///
    /// # Panics
    /// On the system clock.
    pub fn set(&self, to: OffsetDateTime) {
        let mut state = self.settable_state("set");
        state.origin = to;
        state.anchor = Instant::now();
    }

    fn settable_state(&self, what: &str) -> std::sync::MutexGuard<'_, Settable> {
        match &self.source {
            Source::Settable(state) => state.lock().expect("clock lock"),
            Source::System => panic!("Clock::{what}: the system clock cannot be changed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_frozen_clock_moves_only_when_told() {
        let clock = Clock::frozen(datetime!(2031-03-14 09:00 UTC));
        assert_eq!(clock.now(), datetime!(2031-03-14 09:00 UTC));
        clock.advance(Duration::from_secs(90));
        assert_eq!(clock.now_rfc3339(), "2031-03-14T09:01:30Z");
        assert_eq!(clock.unix_seconds(), 1_931_245_290);
        assert_eq!(clock.now_millis(), 1_931_245_290_000);
        clock.set(datetime!(2040-01-01 00:00 UTC));
        assert_eq!(clock.now(), datetime!(2040-01-01 00:00 UTC));
    }

    #[test]
    fn a_settable_clock_moves_on_with_real_time_from_where_it_was_set() {
        let clock = Clock::settable(datetime!(2031-03-14 09:00 UTC));
        let first = clock.now();
        assert!(first >= datetime!(2031-03-14 09:00 UTC));
        assert!(first < datetime!(2031-03-14 09:01 UTC));
        clock.advance(Duration::from_secs(3600));
        assert!(clock.now() >= first + Duration::from_secs(3600));
        // Clones share the time: the app and the test read one clock.
        let copy = clock.clone();
        copy.set(datetime!(2020-01-01 00:00 UTC));
        assert!(clock.now() < datetime!(2020-01-01 00:01 UTC));
    }

    #[test]
    fn uuid_v7_carries_the_clock_time_in_milliseconds() {
        let clock = Clock::frozen(datetime!(2031-03-14 09:00:00.123 UTC));
        let (seconds, nanos) = clock.uuid_v7().get_timestamp().unwrap().to_unix();
        assert_eq!(seconds, 1_931_245_200);
        assert_eq!(nanos / 1_000_000, 123);
        assert_ne!(clock.uuid_v7(), clock.uuid_v7());
    }

    #[test]
    fn the_system_clock_reads_the_system_time() {
        let clock = Clock::system();
        let before = OffsetDateTime::now_utc();
        let now = clock.now();
        assert!(now >= before && now - before < Duration::from_secs(5));
    }

    #[test]
    #[should_panic(expected = "the system clock cannot be changed")]
    fn the_system_clock_cannot_be_set() {
        Clock::system().advance(Duration::from_secs(1));
    }
}
