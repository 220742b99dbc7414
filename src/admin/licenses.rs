//! Portal: licenses, sublicenses and group mappings, with seat usage per pool. Every
//! change goes through `licensing::manage` (validated, audited, reconciled in the same
//! transaction), the code the CLI uses.

use crate::audit::Actor;
use std::collections::BTreeMap;

use maud::{Markup, html};

use super::forms::{Sticky, confirmation, seat_changes, sentence};
use super::pages::layout;
use super::{Admin, Handled};
use crate::clock::rfc3339;
use crate::db::admin::{Mapping, Session};
use crate::db::entitlements::EntitlementRow;
use crate::db::licensing::LicenseRow;
use crate::db::portal::{self, PoolUsage};
use crate::domain::engine::Sublicense;
use crate::domain::problem::Reason;
use crate::error::HttpError;
use crate::http::Request;
use crate::http::Response;
use crate::licensing::entitlements::{self, ImportError};
use crate::licensing::manage::{self, ManageError, MapTo, NewLicense, NewSublicense};

struct Catalog {
    licenses: Vec<LicenseRow>,
    sublicenses: Vec<Sublicense>,
    pools: Vec<PoolUsage>,
    mappings: Vec<Mapping>,
    /// IdP connections as (id, name), for the scope of a mapping.
    connections: Vec<(String, String)>,
    /// The vendor entitlements behind licenses.
    entitlements: Vec<EntitlementRow>,
}

impl Admin {
    /// The licenses page; shown again after a refused change with the reason and what the
    /// refused form held (`sticky`).
    pub(crate) fn licenses_page(
        &self,
        session: &Session,
        notice: Option<&str>,
        sticky: Sticky<'_>,
        range_days: i64,
    ) -> Handled {
        let now = self.clock.now_unix();
        let usage = self.usage_card(range_days)?;
        let catalog = self.db.read(|tx| {
            Ok::<_, HttpError>(Catalog {
                licenses: crate::db::licensing::licenses(tx)?,
                sublicenses: crate::db::licensing::sublicenses(tx)?,
                pools: portal::pool_usage(tx, now)?,
                mappings: crate::db::admin::mappings(tx)?,
                connections: crate::db::idp::list(tx)?
                    .into_iter()
                    .map(|c| (c.id, c.name))
                    .collect(),
                entitlements: crate::db::entitlements::entitlements(tx)?,
            })
        })?;
        let status = if notice.is_some() { 400 } else { 200 };
        Ok(Response::page(
            status,
            layout(
                "Licenses",
                Some(session),
                page(session, &catalog, notice, sticky, now, usage),
            ),
        ))
    }

    /// Runs a change from the form posted to `action`. Done: back to the page, which
    /// says what the change did. Refused: the page again with the reason and the form as
    /// it was sent.
    fn after_change(
        &self,
        session: &Session,
        actor: &Actor,
        (action, form): (&str, &BTreeMap<String, String>),
        change: impl FnOnce(&Actor) -> Result<String, ManageError>,
    ) -> Handled {
        match change(actor) {
            Ok(done) => {
                self.flash.set(session, done);
                Ok(Response::see_other("/admin/licenses"))
            }
            Err(ManageError::Db(e)) => Err(e.into()),
            Err(e) => self.licenses_page(
                session,
                Some(&sentence(&e.to_string())),
                Sticky::of(action, form),
                30,
            ),
        }
    }

