//! The request pipeline: every request the gatekeeper forwards passes the same steps, in
//! this order, as its route in [`crate::routes`] declares them:
//!
//! 1. match the route (404 in the surface's format when nothing matches);
//! 2. 405 with `Allow` when the address does not take the method, and authentication as
//!    the route requires (token APIs, SCIM and the admin API, authenticate first: they
//!    tell an unauthenticated client nothing; browser-facing addresses answer 405 first);
//! 3. the rate limit (pre-authentication limits, a SCIM token's rate);
//! 4. the CSRF check;
//! 5. the handler, with a panic costing its request a 500 and never the thread;
//! 6. one place turns errors into responses ([`crate::error`]), then the safety and
//!    security headers, the SCIM request log, metrics and the access log line.
//!
//! Handlers receive a [`Ctx`]: the request, the path's parameters, and who is calling.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use crate::app::App;
use crate::audit::Actor;
use crate::db::admin::Session;
use crate::db::tokens::{self, Presented, Scope};
use crate::domain::problem::Reason;
use crate::error::{Format, HttpError, new_request_id};
use crate::http::{Request, Response};
use crate::preauth::Admitted;
use crate::routes::{self, Auth, Csrf, Limit, Matched, Route, Surface};

pub type Handled = Result<Response, HttpError>;

/// Who is calling, as the pipeline authenticated them.
pub enum Principal {
    Anonymous,
    /// A portal session, with the SHA-256 of its cookie (to end it).
    Session {
        id_hash: String,
        session: Session,
    },
    AdminToken {
        name: String,
    },
    ScimToken(Presented),
    /// A device's proof of possession, not yet verified (the lease holds its key).
    Device {
        proof: String,
    },
}

/// What a handler gets: the request, its route and parameters, and its caller.
pub struct Ctx<'a> {
    pub req: &'a Request,
    pub route: &'static Route,
    /// Path parameters, their `%XX` escapes decoded.
    params: Vec<(&'static str, std::borrow::Cow<'a, str>)>,
    principal: Principal,
    admitted: Option<Admitted>,
}

impl<'a> Ctx<'a> {
    /// A path parameter the route's pattern names (`""` when it has none by that name).
    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(k, _)| *k == name)
            .map_or("", |(_, v)| v.as_ref())
    }

    /// The portal session of a route whose table entry requires one.
    pub fn session(&self) -> Result<&Session, HttpError> {
        match &self.principal {
            Principal::Session { session, .. } => Ok(session),
            _ => Err(self.misdeclared("a portal session")),
        }
    }

    /// The hash that names this request's session (to end it).
    pub fn session_id(&self) -> Result<&str, HttpError> {
        match &self.principal {
            Principal::Session { id_hash, .. } => Ok(id_hash),
            _ => Err(self.misdeclared("a portal session")),
        }
    }

    /// The SCIM token of a SCIM route.
    pub fn scim_token(&self) -> Result<&Presented, HttpError> {
        match &self.principal {
            Principal::ScimToken(t) => Ok(t),
            _ => Err(self.misdeclared("a SCIM token")),
        }
    }

    /// The device's proof of a device route.
    pub fn device_proof(&self) -> Result<&str, HttpError> {
        match &self.principal {
            Principal::Device { proof } => Ok(proof),
            _ => Err(self.misdeclared("a device proof")),
        }
    }

    /// The admission a pre-authentication-limited route got.
    pub fn admitted(&self) -> Result<Admitted, HttpError> {
        self.admitted
            .ok_or_else(|| self.misdeclared("the pre-authentication limit"))
    }

    /// Who the audit log names for changes made by this request.
    pub fn actor(&self) -> Result<Actor, HttpError> {
        match &self.principal {
            Principal::Session { session, .. } => Ok(Actor::Admin(session.display_name.clone())),
            Principal::AdminToken { name } => Ok(Actor::AdminToken(name.clone())),
            Principal::ScimToken(t) => Ok(Actor::Scim(t.name.clone())),
            Principal::Device { .. } | Principal::Anonymous => {
                Err(self.misdeclared("a caller the audit log can name"))
            }
        }
    }

    /// A handler asked for what its route does not declare: a bug in the table.
    fn misdeclared(&self, what: &str) -> HttpError {
        let id = new_request_id();
        log::error!(
            "request {id}: the handler of {} needs {what}, which its route does not declare",
            self.route.pattern
        );
        HttpError::internal_logged(&id)
    }
}

