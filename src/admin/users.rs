//! Portal: users and devices. Search, CSV export, a user's detail with the `explain`
//! diagnosis inline, and device deactivation.

use crate::audit::Actor;
use maud::html;

use super::pages::{layout, pager};
use super::{Admin, Handled, csv};
use crate::clock::rfc3339;
use crate::db::admin::Session;
use crate::db::licensing as store;
use crate::db::portal::{self, SeatFilter, UserQuery, UserSort, UserSummary};
use crate::domain::engine::SeatState;
use crate::domain::problem::Reason;
use crate::error::HttpError;
use crate::http::Request;
use crate::http::Response;

const PAGE_SIZE: i64 = 50;
/// A CSV export holds at most this many users (a whole 100k directory is ~10 MB).
const CSV_MAX: i64 = 200_000;

impl Admin {
    pub(crate) fn users_page(&self, req: &Request, session: &Session) -> Handled {
        let list = ListParams::from(req)?;
        let page: i64 = crate::http::query_param(&req.query, "page")?
            .and_then(|p| p.parse().ok())
            .unwrap_or(1)
            .clamp(1, i64::MAX / PAGE_SIZE);
        let (total, mut users) = self
            .db
            .read(|tx| portal::search_users(tx, &list.query((page - 1) * PAGE_SIZE, PAGE_SIZE)))?;
        // A page past the end (an old link after users left) shows the last one.
        let last = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
        let page = if page > last {
            users = self
                .db
                .read(|tx| {
                    portal::search_users(tx, &list.query((last - 1) * PAGE_SIZE, PAGE_SIZE))
                })?
                .1;
            last
        } else {
            page
        };
        let csv_href = format!("/admin/users.csv?{}", list.params(None));
        Ok(Response::page(
            200,
            layout(
                "Users",
                Some(session),
                html! {
                    h1 { "Users and devices" }
                    form.search method="get" action="/admin/users" {
                        label for="q" { "Search by name (given, family or display), user name or email" }
                        input #q type="search" name="q" value=(list.q) autofocus;
                        select name="seat" aria-label="Seat" {
                            @for f in SeatFilter::ALL {
                                option value=(f.key()) selected[f == list.filter] { (f.label()) }
                            }
                        }
                        input type="hidden" name="sort" value=(list.sort.key());
                        @if list.descending { input type="hidden" name="dir" value="desc"; }
                        button type="submit" { "Search" }
                        " " a href=(csv_href) download { "Export CSV" }
                    }
                    p { a href="/admin/explain" { "Why can't someone activate?" } " Explain any email, provisioned or not." }
                    p.muted {
                        (total) " user(s)"
                        @if list.filter != SeatFilter::Any { ", " (list.filter.label()) }
                        @if !list.q.is_empty() { ", matching " strong { (list.q) } }
                        "."
                    }
                    table.users {
                        thead { tr {
                            th { (list.header(UserSort::Name, "Name")) }
                            th { (list.header(UserSort::Email, "Email")) }
                            th { "Groups" }
                            th { (list.header(UserSort::Status, "Status")) }
                            th { (list.header(UserSort::Seat, "Seat")) }
                            th { (list.header(UserSort::Devices, "Devices")) }
                        } }
                        tbody {
                            @for u in &users {
                                tr {
                                    td { a href={ "/admin/users/" (u.id) } { (u.full_name.as_deref().unwrap_or(&u.user_name)) } }
                                    td { (u.email) }
                                    td.groups { (u.groups.join(", ")) }
                                    td { @if u.active { "active" } @else { span.bad { "deactivated" } } }
                                    td { (seat_label(u)) }
                                    td { (u.devices) }
                                }
                            }
                        }
                    }
                    (pager("/admin/users", &list.pairs(), page, PAGE_SIZE, total))
                },
            ),
        ))
    }