    pub(crate) fn add_license(&self, req: &Request, session: &Session, actor: &Actor) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        self.after_change(session, actor, ("/admin/licenses", &form), |actor| {
            let seats = parse_seats(field(&form, "seats"))?;
            let expires_at = parse_optional_date(field(&form, "expires"))?;
            let key = field(&form, "key").trim();
            let product = field(&form, "product");
            let id = manage::add_license(
                &self.db,
                actor,
                &NewLicense {
                    product,
                    seats,
                    expires_at,
                    key: (!key.is_empty()).then_some(key),
                },
            )?;
            Ok(format!(
                "Registered {} as license {id}: {seats} seats, {}.",
                product.trim(),
                expiry_words(expires_at)
            ))
        })
    }

    /// `POST /admin/entitlements`: imports a pasted vendor entitlement.
    pub(crate) fn import_entitlement(
        &self,
        req: &Request,
        session: &Session,
        actor: &Actor,
    ) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let token = field(&form, "entitlement");
        let trusted = entitlements::trusted_keys(self.demo);
        match entitlements::import(&self.db, token, &trusted, actor, self.clock.now_unix()) {
            Ok((imported, summary)) => {
                self.flash.set(
                    session,
                    format!(
                        "{}.{}",
                        sentence(&imported.to_string()).trim_end_matches('.'),
                        seat_changes(&summary)
                    ),
                );
                Ok(Response::see_other("/admin/licenses"))
            }
            Err(ImportError::Db(e)) => Err(e.into()),
            Err(e) => {
                let message = e.to_string();
                let code = crate::domain::problem::Problem::from(e).reason.code();
                self.licenses_page(
                    session,
                    Some(&format!("{} (Reason code {code})", sentence(&message))),
                    Sticky::of("/admin/entitlements", &form),
                    30,
                )
            }
        }
    }

    /// `GET /admin/registration-request`: the air-gapped registration request, as a file.
    pub(crate) fn registration_request(&self) -> Handled {
        let hostname = crate::public_url::host_name().unwrap_or_default();
        let (request, _) = entitlements::registration_request(
            &self.db,
            &self.public_url,
            &hostname,
            self.clock.now_unix(),
        )
        .map_err(crate::domain::problem::Problem::from)?;
        Ok(Response::attachment(
            "application/jose",
            "seatgate-registration.jws",
            format!("{request}\n").into_bytes(),
        ))
    }

    /// `GET /admin/usage-report?month=YYYY-MM[&users=1]`: a signed usage report, as a file.
    pub(crate) fn usage_report(&self, req: &Request, actor: &Actor) -> Handled {
        let query = crate::http::parse_form(req.query.as_bytes())?;
        let month = field(&query, "month");
        let users = field(&query, "users") == "1";
        let report =
            crate::licensing::usage::report(&self.db, month, users, actor, self.clock.now_unix())
                .map_err(crate::domain::problem::Problem::from)?;
        // The month was checked strictly by `report`: safe inside the header.
        Ok(Response::attachment(
            "application/jose",
            &format!("seatgate-usage-{month}.jws"),
            format!("{report}\n").into_bytes(),
        ))
    }

    pub(crate) fn edit_license(
        &self,
        req: &Request,
        session: &Session,
        actor: &Actor,
        id: &str,
    ) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let action = format!("/admin/licenses/{id}");
        self.after_change(session, actor, (&action, &form), |actor| {
            let seats = parse_seats(field(&form, "seats"))?;
            let expires_at = parse_optional_date(field(&form, "expires"))?;
            let summary = manage::set_license(&self.db, actor, id, Some(seats), Some(expires_at))?;
            Ok(format!(
                "Saved license {id}: {seats} seats, {}.{}",
                expiry_words(expires_at),
                seat_changes(&summary)
            ))
        })
    }

    /// `POST /admin/licenses/{id}/offline`: how long a Mac works without the gateway.
    pub(crate) fn set_offline_limit(
        &self,
        req: &Request,
        session: &Session,
        actor: &Actor,
        id: &str,
    ) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let action = format!("/admin/licenses/{id}/offline");
        self.after_change(session, actor, (&action, &form), |actor| {
            let days = field(&form, "days").trim();
            let secs = if days.is_empty() {
                None
            } else {
                Some(
                    days.parse::<i64>()
                        .ok()
                        .filter(|d| (1..=365).contains(d))
                        .ok_or_else(|| {
                            ManageError::Invalid(
                                "The offline limit is a whole number of days from 1 to 365, or empty for the default.".into(),
                            )
                        })?
                        * 86_400,
                )
            };
            manage::set_max_offline(&self.db, actor, id, secs)?;
            Ok(match secs {
                Some(s) => format!(
                    "Saved: new leases of {id} work at most {} days without reaching the gateway. Leases already on Macs keep their end; each Mac picks the limit up at its next renewal.",
                    s / 86_400
                ),
                None => format!("Saved: leases of {id} follow the gateway's [lease] settings."),
            })
        })
    }

    pub(crate) fn add_sublicense(
        &self,
        req: &Request,
        session: &Session,
        actor: &Actor,
    ) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        self.after_change(session, actor, ("/admin/sublicenses", &form), |actor| {
            let seats = parse_seats(field(&form, "seats"))?;
            let expires_at = parse_optional_date(field(&form, "expires"))?;
            let reserved = field(&form, "allocation") == "reserved";
            let name = field(&form, "name");
            manage::add_sublicense(
                &self.db,
                actor,
                &NewSublicense {
                    license: field(&form, "license"),
                    name,
                    seats,
                    reserved,
                    expires_at,
                },
            )?;
            Ok(format!(
                "Added the {} sublicense {}: {seats} seats, {}. Map a group to it to hand them out.",
                if reserved { "reserved" } else { "dynamic" },
                name.trim(),
                expiry_words(expires_at)
            ))
        })
    }

    pub(crate) fn edit_sublicense(
        &self,
        req: &Request,
        session: &Session,
        actor: &Actor,
        id: &str,
    ) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let action = format!("/admin/sublicenses/{id}");
        self.after_change(session, actor, (&action, &form), |actor| {
            let seats = parse_seats(field(&form, "seats"))?;
            let expires_at = parse_optional_date(field(&form, "expires"))?;
            let summary =
                manage::set_sublicense(&self.db, actor, id, Some(seats), Some(expires_at))?;
            Ok(format!(
                "Saved the sublicense: {seats} seats, {}.{}",
                expiry_words(expires_at),
                seat_changes(&summary)
            ))
        })
    }

    pub(crate) fn remove_sublicense(
        &self,
        req: &Request,
        session: &Session,
        actor: &Actor,
        id: &str,
    ) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let action = format!("/admin/sublicenses/{id}/delete");
        self.after_change(session, actor, (&action, &form), |actor| {
            confirmation(&form, "nobody draws from the sublicense any more")
                .map_err(ManageError::Invalid)?;
            manage::remove_sublicense(&self.db, actor, id)?;
            Ok("Removed the sublicense.".into())
        })
    }

    pub(crate) fn add_mapping(&self, req: &Request, session: &Session, actor: &Actor) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        self.after_change(session, actor, ("/admin/mappings", &form), |actor| {
            // "admins", "primary:{license id}" or "sublicense:{sublicense id}".
            let role = field(&form, "role");
            let to = match role.split_once(':') {
                None if role == "admins" => MapTo::Admins,
                Some(("primary", license)) => MapTo::Primary {
                    license: Some(license),
                },
                Some(("sublicense", id)) => MapTo::Sublicense(id),
                _ => return Err(ManageError::Invalid("Choose what the group grants.".into())),
            };
            let connection = Some(field(&form, "connection")).filter(|c| !c.is_empty());
            let group = field(&form, "group");
            let (_, summary) = manage::add_mapping(&self.db, actor, group, connection, to)?;
            Ok(format!(
                "Mapped the group {}.{}",
                group.trim(),
                seat_changes(&summary)
            ))
        })
    }

    pub(crate) fn remove_mapping(
        &self,
        req: &Request,
        session: &Session,
        actor: &Actor,
        id: &str,
    ) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let action = format!("/admin/mappings/{id}/delete");
        self.after_change(session, actor, (&action, &form), |actor| {
            confirmation(&form, "the group's members lose what it grants")
                .map_err(ManageError::Invalid)?;
            let summary = manage::remove_mapping(&self.db, actor, id)?;
            Ok(format!("Removed the mapping.{}", seat_changes(&summary)))
        })
    }
}

