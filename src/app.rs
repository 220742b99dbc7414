//! The application behind the gatekeeper: routing, the one log line per request, and the
//! conversion of handler errors into responses (through [`crate::error`]).

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use crate::config::Config;
use crate::db::Db;
use crate::db::admin::SignIn;
use crate::db::health::State;
use crate::db::idp::Purpose;
use crate::error::{HttpError, Reason, Surface, new_request_id};
use crate::http::{Request, Response};
use crate::metrics::Metrics;
use crate::saml::identity::Resolved;
use crate::saml::signing::LazySpKey;

pub struct App {
    pub db: Arc<Db>,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub scim: crate::scim::Scim,
    pub admin: crate::admin::Admin,
    pub licensing: crate::licensing::api::LicensingApi,
    pub sp_key: Arc<LazySpKey>,
    /// Limits on sign-in starts and activations, shared with the portal and licensing.
    pub pre_auth: Arc<crate::preauth::PreAuth>,
    pub public_url: String,
    /// Only in `seatgate demo`.
    pub demo_idp: Option<crate::demo::idp::DemoIdp>,
    /// The time the limiters and housekeeping read; handlers still call
    /// `clock::now_unix()` directly.
    pub clock: crate::clock::Clock,
}

type Handled = Result<Response, HttpError>;

