//! The admin portal's access layer: sign-in (SSO for the admins group, break-glass
//! passwords), sessions, CSRF, and the pages behind them.
//!
//! Sessions: a 256-bit cookie `__Host-sg_admin` (Secure, HttpOnly, SameSite=Lax, Path=/);
//! only its SHA-256 is stored. A session ends at logout, after `admin.session_idle` without
//! a request, at `admin.session_lifetime` after sign-in, when its break-glass password
//! changes, and (SSO) as soon as the directory user is deactivated or deleted.
//!
//! CSRF: every form carries the session's token, compared in constant time, and a POST
//! whose Origin is not ours is refused. The sign-in form, before any session exists, uses
//! a double-submit cookie.

pub mod api;
mod api_keys;
mod api_mail;
mod api_policies;
mod api_tokens;
mod api_write;
mod audit;
mod audit_text;
mod charts;
mod connections;
mod csv;
mod deploy;
mod first_run;
pub mod forms;
pub mod history;
pub(crate) mod images;
mod invitations;
mod keys;
mod licenses;
mod limiter;
pub mod openapi;
pub mod pages;
pub mod password;
mod policies;
mod updates;
mod users;
mod vms;

use std::net::IpAddr;
use std::sync::Arc;

use limiter::FailureLimiter;

use crate::clock::Clock;
use crate::config::AdminConfig;
use crate::crypto::{constant_time_eq, new_secret_token, sha256_hex};
use crate::db::Db;
use crate::db::admin::{self as store, NewSession, Session, SessionKind, SignIn};
use crate::domain::identity::Purpose;
use crate::domain::identity::Resolved;
use crate::domain::identity::SignedIn;
use crate::domain::problem::Reason;
use crate::error::HttpError;
use crate::http::{Cookies, Request, Response, SameSite};
use crate::saml::signing::LazySpKey;

/// Cookie names before the deployment's prefix (`__Host-` over HTTPS).
pub const SESSION_COOKIE: &str = "sg_admin";
const LOGIN_COOKIE: &str = "sg_login";
/// `last_seen_at` is written at most this often, so browsing does not write every request.
const TOUCH_RESOLUTION_SECS: i64 = 30;

type Handled = Result<Response, HttpError>;

pub struct Admin {
    db: Arc<Db>,
    sp_key: Arc<LazySpKey>,
    config: AdminConfig,
    public_url: String,
    /// Where `public_url` came from, for the mismatch banner.
    public_url_source: crate::public_url::Source,
    cookies: Cookies,
    failures: FailureLimiter,
    /// For the diagnosis on a user's page.
    device_limit: u32,
    /// Extra CA for fetching IdP metadata over HTTPS (`saml.metadata_ca_file`).
    metadata_ca_file: Option<String>,
    /// The local CA certificate browsers and Macs must trust (self-signed TLS only).
    ca_cert: Option<std::path::PathBuf>,
    /// The server certificate, for the TLS review after setup.
    server_cert: Option<std::path::PathBuf>,
    /// The wall clock every portal handler reads (manual in tests).
    pub(crate) clock: Clock,
    /// Inside `seatgate demo` (the development vendor key is trusted).
    pub(crate) demo: bool,
    /// What the last change did, for the next page of its session.
    pub(crate) flash: forms::Flash,
    /// The whole configuration, for the MDM profile (`deploy`).
    gateway: Arc<crate::config::Config>,
}

/// What the portal needs from the rest of the configuration.
pub struct PortalOptions {
    pub device_limit: u32,
    pub metadata_ca_file: Option<String>,
    pub ca_cert: Option<std::path::PathBuf>,
    pub server_cert: Option<std::path::PathBuf>,
    pub public_url_source: crate::public_url::Source,
    /// The sign-in failure windows' time.
    pub clock: crate::clock::Clock,
    /// Inside `seatgate demo`: entitlements signed with the development key are trusted.
    pub demo: bool,
    /// The whole configuration, for what the Deploy page builds (the MDM profile).
    pub gateway: Arc<crate::config::Config>,
}

