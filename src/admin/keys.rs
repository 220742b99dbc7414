//! Portal: license keys (per-device seats for Macs activated without a sign-in) and the
//! devices holding their seats. Every change goes through `licensing::keys`, the code the
//! CLI and the admin API use.

use std::collections::BTreeMap;

use maud::{Markup, html};

use super::forms::{Sticky, confirmation, sentence};
use super::licenses::field;
use super::pages::{layout, token_shown_once};
use super::{Admin, Handled};
use crate::audit::Actor;
use crate::db::admin::Session;
use crate::db::keys::KeyRow;
use crate::db::licensing::{DeviceRow, LicenseRow};
use crate::domain::engine::Sublicense;
use crate::error::HttpError;
use crate::http::{Request, Response};
use crate::licensing::keys::{self, Issued, NewKeyRequest};
use crate::licensing::manage::ManageError;

const CREATE: &str = "/admin/keys";

/// Everything the page shows, read in one snapshot.
struct KeysView {
    keys: Vec<(KeyRow, Vec<DeviceRow>)>,
    licenses: Vec<LicenseRow>,
    sublicenses: Vec<Sublicense>,
    policies: Vec<crate::db::policies::PolicyRow>,
}

impl KeysView {
    /// A key's pool in words: "Engineering (Parallels Desktop)" or "Parallels Desktop,
    /// primary pool".
    fn pool(&self, k: &KeyRow) -> String {
        let product = self
            .licenses
            .iter()
            .find(|l| l.id == k.license_id)
            .map_or(k.license_id.as_str(), |l| l.product.as_str());
        match k
            .sublicense_id
            .as_deref()
            .and_then(|s| self.sublicenses.iter().find(|x| x.id == s))
        {
            Some(s) => format!("{} ({product})", s.name),
            None => format!("{product}, primary pool"),
        }
    }
}

/// What the page says above the list: nothing, a refusal, or a key to copy now.
enum Said<'a> {
    Nothing,
    Refused(&'a str),
    Issued(&'a Issued, &'a str),
}

impl Admin {
    fn keys_view(&self) -> Result<KeysView, HttpError> {
        self.db.read(|tx| {
            let mut keys = Vec::new();
            for k in crate::db::keys::list(tx, None)? {
                let devices = crate::db::licensing::devices_of_key(tx, &k.id)?;
                keys.push((k, devices));
            }
            Ok::<_, HttpError>(KeysView {
                keys,
                licenses: crate::db::licensing::licenses(tx)?,
                sublicenses: crate::db::licensing::sublicenses(tx)?,
                policies: crate::db::policies::list(tx)?,
            })
        })
    }

    fn render_keys(&self, session: &Session, said: Said<'_>, sticky: Sticky<'_>) -> Handled {
        let view = self.keys_view()?;
        let status = if matches!(said, Said::Refused(_)) {
            400
        } else {
            200
        };
        let response = Response::page(
            status,
            layout(
                "License keys",
                Some(session),
                keys_page(session, &view, &said, sticky, &self.public_url),
            ),
        );
        // A key shown once must not stay in any cache.
        Ok(match said {
            Said::Issued(..) => response.with_header("Cache-Control", "no-store"),
            _ => response,
        })
    }

    /// `GET /admin/keys`.
    pub(crate) fn keys_page(&self, session: &Session) -> Handled {
        self.render_keys(session, Said::Nothing, Sticky::none())
    }

    /// A refused change: the page again with the reason and the form as sent.
    fn keys_refused(
        &self,
        session: &Session,
        e: ManageError,
        action: &str,
        form: &BTreeMap<String, String>,
    ) -> Handled {
        match e {
            ManageError::Db(e) => Err(e.into()),
            ManageError::UnknownKey(_) => Err(e.into()),
            e => self.render_keys(
                session,
                Said::Refused(&sentence(&e.to_string())),
                Sticky::of(action, form),
            ),
        }
    }

