//! License keys: per-device seats for Macs activated without anyone signing in (labs,
//! shared machines, mass deployment). A key belongs to a license's primary pool or to a
//! sublicense and hands out at most its device limit of that pool's seats; key devices
//! and people compete for the same capacity (`pool_usage` counts both).
//!
//! The key is 125 random bits shown once (`SGK-XXXXX-XXXXX-XXXXX-XXXXX-XXXXX`, Crockford
//! base 32: no I, L, O or U, case and dashes ignored when typed) and stored as its SHA-256.
//! Rotating gives it a new secret, its devices keep their seats; revoking it revokes its
//! devices, refused at their next renewal with `REVOKED`. When a person later activates a
//! key device with SSO (the same device key), the device becomes theirs and its
//! per-device seat is freed ([`super::activation`]).

use serde_json::{Value, json};

use super::leases::{self, LeaseFor};
use super::manage::{MAX_SEATS, ManageError, find_license, find_sublicense};
use super::reconcile;
use crate::audit::{Actor, AuditAction};
use crate::config::LeaseConfig;
use crate::crypto::{random_bytes, random_hex, sha256_hex};
use crate::db::Db;
use crate::db::keys::{self as store, KeyRow, NewKey};
use crate::db::licensing::{self as licensing_store, Holder, NewDevice};
use crate::domain::engine::RevokeReason;
use crate::domain::jose::DeviceKey;
use crate::domain::problem::{Problem, Reason};
use crate::preauth::Admitted;

/// Crockford's base 32: 32 symbols, none that reads as another.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const PREFIX: &str = "SGK";
const GROUPS: usize = 5;
const GROUP_LEN: usize = 5;

/// A fresh key, `SGK-` and five groups of five symbols (125 bits).
fn new_secret() -> String {
    let symbols: Vec<char> = random_bytes(GROUPS * GROUP_LEN)
        .iter()
        .map(|b| ALPHABET[usize::from(b & 31)] as char)
        .collect();
    let groups: Vec<String> = symbols
        .chunks(GROUP_LEN)
        .map(|g| g.iter().collect())
        .collect();
    format!("{PREFIX}-{}", groups.join("-"))
}

/// A key as typed, in the one form that is hashed: upper case, without the prefix, dashes
/// or spaces, with the look-alikes Crockford maps (O → 0, I and L → 1). `None` when it
/// cannot be a key at all.
fn canonical(typed: &str) -> Option<String> {
    if typed.len() > 100 {
        return None;
    }
    let upper = typed.trim().to_ascii_uppercase();
    let body = upper.strip_prefix(PREFIX).unwrap_or(&upper);
    let mut out = String::with_capacity(GROUPS * GROUP_LEN);
    for c in body.chars() {
        match c {
            '-' | ' ' => {}
            'O' => out.push('0'),
            'I' | 'L' => out.push('1'),
            c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => out.push(c),
            _ => return None,
        }
    }
    (out.len() == GROUPS * GROUP_LEN).then_some(out)
}

/// A key as typed, in the form it is shown (`SGK-` and five groups), if it can be one.
pub fn normalized(typed: &str) -> Option<String> {
    let c = canonical(typed)?;
    let groups: Vec<&str> = (0..GROUPS)
        .map(|i| &c[i * GROUP_LEN..(i + 1) * GROUP_LEN])
        .collect();
    Some(format!("{PREFIX}-{}", groups.join("-")))
}

fn secret_hash(canonical: &str) -> String {
    sha256_hex(canonical.as_bytes())
}

fn hint(secret: &str) -> String {
    secret.rsplit('-').next().unwrap_or_default().to_string()
}

/// What an admin asks for when creating a key.
pub struct NewKeyRequest<'a> {
    pub license: &'a str,
    pub sublicense: Option<&'a str>,
    pub name: Option<&'a str>,
    pub devices: i64,
}

