//! Seat usage over time: the Licenses page's charts (30 days or 12 months), the CSV
//! export and `/api/v1/admin/usage-history`, all from `licensing::history`.

use maud::{Markup, html};
use serde_json::json;

use super::charts::usage_chart;
use super::csv;
use super::{Admin, Handled};
use crate::db::usage::day_of;
use crate::error::HttpError;
use crate::http::{Request, Response, query_param};
use crate::licensing::history::{self, KEEP_DAYS, Series};

/// The ranges the page offers: (query value, days, label).
pub const RANGES: [(&str, i64, &str); 2] = [("30d", 30, "30 days"), ("12m", 365, "12 months")];

/// The range a request asks for (`?range=30d|12m`); 30 days otherwise.
pub fn range_of(req: &Request) -> Result<i64, crate::http::BadEncoding> {
    let asked = query_param(&req.query, "range")?;
    Ok(RANGES
        .iter()
        .find(|(v, _, _)| Some(*v) == asked.as_deref())
        .map_or(30, |(_, d, _)| *d))
}

fn days_of(days: i64, now: i64) -> Vec<String> {
    (0..days)
        .map(|i| day_of(now - (days - 1 - i) * 86_400))
        .collect()
}

/// `?days=N` (1 to the history's keep), 30 otherwise.
fn days_param(req: &Request) -> Result<i64, HttpError> {
    match query_param(&req.query, "days")? {
        None => Ok(30),
        Some(d) => d
            .parse::<i64>()
            .ok()
            .filter(|d| (1..=KEEP_DAYS).contains(d))
            .ok_or_else(|| {
                HttpError::new(
                    crate::domain::problem::Reason::BadRequest,
                    format!("days must be a whole number from 1 to {KEEP_DAYS}."),
                )
            }),
    }
}

impl Admin {
    /// The Licenses page's "Seat usage over time" card.
    pub(crate) fn usage_card(&self, days: i64) -> Result<Markup, HttpError> {
        let now = self.clock.now_unix();
        let series = history::series(&self.db, days, now)?;
        let range = days_of(days, now);
        Ok(usage_card(&series, &range, days))
    }

    /// `GET /admin/licenses/history.csv?days=N`.
    pub(crate) fn history_csv(&self, req: &Request) -> Handled {
        let days = days_param(req)?;
        let series = history::series(&self.db, days, self.clock.now_unix())?;
        let mut out = csv::Writer::new(&[
            "day",
            "license",
            "product",
            "pool",
            "pool_name",
            "used",
            "pending",
            "capacity",
            "reconstructed",
        ]);
        for s in &series {
            let pool = if s.pool.is_empty() {
                "primary"
            } else {
                s.pool.as_str()
            };
            for p in &s.points {
                out.row(&[
                    &p.day,
                    &s.license_id,
                    &s.product,
                    pool,
                    &s.name,
                    &p.used.to_string(),
                    &p.pending.to_string(),
                    &p.capacity.to_string(),
                    if p.backfilled { "yes" } else { "no" },
                ]);
            }
        }
        Ok(out.into_response("seat-usage.csv"))
    }

    /// `GET /api/v1/admin/usage-history?days=N`.
    pub(crate) fn api_history(&self, req: &Request) -> Handled {
        let days = days_param(req)?;
        let series = history::series(&self.db, days, self.clock.now_unix())?;
        let pools: Vec<_> = series
            .iter()
            .map(|s| {
                json!({"license": s.license_id, "product": s.product,
                       "pool": if s.pool.is_empty() { "primary" } else { s.pool.as_str() },
                       "name": s.name, "days": s.points})
            })
            .collect();
        Ok(Response::json(200, &json!({"days": days, "pools": pools})))
    }
}

fn usage_card(series: &[Series], range: &[String], days: i64) -> Markup {
    let code = RANGES
        .iter()
        .find(|(_, d, _)| *d == days)
        .map_or("30d", |r| r.0);
    html! {
        section.card #usage {
            h2 { "Seat usage over time" }
            p.muted {
                "Each day's most seats used and most people waiting, against the pool's capacity; today is live. "
                @for (i, (value, d, label)) in RANGES.iter().enumerate() {
                    @if i > 0 { " · " }
                    @if *d == days { strong { (label) } }
                    @else { a href={ "/admin/licenses?range=" (value) "#usage" } { (label) } }
                }
                " · " a href={ "/admin/licenses/history.csv?days=" (days) } { "CSV" }
            }
            @if series.is_empty() { p { "No license yet." } }
            @for (i, s) in series.iter().enumerate() {
                h3 { (s.name) @if !s.pool.is_empty() { span.muted { " (" (s.product) ")" } } }
                (usage_chart(&format!("chart-{code}-{i}"), s, range))
                @if days <= 31 && !s.points.is_empty() {
                    details {
                        summary { "The numbers" }
                        table {
                            thead { tr { th { "Day" } th { "Used (most)" } th { "Waiting (most)" } th { "Capacity" } } }
                            tbody { @for p in s.points.iter().rev() { tr {
                                td { (p.day) @if p.backfilled { " " span.muted { "(reconstructed)" } } }
                                td { (p.used) } td { (p.pending) } td { (p.capacity) }
                            } } }
                        }
                    }
                }
            }
        }
    }
}