    /// `POST /admin/keys`: a new key, shown once in this response.
    pub(crate) fn create_key(&self, req: &Request, session: &Session, actor: &Actor) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let created = (|| {
            let (license, sublicense) = field(&form, "pool")
                .split_once('/')
                .map(|(l, s)| (l, (!s.is_empty()).then_some(s)))
                .ok_or_else(|| {
                    ManageError::Invalid("Choose the pool the key draws from.".into())
                })?;
            let devices = field(&form, "devices").trim().parse::<i64>().map_err(|_| {
                ManageError::Invalid("The device limit must be a whole number, 1 or more.".into())
            })?;
            let name = field(&form, "name").trim();
            keys::create(
                &self.db,
                actor,
                &NewKeyRequest {
                    license,
                    sublicense,
                    name: (!name.is_empty()).then_some(name),
                    devices,
                },
                self.clock.now_unix(),
            )
        })();
        match created {
            Ok(issued) => {
                log::info!("{actor} created license key {}", issued.key.id);
                self.render_keys(session, Said::Issued(&issued, "Created"), Sticky::none())
            }
            Err(e) => self.keys_refused(session, e, CREATE, &form),
        }
    }

    /// `POST /admin/keys/{id}`: a new name or device limit.
    pub(crate) fn edit_key(
        &self,
        req: &Request,
        session: &Session,
        actor: &Actor,
        id: &str,
    ) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let action = format!("/admin/keys/{id}");
        let changed = field(&form, "devices")
            .trim()
            .parse::<i64>()
            .map_err(|_| {
                ManageError::Invalid("The device limit must be a whole number, 1 or more.".into())
            })
            .and_then(|devices| {
                keys::set(
                    &self.db,
                    actor,
                    id,
                    Some(field(&form, "name").trim()),
                    Some(devices),
                    self.clock.now_unix(),
                )
            });
        match changed {
            Ok(k) => {
                let over = if k.devices > k.device_limit {
                    format!(
                        " It holds {} devices, more than that: none is taken away, but it activates no more until {} are released.",
                        k.devices,
                        k.devices - k.device_limit + 1
                    )
                } else {
                    String::new()
                };
                self.flash.set(
                    session,
                    format!(
                        "Saved the license key {}: at most {} devices.{over}",
                        k.name, k.device_limit
                    ),
                );
                Ok(Response::see_other("/admin/keys"))
            }
            Err(e) => self.keys_refused(session, e, &action, &form),
        }
    }

    /// `POST /admin/keys/{id}/policy`: the policy the key's Macs get.
    pub(crate) fn key_policy(
        &self,
        req: &Request,
        session: &Session,
        actor: &Actor,
        id: &str,
    ) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let policy = Some(field(&form, "policy")).filter(|p| !p.is_empty());
        let action = format!("/admin/keys/{id}/policy");
        match crate::licensing::policies::set_key_policy(
            &self.db,
            actor,
            id,
            policy,
            self.clock.now_unix(),
        ) {
            Ok(()) => {
                self.flash.set(
                    session,
                    "Saved the key's policy. Its Macs get it at their next renewal or policy fetch."
                        .into(),
                );
                Ok(Response::see_other("/admin/keys"))
            }
            Err(e) => self.keys_refused(session, e, &action, &form),
        }
    }

    /// `POST /admin/keys/{id}/rotate`: a new secret, shown once; devices keep their seats.
    pub(crate) fn rotate_key(
        &self,
        req: &Request,
        session: &Session,
        actor: &Actor,
        id: &str,
    ) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let action = format!("/admin/keys/{id}/rotate");
        if let Err(why) = confirmation(&form, "the current key stops activating Macs") {
            return self.render_keys(session, Said::Refused(&why), Sticky::of(&action, &form));
        }
        match keys::rotate(&self.db, actor, id, self.clock.now_unix()) {
            Ok(issued) => {
                log::info!("{actor} rotated license key {}", issued.key.id);
                self.render_keys(session, Said::Issued(&issued, "Rotated"), Sticky::none())
            }
            Err(e) => self.keys_refused(session, e, &action, &form),
        }
    }

    /// `POST /admin/keys/{id}/revoke`: the key and its devices, refused at renewal.
    pub(crate) fn revoke_key(
        &self,
        req: &Request,
        session: &Session,
        actor: &Actor,
        id: &str,
    ) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let action = format!("/admin/keys/{id}/revoke");
        if let Err(why) = confirmation(&form, "its Macs are refused at their next renewal") {
            return self.render_keys(session, Said::Refused(&why), Sticky::of(&action, &form));
        }
        match keys::revoke(&self.db, actor, id, self.clock.now_unix()) {
            Ok(done) => {
                log::info!("{actor} revoked license key {}", done.key.id);
                let seated = if done.seated > 0 {
                    format!(
                        " {} waiting for a seat received one.",
                        super::forms::people(done.seated)
                    )
                } else {
                    String::new()
                };
                self.flash.set(
                    session,
                    format!(
                        "Revoked the license key {} and its {} Mac(s): each is refused at its next renewal (REVOKED), or stops at the latest when its lease ends offline.{seated}",
                        done.key.name, done.devices
                    ),
                );
                Ok(Response::see_other("/admin/keys"))
            }
            Err(e) => self.keys_refused(session, e, &action, &form),
        }
    }
}

