//! Leases: compact JWS (EdDSA) any JOSE library verifies offline against
//! `/.well-known/jwks.json`, bound to the device key (`cnf.jkt`, RFC 7800/7638). Renewal
//! needs a fresh proof signed by that device key; the gateway re-checks the user, the seat
//! and the device every time, and answers a refusal with its reason code.
//!
//! Signing keys rotate every `[lease] key_rotation`; a retired key stays published until
//! every lease it signed has expired, so rotation never invalidates a valid lease.

use std::time::Duration;

use rusqlite::Transaction;
use serde_json::{Value, json};

use crate::audit::{Actor, AuditAction};
use crate::config::LeaseConfig;
use crate::db::Db;
use crate::db::licensing::{self as store, DeviceRow, SigningKey};
use crate::domain::engine::RevokeReason;
use crate::domain::jose::{DeviceKey, Jws, okp_kid, sign_eddsa};
use crate::domain::policy::Effective;
use crate::domain::problem::{Problem, Reason};

/// How far a proof's `iat` may be from our clock.
const PROOF_SKEW_SECS: i64 = 300;
pub const LEASE_TYP: &str = "seatgate-lease+jwt";
pub const PROOF_TYP: &str = "seatgate-proof+jwt";

fn internal(e: impl std::fmt::Display) -> Problem {
    log::error!("lease signing failed: {e}");
    Problem::internal()
}

/// The key that signs now, making the first one or rotating as configured.
pub fn signing_key(
    tx: &Transaction<'_>,
    cfg: &LeaseConfig,
    now: i64,
) -> Result<SigningKey, Problem> {
    if let Some(k) = store::active_signing_key(tx)?
        && now - k.created_at < cfg.key_rotation.as_secs() as i64
    {
        return Ok(k);
    }
    let (pkcs8, public_key) =
        crate::crypto::ed25519_generate().map_err(|_| internal("key generation"))?;
    let key = SigningKey {
        kid: okp_kid(&public_key),
        pkcs8,
        public_key,
        created_at: now,
        retired_at: None,
        publish_until: None,
    };
    store::insert_signing_key(tx, &key)?;
    let longest_lease = (cfg.renew_after + cfg.offline_grace).as_secs() as i64;
    let retired = store::retire_signing_keys(tx, &key.kid, now, now + longest_lease)?;
    log::info!(
        "new lease-signing key {} ({retired} older key(s) retired, still published)",
        key.kid
    );
    Ok(key)
}

/// `/.well-known/jwks.json`.
pub fn jwks(db: &Db, now: i64) -> Result<Value, Problem> {
    let keys = db.read(|tx| store::published_signing_keys(tx, now))?;
    let keys: Vec<Value> = keys
        .iter()
        .map(|k| {
            json!({"kty": "OKP", "crv": "Ed25519", "x": crate::crypto::b64url(&k.public_key),
                   "kid": k.kid, "use": "sig", "alg": "EdDSA"})
        })
        .collect();
    Ok(json!({ "keys": keys }))
}

/// A freshly signed lease.
#[derive(Debug, Clone)]
pub struct Lease {
    pub id: String,
    pub token: String,
    pub renew_after: i64,
    pub expires_at: i64,
}

/// Whom a lease is for: a person's device (`user_id`, `email`), or a key device
/// (`key_id`, no person).
pub struct LeaseFor<'a> {
    pub user_id: Option<&'a str>,
    pub email: Option<&'a str>,
    pub key_id: Option<&'a str>,
    pub license_id: &'a str,
    pub sublicense_id: Option<&'a str>,
    pub device_id: &'a str,
    pub thumbprint: &'a str,
}

pub fn mint(
    tx: &Transaction<'_>,
    cfg: &LeaseConfig,
    issuer: &str,
    who: &LeaseFor<'_>,
    now: i64,
) -> Result<Lease, Problem> {
    let key = signing_key(tx, cfg, now)?;
    let terms = store::lease_terms(tx, who.license_id)?;
    let policy =
        super::policies::effective(tx, who.user_id, who.key_id, super::policies::bounds(cfg))?;
    sign_lease(&key, cfg, issuer, who, &terms, &policy, now)
}

