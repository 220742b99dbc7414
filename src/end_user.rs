//! The pages end users (and admins testing a connection) see in their browser outside the
//! portal: the device activation confirmation and its result, the SAML test sign-in.

use maud::html;

use crate::page::layout;

/// What a test sign-in received: the page an admin checks after configuring an IdP.
pub struct TestResult<'a> {
    pub identity: &'a str,
    pub connection: &'a str,
    pub email: Option<&'a str>,
    pub groups: &'a [String],
    pub directory: &'a str,
    pub admin_groups: &'a [String],
}

pub fn test_result(t: &TestResult<'_>) -> String {
    layout(
        "Test sign-in",
        None,
        html! {
            h1 { "Signed in" }
            p { "Your identity provider signed you in as " strong { (t.identity) } " through the connection " code { (t.connection) } "." }
            p {
                "Email: " (t.email.unwrap_or("none")) br;
                "Groups: " @if t.groups.is_empty() { "none" } @else { (t.groups.join(", ")) } br;
                "Directory user: " (t.directory) br;
                "Admin: "
                @if t.admin_groups.is_empty() { "no (no group mapped to the admins role matches)" }
                @else { "yes, through " (t.admin_groups.join(", ")) }
            }
        },
    )
}

/// The confirmation an end user sees before signing in to activate a device.
pub fn activation_confirm(
    device: &str,
    os: &str,
    user_code: &str,
    email: &str,
    csrf: &str,
    action: &str,
) -> String {
    layout(
        "Activate this Mac",
        None,
        html! {
            h1 { "Activate " (device) }
            section.card {
                p { "A device asked to be activated for " strong { (email) } ":" }
                p { strong { (device) } " (" (os) ")" }
                p { "It shows the code " code.big { (user_code) } ". Continue only if the app on your Mac shows the same code." }
                form method="post" action=(action) {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { "Continue with single sign-on" }
                }
            }
        },
    )
}

/// The end of an activation in the browser.
pub fn activation_result(device: &str, approved: bool, message: &str) -> String {
    layout(
        if approved {
            "Activated"
        } else {
            "Activation refused"
        },
        None,
        html! {
            h1 { @if approved { "Activated: " (device) } @else { "Activation refused" } }
            p.notice[!approved] { (message) }
        },
    )
}
