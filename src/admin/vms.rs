//! The fleet's virtual machines, as devices report them at renewal: the portal's
//! "Virtual machines" page with its filters, the CSV export and `/api/v1/admin/vms`, all
//! through `licensing::inventory`.

use maud::{Markup, html};
use serde_json::{Value, json};

use super::csv;
use super::pages::layout;
use super::{Admin, Handled};
use crate::clock::rfc3339;
use crate::db::admin::Session;
use crate::db::inventory::VmRow;
use crate::http::{Request, Response, percent_encode, query_param};
use crate::licensing::inventory::{self, EXPIRING_SECS, Query};

const PAGE_SIZE: i64 = 100;
const CSV_MAX: i64 = 200_000;
const API_MAX: i64 = 1_000;

/// A yes/no filter: absent or empty is no; anything but 1/true/yes/on or 0/false/no/off
/// is refused rather than read as no.
fn flag(req: &Request, name: &str) -> Result<bool, crate::error::HttpError> {
    match query_param(&req.query, name)?.as_deref() {
        None | Some("" | "0" | "false" | "no" | "off") => Ok(false),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some(_) => Err(crate::error::HttpError::new(
            crate::domain::problem::Reason::BadRequest,
            format!("{name} must be true or false."),
        )),
    }
}

fn text(req: &Request, name: &str) -> Result<Option<String>, crate::error::HttpError> {
    Ok(query_param(&req.query, name)?
        .map(|v| v.trim().chars().take(256).collect::<String>())
        .filter(|v| !v.is_empty()))
}

fn query_of(req: &Request) -> Result<Query, crate::error::HttpError> {
    Ok(Query {
        user: text(req, "user")?,
        group: text(req, "group")?,
        guest_os: text(req, "guest_os")?,
        unencrypted: flag(req, "unencrypted")?,
        expiring: flag(req, "expiring")?,
        outdated: flag(req, "outdated")?,
    })
}

/// The query as a link's parameters (for the CSV link and the pages).
fn params(q: &Query) -> String {
    let mut p = Vec::new();
    for (k, v) in [
        ("user", &q.user),
        ("group", &q.group),
        ("guest_os", &q.guest_os),
    ] {
        if let Some(v) = v {
            p.push(format!("{k}={}", percent_encode(v)));
        }
    }
    for (k, on) in [
        ("unencrypted", q.unencrypted),
        ("expiring", q.expiring),
        ("outdated", q.outdated),
    ] {
        if on {
            p.push(format!("{k}=1"));
        }
    }
    p.join("&")
}

/// A VM's expiry in words: expired, expiring, or its date.
fn expiry(v: &VmRow, now: i64) -> (&'static str, String) {
    match v.vm.expires_at {
        None => ("", "never".into()),
        Some(t) if t < now => ("bad", format!("expired {}", &rfc3339(t)[..10])),
        Some(t) if t < now + EXPIRING_SECS => ("warn", format!("expires {}", &rfc3339(t)[..10])),
        Some(t) => ("", rfc3339(t)[..10].to_string()),
    }
}

/// Whether a VM's image version is older than the newest of its image in the fleet.
fn outdated(v: &VmRow, latest: Option<&String>) -> bool {
    match (&v.vm.image_version, latest) {
        (Some(mine), Some(l)) => crate::domain::inventory::compare_versions(mine, l).is_lt(),
        _ => false,
    }
}

fn vm_json(v: &VmRow, latest: Option<&String>) -> Value {
    json!({
        "uuid": v.vm.uuid, "name": v.vm.name, "guest_os": v.vm.guest_os,
        "image": v.vm.image_name.as_ref().map(|n| json!({"name": n, "version": v.vm.image_version,
            "latest": latest, "outdated": outdated(v, latest)})),
        "encrypted": v.vm.encrypted, "expires_at": v.vm.expires_at.map(rfc3339),
        "last_started_at": v.vm.last_started_at.map(rfc3339),
        "device": {"id": v.device_id, "name": v.device_name, "reported_at": v.reported_at.map(rfc3339)},
        "user": v.user,
    })
}

impl Admin {
    /// `GET /admin/vms`.
    pub(crate) fn vms_page(&self, req: &Request, session: &Session) -> Handled {
        let q = query_of(req)?;
        let page: i64 = query_param(&req.query, "page")?
            .and_then(|p| p.parse().ok())
            .unwrap_or(1)
            .clamp(1, 1_000_000);
        let now = self.clock.now_unix();
        let listing = inventory::list(&self.db, &q, (page - 1) * PAGE_SIZE, PAGE_SIZE, now)?;
        let body = vms_page(&q, &listing, page, now);
        Ok(Response::page(
            200,
            layout("Virtual machines", Some(session), body),
        ))
    }

