//! Requests per second and burst, per key (a token, or a client address without one), and
//! the task that keeps the limiter's memory bounded.

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::AuthSettings;

pub struct Limiter {
    inner: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Limiter")
    }
}

impl Limiter {
    pub fn new(settings: &AuthSettings) -> Self {
        let rate = NonZeroU32::new(settings.rate_limit_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(settings.rate_limit_burst).unwrap_or(NonZeroU32::MIN);
        Self {
            inner: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            clock: DefaultClock::default(),
        }
    }

    /// Ok, or the seconds to wait.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        self.inner.check_key(&key.to_owned()).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    /// Forgets keys that have not been seen for a while, so memory stays bounded.
    pub fn forget_idle(&self) {
        self.inner.retain_recent();
        self.inner.shrink_to_fit();
    }
}

/// Keeps the limiter's memory bounded while the service runs.
pub async fn forget_idle_keys(limiter: Arc<Limiter>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        every.tick().await;
        limiter.forget_idle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_allows_the_burst_then_says_how_long_to_wait() {
        let limiter = Limiter::new(&AuthSettings {
            rate_limit_per_second: 1,
            rate_limit_burst: 3,
            admin_token: None,
        });
        for _ in 0..3 {
            assert!(limiter.check("k").is_ok());
        }
        assert_eq!(limiter.check("k"), Err(1));
        assert!(
            limiter.check("other").is_ok(),
            "keys are limited separately"
        );
    }
}
