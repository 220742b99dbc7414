//! The admin JSON API, `/api/v1/admin/…`: what the portal shows, for scripts. Callers
//! authenticate with an admin API token (`seatgate admin-token create`; a SCIM token is
//! refused) or an admin portal session, which must add `X-CSRF-Token` to changes; the
//! pipeline checks both (`routes::Auth::AdminTokenOrSession`).

use serde_json::{Value, json};

use super::{Admin, Handled};
use crate::audit::Actor;
use crate::clock::rfc3339;
use crate::db::licensing as store;
use crate::db::portal::{self, AuditFilter};
use crate::domain::problem::{Problem, Reason};
use crate::error::HttpError;
use crate::http::{Request, Response};

pub const PREFIX: &str = "/api/v1/admin/";

impl Admin {
    pub(crate) fn api_users(&self, req: &Request) -> Handled {
        let list = super::users::ListParams::from(req)?;
        let num = |k: &str, default: i64| -> Result<i64, HttpError> {
            Ok(crate::http::query_param(&req.query, k)?
                .and_then(|v| v.parse().ok())
                .unwrap_or(default))
        };
        let offset = num("offset", 0)?.max(0);
        let limit = num("limit", 100)?.clamp(1, 1000);
        let (total, users) = self
            .db
            .read(|tx| portal::search_users(tx, &list.query(offset, limit)))?;
        let users: Vec<Value> = users
            .iter()
            .map(|u| {
                json!({"id": u.id, "userName": u.user_name, "displayName": u.display_name,
                       "email": u.email, "active": u.active, "seat": u.seat.map(|s| s.as_str()), "pool": u.pool,
                       "reason": u.reason, "devices": u.devices, "name": u.full_name,
                       "groups": u.groups, "waiting_position": u.waiting_position})
            })
            .collect();
        Ok(Response::json(
            200,
            &json!({"total": total, "offset": offset, "users": users}),
        ))
    }

    pub(crate) fn api_user(&self, id: &str) -> Handled {
        let email = self
            .db
            .read(|tx| crate::db::directory::email_of(tx, id))?
            .ok_or_else(|| HttpError::new(Reason::NotFound, "There is no such user."))?;
        let e = self.explain_now(&email)?;
        Ok(Response::json(200, &json!({"id": id, "explain": e})))
    }

    pub(crate) fn api_explain(&self, req: &Request) -> Handled {
        let email = crate::http::query_param(&req.query, "email")?
            .filter(|e| !e.trim().is_empty())
            .ok_or_else(|| {
                HttpError::new(Reason::BadRequest, "Give the email to explain (?email=).")
            })?;
        let e = self.explain_now(&email)?;
        Ok(Response::json(
            200,
            &serde_json::to_value(e).unwrap_or(Value::Null),
        ))
    }

    /// What activation would answer for `email` now.
    fn explain_now(
        &self,
        email: &str,
    ) -> Result<crate::licensing::explain::Explanation, HttpError> {
        Ok(crate::licensing::explain::explain(
            &self.db,
            email,
            self.device_limit,
            self.lease_bounds(),
            self.clock.now_unix(),
        )?)
    }

    /// `DELETE /api/v1/admin/devices/{id}`: releases the device's seat, audited as `actor`.
    pub(crate) fn api_deactivate(&self, actor: &Actor, id: &str) -> Handled {
        self.db.write(|tx| {
            let device = store::device(tx, id)?
                .ok_or_else(|| Problem::new(Reason::NotFound, "There is no such device."))?;
            crate::licensing::leases::release_device(
                tx,
                &device,
                actor,
                crate::domain::engine::RevokeReason::Deactivated,
                self.clock.now_unix(),
            )
        })?;
        log::info!("{actor} deactivated device {id}");
        Ok(Response::new(204, "text/plain", Vec::new()))
    }

