//! Portal: identity provider connections. A guided setup per preset (the values to copy
//! into the IdP, then its metadata), each connection's details (certificate expiry,
//! metadata refresh, a test sign-in), SCIM tokens shown once, and the last SCIM requests.

use crate::audit::Actor;
use maud::{Markup, html};

use super::licenses::field;
use super::pages::{layout, token_list, token_shown_once};
use super::{Admin, Handled};
use crate::db::admin::Session;
use crate::db::idp::Connection;
use crate::db::tokens::{self, Scope};
use crate::domain::problem::Reason;
use crate::error::HttpError;
use crate::http::Request;
use crate::http::Response;
use crate::saml::connections::{self, AddRequest};
use crate::saml::metadata::{acs_url, sp_entity_id};
use crate::saml::preset::{self, PRESETS, Preset};

/// Certificates closer than this to expiry are flagged.
const CERT_WARNING_SECS: i64 = 30 * 24 * 3600;

impl Admin {
    pub(crate) fn connections_page(
        &self,
        session: &Session,
        token: Option<(&str, &str)>,
    ) -> Handled {
        let (connections, scim_tokens, requests) = self.db.read(|tx| {
            Ok::<_, HttpError>((
                crate::db::idp::list(tx)?,
                tokens::list(tx, Scope::Scim)?,
                crate::db::directory::recent_scim_requests(tx, 0, 20)?,
            ))
        })?;
        let now = self.clock.now_unix();
        let scim_base = format!("{}/scim/v2", self.public_url);
        let scopes: Vec<(String, String)> = connections
            .iter()
            .map(|c| (c.id.clone(), c.name.clone()))
            .collect();
        Ok(Response::page(
            200,
            layout(
                "Identity providers",
                Some(session),
                html! {
                    h1 { "Identity providers" }
                    @if let Some((name, secret)) = token { (token_once(name, secret, &scim_base)) }
                    section.card {
                        h2 { "SAML connections" }
                        @if connections.is_empty() { p { "None yet." } }
                        @else {
                            table {
                                thead { tr { th { "Connection" } th { "Domains" } th { "Signing certificate" } th {} } }
                                tbody { @for c in &connections { tr {
                                    td { a href={ "/admin/idp/" (c.id) } { strong { (c.name) } } br; span.muted { (preset_label(&c.preset)) } }
                                    td { (c.domains.join(", ")) }
                                    td { (cert_expiry(c, now)) }
                                    td { a.button href={ "/saml/login/" (c.id) } { "Test sign-in" } }
                                } } }
                            }
                        }
                        p { a.button href="/admin/idp/new" { "Connect an identity provider" } }
                    }
                    section.card {
                        h2 { "SCIM provisioning" }
                        p { "SCIM base URL (Tenant URL): " code { (scim_base) } }
                        (token_list(&scim_tokens, &session.csrf_token, "/admin/idp/scim-tokens",
                            "/admin/idp/scim-token", "Create a SCIM token", "e.g. Okta provisioning", Some(&scopes)))
                        h3 { "Last SCIM requests" }
                        @if requests.is_empty() { p { "None received yet." } }
                        @else {
                            table {
                                thead { tr { th { "When" } th { "Request" } th { "Outcome" } th { "Detail" } } }
                                tbody { @for r in &requests { tr {
                                    td.when { (crate::admin::audit::when(r.at)) }
                                    td { code { (r.method) " " (r.path) } }
                                    td { @if r.status < 400 { span.ok { (r.status) } } @else { span.bad { (r.status) } " " (r.scim_type.as_deref().unwrap_or("")) } }
                                    td.detail { (r.detail.as_deref().unwrap_or("")) }
                                } } }
                            }
                        }
                    }
                },
            ),
        ))
    }

    /// Revokes a SCIM token: the IdP using it gets 401 from its next request.
    pub(crate) fn revoke_scim_token(
        &self,
        req: &Request,
        session: &Session,
        actor: &Actor,
        id: &str,
    ) -> Handled {
        super::forms::confirmed(req, "whatever uses the token stops working")?;
        let revoked = self
            .db
            .write(|tx| tokens::revoke(tx, Scope::Scim, id, actor))?;
        if revoked == 0 {
            return Err(HttpError::new(
                Reason::NotFound,
                "There is no active SCIM token with that id.",
            ));
        }
        log::info!("{actor} revoked SCIM token {id}");
        self.flash.set(
            session,
            "Revoked the SCIM token: the identity provider's provisioning with it is refused from now on.".into(),
        );
        Ok(Response::see_other("/admin/idp"))
    }