/// A key as just created or rotated: the secret, shown this once.
#[derive(Debug)]
pub struct Issued {
    pub key: KeyRow,
    pub secret: String,
}

fn checked_devices(devices: i64) -> Result<i64, ManageError> {
    if (1..=MAX_SEATS).contains(&devices) {
        Ok(devices)
    } else {
        Err(ManageError::Invalid(format!(
            "a key's device limit must be a whole number from 1 to {MAX_SEATS}"
        )))
    }
}

/// Creates a key for a license's primary pool or one of its sublicenses.
pub fn create(
    db: &Db,
    actor: &Actor,
    req: &NewKeyRequest<'_>,
    now: i64,
) -> Result<Issued, ManageError> {
    db.write(|tx| create_in(tx, actor, req, now))
}

/// `create` inside the caller's transaction (an invitation's Continue spends its link
/// and makes its key together, so two racing presses cannot both make one).
pub fn create_in(
    tx: &rusqlite::Transaction<'_>,
    actor: &Actor,
    req: &NewKeyRequest<'_>,
    now: i64,
) -> Result<Issued, ManageError> {
    let devices = checked_devices(req.devices)?;
    let secret = new_secret();
    let canonical = canonical(&secret).ok_or_else(|| ManageError::Invalid("key".into()))?;
    {
        let license = find_license(tx, req.license)?;
        let sublicense = req.sublicense.map(|s| find_sublicense(tx, s)).transpose()?;
        if let Some(s) = &sublicense
            && s.license_id != license.id
        {
            return Err(ManageError::Invalid(format!(
                "sublicense {:?} belongs to another license, not to {}",
                s.name, license.product
            )));
        }
        if let Some(e) = crate::db::entitlements::of_license(tx, &license.id)?
            && !e.claims.per_device_keys
        {
            return Err(ManageError::Invalid(format!(
                "the vendor's entitlement for {} does not allow license keys (per-device activation); ask the vendor for one that does",
                license.product
            )));
        }
        if license.expires_at.is_some_and(|t| t < now) {
            return Err(ManageError::Invalid(format!(
                "license {} has expired; a key for it could activate nothing",
                license.product
            )));
        }
        let pool_name = sublicense
            .as_ref()
            .map_or("primary pool", |s| s.name.as_str());
        let default_name = format!("{} key", pool_name);
        let name = crate::caps::admin_name("key name", req.name.unwrap_or(&default_name), 100)
            .map_err(ManageError::Invalid)?;
        let id = format!("key-{}", random_hex(6));
        store::insert(
            tx,
            &NewKey {
                id: &id,
                license_id: &license.id,
                sublicense_id: sublicense.as_ref().map(|s| s.id.as_str()),
                name,
                secret_hash: &secret_hash(&canonical),
                hint: &hint(&secret),
                device_limit: devices,
            },
            now,
        )?;
        let detail = json!({"license": license.id, "sublicense": sublicense.as_ref().map(|s| &s.id),
                            "name": name, "devices": devices, "hint": hint(&secret)});
        licensing_store::audit(
            tx,
            now,
            actor,
            AuditAction::LicenseKeyCreated,
            None,
            licensing_store::AuditAbout {
                subject: Some(&id),
                detail: Some(&detail.to_string()),
                ..Default::default()
            },
        )?;
        let key = store::by_id(tx, &id)?.ok_or(ManageError::UnknownKey(id))?;
        Ok(Issued {
            key,
            secret: secret.clone(),
        })
    }
}

/// A key by its id or name (names need not be unique: then the id).
pub fn find_key(tx: &rusqlite::Transaction<'_>, key: &str) -> Result<KeyRow, ManageError> {
    if let Some(k) = store::by_id(tx, key)? {
        return Ok(k);
    }
    let all = store::list(tx, None)?;
    let named: Vec<&KeyRow> = all
        .iter()
        .filter(|k| k.name.eq_ignore_ascii_case(key))
        .collect();
    match named.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(ManageError::UnknownKey(key.to_string())),
        _ => Err(ManageError::Ambiguous(key.to_string())),
    }
}