/// When a lease issued `now` asks for renewal and when it stops working offline: the
/// configured windows (shortened by the device's policy), the offline grace no longer than the vendor entitlement allows,
/// the whole lease no longer than the license's offline limit (renewal asked for at a
/// third of it, so a Mac online now and then never lapses), and never past the
/// license's end (a device offline then stops with the license).
fn lease_window(
    cfg: &LeaseConfig,
    terms: &store::LeaseTerms,
    policy: &Effective,
    now: i64,
) -> (i64, i64) {
    let secs = |name: &str, configured: Duration| {
        let configured = configured.as_secs();
        policy
            .seconds(name)
            .map_or(configured, |p| p.min(configured)) as i64
    };
    let grace = secs("offline_grace_seconds", cfg.offline_grace);
    let grace = terms.max_offline_grace.map_or(grace, |cap| grace.min(cap));
    let mut renew_after = now + secs("lease_renewal_seconds", cfg.renew_after);
    let mut expires_at = renew_after + grace;
    if let Some(limit) = terms.max_offline.filter(|l| now + l < expires_at) {
        expires_at = now + limit;
        renew_after = renew_after.min(now + limit / 3);
    }
    match terms.ends_at {
        Some(end) if end < expires_at => (renew_after.min(end), end.max(now)),
        _ => (renew_after, expires_at),
    }
}

/// Signs a lease with `key` (no database access: renewals sign outside the writer).
fn sign_lease(
    key: &SigningKey,
    cfg: &LeaseConfig,
    issuer: &str,
    who: &LeaseFor<'_>,
    terms: &store::LeaseTerms,
    policy: &Effective,
    now: i64,
) -> Result<Lease, Problem> {
    let id = format!("lease-{}", crate::crypto::random_hex(12));
    let (renew_after, expires_at) = lease_window(cfg, terms, policy, now);
    let product = terms.product.as_str();
    // A key device has no person: the lease's subject is the device itself.
    let mut claims = json!({
        "iss": issuer,
        "sub": who.user_id.unwrap_or(who.device_id),
        "product": product,
        "license": who.license_id,
        "sublicense": who.sublicense_id,
        "device": who.device_id,
        "cnf": {"jkt": who.thumbprint},
        "jti": id,
        "iat": now,
        "nbf": now,
        "renew_after": renew_after,
        "exp": expires_at,
        // The effective policy's digest: a client whose policy differs fetches it.
        "policy": policy.hash(),
    });
    if let Some(email) = who.email {
        claims["email"] = json!(email);
    }
    if let Some(key) = who.key_id {
        claims["license_key"] = json!(key);
    }
    let token =
        sign_eddsa(&key.pkcs8, &key.kid, LEASE_TYP, &claims).map_err(|_| internal("signing"))?;
    Ok(Lease {
        id,
        token,
        renew_after,
        expires_at,
    })
}

/// A device's signed proof of possession, verified: the device it names, and its `iat`.
pub struct Proof {
    pub device: DeviceRow,
    pub iat: i64,
}

pub(super) fn unauthorized(detail: &str) -> Problem {
    log::warn!("device proof refused: {detail}");
    Problem::new(
        Reason::Unauthorized,
        "The request must carry a fresh proof signed with the device's key.",
    )
    .with_detail(detail)
}