fn keys_page(
    s: &Session,
    v: &KeysView,
    said: &Said<'_>,
    sticky: Sticky<'_>,
    public_url: &str,
) -> Markup {
    html! {
        p { a href="/admin/licenses" { "← Licenses" } }
        h1 { "License keys" }
        p.muted {
            "A license key activates Macs without anyone signing in — labs, classrooms, shared "
            "machines, mass deployment — each with a per-device seat from the key's pool, shared "
            "with the people mapped to that pool. On the Mac: "
            code { "seatgate client activate --server " (public_url) " --key SGK-…" }
            ", or the key in the configuration profile. When a person later activates the same "
            "Mac with single sign-on, it moves to their seat and the per-device seat is freed."
        }
        @match said {
            Said::Refused(n) => p.notice role="alert" { (n) },
            Said::Issued(issued, verb) => (token_shown_once(
                &format!("{verb} license key “{}”", issued.key.name),
                &issued.secret,
                html! { "Give it to whoever sets up the Macs, or put it in the configuration profile. It is stored only as a hash." },
            )),
            Said::Nothing => {},
        }
        section.card {
            h2 { "Keys" }
            @if v.keys.is_empty() { p { "No license key yet." } }
            @else {
                table {
                    thead { tr { th { "Key" } th { "Pool" } th { "Macs" } th { "Created" } th { "State" } } }
                    tbody {
                        @for (k, devices) in &v.keys { (key_row(s, v, k, devices, sticky)) }
                    }
                }
            }
        }
        section.card {
            h2 { "Create a license key" }
            @if v.licenses.is_empty() {
                p { "Register a license first: " a href="/admin/licenses" { "Licenses" } "." }
            } @else {
                form.inline method="post" action=(CREATE) {
                    input type="hidden" name="csrf" value=(s.csrf_token);
                    label { "Seats from "
                        select name="pool" required {
                            @for l in &v.licenses {
                                @let primary = format!("{}/", l.id);
                                option value=(primary) selected[sticky.chose(CREATE, "pool", &primary)] { (l.product) ", primary pool" }
                                @for sub in v.sublicenses.iter().filter(|x| x.license_id == l.id) {
                                    @let pool = format!("{}/{}", l.id, sub.id);
                                    option value=(pool) selected[sticky.chose(CREATE, "pool", &pool)] { (sub.name) " (" (l.product) ")" }
                                }
                            }
                        }
                    }
                    label { "Up to " input type="number" name="devices" min="1" max="10000000" required value=(sticky.value(CREATE, "devices", "")) placeholder="25"; " Macs" }
                    label { "Name " input type="text" name="name" maxlength="100" placeholder="e.g. Lab 3" value=(sticky.value(CREATE, "name", "")); }
                    button type="submit" { "Create key" }
                }
            }
        }
    }
}