/// What authentication decided when it did not pass.
enum Early {
    /// Answer with this instead (a browser sent to sign in).
    Respond(Response),
    Refuse(HttpError),
}

impl From<Early> for Handled {
    fn from(early: Early) -> Handled {
        match early {
            Early::Respond(r) => Ok(r),
            Early::Refuse(e) => Err(e),
        }
    }
}

impl From<HttpError> for Early {
    fn from(e: HttpError) -> Early {
        Early::Refuse(e)
    }
}

impl App {
    /// Answers one request. Never panics on bad input; every error becomes a response here.
    pub fn handle(&self, req: &Request) -> Response {
        if req.header(crate::http::PROBE_HEADER).is_some() {
            // The gatekeeper checking a new connection is served; not a client request.
            return Response::new(204, "text/plain", Vec::new());
        }
        let started = Instant::now();
        let matched = routes::find(&req.method, &req.path).filter(|m| {
            // The demo's identity provider exists only in `seatgate demo`.
            m.representative().surface != Surface::Demo || self.demo_idp.is_some()
        });
        let route = matched.as_ref().map(Matched::representative);
        let name = matched.as_ref().map_or("(unmatched)", Matched::name);
        let format = route.map_or(Format::Api, |r| r.surface.format());
        // A panicking handler costs its request a 500, never the app thread (the pool is
        // small, and a lost thread is never replaced). Unwind safety: the shared state
        // behind `self` is mutexes that recover from poisoning and SQLite transactions
        // that roll back when dropped.
        let mut scim_token = None;
        let result = match &matched {
            None => Err(HttpError::not_found()),
            Some(m) => {
                std::panic::catch_unwind(AssertUnwindSafe(|| self.run(req, m, &mut scim_token)))
                    .unwrap_or_else(|payload| Err(panicked(payload.as_ref())))
            }
        };
        let (mut response, error) = match result {
            Ok(r) => (r, None),
            Err(mut e) => {
                // Every 500 names a log line, whatever part of the gateway failed.
                if e.status == 500 && e.request_id.is_none() {
                    let id = crate::error::new_request_id();
                    log::error!(
                        "request {id}: {} {name}: {}{}",
                        req.method,
                        e.message,
                        e.detail
                            .as_deref()
                            .map(|d| format!(" ({d})"))
                            .unwrap_or_default()
                    );
                    e = HttpError {
                        request_id: Some(id.clone()),
                        message: format!(
                            "{} Its log explains it under request id {id}.",
                            e.message.trim_end()
                        ),
                        ..e
                    };
                }
                (e.render(format), Some(e))
            }
        };
        if response.status == 401
            && let Some(challenge) = route.and_then(|r| challenge(r.auth))
        {
            response = response.with_header("WWW-Authenticate", challenge);
        }
        if route.is_some_and(|r| r.surface == Surface::Scim) {
            self.scim
                .record(req, error.as_ref(), &response, scim_token, started);
        }
        let response = with_safe_headers(response, format);
        let response = with_security_headers(
            response,
            self.config.tls.mode != crate::config::TlsMode::Off,
        );
        let elapsed = started.elapsed();
        // An upload piece's first stage only asks whether the body may be written (a 200
        // is consent, not the outcome); its `end` stage is the request's line.
        let consent = response.status == 200
            && req
                .header(crate::http::UPLOAD_STAGE_HEADER)
                .is_some_and(|s| s.starts_with("begin "));
        if consent {
            return response;
        }
        self.metrics
            .observe(name, &req.method, response.status, elapsed);
        log::info!(
            target: "seatgate::access",
            "{} {} {} {:.1}ms {}",
            req.method,
            name,
            response.status,
            elapsed.as_secs_f64() * 1000.0,
            req.client
        );
        response
    }

