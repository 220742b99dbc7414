//! Seat usage over time, per pool: each day's high-water marks (seats used, people
//! waiting) and its capacity at the day's end, raised as seats change and sampled by housekeeping; days
//! before this existed reconstructed once from the audit log; the series the Licenses
//! page charts, the CSV and the API export; the gauges `/metrics` shows.

use std::collections::{BTreeMap, HashMap, HashSet};

use rusqlite::Transaction;

use crate::db::Db;
use crate::db::history::{self as store, DayRow};
use crate::db::licensing as seats;
use crate::db::usage::day_of;
use crate::domain::problem::Problem;

const DAY: i64 = 86_400;
/// How long days are kept: 25 months, so a year can be compared with the one before.
pub const KEEP_DAYS: i64 = 760;
/// How far back the audit log is read to reconstruct days before this feature.
const BACKFILL_DAYS: i64 = 400;
const BACKFILLED: &str = "pool_history_backfilled_at";

/// One pool now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolNow {
    pub license_id: String,
    /// A sublicense id, or '' for the primary pool.
    pub pool: String,
    pub product: String,
    /// "Parallels Desktop" for a primary pool; the sublicense's name otherwise.
    pub name: String,
    pub used: i64,
    pub pending: i64,
    pub capacity: i64,
}

/// Every pool's seats now (of `only` these licenses, when given).
pub fn pools_now(
    tx: &Transaction<'_>,
    only: Option<&HashSet<String>>,
    now: i64,
) -> rusqlite::Result<Vec<PoolNow>> {
    let catalog = seats::catalog(tx)?;
    let usage = seats::usage(tx)?;
    let all_pending = match only {
        None => Some(seats::pending_per_pool(tx)?),
        Some(_) => None,
    };
    let mut out = Vec::new();
    for l in seats::licenses(tx)? {
        if only.is_some_and(|o| !o.contains(&l.id)) {
            continue;
        }
        let mut pools: Vec<(Option<String>, String)> = vec![(None, l.product.clone())];
        for s in catalog.sublicenses.iter().filter(|s| s.license_id == l.id) {
            pools.push((Some(s.id.clone()), s.name.clone()));
        }
        for (pool, name) in pools {
            let counts = catalog.pool_seats(&l.id, &pool, &usage, now);
            let pending = match &all_pending {
                Some(p) => p.get(&(l.id.clone(), pool.clone())).copied().unwrap_or(0),
                None => seats::pending_in_pool(tx, &l.id, pool.as_deref())?,
            };
            out.push(PoolNow {
                license_id: l.id.clone(),
                pool: pool.unwrap_or_default(),
                product: l.product.clone(),
                name,
                used: counts.used,
                pending,
                capacity: counts.capacity,
            });
        }
    }
    Ok(out)
}

/// Raises today's marks of every pool (of `only` these licenses) to their values now.
pub fn record(
    tx: &Transaction<'_>,
    only: Option<&HashSet<String>>,
    now: i64,
) -> rusqlite::Result<()> {
    let day = day_of(now);
    for p in pools_now(tx, only, now)? {
        store::raise(
            tx,
            &DayRow {
                license_id: p.license_id,
                pool: p.pool,
                day: day.clone(),
                used: p.used,
                pending: p.pending,
                capacity: p.capacity,
                backfilled: false,
            },
        )?;
    }
    Ok(())
}

/// Housekeeping: today's marks for every pool, and days older than `KEEP_DAYS` removed.
pub fn sample(db: &Db, now: i64) -> Result<(), Problem> {
    db.write(|tx| {
        record(tx, None, now)?;
        store::prune(tx, &day_of(now - KEEP_DAYS * DAY))?;
        Ok(())
    })
}

