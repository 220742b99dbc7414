//! Failed break-glass sign-ins within a window, kept in bounded memory.
//!
//! Failures count per (username, client address) and per client address; when either
//! has used up its share, that client is refused (429) before the (deliberately slow)
//! password hash runs. Per username they only slow sign-in down (a delay doubling per
//! failure, capped at a few seconds): failures from other addresses never refuse the right
//! password from an address that has none, so nobody can lock the real admin out.
//!
//! Memory is bounded by evicting keys: first those with no failure left in the window,
//! then the least recently used of those below their limit, and only then the least
//! recently used lockouts. A flood of throwaway keys never resets a lockout.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::clock::Clock;

/// Keys remembered at most.
const MAX_KEYS: usize = 10_000;
/// One eviction frees this many slots, so a stream of new keys sorts the table rarely.
const EVICT_BATCH: usize = MAX_KEYS / 10;
/// Failures allowed per client address, as a multiple of the per-username share (several
/// admins may sit behind one NAT).
const PER_CLIENT_FACTOR: usize = 4;
/// The per-username slow-down once a username has `allowed` failures: this long, doubled
/// per further failure, at most `SLOW_DOWN_MAX`.
const SLOW_DOWN_START: Duration = Duration::from_millis(250);
const SLOW_DOWN_MAX: Duration = Duration::from_secs(3);

/// Which limit refused a sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// This username from this address.
    UserAtClient,
    /// Any username from this address.
    Client,
}

/// A refused sign-in: which limit, and the seconds until a failure expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub scope: Scope,
    pub retry_after: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    UserAtClient,
    Client,
    User,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    kind: Kind,
    /// The folded username and/or the address, as the kind needs.
    name: String,
}

struct Entry {
    failures: VecDeque<Instant>,
    last_used: Instant,
}

pub struct FailureLimiter {
    allowed: usize,
    window: Duration,
    entries: Mutex<HashMap<Key, Entry>>,
    clock: Clock,
}

impl FailureLimiter {
    /// `allowed` failures per (username, address) within `window` (`[admin]
    /// login_failures`, `login_window`).
    pub fn new(allowed: u32, window: Duration, clock: Clock) -> FailureLimiter {
        FailureLimiter {
            allowed: allowed.max(1) as usize,
            window,
            entries: Mutex::new(HashMap::new()),
            clock,
        }
    }

    /// Before a password is checked: `Err` if this client may not try now, else how long
    /// to wait first (zero unless the username has many recent failures).
    pub fn check(&self, username: &str, client: IpAddr) -> Result<Duration, Refused> {
        let now = self.clock.instant();
        let mut map = self.lock();
        self.refuse(&mut map, Key::user_at_client(username, client), now)?;
        self.refuse(&mut map, Key::client(client), now)?;
        let failures = map.get_mut(&Key::user(username)).map_or(0, |entry| {
            entry.last_used = now;
            self.live(entry, now)
        });
        Ok(self.slow_down(failures))
    }

    /// A wrong password (or an unknown username) from `client`.
    pub fn record_failure(&self, username: &str, client: IpAddr) {
        let now = self.clock.instant();
        let mut map = self.lock();
        self.note(&mut map, Key::user_at_client(username, client), now);
        self.note(&mut map, Key::client(client), now);
        self.note(&mut map, Key::user(username), now);
    }

    /// Guessing without a username (first-run setup codes): only the address counts.
    pub fn check_client(&self, client: IpAddr) -> Result<(), Refused> {
        self.refuse(&mut self.lock(), Key::client(client), self.clock.instant())
    }

    pub fn record_client_failure(&self, client: IpAddr) {
        self.note(&mut self.lock(), Key::client(client), self.clock.instant());
    }