fn key_row(
    s: &Session,
    v: &KeysView,
    k: &KeyRow,
    devices: &[DeviceRow],
    sticky: Sticky<'_>,
) -> Markup {
    let edit = format!("/admin/keys/{}", k.id);
    let rotate = format!("{edit}/rotate");
    let revoke = format!("{edit}/revoke");
    let open = sticky.is(&edit) || sticky.is(&rotate) || sticky.is(&revoke);
    html! {
        tr {
            td { strong { (k.name) } br; span.muted { code { (k.id) } " · ends in …" code { (k.hint) } } }
            td { (v.pool(k)) }
            td {
                (k.devices) " of " (k.device_limit)
                @if k.devices > k.device_limit { br; span.bad { "over by " (k.devices - k.device_limit) } }
            }
            td.when { (crate::admin::audit::when(k.created_at)) }
            td {
                @match k.revoked_at {
                    Some(t) => { span.bad { "revoked" } " " (crate::admin::audit::when(t)) },
                    None => span.ok { "active" },
                }
                @if let Some(t) = k.rotated_at { br; span.muted { "rotated " (crate::admin::audit::when(t)) } }
            }
        }
        @if k.revoked_at.is_none() || !devices.is_empty() {
            tr.details { td colspan="5" {
                details open[open] {
                    summary { "Macs and changes for " (k.name) }
                    @if devices.is_empty() { p.muted { "No Mac holds a seat of this key." } }
                    @else {
                        table {
                            thead { tr { th { "Mac" } th { "Activated" } th { "Last seen" } th { "Lease until" } th {} } }
                            tbody { @for d in devices { tr {
                                td { (d.name) br; span.muted { (d.os) " · " code { (d.id) } } }
                                td.when { (crate::admin::audit::when(d.created_at)) }
                                td.when { (crate::admin::audit::when(d.last_seen_at)) }
                                td.when { (crate::admin::audit::when(d.lease_expires_at)) }
                                td {
                                    form.inline method="post" action={ "/admin/devices/" (d.id) "/deactivate" } {
                                        input type="hidden" name="csrf" value=(s.csrf_token);
                                        label { input type="checkbox" name="confirm" value="yes" required; " The device is revoked" }
                                        button.danger type="submit" aria-label={ "Deactivate " (d.name) } { "Deactivate" }
                                    }
                                }
                            } } }
                        }
                    }
                    @if k.revoked_at.is_none() {
                        form.inline method="post" action=(edit) {
                            input type="hidden" name="csrf" value=(s.csrf_token);
                            label { "Name " input type="text" name="name" maxlength="100" required value=(sticky.value(&edit, "name", &k.name)); }
                            label { "Up to " input type="number" name="devices" min="1" max="10000000" required value=(sticky.value(&edit, "devices", &k.device_limit.to_string())); " Macs" }
                            button type="submit" { "Save " (k.name) }
                        }
                        form.inline method="post" action={ (edit) "/policy" } {
                            input type="hidden" name="csrf" value=(s.csrf_token);
                            label { "Policy of its Macs " select name="policy" {
                                option value="" selected[k.policy_id.is_none()] { "The default policy" }
                                @for p in &v.policies { option value=(p.id) selected[k.policy_id.as_deref() == Some(p.id.as_str())] { (p.name) } }
                            } }
                            button type="submit" { "Set policy" }
                        }
                        form.inline method="post" action=(rotate) {
                            input type="hidden" name="csrf" value=(s.csrf_token);
                            label { input type="checkbox" name="confirm" value="yes" required; " The current key stops activating Macs (those activated keep their seats)" }
                            button type="submit" { "Rotate " (k.name) }
                        }
                        form.inline method="post" action=(revoke) {
                            input type="hidden" name="csrf" value=(s.csrf_token);
                            label { input type="checkbox" name="confirm" value="yes" required; " Its " (k.devices) " Mac(s) are refused at their next renewal" }
                            button.danger type="submit" { "Revoke " (k.name) }
                        }
                    }
                }
            } }
        }
    }
}
