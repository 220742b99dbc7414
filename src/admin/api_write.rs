//! The admin API's changes (`POST`/`PATCH`/`DELETE /api/v1/admin/…`): licenses,
//! sublicenses, group mappings, tokens, connections' switches and users' devices, through
//! the same functions as the portal and the CLI, so the validation and the audit are the
//! same. Bodies are JSON objects; unknown fields are refused, so a typo never passes as a
//! no-op. Described by `GET /api/v1/admin/openapi.json` (`admin::openapi`).

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Admin, Handled};
use crate::audit::Actor;
use crate::clock::rfc3339;
use crate::db::tokens::{self, Scope};
use crate::domain::problem::{Problem, Reason};
use crate::error::HttpError;
use crate::http::{Request, Response};
use crate::licensing::manage::{self, MapTo, NewLicense, NewSublicense};

/// The body as `T`, or one sentence saying what is wrong with it.
pub(super) fn body<'a, T: Deserialize<'a>>(req: &'a Request) -> Result<T, HttpError> {
    serde_json::from_slice(&req.body).map_err(|e| {
        HttpError::new(
            Reason::BadRequest,
            format!("The body is not the JSON this address takes: {e}."),
        )
    })
}

/// `"YYYY-MM-DD"` → the end of that day (UTC), as the portal and the CLI read an expiry.
fn expiry(date: Option<&str>) -> Result<Option<i64>, HttpError> {
    date.map(|d| manage::parse_expiry(d).map_err(HttpError::from))
        .transpose()
}

