//! The admin JSON API, `/api/v1/admin/…`: what the portal shows, for scripts. Callers
//! authenticate with an admin API token (`seatgate admin-token create`; a SCIM token is
//! refused) or an admin portal session, which must add `X-CSRF-Token` to changes.

use serde_json::{Value, json};

use super::{Admin, Handled};
use crate::audit::Actor;
use crate::clock::{now_unix, rfc3339};
use crate::db::licensing as store;
use crate::db::portal::{self, AuditFilter};
use crate::db::tokens::{self, Scope};
use crate::error::{HttpError, Reason};
use crate::http::{Request, Response};

pub const PREFIX: &str = "/api/v1/admin/";

/// Who is calling, for the audit log.
struct Caller {
    actor: Actor,
}

impl Admin {
    pub fn api(&self, req: &Request) -> (&'static str, Handled) {
        let rest = &req.path[PREFIX.len().min(req.path.len())..];
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        let get = matches!(req.method.as_str(), "GET" | "HEAD");
        let route: (&'static str, Option<&'static str>) = match segments.as_slice() {
            ["users"] => ("/api/v1/admin/users", Some("GET, HEAD")),
            ["users", _] => ("/api/v1/admin/users/{id}", Some("GET, HEAD")),
            ["explain"] => ("/api/v1/admin/explain", Some("GET, HEAD")),
            ["devices", _] => ("/api/v1/admin/devices/{id}", Some("DELETE")),
            ["licenses"] => ("/api/v1/admin/licenses", Some("GET, HEAD")),
            ["audit"] => ("/api/v1/admin/audit", Some("GET, HEAD")),
            _ => ("/api/v1/admin/(unmatched)", None),
        };
        let result = self.api_caller(req, !get).and_then(|caller| {
            if let Some(allow) = route.1
                && !crate::http::method_allowed(allow, &req.method)
            {
                return Err(HttpError::method_not_allowed(allow));
            }
            match segments.as_slice() {
                ["users"] => self.api_users(req),
                ["users", id] => self.api_user(id),
                ["explain"] => self.api_explain(req),
                ["devices", id] => self.api_deactivate(&caller, id),
                ["licenses"] => self.api_licenses(),
                ["audit"] => self.api_audit(req),
                _ => Err(HttpError::not_found()),
            }
        });
        (route.0, result)
    }

    /// An admin API token, else a portal session (with its CSRF token for changes).
    fn api_caller(&self, req: &Request, changes: bool) -> Result<Caller, HttpError> {
        if let Some(presented) = req.bearer_token() {
            let found = self
                .db
                .read(|tx| tokens::authenticate(tx, Scope::Admin, presented))?;
            let Some(token) = found else {
                return Err(unauthorized());
            };
            if tokens::needs_touch(token.last_used_at) {
                self.db.write(|tx| tokens::touch(tx, token.id))?;
            }
            return Ok(Caller {
                actor: Actor::AdminToken(token.name.clone()),
            });
        }
        let Some((_, session)) = self.session(req)? else {
            return Err(unauthorized());
        };
        if changes {
            let sent = req.header("x-csrf-token").unwrap_or("");
            if !crate::crypto::constant_time_eq(sent.as_bytes(), session.csrf_token.as_bytes()) {
                return Err(HttpError::new(
                    Reason::CsrfFailed,
                    "A change made with a portal session needs its X-CSRF-Token header.",
                ));
            }
        }
        Ok(Caller {
            actor: Actor::Admin(session.display_name.clone()),
        })
    }

    fn api_users(&self, req: &Request) -> Handled {
        let q = crate::http::query_param(&req.query, "q")?.unwrap_or_default();
        let num = |k: &str, default: i64| -> Result<i64, HttpError> {
            Ok(crate::http::query_param(&req.query, k)?
                .and_then(|v| v.parse().ok())
                .unwrap_or(default))
        };
        let offset = num("offset", 0)?.max(0);
        let limit = num("limit", 100)?.clamp(1, 1000);
        let filter = super::users::seat_filter(req)?;
        let (total, users) = self
            .db
            .read(|tx| portal::search_users(tx, &q, filter, offset, limit))?;
        let users: Vec<Value> = users
            .iter()
            .map(|u| {
                json!({"id": u.id, "userName": u.user_name, "displayName": u.display_name,
                       "email": u.email, "active": u.active, "seat": u.seat.map(|s| s.as_str()), "pool": u.pool,
                       "reason": u.reason, "devices": u.devices})
            })
            .collect();
        Ok(Response::json(
            200,
            &json!({"total": total, "offset": offset, "users": users}),
        ))
    }

    fn api_user(&self, id: &str) -> Handled {
        let email = self
            .db
            .read(|tx| crate::db::directory::email_of(tx, id))?
            .ok_or_else(|| HttpError::new(Reason::NotFound, "There is no such user."))?;
        let e =
            crate::licensing::explain::explain(&self.db, &email, self.device_limit, now_unix())?;
        Ok(Response::json(200, &json!({"id": id, "explain": e})))
    }

    fn api_explain(&self, req: &Request) -> Handled {
        let email = crate::http::query_param(&req.query, "email")?
            .filter(|e| !e.trim().is_empty())
            .ok_or_else(|| {
                HttpError::new(Reason::BadRequest, "Give the email to explain (?email=).")
            })?;
        let e =
            crate::licensing::explain::explain(&self.db, &email, self.device_limit, now_unix())?;
        Ok(Response::json(
            200,
            &serde_json::to_value(e).unwrap_or(Value::Null),
        ))
    }

    fn api_deactivate(&self, caller: &Caller, id: &str) -> Handled {
        self.db.write(|tx| {
            let device = store::device(tx, id)?
                .ok_or_else(|| HttpError::new(Reason::NotFound, "There is no such device."))?;
            crate::licensing::leases::release_device(
                tx,
                &device,
                &caller.actor,
                crate::licensing::engine::RevokeReason::Deactivated,
                now_unix(),
            )
        })?;
        log::info!("{} deactivated device {id}", caller.actor);
        Ok(Response::new(204, "text/plain", Vec::new()))
    }

    fn api_licenses(&self) -> Handled {
        let (licenses, pools) = self.db.read(|tx| {
            Ok::<_, HttpError>((store::licenses(tx)?, portal::pool_usage(tx, now_unix())?))
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

    fn api_audit(&self, req: &Request) -> Handled {
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

fn unauthorized() -> HttpError {
    HttpError::new(
        Reason::Unauthorized,
        "Send an admin API token (Authorization: Bearer …) or sign in to the admin portal.",
    )
}
