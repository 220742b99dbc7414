//! The invitation landing page (`/invite/{token}`): what an invitee sees after opening the
//! link in their email. Showing it marks the invitation opened without spending the link
//! (mail scanners open links too); Continue spends it and says what to do: install the
//! app, then sign in with their email, or, for a license-key invitation, the key for
//! their Mac, shown once. Unknown, expired, used and revoked links all answer the same
//! 404; both routes are under the pre-authentication limits, so guessing is slow. The
//! Continue form carries a double-submit token (a cookie the page set), and its Origin
//! must be the gateway's, like every form before a session.

use maud::{Markup, html};

use crate::app::App;
use crate::crypto::{constant_time_eq, new_secret_token};
use crate::deploy::invitations;
use crate::domain::problem::Reason;
use crate::error::HttpError;
use crate::http::{Request, Response};
use crate::page::layout;
use crate::pipeline::Handled;

const CONTINUE_COOKIE: &str = "sg_invite";

fn page(body: Markup) -> String {
    layout("Your invitation", None, body)
}

impl App {
    fn organization(&self) -> String {
        crate::deploy::organization(&self.config, &self.public_url)
    }

    /// `GET /invite/{token}`.
    pub fn invitation_page(&self, token: &str) -> Handled {
        let inv = invitations::open(&self.db, token, self.clock.now_unix())?;
        let csrf = new_secret_token();
        let organization = self.organization();
        let body = html! {
            h1 { "Set up the app on your Mac" }
            p { (organization) " invited " strong { (inv.email) } " to install and activate the app." }
            @if inv.method == "key" {
                p { "Continue to get the license key for your Mac. It is shown once, so keep this page open until the app is activated." }
            } @else {
                p { "Continue for the steps. You will sign in with " strong { (inv.email) } " at your organization's sign-in page." }
            }
            form method="post" {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" { "Continue" }
            }
            p.muted { "This link works until " (crate::clock::rfc3339(inv.expires_at)[..10].to_string()) " and can be used once." }
        };
        let cookie = crate::http::Cookies::for_public_url(&self.public_url).set(
            CONTINUE_COOKIE,
            &csrf,
            "/",
            3600,
            crate::http::SameSite::Strict,
        );
        Ok(Response::page(200, page(body))
            .with_header("Referrer-Policy", "no-referrer")
            .with_header("Set-Cookie", &cookie))
    }

    /// `POST /invite/{token}`: Continue.
    pub fn invitation_continue(&self, req: &Request, token: &str) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let sent = form.get("csrf").map(String::as_str).unwrap_or("");
        let cookie = crate::http::Cookies::for_public_url(&self.public_url)
            .get(req, CONTINUE_COOKIE, "/")
            .unwrap_or("");
        if !crate::public_url::origin_matches(req, &self.public_url) {
            return Err(HttpError::new(
                Reason::OriginMismatch,
                "Continue from the invitation page: open the link in your email again.",
            ));
        }
        if cookie.is_empty() || !constant_time_eq(sent.as_bytes(), cookie.as_bytes()) {
            return Err(HttpError::new(
                Reason::CsrfFailed,
                "Open the link in your email again and continue from that page.",
            ));
        }
        let done = invitations::proceed(&self.db, token, self.clock.now_unix())?;
        let inv = &done.invitation;
        let download = self.config.invitations.download_url.as_str();
        let server = self.public_url.as_str();
        let body = html! {
            h1 { "Set up the app on your Mac" }
            ol.steps {
                li {
                    strong { "Install the app. " }
                    @if download.is_empty() {
                        "Get it from your organization's Self Service app, or ask your IT administrator."
                    } @else {
                        a href=(download) { "Download the app" } "."
                    }
                }
                @match &done.license_key {
                    Some(key) => li {
                        strong { "Activate it with this license key" } " (choose “Activate with a license key” in the app):"
                        p { code.copy.token { (key) } }
                        p.muted { "It activates one Mac and is shown only now. Command line: "
                            code { "seatgate client activate --server " (server) " --key " (key) } }
                    },
                    None => li {
                        strong { "Activate it with your work email. " }
                        "In the app, choose “Activate with single sign-on” and enter " strong { (inv.email) } "; sign in at your organization's page when it opens. "
                        p.muted { "Command line: " code { "seatgate client activate --server " (server) " --email " (inv.email) } }
                    },
                }
            }
            p.muted { "This invitation link has now been used. If something goes wrong, ask your IT administrator." }
        };
        Ok(Response::page(200, page(body)).with_header("Referrer-Policy", "no-referrer"))
    }
}