/// Which instant an expiry date means: the end of that day, in UTC.
fn expiry_words(t: Option<i64>) -> String {
    match t {
        Some(t) => format!(
            "expires at the end of {} (23:59:59 UTC)",
            date_value(Some(t))
        ),
        None => "no expiry".into(),
    }
}

pub(super) fn field<'a>(form: &'a BTreeMap<String, String>, k: &str) -> &'a str {
    form.get(k).map(String::as_str).unwrap_or("")
}

fn parse_seats(s: &str) -> Result<i64, ManageError> {
    s.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| (0..=10_000_000).contains(n))
        .ok_or_else(|| ManageError::Invalid("Seats must be a whole number, 0 or more.".into()))
}

fn parse_optional_date(s: &str) -> Result<Option<i64>, ManageError> {
    let s = s.trim();
    if s.is_empty() {
        Ok(None)
    } else {
        manage::parse_expiry(s).map(Some)
    }
}

/// What an expiry date means, next to every date field.
const EXPIRES_LABEL: &str = "Expires at the end of (23:59:59 UTC; empty: never)";

fn date_value(t: Option<i64>) -> String {
    t.map(|t| rfc3339(t)[..10].to_string()).unwrap_or_default()
}

fn page(
    s: &Session,
    c: &Catalog,
    notice: Option<&str>,
    sticky: Sticky<'_>,
    now: i64,
    usage: Markup,
) -> Markup {
    html! {
        h1 { "Licenses" }
        @if let Some(n) = notice { p.notice role="alert" { (n) } }
        @if c.licenses.is_empty() {
            p { "No license yet. Register the one you bought below." }
        }
        @for l in &c.licenses {
            section.card.license {
                h2 { (l.product) " " span.muted { code { (l.id) } } }
                p.muted {
                    (l.seats) " seats · "
                    @match l.expires_at {
                        Some(t) if t < now => span.bad { "expired " (crate::admin::audit::when(t)) },
                        Some(t) => { "expires " (crate::admin::audit::when(t)) },
                        None => "no expiry",
                    }
                    @if let Some(k) = &l.license_key { " · key " code { (mask(k)) } }
                }
                @let entitlement = c.entitlements.iter().find(|e| e.license_id == l.id);
                @if let Some(e) = entitlement { (entitlement_summary(&e.claims, now)) }
                table.pools {
                    thead { tr { th { "Pool" } th { "Used / pending / free" } th.bar {} } }
                    tbody {
                        @for p in c.pools.iter().filter(|p| p.license_id == l.id) {
                            tr {
                                td {
                                    strong { (p.name) }
                                    @if let Some(sub_id) = &p.sublicense_id {
                                        br; span.muted {
                                            @if p.reserved { "reserved" } @else { "dynamic" }
                                            @if let Some(t) = p.expires_at {
                                                @if t < now { " · " span.bad { "expired" } } @else { " · until " (date_value(Some(t))) }
                                            }
                                        }
                                        @let edit = format!("/admin/sublicenses/{sub_id}");
                                        @let delete = format!("/admin/sublicenses/{sub_id}/delete");
                                        details open[sticky.is(&edit) || sticky.is(&delete)] {
                                            summary { "Change or remove " (p.name) }
                                            form.inline method="post" action=(edit) {
                                                input type="hidden" name="csrf" value=(s.csrf_token);
                                                label { "Seats " input type="number" name="seats" min="0" value=(sticky.value(&edit, "seats", &p.seats.capacity.to_string())) required; }
                                                label { (EXPIRES_LABEL) " " input type="date" name="expires" value=(sticky.value(&edit, "expires", &date_value(p.expires_at))); }
                                                button type="submit" { "Save " (p.name) }
                                            }
                                            form.inline method="post" action=(delete) {
                                                input type="hidden" name="csrf" value=(s.csrf_token);
                                                label { input type="checkbox" name="confirm" value="yes" required; " Remove " (p.name) " (only once no group mapping and no user draws from it)" }
                                                button.danger type="submit" { "Remove " (p.name) }
                                            }
                                        }
                                    }
                                }
                                td {
                                    (p.seats.used) " / " (p.pending) " / " (p.seats.free) " of " (p.seats.capacity)
                                    @if p.seats.used > p.seats.capacity {
                                        br; span.bad { "over by " (p.seats.used - p.seats.capacity) ": nobody loses a seat, but none is handed out until it is under its size" }
                                    }
                                    @if p.key_devices > 0 {
                                        br; span.muted { (p.key_devices) " of the used seats are held by Macs activated with a " a href="/admin/keys" { "license key" } }
                                    }
                                    @if p.seats.used_by_dynamic > 0 {
                                        br; span.muted { (p.seats.used_by_dynamic) " of the used seats are held through dynamic sublicenses" }
                                    }
                                    @if p.seats.limited_by_primary {
                                        br; span.muted { "limited by the primary pool it draws from" }
                                    }
                                }
                                td.bar { (usage_bar(p)) }
                            }
                        }
                    }
                }
                @let offline = format!("/admin/licenses/{}/offline", l.id);
                details open[sticky.is(&offline)] {
                    summary {
                        "Offline limit: "
                        @match l.max_offline_secs {
                            Some(s) => { "a Mac works at most " (s / 86_400) " days without reaching the gateway" },
                            None => "the gateway's default lease windows",
                        }
                    }
                    p.muted { "How long a Mac keeps working without reaching the gateway. It also bounds how long a revoked or deprovisioned Mac that stays offline keeps working: the server refuses it at once, the Mac learns at its next renewal." }
                    form.inline method="post" action=(offline) {
                        input type="hidden" name="csrf" value=(s.csrf_token);
                        label { "Days (1 to 365; empty: the default) " input type="number" name="days" min="1" max="365"
                            value=(sticky.value(&offline, "days", &l.max_offline_secs.map(|s| (s / 86_400).to_string()).unwrap_or_default())); }
                        button type="submit" { "Save the offline limit" }
                    }
                }
                @if entitlement.is_none() {
                    @let edit = format!("/admin/licenses/{}", l.id);
                    details open[sticky.is(&edit)] {
                        summary { "Change seats or expiry" }
                        form.inline method="post" action=(edit) {
                            input type="hidden" name="csrf" value=(s.csrf_token);
                            label { "Seats " input type="number" name="seats" min="0" value=(sticky.value(&edit, "seats", &l.seats.to_string())) required; }
                            label { (EXPIRES_LABEL) " " input type="date" name="expires" value=(sticky.value(&edit, "expires", &date_value(l.expires_at))); }
                            button type="submit" { "Save" }
                            p.muted { "More seats go to people on the waiting list at once; the page then says how many." }
                        }
                    }
                }
            }
        }
        (mappings_card(s, c, sticky))
        @if !c.licenses.is_empty() { (add_sublicense_card(s, c, sticky)) }
        (usage)
        (import_card(s, sticky))
        (register_card(s, sticky))
    }
}

