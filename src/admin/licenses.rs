//! Portal: licenses, sublicenses and group mappings, with seat usage per pool. Every
//! change goes through `licensing::manage` (validated, audited, reconciled in the same
//! transaction), the code the CLI uses.

use crate::audit::Actor;
use std::collections::BTreeMap;

use maud::{Markup, html};

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
    pub(crate) fn licenses_page(&self, session: &Session, notice: Option<&str>) -> Handled {
        let now = self.clock.now_unix();
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
                page(session, &catalog, notice, now),
            ),
        ))
    }

    /// Runs a change and shows the page again, with the change's error if it failed.
    /// `actor` is who the pipeline says made the change.
    fn after_change(
        &self,
        session: &Session,
        actor: &Actor,
        change: impl FnOnce(&Actor) -> Result<(), ManageError>,
    ) -> Handled {
        match change(actor) {
            Ok(()) => Ok(Response::see_other("/admin/licenses")),
            Err(ManageError::Db(e)) => Err(e.into()),
            Err(e) => self.licenses_page(session, Some(&e.to_string())),
        }
    }

    pub(crate) fn add_license(&self, req: &Request, session: &Session, actor: &Actor) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        self.after_change(session, actor, |actor| {
            let seats = parse_seats(field(&form, "seats"))?;
            let expires_at = parse_optional_date(field(&form, "expires"))?;
            let key = field(&form, "key").trim();
            manage::add_license(
                &self.db,
                actor,
                &NewLicense {
                    product: field(&form, "product"),
                    seats,
                    expires_at,
                    key: (!key.is_empty()).then_some(key),
                },
            )
            .map(drop)
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
            Ok(_) => Ok(Response::see_other("/admin/licenses")),
            Err(ImportError::Db(e)) => Err(e.into()),
            Err(e) => {
                let message = e.to_string();
                let code = crate::domain::problem::Problem::from(e).reason.code();
                self.licenses_page(session, Some(&format!("{message} (reason code {code})")))
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
        self.after_change(session, actor, |actor| {
            let seats = parse_seats(field(&form, "seats"))?;
            let expires_at = parse_optional_date(field(&form, "expires"))?;
            manage::set_license(&self.db, actor, id, Some(seats), Some(expires_at)).map(drop)
        })
    }

    pub(crate) fn add_sublicense(
        &self,
        req: &Request,
        session: &Session,
        actor: &Actor,
    ) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        self.after_change(session, actor, |actor| {
            let seats = parse_seats(field(&form, "seats"))?;
            let expires_at = parse_optional_date(field(&form, "expires"))?;
            manage::add_sublicense(
                &self.db,
                actor,
                &NewSublicense {
                    license: field(&form, "license"),
                    name: field(&form, "name"),
                    seats,
                    reserved: field(&form, "allocation") == "reserved",
                    expires_at,
                },
            )
            .map(drop)
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
        self.after_change(session, actor, |actor| {
            let seats = parse_seats(field(&form, "seats"))?;
            let expires_at = parse_optional_date(field(&form, "expires"))?;
            manage::set_sublicense(&self.db, actor, id, Some(seats), Some(expires_at)).map(drop)
        })
    }

    pub(crate) fn remove_sublicense(&self, session: &Session, actor: &Actor, id: &str) -> Handled {
        self.after_change(session, actor, |actor| {
            manage::remove_sublicense(&self.db, actor, id)
        })
    }

    pub(crate) fn add_mapping(&self, req: &Request, session: &Session, actor: &Actor) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        self.after_change(session, actor, |actor| {
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
            manage::add_mapping(&self.db, actor, field(&form, "group"), connection, to).map(drop)
        })
    }

    pub(crate) fn remove_mapping(&self, session: &Session, actor: &Actor, id: &str) -> Handled {
        self.after_change(session, actor, |actor| {
            manage::remove_mapping(&self.db, actor, id).map(drop)
        })
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

fn date_value(t: Option<i64>) -> String {
    t.map(|t| rfc3339(t)[..10].to_string()).unwrap_or_default()
}

fn page(s: &Session, c: &Catalog, notice: Option<&str>, now: i64) -> Markup {
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
                        Some(t) if t < now => span.bad { "expired " (rfc3339(t)) },
                        Some(t) => { "expires " (rfc3339(t)) },
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
                                        details {
                                            summary { "Change or remove " (p.name) }
                                            form.inline method="post" action={ "/admin/sublicenses/" (sub_id) } {
                                                input type="hidden" name="csrf" value=(s.csrf_token);
                                                label { "Seats " input type="number" name="seats" min="0" value=(p.seats.capacity) required; }
                                                label { "Expires (empty: never) " input type="date" name="expires" value=(date_value(p.expires_at)); }
                                                button type="submit" { "Save " (p.name) }
                                            }
                                            form.inline method="post" action={ "/admin/sublicenses/" (sub_id) "/delete" } {
                                                input type="hidden" name="csrf" value=(s.csrf_token);
                                                button.danger type="submit" { "Remove " (p.name) }
                                                span.muted { " only once no group mapping and no user draws from it" }
                                            }
                                        }
                                    }
                                }
                                td {
                                    (p.seats.used) " / " (p.pending) " / " (p.seats.free) " of " (p.seats.capacity)
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
                @if entitlement.is_none() {
                    details {
                        summary { "Change seats or expiry" }
                        form.inline method="post" action={ "/admin/licenses/" (l.id) } {
                            input type="hidden" name="csrf" value=(s.csrf_token);
                            label { "Seats " input type="number" name="seats" min="0" value=(l.seats) required; }
                            label { "Expires (empty: never) " input type="date" name="expires" value=(date_value(l.expires_at)); }
                            button type="submit" { "Save" }
                        }
                    }
                }
            }
        }
        (mappings_card(s, c))
        @if !c.licenses.is_empty() { (add_sublicense_card(s, c)) }
        (import_card(s))
        (register_card(s))
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
fn import_card(s: &Session) -> Markup {
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
                label { "Entitlement " textarea name="entitlement" rows="4" required {} }
                button type="submit" { "Import" }
            }
        }
    }
}