    pub(crate) fn create_scim_token(
        &self,
        req: &Request,
        session: &Session,
        actor: &Actor,
    ) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let name = field(&form, "name").trim().to_string();
        let connection = Some(field(&form, "connection").trim()).filter(|c| !c.is_empty());
        let (_, secret) = self.new_token(Scope::Scim, &name, connection, actor)?;
        // Shown once, in this response only; never stored in clear, never in a URL.
        self.connections_page(session, Some((&name, &secret)))
            .map(|r| r.with_header("Cache-Control", "no-store"))
    }

    /// Step 1: preset and name. Step 2 (both given): the values to copy into the IdP, and
    /// the form for its metadata.
    pub(crate) fn new_connection_page(
        &self,
        req: &Request,
        session: &Session,
        notice: Option<&str>,
    ) -> Handled {
        let query = crate::http::parse_form(req.query.as_bytes())?;
        let form = if req.method == "POST" {
            crate::http::parse_form(&req.body)?
        } else {
            query
        };
        let chosen = preset::find(field(&form, "preset"));
        let name = field(&form, "name").trim();
        let id = connections::slug(name);
        let taken = !id.is_empty() && self.db.read(|tx| crate::db::idp::id_taken(tx, &id))?;
        let body = html! {
            p { a href="/admin/idp" { "← Identity providers" } }
            h1 { "Connect an identity provider" }
            @if let Some(n) = notice { p.notice role="alert" { (n) } }
            section.card {
                h2 { "1. Which identity provider, and a name for it" }
                form.inline method="get" action="/admin/idp/new" {
                    label { "Identity provider "
                        select name="preset" {
                            @for p in PRESETS { option value=(p.key) selected[chosen.is_some_and(|c| c.key == p.key)] { (p.label) } }
                        }
                    }
                    label { "Name " input type="text" name="name" value=(name) required placeholder="e.g. Contoso Entra"; }
                    button type="submit" { "Next" }
                }
                @if taken { p.notice { "A connection named like that exists; choose another name." } }
            }
            @if let (Some(p), false, false) = (chosen, id.is_empty(), taken) {
                (copy_values(p, &self.public_url, &id, ScimToken::AfterCreation))
                section.card {
                    h2 { "3. Give seatgate the IdP's metadata" }
                    form method="post" action="/admin/idp" {
                        input type="hidden" name="csrf" value=(session.csrf_token);
                        input type="hidden" name="preset" value=(p.key);
                        input type="hidden" name="name" value=(name);
                        label for="domains" { "Email domains this IdP signs in (comma-separated)" }
                        input #domains type="text" name="domains" value=(field(&form, "domains")) required placeholder="contoso.com";
                        label for="metadata_url" { "Metadata URL (preferred: refreshed daily, so certificate rollovers need no action)" }
                        input #metadata_url type="url" name="metadata_url" value=(field(&form, "metadata_url")) placeholder="https://…";
                        label for="metadata_xml" { "…or the metadata XML" }
                        textarea #metadata_xml name="metadata_xml" rows="6" { (field(&form, "metadata_xml")) }
                        button type="submit" { "Create the connection" }
                    }
                }
            }
        };
        let status = if notice.is_some() { 400 } else { 200 };
        Ok(Response::page(
            status,
            layout("Connect an identity provider", Some(session), body),
        ))
    }

    pub(crate) fn create_connection(
        &self,
        req: &Request,
        session: &Session,
        actor: &Actor,
    ) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let url = field(&form, "metadata_url").trim();
        let (xml, source) = if !url.is_empty() {
            let ca = self.metadata_ca_file.as_deref().map(std::path::Path::new);
            let fetched = crate::saml::fetch::MetadataFetcher::new(ca).and_then(|f| f.fetch(url));
            match fetched {
                Ok(xml) => (xml, url.to_string()),
                Err(e) => return self.new_connection_page(req, session, Some(&e.to_string())),
            }
        } else {
            (
                field(&form, "metadata_xml").to_string(),
                "uploaded in the admin portal".to_string(),
            )
        };
        let domains: Vec<String> = field(&form, "domains")
            .split([',', ' '])
            .filter(|d| !d.trim().is_empty())
            .map(str::to_string)
            .collect();
        let added = connections::add(
            &self.db,
            &AddRequest {
                actor,
                name: field(&form, "name"),
                preset: field(&form, "preset"),
                metadata_xml: &xml,
                metadata_source: &source,
                domains: &domains,
                jit_users: None,
                sign_requests: false,
                allow_idp_initiated: false,
            },
        );
        match added {
            Ok(a) => {
                log::info!(
                    "admin:{} added IdP connection {}",
                    session.display_name,
                    a.id
                );
                Ok(Response::see_other(&format!("/admin/idp/{}", a.id)))
            }
            Err(connections::AddError::Db(e)) => Err(e.into()),
            Err(e) => self.new_connection_page(req, session, Some(&e.to_string())),
        }
    }

    /// `POST /admin/idp/{id}/options`: the connection's switches, with the rules of `idp set`.
    pub(crate) fn set_connection_options(
        &self,
        req: &Request,
        session: &Session,
        actor: &Actor,
        id: &str,
    ) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let on = |k: &str| field(&form, k) == "on";
        let options = crate::db::idp::Options {
            jit_users: on("jit_users"),
            sign_requests: on("sign_requests"),
            allow_idp_initiated: on("allow_idp_initiated"),
        };
        connections::set_options(&self.db, id, &options, actor)
            .map_err(crate::domain::problem::Problem::from)?;
        log::info!("{actor} changed the options of IdP connection {id}");
        let yes = |b: bool| if b { "on" } else { "off" };
        self.flash.set(
            session,
            format!(
                "Saved: users created at first sign-in {}, signed AuthnRequests {}, IdP-initiated sign-in {}.",
                yes(options.jit_users),
                yes(options.sign_requests),
                yes(options.allow_idp_initiated)
            ),
        );
        Ok(Response::see_other(&format!("/admin/idp/{id}")))
    }

    /// `POST /admin/idp/{id}/metadata`: new metadata from the same IdP.
    pub(crate) fn replace_connection_metadata(
        &self,
        req: &Request,
        session: &Session,
        actor: &Actor,
        id: &str,
    ) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let xml = field(&form, "metadata_xml");
        let trusted =
            connections::update_metadata(&self.db, id, xml, "updated in the admin portal", actor)
                .map_err(crate::domain::problem::Problem::from)?;
        log::info!("{actor} replaced the metadata of IdP connection {id}");
        self.flash.set(
            session,
            format!("Replaced the metadata: {trusted} signing certificate(s) trusted from now on."),
        );
        Ok(Response::see_other(&format!("/admin/idp/{id}")))
    }

    /// Removes a connection once the admin confirmed it.
    pub(crate) fn remove_connection(
        &self,
        req: &Request,
        session: &Session,
        actor: &Actor,
        id: &str,
    ) -> Handled {
        super::forms::confirmed(req, "this connection's users can no longer sign in")?;
        let removed = connections::remove(&self.db, id, actor).map_err(|e| match e {
            connections::AddError::UnknownConnection(_) => HttpError::not_found(),
            e => {
                log::error!("cannot remove IdP connection {id}: {e}");
                HttpError::internal()
            }
        })?;
        log::info!("{actor} removed IdP connection {id}: {removed}");
        self.flash
            .set(session, format!("Removed the connection {id}: {removed}."));
        Ok(Response::see_other("/admin/idp"))
    }

    /// A SCIM token for one connection's provisioning, shown once on its page.
    pub(crate) fn create_connection_scim_token(
        &self,
        session: &Session,
        actor: &Actor,
        id: &str,
    ) -> Handled {
        let connection = self
            .db
            .read(crate::db::idp::list)?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(HttpError::not_found)?;
        let name = format!("{} provisioning", connection.name);
        let (_, secret) = self
            .db
            .write(|tx| tokens::create(tx, Scope::Scim, &name, actor, Some(id)))?;
        log::info!("admin:{} created SCIM token {name:?}", session.display_name);
        // Shown once, in this response only; never stored in clear, never in a URL.
        self.connection_page(session, id, Some((&name, &secret)))
            .map(|r| r.with_header("Cache-Control", "no-store"))
    }

    pub(crate) fn connection_page(
        &self,
        session: &Session,
        id: &str,
        new_token: Option<(&str, &str)>,
    ) -> Handled {
        let (connection, sign_ins) = self.db.read(|tx| {
            let c = crate::db::idp::list(tx)?.into_iter().find(|c| c.id == id);
            Ok::<_, HttpError>((c, crate::db::admin::recent_sign_ins(tx, false, 200)?))
        })?;
        let Some(c) = connection else {
            return Err(HttpError::not_found());
        };
        let p = preset::find(&c.preset).unwrap_or(&PRESETS[PRESETS.len() - 1]);
        let now = self.clock.now_unix();
        let sign_ins: Vec<_> = sign_ins
            .iter()
            .filter(|s| s.connection_id.as_deref() == Some(id))
            .take(10)
            .collect();
        Ok(Response::page(
            200,
            layout(
                &c.name,
                Some(session),
                html! {
                    p { a href="/admin/idp" { "← Identity providers" } }
                    h1 { (c.name) " " span.muted { (p.label) } }
                    @if let Some((name, secret)) = new_token {
                        (token_once(name, secret, &format!("{}/scim/v2", self.public_url)))
                    }
                    p { a.button href={ "/saml/login/" (c.id) } { "Test sign-in" }
                        span.muted { " Signs you in at the IdP and shows what it sent: identity, email, groups, and whether you are an admin." } }
                    (copy_values(p, &self.public_url, &c.id, ScimToken::Generate { csrf: &session.csrf_token }))
                    section.card {
                        h2 { "What seatgate knows about the IdP" }
                        dl {
                            dt { "Email domains" } dd { (c.domains.join(", ")) }
                            dt { "IdP entity ID" } dd { code { (c.idp_entity_id) } }
                            dt { "IdP sign-on URL" } dd { code { (c.sso_url) } }
                            dt { "Signing certificates" } dd { (cert_expiry(&c, now)) }
                            dt { "Metadata" } dd {
                                (c.metadata_source)
                                @if let Some(r) = &c.refresh {
                                    br; "Refreshed daily; last success "
                                    @match r.last_success_at { Some(at) => (crate::admin::audit::when(at)), None => "never" }
                                    @if let Some(e) = &r.last_error { br; span.bad { "Last refresh failed: " (e) } }
                                }
                            }
                        }
                    }
                    section.card #metadata {
                        h2 { "Update the IdP's metadata" }
                        p.muted {
                            @if c.refresh.is_some() { "This connection's metadata comes from a URL and is refreshed daily; paste XML here to replace it now. " }
                            "After a certificate rollover at the IdP, paste its new metadata XML: the same IdP only (entity ID " code { (c.idp_entity_id) } "). Users, seats and settings stay."
                        }
                        form method="post" action={ "/admin/idp/" (c.id) "/metadata" } {
                            input type="hidden" name="csrf" value=(session.csrf_token);
                            label for="metadata_xml" { "Metadata XML" }
                            textarea #metadata_xml name="metadata_xml" rows="4" required {}
                            button type="submit" { "Replace the metadata" }
                        }
                    }
                    section.card #options {
                        h2 { "Options" }
                        form method="post" action={ "/admin/idp/" (c.id) "/options" } {
                            input type="hidden" name="csrf" value=(session.csrf_token);
                            label { input type="checkbox" name="jit_users" value="on" checked[c.options.jit_users];
                                " Create users at their first sign-in" }
                            p.muted { "For identity providers without SCIM provisioning (Google Workspace). With SCIM, leave it off: the IdP decides who exists." }
                            label { input type="checkbox" name="sign_requests" value="on" checked[c.options.sign_requests] disabled[!p.accepts_signed_requests];
                                " Sign AuthnRequests" }
                            p.muted { @if p.accepts_signed_requests { "seatgate signs its sign-in requests (RSA-SHA256); the IdP reads the signing certificate from the SP metadata." }
                                @else { (p.label) " does not check signed requests." } }
                            label { input type="checkbox" name="allow_idp_initiated" value="on" checked[c.options.allow_idp_initiated];
                                " Allow IdP-initiated sign-in (the admin portal only)" }
                            p.muted { "Lets admins start from the IdP's app dashboard. Such responses answer no request, so they are weaker against replay; Mac activation never accepts them." }
                            button type="submit" { "Save options" }
                        }
                    }
                    section.card {
                        h2 { "Recent sign-ins through this connection" }
                        @if sign_ins.is_empty() { p { "None yet. Use Test sign-in above." } }
                        @else {
                            table {
                                thead { tr { th { "When" } th { "Who" } th { "Purpose" } th { "Outcome" } th { "Detail" } } }
                                tbody { @for s in &sign_ins { tr {
                                    td.when { (crate::admin::audit::when(s.at)) }
                                    td { (s.identity.as_deref().unwrap_or("—")) }
                                    td { (s.purpose) }
                                    td { (super::pages::outcome(s)) }
                                    td.detail { (s.detail.as_deref().unwrap_or("")) }
                                } } }
                            }
                        }
                    }
                    section.card {
                        h2 { "Remove this connection" }
                        p { "Users of " strong { (c.domains.join(", ")) } " can then no longer sign in or activate devices. With no identity provider left to deprovision them, the removal does it: the users and groups this connection provisioned are deleted (their seats freed and their Macs refused at the next renewal), its SCIM tokens revoked, its group mappings removed and admin sessions opened through it ended. The audit log keeps the record." }
                        form.inline method="post" action={ "/admin/idp/" (c.id) "/remove" } {
                            input type="hidden" name="csrf" value=(session.csrf_token);
                            label { input type="checkbox" name="confirm" value="yes" required; " I understand that its users, seats and devices go with it" }
                            button.danger type="submit" { "Remove " (c.name) }
                        }
                    }
                },
            ),
        ))
    }
}