    pub(crate) fn users_csv(&self, req: &Request) -> Handled {
        let list = ListParams::from(req)?;
        let (_, users) = self
            .db
            .read(|tx| portal::search_users(tx, &list.query(0, CSV_MAX)))?;
        let mut out = csv::Writer::new(&[
            "id",
            "user_name",
            "display_name",
            "email",
            "active",
            "seat",
            "pool",
            "reason",
            "devices",
            "name",
            "groups",
            "waiting_position",
        ]);
        for u in &users {
            out.row(&[
                &u.id,
                &u.user_name,
                u.display_name.as_deref().unwrap_or(""),
                &u.email,
                if u.active { "true" } else { "false" },
                u.seat.map_or("", SeatState::as_str),
                u.pool.as_deref().unwrap_or(""),
                u.reason.as_deref().unwrap_or(""),
                &u.devices.to_string(),
                u.full_name.as_deref().unwrap_or(""),
                &u.groups.join("; "),
                &u.waiting_position
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
            ]);
        }
        Ok(out.into_response("seatgate-users.csv"))
    }

    /// `explain` for any email, provisioned or not: the first stop when someone cannot
    /// activate.
    pub(crate) fn explain_page(&self, req: &Request, session: &Session) -> Handled {
        let email = crate::http::query_param(&req.query, "email")?.unwrap_or_default();
        let email = email.trim();
        let diagnosis = if email.is_empty() {
            None
        } else {
            Some(crate::licensing::explain::explain(
                &self.db,
                email,
                self.device_limit,
                self.lease_bounds(),
                self.clock.now_unix(),
            )?)
        };
        Ok(Response::page(
            200,
            layout(
                "Why can't they activate?",
                Some(session),
                html! {
                    p { a href="/admin/users" { "← Users" } }
                    h1 { "Why can't they activate?" }
                    form.search method="get" action="/admin/explain" {
                        label for="email" { "Work email" }
                        input #email type="email" name="email" value=(email) required autofocus placeholder="someone@example.com";
                        button type="submit" { "Explain" }
                    }
                    @if let Some(d) = &diagnosis { (diagnosis_card(email, d)) }
                },
            ),
        ))
    }

