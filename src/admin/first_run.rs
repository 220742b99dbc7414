//! First-run setup from the one-time link `seatgate serve` prints: create the break-glass
//! admin, confirm the public URL, then review TLS (download the CA to trust).
//!
//! The token travels in the link's fragment, which browsers never send; a small
//! same-origin script copies it into the form (without JavaScript, paste it).

use maud::html;

use super::licenses::field;
use super::pages::layout;
use super::{Admin, Handled, password};
use crate::audit::Actor;
use crate::crypto::sha256_hex;
use crate::db::admin::{Session, SessionKind};
use crate::db::settings;
use crate::domain::problem::Reason;
use crate::error::HttpError;
use crate::http::{Request, Response};

pub const SETUP_SCRIPT_PATH: &str = "/admin/assets/setup.js";
pub const SETUP_SCRIPT: &str = "(function () {\n  var t = decodeURIComponent(location.hash.slice(1));\n  var f = document.getElementById('token');\n  if (t && f) { f.value = t; history.replaceState(null, '', location.pathname); }\n})();\n";
const CSP_WITH_SCRIPT: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'";

/// The setup code in what was typed: the code itself, or a whole setup link pasted
/// (`…/setup#CODE`).
fn setup_code(typed: &str) -> &str {
    let typed = typed.trim();
    typed
        .rsplit_once('#')
        .map_or(typed, |(_, code)| code.trim())
}

impl Admin {
    /// `GET /setup`: the first-run form (until setup is done).
    pub(crate) fn setup_form(&self) -> Handled {
        self.setup_page(None, "", "admin", &self.public_url.clone(), 200)
    }

    fn setup_done(&self) -> Result<bool, HttpError> {
        Ok(self
            .db
            .read(|tx| settings::get(tx, settings::SETUP_COMPLETED_AT))?
            .is_some())
    }

    fn setup_page(
        &self,
        notice: Option<&str>,
        token: &str,
        username: &str,
        public_url: &str,
        status: u16,
    ) -> Handled {
        if self.setup_done()? {
            return Ok(Response::see_other("/admin/login"));
        }
        let page = layout(
            "Set up seatgate",
            None,
            html! {
                h1 { "Set up seatgate" }
                @if let Some(n) = notice { p.notice role="alert" { (n) } }
                form method="post" action="/setup" {
                    section.card {
                        h2 { "1. Setup code" }
                        p.muted { "Filled in from the setup link. If it is empty, paste the whole setup link here." }
                        input #token type="password" name="token" value=(token) required autocomplete="off";
                    }
                    section.card {
                        h2 { "2. Break-glass administrator" }
                        p.muted { "A local account for setup and for when your identity provider is unavailable. Admins sign in by SSO once an IdP is connected." }
                        label for="username" { "Username" }
                        input #username type="text" name="username" value=(username) required autocomplete="username";
                        label for="password" { "Password (at least 12 characters)" }
                        input #password type="password" name="password" required minlength="12" autocomplete="new-password";
                        label for="confirm" { "Password again" }
                        input #confirm type="password" name="confirm" required minlength="12" autocomplete="new-password";
                    }
                    section.card {
                        h2 { "3. Public URL" }
                        p.muted { "Where Macs, browsers and your identity provider reach this gateway. IdPs are given URLs under it, so choose the final one now. Left as shown, it follows the address seatgate listens on (a new --listen port moves it); a URL you type here stays fixed." }
                        input #public_url type="url" name="public_url" value=(public_url) required;
                    }
                    button type="submit" { "Finish setup" }
                }
                script src=(SETUP_SCRIPT_PATH) {}
            },
        );
        Ok(Response::page(status, page).with_header("Content-Security-Policy", CSP_WITH_SCRIPT))
    }