/// Where the SCIM token comes from, next to the SCIM base URL.
enum ScimToken<'a> {
    /// The connection exists: a button generates one, shown once.
    Generate { csrf: &'a str },
    /// Before the connection is created.
    AfterCreation,
}

/// The values the IdP admin copies, for connection `id`, with the preset's own steps.
fn copy_values(p: &Preset, public_url: &str, id: &str, token: ScimToken<'_>) -> Markup {
    html! {
        section.card {
            h2 { "2. Enter these values at " (p.label) }
            dl.copy {
                dt { "Entity ID (Identifier, Audience URI)" } dd { code.copy { (sp_entity_id(public_url)) } }
                dt { "ACS URL (Reply URL, Single sign-on URL; HTTP-POST)" } dd { code.copy { (acs_url(public_url, id)) } }
                dt { "Sign-on URL (starts sign-in from seatgate)" } dd { code.copy { (public_url) "/saml/login/" (id) } }
                dt { "SP metadata (if the IdP imports it)" } dd { code.copy { (public_url) "/saml/metadata/" (id) } }
                dt { "SCIM base URL (Tenant URL)" } dd { code.copy { (public_url) "/scim/v2" } }
                dt { "SCIM token (Secret Token, Bearer)" } dd {
                    @match token {
                        ScimToken::Generate { csrf } => form.inline method="post" action={ "/admin/idp/" (id) "/scim-token" } {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { "Generate a SCIM token" }
                            span.muted { " shown once; earlier tokens keep working until revoked" }
                        },
                        ScimToken::AfterCreation => span.muted { "generated on the connection's page, once it is created (step 3)" },
                    }
                }
                @if let Some(a) = p.email_attribute { dt { "Email attribute / claim" } dd { code { (a) } } }
                @if let Some(a) = p.group_attribute {
                    dt { "Group attribute / claim" }
                    dd { code { (a) } @if p.groups_are_ids { " (group object ids; map groups by their id)" } }
                }
            }
            ol { @for step in p.instructions { li { (step) } } }
        }
    }
}

fn token_once(name: &str, secret: &str, scim_base: &str) -> Markup {
    token_shown_once(
        &format!("SCIM token “{name}”"),
        secret,
        html! { "Enter it at the IdP as the Secret Token (Bearer), with the SCIM base URL " code { (scim_base) } "." },
    )
}

/// Each signing certificate's expiry, flagged from 30 days ahead.
pub(super) fn cert_expiry(c: &Connection, now: i64) -> Markup {
    html! {
        @for (_, subject, not_after) in &c.certificates {
            @if *not_after < now { span.bad { "EXPIRED " (crate::admin::audit::when(*not_after)) } }
            @else if *not_after - now < CERT_WARNING_SECS { span.bad { "expires " (crate::admin::audit::when(*not_after)) } }
            @else { "valid until " (crate::admin::audit::when(*not_after)) }
            " " span.muted { (subject) } br;
        }
    }
}

fn preset_label(key: &str) -> &'static str {
    preset::find(key).map_or("generic SAML", |p| p.label)
}