/// What the vendor's entitlement says, and a warning as its end nears.
fn entitlement_summary(e: &entitlement::Entitlement, now: i64) -> Markup {
    let days_left = (e.ends_at - now).div_euclid(86_400);
    let warn = entitlements::WARN_DAYS.iter().any(|d| days_left < *d);
    html! {
        p.muted {
            @if e.trial { strong { "Trial" } " · " }
            "From the vendor: " (e.customer_name) " · " (e.edition) " · entitlement "
            code { (e.entitlement_id) } " serial " (e.serial) " · "
            (date_value(Some(e.starts_at))) " to " (date_value(Some(e.ends_at)))
            @if e.instance.is_some() { " · bound to this gateway" }
        }
        @if e.ends_at < now {
            p.notice role="alert" { "This entitlement has ended: renewals are refused with LICENSE_EXPIRED. Import the renewal from the vendor." }
        } @else if warn {
            p.notice role="alert" {
                "This entitlement ends in " (days_left) @if days_left == 1 { " day" } @else { " days" }
                ". Import the renewal from the vendor before then."
            }
        } @else {
            p.muted { (days_left) " days left. Seats and end date come from the vendor; import a renewal to change them." }
        }
    }
}

/// Importing a vendor entitlement, and the air-gapped registration request.
fn import_card(s: &Session, sticky: Sticky<'_>) -> Markup {
    html! {
        section.card {
            h2 { "Import an entitlement from the vendor" }
            p.muted {
                "Paste the entitlement file's contents. For an entitlement bound to this gateway, send the vendor this gateway's "
                a href="/admin/registration-request" { "registration request" }
                " (also " code { "seatgate register --out FILE" } ")."
            }
            p.muted {
                "Usage report for the vendor (true-up), signed by this gateway: "
                form.inline method="get" action="/admin/usage-report" {
                    label { "Month " input type="month" name="month" required; }
                    label { input type="checkbox" name="users" value="1"; " include user names" }
                    button type="submit" { "Download" }
                }
            }
            form method="post" action="/admin/entitlements" {
                input type="hidden" name="csrf" value=(s.csrf_token);
                label { "Entitlement " textarea name="entitlement" rows="4" required { (sticky.value("/admin/entitlements", "entitlement", "")) } }
                button type="submit" { "Import" }
            }
        }
    }
}

