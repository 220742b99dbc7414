//! Waiting for a condition instead of sleeping for a guessed while: as fast as the
//! condition allows, and a clear failure when it never comes.

use std::time::{Duration, Instant};

/// How often a condition is looked at again.
const POLL: Duration = Duration::from_millis(20);

/// Polls `condition` until it holds or `timeout` has passed; whether it held.
pub fn poll_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// Polls `condition` until it holds; fails the test, naming `what` it waited for, when
/// `timeout` passes first.
#[track_caller]
pub fn wait_until(timeout: Duration, what: &str, condition: impl FnMut() -> bool) {
    assert!(
        poll_until(timeout, condition),
        "waited {timeout:?} for {what}"
    );
}
