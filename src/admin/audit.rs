//! Portal: the audit log, filtered by user, action and time, and its CSV export.

use maud::{Markup, html};

use super::audit_text::{Names, sentence};
use super::pages::layout;
use super::{Admin, Handled, csv};
use crate::clock::rfc3339;
use crate::db::admin::Session;
use crate::db::licensing::AuditEntry;
use crate::db::portal::{self, AuditFilter};
use crate::domain::problem::Reason;
use crate::error::HttpError;
use crate::http::Request;
use crate::http::Response;

const PAGE_LIMIT: i64 = 500;
const CSV_MAX: i64 = 1_000_000;

/// The filter as the admin typed it, and as the database applies it.
struct Query {
    user: String,
    action: String,
    since: String,
    until: String,
    filter: AuditFilter,
    /// The user filter names nobody: nothing matches.
    unknown_user: bool,
}

impl Admin {
    fn audit_query(&self, req: &Request) -> Result<Query, HttpError> {
        let param = |k: &str| -> Result<String, HttpError> {
            Ok(crate::http::query_param(&req.query, k)?
                .unwrap_or_default()
                .trim()
                .to_string())
        };
        let (user, action, since, until) = (
            param("user")?,
            param("action")?,
            param("since")?,
            param("until")?,
        );
        let day = |d: &str, field: &str| -> Result<Option<i64>, HttpError> {
            if d.is_empty() {
                return Ok(None);
            }
            crate::clock::parse_date(d).map(Some).ok_or_else(|| {
                HttpError::new(
                    Reason::BadRequest,
                    format!("{field} must be a date like 2026-01-31."),
                )
            })
        };
        let mut filter = AuditFilter {
            action: (!action.is_empty()).then(|| action.clone()),
            since: day(&since, "From")?,
            // Up to the end of the "until" day.
            until: day(&until, "Until")?.map(|t| t + 24 * 3600),
            user_id: None,
        };
        let mut unknown_user = false;
        if !user.is_empty() {
            let found = self.db.read(|tx| {
                let key = user.to_lowercase();
                let found = match crate::db::directory::user_by_email_key(tx, &key)? {
                    Some(u) => Some(u),
                    None => match crate::db::directory::user_by_name_key(tx, &key)? {
                        Some(u) => Some(u),
                        None => crate::db::directory::user_by_id(tx, &user)?,
                    },
                };
                Ok::<_, HttpError>(found.map(|u| u.id))
            })?;
            unknown_user = found.is_none();
            filter.user_id = found;
        }
        Ok(Query {
            user,
            action,
            since,
            until,
            filter,
            unknown_user,
        })
    }

    pub(crate) fn audit_page(&self, req: &Request, session: &Session) -> Handled {
        let q = self.audit_query(req)?;
        let (entries, actions, names) = self.db.read(|tx| {
            let entries = if q.unknown_user {
                Vec::new()
            } else {
                portal::search_audit(tx, &q.filter, PAGE_LIMIT)?
            };
            Ok::<_, HttpError>((entries, portal::audit_actions(tx)?, Names::load(tx)?))
        })?;
        let csv_href = format!(
            "/admin/audit.csv?user={}&action={}&since={}&until={}",
            crate::http::percent_encode(&q.user),
            crate::http::percent_encode(&q.action),
            crate::http::percent_encode(&q.since),
            crate::http::percent_encode(&q.until)
        );
        Ok(Response::page(
            200,
            layout(
                "Audit log",
                Some(session),
                html! {
                    h1 { "Audit log" }
                    p.muted { "Every seat grant, pending seat, revocation, activation, renewal refusal, device release and admin change. Append-only." }
                    form.filters method="get" action="/admin/audit" {
                        div { label for="user" { "User (email or id)" } input #user type="text" name="user" value=(q.user); }
                        div {
                            label for="action" { "Action" }
                            select #action name="action" {
                                option value="" { "any" }
                                @for a in &actions { option value=(a) selected[*a == q.action] { (a) } }
                            }
                        }
                        div { label for="since" { "From" } input #since type="date" name="since" value=(q.since); }
                        div { label for="until" { "Until" } input #until type="date" name="until" value=(q.until); }
                        div { button type="submit" { "Filter" } " " a href=(csv_href) download { "Export CSV" } }
                    }
                    @if q.unknown_user { p.notice { "No user " strong { (q.user) } " in the directory." } }
                    (entries_table(&entries, &names))
                    @if entries.len() as i64 == PAGE_LIMIT {
                        p.muted { "Showing the newest " (PAGE_LIMIT) "; narrow the filter or export CSV for all." }
                    }
                },
            ),
        ))
    }

    pub(crate) fn audit_csv(&self, req: &Request) -> Handled {
        let q = self.audit_query(req)?;
        let entries = if q.unknown_user {
            Vec::new()
        } else {
            self.db
                .read(|tx| portal::search_audit(tx, &q.filter, CSV_MAX))?
        };
        let mut out = csv::Writer::new(&[
            "id", "at", "actor", "action", "user_id", "user", "subject", "reason", "detail",
        ]);
        for (e, user) in &entries {
            out.row(&[
                &e.id.to_string(),
                &rfc3339(e.at),
                &e.actor,
                &e.action,
                e.user_id.as_deref().unwrap_or(""),
                user.as_deref().unwrap_or(""),
                e.subject.as_deref().unwrap_or(""),
                e.reason.as_deref().unwrap_or(""),
                e.detail.as_deref().unwrap_or(""),
            ]);
        }
        Ok(out.into_response("seatgate-audit.csv"))
    }
}

/// Audit entries as a table (also on a user's page): when (in the browser's time zone,
/// UTC on hover), what happened as a sentence, the user, and the stored entry behind a
/// disclosure.
pub fn entries_table(entries: &[(AuditEntry, Option<String>)], names: &Names) -> Markup {
    html! {
        @if entries.is_empty() { p { "Nothing recorded." } }
        @else {
            table.audit {
                thead { tr { th { "When" } th { "What happened" } th { "User" } } }
                tbody { @for (e, user) in entries { tr {
                    td.when { (when(e.at)) }
                    td {
                        (sentence(e, user.as_deref(), names))
                        details.raw {
                            summary { code { (e.action) } @if let Some(r) = &e.reason { " " code { (r) } } }
                            dl {
                                dt { "Actor" } dd { code { (e.actor) } }
                                @if let Some(s) = &e.subject { dt { "Subject" } dd { code { (s) } } }
                                @if let Some(d) = &e.detail { dt { "Detail" } dd.detail { code { (d) } } }
                            }
                        }
                    }
                    td { @if let Some(id) = &e.user_id { a href={ "/admin/users/" (id) } { (user.as_deref().unwrap_or(id)) } } }
                } } }
            }
        }
    }
}

/// A time for people: UTC in the page (and without JavaScript), shown in the browser's
/// time zone by the portal's script, with UTC on hover.
pub fn when(t: i64) -> Markup {
    let utc = rfc3339(t);
    html! { time.local datetime=(utc) title={ (utc) " UTC" } { (utc) } }
}