    /// `Err` if `key` has used up its failures.
    fn refuse(&self, map: &mut HashMap<Key, Entry>, key: Key, now: Instant) -> Result<(), Refused> {
        let scope = match key.kind {
            Kind::Client => Scope::Client,
            _ => Scope::UserAtClient,
        };
        let threshold = self.threshold(key.kind);
        let Some(entry) = map.get_mut(&key) else {
            return Ok(());
        };
        entry.last_used = now;
        let live = self.live(entry, now);
        match entry.failures.front() {
            Some(oldest) if live >= threshold => {
                let left = self.window.saturating_sub(now.duration_since(*oldest));
                Err(Refused {
                    scope,
                    retry_after: left.as_secs().max(1) as u32,
                })
            }
            _ => Ok(()),
        }
    }

    /// One failure for `key`, making room for it if it is new.
    fn note(&self, map: &mut HashMap<Key, Entry>, key: Key, now: Instant) {
        if !map.contains_key(&key) && map.len() >= MAX_KEYS {
            self.evict(map, now);
        }
        let kept = self.kept(key.kind);
        let entry = map.entry(key).or_insert_with(|| Entry {
            failures: VecDeque::new(),
            last_used: now,
        });
        entry.last_used = now;
        entry.failures.push_back(now);
        while entry.failures.len() > kept {
            entry.failures.pop_front();
        }
    }

    /// The right password: this username starts afresh, from here and everywhere (the
    /// address's own count stays, so one known password does not reset guessing).
    pub fn record_success(&self, username: &str, client: IpAddr) {
        let mut map = self.lock();
        map.remove(&Key::user_at_client(username, client));
        map.remove(&Key::user(username));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Failures at which a key refuses (per username: starts slowing down).
    fn threshold(&self, kind: Kind) -> usize {
        match kind {
            Kind::UserAtClient | Kind::User => self.allowed,
            Kind::Client => self.allowed * PER_CLIENT_FACTOR,
        }
    }

    /// Failures worth remembering per key: more change nothing.
    fn kept(&self, kind: Kind) -> usize {
        match kind {
            Kind::User => self.allowed + doublings_to_cap(),
            other => self.threshold(other),
        }
    }

    /// Drops the failures older than the window; how many are left.
    fn live(&self, entry: &mut Entry, now: Instant) -> usize {
        while entry
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            entry.failures.pop_front();
        }
        entry.failures.len()
    }

    fn slow_down(&self, failures: usize) -> Duration {
        match failures.checked_sub(self.allowed) {
            None => Duration::ZERO,
            Some(extra) => SLOW_DOWN_START
                .saturating_mul(1 << extra.min(16) as u32)
                .min(SLOW_DOWN_MAX),
        }
    }

    /// Frees `EVICT_BATCH` slots: expired keys first, then the least recently used below
    /// their limit, then the least recently used lockouts. Never everything at once.
    fn evict(&self, map: &mut HashMap<Key, Entry>, now: Instant) {
        map.retain(|_, entry| self.live(entry, now) > 0);
        let target = MAX_KEYS - EVICT_BATCH;
        if map.len() <= target {
            return;
        }
        let mut ranked: Vec<(bool, Instant, Key)> = map
            .iter()
            .map(|(key, entry)| {
                let holds = entry.failures.len() >= self.threshold(key.kind);
                (holds, entry.last_used, key.clone())
            })
            .collect();
        ranked.sort_unstable_by_key(|&(holds, used, _)| (holds, used));
        let excess = map.len() - target;
        for (_, _, key) in ranked.into_iter().take(excess) {
            map.remove(&key);
        }
    }
}

/// Failures past `allowed` after which the slow-down is at its cap.
const fn doublings_to_cap() -> usize {
    let mut n = 0;
    while SLOW_DOWN_START.as_millis() << n < SLOW_DOWN_MAX.as_millis() {
        n += 1;
    }
    n
}

impl Key {
    fn user_at_client(username: &str, client: IpAddr) -> Key {
        Key {
            kind: Kind::UserAtClient,
            name: format!("{}\n{}", fold(username), network(client)),
        }
    }

    fn client(client: IpAddr) -> Key {
        Key {
            kind: Kind::Client,
            name: network(client),
        }
    }

    fn user(username: &str) -> Key {
        Key {
            kind: Kind::User,
            name: fold(username),
        }
    }
}

