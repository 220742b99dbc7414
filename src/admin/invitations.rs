//! Portal: invitation emails (invite by addresses, CSV or group; resend; revoke; each
//! invitation's status), the email template with its preview, the outbox with a test
//! email, and the admin notifications' switches and recipients. Through `deploy::
//! invitations`, `mail::templates` and `mail::notifications`, as the CLI and the API.

use std::collections::BTreeMap;

use maud::{Markup, html};

use super::forms::{Sticky, confirmation};
use super::licenses::field;
use super::pages::layout;
use super::{Admin, Handled};
use crate::audit::Actor;
use crate::db::admin::Session;
use crate::db::outbox::{self as store, Invitation, Message};
use crate::deploy::invitations::{self, Method};
use crate::domain::problem::{Problem, Reason};
use crate::error::HttpError;
use crate::http::{Request, Response};
use crate::mail::notifications::{self, Notice};
use crate::mail::templates::{self, Template};

const INVITE: &str = "/admin/invitations";
const TEMPLATE: &str = "/admin/invitations/template";
const NOTIFY: &str = "/admin/invitations/notifications";

struct View {
    invitations: Vec<Invitation>,
    outbox: Vec<Message>,
    counts: (i64, i64, i64),
    template: Template,
    licenses: Vec<crate::db::licensing::LicenseRow>,
    sublicenses: Vec<crate::domain::engine::Sublicense>,
    notices: Vec<(Notice, bool, String)>,
}

impl Admin {
    fn invitations_view(&self) -> Result<View, HttpError> {
        self.db.read(|tx| {
            Ok::<_, HttpError>(View {
                invitations: store::invitations(tx, 200)?,
                outbox: store::recent(tx, 20)?,
                counts: store::counts(tx)?,
                template: Template::load(tx)?,
                licenses: crate::db::licensing::licenses(tx)?,
                sublicenses: crate::db::licensing::sublicenses(tx)?,
                notices: notifications::settings(tx)?,
            })
        })
    }

    fn render_invitations(
        &self,
        session: &Session,
        notice: Option<&str>,
        sticky: Sticky<'_>,
        preview: Option<&Template>,
    ) -> Handled {
        let view = self.invitations_view()?;
        let now = self.clock.now_unix();
        let organization = crate::deploy::organization(&self.gateway, &self.public_url);
        let body = page(&PageArgs {
            s: session,
            v: &view,
            notice,
            sticky,
            preview,
            now,
            organization: &organization,
            public_url: &self.public_url,
            smtp_host: &self.gateway.smtp.host,
        });
        Ok(Response::page(
            if notice.is_some() { 400 } else { 200 },
            layout("Invitations", Some(session), body),
        ))
    }

    /// `GET /admin/invitations`.
    pub(crate) fn invitations_page(&self, session: &Session) -> Handled {
        self.render_invitations(session, None, Sticky::none(), None)
    }

    fn refused(
        &self,
        session: &Session,
        why: &str,
        action: &str,
        form: &BTreeMap<String, String>,
    ) -> Handled {
        self.render_invitations(session, Some(why), Sticky::of(action, form), None)
    }