/// Checks a proof (compact JWS by the device key, `kid` = the key's thumbprint, claims
/// `action`, `device`, `iat`): signature and freshness. The caller checks, in its write
/// transaction, that it is newer than the device's last one (no replays).
pub fn verify_proof(
    tx: &Transaction<'_>,
    token: &str,
    action: &str,
    now: i64,
) -> Result<Proof, Problem> {
    let jws = Jws::parse(token).map_err(|e| unauthorized(&e.to_string()))?;
    if jws.header.get("typ").and_then(Value::as_str) != Some(PROOF_TYP) {
        return Err(unauthorized("the proof's typ is not seatgate-proof+jwt"));
    }
    let kid = jws.header.get("kid").and_then(Value::as_str).unwrap_or("");
    let device = store::device_by_thumbprint(tx, kid)?
        .ok_or_else(|| unauthorized("no device has this key"))?;
    let jwk: Value = serde_json::from_str(&device.public_jwk)
        .map_err(|_| unauthorized("stored key unreadable"))?;
    let key = DeviceKey::from_jwk(&jwk).map_err(|e| unauthorized(&e.to_string()))?;
    jws.verify_device(&key)
        .map_err(|e| unauthorized(&e.to_string()))?;
    let claims = &jws.claims;
    if claims.get("action").and_then(Value::as_str) != Some(action) {
        return Err(unauthorized("the proof is for another action"));
    }
    if claims.get("device").and_then(Value::as_str) != Some(device.id.as_str()) {
        return Err(unauthorized("the proof names another device"));
    }
    if claims
        .get("exp")
        .is_some_and(|exp| exp.as_i64().is_none_or(|exp| exp < now))
    {
        return Err(unauthorized("the proof has expired (its exp)"));
    }
    if claims
        .get("nbf")
        .is_some_and(|nbf| nbf.as_i64().is_none_or(|nbf| nbf > now + PROOF_SKEW_SECS))
    {
        return Err(unauthorized("the proof is not valid yet (its nbf)"));
    }
    let iat = claims.get("iat").and_then(Value::as_i64).unwrap_or(0);
    if (iat - now).abs() > PROOF_SKEW_SECS {
        return Err(unauthorized(
            "the proof's iat is not within 5 minutes of the gateway's clock",
        ));
    }
    if iat <= store::last_proof_at(tx, &device.id)? {
        return Err(unauthorized(
            "the proof is not newer than the device's last one (replay)",
        ));
    }
    Ok(Proof { device, iat })
}

/// What a device's renewal depends on, read fresh: its user and seat (or its key and
/// pool) and revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Standing {
    user_id: Option<String>,
    email: Option<String>,
    key_id: Option<String>,
    license_id: String,
    sublicense_id: Option<String>,
    terms: store::LeaseTerms,
    /// The device's effective policy, when asked for: the read snapshot that signs the
    /// lease reads it; the writer's re-check does not (a policy changed in between
    /// reaches the Mac at its next renewal or policy fetch, as any later change does).
    policy: Option<Effective>,
}

impl Standing {
    fn without_policy(&self) -> Standing {
        Standing {
            policy: None,
            ..self.clone()
        }
    }
}

/// The effective policy of `device` if it may renew now (a policy fetch asks the same
/// as a renewal), or the reason it may not.
pub(super) fn renewal_policy(
    tx: &Transaction<'_>,
    device: &DeviceRow,
    cfg: &LeaseConfig,
    now: i64,
) -> Result<Result<Effective, Reason>, Problem> {
    Ok(match standing(tx, device, cfg, now, false)? {
        Ok(s) => Ok(super::policies::effective(
            tx,
            s.user_id.as_deref(),
            s.key_id.as_deref(),
            super::policies::bounds(cfg),
        )?),
        Err(reason) => Err(reason),
    })
}

/// A device request that proved itself: the device, its effective policy, and the key
/// that signs answers to it.
pub struct Proven {
    pub device: DeviceRow,
    pub policy: Effective,
    pub key: SigningKey,
}

/// Checks a device's proof for `action` (and records it against replay), then that the
/// device may renew now, as a renewal would: a device that may not renew gets nothing
/// signed (a policy, its images), only the reason.
pub fn proven_device(
    db: &Db,
    cfg: &LeaseConfig,
    proof: &str,
    action: &'static str,
    now: i64,
) -> Result<Proven, Problem> {
    let (device, iat) = db.read(|tx| {
        let p = verify_proof(tx, proof, action, now)?;
        Ok::<_, Problem>((p.device, p.iat))
    })?;
    let outcome = db.write(|tx| {
        if iat <= store::last_proof_at(tx, &device.id)? {
            return Err(unauthorized(
                "the proof is not newer than the device's last one (replay)",
            ));
        }
        store::set_last_proof(tx, &device.id, iat)?;
        let device =
            store::device(tx, &device.id)?.ok_or_else(|| unauthorized("the device is gone"))?;
        let policy = match renewal_policy(tx, &device, cfg, now)? {
            Ok(policy) => policy,
            Err(reason) => return Ok(Err((reason, device.id))),
        };
        let key = signing_key(tx, cfg, now)?;
        Ok(Ok(Proven {
            device,
            policy,
            key,
        }))
    })?;
    outcome.map_err(|(reason, device)| {
        crate::metrics::licensing().refused(action, reason.code());
        Problem::new(
            reason,
            "This Mac may not renew its license, so it gets nothing from the gateway; see the reason.",
        )
        .with_detail(format!("device {device}"))
    })
}