fn fold(username: &str) -> String {
    username.trim().to_lowercase()
}

/// The address a limit counts: an IPv4 address (IPv4-mapped IPv6 included) as itself, an
/// IPv6 address as its /64, since one subscriber or host typically holds a whole /64 and
/// could otherwise try from a fresh address every time.
fn network(client: IpAddr) -> String {
    match client {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn item5_failures_refuse_per_user_and_address_and_only_slow_down_per_user() {
        let l = FailureLimiter::new(2, Duration::from_secs(600), Clock::system());
        assert_eq!(l.check("admin", A), Ok(Duration::ZERO));
        l.record_failure("admin", A);
        l.record_failure("Admin", A);
        let refused = l.check("ADMIN", A).expect_err("two failures from A");
        assert_eq!(refused.scope, Scope::UserAtClient);
        assert!(refused.retry_after > 0);
        // From B the same username is slowed down, never refused.
        assert_eq!(l.check("admin", B), Ok(SLOW_DOWN_START));
        for _ in 0..20 {
            l.record_failure("admin", IpAddr::from([198, 51, 100, 7]));
        }
        assert_eq!(l.check("admin", B), Ok(SLOW_DOWN_MAX), "capped");
        // The right password from B clears the username everywhere but A's own count.
        l.record_success("admin", B);
        assert_eq!(l.check("admin", B), Ok(Duration::ZERO));
        assert!(l.check("admin", A).is_err());
    }

    #[test]
    fn item5_an_address_is_limited_across_usernames() {
        let l = FailureLimiter::new(2, Duration::from_secs(600), Clock::system());
        for i in 0..8 {
            assert!(l.check(&format!("user{i}"), A).is_ok(), "failure {i}");
            l.record_failure(&format!("user{i}"), A);
        }
        assert_eq!(
            l.check("someone", A).map_err(|r| r.scope),
            Err(Scope::Client)
        );
        assert_eq!(l.check("someone", B), Ok(Duration::ZERO));
    }

    #[test]
    fn item5_an_ipv6_64_counts_as_one_address_and_mapped_ipv4_as_ipv4() {
        let l = FailureLimiter::new(1, Duration::from_secs(600), Clock::system());
        let host = |n: u16| IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, n));
        for n in 1..=4 {
            if l.check("ops", host(n)).is_ok() {
                l.record_failure("ops", host(n));
            }
        }
        assert!(
            l.check("ops", host(99)).is_err(),
            "a fresh address in the same /64"
        );
        let other = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1));
        assert!(l.check("ops", other).is_ok(), "another /64");
        let v4: IpAddr = "192.0.2.1".parse().expect("v4");
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("mapped");
        l.record_failure("ops", v4);
        assert!(l.check("ops", mapped).is_err());
    }

    #[test]
    fn item5_failures_expire_with_the_window() {
        let time = ManualClock::starting_at(0);
        let l = FailureLimiter::new(1, Duration::from_secs(600), time.clock());
        l.record_failure("admin", A);
        time.advance(Duration::from_secs(599));
        assert!(l.check("admin", A).is_err());
        time.advance(Duration::from_secs(1));
        assert_eq!(l.check("admin", A), Ok(Duration::ZERO));
    }

    #[test]
    fn item5_a_flood_of_new_keys_never_resets_a_lockout() {
        let l = FailureLimiter::new(3, Duration::from_secs(600), Clock::system());
        for _ in 0..3 {
            l.record_failure("breakglass", A);
        }
        assert!(l.check("breakglass", A).is_err());
        // 10,001 throwaway keys (each failure makes three: pair, address, username).
        for i in 0..10_001u32 {
            l.record_failure(&format!("x{i}"), IpAddr::from(i.to_be_bytes()));
        }
        assert!(l.lock().len() <= MAX_KEYS, "memory stays bounded");
        assert!(
            l.check("breakglass", A).is_err(),
            "the lockout survived the flood"
        );
        // The newest throwaway keys are still known: eviction is gradual, not a clear.
        assert!(l.lock().contains_key(&Key::user("x10000")));
    }
}
