//! Seat usage over time: per pool and UTC day, the most seats used and people waiting at
//! once, and the capacity (`pool_days`).

use rusqlite::{Transaction, params};

/// One pool's day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRow {
    pub license_id: String,
    /// A sublicense id, or '' for the license's primary pool.
    pub pool: String,
    pub day: String,
    pub used: i64,
    pub pending: i64,
    pub capacity: i64,
    pub backfilled: bool,
}

/// Raises a pool's day to at least these used and waiting counts (its high-water marks);
/// the capacity is the latest.
pub fn raise(tx: &Transaction<'_>, r: &DayRow) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO pool_days (license_id, pool, day, used, pending, capacity, backfilled)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (license_id, pool, day) DO UPDATE SET
             used = max(used, excluded.used), pending = max(pending, excluded.pending),
             capacity = excluded.capacity,
             backfilled = min(backfilled, excluded.backfilled)",
    )?
    .execute(params![
        r.license_id,
        r.pool,
        r.day,
        r.used,
        r.pending,
        r.capacity,
        r.backfilled as i64
    ])?;
    Ok(())
}

fn day_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DayRow> {
    Ok(DayRow {
        license_id: r.get(0)?,
        pool: r.get(1)?,
        day: r.get(2)?,
        used: r.get(3)?,
        pending: r.get(4)?,
        capacity: r.get(5)?,
        backfilled: r.get::<_, i64>(6)? == 1,
    })
}

/// Every pool's days from `from_day` on (inclusive), oldest first.
pub fn days_since(tx: &Transaction<'_>, from_day: &str) -> rusqlite::Result<Vec<DayRow>> {
    let mut stmt = tx.prepare_cached(
        "SELECT license_id, pool, day, used, pending, capacity, backfilled FROM pool_days
         WHERE day >= ?1 ORDER BY license_id, pool, day",
    )?;
    let rows = stmt.query_map([from_day], day_row)?;
    rows.collect()
}

/// The last day recorded before `day` for each pool (to carry into a chart's first day).
pub fn last_before(tx: &Transaction<'_>, day: &str) -> rusqlite::Result<Vec<DayRow>> {
    let mut stmt = tx.prepare_cached(
        "SELECT license_id, pool, max(day), used, pending, capacity, backfilled FROM pool_days
         WHERE day < ?1 GROUP BY license_id, pool",
    )?;
    let rows = stmt.query_map([day], day_row)?;
    rows.collect()
}

/// The first day recorded, if any.
pub fn first_day(tx: &Transaction<'_>) -> rusqlite::Result<Option<String>> {
    tx.prepare_cached("SELECT min(day) FROM pool_days")?
        .query_row([], |r| r.get(0))
}

/// Removes days before `day`.
pub fn prune(tx: &Transaction<'_>, day: &str) -> rusqlite::Result<usize> {
    tx.prepare_cached("DELETE FROM pool_days WHERE day < ?1")?
        .execute([day])
}

/// Seat grants and revocations in the audit log before `before`, newest first, as (time,
/// +1 or -1, pool subject: a license id for its primary pool, else a sublicense id).
pub fn seat_changes_before(
    tx: &Transaction<'_>,
    before: i64,
    since: i64,
) -> rusqlite::Result<Vec<(i64, i64, String)>> {
    let mut stmt = tx.prepare_cached(
        "SELECT at, CASE action WHEN 'seat_granted' THEN 1 ELSE -1 END, subject FROM audit_log
         WHERE action IN ('seat_granted', 'seat_revoked') AND at < ?1 AND at >= ?2
               AND subject IS NOT NULL
         ORDER BY at DESC, id DESC",
    )?;
    let rows = stmt.query_map(params![before, since], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    rows.collect()
}
