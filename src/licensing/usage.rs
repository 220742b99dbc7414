//! Usage reports for the vendor's true-up: per license and UTC day of a month, the most
//! seats held at once, the day's average and the devices activated, signed with the
//! gateway's instance key so the vendor can verify them offline. User names are included
//! only when the admin asks.

use std::collections::BTreeMap;

use entitlement::registration::Held;
use entitlement::usage::{DayUsage, ProductUsage, Report};

use crate::db::Db;
use crate::db::usage::{self as store, day_of};

const DAY: i64 = 86_400;

#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("{0:?} is not a month (YYYY-MM, 1970-01 to 9998-12)")]
    BadMonth(String),
    #[error("{0} has not started yet")]
    Future(String),
    #[error("{0}")]
    Key(#[from] super::entitlements::ImportError),
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
}

impl From<UsageError> for crate::domain::problem::Problem {
    fn from(e: UsageError) -> Self {
        use crate::domain::problem::{Problem, Reason};
        match e {
            UsageError::Db(e) => Problem::from(e),
            UsageError::Key(e) => Problem::from(e),
            other => Problem::new(Reason::BadRequest, format!("{other}.")),
        }
    }
}

/// The first second of `YYYY-MM` and of the month after it.
fn month_bounds(month: &str) -> Result<(i64, i64), UsageError> {
    let bad = || UsageError::BadMonth(month.to_string());
    let digits = |t: &str, n: usize| t.len() == n && t.bytes().all(|b| b.is_ascii_digit());
    let (y, m) = month.split_once('-').ok_or_else(bad)?;
    if !digits(y, 4) || !digits(m, 2) {
        return Err(bad());
    }
    let (y, m): (i32, u8) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(1970..=9998).contains(&y) {
        return Err(bad());
    }
    let start_of = |y: i32, m: u8| {
        time::Month::try_from(m)
            .ok()
            .and_then(|m| time::Date::from_calendar_date(y, m, 1).ok())
            .map(|d| d.midnight().assume_utc().unix_timestamp())
    };
    let start = start_of(y, m)
        .filter(|_| month.trim().len() == 7)
        .ok_or_else(bad)?;
    let end = if m == 12 {
        start_of(y + 1, 1)
    } else {
        start_of(y, m + 1)
    }
    .ok_or_else(bad)?;
    Ok((start, end))
}

/// A signed usage report of `month` (`YYYY-MM`); the current month runs up to `now`.
pub fn report(
    db: &Db,
    month: &str,
    include_users: bool,
    actor: &crate::audit::Actor,
    now: i64,
) -> Result<String, UsageError> {
    let (start, end) = month_bounds(month)?;
    if start > now {
        return Err(UsageError::Future(month.to_string()));
    }
    let key = super::entitlements::instance_key(db, now)?;
    let until = end.min(now);
    let (days, activations, licenses, held, holders) = db.write(|tx| {
        store::close_all(tx, now)?;
        // Who took which report (and whether it names people) is on record.
        let detail = serde_json::json!({"month": month, "user_names": include_users});
        crate::db::licensing::audit(
            tx,
            now,
            actor,
            crate::audit::AuditAction::UsageReportExported,
            None,
            crate::db::licensing::AuditAbout {
                detail: Some(&detail.to_string()),
                ..Default::default()
            },
        )?;
        Ok::<_, rusqlite::Error>((
            store::days(tx, &day_of(start), &day_of(until - 1))?,
            store::activations(tx, start, until)?,
            crate::db::licensing::licenses(tx)?,
            crate::db::entitlements::entitlements(tx)?,
            if include_users {
                Some(store::seat_holders(tx)?)
            } else {
                None
            },
        ))
    })?;
    let activated: BTreeMap<(String, String), i64> = activations
        .into_iter()
        .map(|(l, d, n)| ((l, d), n))
        .collect();
    let products = licenses
        .iter()
        .filter(|l| l.created_at <= until)
        .map(|l| {
            let entitlement_id = held
                .iter()
                .find(|e| e.license_id == l.id)
                .map(|e| e.claims.entitlement_id.clone());
            ProductUsage {
                product: l.product.clone(),
                license: l.id.clone(),
                entitlement_id,
                licensed_seats: l.seats,
                // Days before the license existed are not in its report.
                days: day_usage(
                    &l.id,
                    &days,
                    &activated,
                    start.max(day_start(l.created_at)),
                    until,
                ),
            }
        })
        .collect();
    let report = Report {
        format: entitlement::usage::FORMAT,
        instance: key.thumbprint(),
        month: month.to_string(),
        gateway_version: env!("CARGO_PKG_VERSION").to_string(),
        generated_at: now,
        entitlements: held
            .iter()
            .map(|e| Held {
                entitlement_id: e.claims.entitlement_id.clone(),
                serial: e.claims.serial,
            })
            .collect(),
        products,
        seat_holders: holders,
    };
    Ok(report.sign(&key))
}

fn day_start(t: i64) -> i64 {
    t.div_euclid(DAY) * DAY
}

/// Every day of `[start, until)` for one license: a day without a row had no seats.
fn day_usage(
    license: &str,
    days: &[store::DayRow],
    activated: &BTreeMap<(String, String), i64>,
    start: i64,
    until: i64,
) -> Vec<DayUsage> {
    let mut out = Vec::new();
    let mut t = start;
    while t < until {
        let date = day_of(t);
        let row = days
            .iter()
            .find(|r| r.license_id == license && r.day == date);
        // A day still running is averaged over the part that has passed.
        let observed = (until.min(t + DAY) - t).max(1);
        out.push(DayUsage {
            peak_seats: row.map_or(0, |r| r.peak),
            average_seats: row.map_or(0.0, |r| {
                (r.seat_seconds as f64 / observed as f64 * 100.0).round() / 100.0
            }),
            activations: activated
                .get(&(license.to_string(), date.clone()))
                .copied()
                .unwrap_or(0),
            date,
        });
        t += DAY;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_read_strictly() {
        assert_eq!(
            month_bounds("2026-02").ok(),
            Some((1_769_904_000, 1_772_323_200))
        );
        assert_eq!(
            month_bounds("2026-12").map(|(s, e)| e - s).ok(),
            Some(31 * DAY)
        );
        for bad in [
            "2026-13",
            "2026-00",
            "2026-1",
            "26-01",
            "2026/01",
            "",
            "2026-01-01",
        ] {
            assert!(month_bounds(bad).is_err(), "{bad}");
        }
    }
}
