//! The licensing HTTP surface: activation (`/api/v1/activations`, `/activate/{key}`),
//! renewal and deactivation (`/api/v1/leases/…`), and `/.well-known/jwks.json`.

use std::sync::Arc;

use serde_json::json;

use crate::config::LeaseConfig;
use crate::crypto::{constant_time_eq, new_secret_token};
use crate::db::Db;
use crate::domain::identity::Purpose;
use crate::domain::identity::Resolved;
use crate::domain::identity::SignedIn;
use crate::domain::problem::Reason;
use crate::error::HttpError;
use crate::http::{Request, Response};
use crate::licensing::{activation, keys, leases, policies};
use crate::saml::signing::LazySpKey;

use crate::clock::Clock;
use crate::pipeline::{Ctx, Handled};
use crate::preauth::Admitted;

const CONFIRM_COOKIE: &str = "sg_activate";

pub struct LicensingApi {
    pub db: Arc<Db>,
    pub config: LeaseConfig,
    pub public_url: String,
    pub sp_key: Arc<LazySpKey>,
    /// The wall clock the handlers read (manual in tests).
    pub clock: Clock,
}

impl LicensingApi {
    /// `GET /.well-known/jwks.json`: the lease verification keys.
    pub fn jwks(&self) -> Handled {
        Ok(
            Response::json(200, &leases::jwks(&self.db, self.clock.now_unix())?)
                .with_header("Cache-Control", "max-age=300"),
        )
    }

    /// `POST /api/v1/activations`: a device asks to be activated, with SSO for an email
    /// (the browser flow), or with a license key (its lease at once).
    pub fn start_activation(&self, req: &Request, admitted: Admitted) -> Handled {
        // Parsed once: the key activation and the SSO start both read the same object.
        let body: serde_json::Value = serde_json::from_slice(&req.body)
            .map_err(|_| HttpError::new(Reason::BadRequest, "The body must be a JSON object."))?;
        if body.get("license_key").is_some() {
            let done = keys::activate(
                &self.db,
                &self.config,
                &self.public_url,
                &body,
                admitted,
                self.clock.now_unix(),
            )?;
            return Ok(Response::json(
                201,
                &json!({
                    "license": done.lease.token,
                    "device_id": done.device_id,
                    "lease_id": done.lease.id,
                    "renew_after": done.lease.renew_after,
                    "expires_at": done.lease.expires_at,
                    "token_type": "seatgate-lease",
                }),
            ));
        }
        let started = activation::start(
            &self.db,
            &self.config,
            &self.public_url,
            &body,
            admitted,
            self.clock.now_unix(),
        )?;
        Ok(Response::json(
            201,
            &json!({
                "device_code": started.device_code,
                "user_code": started.user_code,
                "verification_uri": started.verification_uri,
                "verification_uri_complete": started.verification_uri_complete,
                "interval": started.interval,
                "expires_in": started.expires_in,
            }),
        ))
    }

    /// `POST /api/v1/activations/token`: the device polls for its lease (RFC 8628 §3.4),
    /// or exchanges its loopback redirect's code.
    pub fn token(&self, req: &Request) -> Handled {
        Ok(
            match activation::token(&self.db, &req.body, self.clock.now_unix())? {
                activation::Poll::Issued { lease, device_id } => Response::json(
                    200,
                    &json!({
                        "license": lease,
                        "device_id": device_id,
                        "token_type": "seatgate-lease",
                    }),
                ),
                // RFC 8628 §3.5: a poll without a lease is a 400 with the error word.
                activation::Poll::NoLease {
                    error,
                    reason,
                    message,
                } => {
                    let mut body = json!({"error": error.as_str(), "message": message});
                    if let Some(r) = reason {
                        body["reason"] = json!(r);
                    }
                    Response::json(400, &body)
                }
            },
        )
    }

    /// `GET /api/v1/policy`: the device's effective policy as a JWS signed with the lease
    /// keys; 304 when `If-None-Match` names its ETag.
    pub fn policy(&self, req: &Request, proof: &str) -> Handled {
        let fetched = policies::fetch(
            &self.db,
            &self.config,
            &self.public_url,
            proof,
            req.header("if-none-match"),
            self.clock.now_unix(),
        )?;
        let (response, etag) = match fetched {
            policies::Fetched::NotModified { etag } => {
                (Response::new(304, "application/jose", Vec::new()), etag)
            }
            policies::Fetched::Document { jws, etag } => (
                Response::new(200, "application/jose", jws.into_bytes()),
                etag,
            ),
        };
        Ok(response
            .with_header("ETag", &etag)
            .with_header("Cache-Control", "private, no-cache"))
    }

    /// `GET /api/v1/policy-schema`: the JSON Schema of a policy's settings.
    pub fn policy_schema(&self) -> Response {
        let body =
            serde_json::to_vec_pretty(&crate::domain::policy::json_schema()).unwrap_or_default();
        Response::new(200, "application/schema+json", body)
            .with_header("Cache-Control", "max-age=3600")
    }