/// Once per database: the days before the first recorded one, reconstructed from the
/// audit log's seat grants and revocations (seats used only; pending and capacity are
/// not in the log, so capacity is today's and pending 0, and the days are marked
/// backfilled). Key devices' seats are not in the log either.
pub fn backfill(db: &Db, now: i64) -> Result<usize, Problem> {
    db.write(|tx| {
        if crate::db::settings::get(tx, BACKFILLED)?.is_some() {
            return Ok(0);
        }
        let first = store::first_day(tx)?.unwrap_or_else(|| day_of(now));
        let pools = pools_now(tx, None, now)?;
        let changes = store::seat_changes_before(tx, now, now - BACKFILL_DAYS * DAY)?;
        let catalog = seats::catalog(tx)?;
        let days = reconstruct(&pools, &changes, &catalog, now);
        let mut written = 0;
        for row in days.into_iter().filter(|r| r.day < first) {
            store::raise(tx, &row)?;
            written += 1;
        }
        crate::db::settings::put(tx, BACKFILLED, &now.to_string(), now)?;
        Ok(written)
    })
}

/// Walks the seat changes back from now: each day's highest count per pool, and the
/// count carried through days without changes. Pure.
fn reconstruct(
    pools: &[PoolNow],
    changes: &[(i64, i64, String)],
    catalog: &crate::domain::engine::Catalog,
    now: i64,
) -> Vec<DayRow> {
    let mut count: HashMap<(String, String), i64> = pools
        .iter()
        .map(|p| ((p.license_id.clone(), p.pool.clone()), p.used))
        .collect();
    let capacity: HashMap<(String, String), i64> = pools
        .iter()
        .map(|p| ((p.license_id.clone(), p.pool.clone()), p.capacity))
        .collect();
    // The pools a change counts in: its own, and the primary pool for a dynamic sublicense.
    let targets = |subject: &str| -> Vec<(String, String)> {
        if catalog.license(subject).is_some() {
            return vec![(subject.to_string(), String::new())];
        }
        match catalog.sublicense(subject) {
            Some(s) if s.reserved => vec![(s.license_id.clone(), s.id.clone())],
            Some(s) => vec![
                (s.license_id.clone(), s.id.clone()),
                (s.license_id.clone(), String::new()),
            ],
            None => Vec::new(),
        }
    };
    let mut marks: BTreeMap<(String, String, String), i64> = BTreeMap::new();
    let mut mark = |key: &(String, String), day: &str, v: i64| {
        let e = marks
            .entry((key.0.clone(), key.1.clone(), day.to_string()))
            .or_insert(v);
        *e = (*e).max(v);
    };
    let mut cursor = now;
    for (at, delta, subject) in changes {
        // Days from the change's to the cursor's held the count as it is now.
        for d in at.div_euclid(DAY)..=cursor.div_euclid(DAY) {
            for (key, v) in &count {
                mark(key, &day_of(d * DAY), *v);
            }
        }
        for key in targets(subject) {
            if let Some(v) = count.get_mut(&key) {
                *v = (*v - delta).max(0);
                mark(&key, &day_of(*at), *v);
            }
        }
        cursor = *at;
    }
    marks
        .into_iter()
        .map(|((license_id, pool, day), used)| DayRow {
            capacity: capacity
                .get(&(license_id.clone(), pool.clone()))
                .copied()
                .unwrap_or(0),
            license_id,
            pool,
            day,
            used,
            pending: 0,
            backfilled: true,
        })
        .collect()
}

/// One day of a pool's series.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Point {
    pub day: String,
    pub used: i64,
    pub pending: i64,
    pub capacity: i64,
    /// Reconstructed from the audit log (seats used only).
    pub backfilled: bool,
}

/// A pool's days, oldest first.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Series {
    pub license_id: String,
    pub pool: String,
    pub product: String,
    pub name: String,
    pub points: Vec<Point>,
}