    /// Steps 2 to 5 for a matched path.
    fn run(&self, req: &Request, m: &Matched<'_>, scim_token: &mut Option<i64>) -> Handled {
        let surface = m.representative().surface;
        // Token APIs tell an unauthenticated client nothing, not even which methods an
        // address takes; browser-facing addresses answer 405 first (their forms are public).
        let early = if surface.authenticates_before_405() {
            Some(self.authenticate(m.representative().auth, req))
        } else {
            None
        };
        let Some(route) = m.route() else {
            if let Some(Err(refused)) = early {
                return refused.into();
            }
            let e = HttpError::method_not_allowed(m.allow());
            return Err(if surface == Surface::Scim {
                HttpError {
                    message: "This SCIM address does not accept that method.".into(),
                    ..e
                }
            } else {
                e
            });
        };
        let principal = match early.unwrap_or_else(|| self.authenticate(route.auth, req)) {
            Ok(p) => p,
            Err(refused) => return refused.into(),
        };
        if let Principal::ScimToken(t) = &principal {
            *scim_token = Some(t.id);
        }
        let admitted = match route.limit {
            Limit::None => None,
            Limit::PreAuth => Some(self.pre_auth.admit(req.client)?),
            Limit::ScimToken => {
                if let Principal::ScimToken(t) = &principal {
                    self.scim.limit(t.id)?;
                }
                None
            }
        };
        match (route.csrf, &principal) {
            (Csrf::SessionForm, Principal::Session { session, .. }) => {
                self.admin.check_csrf(req, session)?
            }
            (Csrf::SessionHeader, Principal::Session { session, .. })
                if !matches!(req.method.as_str(), "GET" | "HEAD") =>
            {
                check_csrf_header(req, session, &self.public_url)?
            }
            _ => {}
        }
        let cx = Ctx {
            req,
            route,
            params: m
                .params
                .iter()
                .map(|(k, v)| Ok((*k, crate::http::percent_decode_path(v)?)))
                .collect::<Result<_, crate::http::BadEncoding>>()?,
            principal,
            admitted,
        };
        if route.surface == Surface::AdminPage {
            // Portal pages carry the full health banner, and say so when the request did
            // not arrive at the public URL.
            let mismatch = self.admin.mismatch(req);
            // The result of the change that sent the browser here (post/redirect/get).
            let done = match &cx.principal {
                Principal::Session { session, .. } if req.method == "GET" => {
                    self.admin.flash.take(session)
                }
                _ => None,
            };
            crate::page::for_portal_pages(mismatch.as_ref(), done, || (route.handler)(self, &cx))
        } else {
            (route.handler)(self, &cx)
        }
    }

    /// Step 2: who is calling, as `auth` requires.
    fn authenticate(&self, auth: Auth, req: &Request) -> Result<Principal, Early> {
        match auth {
            Auth::None => Ok(Principal::Anonymous),
            Auth::Loopback if req.client.is_loopback() => Ok(Principal::Anonymous),
            Auth::Loopback => Err(HttpError::new(
                Reason::Forbidden,
                "The demo identity provider answers only on this computer.",
            )
            .into()),
            Auth::MetricsToken => {
                let cfg = &self.config.metrics;
                if !cfg.enabled {
                    return Err(HttpError::not_found().into());
                }
                let presented = req.bearer_token().unwrap_or("");
                // Compare hashes so the time taken does not depend on where they differ.
                let ok = crate::crypto::constant_time_eq(
                    crate::crypto::sha256_hex(presented.as_bytes()).as_bytes(),
                    crate::crypto::sha256_hex(cfg.token.as_bytes()).as_bytes(),
                );
                if ok {
                    Ok(Principal::Anonymous)
                } else {
                    Err(HttpError::new(
                        Reason::Unauthorized,
                        "Send the metrics token as 'Authorization: Bearer <token>'.",
                    )
                    .into())
                }
            }
            Auth::DeviceProof => Ok(Principal::Device {
                proof: device_proof(req)?,
            }),
            Auth::ScimToken => {
                let token = self.token(req, Scope::Scim)?.ok_or_else(|| {
                    HttpError::new(
                        Reason::Unauthorized,
                        "Send a SCIM token (made in the portal under Identity providers, or with `seatgate scim-token create`) as 'Authorization: Bearer <token>'.",
                    )
                })?;
                Ok(Principal::ScimToken(token))
            }
            Auth::AdminSession => match self.admin.session(req)? {
                Some((id_hash, session)) => Ok(Principal::Session { id_hash, session }),
                None => Err(Early::Respond(Response::see_other("/admin/login"))),
            },
            Auth::AdminTokenOrSession => {
                let unauthorized = || {
                    HttpError::new(
                        Reason::Unauthorized,
                        "Send an admin API token (Authorization: Bearer …) or sign in to the admin portal.",
                    )
                };
                if req.bearer_token().is_some() {
                    let token = self.token(req, Scope::Admin)?.ok_or_else(unauthorized)?;
                    return Ok(Principal::AdminToken { name: token.name });
                }
                match self.admin.session(req)? {
                    Some((id_hash, session)) => Ok(Principal::Session { id_hash, session }),
                    None if self.admin.has_session_cookie(req) => Err(HttpError::new(
                        Reason::SessionExpired,
                        "Your admin portal session has ended (signed out, expired or its access removed); sign in again.",
                    )
                    .into()),
                    None => Err(unauthorized().into()),
                }
            }
        }
    }