/// The group mappings and the form that adds one.
fn mappings_card(s: &Session, c: &Catalog, sticky: Sticky<'_>) -> Markup {
    html! {
        section.card #mappings {
            h2 { "Group mappings" }
            p.muted { "An IdP group (its SCIM displayName or externalId, or the SAML group value) grants a role: a seat from a pool, or admin access. A mapping applies only to the groups of the connection it names: a group pushed or asserted by one connection never grants anything to another connection's users." }
            @if c.mappings.is_empty() { p { "No mapping yet." } }
            @else {
                table {
                    thead { tr { th { "Group" } th { "From" } th { "Grants" } th {} } }
                    tbody { @for m in &c.mappings { tr {
                        td { strong { (m.group_ref) } }
                        td { (crate::domain::connection::scope_label(m.connection_id.as_deref())) }
                        td { (grant_label(m, c)) }
                        td {
                            @let delete = format!("/admin/mappings/{}/delete", m.id);
                            details open[sticky.is(&delete)] {
                                summary { "Remove" }
                                form method="post" action=(delete) {
                                    input type="hidden" name="csrf" value=(s.csrf_token);
                                    label { input type="checkbox" name="confirm" value="yes" required; " Its members lose what it grants" }
                                    button.danger type="submit" { "Remove the mapping of " (m.group_ref) }
                                }
                            }
                        }
                    } } }
                }
            }
            h3 { "Map a group" }
            form.inline method="post" action="/admin/mappings" {
                input type="hidden" name="csrf" value=(s.csrf_token);
                @let add = "/admin/mappings";
                label { "Group " input type="text" name="group" value=(sticky.value(add, "group", "")) required placeholder="e.g. Engineering"; }
                label { "From "
                    select name="connection" {
                        @for (id, name) in &c.connections {
                            option value=(id) selected[sticky.chose(add, "connection", id)] { (name) " (" (id) ")" }
                        }
                        option value="" selected[sticky.chose(add, "connection", "")] { "SCIM tokens without a connection" }
                    }
                }
                label { "Grants "
                    select name="role" required {
                        option value="admins" selected[sticky.chose(add, "role", "admins")] { "Admin access to this portal" }
                        @for l in &c.licenses {
                            @let primary = format!("primary:{}", l.id);
                            option value=(primary) selected[sticky.chose(add, "role", &primary)] { "A seat of " (l.product) " (primary pool)" }
                            @for sub in c.sublicenses.iter().filter(|x| x.license_id == l.id) {
                                @let from = format!("sublicense:{}", sub.id);
                                option value=(from) selected[sticky.chose(add, "role", &from)] { "A seat of " (l.product) " from " (sub.name) }
                            }
                        }
                    }
                }
                button type="submit" { "Add mapping" }
            }
        }
    }
}