pub fn list(db: &Db, license: Option<&str>) -> Result<Vec<KeyRow>, ManageError> {
    db.read(|tx| {
        let license = license.map(|l| find_license(tx, l)).transpose()?;
        Ok(store::list(tx, license.as_ref().map(|l| l.id.as_str()))?)
    })
}

fn live(k: &KeyRow) -> Result<(), ManageError> {
    match k.revoked_at {
        Some(_) => Err(ManageError::Invalid(format!(
            "key {} ({}) is revoked; create a new one",
            k.id, k.name
        ))),
        None => Ok(()),
    }
}

/// Gives a key a new secret. Devices activated with it keep their seats; the old secret
/// activates nothing more.
pub fn rotate(db: &Db, actor: &Actor, key: &str, now: i64) -> Result<Issued, ManageError> {
    let secret = new_secret();
    let canonical = canonical(&secret).ok_or_else(|| ManageError::Invalid("key".into()))?;
    db.write(|tx| {
        let k = find_key(tx, key)?;
        live(&k)?;
        store::set_secret(tx, &k.id, &secret_hash(&canonical), &hint(&secret), now)?;
        let detail = json!({"old_hint": k.hint, "hint": hint(&secret)});
        licensing_store::audit(
            tx,
            now,
            actor,
            AuditAction::LicenseKeyRotated,
            None,
            licensing_store::AuditAbout {
                subject: Some(&k.id),
                detail: Some(&detail.to_string()),
                ..Default::default()
            },
        )?;
        let key = store::by_id(tx, &k.id)?.ok_or(ManageError::UnknownKey(k.id))?;
        Ok(Issued {
            key,
            secret: secret.clone(),
        })
    })
}

/// Renames a key or changes its device limit. A limit below the devices it already has
/// takes nothing away; it only stops new activations until enough are released.
pub fn set(
    db: &Db,
    actor: &Actor,
    key: &str,
    name: Option<&str>,
    devices: Option<i64>,
    now: i64,
) -> Result<KeyRow, ManageError> {
    let devices = devices.map(checked_devices).transpose()?;
    db.write(|tx| {
        let k = find_key(tx, key)?;
        live(&k)?;
        let name = match name {
            Some(n) => crate::caps::admin_name("key name", n, 100).map_err(ManageError::Invalid)?,
            None => k.name.as_str(),
        };
        let limit = devices.unwrap_or(k.device_limit);
        store::set_terms(tx, &k.id, name, limit)?;
        let detail = json!({"name": name, "devices": limit, "held": k.devices});
        licensing_store::audit(
            tx,
            now,
            actor,
            AuditAction::LicenseKeyChanged,
            None,
            licensing_store::AuditAbout {
                subject: Some(&k.id),
                detail: Some(&detail.to_string()),
                ..Default::default()
            },
        )?;
        store::by_id(tx, &k.id)?.ok_or(ManageError::UnknownKey(k.id))
    })
}

/// What revoking a key did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    pub key: KeyRow,
    /// Devices revoked with it: each is refused at its next renewal with `REVOKED`.
    pub devices: usize,
    /// People on the waiting list who got the freed seats.
    pub seated: usize,
}

/// Revokes a key and every device activated with it; their seats go to whoever waits.
pub fn revoke(db: &Db, actor: &Actor, key: &str, now: i64) -> Result<Revoked, ManageError> {
    db.write(|tx| {
        let k = find_key(tx, key)?;
        live(&k)?;
        let (devices, seated) = revoke_in(tx, &k, actor, now)?;
        let key = store::by_id(tx, &k.id)?.ok_or(ManageError::UnknownKey(k.id))?;
        Ok(Revoked {
            key,
            devices,
            seated,
        })
    })
}