    /// The one bearer-token check (SCIM and admin API tokens): the token of `scope` the
    /// request presents, if it is live; its last use is recorded coarsely.
    fn token(&self, req: &Request, scope: Scope) -> Result<Option<Presented>, HttpError> {
        let Some(presented) = req.bearer_token().filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        let found = self
            .db
            .read(|tx| tokens::authenticate(tx, scope, presented))?;
        if let Some(token) = &found
            && tokens::needs_touch(token.last_used_at)
        {
            self.db.write(|tx| tokens::touch(tx, token.id))?;
        }
        Ok(found)
    }
}

/// The device's proof: `Authorization: Device <JWS>`, else the JSON body's `proof`.
fn device_proof(req: &Request) -> Result<String, HttpError> {
    if let Some(proof) = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Device "))
    {
        return Ok(proof.trim().to_string());
    }
    if matches!(req.method.as_str(), "DELETE" | "GET" | "HEAD") {
        return Err(HttpError::new(
            Reason::Unauthorized,
            "Send the device's proof as 'Authorization: Device <JWS>'.",
        ));
    }
    let body: serde_json::Value = serde_json::from_slice(&req.body).map_err(|_| {
        HttpError::new(
            Reason::BadRequest,
            "The body must be {\"proof\": \"<JWS signed by the device key>\"}.",
        )
    })?;
    Ok(body
        .get("proof")
        .and_then(|p| p.as_str())
        .unwrap_or("")
        .to_string())
}

/// A portal session's change through the admin API carries its CSRF token as a header,
/// and comes from our own pages (an Origin, when sent, of ours) like the portal's forms.
fn check_csrf_header(req: &Request, session: &Session, public_url: &str) -> Result<(), HttpError> {
    if !crate::public_url::origin_matches(req, public_url) {
        return Err(HttpError::new(
            Reason::OriginMismatch,
            "A change made with a portal session must come from the portal's own address.",
        ));
    }
    let sent = req.header("x-csrf-token").unwrap_or("");
    if crate::crypto::constant_time_eq(sent.as_bytes(), session.csrf_token.as_bytes()) {
        Ok(())
    } else {
        Err(HttpError::new(
            Reason::CsrfFailed,
            "A change made with a portal session needs its X-CSRF-Token header.",
        ))
    }
}

/// The `WWW-Authenticate` challenge a 401 of this kind carries.
fn challenge(auth: Auth) -> Option<&'static str> {
    match auth {
        Auth::ScimToken => Some("Bearer realm=\"seatgate SCIM\""),
        Auth::MetricsToken => Some("Bearer realm=\"seatgate metrics\""),
        _ => None,
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

/// Defence in depth against header injection: a response with CR, LF or NUL in a header
/// is never sent (its handler let unvetted input into a header); the request is answered
/// 500 with a request id, and one line logged instead.
fn with_safe_headers(response: Response, format: Format) -> Response {
    let Some(name) = response.unsafe_header() else {
        return response;
    };
    let id = new_request_id();
    // Debug formatting: the name is escaped, so the log line stays one line.
    log::error!("request {id}: refused to send a {name:?} header that contains CR, LF or NUL");
    HttpError::internal_logged(&id).render(format)
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
            let r = with_safe_headers(split, Format::Api);
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
        assert_eq!(with_safe_headers(ok.clone(), Format::Html), ok);
        let bad_name = Response::new(200, "text/plain", Vec::new()).with_header("X\r\nA", "v");
        assert_eq!(with_safe_headers(bad_name, Format::Html).status, 500);
    }
}