    /// `GET /admin/vms.csv`: every VM the filters match.
    pub(crate) fn vms_csv(&self, req: &Request) -> Handled {
        let q = query_of(req)?;
        let now = self.clock.now_unix();
        let listing = inventory::list(&self.db, &q, 0, CSV_MAX, now)?;
        let mut out = csv::Writer::new(&[
            "vm_uuid",
            "vm_name",
            "guest_os",
            "image",
            "image_version",
            "latest_image_version",
            "encrypted",
            "expires_at",
            "last_started_at",
            "device_id",
            "device_name",
            "user",
            "reported_at",
        ]);
        for v in &listing.rows {
            let latest = v.vm.image_name.as_ref().and_then(|n| listing.latest.get(n));
            out.row(&[
                &v.vm.uuid,
                &v.vm.name,
                &v.vm.guest_os,
                v.vm.image_name.as_deref().unwrap_or(""),
                v.vm.image_version.as_deref().unwrap_or(""),
                latest.map_or("", String::as_str),
                if v.vm.encrypted { "yes" } else { "no" },
                &v.vm.expires_at.map(rfc3339).unwrap_or_default(),
                &v.vm.last_started_at.map(rfc3339).unwrap_or_default(),
                &v.device_id,
                &v.device_name,
                v.user.as_deref().unwrap_or(""),
                &v.reported_at.map(rfc3339).unwrap_or_default(),
            ]);
        }
        Ok(out.into_response("virtual-machines.csv"))
    }

    /// `GET /api/v1/admin/vms`: the same filters, `offset` and `limit` (at most 1,000).
    pub(crate) fn api_vms(&self, req: &Request) -> Handled {
        let q = query_of(req)?;
        let number =
            |name: &str, default: i64, range: std::ops::RangeInclusive<i64>| match query_param(
                &req.query, name,
            )? {
                None => Ok(default),
                Some(v) => v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| {
                        crate::error::HttpError::new(
                            crate::domain::problem::Reason::BadRequest,
                            format!(
                                "{name} must be a whole number from {} to {}.",
                                range.start(),
                                range.end()
                            ),
                        )
                    }),
            };
        let offset = number("offset", 0, 0..=i64::MAX)?;
        let limit = number("limit", 100, 1..=API_MAX)?;
        let listing = inventory::list(&self.db, &q, offset, limit, self.clock.now_unix())?;
        let vms: Vec<Value> = listing
            .rows
            .iter()
            .map(|v| {
                vm_json(
                    v,
                    v.vm.image_name.as_ref().and_then(|n| listing.latest.get(n)),
                )
            })
            .collect();
        Ok(Response::json(
            200,
            &json!({"total": listing.total, "offset": offset, "limit": limit, "vms": vms}),
        ))
    }
}

fn vms_page(q: &Query, l: &inventory::Listing, page: i64, now: i64) -> Markup {
    let last = ((l.total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    let link = |p: i64| format!("/admin/vms?{}&page={p}", params(q));
    html! {
        h1 { "Virtual machines" }
        p.muted {
            "The virtual machines each Mac reported at its last renewal (the reference client: "
            code { "seatgate client renew --vms FILE" } "). A Mac released or revoked drops out of this list; its report is forgotten 30 days later."
        }
        form.search method="get" action="/admin/vms" {
            label { "User or Mac " input type="search" name="user" value=(q.user.as_deref().unwrap_or("")) placeholder="name or email"; }
            label { "Group " input type="text" name="group" value=(q.group.as_deref().unwrap_or("")); }
            label { "Guest OS " select name="guest_os" {
                option value="" { "Any" }
                @for os in &l.guest_systems { option value=(os) selected[q.guest_os.as_deref() == Some(os.as_str())] { (os) } }
            } }
            label.check { input type="checkbox" name="unencrypted" value="1" checked[q.unencrypted]; " Unencrypted" }
            label.check { input type="checkbox" name="expiring" value="1" checked[q.expiring]; " Expired or expiring within 30 days" }
            label.check { input type="checkbox" name="outdated" value="1" checked[q.outdated]; " Outdated image version" }
            button type="submit" { "Filter" }
        }
        p { (l.total) " virtual machine(s). " a href={ "/admin/vms.csv?" (params(q)) } { "Download as CSV" } }
        @if !l.rows.is_empty() {
            table.vms {
                thead { tr { th { "Virtual machine" } th { "Guest OS" } th { "Image" } th { "Encrypted" } th { "Expires" } th { "Last started" } th { "Mac and user" } } }
                tbody { @for v in &l.rows {
                    @let latest = v.vm.image_name.as_ref().and_then(|n| l.latest.get(n));
                    @let (class, expires) = expiry(v, now);
                    tr {
                        td { strong { (v.vm.name) } br; code.small { (v.vm.uuid) } }
                        td { (v.vm.guest_os) }
                        td { @match &v.vm.image_name {
                            Some(n) => { (n) " " (v.vm.image_version.as_deref().unwrap_or(""))
                                @if let Some(latest) = latest.filter(|l| outdated(v, Some(l))) {
                                    br; span.bad { "outdated (latest " (latest) ")" } } },
                            None => span.muted { "none" },
                        } }
                        td { @if v.vm.encrypted { "yes" } @else { span.bad { "no" } } }
                        td { span class=(class) { (expires) } }
                        td.when { @match v.vm.last_started_at { Some(t) => (super::audit::when(t)), None => span.muted { "never" } } }
                        td { (v.device_name) br; span.muted { (v.user.as_deref().unwrap_or("license key device")) } }
                    }
                } }
            }
            @if last > 1 {
                nav.pages {
                    @if page > 1 { a href=(link(page - 1)) { "← Previous" } " " }
                    "Page " (page) " of " (last)
                    @if page < last { " " a href=(link(page + 1)) { "Next →" } }
                }
            }
        }
    }
}