impl App {
    /// The largest body any route accepts (the inner server's safety bound).
    pub fn max_body(&self) -> usize {
        let l = &self.config.limits;
        [
            l.body_max_scim,
            l.body_max_saml,
            l.body_max_api,
            l.body_max_admin,
            l.body_max_other,
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
    }

    /// Answers one request. Never panics on bad input; every error becomes a response here.
    pub fn handle(&self, req: &Request) -> Response {
        if req.header(crate::http::PROBE_HEADER).is_some() {
            // The gatekeeper checking a new connection is served; not a client request.
            return Response::new(204, "text/plain", Vec::new());
        }
        let started = Instant::now();
        // A panicking handler costs its request a 500, never the app thread (the pool is
        // small, and a lost thread is never replaced). Unwind safety: the shared state
        // behind `self` is mutexes that recover from poisoning and SQLite transactions
        // that roll back when dropped.
        let (route, result) = std::panic::catch_unwind(AssertUnwindSafe(|| self.route(req)))
            .unwrap_or_else(|payload| ("(panicked)", Err(panicked(payload.as_ref()))));
        let surface = Surface::for_path(&req.path);
        let response = match result {
            Ok(r) => r,
            Err(e) => e.render(surface),
        };
        let response = with_safe_headers(response, surface);
        let response = with_security_headers(
            response,
            self.config.tls.mode != crate::config::TlsMode::Off,
        );
        let elapsed = started.elapsed();
        self.metrics
            .observe(route, &req.method, response.status, elapsed);
        log::info!(
            target: "seatgate::access",
            "{} {} {} {:.1}ms {}",
            req.method,
            route,
            response.status,
            elapsed.as_secs_f64() * 1000.0,
            req.client
        );
        response
    }

    /// Picks the handler. Returns the route pattern (for logs and metrics, never the raw
    /// path, which could carry identifiers) and the handler's result.
    fn route(&self, req: &Request) -> (&'static str, Handled) {
        let get = matches!(req.method.as_str(), "GET" | "HEAD");
        if req.path == crate::scim::api::BASE_PATH || req.path.starts_with("/scim/v2/") {
            let (route, response) = self.scim.handle(req);
            return (route, Ok(response));
        }
        if let Some(idp) = &self.demo_idp
            && req.path.starts_with(crate::demo::idp::PATH_PREFIX)
        {
            return idp.handle(req);
        }
        if req.path.starts_with(crate::admin::api::PREFIX) {
            return self.admin.api(req);
        }
        if req.path == "/setup" {
            return self.admin.setup(req);
        }
        if req.path == "/admin" || req.path.starts_with("/admin/") {
            return self.admin.handle(req);
        }
        if let Some(handled) = self.licensing.handle(req) {
            return handled;
        }
        #[cfg(debug_assertions)]
        if req.path == TEST_PANIC_PATH && test_panic_route_enabled() {
            panic!("the test panic route panicked on purpose");
        }
        match req.path.as_str() {
            "/healthz" => ("/healthz", only(get, "GET, HEAD", || Ok(health()))),
            "/readyz" => ("/readyz", only(get, "GET, HEAD", || Ok(self.ready()))),
            "/metrics" => (
                "/metrics",
                only(get, "GET, HEAD", || self.metrics_page(req)),
            ),
            "/saml/metadata" => (
                "/saml/metadata",
                only(get, "GET, HEAD", || self.sp_metadata(None)),
            ),
            "/saml/login" => (
                "/saml/login",
                only(get, "GET, HEAD", || self.saml_login(req, None)),
            ),
            p if p.starts_with("/saml/acs/") => (
                "/saml/acs/{connection}",
                only(req.method == "POST", "POST", || {
                    self.saml_acs(req, &p["/saml/acs/".len()..])
                }),
            ),
            p if p.starts_with("/saml/login/") => (
                "/saml/login/{connection}",
                only(get, "GET, HEAD", || {
                    self.saml_login(req, Some(&p["/saml/login/".len()..]))
                }),
            ),
            p if p.starts_with("/saml/metadata/") => (
                "/saml/metadata/{connection}",
                only(get, "GET, HEAD", || {
                    self.sp_metadata(Some(&p["/saml/metadata/".len()..]))
                }),
            ),
            _ => ("(unmatched)", Err(HttpError::not_found())),
        }
    }

    /// Starts SP-initiated sign-in: 302 to the IdP with the browser-binding cookie.
    fn saml_login(&self, req: &Request, connection: Option<&str>) -> Handled {
        let email = crate::http::query_param(&req.query, "email")?;
        let return_to = crate::http::query_param(&req.query, "return")?;
        let target = match (connection, email.as_deref()) {
            (Some(c), _) => crate::saml::login::Target::Connection(c),
            (None, Some(e)) => crate::saml::login::Target::Email(e),
            (None, None) => {
                return Err(HttpError::new(
                    Reason::BadRequest,
                    "Start sign-in with your work email address (?email=).",
                ));
            }
        };
        let started = crate::saml::login::start(
            &self.db,
            &self.public_url,
            &self.sp_key,
            target,
            Purpose::Test,
            return_to.as_deref(),
            self.pre_auth.admit(req.client)?,
        )?;
        Ok(Response::new(302, "text/plain; charset=utf-8", Vec::new())
            .with_header("Location", &started.location)
            .with_header("Set-Cookie", &started.set_cookie))
    }

    /// The ACS: validates the response, records the attempt in the sign-in log, and
    /// completes what the sign-in was started for.
    fn saml_acs(&self, req: &Request, connection: &str) -> Handled {
        let mut entry = SignIn {
            at: crate::clock::now_unix(),
            method: "saml".into(),
            purpose: "unknown".into(),
            connection_id: Some(connection.to_string()),
            identity: None,
            outcome: "OK".into(),
            detail: None,
            client: req.client.to_string(),
            count: 1,
        };
        let result = self.complete_sign_in(req, connection, &mut entry);
        if let Err(e) = &result {
            entry.outcome = e.reason.code().to_string();
            entry.detail = e.detail.clone();
        }
        crate::admin::record(&self.db, &entry);
        let clear_binding = crate::http::Cookies::for_public_url(&self.public_url).set(
            crate::saml::login::BINDING_COOKIE,
            "",
            crate::saml::login::BINDING_PATH,
            0,
            crate::http::SameSite::None,
        );
        result.map(|r| r.with_extra_header("Set-Cookie", &clear_binding))
    }

    fn complete_sign_in(&self, req: &Request, connection: &str, entry: &mut SignIn) -> Handled {
        let signed_in = crate::saml::acs::consume(
            &self.db,
            &self.public_url,
            connection,
            &req.body,
            req.header("cookie"),
        )?;
        entry.purpose = signed_in.purpose.as_str().into();
        entry.identity = Some(signed_in.identity.clone());
        let resolved = crate::saml::identity::resolve(&self.db, &signed_in, signed_in.jit_users)?;
        let user_id = match &resolved {
            Resolved::User { id, .. } => Some(id.as_str()),
            Resolved::NotProvisioned => None,
        };
        let admin_groups = self.db.read(|tx| {
            crate::db::admin::admin_groups_matching(
                tx,
                user_id,
                Some(&signed_in.connection),
                &signed_in.groups,
            )
        })?;
        match signed_in.purpose {
            Purpose::Admin => {
                self.admin
                    .complete_sso(&signed_in, &resolved, &admin_groups, req.client)
            }
            Purpose::Activation => self.licensing.complete_activation(&signed_in, &resolved),
            Purpose::Test => {
                let directory = match &resolved {
                    Resolved::User {
                        user_name, active, ..
                    } => format!(
                        "{user_name} ({})",
                        if *active { "active" } else { "inactive" }
                    ),
                    Resolved::NotProvisioned => {
                        "not provisioned (SCIM has not pushed this user)".into()
                    }
                };
                let page = crate::admin::pages::test_result(&crate::admin::pages::TestResult {
                    identity: &signed_in.identity,
                    connection: &signed_in.connection,
                    email: signed_in.email.as_deref(),
                    groups: &signed_in.groups,
                    directory: &directory,
                    admin_groups: &admin_groups,
                });
                Ok(crate::admin::html(page))
            }
        }
    }

    /// SP metadata: every connection's ACS, or one connection's (for IdPs that take one).
    fn sp_metadata(&self, connection: Option<&str>) -> Handled {
        let mut connections = self.db.read(crate::db::idp::list)?;
        if let Some(one) = connection {
            connections.retain(|c| c.id == one);
            if connections.is_empty() {
                return Err(HttpError::new(
                    Reason::NotFound,
                    "There is no IdP connection with that id.",
                ));
            }
        }
        // Tell IdPs requests are signed only if every connection listed gets them signed.
        let signed = !connections.is_empty() && connections.iter().all(|c| c.options.sign_requests);
        let ids: Vec<String> = connections.into_iter().map(|c| c.id).collect();
        let xml = crate::saml::metadata::sp_metadata(
            &self.public_url,
            &ids,
            &self
                .sp_key
                .get()
                .map_err(|e| {
                    log::error!("cannot load the SAML request-signing key: {e}");
                    HttpError::internal()
                })?
                .certificate_b64(),
            signed,
            crate::clock::now_unix(),
        );
        Ok(Response::new(
            200,
            "application/samlmetadata+xml",
            xml.into_bytes(),
        ))
    }

    fn ready(&self) -> Response {
        let fail = |reason: Reason, message: &str| {
            Response::json(
                503,
                &serde_json::json!({"status": "fail", "reason": reason.code(), "message": message}),
            )
        };
        match crate::db::health::global().state() {
            State::Corrupt { .. } => {
                return fail(
                    Reason::DatabaseCorrupt,
                    "The database is damaged and seatgate accepts no changes: restore a backup (the log and the admin portal say which, and how).",
                );
            }
            State::DiskFull => {
                return fail(
                    Reason::DiskFull,
                    "The disk is full: changes fail until space is freed on the data directory's file system.",
                );
            }
            State::Ok if !crate::db::health::global().start_check_done() => {
                return fail(
                    Reason::DatabaseChecking,
                    "seatgate is checking the database for damage (PRAGMA quick_check) and is ready when it passes.",
                );
            }
            State::Ok => {}
        }
        match self.db.ping() {
            Ok(()) => Response::json(200, &serde_json::json!({"status": "pass"})),
            Err(e) => {
                log::warn!("readiness check failed: {e}");
                Response::json(
                    503,
                    &serde_json::json!({"status": "fail", "reason": "DATABASE_UNAVAILABLE"}),
                )
            }
        }
    }

    fn metrics_page(&self, req: &Request) -> Handled {
        let cfg = &self.config.metrics;
        if !cfg.enabled {
            return Err(HttpError::not_found());
        }
        let presented = req.bearer_token().unwrap_or("");
        // Compare hashes so the time taken does not depend on where the strings differ.
        let ok = crate::crypto::constant_time_eq(
            crate::crypto::sha256_hex(presented.as_bytes()).as_bytes(),
            crate::crypto::sha256_hex(cfg.token.as_bytes()).as_bytes(),
        );
        if !ok {
            let e = HttpError::new(
                Reason::Unauthorized,
                "Send the metrics token as 'Authorization: Bearer <token>'.",
            );
            return Ok(e
                .render(Surface::Api)
                .with_header("WWW-Authenticate", "Bearer realm=\"seatgate metrics\""));
        }
        Ok(Response::new(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            self.metrics.render().into_bytes(),
        ))
    }
}

/// Logs a handler's panic with its message under a new request id, which the 500 names.
fn panicked(payload: &(dyn Any + Send)) -> HttpError {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    let id = new_request_id();
    log::error!("request {id} panicked: {message}");
    HttpError::internal_logged(&id)
}

/// A route that panics, so the integration tests can show that a panic costs one request
/// and never an app thread. Debug builds only, and there only with
/// `SEATGATE_TEST_PANIC_ROUTE=1`: a release build has no such route at all.
#[cfg(debug_assertions)]
const TEST_PANIC_PATH: &str = "/test/panic";

#[cfg(debug_assertions)]
fn test_panic_route_enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var_os("SEATGATE_TEST_PANIC_ROUTE").is_some_and(|v| v == "1"))
}