impl Admin {
    /// The server's bounds on the lease settings policies may ask for.
    pub(crate) fn lease_bounds(&self) -> crate::domain::policy::LeaseBounds {
        crate::licensing::policies::bounds(&self.gateway.lease)
    }

    pub fn new(
        db: Arc<Db>,
        sp_key: Arc<LazySpKey>,
        config: AdminConfig,
        public_url: String,
        options: PortalOptions,
    ) -> Admin {
        let failures = FailureLimiter::new(
            config.login_failures,
            config.login_window,
            options.clock.clone(),
        );
        Admin {
            db,
            sp_key,
            config,
            cookies: Cookies::for_public_url(&public_url),
            public_url,
            public_url_source: options.public_url_source,
            failures,
            device_limit: options.device_limit,
            metadata_ca_file: options.metadata_ca_file,
            ca_cert: options.ca_cert,
            server_cert: options.server_cert,
            clock: options.clock,
            demo: options.demo,
            flash: forms::Flash::default(),
            gateway: options.gateway,
        }
    }

    /// Where `req` arrived, if that is not the public URL.
    pub(crate) fn mismatch(&self, req: &Request) -> Option<crate::public_url::Mismatch> {
        crate::public_url::mismatch(
            req,
            &crate::public_url::PublicUrl {
                url: self.public_url.clone(),
                source: self.public_url_source,
            },
        )
    }

    /// The live session of this request, if any; ends it if it has timed out.
    /// Whether the request carries a portal session cookie at all (live or not): an API
    /// call with one that no longer works is told its session ended.
    pub(crate) fn has_session_cookie(&self, req: &Request) -> bool {
        self.cookies.get(req, SESSION_COOKIE, "/").is_some()
    }

    pub(crate) fn session(&self, req: &Request) -> Result<Option<(String, Session)>, HttpError> {
        let Some(token) = self.cookies.get(req, SESSION_COOKIE, "/") else {
            return Ok(None);
        };
        let id_hash = sha256_hex(token.as_bytes());
        let now = self.clock.now_unix();
        let idle = self.config.session_idle.as_secs() as i64;
        let found = self.db.read(|tx| {
            let Some(s) = store::session(tx, &id_hash)? else {
                return Ok::<_, HttpError>(None);
            };
            // An SSO admin loses the session at once when the directory account is
            // deactivated or deleted, or when neither its directory groups nor the groups its
            // sign-in asserted map to the admins role any more (an unprovisioned admin has
            // only the asserted groups).
            let account_gone = s.kind == SessionKind::Sso.as_str() && {
                let provisioned = (!s.subject.starts_with("idp:")).then_some(s.subject.as_str());
                let inactive = match provisioned {
                    Some(id) => {
                        !crate::db::directory::user_by_id(tx, id)?.is_some_and(|u| u.active)
                    }
                    None => false,
                };
                inactive
                    || store::admin_groups_matching(
                        tx,
                        provisioned,
                        s.connection_id.as_deref(),
                        &s.asserted_groups,
                    )?
                    .is_empty()
            };
            Ok(Some((s, account_gone)))
        })?;
        let Some((session, account_gone)) = found else {
            return Ok(None);
        };
        let live = session.ended_at.is_none()
            && now < session.expires_at
            && now - session.last_seen_at < idle
            && !account_gone;
        if !live {
            if session.ended_at.is_none() {
                self.db.write(|tx| store::end_session(tx, &id_hash, now))?;
            }
            return Ok(None);
        }
        if now - session.last_seen_at >= TOUCH_RESOLUTION_SECS {
            self.db
                .write(|tx| store::touch_session(tx, &id_hash, now))?;
        }
        Ok(Some((id_hash, session)))
    }

