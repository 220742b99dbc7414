//! The application behind the gatekeeper: the state every handler shares, and the
//! handlers of the operational and SAML addresses. Requests reach them through
//! [`crate::pipeline`], which follows the table in [`crate::routes`].

use std::sync::Arc;

use crate::config::Config;
use crate::db::Db;
use crate::db::admin::SignIn;
use crate::db::health::State;
use crate::domain::identity::Purpose;
use crate::domain::identity::Resolved;
use crate::domain::problem::Reason;
use crate::error::HttpError;
use crate::http::{Request, Response};
use crate::metrics::Metrics;
use crate::saml::signing::LazySpKey;

pub struct App {
    pub db: Arc<Db>,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub scim: crate::endpoints::scim::Scim,
    pub admin: crate::admin::Admin,
    pub licensing: crate::endpoints::device::LicensingApi,
    pub sp_key: Arc<LazySpKey>,
    /// Limits on sign-in starts and activations, shared with the portal and licensing.
    pub pre_auth: crate::preauth::PreAuth,
    pub public_url: String,
    /// Only in `seatgate demo`.
    pub demo_idp: Option<crate::demo::idp::DemoIdp>,
    /// The time the limiters, housekeeping and handlers read (manual in tests).
    pub clock: crate::clock::Clock,
    /// Golden images and update packages: the storage folder and uploads in progress.
    pub distribution: Arc<crate::distribution::Distribution>,
}

use crate::pipeline::{Ctx, Handled};

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

    /// The demo's identity provider; only `seatgate demo` has one.
    pub fn demo_idp(&self) -> Result<&crate::demo::idp::DemoIdp, HttpError> {
        self.demo_idp.as_ref().ok_or_else(HttpError::not_found)
    }

    pub fn health(&self) -> Response {
        Response::json(200, &serde_json::json!({"status": "pass"}))
    }

    /// Starts SP-initiated sign-in: 302 to the IdP with the browser-binding cookie.
    pub fn saml_login(&self, cx: &Ctx<'_>, connection: Option<&str>) -> Handled {
        let req = cx.req;
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
            cx.admitted()?,
        )?;
        Ok(Response::new(302, "text/plain; charset=utf-8", Vec::new())
            .with_header("Location", &started.location)
            .with_header("Set-Cookie", &started.set_cookie))
    }

    /// The ACS: validates the response, records the attempt in the sign-in log, and
    /// completes what the sign-in was started for.
    pub fn saml_acs(&self, req: &Request, connection: &str) -> Handled {
        let mut entry = SignIn {
            at: self.clock.now_unix(),
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
        let now = self.clock.now_unix();
        let signed_in = crate::saml::acs::consume(
            &self.db,
            &self.public_url,
            connection,
            &req.body,
            req.header("cookie"),
            now,
        )?;
        entry.purpose = signed_in.purpose.as_str().into();
        entry.identity = Some(signed_in.identity.clone());
        let resolved =
            crate::saml::identity::resolve(&self.db, &signed_in, signed_in.jit_users, now)?;
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
                let page = crate::end_user::test_result(&crate::end_user::TestResult {
                    identity: &signed_in.identity,
                    connection: &signed_in.connection,
                    email: signed_in.email.as_deref(),
                    groups: &signed_in.groups,
                    directory: &directory,
                    admin_groups: &admin_groups,
                });
                Ok(Response::page(200, page))
            }
        }
    }

    /// SP metadata: every connection's ACS, or one connection's (for IdPs that take one).
    pub fn sp_metadata(&self, connection: Option<&str>) -> Handled {
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
            self.clock.now_unix(),
        );
        Ok(Response::new(
            200,
            "application/samlmetadata+xml",
            xml.into_bytes(),
        ))
    }

    pub fn ready(&self) -> Response {
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

    /// The Prometheus text (the pipeline has checked the metrics token). The pool gauges
    /// are read now; without the database they are left out, the rest still answers.
    pub fn metrics_page(&self) -> Response {
        let now = self.clock.now_unix();
        let seats = self
            .db
            .read(|tx| {
                let pools = crate::licensing::history::pools_now(tx, None, now)?;
                let licenses = crate::db::licensing::licenses(tx)?;
                Ok::<_, rusqlite::Error>(crate::metrics::Seats {
                    pools: pools
                        .into_iter()
                        .map(|p| crate::metrics::PoolGauge {
                            pool: if p.pool.is_empty() {
                                "primary".into()
                            } else {
                                p.pool
                            },
                            license: p.license_id,
                            capacity: p.capacity,
                            used: p.used,
                            pending: p.pending,
                        })
                        .collect(),
                    license_ends: licenses
                        .into_iter()
                        .filter_map(|l| l.expires_at.map(|t| (l.id, t)))
                        .collect(),
                })
            })
            .map_err(|e| log::warn!("metrics: seats unreadable: {e}"))
            .unwrap_or_default();
        Response::new(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            self.metrics.render(&metrics_health(), &seats).into_bytes(),
        )
    }
}

/// What `db::health` says, as the metrics report it.
fn metrics_health() -> crate::metrics::Health {
    let health = crate::db::health::global();
    crate::metrics::Health {
        free: health.free_space().map(|f| (f.bytes, f.low)),
        state: match health.state() {
            State::Ok => "ok",
            State::Corrupt { .. } => "corrupt",
            State::DiskFull => "disk_full",
        },
    }
}