    /// `POST /api/v1/admin/entitlements`: imports the entitlement in the body (the file's
    /// contents, or `{"entitlement": "…"}`).
    pub(crate) fn api_import_entitlement(&self, req: &Request, actor: &Actor) -> Handled {
        use crate::licensing::entitlements::{self, Imported};
        let body = String::from_utf8_lossy(&req.body);
        let token = match serde_json::from_str::<Value>(&body) {
            Ok(v) => v
                .get("entitlement")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| {
                    Problem::new(
                        Reason::BadRequest,
                        "Send the entitlement file's contents, or {\"entitlement\": \"…\"}.",
                    )
                })?,
            Err(_) => body.into_owned(),
        };
        let trusted = entitlements::trusted_keys(self.demo);
        let (imported, summary) =
            entitlements::import(&self.db, &token, &trusted, actor, self.clock.now_unix())
                .map_err(Problem::from)?;
        let (outcome, license) = match &imported {
            Imported::Added { license } => ("added", license),
            Imported::Renewed { license, .. } => ("renewed", license),
            Imported::TrialConverted { license, .. } => ("trial_converted", license),
            Imported::Unchanged { license } => ("unchanged", license),
            Imported::Registered { license } => ("registered", license),
        };
        let status = if outcome == "added" { 201 } else { 200 };
        Ok(Response::json(
            status,
            &json!({"outcome": outcome, "license": license,
                    "seats_granted": summary.granted, "seats_revoked": summary.revoked,
                    "seats_pending": summary.pending}),
        ))
    }

    pub(crate) fn api_licenses(&self) -> Handled {
        let (licenses, pools) = self.db.read(|tx| {
            Ok::<_, HttpError>((
                store::licenses(tx)?,
                portal::pool_usage(tx, self.clock.now_unix())?,
            ))
        })?;
        let licenses: Vec<Value> = licenses
            .iter()
            .map(|l| {
                let pools: Vec<Value> = pools
                    .iter()
                    .filter(|p| p.license_id == l.id)
                    .map(|p| {
                        json!({"sublicense": p.sublicense_id, "name": p.name, "reserved": p.reserved,
                               "expires_at": p.expires_at.map(rfc3339), "capacity": p.seats.capacity,
                               "used": p.seats.used, "pending": p.pending, "free": p.seats.free})
                    })
                    .collect();
                json!({"id": l.id, "product": l.product, "seats": l.seats,
                       "expires_at": l.expires_at.map(rfc3339), "pools": pools})
            })
            .collect();
        Ok(Response::json(200, &json!({ "licenses": licenses })))
    }

    pub(crate) fn api_audit(&self, req: &Request) -> Handled {
        let param = |k: &str| crate::http::query_param(&req.query, k);
        let time = |k: &str| -> Result<Option<i64>, HttpError> {
            match param(k)? {
                None => Ok(None),
                Some(v) => crate::clock::parse_rfc3339(&v)
                    .or_else(|| crate::clock::parse_date(&v))
                    .map(Some)
                    .ok_or_else(|| {
                        HttpError::new(
                            Reason::BadRequest,
                            format!("{k} must be a date or an RFC 3339 time."),
                        )
                    }),
            }
        };
        let filter = AuditFilter {
            user_id: param("user_id")?,
            action: param("action")?,
            since: time("since")?,
            until: time("until")?,
        };
        let limit = param("limit")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(100i64)
            .clamp(1, 10_000);
        let entries = self
            .db
            .read(|tx| portal::search_audit(tx, &filter, limit))?;
        let entries: Vec<Value> = entries
            .iter()
            .map(|(e, user)| {
                json!({"id": e.id, "at": rfc3339(e.at), "actor": e.actor, "action": e.action,
                       "user_id": e.user_id, "user": user, "subject": e.subject,
                       "reason": e.reason, "detail": e.detail})
            })
            .collect();
        Ok(Response::json(200, &json!({ "entries": entries })))
    }
}
