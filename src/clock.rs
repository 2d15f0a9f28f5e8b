//! Where "now" comes from for the service: the system clock, or a clock a test sets. The
//! rules never read the clock themselves; they take `now` from here as a parameter.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};

/// The service's clock: the system's, unless set to a fixed instant (tests).
#[derive(Clone, Debug, Default)]
pub struct Clock {
    fixed: Arc<RwLock<Option<DateTime<Utc>>>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self.fixed.read() {
            Ok(fixed) => fixed.unwrap_or_else(Utc::now),
            Err(_) => Utc::now(),
        }
    }

    /// From now on, `now()` answers `at` (None: the system clock again). Every clone of
    /// this clock follows.
    pub fn set(&self, at: Option<DateTime<Utc>>) {
        if let Ok(mut fixed) = self.fixed.write() {
            *fixed = at;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_set_clock_answers_its_instant_in_every_clone_until_released() {
        let clock = Clock::system();
        let other = clock.clone();
        let at = "2026-11-24T03:00:00Z".parse().unwrap();
        clock.set(Some(at));
        assert_eq!(other.now(), at);
        clock.set(None);
        assert!(other.now() > at);
    }
}