/// Revokes `k` and its devices inside the caller's transaction.
pub(crate) fn revoke_in(
    tx: &rusqlite::Transaction<'_>,
    k: &KeyRow,
    actor: &Actor,
    now: i64,
) -> rusqlite::Result<(usize, usize)> {
    store::set_revoked(tx, &k.id, now)?;
    let devices = licensing_store::devices_of_key(tx, &k.id)?;
    for d in &devices {
        licensing_store::revoke_device(tx, &d.id, RevokeReason::KeyRevoked, now)?;
    }
    let detail = json!({"devices": devices.iter().map(|d| &d.id).collect::<Vec<_>>()});
    licensing_store::audit(
        tx,
        now,
        actor,
        AuditAction::LicenseKeyRevoked,
        None,
        licensing_store::AuditAbout {
            subject: Some(&k.id),
            detail: Some(&detail.to_string()),
            reason: Some(RevokeReason::KeyRevoked.as_str()),
        },
    )?;
    let summary = reconcile::after_device_seats_change(tx, &k.license_id, actor, now)?;
    Ok((devices.len(), summary.granted))
}

/// The live key `typed` is (before it goes into a configuration profile): `KEY_UNKNOWN`
/// or `REVOKED` otherwise.
pub fn check_live(db: &Db, typed: &str) -> Result<KeyRow, Problem> {
    let unknown = || Problem::new(Reason::KeyUnknown, refusal(Reason::KeyUnknown));
    let canonical = canonical(typed).ok_or_else(unknown)?;
    let key = db
        .read(|tx| store::by_secret(tx, &secret_hash(&canonical)))?
        .ok_or_else(unknown)?;
    if key.revoked_at.is_some() {
        return Err(Problem::new(Reason::Revoked, refusal(Reason::Revoked)));
    }
    Ok(key)
}

/// What `POST /api/v1/activations` with a `license_key` asks for, checked.
struct KeyActivation {
    canonical: String,
    device: DeviceKey,
    name: String,
    os: String,
}

impl KeyActivation {
    fn parse(body: &Value) -> Result<KeyActivation, Problem> {
        let bad = |m: &str| Problem::new(Reason::BadRequest, m);
        let canonical = body
            .get("license_key")
            .and_then(Value::as_str)
            .and_then(canonical)
            .ok_or_else(|| {
                Problem::new(
                    Reason::KeyUnknown,
                    "This is not a license key of this gateway; check it, or ask your IT administrator for the current one.",
                )
            })?;
        let device = body.get("device").ok_or_else(|| {
            bad("Describe the device as \"device\": {\"public_key\", \"name\", \"os\"}.")
        })?;
        let key = DeviceKey::from_jwk(device.get("public_key").unwrap_or(&Value::Null))
            .map_err(|e| bad(&e.to_string()))?;
        let name =
            super::activation::device_text(device.get("name"), "Mac", crate::caps::DEVICE_NAME)?;
        let os = super::activation::device_text(device.get("os"), "macOS", crate::caps::DEVICE_OS)?;
        Ok(KeyActivation {
            canonical,
            device: key,
            name,
            os,
        })
    }
}

/// Whether the pool a key (or key device) draws from has ended: its license, or its
/// sublicense, past its end (or gone).
pub(crate) fn pool_ended(
    catalog: &crate::domain::engine::Catalog,
    license_id: &str,
    sublicense_id: Option<&str>,
    now: i64,
) -> bool {
    let ended = |t: Option<i64>| t.is_some_and(|t| t < now);
    catalog
        .license(license_id)
        .is_none_or(|l| ended(l.expires_at))
        || sublicense_id.is_some_and(|s| catalog.sublicense(s).is_none_or(|s| ended(s.expires_at)))
}