    pub(crate) fn overview(&self, session: &Session) -> Handled {
        let (licenses, pools, connections, mappings, local_admins, sign_ins) =
            self.db.read(|tx| {
                Ok::<_, HttpError>((
                    crate::db::licensing::licenses(tx)?,
                    crate::db::portal::pool_usage(tx, self.clock.now_unix())?,
                    crate::db::idp::list(tx)?,
                    store::mappings(tx)?,
                    store::local_admins(tx)?,
                    store::recent_sign_ins(tx, false, 20)?,
                ))
            })?;
        Ok(Response::page(
            200,
            pages::overview(&pages::Overview {
                session,
                licenses: &licenses,
                pools: &pools,
                connections: &connections,
                mappings: &mappings,
                local_admins: &local_admins,
                sign_ins: &sign_ins,
                public_url: &self.public_url,
                now: self.clock.now_unix(),
            }),
        ))
    }

    /// The local CA's certificate, to install where the gateway must be trusted.
    pub(crate) fn ca_certificate(&self) -> Handled {
        let pem = self
            .ca_cert
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .ok_or_else(|| {
                HttpError::new(
                    Reason::NotFound,
                    "This gateway does not use its own certificate authority.",
                )
            })?;
        Ok(
            Response::new(200, "application/x-pem-file", pem).with_header(
                "Content-Disposition",
                "attachment; filename=\"seatgate-ca.pem\"",
            ),
        )
    }

    /// `GET /admin/login`.
    pub(crate) fn login_form(&self) -> Response {
        self.login_page(200, None, "", "")
    }

    fn login_page(
        &self,
        status: u16,
        notice: Option<&str>,
        username: &str,
        email: &str,
    ) -> Response {
        let token = new_secret_token();
        Response::page(status, pages::login(&token, notice, username, email))
            .with_header("Set-Cookie", &self.login_cookie(&token, 1800))
    }

    pub(crate) fn start_sso(&self, cx: &crate::pipeline::Ctx<'_>) -> Handled {
        let req = cx.req;
        let email = crate::http::query_param(&req.query, "email")?.unwrap_or_default();
        if email.trim().is_empty() {
            return Ok(self.login_page(
                200,
                Some("Enter your work email to sign in with SSO."),
                "",
                "",
            ));
        }
        let started = crate::saml::login::start(
            &self.db,
            &self.public_url,
            &self.sp_key,
            crate::saml::login::Target::Email(&email),
            Purpose::Admin,
            Some("/admin"),
            cx.admitted()?,
        );
        match started {
            Ok(started) => Ok(Response::see_other(&started.location)
                .with_header("Set-Cookie", &started.set_cookie)),
            // What the admin can correct on this page: a mistyped address or a domain no
            // connection serves. Shown on the sign-in page, the address kept, not as a
            // dead-end error page.
            Err(p)
                if matches!(
                    p.reason,
                    Reason::DomainUnknown | Reason::BadRequest | Reason::ConnectionIncomplete
                ) =>
            {
                let notice = format!("{} (Reason code {})", p.message, p.reason.code());
                let shown = crate::caps::EMAIL.check(email.trim()).unwrap_or_default();
                Ok(self.login_page(p.reason.status(), Some(&notice), "", shown))
            }
            Err(p) => Err(p.into()),
        }
    }

