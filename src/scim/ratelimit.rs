//! A token bucket per SCIM token: a runaway or misconfigured IdP gets 429 with an integer
//! `Retry-After` (which Okta honours) instead of starving everything else.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<i64, (f64, Instant)>>,
}

impl RateLimiter {
    /// `per_second = 0` disables limiting.
    pub fn new(per_second: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(per_second).max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `key`'s bucket; `Err(seconds)` says when to retry.
    pub fn check(&self, key: i64) -> Result<(), u32> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, last) = buckets.entry(key).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*last).as_secs_f64() * self.per_second).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err((((1.0 - *tokens) / self.per_second).ceil() as u32).max(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RateLimiter;

    #[test]
    fn limits_per_key_and_says_when_to_retry() {
        let l = RateLimiter::new(1, 3);
        assert!((0..3).all(|_| l.check(7).is_ok()));
        assert_eq!(l.check(7), Err(1));
        assert!(l.check(8).is_ok(), "other tokens have their own bucket");
        let off = RateLimiter::new(0, 0);
        assert!((0..10_000).all(|_| off.check(1).is_ok()));
    }
}