/// Why a new activation with `k` is refused now, if it is: the key revoked, its pool
/// ended, the key's devices or the pool's seats all taken.
fn key_refusal(
    tx: &rusqlite::Transaction<'_>,
    k: &KeyRow,
    now: i64,
) -> rusqlite::Result<Option<Reason>> {
    if k.revoked_at.is_some() {
        return Ok(Some(Reason::Revoked));
    }
    let catalog = licensing_store::catalog(tx)?;
    if pool_ended(&catalog, &k.license_id, k.sublicense_id.as_deref(), now) {
        return Ok(Some(Reason::LicenseExpired));
    }
    if k.devices >= k.device_limit {
        return Ok(Some(Reason::NoSeats));
    }
    let usage = licensing_store::usage(tx)?;
    if !catalog.has_room(&k.license_id, &k.sublicense_id, &usage, now) {
        return Ok(Some(Reason::NoSeats));
    }
    Ok(None)
}

/// A device activated with a key: its lease at once.
#[derive(Debug)]
pub struct KeyActivated {
    pub device_id: String,
    pub lease: leases::Lease,
}

/// Why a key activation was refused, in one sentence.
fn refusal(reason: Reason) -> &'static str {
    match reason {
        Reason::KeyUnknown => {
            "This is not a license key of this gateway; check it, or ask your IT administrator for the current one."
        }
        Reason::Revoked => "This license key was revoked; ask your IT administrator for a new one.",
        Reason::LicenseExpired => "The license this key belongs to has expired.",
        _ => {
            "This license key cannot activate another Mac now: its device limit is reached or its pool has no free seat; ask your IT administrator."
        }
    }
}