/// `null` in a PATCH body is "clear it"; absent is "keep it". serde maps both to `None`
/// for `Option<Option<T>>` unless told apart.
pub(super) fn double_option<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewLicenseBody {
    product: String,
    seats: i64,
    expires: Option<String>,
    key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LicenseChange {
    seats: Option<i64>,
    #[serde(default, deserialize_with = "double_option")]
    expires: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    max_offline_days: Option<Option<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSublicenseBody {
    license: String,
    name: String,
    seats: i64,
    reserved: bool,
    expires: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SublicenseChange {
    seats: Option<i64>,
    #[serde(default, deserialize_with = "double_option")]
    expires: Option<Option<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMapping {
    group: String,
    connection: Option<String>,
    /// `admins`, `primary` or `sublicense`.
    grants: String,
    license: Option<String>,
    sublicense: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    /// SCIM tokens only: the IdP connection it provisions for.
    connection: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectionChange {
    jit_users: Option<bool>,
    sign_requests: Option<bool>,
    allow_idp_initiated: Option<bool>,
}

/// What a re-decision of seats did, for a JSON answer.
fn seats_json(s: &crate::licensing::reconcile::Summary) -> Value {
    json!({"granted": s.granted, "revoked": s.revoked, "pending": s.pending,
           "devices_revoked": s.devices_revoked})
}

impl Admin {
    /// `POST /api/v1/admin/licenses`: a license entered by hand.
    pub(crate) fn api_add_license(&self, req: &Request, actor: &Actor) -> Handled {
        let b: NewLicenseBody = body(req)?;
        let expires_at = expiry(b.expires.as_deref())?;
        let key = b.key.as_deref().map(str::trim).filter(|k| !k.is_empty());
        let id = manage::add_license(
            &self.db,
            actor,
            &NewLicense {
                product: &b.product,
                seats: b.seats,
                expires_at,
                key,
            },
        )?;
        Ok(Response::json(
            201,
            &json!({"id": id, "product": b.product.trim(), "seats": b.seats,
                    "expires_at": expires_at.map(rfc3339)}),
        ))
    }

    /// `PATCH /api/v1/admin/licenses/{id}`: seats, expiry (`null`: never), offline limit
    /// (`null`: the default).
    pub(crate) fn api_change_license(&self, req: &Request, actor: &Actor, id: &str) -> Handled {
        let b: LicenseChange = body(req)?;
        if b.seats.is_none() && b.expires.is_none() && b.max_offline_days.is_none() {
            return Err(HttpError::new(
                Reason::BadRequest,
                "Give seats, expires or max_offline_days.",
            ));
        }
        let mut answer = json!({"id": id});
        if let Some(days) = b.max_offline_days {
            if days.is_some_and(|d| !(1..=365).contains(&d)) {
                return Err(HttpError::new(
                    Reason::BadRequest,
                    "max_offline_days is a whole number of days from 1 to 365, or null for the default.",
                ));
            }
            let secs = days.map(|d| d * 86_400);
            answer["id"] = json!(manage::set_max_offline(&self.db, actor, id, secs)?);
            answer["max_offline_days"] = json!(days);
        }
        if b.seats.is_some() || b.expires.is_some() {
            let expires_at = b.expires.map(|e| expiry(e.as_deref())).transpose()?;
            let summary = manage::set_license(&self.db, actor, id, b.seats, expires_at)?;
            answer["seats"] = seats_json(&summary);
        }
        Ok(Response::json(200, &answer))
    }

    /// `POST /api/v1/admin/sublicenses`.
    pub(crate) fn api_add_sublicense(&self, req: &Request, actor: &Actor) -> Handled {
        let b: NewSublicenseBody = body(req)?;
        let expires_at = expiry(b.expires.as_deref())?;
        let id = manage::add_sublicense(
            &self.db,
            actor,
            &NewSublicense {
                license: &b.license,
                name: &b.name,
                seats: b.seats,
                reserved: b.reserved,
                expires_at,
            },
        )?;
        Ok(Response::json(
            201,
            &json!({"id": id, "name": b.name.trim(), "seats": b.seats, "reserved": b.reserved,
                    "expires_at": expires_at.map(rfc3339)}),
        ))
    }

    /// `PATCH /api/v1/admin/sublicenses/{id}`.
    pub(crate) fn api_change_sublicense(&self, req: &Request, actor: &Actor, id: &str) -> Handled {
        let b: SublicenseChange = body(req)?;
        if b.seats.is_none() && b.expires.is_none() {
            return Err(HttpError::new(Reason::BadRequest, "Give seats or expires."));
        }
        let expires_at = b.expires.map(|e| expiry(e.as_deref())).transpose()?;
        let summary = manage::set_sublicense(&self.db, actor, id, b.seats, expires_at)?;
        Ok(Response::json(
            200,
            &json!({"id": id, "seats": seats_json(&summary)}),
        ))
    }

    /// `DELETE /api/v1/admin/sublicenses/{id}`: once no mapping and no user draws from it.
    pub(crate) fn api_remove_sublicense(&self, actor: &Actor, id: &str) -> Handled {
        manage::remove_sublicense(&self.db, actor, id)?;
        Ok(Response::new(204, "text/plain", Vec::new()))
    }

    /// `GET /api/v1/admin/mappings`.
    pub(crate) fn api_mappings(&self) -> Handled {
        let mappings = self.db.read(crate::db::admin::mappings)?;
        let mappings: Vec<Value> = mappings
            .iter()
            .map(|m| {
                json!({"id": m.id, "group": m.group_ref, "connection": m.connection_id,
                       "grants": if m.role == "admins" { "admins" } else if m.sublicense_id.is_some() { "sublicense" } else { "primary" },
                       "license": m.license_id, "sublicense": m.sublicense_id,
                       "created_at": rfc3339(m.created_at)})
            })
            .collect();
        Ok(Response::json(200, &json!({ "mappings": mappings })))
    }

    /// `POST /api/v1/admin/mappings`.
    pub(crate) fn api_add_mapping(&self, req: &Request, actor: &Actor) -> Handled {
        let b: NewMapping = body(req)?;
        let to = match (b.grants.as_str(), &b.license, &b.sublicense) {
            ("admins", None, None) => MapTo::Admins,
            ("primary", license, None) => MapTo::Primary {
                license: license.as_deref(),
            },
            ("sublicense", _, Some(s)) => MapTo::Sublicense(s),
            _ => {
                return Err(HttpError::new(
                    Reason::BadRequest,
                    "grants is admins, primary (with an optional license) or sublicense (with sublicense).",
                ));
            }
        };
        let (id, summary) =
            manage::add_mapping(&self.db, actor, &b.group, b.connection.as_deref(), to)?;
        Ok(Response::json(
            201,
            &json!({"id": id, "seats": seats_json(&summary)}),
        ))
    }

    /// `DELETE /api/v1/admin/mappings/{id}`.
    pub(crate) fn api_remove_mapping(&self, actor: &Actor, id: &str) -> Handled {
        let summary = manage::remove_mapping(&self.db, actor, id)?;
        Ok(Response::json(
            200,
            &json!({"id": id, "removed": true, "seats": seats_json(&summary)}),
        ))
    }

    /// `GET /api/v1/admin/scim-tokens` and `…/admin-tokens`: never the secrets.
    pub(crate) fn api_tokens(&self, scope: Scope) -> Handled {
        let all = self.db.read(|tx| tokens::list(tx, scope))?;
        let list: Vec<Value> = all
            .iter()
            .map(|t| {
                json!({"id": t.id, "name": t.name, "connection": t.connection_id,
                       "created_at": rfc3339(t.created_at), "last_used_at": t.last_used_at.map(rfc3339),
                       "revoked_at": t.revoked_at.map(rfc3339)})
            })
            .collect();
        Ok(Response::json(200, &json!({ "tokens": list })))
    }

    /// `POST /api/v1/admin/scim-tokens` and `…/admin-tokens`: the secret is in this answer
    /// only.
    pub(crate) fn api_create_token(&self, req: &Request, actor: &Actor, scope: Scope) -> Handled {
        let b: NewToken = body(req)?;
        if scope == Scope::Admin && b.connection.is_some() {
            return Err(HttpError::new(
                Reason::BadRequest,
                "An admin API token belongs to no connection.",
            ));
        }
        let (id, secret) = self.new_token(scope, &b.name, b.connection.as_deref(), actor)?;
        Ok(Response::json(
            201,
            &json!({"id": id, "name": b.name.trim(), "token": secret,
                    "connection": b.connection}),
        )
        .with_header("Cache-Control", "no-store"))
    }

    /// `DELETE /api/v1/admin/scim-tokens/{id}` and `…/admin-tokens/{id}`.
    pub(crate) fn api_revoke_token(&self, actor: &Actor, scope: Scope, id: &str) -> Handled {
        let id: i64 = id.parse().map_err(|_| HttpError::not_found())?;
        let revoked = self
            .db
            .write(|tx| tokens::revoke(tx, scope, &id.to_string(), actor))?;
        if revoked == 0 {
            return Err(HttpError::new(
                Reason::NotFound,
                "There is no active token with that id.",
            ));
        }
        log::info!("{actor} revoked {} token {id}", scope.as_str());
        Ok(Response::new(204, "text/plain", Vec::new()))
    }

    /// `GET /api/v1/admin/connections`.
    pub(crate) fn api_connections(&self) -> Handled {
        let all = self.db.read(crate::db::idp::list)?;
        let list: Vec<Value> = all
            .iter()
            .map(|c| {
                json!({"id": c.id, "name": c.name, "preset": c.preset, "domains": c.domains,
                       "idp_entity_id": c.idp_entity_id,
                       "certificates_not_after": c.certificates.iter().map(|(_, _, t)| rfc3339(*t)).collect::<Vec<_>>(),
                       "jit_users": c.options.jit_users, "sign_requests": c.options.sign_requests,
                       "allow_idp_initiated": c.options.allow_idp_initiated})
            })
            .collect();
        Ok(Response::json(200, &json!({ "connections": list })))
    }

    /// `PATCH /api/v1/admin/connections/{id}`: its switches; fields left out keep their value.
    pub(crate) fn api_change_connection(&self, req: &Request, actor: &Actor, id: &str) -> Handled {
        use crate::saml::connections;
        let b: ConnectionChange = body(req)?;
        let current = self
            .db
            .read(crate::db::idp::list)?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(HttpError::not_found)?;
        let options = crate::db::idp::Options {
            jit_users: b.jit_users.unwrap_or(current.options.jit_users),
            sign_requests: b.sign_requests.unwrap_or(current.options.sign_requests),
            allow_idp_initiated: b
                .allow_idp_initiated
                .unwrap_or(current.options.allow_idp_initiated),
        };
        connections::set_options(&self.db, id, &options, actor)
            .map_err(crate::domain::problem::Problem::from)?;
        Ok(Response::json(
            200,
            &json!({"id": id, "jit_users": options.jit_users, "sign_requests": options.sign_requests,
                    "allow_idp_initiated": options.allow_idp_initiated}),
        ))
    }

    /// `GET /api/v1/admin/users/{id}/devices`.
    pub(crate) fn api_user_devices(&self, id: &str) -> Handled {
        let devices = self.db.read(|tx| {
            if crate::db::directory::user_by_id(tx, id)?.is_none() {
                return Err(HttpError::from(Problem::new(
                    Reason::NotFound,
                    "There is no such user.",
                )));
            }
            Ok(crate::db::licensing::devices_of_user(tx, id)?)
        })?;
        let list: Vec<Value> = devices
            .iter()
            .map(|d| {
                json!({"id": d.id, "name": d.name, "os": d.os,
                       "activated_at": rfc3339(d.created_at), "last_seen_at": rfc3339(d.last_seen_at),
                       "lease_expires_at": rfc3339(d.lease_expires_at),
                       "revoked_at": d.revoked_at.map(rfc3339), "revoke_reason": d.revoke_reason})
            })
            .collect();
        Ok(Response::json(200, &json!({ "devices": list })))
    }
}