    /// `POST /admin/invitations`: invite typed or pasted addresses, or a group.
    pub(crate) fn send_invitations(
        &self,
        req: &Request,
        session: &Session,
        actor: &Actor,
    ) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let mut emails = invitations::parse_addresses(field(&form, "addresses"));
        let group = field(&form, "group").trim();
        if !group.is_empty() {
            emails.extend(invitations::group_without_device(&self.db, group)?);
        }
        if emails.is_empty() {
            let why = if group.is_empty() {
                "Type or paste at least one email address, or choose a group.".to_string()
            } else {
                format!(
                    "Nobody in the group {group} is without an active device, and no address was typed."
                )
            };
            return self.refused(session, &why, INVITE, &form);
        }
        let method = match field(&form, "method") {
            "sso" | "" => Method::Sso,
            pool => match pool.split_once('/') {
                Some((license, sub)) => Method::Key {
                    license: license.to_string(),
                    sublicense: (!sub.is_empty()).then(|| sub.to_string()),
                },
                None => {
                    return self.refused(
                        session,
                        "Choose how the invitees activate.",
                        INVITE,
                        &form,
                    );
                }
            },
        };
        let organization = crate::deploy::organization(&self.gateway, &self.public_url);
        let ctx = crate::deploy::invitation_context(&self.gateway, &self.public_url, &organization);
        match invitations::invite(
            &self.db,
            &ctx,
            actor,
            &emails,
            &method,
            self.clock.now_unix(),
        ) {
            Ok(done) => {
                let refused = if done.refused.is_empty() {
                    String::new()
                } else {
                    let list: Vec<String> = done
                        .refused
                        .iter()
                        .take(20)
                        .map(|(a, why)| format!("{a} ({why})"))
                        .collect();
                    format!(
                        " Not invited: {}{}.",
                        list.join("; "),
                        if done.refused.len() > 20 {
                            format!("; and {} more", done.refused.len() - 20)
                        } else {
                            String::new()
                        }
                    )
                };
                self.flash.set(
                    session,
                    format!(
                        "Invited {}: the emails are in the outbox{}.{refused}",
                        super::forms::people(done.created.len()),
                        if self.gateway.smtp.host.is_empty() {
                            " and wait until [smtp] host is set"
                        } else {
                            ""
                        }
                    ),
                );
                Ok(Response::see_other(INVITE))
            }
            Err(p) if p.reason == Reason::BadRequest => {
                self.refused(session, &p.message, INVITE, &form)
            }
            Err(p) => Err(p.into()),
        }
    }

    /// `POST /admin/invitations/{id}/resend`.
    pub(crate) fn resend_invitation(&self, session: &Session, actor: &Actor, id: &str) -> Handled {
        let organization = crate::deploy::organization(&self.gateway, &self.public_url);
        let ctx = crate::deploy::invitation_context(&self.gateway, &self.public_url, &organization);
        let i = invitations::resend(&self.db, &ctx, actor, id, self.clock.now_unix())?;
        self.flash.set(
            session,
            format!(
                "Sent the invitation to {} again, with a new link; the old link no longer works.",
                i.email
            ),
        );
        Ok(Response::see_other(INVITE))
    }

    /// `POST /admin/invitations/{id}/revoke`.
    pub(crate) fn revoke_invitation(
        &self,
        req: &Request,
        session: &Session,
        actor: &Actor,
        id: &str,
    ) -> Handled {
        super::forms::confirmed(req, "the invitation's link stops working")?;
        let i = invitations::revoke(&self.db, actor, id, self.clock.now_unix())?;
        self.flash.set(
            session,
            format!(
                "Revoked the invitation to {}: its link no longer works.",
                i.email
            ),
        );
        Ok(Response::see_other(INVITE))
    }

    /// `POST /admin/invitations/template`: save, preview or reset the template.
    pub(crate) fn save_template(&self, req: &Request, session: &Session, actor: &Actor) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let now = self.clock.now_unix();
        if field(&form, "do") == "reset" {
            if let Err(why) = confirmation(&form, "the template goes back to seatgate's") {
                return self.refused(session, &why, TEMPLATE, &form);
            }
            self.db.write(|tx| Template::reset(tx, now))?;
            self.flash.set(
                session,
                "The invitation email is seatgate's template again.".into(),
            );
            return Ok(Response::see_other(INVITE));
        }
        let t = Template {
            subject: field(&form, "subject").to_string(),
            text: field(&form, "text").replace("\r\n", "\n"),
            html: field(&form, "html").replace("\r\n", "\n"),
        };
        let checked = if field(&form, "do") == "preview" {
            // Checked like a save, stored nowhere.
            t.check().map(|()| false)
        } else {
            self.db.write(|tx| {
                let saved = t.save(tx, now);
                if saved.is_ok() {
                    crate::db::licensing::audit(
                        tx,
                        now,
                        actor,
                        crate::audit::AuditAction::InvitationTemplateChanged,
                        None,
                        crate::db::licensing::AuditAbout::default(),
                    )?;
                }
                Ok::<_, HttpError>(saved.map(|()| true))
            })?
        };
        match checked {
            Ok(true) => {
                log::info!("{actor} changed the invitation email template");
                self.flash.set(
                    session,
                    "Saved the invitation email; new invitations and resends use it.".into(),
                );
                Ok(Response::see_other(INVITE))
            }
            Ok(false) => {
                self.render_invitations(session, None, Sticky::of(TEMPLATE, &form), Some(&t))
            }
            Err(templates::TemplateError::Db(e)) => Err(e.into()),
            Err(e) => self.refused(
                session,
                &super::forms::sentence(&e.to_string()),
                TEMPLATE,
                &form,
            ),
        }
    }

    /// `POST /admin/invitations/test-email`: a test message to the given address.
    pub(crate) fn test_email(&self, req: &Request, session: &Session, actor: &Actor) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let to = field(&form, "to").trim().to_string();
        if !matches!(crate::email::shape(&to), crate::email::Shape::Email { .. }) || to.len() > 254
        {
            return self.refused(
                session,
                "Give the address to send the test email to.",
                "/admin/invitations/test-email",
                &form,
            );
        }
        let now = self.clock.now_unix();
        let id = self
            .db
            .write(|tx| crate::mail::queue_test(tx, &to, &self.public_url, actor, now))?;
        self.flash.set(
            session,
            format!("Queued test email {id} to {to}; the outbox below shows whether it went out."),
        );
        Ok(Response::see_other(INVITE))
    }

    /// `POST /admin/invitations/notifications`: switches and recipients.
    pub(crate) fn save_notifications(
        &self,
        req: &Request,
        session: &Session,
        actor: &Actor,
    ) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let now = self.clock.now_unix();
        let mut changes = Vec::new();
        for notice in Notice::ALL {
            let on = form
                .get(&format!("{}.on", notice.key()))
                .is_some_and(|v| v == "yes");
            let recipients = field(&form, &format!("{}.to", notice.key()));
            changes.push((*notice, on, recipients.to_string()));
        }
        // All checked before anything is stored: a refused field changes nothing.
        if let Some(why) = changes
            .iter()
            .find_map(|(_, _, to)| notifications::recipients(to).err())
        {
            return self.refused(session, &why, NOTIFY, &form);
        }
        let saved = self.db.write(|tx| {
            let mut detail = serde_json::Map::new();
            for (notice, on, recipients) in &changes {
                if let Err(why) = notifications::save(tx, *notice, *on, recipients, now)? {
                    return Ok(Err(why));
                }
                detail.insert(
                    notice.key().into(),
                    serde_json::json!({"on": on, "to": notifications::recipients(recipients).unwrap_or_default().join(", ")}),
                );
            }
            crate::db::licensing::audit(
                tx,
                now,
                actor,
                crate::audit::AuditAction::NotificationsChanged,
                None,
                crate::db::licensing::AuditAbout {
                    detail: Some(&serde_json::Value::Object(detail).to_string()),
                    ..Default::default()
                },
            )?;
            Ok::<_, HttpError>(Ok(()))
        })?;
        match saved {
            Ok(()) => {
                log::info!("{actor} changed the admin notifications");
                self.flash.set(session, "Saved the notifications.".into());
                Ok(Response::see_other(INVITE))
            }
            Err(why) => self.refused(session, &why, NOTIFY, &form),
        }
    }
}

