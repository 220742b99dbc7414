//! Token buckets, one per key: a runaway or hostile client gets 429 with an integer
//! `Retry-After` (which Okta honours, and `seatgate client` too) instead of starving
//! everyone else. Used per SCIM token, and per client address and globally for the
//! requests anyone may send before signing in ([`crate::preauth`]).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

use crate::clock::Clock;

/// Buckets kept before full ones are forgotten (a full bucket is the same as none).
const MAX_KEYS: usize = 16_384;

pub struct RateLimiter<K = i64> {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
    clock: Clock,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// `per_second = 0` disables limiting.
    pub fn new(per_second: f64, burst: u32, clock: Clock) -> RateLimiter<K> {
        let per_second = per_second.max(0.0);
        RateLimiter {
            per_second,
            burst: f64::from(burst.max(1)).max(per_second),
            buckets: Mutex::new(HashMap::new()),
            clock,
        }
    }

    /// Takes one request from `key`'s bucket; `Err(seconds)` says when to retry.
    pub fn check(&self, key: K) -> Result<(), u32> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let now = self.clock.instant();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(&key) {
            self.forget_full(&mut buckets, now);
        }
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

    /// Bounds memory against many keys: drops buckets that have refilled (nothing is lost),
    /// then, if still too many, the least recently used half (those keys get a fresh
    /// burst, which the global limit still bounds).
    fn forget_full(&self, buckets: &mut HashMap<K, (f64, Instant)>, now: Instant) {
        buckets.retain(|_, (tokens, last)| {
            *tokens + now.duration_since(*last).as_secs_f64() * self.per_second < self.burst
        });
        if buckets.len() >= MAX_KEYS {
            let mut by_age: Vec<(K, Instant)> =
                buckets.iter().map(|(k, (_, t))| (k.clone(), *t)).collect();
            by_age.sort_by_key(|(_, t)| *t);
            for (k, _) in by_age.into_iter().take(MAX_KEYS / 2) {
                buckets.remove(&k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{MAX_KEYS, RateLimiter};
    use crate::clock::{Clock, ManualClock};

    #[test]
    fn limits_per_key_and_says_when_to_retry() {
        let time = ManualClock::starting_at(0);
        let l = RateLimiter::new(1.0, 3, time.clock());
        assert!((0..3).all(|_| l.check(7).is_ok()));
        assert_eq!(l.check(7), Err(1));
        assert!(l.check(8).is_ok(), "other tokens have their own bucket");
        time.advance(Duration::from_secs(1));
        assert!(l.check(7).is_ok(), "a token per second comes back");
        assert_eq!(l.check(7), Err(1));
        let off = RateLimiter::new(0.0, 0, Clock::system());
        assert!((0..10_000).all(|_| off.check(1).is_ok()));
    }

    #[test]
    fn fractional_rates_and_many_keys_stay_bounded() {
        let time = ManualClock::starting_at(0);
        let l = RateLimiter::new(0.5, 1, time.clock());
        assert!(l.check(1).is_ok());
        assert_eq!(l.check(1), Err(2), "one request every two seconds");
        time.advance(Duration::from_secs(1));
        assert_eq!(l.check(1), Err(1), "half a token back after a second");
        for k in 0..(3 * MAX_KEYS as i64) {
            let _ = l.check(k);
        }
        let kept = l.buckets.lock().expect("lock").len();
        assert!(kept <= MAX_KEYS, "{kept} buckets kept");
    }
}
