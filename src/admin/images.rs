//! Portal: golden images. Each image's versions (size, SHA-256, and how many Macs report
//! a VM of each in their inventory), the groups it is assigned to (latest or pinned),
//! uploads in progress; assigning, unassigning and deleting a version. Uploads themselves
//! come from `seatgate image add` or the admin API (resumable pieces of up to 1 GiB).

use maud::{Markup, html};

use super::licenses::field;
use super::pages::layout;
use super::{Admin, Handled};
use crate::audit::Actor;
use crate::clock::rfc3339;
use crate::db::admin::Session;
use crate::db::distribution::UploadRow;
use crate::distribution::Distribution;
use crate::distribution::images::{self, Overview};
use crate::domain::problem::Problem;
use crate::error::HttpError;
use crate::http::{Request, Response};

const PAGE: &str = "/admin/images";

/// `1.5 GiB`, `820 MiB`, `12 KiB`, `900 bytes`.
pub fn human_size(bytes: i64) -> String {
    let b = bytes as f64;
    for (unit, size) in [
        ("TiB", 1u64 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ] {
        if bytes as u64 >= size {
            return format!("{:.1} {unit}", b / size as f64);
        }
    }
    format!("{bytes} bytes")
}

impl Admin {
    fn render_images(&self, session: &Session, refused: Option<&str>) -> Handled {
        let overview = images::overview(&self.db)?;
        let (uploads, connections) = self.db.read(|tx| {
            Ok::<_, HttpError>((
                crate::db::distribution::uploads(tx)?,
                crate::db::idp::list(tx)?
                    .into_iter()
                    .map(|c| (c.id, c.name))
                    .collect::<Vec<_>>(),
            ))
        })?;
        Ok(Response::page(
            if refused.is_some() { 400 } else { 200 },
            layout(
                "Golden images",
                Some(session),
                images_page(session, &overview, &uploads, &connections, refused),
            ),
        ))
    }

    /// `GET /admin/images`.
    pub(crate) fn images_page(&self, session: &Session) -> Handled {
        self.render_images(session, None)
    }

    fn image_done(&self, session: &Session, done: Result<String, Problem>) -> Handled {
        match done {
            Ok(text) => {
                self.flash.set(session, text);
                Ok(Response::see_other(PAGE))
            }
            Err(e) if e.reason.status() >= 500 => Err(e.into()),
            Err(e) => self.render_images(session, Some(&e.message)),
        }
    }

    /// `POST /admin/images/assign`.
    pub(crate) fn assign_image(&self, req: &Request, session: &Session, actor: &Actor) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let non_empty = |k: &str| Some(field(&form, k)).filter(|v| !v.is_empty());
        let done = images::assign(
            &self.db,
            actor,
            field(&form, "image"),
            field(&form, "group"),
            non_empty("connection"),
            non_empty("version"),
            self.clock.now_unix(),
        )
        .map(|a| {
            format!(
                "Assigned {} ({}) to group {}. Its members' Macs list it at their next check.",
                a.image_name,
                a.pinned_version
                    .map_or("latest version".into(), |v| format!("version {v}")),
                a.group_ref
            )
        });
        self.image_done(session, done)
    }

    /// `POST /admin/images/assignments/{id}/remove`.
    pub(crate) fn unassign_image(&self, session: &Session, actor: &Actor, id: &str) -> Handled {
        let done = images::unassign(&self.db, actor, None, id, self.clock.now_unix())
            .map(|()| "Removed the assignment.".to_string());
        self.image_done(session, done)
    }

    /// `POST /admin/images/{image}/versions/{version}/delete`.
    pub(crate) fn delete_image_version(
        &self,
        dist: &Distribution,
        session: &Session,
        actor: &Actor,
        (image, version): (&str, &str),
    ) -> Handled {
        let done =
            images::delete_version(dist, &self.db, actor, image, version, self.clock.now_unix())
                .map(|()| format!("Deleted version {version} and its file."));
        self.image_done(session, done)
    }
}