fn add_sublicense_card(s: &Session, c: &Catalog, sticky: Sticky<'_>) -> Markup {
    let add = "/admin/sublicenses";
    html! {
        section.card {
            h2 { "Add a sublicense" }
            p.muted { "A named slice of a license for a group. " strong { "Reserved" } ": its seats are set aside for it. "
                strong { "Dynamic" } ": it draws from the primary pool, up to its limit." }
            form.inline method="post" action="/admin/sublicenses" {
                input type="hidden" name="csrf" value=(s.csrf_token);
                label { "License " select name="license" { @for l in &c.licenses { option value=(l.id) selected[sticky.chose(add, "license", &l.id)] { (l.product) } } } }
                label { "Name " input type="text" name="name" value=(sticky.value(add, "name", "")) required placeholder="e.g. Engineering"; }
                label { "Seats " input type="number" name="seats" min="0" value=(sticky.value(add, "seats", "")) required; }
                label { "Allocation " select name="allocation" {
                    option value="reserved" selected[sticky.chose(add, "allocation", "reserved")] { "reserved" }
                    option value="dynamic" selected[sticky.chose(add, "allocation", "dynamic")] { "dynamic" }
                } }
                label { (EXPIRES_LABEL) " " input type="date" name="expires" value=(sticky.value(add, "expires", "")); }
                button type="submit" { "Add sublicense" }
            }
        }
    }
}

