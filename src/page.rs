//! The frame every HTML page shares (admin portal, first-run setup, end-user pages, error
//! pages): the layout, the stylesheet, and the banners that must show on every page (the
//! database's health, a request at the wrong address, the demo). Rendered with maud,
//! which escapes every value it interpolates; the only script is the portal's Copy buttons.

use maud::{DOCTYPE, Markup, html};

use crate::db::admin::Session;

/// Set once by `seatgate demo`: every page then carries the DEMO banner.
static DEMO_BANNER: std::sync::OnceLock<()> = std::sync::OnceLock::new();

/// Marks this process as the demo (called once, when `seatgate demo` starts).
pub fn show_demo_banner() {
    let _ = DEMO_BANNER.set(());
}

fn demo_banner_shown() -> bool {
    DEMO_BANNER.get().is_some()
}

pub const STYLESHEET_PATH: &str = "/admin/assets/portal.css";
pub const STYLESHEET: &str = include_str!("admin/portal.css");
/// The portal's one script (Copy buttons, local times), allowed by the pages'
/// `script-src 'self'`.
pub const SCRIPT_PATH: &str = "/admin/assets/portal.js";
pub const SCRIPT: &str = include_str!("admin/portal.js");

/// The frame of every page: title, header, and (when signed in) the session bar.
pub fn layout(title: &str, session: Option<&Session>, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · seatgate" }
                link rel="stylesheet" href=(STYLESHEET_PATH);
                @if session.is_some() { script src=(SCRIPT_PATH) defer {} }
            }
            body {
                (health_banner(PORTAL_FRAME.with(|f| f.borrow().active)))
                @if let Some(text) = PORTAL_FRAME.with(|f| f.borrow().address.clone()) {
                    div.health-banner role="alert" { strong { "Wrong address" } " · " (text) }
                }
                @if demo_banner_shown() {
                    div.demo-banner role="note" {
                        strong { "DEMO" } " · sample organization and a built-in test identity provider; nothing here is real, and it is deleted when the demo stops."
                    }
                }
                header {
                    a.brand href="/admin" { "seatgate" }
                    @if let Some(s) = session {
                        nav {
                            a href="/admin" { "Overview" }
                            a href="/admin/users" { "Users" }
                            a href="/admin/licenses" { "Licenses" }
                            a href="/admin/keys" { "License keys" }
                            a href="/admin/policies" { "Policies" }
                            a href="/admin/vms" { "Virtual machines" }
                            a href="/admin/images" { "Images" }
                            a href="/admin/updates" { "Updates" }
                            a href="/admin/deploy" { "Deploy" }
                            a href="/admin/invitations" { "Invitations" }
                            a href="/admin/idp" { "Identity providers" }
                            a href="/admin/audit" { "Audit log" }
                        }
                        form.session method="post" action="/admin/logout" {
                            span { "Signed in as " strong { (s.display_name) } }
                            input type="hidden" name="csrf" value=(s.csrf_token);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main {
                    @if let Some(text) = PORTAL_FRAME.with(|f| f.borrow_mut().done.take()) {
                        p.notice.done role="status" { (text) }
                    }
                    (body)
                }
            }
        }
    }
    .into_string()
}

/// What the portal pages of the request this app thread is answering show besides their
/// body (see [`for_portal_pages`]): set around a request, so that every page's layout
/// shows it without each of the many renderers taking the request.
#[derive(Default)]
struct PortalFrame {
    /// Rendering for the admin surface: the health banner in full.
    active: bool,
    /// The address mismatch's advice, when the request came in at another address.
    address: Option<String>,
    /// What the admin's last change did (shown once, on the page after it).
    done: Option<String>,
}

thread_local! {
    static PORTAL_FRAME: std::cell::RefCell<PortalFrame> = std::cell::RefCell::new(PortalFrame::default());
}

/// Runs `render` as a portal page: every page it lays out carries the full health banner
/// (paths, what to restore) and the banner of `mismatch` (if any). Pages outside it (the
/// end-user pages) only say that changes cannot be stored now.
pub fn for_portal_pages<T>(
    mismatch: Option<&crate::public_url::Mismatch>,
    done: Option<String>,
    render: impl FnOnce() -> T,
) -> T {
    struct Reset;
    impl Drop for Reset {
        // Also on a panic: the next request on this thread must not inherit the frame.
        fn drop(&mut self) {
            PORTAL_FRAME.with(|f| *f.borrow_mut() = PortalFrame::default());
        }
    }
    PORTAL_FRAME.with(|f| {
        *f.borrow_mut() = PortalFrame {
            active: true,
            address: mismatch.map(|m| m.advice()),
            done,
        }
    });
    let _reset = Reset;
    render()
}

/// What is wrong with the database, on every page while something is (see
/// `db::health`): for admins in full (damage and which backup to restore, a full disk,
/// low free space, where); for everyone else only that changes cannot be stored now.
pub fn health_banner(for_admin: bool) -> Markup {
    let health = crate::db::health::global();
    let text = if for_admin {
        health.banner()
    } else {
        health.public_banner()
    };
    html! {
        @if let Some(text) = text {
            div.health-banner role="alert" { strong { "Attention" } " · " (text) }
        }
    }
}
