//! The admin portal's HTML, rendered on the server with maud (which escapes every value
//! it interpolates). No JavaScript; one stylesheet served from `/admin/assets/`.

use maud::{Markup, html};

use crate::db::admin::{LocalAdmin, Mapping, Session, SignIn};
use crate::db::idp::Connection;

pub use crate::page::{STYLESHEET, STYLESHEET_PATH, layout};

/// "Previous / next" links for a paged listing; `params` are kept in the links.
pub fn pager(path: &str, params: &[(&str, &str)], page: i64, size: i64, total: i64) -> Markup {
    let pages = ((total + size - 1) / size).max(1);
    let link = |p: i64| {
        let mut q: Vec<String> = params
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", crate::http::percent_encode(v)))
            .collect();
        q.push(format!("page={p}"));
        format!("{path}?{}", q.join("&"))
    };
    html! {
        @if pages > 1 {
            p.pager {
                @if page > 1 { a href=(link(page - 1)) { "← Previous" } " " }
                "Page " (page) " of " (pages)
                @if page < pages { " " a href=(link(page + 1)) { "Next →" } }
            }
        }
    }
}

/// The sign-in page: SSO by work email first, the break-glass form second.
/// The sign-in page. A refused attempt shows it again with the reason and what was typed
/// (never the password), so the admin corrects it instead of starting over.
pub fn login(login_csrf: &str, notice: Option<&str>, username: &str, email: &str) -> String {
    layout(
        "Sign in",
        None,
        html! {
            h1 { "Sign in to the admin portal" }
            @if let Some(n) = notice { p.notice role="alert" { (n) } }
            section.card {
                h2 { "Single sign-on" }
                p { "Members of a group mapped to the admins role sign in with their identity provider." }
                form method="get" action="/admin/sso" {
                    label for="email" { "Work email" }
                    input #email type="email" name="email" value=(email) autocomplete="email" required;
                    button type="submit" { "Continue with SSO" }
                }
            }
            section.card {
                h2 { "Break-glass administrator" }
                p.muted { "A local account for setup and for when the identity provider is unavailable." }
                form method="post" action="/admin/login" {
                    input type="hidden" name="csrf" value=(login_csrf);
                    label for="username" { "Username" }
                    input #username type="text" name="username" value=(username) autocomplete="username" required;
                    label for="password" { "Password" }
                    input #password type="password" name="password" autocomplete="current-password" required;
                    button type="submit" { "Sign in" }
                }
            }
        },
    )
}

/// What the overview shows.
pub struct Overview<'a> {
    pub session: &'a Session,
    pub licenses: &'a [crate::db::licensing::LicenseRow],
    pub pools: &'a [crate::db::portal::PoolUsage],
    pub connections: &'a [Connection],
    pub mappings: &'a [Mapping],
    pub local_admins: &'a [LocalAdmin],
    pub sign_ins: &'a [SignIn],
    pub public_url: &'a str,
    /// Now, for certificate expiry.
    pub now: i64,
}