fn health() -> Response {
    Response::json(200, &serde_json::json!({"status": "pass"}))
}

/// Runs `f` if the method fits, else 405 naming the methods that do (`allow`).
fn only(method_ok: bool, allow: &'static str, f: impl FnOnce() -> Handled) -> Handled {
    if method_ok {
        f()
    } else {
        Err(HttpError::method_not_allowed(allow))
    }
}

/// Defence in depth against header injection: a response with CR, LF or NUL in a header
/// is never sent (its handler let unvetted input into a header); the request is answered
/// 500 with a request id, and one line logged instead.
fn with_safe_headers(response: Response, surface: Surface) -> Response {
    let Some(name) = response.unsafe_header() else {
        return response;
    };
    let id = new_request_id();
    // Debug formatting: the name is escaped, so the log line stays one line.
    log::error!("request {id}: refused to send a {name:?} header that contains CR, LF or NUL");
    HttpError::internal_logged(&id).render(surface)
}

fn with_security_headers(mut r: Response, tls: bool) -> Response {
    let html = r
        .header("Content-Type")
        .is_some_and(|t| t.starts_with("text/html"));
    let mut add = |k: &str, v: &str| {
        if r.header(k).is_none() {
            r.headers.push((k.to_string(), v.to_string()));
        }
    };
    add("X-Content-Type-Options", "nosniff");
    // Not `no-referrer`: with it, browsers send `Origin: null` on same-origin form POSTs,
    // which the portal's CSRF check must refuse. `same-origin` still sends nothing to
    // other sites (tokens in URLs never leave).
    add("Referrer-Policy", "same-origin");
    add("X-Frame-Options", "DENY");
    add("Cache-Control", "no-store");
    // Any HTML page that did not choose its own policy gets the pages' one.
    if html {
        add("Content-Security-Policy", crate::http::PAGE_CSP);
    }
    if tls {
        add("Strict-Transport-Security", "max-age=31536000");
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item3_headers_with_line_breaks_or_nul_are_never_sent() {
        for bad in [
            "http://127.0.0.1:1/cb\r\nSet-Cookie: sg=x",
            "a\nb",
            "a\rb",
            "a\0b",
        ] {
            let split = Response::new(303, "text/plain", Vec::new())
                .with_header("Location", bad)
                .with_header("Set-Cookie", "sg_saml=; Max-Age=0");
            let r = with_safe_headers(split, Surface::Api);
            assert_eq!(r.status, 500, "{bad:?}");
            assert!(r.header("location").is_none(), "{bad:?}");
            assert!(r.header("set-cookie").is_none(), "{bad:?}");
            assert!(r.unsafe_header().is_none());
            let body: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
            assert_eq!(body["reason"], "INTERNAL_ERROR");
            assert!(body["request_id"].is_string(), "{body}");
        }
        let ok = Response::new(303, "text/plain", Vec::new())
            .with_header("Location", "http://127.0.0.1:1/cb?code=a%0D%0A");
        assert_eq!(with_safe_headers(ok.clone(), Surface::Html), ok);
        let bad_name = Response::new(200, "text/plain", Vec::new()).with_header("X\r\nA", "v");
        assert_eq!(with_safe_headers(bad_name, Surface::Html).status, 500);
    }
}