fn standing(
    tx: &Transaction<'_>,
    device: &DeviceRow,
    cfg: &LeaseConfig,
    now: i64,
    with_policy: bool,
) -> Result<Result<Standing, Reason>, Problem> {
    if device.revoked_at.is_some() {
        let reason = device
            .revoke_reason
            .as_deref()
            .and_then(RevokeReason::parse)
            .map_or(Reason::Revoked, RevokeReason::refusal);
        return Ok(Err(reason));
    }
    if let Some(key_id) = &device.key_id {
        return key_standing(tx, device, key_id, cfg, now, with_policy);
    }
    let Some(user_id) = device.user_id.as_deref() else {
        return Ok(Err(Reason::Revoked));
    };
    let Some(user) = crate::db::directory::user_by_id(tx, user_id)? else {
        return Ok(Err(Reason::Revoked));
    };
    if !user.active {
        return Ok(Err(Reason::UserInactive));
    }
    let seat = store::seats_of_user(tx, &user.id)?
        .into_iter()
        .find(|s| s.license_id == device.license_id && s.assigned());
    let Some(seat) = seat else {
        return Ok(Err(Reason::NotEntitled));
    };
    Ok(Ok(Standing {
        terms: store::lease_terms(tx, &seat.license_id)?,
        policy: with_policy
            .then(|| {
                super::policies::effective(tx, Some(&user.id), None, super::policies::bounds(cfg))
            })
            .transpose()?,
        user_id: Some(user.id),
        email: Some(user.user_name),
        key_id: None,
        license_id: seat.license_id,
        sublicense_id: seat.sublicense_id,
    }))
}

/// A key device renews while its key is live and its pool has not ended; its seat is
/// held by the device itself, so a full pool never refuses it.
fn key_standing(
    tx: &Transaction<'_>,
    device: &DeviceRow,
    key_id: &str,
    cfg: &LeaseConfig,
    now: i64,
    with_policy: bool,
) -> Result<Result<Standing, Reason>, Problem> {
    let Some(key) = crate::db::keys::by_id(tx, key_id)? else {
        return Ok(Err(Reason::Revoked));
    };
    if key.revoked_at.is_some() {
        return Ok(Err(Reason::Revoked));
    }
    let catalog = store::catalog(tx)?;
    if super::keys::pool_ended(
        &catalog,
        &device.license_id,
        device.sublicense_id.as_deref(),
        now,
    ) {
        return Ok(Err(Reason::LicenseExpired));
    }
    Ok(Ok(Standing {
        terms: store::lease_terms(tx, &device.license_id)?,
        policy: with_policy
            .then(|| {
                super::policies::effective(tx, None, Some(&key.id), super::policies::bounds(cfg))
            })
            .transpose()?,
        user_id: None,
        email: None,
        key_id: Some(key.id),
        license_id: device.license_id.clone(),
        sublicense_id: device.sublicense_id.clone(),
    }))
}

/// Renews the lease of the device that signed `proof`, storing the VM inventory it
/// reported (replacing the last one) with the renewal. The costly part (signature checks,
/// signing the new lease) runs on a read snapshot, in parallel with other renewals; the
/// single writer then only re-checks the standing and the replay guard and records it.
/// What a device reports with a renewal: its VMs (replacing its last report) and the app
/// version it runs.
#[derive(Debug, Default, Clone, Copy)]
pub struct Report<'a> {
    pub vms: Option<&'a [crate::domain::inventory::Vm]>,
    pub app_version: Option<&'a str>,
}