impl From<templates::TemplateError> for HttpError {
    fn from(e: templates::TemplateError) -> HttpError {
        match e {
            templates::TemplateError::Db(e) => e.into(),
            templates::TemplateError::Invalid(m) => Problem::new(Reason::BadRequest, m).into(),
        }
    }
}

struct PageArgs<'a> {
    s: &'a Session,
    v: &'a View,
    notice: Option<&'a str>,
    sticky: Sticky<'a>,
    preview: Option<&'a Template>,
    now: i64,
    organization: &'a str,
    public_url: &'a str,
    smtp_host: &'a str,
}

fn status_cell(i: &Invitation, now: i64) -> Markup {
    let status = invitations::status(i, now);
    html! {
        @match status {
            "activated" | "sent" | "opened" => span.ok { (status) },
            "failed" | "expired" | "revoked" => span.bad { (status) },
            _ => span { (status) },
        }
        @if let (Some(e), "failed" | "queued") = (&i.delivery_error, status) { br; span.muted { (e) } }
    }
}

fn page(a: &PageArgs<'_>) -> Markup {
    let (s, v, sticky) = (a.s, a.v, a.sticky);
    let template = a.preview.unwrap_or(&v.template);
    let (ps, pt, ph) = template.render(&[
        ("email", "ryan@contoso.com"),
        ("link", &format!("{}/invite/EXAMPLE-LINK", a.public_url)),
        ("expires", &crate::clock::rfc3339(a.now + 14 * 86_400)[..10]),
        ("organization", a.organization),
        ("gateway", a.public_url),
    ]);
    html! {
        h1 { "Invitations" }
        p.muted { "Invite people to install the app and activate it: each gets an email with a link to a page at this gateway that tells them what to do. Links work once and expire." }
        @if a.smtp_host.is_empty() {
            p.notice role="alert" { "No mail server is set: invitations wait in the outbox until " code { "[smtp] host" } " (and " code { "from" } ") are configured." }
        }
        @if let Some(n) = a.notice { p.notice role="alert" { (n) } }
        section.card {
            h2 { "Invite" }
            form method="post" action=(INVITE) {
                input type="hidden" name="csrf" value=(s.csrf_token);
                label { "Email addresses (one per line, or separated by commas; a pasted CSV works)" br;
                    textarea name="addresses" rows="4" cols="60" { (sticky.value(INVITE, "addresses", "")) } }
                label { "and/or everyone without an active device in the group " input type="text" name="group" placeholder="e.g. Engineering" value=(sticky.value(INVITE, "group", "")); }
                label { "They activate "
                    select name="method" {
                        option value="sso" selected[sticky.chose(INVITE, "method", "sso")] { "with single sign-on (their work email)" }
                        @for l in &v.licenses {
                            @let primary = format!("{}/", l.id);
                            option value=(primary) selected[sticky.chose(INVITE, "method", &primary)] { "with a license key: " (l.product) ", primary pool" }
                            @for sub in v.sublicenses.iter().filter(|x| x.license_id == l.id) {
                                @let pool = format!("{}/{}", l.id, sub.id);
                                option value=(pool) selected[sticky.chose(INVITE, "method", &pool)] { "with a license key: " (sub.name) " (" (l.product) ")" }
                            }
                        }
                    }
                }
                button type="submit" { "Send invitations" }
            }
        }
        section.card {
            h2 { "Sent invitations" }
            @if v.invitations.is_empty() { p { "No invitation yet." } }
            @else {
                table {
                    thead { tr { th { "Email" } th { "How" } th { "Status" } th { "Invited" } th { "Link expires" } th {} } }
                    tbody { @for i in &v.invitations { tr {
                        td { (i.email) }
                        td { @if i.method == "key" { "license key" } @else { "single sign-on" } }
                        td { (status_cell(i, a.now)) }
                        td.when { (crate::admin::audit::when(i.created_at)) }
                        td.when { (crate::admin::audit::when(i.expires_at)) }
                        td {
                            @if i.revoked_at.is_none() && i.activated_at.is_none() {
                                form.inline method="post" action={ "/admin/invitations/" (i.id) "/resend" } {
                                    input type="hidden" name="csrf" value=(s.csrf_token);
                                    button type="submit" aria-label={ "Resend to " (i.email) } { "Resend" }
                                }
                                form.inline method="post" action={ "/admin/invitations/" (i.id) "/revoke" } {
                                    input type="hidden" name="csrf" value=(s.csrf_token);
                                    label { input type="checkbox" name="confirm" value="yes" required; " Link stops working" }
                                    button.danger type="submit" aria-label={ "Revoke the invitation to " (i.email) } { "Revoke" }
                                }
                            }
                        }
                    } } }
                }
            }
        }
        section.card {
            h2 { "Invitation email" }
            p.muted { "Variables: "
                @for (i, (name, what)) in templates::VARIABLES.iter().enumerate() {
                    @if i > 0 { "; " }
                    code { "{{" (name) "}}" } " " (what)
                }
                ". Values are escaped in the HTML part. Both parts must contain " code { "{{link}}" } "." }
            form method="post" action=(TEMPLATE) {
                input type="hidden" name="csrf" value=(s.csrf_token);
                label { "Subject " input type="text" name="subject" size="70" maxlength=(templates::MAX_SUBJECT) value=(sticky.value(TEMPLATE, "subject", &v.template.subject)); }
                label { "Text" br; textarea name="text" rows="8" cols="80" { (sticky.value(TEMPLATE, "text", &v.template.text)) } }
                label { "HTML" br; textarea name="html" rows="8" cols="80" { (sticky.value(TEMPLATE, "html", &v.template.html)) } }
                button type="submit" name="do" value="preview" { "Preview" }
                " "
                button type="submit" name="do" value="save" { "Save" }
                " "
                label { input type="checkbox" name="confirm" value="yes"; " back to seatgate's template" }
                button type="submit" name="do" value="reset" { "Reset" }
            }
            details open[a.preview.is_some()] {
                summary { @if a.preview.is_some() { "Preview (not saved)" } @else { "Preview" } " for ryan@contoso.com" }
                p { strong { "Subject: " } (ps) }
                p { strong { "Text part" } }
                pre.diagnosis { (pt) }
                // The HTML part as its source, values filled in: never rendered inside
                // the portal.
                p { strong { "HTML part (source)" } }
                pre.diagnosis { (ph) }
            }
        }
        section.card {
            h2 { "Outbox" }
            p { (v.counts.0) " queued, " (v.counts.1) " sent, " (v.counts.2) " failed. "
                "Queued messages are retried with backoff until sent; a mail server's permanent refusal fails them at once." }
            form.inline method="post" action="/admin/invitations/test-email" {
                input type="hidden" name="csrf" value=(s.csrf_token);
                label { "Send a test email to " input type="email" name="to" required value=(sticky.value("/admin/invitations/test-email", "to", "")); }
                button type="submit" { "Send test email" }
            }
            @if !v.outbox.is_empty() {
                table {
                    thead { tr { th { "#" } th { "What" } th { "To" } th { "State" } th { "Attempts" } th { "Last error" } } }
                    tbody { @for m in &v.outbox { tr {
                        td { (m.id) } td { (m.kind) } td { (m.recipient) }
                        td { @match m.state.as_str() { "sent" => span.ok { "sent" }, "failed" => span.bad { "failed" }, _ => span { "queued" } } }
                        td { (m.attempts) }
                        td { (m.last_error.as_deref().unwrap_or("")) }
                    } } }
                }
            }
        }
        section.card {
            h2 { "Admin notifications" }
            p.muted { "Sent through the outbox, each once per occasion. Recipients: addresses separated by commas." }
            form method="post" action=(NOTIFY) {
                input type="hidden" name="csrf" value=(s.csrf_token);
                table {
                    thead { tr { th { "On" } th { "When" } th { "Recipients" } } }
                    tbody { @for (notice, on, to) in &v.notices { tr {
                        td { input type="checkbox" name={ (notice.key()) ".on" } value="yes" checked[*on] aria-label=(notice.describe()); }
                        td { (notice.describe()) }
                        td { input type="text" name={ (notice.key()) ".to" } size="40" value=(sticky.value(NOTIFY, &format!("{}.to", notice.key()), to)) placeholder="it-licensing@contoso.com"; }
                    } } }
                }
                button type="submit" { "Save notifications" }
            }
        }
    }
}