    pub(crate) fn password_login(&self, req: &Request) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
        // Capped before anything is echoed, hashed, stored or logged.
        let username = crate::caps::USERNAME.check(field("username").trim())?;
        let password = crate::caps::PASSWORD.check(field("password"))?;
        let presented = self.cookies.get(req, LOGIN_COOKIE, "/").unwrap_or("");
        if !crate::public_url::origin_matches(req, &self.public_url) {
            // Not an expired form: the browser is at another address (a changed port, a
            // proxy, another host name). Say which, so the admin can fix it.
            let advice = self
                .mismatch(req)
                .map(|m| m.advice())
                .unwrap_or_else(|| format!("This form was not sent from {}.", self.public_url));
            log::warn!(
                "break-glass sign-in refused from {}: Origin \"{}\" is not {}",
                req.client,
                crate::logging::client_text(req.header("origin").unwrap_or("")),
                self.public_url
            );
            let notice = format!("{advice} (Reason code {})", Reason::OriginMismatch.code());
            let page = pages::login(presented, Some(&notice), username, "");
            return Ok(Response::page(Reason::OriginMismatch.status(), page));
        }
        if presented.is_empty() || !constant_time_eq(presented.as_bytes(), field("csrf").as_bytes())
        {
            return Ok(self.login_page(
                Reason::CsrfFailed.status(),
                Some(
                    "The sign-in form had expired. Please sign in again. (Reason code CSRF_FAILED)",
                ),
                username,
                "",
            ));
        }
        let client = req.client.to_string();
        let stored = self.db.read(|tx| store::local_admin(tx, username))?;
        let logged_as = sign_in_name(username, stored.as_ref().map(|(name, _)| name.as_str()));
        match self.failures.check(username, req.client) {
            Err(refused) => {
                self.record_refusal(&logged_as, refused.scope, &client);
                return Err(HttpError::new(
                    Reason::TooManyRequests,
                    "Too many failed sign-ins. Wait a few minutes, then try again.",
                )
                .with_retry_after(refused.retry_after));
            }
            // Failures for this username from elsewhere slow it down; they never refuse.
            Ok(delay) if !delay.is_zero() => std::thread::sleep(delay),
            Ok(_) => {}
        }
        let verified = match &stored {
            Some((_, hash)) => password::verify(password, hash),
            None => {
                password::verify_nothing(password);
                false
            }
        };
        let Some((canonical, _)) = stored.filter(|_| verified) else {
            self.failures.record_failure(username, req.client);
            self.record_local(&logged_as, Reason::InvalidCredentials.code(), None, &client);
            log::warn!("break-glass sign-in refused for {logged_as} from {client}");
            let page = pages::login(
                presented,
                Some("That username and password do not match. (Reason code INVALID_CREDENTIALS)"),
                username,
                "",
            );
            return Ok(Response::page(401, page));
        };
        self.failures.record_success(username, req.client);
        let now = self.clock.now_unix();
        self.db
            .write(|tx| store::note_local_login(tx, &canonical, now))?;
        self.record_local(&canonical, "OK", None, &client);
        log::info!("break-glass admin {canonical} signed in from {client}");
        self.begin(
            SessionKind::Local,
            &canonical,
            &canonical,
            None,
            req.client,
            "/admin",
        )
    }

    /// A limiter refusal, counted into one sign-in log row per client and window.
    fn record_refusal(&self, logged_as: &str, scope: limiter::Scope, client: &str) {
        let now = self.clock.now_unix();
        let (identity, detail) = match scope {
            limiter::Scope::UserAtClient => (
                Some(logged_as.to_string()),
                "too many failed passwords for this username from this address",
            ),
            limiter::Scope::Client => (None, "too many failed passwords from this address"),
        };
        let entry = SignIn {
            at: now,
            method: "local".into(),
            purpose: Purpose::Admin.as_str().into(),
            connection_id: None,
            identity,
            outcome: Reason::TooManyRequests.code().into(),
            detail: Some(detail.into()),
            client: client.to_string(),
            count: 1,
        };
        let since = now - self.config.login_window.as_secs() as i64;
        if let Err(e) = self.db.write(|tx| store::record_refusal(tx, &entry, since)) {
            log::error!("cannot record a sign-in: {e}");
        }
    }

    /// A one-time sign-in link (`seatgate admin login-link`, the demo): signs in as its
    /// break-glass admin once.
    pub(crate) fn link_login(&self, req: &Request) -> Handled {
        if req.method == "HEAD" {
            // Link checkers and mail scanners probe with HEAD: that must not use the link up.
            return Ok(Response::page(200, String::new()));
        }
        let token = crate::http::query_param(&req.query, "token")?.unwrap_or_default();
        let now = self.clock.now_unix();
        let client = req.client.to_string();
        let username = self
            .db
            .write(|tx| store::consume_login_link(tx, &sha256_hex(token.as_bytes()), now))?;
        let Some(username) = username else {
            self.record_local(
                "(link)",
                Reason::InvalidCredentials.code(),
                Some("unknown, used or expired sign-in link"),
                &client,
            );
            let page = pages::login(
                &new_secret_token(),
                Some(
                    "This sign-in link was already used or has expired. Sign in below, or create a new link with `seatgate admin login-link`.",
                ),
                "",
                "",
            );
            return Ok(Response::page(401, page));
        };
        self.db
            .write(|tx| store::note_local_login(tx, &username, now))?;
        self.record_local(&username, "OK", Some("one-time sign-in link"), &client);
        log::info!("break-glass admin {username} signed in with a one-time link from {client}");
        self.begin(
            SessionKind::Local,
            &username,
            &username,
            None,
            req.client,
            "/admin",
        )
    }

    fn record_local(&self, username: &str, outcome: &str, detail: Option<&str>, client: &str) {
        record(
            &self.db,
            &SignIn {
                at: self.clock.now_unix(),
                method: "local".into(),
                purpose: Purpose::Admin.as_str().into(),
                connection_id: None,
                identity: Some(username.to_string()),
                outcome: outcome.to_string(),
                detail: detail.map(str::to_string),
                client: client.to_string(),
                count: 1,
            },
        );
    }

    /// Completes an SSO sign-in for the portal: an active account in a group mapped to the
    /// admins role gets a session.
    pub fn complete_sso(
        &self,
        signed_in: &SignedIn,
        resolved: &Resolved,
        admin_groups: &[String],
        client: IpAddr,
    ) -> Handled {
        let subject = match resolved {
            Resolved::User { active: false, .. } => {
                return Err(HttpError::new(
                    Reason::UserInactive,
                    "Your account is deactivated in the directory, so it cannot sign in to the admin portal.",
                )
                .with_detail("the directory user is inactive"));
            }
            Resolved::User { id, .. } => id.clone(),
            Resolved::NotProvisioned => {
                format!("idp:{}:{}", signed_in.connection, signed_in.identity)
            }
        };
        if admin_groups.is_empty() {
            return Err(HttpError::new(
                Reason::NotAdmin,
                "You signed in, but your account is not in a group mapped to the admins role. Ask an administrator to add you.",
            )
            .with_detail(format!(
                "no admins mapping matches the directory groups or the asserted groups {:?}",
                signed_in.groups
            )));
        }
        let target = signed_in
            .return_to
            .as_deref()
            .filter(|r| r.starts_with("/admin"))
            .unwrap_or("/admin");
        self.begin(
            SessionKind::Sso,
            &subject,
            &signed_in.identity,
            Some((&signed_in.connection, &signed_in.groups)),
            client,
            target,
        )
    }

    /// Starts a session and sends the browser to `target`.
    fn begin(
        &self,
        kind: SessionKind,
        subject: &str,
        display_name: &str,
        // SSO: the connection and the group values the assertion carried.
        sso: Option<(&str, &[String])>,
        client: IpAddr,
        target: &str,
    ) -> Handled {
        let token = new_secret_token();
        let now = self.clock.now_unix();
        let expires_at = now + self.config.session_lifetime.as_secs() as i64;
        self.db.write(|tx| {
            store::create_session(
                tx,
                &NewSession {
                    id_hash: &sha256_hex(token.as_bytes()),
                    kind,
                    subject,
                    display_name,
                    connection_id: sso.map(|(c, _)| c),
                    csrf_token: &new_secret_token(),
                    client: &client.to_string(),
                    expires_at,
                    asserted_groups: sso.map_or(&[], |(_, g)| g),
                },
                now,
            )
        })?;
        let max_age = self.config.session_lifetime.as_secs();
        Ok(Response::see_other(target)
            .with_header(
                "Set-Cookie",
                &self
                    .cookies
                    .set(SESSION_COOKIE, &token, "/", max_age, SameSite::Lax),
            )
            .with_extra_header("Set-Cookie", &self.login_cookie("", 0)))
    }

    /// Ends this request's session (the pipeline has checked the session and its CSRF).
    pub(crate) fn logout(&self, id_hash: &str) -> Handled {
        self.db
            .write(|tx| store::end_session(tx, id_hash, self.clock.now_unix()))?;
        Ok(Response::see_other("/admin/login").with_header(
            "Set-Cookie",
            &self.cookies.set(SESSION_COOKIE, "", "/", 0, SameSite::Lax),
        ))
    }

    fn login_cookie(&self, token: &str, max_age: u64) -> String {
        self.cookies
            .set(LOGIN_COOKIE, token, "/", max_age, SameSite::Strict)
    }

    /// Every state-changing form: the session's token, and an Origin (when sent) of ours.
    pub(crate) fn check_csrf(&self, req: &Request, session: &Session) -> Result<(), HttpError> {
        let form = crate::http::parse_form(&req.body)?;
        let sent = form.get("csrf").map(String::as_str).unwrap_or("");
        let origin_ok = crate::public_url::origin_matches(req, &self.public_url);
        let token_ok = constant_time_eq(sent.as_bytes(), session.csrf_token.as_bytes());
        if origin_ok && token_ok {
            Ok(())
        } else if !origin_ok && let Some(m) = self.mismatch(req) {
            log::warn!(
                "admin form refused from {}: Origin \"{}\" is not {}",
                req.client,
                m.seen,
                self.public_url
            );
            Err(HttpError::new(Reason::OriginMismatch, m.advice()))
        } else {
            log::warn!(
                "admin form refused from {}: {}",
                req.client,
                if origin_ok {
                    "missing or wrong CSRF token".to_string()
                } else {
                    format!(
                        "Origin \"{}\" is not {}",
                        crate::logging::client_text(req.header("origin").unwrap_or("")),
                        self.public_url
                    )
                }
            );
            Err(HttpError::new(
                Reason::CsrfFailed,
                "This form was not sent from an open admin page. Reload the page and try again.",
            ))
        }
    }
}