/// The group mappings and the form that adds one.
fn mappings_card(s: &Session, c: &Catalog) -> Markup {
    html! {
        section.card {
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
                            form method="post" action={ "/admin/mappings/" (m.id) "/delete" } {
                                input type="hidden" name="csrf" value=(s.csrf_token);
                                button.danger type="submit" { "Remove" }
                            }
                        }
                    } } }
                }
            }
            h3 { "Map a group" }
            form.inline method="post" action="/admin/mappings" {
                input type="hidden" name="csrf" value=(s.csrf_token);
                label { "Group " input type="text" name="group" required placeholder="e.g. Engineering"; }
                label { "From "
                    select name="connection" {
                        @for (id, name) in &c.connections {
                            option value=(id) { (name) " (" (id) ")" }
                        }
                        option value="" { "SCIM tokens without a connection" }
                    }
                }
                label { "Grants "
                    select name="role" required {
                        option value="admins" { "Admin access to this portal" }
                        @for l in &c.licenses {
                            option value={ "primary:" (l.id) } { "A seat of " (l.product) " (primary pool)" }
                            @for sub in c.sublicenses.iter().filter(|x| x.license_id == l.id) {
                                option value={ "sublicense:" (sub.id) } { "A seat of " (l.product) " from " (sub.name) }
                            }
                        }
                    }
                }
                button type="submit" { "Add mapping" }
            }
        }
    }
}

fn add_sublicense_card(s: &Session, c: &Catalog) -> Markup {
    html! {
        section.card {
            h2 { "Add a sublicense" }
            p.muted { "A named slice of a license for a group. " strong { "Reserved" } ": its seats are set aside for it. "
                strong { "Dynamic" } ": it draws from the primary pool, up to its limit." }
            form.inline method="post" action="/admin/sublicenses" {
                input type="hidden" name="csrf" value=(s.csrf_token);
                label { "License " select name="license" { @for l in &c.licenses { option value=(l.id) { (l.product) } } } }
                label { "Name " input type="text" name="name" required placeholder="e.g. Engineering"; }
                label { "Seats " input type="number" name="seats" min="0" required; }
                label { "Allocation " select name="allocation" { option value="reserved" { "reserved" } option value="dynamic" { "dynamic" } } }
                label { "Expires (optional) " input type="date" name="expires"; }
                button type="submit" { "Add sublicense" }
            }
        }
    }
}

fn register_card(s: &Session) -> Markup {
    html! {
        section.card {
            h2 { "Register a license" }
            form.inline method="post" action="/admin/licenses" {
                input type="hidden" name="csrf" value=(s.csrf_token);
                label { "Product " input type="text" name="product" required; }
                label { "Seats " input type="number" name="seats" min="0" required; }
                label { "Expires (optional) " input type="date" name="expires"; }
                label { "License key (optional) " input type="text" name="key"; }
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
            other => HttpError::new(Reason::BadRequest, other.to_string()),
        }
    }
}