    pub(crate) fn user_page(&self, session: &Session, id: &str) -> Handled {
        let now = self.clock.now_unix();
        let (user, email, groups, seats, devices, audit, names, name) = self.db.read(|tx| {
            let Some(user) = crate::db::directory::user_by_id(tx, id)? else {
                return Err(HttpError::not_found());
            };
            Ok::<_, HttpError>((
                user,
                crate::db::directory::email_of(tx, id)?.unwrap_or_default(),
                crate::db::directory::groups_of_user(tx, id)?,
                crate::db::portal::user_seats(tx, id)?,
                store::devices_of_user(tx, id)?,
                store::audit_entries(tx, Some(id), None, 20)?,
                super::audit_text::Names::load(tx)?,
                portal::display_name_of(tx, id)?,
            ))
        })?;
        let diagnosis = crate::licensing::explain::explain(
            &self.db,
            &email,
            self.device_limit,
            self.lease_bounds(),
            now,
        )?;
        let name = name.unwrap_or_else(|| user.user_name.clone());
        Ok(Response::page(
            200,
            layout(
                &name,
                Some(session),
                html! {
                    p { a href="/admin/users" { "← Users" } }
                    h1 { (name) }
                    p.muted { (email) " · " @if user.active { "active" } @else { span.bad { "deactivated in the directory" } }
                        " · id " code { (user.id) } }
                    (diagnosis_card(&email, &diagnosis))
                    section.card {
                        h2 { "Groups" }
                        @if groups.is_empty() { p { "In no group." } }
                        @else { ul { @for (_, g) in &groups { li { (g) } } } }
                    }
                    section.card {
                        h2 { "Seats" }
                        @if seats.is_empty() { p { "No seat: not in a group mapped to a license." } }
                        @else {
                            table {
                                thead { tr { th { "Product" } th { "Pool" } th { "State" } th { "Since" } } }
                                tbody { @for s in &seats { tr {
                                    td { (s.product) }
                                    td { (s.pool) }
                                    td { @if s.state == SeatState::Assigned { span.ok { "assigned" } } @else { "pending " code { (s.reason.as_deref().unwrap_or("")) } } }
                                    td.when { (crate::admin::audit::when(s.since)) }
                                } } }
                            }
                        }
                    }
                    section.card {
                        h2 { "Devices" }
                        @if devices.is_empty() { p { "No device activated." } }
                        @else {
                            table.devices {
                                thead { tr { th { "Device" } th { "Activated" } th { "Last seen" } th { "Lease until" } th { "State" } th {} } }
                                tbody { @for d in &devices { tr {
                                    td { strong { (d.name) } " (" (d.os) ")" br; code.small { (d.id) } }
                                    td.when { (crate::admin::audit::when(d.created_at)) }
                                    td.when { (crate::admin::audit::when(d.last_seen_at)) }
                                    td.when { (crate::admin::audit::when(d.lease_expires_at)) }
                                    td { @match &d.revoked_at {
                                        None => span.ok { "active" },
                                        Some(at) => {
                                            span.bad { "revoked on the server" } " " (crate::admin::audit::when(*at)) br; code { (d.revoke_reason.as_deref().unwrap_or("")) }
                                            @if d.lease_expires_at > now {
                                                br; span.muted { "The Mac stops at its next renewal, or offline at the latest " (crate::admin::audit::when(d.lease_expires_at)) "." }
                                            }
                                        }
                                    } }
                                    td { @if d.revoked_at.is_none() {
                                        details {
                                            summary { "Deactivate" }
                                            form method="post" action={ "/admin/devices/" (d.id) "/deactivate" } {
                                                input type="hidden" name="csrf" value=(session.csrf_token);
                                                label { input type="checkbox" name="confirm" value="yes" required;
                                                    " The device is revoked now (the person keeps their seat and may activate another Mac). The Mac stops at its next renewal, or offline when its lease ends ("
                                                    (crate::admin::audit::when(d.lease_expires_at)) ") at the latest." }
                                                button.danger type="submit" { "Deactivate " (d.name) }
                                            }
                                        }
                                    } }
                                } } }
                            }
                        }
                    }
                    section.card {
                        h2 { "Policy" }
                        p.muted { "What this person's Macs get, setting by setting, and from which policy. A change takes effect at each Mac's next renewal or policy fetch. " a href="/admin/policies" { "Policies" } }
                        table.policy {
                            thead { tr { th { "Setting" } th { "Value" } th { "From" } } }
                            tbody { @for p in &diagnosis.policy { tr {
                                td { (p.setting) } td { (p.value) } td { (p.from) }
                            } } }
                        }
                    }
                    section.card {
                        h2 { "Recent history" }
                        (super::audit::entries_table(&audit.into_iter().map(|a| (a, Some(email.clone()))).collect::<Vec<_>>(), &names))
                        p { a href={ "/admin/audit?user=" (crate::http::percent_encode(&email)) } { "Full audit log for this user" } }
                    }
                },
            ),
        ))
    }

    pub(crate) fn deactivate_device(
        &self,
        req: &Request,
        session: &Session,
        actor: &Actor,
        id: &str,
    ) -> Handled {
        super::forms::confirmed(req, "the device is revoked")?;
        let device = self.db.write(|tx| {
            let device = store::device(tx, id)?
                .ok_or_else(|| HttpError::new(Reason::NotFound, "There is no such device."))?;
            crate::licensing::leases::release_device(
                tx,
                &device,
                actor,
                crate::domain::engine::RevokeReason::Deactivated,
                self.clock.now_unix(),
            )?;
            Ok::<_, HttpError>(device)
        })?;
        log::info!("{actor} deactivated device {id}");
        self.flash.set(
            session,
            format!(
                "Deactivated {}: revoked on the server. The Mac stops at its next renewal, or at the latest when its lease ends offline ({}).",
                device.name,
                rfc3339(device.lease_expires_at)
            ),
        );
        Ok(Response::see_other(&match &device.user_id {
            Some(user) => format!("/admin/users/{user}"),
            None => "/admin/keys".to_string(),
        }))
    }
}