fn register_card(s: &Session, sticky: Sticky<'_>) -> Markup {
    let add = "/admin/licenses";
    html! {
        section.card {
            h2 { "Register a license" }
            form.inline method="post" action="/admin/licenses" {
                input type="hidden" name="csrf" value=(s.csrf_token);
                label { "Product " input type="text" name="product" value=(sticky.value(add, "product", "")) required; }
                label { "Seats " input type="number" name="seats" min="0" value=(sticky.value(add, "seats", "")) required; }
                label { (EXPIRES_LABEL) " " input type="date" name="expires" value=(sticky.value(add, "expires", "")); }
                label { "License key (optional) " input type="text" name="key" value=(sticky.value(add, "key", "")); }
                button type="submit" { "Register" }
            }
        }
    }
}

fn grant_label(m: &Mapping, c: &Catalog) -> Markup {
    let product = |id: &Option<String>| {
        id.as_ref()
            .and_then(|id| c.licenses.iter().find(|l| &l.id == id))
            .map_or_else(|| "a license".to_string(), |l| l.product.clone())
    };
    html! {
        @match m.role.as_str() {
            "admins" => "admin access",
            "sublicense" => {
                "a seat of " (product(&m.license_id)) " from "
                strong { (m.sublicense_id.as_ref().and_then(|id| c.sublicenses.iter().find(|s| &s.id == id)).map_or("?", |s| s.name.as_str())) }
            },
            _ => { "a seat of " (product(&m.license_id)) " (primary pool)" },
        }
    }
}

/// A stacked bar: used seats, free ones, seats a dynamic sublicense cannot use while the
/// primary pool is full (outlined), and the waiting list drawn past the end.
/// SVG attributes rather than inline styles, which the pages' CSP forbids.
pub(super) fn usage_bar(p: &PoolUsage) -> Markup {
    let scale = (p.seats.capacity.max(p.seats.used) + p.pending).max(1) as f64;
    let w = |n: i64| format!("{:.1}", n.max(0) as f64 / scale * 300.0);
    let blocked = (p.seats.capacity - p.seats.used - p.seats.free).max(0);
    html! {
        svg.bar width="300" height="14" viewBox="0 0 300 14" role="img"
            aria-label={ (p.seats.used) " used, " (p.pending) " pending, " (p.seats.free) " free" } {
            rect.used x="0" y="0" height="14" width=(w(p.seats.used)) {}
            rect.free x=(w(p.seats.used)) y="0" height="14" width=(w(p.seats.free)) {}
            rect.blocked x=(w(p.seats.used + p.seats.free)) y="0.5" height="13" width=(w(blocked)) {}
            rect.pending x=(w(p.seats.used + p.seats.free + blocked)) y="0" height="14" width=(w(p.pending)) {}
        }
    }
}

/// Shows only the end of a license key.
fn mask(key: &str) -> String {
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

impl From<ManageError> for HttpError {
    fn from(e: ManageError) -> HttpError {
        match e {
            ManageError::Db(e) => e.into(),
            e @ (ManageError::UnknownLicense(_)
            | ManageError::UnknownSublicense(_)
            | ManageError::UnknownKey(_)
            | ManageError::UnknownMapping(_)
            | ManageError::UnknownPolicy(_)
            | ManageError::UnknownAssignment(_)) => {
                HttpError::new(Reason::NotFound, sentence(&e.to_string()))
            }
            other => HttpError::new(Reason::BadRequest, sentence(&other.to_string())),
        }
    }
}