    pub(crate) fn complete_setup(&self, req: &Request) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let username = crate::caps::USERNAME.check(field(&form, "username").trim())?;
        crate::caps::PASSWORD.check(field(&form, "password"))?;
        let public_url = field(&form, "public_url").trim().trim_end_matches('/');
        // The code, or the whole link pasted: the code is what follows '#'.
        let token = crate::caps::SETUP_CODE.check(setup_code(field(&form, "token")))?;
        // A form refused for anything but its code keeps every field but the passwords.
        let again = |notice: &str| self.setup_page(Some(notice), token, username, public_url, 400);
        if self.setup_done()? {
            return Ok(Response::see_other("/admin/login"));
        }
        if let Err(refused) = self.failures.check_client(req.client) {
            return Err(HttpError::new(
                Reason::TooManyRequests,
                "Too many wrong setup codes. Wait a few minutes, then try again.",
            )
            .with_retry_after(refused.retry_after));
        }
        if field(&form, "password") != field(&form, "confirm") {
            return again("The two passwords differ.");
        }
        if !password::valid_username(username) {
            return again(&format!("The username takes {}.", password::USERNAME_RULE));
        }
        if !(public_url.starts_with("https://") || public_url.starts_with("http://"))
            || public_url.contains(['?', '#', ' '])
        {
            return again("The public URL must be like https://seatgate.example.com.");
        }
        let new_password = match password::NewPassword::new(username, field(&form, "password")) {
            Ok(p) => p,
            Err(e) => return again(&e.to_string()),
        };
        let now = self.clock.now_unix();
        let token_hash = sha256_hex(token.as_bytes());
        let accepted = self.db.write(|tx| {
            if !settings::consume_setup_token(tx, &token_hash, now)? {
                return Ok::<_, HttpError>(false);
            }
            password::set(
                tx,
                &new_password,
                &Actor::Setup,
                Some("first-run setup"),
                now,
            )?;
            settings::put(tx, settings::SETUP_COMPLETED_AT, &now.to_string(), now)?;
            // The URL shown (the one in use) is kept only as "follow the listener"; a
            // different one the admin typed is authoritative from the next start.
            if public_url != self.public_url {
                settings::put(tx, settings::PUBLIC_URL, public_url, now)?;
            }
            Ok(true)
        })?;
        if !accepted {
            self.failures.record_client_failure(req.client);
            return self.setup_page(
                Some("That setup code is wrong, used or expired. Mint a new link with `seatgate setup-link`."),
                "",
                username,
                public_url,
                400,
            );
        }
        log::info!(
            "first-run setup completed by {username} from {}",
            req.client
        );
        self.record_local_sign_in(username, &req.client.to_string(), "first-run setup");
        self.begin(
            SessionKind::Local,
            username,
            username,
            None,
            req.client,
            "/admin/welcome",
        )
    }

    /// After setup: TLS review and the next steps.
    pub(crate) fn welcome_page(&self, session: &Session) -> Handled {
        let configured = self.db.read(|tx| settings::get(tx, settings::PUBLIC_URL))?;
        let cert = self
            .server_cert
            .as_ref()
            .and_then(|p| crate::net::tls::describe(p).ok());
        let restart = configured.as_deref().is_some_and(|u| u != self.public_url);
        Ok(Response::page(
            200,
            layout(
                "Welcome",
                Some(session),
                html! {
                    h1 { "seatgate is set up" }
                    @if restart {
                        p.notice { "The public URL becomes " code { (configured.as_deref().unwrap_or("")) } " at the next restart of the service." }
                    }
                    section.card {
                        h2 { "TLS" }
                        @match &cert {
                            Some(c) => {
                                p { "This gateway serves HTTPS with a certificate for " strong { (c.names.join(", ")) } ", valid until " (crate::admin::audit::when(c.not_after)) "." }
                                @if self.ca_cert.is_some() {
                                    p { "It is issued by seatgate's own certificate authority. Macs and browsers must trust that CA once:" }
                                    p { a.button href="/admin/tls/ca.pem" download { "Download the CA certificate" } }
                                    p.muted { "On a Mac: " code { "sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain seatgate-ca.pem" }
                                        ", or deploy it to every Mac with the configuration profile on the " a href="/admin/deploy" { "Deploy" } " page. To use your own certificate instead, set " code { "[tls] mode = \"files\"" } "." }
                                }
                            },
                            None => p { "TLS is off: put seatgate behind a reverse proxy that serves HTTPS." },
                        }
                    }
                    section.card {
                        h2 { "Next steps" }
                        ol {
                            li { a href="/admin/idp/new" { "Connect your identity provider" } " (SAML, then SCIM provisioning)." }
                            li { a href="/admin/licenses" { "Register your license" } " and map IdP groups to seats and to the admins role." }
                            li { "Point the Macs at " code { (self.public_url) } "; users activate with their work email." }
                        }
                    }
                },
            ),
        ))
    }

    fn record_local_sign_in(&self, username: &str, client: &str, detail: &str) {
        super::record(
            &self.db,
            &crate::db::admin::SignIn {
                at: self.clock.now_unix(),
                method: "local".into(),
                purpose: crate::domain::identity::Purpose::Admin.as_str().into(),
                connection_id: None,
                identity: Some(username.to_string()),
                outcome: "OK".into(),
                detail: Some(detail.to_string()),
                client: client.to_string(),
                count: 1,
            },
        );
    }
}

pub fn setup_script() -> Response {
    Response::new(
        200,
        "text/javascript; charset=utf-8",
        SETUP_SCRIPT.as_bytes().to_vec(),
    )
    .with_header("Cache-Control", "max-age=3600")
}
