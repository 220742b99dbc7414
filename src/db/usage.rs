//! Seat usage per license and day, for usage reports. Each change of a license's held
//! seats closes the open interval: its seats × seconds go into the days it spans, and
//! each of those days' peak is at least its seats.

use rusqlite::{OptionalExtension, Transaction, params};

const DAY: i64 = 86_400;

/// The UTC day of a Unix time, `YYYY-MM-DD`.
pub fn day_of(t: i64) -> String {
    crate::clock::rfc3339(t.div_euclid(DAY) * DAY)[..10].to_string()
}

/// One license's usage on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRow {
    pub license_id: String,
    pub day: String,
    pub peak: i64,
    pub seat_seconds: i64,
}

/// Records that `license` holds `seats` seats from `now` on.
pub fn record(tx: &Transaction<'_>, license: &str, seats: i64, now: i64) -> rusqlite::Result<()> {
    let open: Option<(i64, i64)> = tx
        .query_row(
            "SELECT seats, since FROM usage_now WHERE license_id = ?1",
            [license],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((held, since)) = open {
        close(tx, license, held, since, now)?;
    }
    add(tx, license, now, seats, 0)?;
    tx.execute(
        "INSERT INTO usage_now (license_id, seats, since) VALUES (?1, ?2, ?3)
         ON CONFLICT (license_id) DO UPDATE SET seats = excluded.seats, since = excluded.since",
        params![license, seats, now],
    )?;
    Ok(())
}

/// Adds `held` seats over [from, to) to the days that interval spans.
fn close(
    tx: &Transaction<'_>,
    license: &str,
    held: i64,
    from: i64,
    to: i64,
) -> rusqlite::Result<()> {
    let mut t = from;
    while t < to {
        let day_end = (t.div_euclid(DAY) + 1) * DAY;
        let until = day_end.min(to);
        add(tx, license, t, held, held * (until - t))?;
        t = until;
    }
    Ok(())
}

fn add(
    tx: &Transaction<'_>,
    license: &str,
    at: i64,
    seats: i64,
    seat_seconds: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO usage_days (license_id, day, peak, seat_seconds) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (license_id, day) DO UPDATE SET
             peak = max(peak, excluded.peak), seat_seconds = seat_seconds + excluded.seat_seconds",
    )?
    .execute(params![license, day_of(at), seats, seat_seconds])?;
    Ok(())
}

/// Brings every license's open interval up to `now` (before a report reads the days).
pub fn close_all(tx: &Transaction<'_>, now: i64) -> rusqlite::Result<()> {
    let open: Vec<(String, i64)> = {
        let mut stmt = tx.prepare("SELECT license_id, seats FROM usage_now")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?
    };
    for (license, seats) in open {
        record(tx, &license, seats, now)?;
    }
    Ok(())
}

/// The days of `[first_day, last_day]` (inclusive, `YYYY-MM-DD`), by license and day.
pub fn days(
    tx: &Transaction<'_>,
    first_day: &str,
    last_day: &str,
) -> rusqlite::Result<Vec<DayRow>> {
    let mut stmt = tx.prepare(
        "SELECT license_id, day, peak, seat_seconds FROM usage_days
         WHERE day BETWEEN ?1 AND ?2 ORDER BY license_id, day",
    )?;
    stmt.query_map([first_day, last_day], |r| {
        Ok(DayRow {
            license_id: r.get(0)?,
            day: r.get(1)?,
            peak: r.get(2)?,
            seat_seconds: r.get(3)?,
        })
    })?
    .collect()
}

/// Devices activated per (license, day) in `[from, to)`.
pub fn activations(
    tx: &Transaction<'_>,
    from: i64,
    to: i64,
) -> rusqlite::Result<Vec<(String, String, i64)>> {
    let mut stmt = tx.prepare(
        "SELECT d.license_id, a.at FROM audit_log a JOIN devices d ON d.id = a.subject
         WHERE a.action = 'device_activated' AND a.at >= ?1 AND a.at < ?2",
    )?;
    let rows: Vec<(String, i64)> = stmt
        .query_map([from, to], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut counted: std::collections::BTreeMap<(String, String), i64> = Default::default();
    for (license, at) in rows {
        *counted.entry((license, day_of(at))).or_default() += 1;
    }
    Ok(counted.into_iter().map(|((l, d), n)| (l, d, n)).collect())
}

/// Who holds a seat of each license now (user names), for reports that include them.
pub fn seat_holders(tx: &Transaction<'_>) -> rusqlite::Result<Vec<String>> {
    let mut stmt = tx.prepare(
        "SELECT DISTINCT u.user_name FROM seats s JOIN users u ON u.id = s.user_id
         WHERE s.state = 'assigned' ORDER BY u.user_name",
    )?;
    stmt.query_map([], |r| r.get(0))?.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_split_at_midnight_and_peaks_kept() {
        let mut c = rusqlite::Connection::open_in_memory().expect("memory");
        c.execute_batch(include_str!("../../schema.sql"))
            .expect("schema");
        let tx = c.transaction().expect("tx");
        let midnight = 1_780_000_000 / DAY * DAY;
        record(&tx, "l", 2, midnight - 3600).expect("2 seats an hour before midnight");
        record(&tx, "l", 5, midnight + 1800).expect("5 seats half an hour after");
        record(&tx, "l", 1, midnight + 3600).expect("1 seat an hour after");
        close_all(&tx, midnight + 2 * 3600).expect("close");
        let days = days(&tx, &day_of(midnight - 1), &day_of(midnight)).expect("days");
        assert_eq!(days.len(), 2);
        assert_eq!((days[0].peak, days[0].seat_seconds), (2, 2 * 3600));
        // 2 × 1800 + 5 × 1800 + 1 × 3600 after midnight; the peak is 5 though it is 1 now.
        assert_eq!(
            (days[1].peak, days[1].seat_seconds),
            (5, 2 * 1800 + 5 * 1800 + 3600)
        );
    }
}