/// Creates a one-time sign-in link for break-glass admin `username`, valid for `ttl`.
pub fn login_link(
    db: &Db,
    public_url: &str,
    username: &str,
    ttl: std::time::Duration,
) -> Result<String, LinkError> {
    let token = new_secret_token();
    let now = crate::clock::now_unix();
    db.write(|tx| {
        let Some((canonical, _)) = store::local_admin(tx, username)? else {
            return Err(LinkError::UnknownAdmin(username.to_string()));
        };
        store::create_login_link(
            tx,
            &canonical,
            &sha256_hex(token.as_bytes()),
            now,
            now + ttl.as_secs() as i64,
        )?;
        // Who asked is whoever could run the command or the demo; the link itself is audited.
        crate::db::licensing::audit(
            tx,
            now,
            &crate::audit::Actor::System,
            crate::audit::AuditAction::AdminLoginLinkCreated,
            None,
            crate::db::licensing::AuditAbout {
                subject: Some(&canonical),
                ..Default::default()
            },
        )?;
        Ok(())
    })?;
    Ok(format!("{public_url}/admin/login/link?token={token}"))
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("there is no break-glass admin {0:?}; create one with `seatgate admin set-password`")]
    UnknownAdmin(String),
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
}

/// Records a sign-in attempt; a failure to record is logged, never fatal to the sign-in.
pub fn record(db: &Db, entry: &SignIn) {
    if let Err(e) = db.write(|tx| store::record_sign_in(tx, entry)) {
        log::error!("cannot record a sign-in: {e}");
    }
}

/// How a break-glass attempt's username is recorded: a known admin by name; anything else
/// (often a password typed into the wrong field) only as a short hash, which tells
/// repeated attempts apart without keeping what was typed.
fn sign_in_name(username: &str, known: Option<&str>) -> String {
    match known {
        Some(name) => name.to_string(),
        None => format!(
            "unknown (sha256 {})",
            &sha256_hex(username.to_lowercase().as_bytes())[..8]
        ),
    }
}

/// The portal's stylesheet (cached: it changes only with the binary).
pub fn script() -> Response {
    Response::new(
        200,
        "text/javascript; charset=utf-8",
        crate::page::SCRIPT.as_bytes().to_vec(),
    )
    .with_header("Cache-Control", "max-age=3600")
}

pub fn stylesheet() -> Response {
    Response::new(
        200,
        "text/css; charset=utf-8",
        pages::STYLESHEET.as_bytes().to_vec(),
    )
    .with_header("Cache-Control", "max-age=3600")
}

pub use first_run::setup_script;
