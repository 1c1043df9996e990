//! The intake's clock: when a donation was made, exported or booked by default. The system
//! clock in production; tests set a manual one to make donations older than the test run (no
//! request carries the time a donation was made, so clients cannot backdate one).
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

/// Where the intake takes "now" from.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// A clock that stands still until it is set (tests).
    Manual(ManualClock),
}

impl Clock {
    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Self::System => Utc::now(),
            Self::Manual(m) => m.now(),
        }
    }
}

/// A clock that shows what it was last set to. Clones share the time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    /// A clock standing at `at`.
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(at)))
    }

    /// The time it stands at.
    pub fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets it to `at`.
    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn a_manual_clock_shows_what_it_was_set_to_in_every_clone() {
        let t = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let hand = ManualClock::new(t);
        let clock = Clock::Manual(hand.clone());
        assert_eq!(clock.now(), t);
        hand.set(t + Duration::days(2));
        assert_eq!(clock.now(), t + Duration::days(2));
    }

    #[test]
    fn the_system_clock_shows_the_current_time() {
        let before = Utc::now();
        assert!(Clock::System.now() >= before);
    }
}
