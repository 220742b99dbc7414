//! Wall-clock helpers. Times are stored as Unix seconds (INTEGER) in SQLite and shown as
//! RFC 3339 UTC.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where the server's limiters and housekeeping read the time: the system clock when
/// serving, a [`ManualClock`] in tests, which then move time instead of sleeping.
/// Cheap to clone; clones share the time.
#[derive(Clone, Default)]
pub struct Clock {
    manual: Option<Arc<ManualTime>>,
}

impl Clock {
    /// The system's clocks: `Instant::now()` and the wall clock.
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// A monotonic instant, for measuring intervals (rate limits, failure windows).
    pub fn instant(&self) -> Instant {
        match &self.manual {
            None => Instant::now(),
            Some(m) => m.base + m.elapsed(),
        }
    }

    /// Seconds since the Unix epoch, as [`now_unix`].
    pub fn now_unix(&self) -> i64 {
        match &self.manual {
            None => now_unix(),
            Some(m) => m.unix + m.elapsed().as_secs() as i64,
        }
    }
}

/// A clock that moves only when told to ([`ManualClock::advance`]), for tests.
#[derive(Clone)]
pub struct ManualClock(Arc<ManualTime>);

struct ManualTime {
    /// Any real instant: `Instant` cannot be made from a number, so manual instants are
    /// this one plus the time advanced.
    base: Instant,
    /// The Unix time the clock started at.
    unix: i64,
    elapsed_nanos: AtomicU64,
}

impl ManualTime {
    fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.elapsed_nanos.load(Ordering::Relaxed))
    }
}

impl ManualClock {
    /// A clock standing at `unix` seconds since the epoch.
    pub fn starting_at(unix: i64) -> ManualClock {
        ManualClock(Arc::new(ManualTime {
            base: Instant::now(),
            unix,
            elapsed_nanos: AtomicU64::new(0),
        }))
    }

    /// Moves the time forward by `by` for every [`Clock`] made from this one.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.0.elapsed_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The clock to hand to what is under test.
    pub fn clock(&self) -> Clock {
        Clock {
            manual: Some(Arc::clone(&self.0)),
        }
    }
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Microseconds since the Unix epoch (orders events within a second).
pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// RFC 3339 UTC, e.g. `2026-11-22T13:45:00Z`.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// A compact UTC stamp for file names, e.g. `20261122T134500Z`.
pub fn file_stamp(unix: i64) -> String {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| unix.to_string())
}

/// Parses an RFC 3339 timestamp (as SCIM `dateTime` values are) to Unix seconds.
/// `YYYY-MM-DD` → the start of that day, UTC.
pub fn parse_date(s: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let day = time::Date::parse(s.trim(), &format).ok()?;
    Some(day.midnight().assume_utc().unix_timestamp())
}

pub fn parse_rfc3339(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::file_stamp(1_795_355_100), "20261122T134500Z");
        assert_eq!(
            super::parse_rfc3339("2026-11-22T13:45:00Z"),
            Some(1_795_355_100)
        );
        assert_eq!(super::parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let manual = super::ManualClock::starting_at(1_795_355_100);
        let clock = manual.clock();
        let (start, unix) = (clock.instant(), clock.now_unix());
        assert_eq!(unix, 1_795_355_100);
        assert_eq!(clock.instant(), start);
        manual.advance(std::time::Duration::from_millis(2500));
        assert_eq!(
            clock.instant() - start,
            std::time::Duration::from_millis(2500)
        );
        assert_eq!(clock.now_unix(), unix + 2);
        let system = super::Clock::system();
        assert!((system.now_unix() - super::now_unix()).abs() <= 1);
    }
}