/// The last `days` days (today included, with its live values) of every current pool;
/// a day without a row carries the day before it.
pub fn series(db: &Db, days: i64, now: i64) -> Result<Vec<Series>, Problem> {
    let days = days.clamp(1, KEEP_DAYS);
    let first = day_of(now - (days - 1) * DAY);
    let (pools, rows, carried) = db.read(|tx| {
        Ok::<_, Problem>((
            pools_now(tx, None, now)?,
            store::days_since(tx, &first)?,
            store::last_before(tx, &first)?,
        ))
    })?;
    let mut by_pool: HashMap<(String, String), BTreeMap<String, DayRow>> = HashMap::new();
    for r in rows {
        by_pool
            .entry((r.license_id.clone(), r.pool.clone()))
            .or_default()
            .insert(r.day.clone(), r);
    }
    let today = day_of(now);
    Ok(pools
        .into_iter()
        .map(|p| {
            let key = (p.license_id.clone(), p.pool.clone());
            let recorded = by_pool.remove(&key).unwrap_or_default();
            let mut last: Option<Point> = carried
                .iter()
                .find(|c| c.license_id == p.license_id && c.pool == p.pool)
                .map(|c| point(c, &first));
            let mut points = Vec::new();
            for d in 0..days {
                let day = day_of(now - (days - 1 - d) * DAY);
                let live = Point {
                    day: day.clone(),
                    used: p.used,
                    pending: p.pending,
                    capacity: p.capacity,
                    backfilled: false,
                };
                // Today is what was recorded so far and what is live now; a past day
                // without a row (the gateway was off) carries the day before it.
                let pt = match (recorded.get(&day), &last) {
                    (Some(r), _) if day == today => Point {
                        used: r.used.max(live.used),
                        pending: r.pending.max(live.pending),
                        ..live
                    },
                    (None, _) if day == today => live,
                    (Some(r), _) => point(r, &day),
                    (None, Some(l)) => Point {
                        day: day.clone(),
                        ..l.clone()
                    },
                    (None, None) => continue,
                };
                last = Some(pt.clone());
                points.push(pt);
            }
            Series {
                license_id: p.license_id,
                pool: p.pool,
                product: p.product,
                name: p.name,
                points,
            }
        })
        .collect())
}

fn point(r: &DayRow, day: &str) -> Point {
    Point {
        day: day.to_string(),
        used: r.used,
        pending: r.pending,
        capacity: r.capacity,
        backfilled: r.backfilled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::engine::{Catalog, License, Sublicense};

    #[test]
    fn the_audit_log_rebuilds_each_days_high_water_mark() {
        let now = 1_780_000_000 - 1_780_000_000 % DAY + 12 * 3600; // noon
        let catalog = Catalog {
            licenses: vec![License {
                id: "lic".into(),
                seats: 10,
                expires_at: None,
            }],
            sublicenses: vec![Sublicense {
                id: "sub".into(),
                license_id: "lic".into(),
                name: "Eng".into(),
                seats: 5,
                reserved: false,
                expires_at: None,
            }],
        };
        let pool = |pool: &str, used| PoolNow {
            license_id: "lic".into(),
            pool: pool.into(),
            product: "P".into(),
            name: "P".into(),
            used,
            pending: 0,
            capacity: 10,
        };
        let pools = [pool("", 3), pool("sub", 1)];
        // Two days ago: +1 primary, +1 sub (dynamic: counts in both), -1 primary later.
        let two = now - 2 * DAY;
        let changes = vec![
            (two + 300, -1, "lic".to_string()),
            (two + 200, 1, "sub".to_string()),
            (two + 100, 1, "lic".to_string()),
        ];
        let rows = reconstruct(&pools, &changes, &catalog, now);
        let get = |p: &str, day: i64| {
            rows.iter()
                .find(|r| r.pool == p && r.day == day_of(day))
                .map(|r| r.used)
        };
        assert_eq!(get("", now), Some(3));
        assert_eq!(
            get("", now - DAY),
            Some(3),
            "carried through a day without changes"
        );
        // That day the primary pool went 2 → 3 → 4 → 3: its mark is 4.
        assert_eq!(get("", two), Some(4));
        assert_eq!(
            get("", two - DAY),
            None,
            "nothing is invented before the log"
        );
        assert_eq!(get("sub", two), Some(1));
        assert!(rows.iter().all(|r| r.backfilled && r.capacity == 10));
    }
}