    /// `POST /api/v1/leases/renew` with the device's proof, and optionally its VM
    /// inventory (`vms`).
    pub fn renew(&self, req: &Request, proof: &str) -> Handled {
        let (vms, app_version) = report_of(&req.body)?;
        let lease = leases::renew(
            &self.db,
            &self.config,
            &self.public_url,
            proof,
            leases::Report {
                vms: vms.as_deref(),
                app_version: app_version.as_deref(),
            },
            self.clock.now_unix(),
        )?;
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
    pub fn deactivate(&self, lease: &str, proof: &str) -> Handled {
        let now = self.clock.now_unix();
        let device = leases::deactivate_by_proof(&self.db, lease, proof, now)?;
        Ok(Response::json(
            200,
            &json!({"device_id": device, "status": "deactivated"}),
        ))
    }

    /// `GET /activate/{key}`: the user confirms the device in the browser.
    pub fn confirm_page(&self, key: &str) -> Handled {
        let now = self.clock.now_unix();
        let a = activation::pending_for_browser(&self.db, key, now)?;
        let csrf = new_secret_token();
        let page = crate::end_user::activation_confirm(
            &a.device_name,
            &a.device_os,
            &a.user_code,
            &a.email,
            &csrf,
            &format!("/activate/{key}"),
        );
        Ok(Response::page(200, page).with_header(
            "Set-Cookie",
            &crate::http::Cookies::for_public_url(&self.public_url).set(
                CONFIRM_COOKIE,
                &csrf,
                // Path=/ makes it `__Host-` over HTTPS: a sibling subdomain cannot plant it.
                "/",
                900,
                crate::http::SameSite::Strict,
            ),
        ))
    }

    /// The user confirmed the device: off to the IdP, with the sign-in bound to this
    /// browser and to this activation.
    pub fn confirmed(&self, req: &Request, key: &str, cx: &Ctx<'_>) -> Handled {
        let now = self.clock.now_unix();
        let a = activation::pending_for_browser(&self.db, key, now)?;
        let form = crate::http::parse_form(&req.body)?;
        let sent = form.get("csrf").map(String::as_str).unwrap_or("");
        let cookie = crate::http::Cookies::for_public_url(&self.public_url)
            .get(req, CONFIRM_COOKIE, "/")
            .unwrap_or("");
        // A cross-site page cannot confirm someone else's activation in this browser: the
        // Origin (browsers send it on every cross-origin POST, `null` included) must be ours.
        if !crate::public_url::origin_matches(req, &self.public_url) {
            log::warn!(
                "activation confirmation refused from {}: Origin \"{}\" is not {}",
                req.client,
                crate::logging::client_text(req.header("origin").unwrap_or("")),
                self.public_url
            );
            return Err(HttpError::new(
                Reason::OriginMismatch,
                "This confirmation was not sent from the activation page. Open the activation link again and confirm from that page.",
            ));
        }
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
            cx.admitted()?,
        )?;
        activation::bind_sign_in(&self.db, key, &started.request_id)?;
        Ok(Response::see_other(&started.location).with_header("Set-Cookie", &started.set_cookie))
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
            self.clock.now_unix(),
        )? {
            activation::Completed::Redirect(location) => Ok(Response::see_other(&location)),
            activation::Completed::Page {
                device,
                approved,
                message,
            } => {
                let page = crate::end_user::activation_result(&device, approved, &message);
                Ok(if approved {
                    Response::page(200, page)
                } else {
                    Response::page(403, page)
                })
            }
        }
    }
}

type Vms = Option<Vec<crate::domain::inventory::Vm>>;

/// What a renewal's body reports, if anything: the VM inventory (checked, and capped at
/// `inventory::MAX_VMS`: 413 above it, as a body over its byte cap is) and the app
/// version (`app_version`).
fn report_of(body: &[u8]) -> Result<(Vms, Option<String>), HttpError> {
    use crate::domain::inventory::{Refused, parse};
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok((None, None));
    }
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| HttpError::new(Reason::BadRequest, "The body must be a JSON object."))?;
    let app_version = match v.get("app_version") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => {
            Some(crate::domain::files::check_version(s).map_err(|_| {
                HttpError::new(
                    Reason::BadRequest,
                    "app_version must be a version such as 20.1.2.",
                )
            })?)
        }
        Some(_) => {
            return Err(HttpError::new(
                Reason::BadRequest,
                "app_version must be a version such as 20.1.2.",
            ));
        }
    };
    let Some(vms) = v.get("vms") else {
        return Ok((None, app_version));
    };
    let vms = parse(vms).map_err(|e| match e {
        Refused::TooMany(_) => HttpError::new(Reason::PayloadTooLarge, format!("{e}.")),
        Refused::Invalid(m) => HttpError::new(
            Reason::BadRequest,
            format!("The VM inventory was refused: {m}."),
        ),
    })?;
    Ok((Some(vms), app_version))
}