pub fn renew(
    db: &Db,
    cfg: &LeaseConfig,
    issuer: &str,
    proof: &str,
    report: Report<'_>,
    now: i64,
) -> Result<Lease, Problem> {
    let prepared = db.read(|tx| {
        let Proof { device, iat } = verify_proof(tx, proof, "renew", now)?;
        let standing = standing(tx, &device, cfg, now, true)?;
        let key = store::active_signing_key(tx)?
            .filter(|k| now - k.created_at < cfg.key_rotation.as_secs() as i64);
        let lease = match (&standing, &key) {
            (
                Ok(
                    s @ Standing {
                        policy: Some(policy),
                        ..
                    },
                ),
                Some(key),
            ) => Some(sign_lease(
                key,
                cfg,
                issuer,
                &lease_for(s, &device),
                &s.terms,
                policy,
                now,
            )?),
            _ => None,
        };
        Ok::<_, Problem>((device, iat, standing, lease))
    })?;
    let (device, iat, read_standing, signed) = prepared;
    let outcome = db.write(|tx| {
        if iat <= store::last_proof_at(tx, &device.id)? {
            return Err(unauthorized(
                "the proof is not newer than the device's last one (replay)",
            ));
        }
        let device =
            store::device(tx, &device.id)?.ok_or_else(|| unauthorized("the device is gone"))?;
        let now_standing = standing(tx, &device, cfg, now, false)?;
        let lease = match (&now_standing, signed) {
            (Err(reason), _) => {
                store::set_last_proof(tx, &device.id, iat)?;
                store::audit(
                    tx,
                    now,
                    &Actor::Device(device.id.clone()),
                    AuditAction::RenewalRefused,
                    device.user(),
                    store::AuditAbout {
                        subject: Some(&device.id),
                        reason: Some(reason.code()),
                        ..Default::default()
                    },
                )?;
                return Ok(Err((*reason, device.id.clone())));
            }
            // Unchanged since the snapshot: the lease signed outside the writer stands.
            (Ok(s), Some(lease))
                if read_standing
                    .as_ref()
                    .map(Standing::without_policy)
                    .as_ref()
                    == Ok(s) =>
            {
                lease
            }
            // Changed meanwhile, or the signing key is due for rotation: sign here.
            (Ok(s), _) => mint(tx, cfg, issuer, &lease_for(s, &device), now)?,
        };
        store::renew_device(tx, &device.id, &lease.id, lease.expires_at, iat, now)?;
        store_report(tx, &device.id, report, now)?;
        Ok(Ok(lease))
    })?;
    match &outcome {
        Ok(_) => crate::metrics::licensing().renewed(),
        Err((reason, _)) => crate::metrics::licensing().refused("renewal", reason.code()),
    }
    outcome.map_err(|(reason, device)| {
        let message = match reason {
            Reason::UserInactive => {
                "Your account is deactivated; this Mac's license cannot be renewed."
            }
            Reason::NotEntitled => {
                "Your account no longer has a seat for this product; the license cannot be renewed."
            }
            Reason::LicenseExpired => "The organization's license has expired.",
            _ => "This Mac's activation was revoked; activate it again if you still need it.",
        };
        Problem::new(reason, message).with_detail(format!("device {device}"))
    })
}

/// Keeps what a renewing device reported: its VMs (replacing the last report), its app
/// version.
fn store_report(
    tx: &Transaction<'_>,
    device: &str,
    report: Report<'_>,
    now: i64,
) -> rusqlite::Result<()> {
    if let Some(vms) = report.vms {
        crate::db::inventory::replace(tx, device, vms, now)?;
    }
    if let Some(version) = report.app_version {
        crate::db::distribution::set_app_version(tx, device, version)?;
    }
    Ok(())
}

fn lease_for<'a>(s: &'a Standing, device: &'a DeviceRow) -> LeaseFor<'a> {
    LeaseFor {
        user_id: s.user_id.as_deref(),
        email: s.email.as_deref(),
        key_id: s.key_id.as_deref(),
        license_id: &s.license_id,
        sublicense_id: s.sublicense_id.as_deref(),
        device_id: &device.id,
        thumbprint: &device.thumbprint,
    }
}