/// `POST /api/v1/activations` with `{"license_key", "device"}`: a lease at once, no
/// sign-in, for a seat of the key's pool. Anyone may call it (pre-authentication limits,
/// [`Admitted`]); refusals are audited against the key.
pub fn activate(
    db: &Db,
    cfg: &LeaseConfig,
    issuer: &str,
    body: &Value,
    _admitted: Admitted,
    now: i64,
) -> Result<KeyActivated, Problem> {
    let req = KeyActivation::parse(body)?;
    let hash = secret_hash(&req.canonical);
    let outcome = db.write(|tx| {
        let Some(k) = store::by_secret(tx, &hash)? else {
            return Ok(Err(Reason::KeyUnknown));
        };
        if let Some(d) = licensing_store::device_by_thumbprint(tx, &req.device.thumbprint)?
            && d.revoked_at.is_none()
        {
            return Err(Problem::new(
                Reason::Conflict,
                "This device key is already activated; renew its lease, or deactivate it first.",
            ));
        }
        let actor = Actor::LicenseKey(k.id.clone());
        let refused = |tx: &rusqlite::Transaction<'_>,
                       reason: Reason|
         -> Result<Result<KeyActivated, Reason>, Problem> {
            licensing_store::audit(
                tx,
                now,
                &actor,
                AuditAction::ActivationRefused,
                None,
                licensing_store::AuditAbout {
                    subject: Some(&k.id),
                    reason: Some(reason.code()),
                    detail: Some(&json!({"name": req.name, "os": req.os}).to_string()),
                },
            )?;
            Ok(Err(reason))
        };
        if let Some(reason) = key_refusal(tx, &k, now)? {
            return refused(tx, reason);
        }
        let pool = k.sublicense_id.clone();
        let device_id = format!("dev-{}", random_hex(8));
        let lease = leases::mint(
            tx,
            cfg,
            issuer,
            &LeaseFor {
                user_id: None,
                email: None,
                key_id: Some(&k.id),
                license_id: &k.license_id,
                sublicense_id: pool.as_deref(),
                device_id: &device_id,
                thumbprint: &req.device.thumbprint,
            },
            now,
        )?;
        licensing_store::insert_device(
            tx,
            &NewDevice {
                id: &device_id,
                holder: Holder::Key {
                    key_id: &k.id,
                    sublicense: pool.as_deref(),
                },
                license_id: &k.license_id,
                thumbprint: &req.device.thumbprint,
                public_jwk: &req.device.jwk.to_string(),
                name: &req.name,
                os: &req.os,
                lease_id: &lease.id,
                lease_expires_at: lease.expires_at,
            },
            now,
        )?;
        let detail = json!({"name": req.name, "os": req.os, "lease": lease.id, "key": k.id});
        licensing_store::audit(
            tx,
            now,
            &actor,
            AuditAction::DeviceActivated,
            None,
            licensing_store::AuditAbout {
                subject: Some(&device_id),
                detail: Some(&detail.to_string()),
                reason: None,
            },
        )?;
        reconcile::after_device_seats_change(tx, &k.license_id, &actor, now)?;
        crate::db::outbox::mark_activated(tx, None, Some(&k.id), now)?;
        Ok(Ok(KeyActivated { device_id, lease }))
    })?;
    crate::metrics::licensing().activation("key", outcome.as_ref().err().map(|r| r.code()));
    outcome.map_err(|reason| Problem::new(reason, refusal(reason)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_typeable_and_read_back_the_same_however_typed() {
        let k = new_secret();
        assert_eq!(k.len(), 3 + 5 * 6);
        assert!(k.starts_with("SGK-"));
        let c = canonical(&k).expect("canonical");
        assert_eq!(c.len(), 25);
        assert_eq!(canonical(&k.to_lowercase()), Some(c.clone()));
        assert_eq!(canonical(&k.replace('-', " ")), Some(c.clone()));
        assert_eq!(canonical(&k[4..]), Some(c.clone()));
        // Crockford's look-alikes read as the digits they look like.
        assert_eq!(
            canonical("SGK-OOOOO-IIIII-LLLLL-00000-11111").as_deref(),
            Some("0000011111111110000011111")
        );
        for bad in [
            "",
            "SGK-",
            "SGK-UUUUU-00000-00000-00000-00000",
            "x".repeat(1000).as_str(),
            "SGK-00000-00000-00000-00000-0000",
        ] {
            assert_eq!(canonical(bad), None, "{bad}");
        }
        assert_ne!(new_secret(), new_secret());
    }
}

/// `seatgate explain` for a license key (its id, name or the key itself) or one of its
/// devices: the key, its pool and what an activation with it would get now.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyExplanation {
    pub key: KeyRow,
    pub product: String,
    /// `primary pool` or `sublicense NAME`.
    pub pool: String,
    pub pool_used: i64,
    pub pool_capacity: i64,
    pub pool_free: i64,
    /// The device asked about, when it was a device.
    pub device: Option<licensing_store::DeviceRow>,
    pub devices: Vec<licensing_store::DeviceRow>,
    /// The policy the key's devices get: per setting, its value and source.
    pub policy: Vec<super::explain::PolicyLine>,
    /// What a new activation with the key would get now: `OK` or the reason code.
    pub verdict: String,
    pub because: String,
}

/// Explains a key or a key device; `None` when `what` names neither.
pub fn explain(
    db: &Db,
    what: &str,
    bounds: crate::domain::policy::LeaseBounds,
    now: i64,
) -> Result<Option<KeyExplanation>, Problem> {
    db.read(|tx| {
        let device = licensing_store::device(tx, what)?;
        let key = match (&device, canonical(what)) {
            (Some(d), _) => match &d.key_id {
                Some(k) => store::by_id(tx, k)?,
                None => None,
            },
            (None, Some(c)) if what.trim().to_ascii_uppercase().starts_with(PREFIX) => {
                store::by_secret(tx, &secret_hash(&c))?
            }
            (None, _) => match find_key(tx, what) {
                Ok(k) => Some(k),
                Err(ManageError::Ambiguous(_)) => {
                    return Err(Problem::new(
                        Reason::BadRequest,
                        format!("{what:?} names several license keys; give the key's id"),
                    ));
                }
                Err(_) => None,
            },
        };
        let Some(key) = key else {
            return Ok(None);
        };
        let catalog = licensing_store::catalog(tx)?;
        let usage = licensing_store::usage(tx)?;
        let pool = key.sublicense_id.clone();
        let seats = catalog.pool_seats(&key.license_id, &pool, &usage, now);
        let product = licensing_store::lease_terms(tx, &key.license_id)?.product;
        let pool_name = match pool.as_deref().and_then(|s| catalog.sublicense(s)) {
            Some(s) => format!("sublicense {}", s.name),
            None => "primary pool".to_string(),
        };
                let ended = pool_ended(&catalog, &key.license_id, pool.as_deref(), now);
        let free = catalog.free_seats(&key.license_id, &pool, &usage, now);
        let (verdict, because) = if key.revoked_at.is_some() {
            (Reason::Revoked.code(), "the key is revoked; its Macs are refused at their next renewal".to_string())
        } else if ended {
            (Reason::LicenseExpired.code(), format!("{product}'s {pool_name} has ended"))
        } else if key.devices >= key.device_limit {
            (Reason::NoSeats.code(), format!("the key's {} devices are all in use; release one or raise its limit", key.device_limit))
        } else if free <= 0 {
            (Reason::NoSeats.code(), format!("the {pool_name} of {product} has no free seat ({} of {} used, people included)", seats.used, seats.capacity))
        } else {
            ("OK", format!("a new Mac would get a per-device seat of the {pool_name} ({free} free; the key has {} of {} left)", key.device_limit - key.devices, key.device_limit))
        };
        let devices = licensing_store::devices_of_key(tx, &key.id)?;
        let policy = super::policies::effective(tx, None, Some(&key.id), bounds)?;
        Ok(Some(KeyExplanation {
            policy: super::explain::policy_lines(&policy),
            pool: pool_name,
            product,
            pool_used: seats.used,
            pool_capacity: seats.capacity,
            pool_free: free.max(0),
            device,
            devices,
            verdict: verdict.to_string(),
            because,
            key,
        }))
    })
}

/// The human-readable form `seatgate explain KEY` prints.
pub fn render(e: &KeyExplanation) -> String {
    use std::fmt::Write;
    let k = &e.key;
    let mut s = String::new();
    let _ = writeln!(s, "license key {} ({}, ends in …{})", k.id, k.name, k.hint);
    let _ = writeln!(
        s,
        "  pool         {} of {}: {} of {} used (people and key devices), {} free",
        e.pool, e.product, e.pool_used, e.pool_capacity, e.pool_free
    );
    let state = match k.revoked_at {
        Some(t) => format!("REVOKED {}", crate::clock::rfc3339(t)),
        None => "active".into(),
    };
    let _ = writeln!(
        s,
        "  key          {state}; {} of {} devices in use",
        k.devices, k.device_limit
    );
    if let Some(d) = &e.device {
        let standing = match (&d.revoked_at, &d.revoke_reason, &d.key_id) {
            (Some(_), r, _) => format!(
                "revoked ({}): its renewal is refused",
                r.as_deref().unwrap_or("")
            ),
            (None, _, Some(_)) => format!(
                "active, per-device seat, lease until {}",
                crate::clock::rfc3339(d.lease_expires_at)
            ),
            (None, _, None) => "moved to its person's seat".into(),
        };
        let _ = writeln!(
            s,
            "  device       {} {} ({}): {standing}",
            d.id, d.name, d.os
        );
    }
    for d in &e.devices {
        let _ = writeln!(
            s,
            "  holds        {} {} ({}), last seen {}",
            d.id,
            d.name,
            d.os,
            crate::clock::rfc3339(d.last_seen_at)
        );
    }
    for p in &e.policy {
        let _ = writeln!(
            s,
            "  policy       {}: {} (from {})",
            p.setting, p.value, p.from
        );
    }
    let _ = writeln!(s, "  activation   {}: {}", e.verdict, e.because);
    s
}
