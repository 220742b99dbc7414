//! Failed break-glass sign-ins per username and per client address within a window.
//! Checked before the (deliberately slow) password hash runs, so guessing is bounded and
//! cannot be used to burn CPU.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys remembered at most; beyond it the quietest are forgotten first.
const MAX_KEYS: usize = 10_000;

pub struct FailureLimiter {
    allowed: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl FailureLimiter {
    pub fn new(allowed: u32, window: Duration) -> FailureLimiter {
        FailureLimiter {
            allowed: allowed.max(1) as usize,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds)` if `key` has used up its failures; the seconds say when one expires.
    pub fn check(&self, key: &str, allowed: usize) -> Result<(), u32> {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let Some(times) = map.get_mut(key) else {
            return Ok(());
        };
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            times.pop_front();
        }
        match times.front() {
            Some(oldest) if times.len() >= allowed => {
                let left = self.window.saturating_sub(now.duration_since(*oldest));
                Err(left.as_secs().max(1) as u32)
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, key: &str) {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_KEYS && !map.contains_key(key) {
            let window = self.window;
            map.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < window)
            });
            if map.len() >= MAX_KEYS {
                map.clear();
            }
        }
        let times = map.entry(key.to_string()).or_default();
        times.push_back(now);
        if times.len() > self.allowed * 4 {
            times.pop_front();
        }
    }

    pub fn clear(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// Failures allowed for one username.
    pub fn per_user(&self) -> usize {
        self.allowed
    }

    /// Failures allowed for one client address (several admins may share a NAT).
    pub fn per_client(&self) -> usize {
        self.allowed * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_allowed_failures_until_the_window_passes() {
        let l = FailureLimiter::new(2, Duration::from_millis(200));
        assert!(l.check("u:a", 2).is_ok());
        l.record_failure("u:a");
        assert!(l.check("u:a", 2).is_ok());
        l.record_failure("u:a");
        assert_eq!(l.check("u:a", 2), Err(1));
        assert!(l.check("u:b", 2).is_ok(), "keys are independent");
        std::thread::sleep(Duration::from_millis(250));
        assert!(l.check("u:a", 2).is_ok());
        l.record_failure("u:a");
        l.clear("u:a");
        assert!(l.check("u:a", 1).is_ok());
    }
}
