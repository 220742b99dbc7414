//! The admin API for license keys (`/api/v1/admin/license-keys`): list, create (the key in
//! the answer, once), change, rotate (the new key, once), revoke, and a key's devices.
//! Through `licensing::keys`, as the portal and the CLI.

use serde::Deserialize;
use serde_json::{Value, json};

use super::api_write::body;
use super::{Admin, Handled};
use crate::audit::Actor;
use crate::clock::rfc3339;
use crate::db::keys::KeyRow;
use crate::error::HttpError;
use crate::http::{Request, Response};
use crate::licensing::keys::{self, NewKeyRequest};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKeyBody {
    license: String,
    sublicense: Option<String>,
    name: Option<String>,
    devices: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyChange {
    name: Option<String>,
    devices: Option<i64>,
    /// The policy its devices get; null: the default policy.
    #[serde(default, deserialize_with = "super::api_write::double_option")]
    policy: Option<Option<String>>,
}

/// A key as the API shows it: never the key itself, only its last group.
pub(crate) fn key_json(k: &KeyRow) -> Value {
    json!({"id": k.id, "license": k.license_id, "sublicense": k.sublicense_id, "name": k.name,
           "hint": k.hint, "device_limit": k.device_limit, "devices": k.devices,
           "created_at": rfc3339(k.created_at), "rotated_at": k.rotated_at.map(rfc3339),
           "revoked_at": k.revoked_at.map(rfc3339), "policy": k.policy_id})
}

impl Admin {
    /// `GET /api/v1/admin/license-keys`.
    pub(crate) fn api_keys(&self) -> Handled {
        let list = keys::list(&self.db, None)?;
        let list: Vec<Value> = list.iter().map(key_json).collect();
        Ok(Response::json(200, &json!({ "license_keys": list })))
    }

    /// `POST /api/v1/admin/license-keys`.
    pub(crate) fn api_create_key(&self, req: &Request, actor: &Actor) -> Handled {
        let b: NewKeyBody = body(req)?;
        let issued = keys::create(
            &self.db,
            actor,
            &NewKeyRequest {
                license: &b.license,
                sublicense: b.sublicense.as_deref(),
                name: b.name.as_deref(),
                devices: b.devices,
            },
            self.clock.now_unix(),
        )?;
        log::info!("{actor} created license key {}", issued.key.id);
        Ok(Response::json(
            201,
            &json!({"license_key": issued.secret, "key": key_json(&issued.key)}),
        )
        .with_header("Cache-Control", "no-store"))
    }

    /// `PATCH /api/v1/admin/license-keys/{id}`.
    pub(crate) fn api_change_key(&self, req: &Request, actor: &Actor, id: &str) -> Handled {
        let b: KeyChange = body(req)?;
        if let Some(policy) = &b.policy {
            crate::licensing::policies::set_key_policy(
                &self.db,
                actor,
                id,
                policy.as_deref(),
                self.clock.now_unix(),
            )?;
        }
        if b.name.is_none() && b.devices.is_none() {
            let k = self.db.read(|tx| keys::find_key(tx, id))?;
            return Ok(Response::json(200, &key_json(&k)));
        }
        let k = keys::set(
            &self.db,
            actor,
            id,
            b.name.as_deref(),
            b.devices,
            self.clock.now_unix(),
        )?;
        Ok(Response::json(200, &key_json(&k)))
    }

    /// `POST /api/v1/admin/license-keys/{id}/rotate`.
    pub(crate) fn api_rotate_key(&self, actor: &Actor, id: &str) -> Handled {
        let issued = keys::rotate(&self.db, actor, id, self.clock.now_unix())?;
        log::info!("{actor} rotated license key {}", issued.key.id);
        Ok(Response::json(
            200,
            &json!({"license_key": issued.secret, "key": key_json(&issued.key)}),
        )
        .with_header("Cache-Control", "no-store"))
    }

    /// `DELETE /api/v1/admin/license-keys/{id}`: revokes the key and its devices.
    pub(crate) fn api_revoke_key(&self, actor: &Actor, id: &str) -> Handled {
        let done = keys::revoke(&self.db, actor, id, self.clock.now_unix())?;
        log::info!("{actor} revoked license key {}", done.key.id);
        Ok(Response::json(
            200,
            &json!({"key": key_json(&done.key), "devices_revoked": done.devices,
                    "seats_granted": done.seated}),
        ))
    }

    /// `GET /api/v1/admin/license-keys/{id}/devices`: the live devices holding its seats.
    pub(crate) fn api_key_devices(&self, id: &str) -> Handled {
        let devices = self.db.read(|tx| {
            let k = keys::find_key(tx, id)?;
            Ok::<_, HttpError>(crate::db::licensing::devices_of_key(tx, &k.id)?)
        })?;
        let list: Vec<Value> = devices
            .iter()
            .map(|d| {
                json!({"id": d.id, "name": d.name, "os": d.os,
                       "activated_at": rfc3339(d.created_at), "last_seen_at": rfc3339(d.last_seen_at),
                       "lease_expires_at": rfc3339(d.lease_expires_at)})
            })
            .collect();
        Ok(Response::json(200, &json!({ "devices": list })))
    }
}
