//! Portal: the local update server. The app versions on each branch (with how many Macs
//! report running each), the versions the Macs run that the server does not offer, the
//! feed addresses and the update key the app must trust; retiring a version. Packages are
//! added with `seatgate update add` or the admin API's resumable uploads.

use maud::{Markup, html};

use super::images::human_size;
use super::pages::layout;
use super::{Admin, Handled};
use crate::audit::Actor;
use crate::clock::rfc3339;
use crate::db::admin::Session;
use crate::db::distribution::PackageRow;
use crate::distribution::updates;
use crate::http::Response;

struct UpdatesView {
    packages: Vec<PackageRow>,
    running: Vec<(String, i64)>,
    key: String,
}

impl Admin {
    /// `GET /admin/updates`.
    pub(crate) fn updates_page(&self, session: &Session) -> Handled {
        self.render_updates(session, None)
    }

    fn render_updates(&self, session: &Session, refused: Option<&str>) -> Handled {
        let view = UpdatesView {
            packages: updates::all(&self.db)?,
            running: self.db.read(crate::db::distribution::app_versions)?,
            key: updates::public_key(&self.db, self.clock.now_unix())?,
        };
        Ok(Response::page(
            if refused.is_some() { 400 } else { 200 },
            layout(
                "Updates",
                Some(session),
                updates_page(session, &self.public_url, &view, refused),
            ),
        ))
    }

    /// `POST /admin/updates/{version}/retire`.
    pub(crate) fn retire_update(&self, session: &Session, actor: &Actor, version: &str) -> Handled {
        match updates::retire(&self.db, actor, version, self.clock.now_unix()) {
            Ok(p) => {
                self.flash.set(
                    session,
                    format!(
                        "Retired version {}: the feeds no longer offer it.",
                        p.version
                    ),
                );
                Ok(Response::see_other("/admin/updates"))
            }
            Err(e) if e.reason.status() >= 500 => Err(e.into()),
            Err(e) => self.render_updates(session, Some(&e.message)),
        }
    }
}

fn updates_page(s: &Session, base: &str, v: &UpdatesView, refused: Option<&str>) -> Markup {
    let devices = |version: &str| {
        v.running
            .iter()
            .find(|(r, _)| r == version)
            .map_or(0, |r| r.1)
    };
    let offered: Vec<&str> = v.packages.iter().map(|p| p.version.as_str()).collect();
    html! {
        h1 { "Updates" }
        p.muted {
            "The app's updates, served from this gateway for Macs without internet access. Each Mac follows "
            "the update branch its policy gives it (stable, beta, or one version pinned), else the configuration "
            "profile's. The app's updater (Sparkle) reads the appcast and checks each package's EdDSA signature "
            "against the update key below. Add versions with "
            code { "seatgate update add FILE --version V --branch stable --min-os 13.0" } "."
        }
        @if let Some(n) = refused { p.notice role="alert" { (n) } }
        section.card {
            h2 { "Feeds" }
            ul {
                li { "Stable: " code { (base) "/updates/stable/appcast.xml" } " (JSON: " code { "/updates/stable/feed.json" } ")" }
                li { "Beta (beta and stable versions): " code { (base) "/updates/beta/appcast.xml" } }
                li { "One version pinned: " code { (base) "/updates/pinned/VERSION/appcast.xml" } }
            }
            p { "Update key (the app's " code { "SUPublicEDKey" } "): " code { (v.key) } }
        }
        @for branch in ["stable", "beta"] {
            section.card {
                h2 { (branch) }
                @let mine: Vec<&PackageRow> = v.packages.iter().filter(|p| p.branch == branch).collect();
                @if mine.is_empty() { p.muted { "No version on this branch." } }
                @else {
                    table {
                        thead { tr { th { "Version" } th { "macOS" } th { "Size" } th { "Added" } th { "Macs running it" } th {} } }
                        tbody { @for p in mine { tr {
                            td { strong { (p.version) } @if !p.notes.is_empty() { br; span.muted { (p.notes) } } }
                            td { (p.min_os) "+" }
                            td { (human_size(p.size)) }
                            td { (rfc3339(p.created_at)) }
                            td { (devices(&p.version)) }
                            td { @if let Some(t) = p.retired_at { span.muted { "retired " (rfc3339(t)) } } @else {
                                form.inline method="post" action={ "/admin/updates/" (p.version) "/retire" } {
                                    input type="hidden" name="csrf" value=(s.csrf_token);
                                    button.danger type="submit" { "Retire" }
                                }
                            } }
                        } } }
                    }
                }
            }
        }
        section.card {
            h2 { "App versions the Macs run" }
            p.muted { "As each Mac reported at its last renewal." }
            @if v.running.is_empty() { p.muted { "No Mac has reported its app version yet." } }
            @else {
                table {
                    thead { tr { th { "Version" } th { "Macs" } th { "On this server" } } }
                    tbody { @for (version, n) in &v.running { tr {
                        td { (version) } td { (n) }
                        td { @if offered.contains(&version.as_str()) { "yes" } @else { span.muted { "no" } } }
                    } } }
                }
            }
        }
    }
}
