//! The licensing HTTP surface: activation (`/api/v1/activations`, `/activate/{key}`),
//! renewal and deactivation (`/api/v1/leases/…`), and `/.well-known/jwks.json`.

use std::sync::Arc;

use serde_json::json;

use super::{activation, leases};
use crate::admin::{html, html_status, redirect};
use crate::clock::now_unix;
use crate::config::LeaseConfig;
use crate::crypto::{constant_time_eq, new_secret_token};
use crate::db::Db;
use crate::db::idp::Purpose;
use crate::error::{HttpError, Reason};
use crate::http::{Request, Response};
use crate::saml::acs::SignedIn;
use crate::saml::identity::Resolved;
use crate::saml::signing::LazySpKey;

type Handled = Result<Response, HttpError>;

const CONFIRM_COOKIE: &str = "sg_activate";

pub struct LicensingApi {
    pub db: Arc<Db>,
    pub config: LeaseConfig,
    pub public_url: String,
    pub sp_key: Arc<LazySpKey>,
    pub pre_auth: Arc<crate::preauth::PreAuth>,
}

impl LicensingApi {
    /// Routes the paths this module serves; `None` for any other path.
    pub fn handle(&self, req: &Request) -> Option<(&'static str, Handled)> {
        let (get, post) = (
            matches!(req.method.as_str(), "GET" | "HEAD"),
            req.method == "POST",
        );
        let now = now_unix();
        Some(match req.path.as_str() {
            "/.well-known/jwks.json" => (
                "/.well-known/jwks.json",
                method(get, "GET, HEAD", || {
                    Ok(Response::json(200, &leases::jwks(&self.db, now)?)
                        .with_header("Cache-Control", "max-age=300"))
                }),
            ),
            "/api/v1/activations" => (
                "/api/v1/activations",
                method(post, "POST", || {
                    let admitted = self.pre_auth.admit(req.client)?;
                    activation::start(
                        &self.db,
                        &self.config,
                        &self.public_url,
                        &req.body,
                        admitted,
                        now,
                    )
                }),
            ),
            "/api/v1/activations/token" => (
                "/api/v1/activations/token",
                method(post, "POST", || activation::token(&self.db, &req.body, now)),
            ),
            "/api/v1/leases/renew" => (
                "/api/v1/leases/renew",
                method(post, "POST", || self.renew(req, now)),
            ),
            p if p.starts_with("/api/v1/leases/") => (
                "/api/v1/leases/{id}",
                method(req.method == "DELETE", "DELETE", || {
                    self.deactivate(req, &p["/api/v1/leases/".len()..], now)
                }),
            ),
            p if p.starts_with("/activate/") => {
                let key = &p["/activate/".len()..];
                if get {
                    ("/activate/{key}", self.confirm_page(key, now))
                } else if post {
                    ("/activate/{key}", self.confirmed(req, key, now))
                } else {
                    (
                        "/activate/{key}",
                        method(false, "GET, HEAD, POST", || Err(HttpError::internal())),
                    )
                }
            }
            _ => return None,
        })
    }

    fn renew(&self, req: &Request, now: i64) -> Handled {
        let body: serde_json::Value = serde_json::from_slice(&req.body).map_err(|_| {
            HttpError::new(
                Reason::BadRequest,
                "The body must be {\"proof\": \"<JWS signed by the device key>\"}.",
            )
        })?;
        let proof = body.get("proof").and_then(|p| p.as_str()).unwrap_or("");
        let lease = leases::renew(&self.db, &self.config, &self.public_url, proof, now)?;
        Ok(Response::json(
            200,
            &json!({
                "license": lease.token,
                "lease_id": lease.id,
                "renew_after": lease.renew_after,
                "expires_at": lease.expires_at,
            }),
        ))
    }

    /// `DELETE /api/v1/leases/{id}` with `Authorization: Device <proof>`.
    fn deactivate(&self, req: &Request, lease: &str, now: i64) -> Handled {
        let proof = req
            .header("authorization")
            .and_then(|h| h.strip_prefix("Device "))
            .ok_or_else(|| {
                HttpError::new(
                    Reason::Unauthorized,
                    "Send the device's proof as 'Authorization: Device <JWS>'.",
                )
            })?;
        let device = leases::deactivate_by_proof(&self.db, lease, proof.trim(), now)?;
        Ok(Response::json(
            200,
            &json!({"device_id": device, "status": "deactivated"}),
        ))
    }

    fn confirm_page(&self, key: &str, now: i64) -> Handled {
        let a = activation::pending_for_browser(&self.db, key, now)?;
        let csrf = new_secret_token();
        let page = crate::admin::pages::activation_confirm(
            &a.device_name,
            &a.device_os,
            &a.user_code,
            &a.email,
            &csrf,
            &format!("/activate/{key}"),
        );
        Ok(html(page).with_header(
            "Set-Cookie",
            &crate::http::Cookies::for_public_url(&self.public_url).set(
                CONFIRM_COOKIE,
                &csrf,
                "/activate",
                900,
                crate::http::SameSite::Strict,
            ),
        ))
    }

    /// The user confirmed the device: off to the IdP, with the sign-in bound to this
    /// browser and to this activation.
    fn confirmed(&self, req: &Request, key: &str, now: i64) -> Handled {
        let a = activation::pending_for_browser(&self.db, key, now)?;
        let form = crate::http::parse_form(&req.body)?;
        let sent = form.get("csrf").map(String::as_str).unwrap_or("");
        let cookie = crate::http::Cookies::for_public_url(&self.public_url)
            .get(req, CONFIRM_COOKIE, "/activate")
            .unwrap_or("");
        if cookie.is_empty() || !constant_time_eq(sent.as_bytes(), cookie.as_bytes()) {
            return Err(HttpError::new(
                Reason::CsrfFailed,
                "Open the activation link again and confirm from that page.",
            ));
        }
        let started = crate::saml::login::start(
            &self.db,
            &self.public_url,
            &self.sp_key,
            crate::saml::login::Target::Email(&a.email),
            Purpose::Activation,
            None,
            self.pre_auth.admit(req.client)?,
        )?;
        activation::bind_sign_in(&self.db, key, &started.request_id)?;
        Ok(redirect(&started.location).with_header("Set-Cookie", &started.set_cookie))
    }

    /// The ACS's part for a sign-in started to activate a device.
    pub fn complete_activation(&self, signed_in: &SignedIn, resolved: &Resolved) -> Handled {
        match activation::complete(
            &self.db,
            &self.config,
            &self.public_url,
            signed_in.request_id.as_deref(),
            signed_in,
            resolved,
            now_unix(),
        )? {
            activation::Completed::Redirect(location) => Ok(redirect(&location)),
            activation::Completed::Page {
                device,
                approved,
                message,
            } => {
                let page = crate::admin::pages::activation_result(&device, approved, &message);
                Ok(if approved {
                    html(page)
                } else {
                    html_status(403, page)
                })
            }
        }
    }
}

/// Runs `f` if the method fits, else 405 naming the methods that do (`allow`).
fn method(ok: bool, allow: &'static str, f: impl FnOnce() -> Handled) -> Handled {
    if ok {
        f()
    } else {
        Err(HttpError::method_not_allowed(allow))
    }
}