/// Deactivates the device that signed `proof` (self-service).
pub fn deactivate_by_proof(
    db: &Db,
    lease_or_device: &str,
    proof: &str,
    now: i64,
) -> Result<String, Problem> {
    db.write(|tx| {
        let Proof { device, iat } = verify_proof(tx, proof, "deactivate", now)?;
        if iat <= store::last_proof_at(tx, &device.id)? {
            return Err(unauthorized(
                "the proof is not newer than the device's last one (replay)",
            ));
        }
        if device.lease_id != lease_or_device && device.id != lease_or_device {
            return Err(unauthorized("the proof's device does not hold this lease"));
        }
        store::set_last_proof(tx, &device.id, iat)?;
        release_device(
            tx,
            &device,
            &Actor::Device(device.id.clone()),
            RevokeReason::Deactivated,
            now,
        )?;
        Ok(device.id)
    })
}

/// Revokes one device and audits it. A person's device leaves their seat in place; a key
/// device gives its per-device seat back to the pool (to whoever waits for one).
pub fn release_device(
    tx: &Transaction<'_>,
    device: &DeviceRow,
    actor: &Actor,
    reason: RevokeReason,
    now: i64,
) -> Result<(), Problem> {
    if store::revoke_device(tx, &device.id, reason, now)? {
        if device.key_id.is_some() {
            super::reconcile::after_device_seats_change(tx, &device.license_id, actor, now)?;
        }
        store::audit(
            tx,
            now,
            actor,
            AuditAction::DeviceReleased,
            device.user(),
            store::AuditAbout {
                subject: Some(&device.id),
                reason: Some(reason.as_str()),
                ..Default::default()
            },
        )?;
    }
    Ok(())
}

/// Releases devices that have not renewed for `[lease] release_silent_after`.
pub fn release_silent(db: &Db, cfg: &LeaseConfig, now: i64) -> Result<usize, Problem> {
    db.write(|tx| {
        let silent = store::silent_devices(tx, now - cfg.release_silent_after.as_secs() as i64)?;
        for d in &silent {
            release_device(tx, d, &Actor::System, RevokeReason::Silent, now)?;
        }
        Ok(silent.len())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn leases_keep_to_the_entitlement_and_the_license_end() {
        let cfg = LeaseConfig::default(); // renew after 7 days, 14 more offline
        let now = 1_780_000_000;
        let hand = store::LeaseTerms::default();
        let no_policy = Effective::compute(&[], super::super::policies::bounds(&cfg));
        assert_eq!(
            lease_window(&cfg, &hand, &no_policy, now),
            (now + 7 * DAY, now + 21 * DAY)
        );
        // The vendor allows 3 days offline.
        let capped = store::LeaseTerms {
            max_offline_grace: Some(3 * DAY),
            ..Default::default()
        };
        assert_eq!(
            lease_window(&cfg, &capped, &no_policy, now),
            (now + 7 * DAY, now + 10 * DAY)
        );
        // The license ends in 10 days, or in 2: the lease stops with it.
        let ending = |days: i64| store::LeaseTerms {
            ends_at: Some(now + days * DAY),
            ..Default::default()
        };
        assert_eq!(
            lease_window(&cfg, &ending(10), &no_policy, now),
            (now + 7 * DAY, now + 10 * DAY)
        );
        assert_eq!(
            lease_window(&cfg, &ending(2), &no_policy, now),
            (now + 2 * DAY, now + 2 * DAY)
        );
        // The admin bounds a Mac's offline life to 3 days: it renews after a day.
        let limited = |days: i64| store::LeaseTerms {
            max_offline: Some(days * DAY),
            ..Default::default()
        };
        assert_eq!(
            lease_window(&cfg, &limited(3), &no_policy, now),
            (now + DAY, now + 3 * DAY)
        );
        // A limit longer than the configured windows changes nothing.
        assert_eq!(
            lease_window(&cfg, &limited(60), &no_policy, now),
            (now + 7 * DAY, now + 21 * DAY)
        );
        // With the license ending sooner still, the end wins.
        let both = store::LeaseTerms {
            max_offline: Some(3 * DAY),
            ends_at: Some(now + DAY / 2),
            ..Default::default()
        };
        assert_eq!(
            lease_window(&cfg, &both, &no_policy, now),
            (now + DAY / 2, now + DAY / 2)
        );
    }
}
