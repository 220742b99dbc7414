//! Wall-clock helpers. Times are stored as Unix seconds (INTEGER) in SQLite and shown as
//! RFC 3339 UTC.

use std::time::{SystemTime, UNIX_EPOCH};

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
}