pub fn overview(o: &Overview<'_>) -> String {
    let admin_mappings: Vec<&Mapping> = o.mappings.iter().filter(|m| m.role == "admins").collect();
    layout(
        "Overview",
        Some(o.session),
        html! {
            h1 { "Overview" }
            p.muted {
                "Signed in " (crate::admin::audit::when(o.session.created_at))
                @if let Some(c) = &o.session.connection_id { " through " code { (c) } }
                @else { " with the break-glass account" }
                "; this session ends at " (crate::admin::audit::when(o.session.expires_at)) " at the latest."
            }
            section.card {
                h2 { "Seats" }
                @if o.licenses.is_empty() {
                    p { "No license yet. " a href="/admin/licenses" { "Add one" } "." }
                }
                @for l in o.licenses {
                    h3 { a href="/admin/licenses" { (l.product) } }
                    table.pools {
                        thead { tr { th { "Pool" } th { "Used / pending / free" } th.bar {} } }
                        tbody {
                            @for p in o.pools.iter().filter(|p| p.license_id == l.id) {
                                tr {
                                    td { (p.name) }
                                    td {
                                        (p.seats.used) " / " (p.pending) " / " (p.seats.free) " of " (p.seats.capacity)
                                        @if p.seats.used > p.seats.capacity { " " span.bad { "over by " (p.seats.used - p.seats.capacity) } }
                                    }
                                    td.bar { (super::licenses::usage_bar(p)) }
                                }
                            }
                        }
                    }
                }
            }
            section.card {
                h2 { "Identity provider connections" }
                @if o.connections.is_empty() {
                    p { "None yet. " a href="/admin/idp" { "Set one up" } " (guided, per identity provider)." }
                } @else {
                    table {
                        thead { tr { th { "Connection" } th { "Preset" } th { "Domains" } th { "Signing certificates" } th { "Test" } } }
                        tbody {
                            @for c in o.connections {
                                tr {
                                    td { strong { (c.name) } br; code { (c.id) } }
                                    td { (c.preset) }
                                    td { (c.domains.join(", ")) }
                                    td { (super::connections::cert_expiry(c, o.now)) }
                                    td { a href={ "/saml/login/" (c.id) } { "Test sign-in" } }
                                }
                            }
                        }
                    }
                    p.muted { "SP metadata for the identity provider: " code { (o.public_url) "/saml/metadata" } }
                }
            }
            section.card {
                h2 { "Who may administer" }
                @if admin_mappings.is_empty() {
                    p { "No group is mapped to the admins role: only break-glass administrators can sign in. Map one under "
                        a href="/admin/licenses#mappings" { "Group mappings" } " (Grants: admin access to this portal)." }
                } @else {
                    ul { @for m in &admin_mappings { li { "Group " strong { (m.group_ref) } } } }
                }
                p.muted {
                    "Break-glass administrators: "
                    @if o.local_admins.is_empty() { "none" }
                    @for (i, a) in o.local_admins.iter().enumerate() {
                        @if i > 0 { ", " }
                        (a.username)
                    }
                }
                p { a href="/admin/api-tokens" { "Admin API tokens" } " for scripts" }
            }
            section.card {
                h2 { "Recent sign-ins" }
                @if o.sign_ins.is_empty() { p { "None yet." } } @else {
                    table {
                        thead { tr { th { "When" } th { "How" } th { "Who" } th { "Outcome" } th { "Detail" } } }
                        tbody {
                            @for s in o.sign_ins {
                                tr {
                                    td.when { (crate::admin::audit::when(s.at)) }
                                    td { (s.method) " · " (s.purpose) @if let Some(c) = &s.connection_id { br; code { (c) } } }
                                    td { (s.identity.as_deref().unwrap_or("—")) }
                                    td { (outcome(s)) }
                                    td.detail { (s.detail.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// A sign-in's outcome: OK, or the reason code (with how many attempts a counted refusal
/// stands for).
pub fn outcome(s: &SignIn) -> Markup {
    html! {
        @if s.outcome == "OK" { span.ok { "OK" } } @else {
            code.bad { (s.outcome) }
            @if s.count > 1 { " (" (s.count) " attempts)" }
        }
    }
}

/// API tokens of one kind (SCIM or admin): when made and used, a Revoke button for live
/// ones (posting to `{revoke_prefix}/{id}/revoke`), and a form creating one at
/// `create_action`. SCIM tokens (`connections` given, as (id, name)) also show and take
/// the connection they provision for.
pub fn token_list(
    tokens: &[crate::db::tokens::TokenInfo],
    csrf: &str,
    revoke_prefix: &str,
    create_action: &str,
    create_label: &str,
    placeholder: &str,
    connections: Option<&[(String, String)]>,
) -> Markup {
    let scope = crate::domain::connection::scope_label;
    html! {
        @if tokens.is_empty() { p { "No token yet." } }
        @else {
            table {
                thead { tr { th { "Token" } @if connections.is_some() { th { "Provisions for" } } th { "Created" } th { "Last used" } th { "State" } th {} } }
                tbody { @for t in tokens { tr {
                    td { (t.name) }
                    @if connections.is_some() { td { (scope(t.connection_id.as_deref())) } }
                    td.when { (crate::admin::audit::when(t.created_at)) }
                    td { @match t.last_used_at { Some(at) => (crate::admin::audit::when(at)), None => "never" } }
                    td { @if t.revoked_at.is_some() { span.bad { "revoked" } } @else { span.ok { "active" } } }
                    td {
                        @if t.revoked_at.is_none() {
                            form.inline method="post" action={ (revoke_prefix) "/" (t.id) "/revoke" } {
                                input type="hidden" name="csrf" value=(csrf);
                                label { input type="checkbox" name="confirm" value="yes" required; " Whatever uses it stops working" }
                                button.danger type="submit" aria-label={ "Revoke " (t.name) } { "Revoke" }
                            }
                        }
                    }
                } } }
            }
        }
        form.inline method="post" action=(create_action) {
            input type="hidden" name="csrf" value=(csrf);
            label { "Name " input type="text" name="name" required placeholder=(placeholder); }
            @if let Some(connections) = connections {
                label { "For "
                    select name="connection" {
                        @for (id, name) in connections { option value=(id) { (name) " (" (id) ")" } }
                        option value="" { "no connection (a scope of its own)" }
                    }
                }
            }
            button type="submit" { (create_label) }
        }
    }
}

/// A token's secret, in the one response that shows it.
pub fn token_shown_once(title: &str, secret: &str, how_to_use: Markup) -> Markup {
    html! {
        section.card.secret role="alert" {
            h2 { (title) }
            p { strong { "Copy it now: it is shown only once." } " " (how_to_use) }
            p { code.copy.token { (secret) } }
        }
    }
}