fn images_page(
    s: &Session,
    all: &[Overview],
    uploads: &[UploadRow],
    connections: &[(String, String)],
    refused: Option<&str>,
) -> Markup {
    html! {
        h1 { "Golden images" }
        p.muted {
            "Prepared virtual machine images for the Macs, served from this gateway so that Macs in a "
            "restricted network need no internet. Assign an image to IdP groups: their members' Macs list it "
            "(signed by the gateway) and download it with resume, checking its SHA-256. Add versions with "
            code { "seatgate image add FILE --name NAME --version V" }
            " or the admin API's resumable uploads; the devices column counts Macs whose VM inventory reports a VM of that version."
        }
        @if let Some(n) = refused { p.notice role="alert" { (n) } }
        @if all.is_empty() { section.card { p { "No images yet." } } }
        @for o in all { (image_card(s, o)) }
        @if !all.is_empty() { (assign_card(s, all, connections)) }
        @if !uploads.is_empty() {
            section.card {
                h2 { "Uploads in progress" }
                table {
                    thead { tr { th { "Upload" } th { "Received" } th { "By" } th { "Last piece" } } }
                    tbody { @for u in uploads { tr {
                        td { code { (u.id) } br; span.muted { (u.target_key) } }
                        td { (human_size(u.received)) " of " (human_size(u.size)) }
                        td { (u.created_by) }
                        td { (rfc3339(u.updated_at)) }
                    } } }
                }
            }
        }
    }
}

fn image_card(s: &Session, o: &Overview) -> Markup {
    html! {
        section.card {
            h2 { (o.image.name) }
            @if !o.image.description.is_empty() { p.muted { (o.image.description) } }
            table {
                thead { tr { th { "Version" } th { "Size" } th { "SHA-256" } th { "Devices" } th { "Added" } th {} } }
                tbody { @for (v, devices) in &o.versions { tr {
                    td { strong { (v.version) } @if !v.notes.is_empty() { br; span.muted { (v.notes) } } }
                    td { (human_size(v.size)) }
                    td { code.hash title=(v.sha256) { (v.sha256.get(..16).unwrap_or(&v.sha256)) "…" } }
                    td { (devices) }
                    td { (rfc3339(v.created_at)) br; span.muted { (v.created_by) } }
                    td { form.inline method="post" action={ "/admin/images/" (o.image.id) "/versions/" (v.version) "/delete" } {
                        input type="hidden" name="csrf" value=(s.csrf_token);
                        button.danger type="submit" { "Delete" }
                    } }
                } } }
            }
            h3 { "Assigned to" }
            @if o.assignments.is_empty() { p.muted { "No group yet." } }
            @else { ul { @for a in &o.assignments { li {
                "group " strong { (a.group_ref) }
                @if let Some(c) = &a.connection_id { " of " (c) }
                ": " (a.pinned_version.as_deref().map_or("latest version".to_string(), |v| format!("pinned at {v}")))
                " "
                form.inline method="post" action={ "/admin/images/assignments/" (a.id) "/remove" } {
                    input type="hidden" name="csrf" value=(s.csrf_token);
                    button type="submit" { "Remove" }
                }
            } } } }
        }
    }
}

fn assign_card(s: &Session, all: &[Overview], connections: &[(String, String)]) -> Markup {
    html! {
        section.card {
            h2 { "Assign an image" }
            form.inline method="post" action="/admin/images/assign" {
                input type="hidden" name="csrf" value=(s.csrf_token);
                label { "Image " select name="image" { @for o in all { option value=(o.image.id) { (o.image.name) } } } }
                label { "Group " input type="text" name="group" required maxlength="256" placeholder="e.g. Engineering"; }
                label { "Connection " select name="connection" {
                    option value="" { "none" }
                    @for (id, name) in connections { option value=(id) { (name) } }
                } }
                label { "Version " input type="text" name="version" maxlength="64" placeholder="latest"; }
                button type="submit" { "Assign" }
            }
        }
    }
}