/// What activation would answer for `email` now, and the walk that leads there.
fn diagnosis_card(email: &str, diagnosis: &crate::licensing::explain::Explanation) -> maud::Markup {
    html! {
        section.card {
            h2 { "Diagnosis" }
            p.verdict {
                "If " (email) " activated a device now: "
                @if diagnosis.verdict == "OK" { strong.ok { "it would succeed" } }
                @else { strong.bad { "refused, " code { (diagnosis.verdict) } } }
                " — " (diagnosis.because)
            }
            pre.diagnosis { (crate::licensing::explain::render(diagnosis)) }
        }
    }
}

/// The `seat` query parameter: empty for everyone, else one of the filters' keys.
pub(super) fn seat_filter(req: &Request) -> Result<SeatFilter, HttpError> {
    let key = crate::http::query_param(&req.query, "seat")?.unwrap_or_default();
    SeatFilter::from_key(&key).ok_or_else(|| {
        HttpError::new(
            Reason::BadRequest,
            "seat must be empty, seated, waiting, none or inactive.",
        )
    })
}

fn seat_label(u: &UserSummary) -> maud::Markup {
    html! {
        @match (u.seat, u.pool.as_deref()) {
            (Some(SeatState::Assigned), Some(pool)) => span.ok { (pool) },
            (Some(SeatState::Pending), pool) => {
                "waiting "
                @if let Some(n) = u.waiting_position { "(#" (n) " for " (pool.unwrap_or("a seat")) ") " }
                code { (u.reason.as_deref().unwrap_or("")) }
            },
            _ => span.muted { "—" },
        }
    }
}

/// The users list's search, filter and order, from the query string.
pub(super) struct ListParams {
    pub q: String,
    pub filter: SeatFilter,
    pub sort: UserSort,
    pub descending: bool,
}

impl ListParams {
    pub fn from(req: &Request) -> Result<ListParams, HttpError> {
        let q = crate::http::query_param(&req.query, "q")?.unwrap_or_default();
        let sort = match crate::http::query_param(&req.query, "sort")?.as_deref() {
            None | Some("") => UserSort::default(),
            Some(key) => UserSort::from_key(key).ok_or_else(|| {
                HttpError::new(
                    Reason::BadRequest,
                    "sort must be name, email, status, seat or devices.",
                )
            })?,
        };
        let descending = match crate::http::query_param(&req.query, "dir")?.as_deref() {
            None | Some("") | Some("asc") => false,
            Some("desc") => true,
            Some(_) => {
                return Err(HttpError::new(
                    Reason::BadRequest,
                    "dir must be asc or desc.",
                ));
            }
        };
        Ok(ListParams {
            q,
            filter: seat_filter(req)?,
            sort,
            descending,
        })
    }

    pub fn query(&self, offset: i64, limit: i64) -> UserQuery<'_> {
        UserQuery {
            q: &self.q,
            filter: self.filter,
            sort: self.sort,
            descending: self.descending,
            offset,
            limit,
        }
    }

    /// The query string's pairs (empty ones are left out by the links).
    fn pairs(&self) -> Vec<(&str, &str)> {
        vec![
            ("q", self.q.as_str()),
            ("seat", self.filter.key()),
            ("sort", self.sort.key()),
            ("dir", if self.descending { "desc" } else { "" }),
        ]
    }

    /// The query string, with `sort` replaced when given (and its direction reset).
    fn params(&self, sort: Option<(UserSort, bool)>) -> String {
        let (sort, descending) = sort.unwrap_or((self.sort, self.descending));
        let mut q = vec![
            ("q", self.q.clone()),
            ("seat", self.filter.key().to_string()),
            ("sort", sort.key().to_string()),
        ];
        if descending {
            q.push(("dir", "desc".into()));
        }
        q.iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", crate::http::percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// A column header that sorts by it (again: the other way round).
    fn header(&self, sort: UserSort, label: &str) -> maud::Markup {
        let current = self.sort == sort;
        let descending = current && !self.descending;
        let arrow = match (current, self.descending) {
            (false, _) => "",
            (true, false) => " ▲",
            (true, true) => " ▼",
        };
        html! {
            a href={ "/admin/users?" (self.params(Some((sort, descending)))) }
                aria-sort=[current.then_some(if self.descending { "descending" } else { "ascending" })] {
                (label) (arrow)
            }
        }
    }
}
