//! Licensing storage: licenses, sublicenses, seats, devices, the audit log. Plain SQL over
//! the caller's transaction; the rules live in `crate::licensing`.

use rusqlite::{OptionalExtension, Transaction, params};

use crate::audit::{Actor, AuditAction};
use crate::db::directory::EventKind;
use crate::domain::engine::{Catalog, Grant, License, RevokeReason, SeatState, Sublicense, Usage};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseRow {
    pub id: String,
    pub product: String,
    pub license_key: Option<String>,
    pub seats: i64,
    pub model: String,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    /// The longest a lease works without reaching the gateway; `None`: the `[lease]`
    /// windows.
    pub max_offline_secs: Option<i64>,
}

pub fn insert_license(tx: &Transaction<'_>, l: &LicenseRow) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT INTO licenses (id, product, license_key, seats, model, expires_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)")?.execute(params![l.id, l.product, l.license_key, l.seats, l.model, l.expires_at, l.created_at])?;
    Ok(())
}

pub fn licenses(tx: &Transaction<'_>) -> rusqlite::Result<Vec<LicenseRow>> {
    let mut stmt = tx.prepare_cached(
        "SELECT id, product, license_key, seats, model, expires_at, created_at, max_offline_secs
         FROM licenses ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(LicenseRow {
            id: r.get(0)?,
            product: r.get(1)?,
            license_key: r.get(2)?,
            seats: r.get(3)?,
            model: r.get(4)?,
            expires_at: r.get(5)?,
            created_at: r.get(6)?,
            max_offline_secs: r.get(7)?,
        })
    })?;
    rows.collect()
}

/// Sets how long a lease of the license works offline at most; false if there is no such
/// license.
pub fn set_max_offline(
    tx: &Transaction<'_>,
    id: &str,
    max_offline_secs: Option<i64>,
    now: i64,
) -> rusqlite::Result<bool> {
    Ok(tx
        .prepare_cached("UPDATE licenses SET max_offline_secs = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, max_offline_secs, now])?
        == 1)
}

/// Changes a license's seats and expiry; false if there is no such license.
pub fn update_license(
    tx: &Transaction<'_>,
    id: &str,
    seats: i64,
    expires_at: Option<i64>,
    now: i64,
) -> rusqlite::Result<bool> {
    Ok(tx
        .prepare_cached(
            "UPDATE licenses SET seats = ?2, expires_at = ?3, updated_at = ?4 WHERE id = ?1",
        )?
        .execute(params![id, seats, expires_at, now])?
        == 1)
}

pub fn insert_sublicense(tx: &Transaction<'_>, s: &Sublicense, now: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT INTO sublicenses (id, license_id, name, seats, allocation, expires_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)")?.execute(params![
            s.id,
            s.license_id,
            s.name,
            s.seats,
            if s.reserved { "reserved" } else { "dynamic" },
            s.expires_at,
            now
        ])?;
    Ok(())
}

/// Changes a sublicense's seats and expiry.
pub fn update_sublicense(
    tx: &Transaction<'_>,
    id: &str,
    seats: i64,
    expires_at: Option<i64>,
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE sublicenses SET seats = ?2, expires_at = ?3, updated_at = ?4 WHERE id = ?1",
    )?
    .execute(params![id, seats, expires_at, now])?;
    Ok(())
}

/// Seats (assigned or pending) drawn from a sublicense.
pub fn seats_in_sublicense(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<i64> {
    tx.prepare_cached("SELECT count(*) FROM seats WHERE sublicense_id = ?1")?
        .query_row([id], |r| r.get(0))
}

pub fn delete_sublicense(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM sublicenses WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

pub fn sublicenses(tx: &Transaction<'_>) -> rusqlite::Result<Vec<Sublicense>> {
    let mut stmt = tx.prepare_cached(
        "SELECT id, license_id, name, seats, allocation, expires_at FROM sublicenses ORDER BY license_id, name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Sublicense {
            id: r.get(0)?,
            license_id: r.get(1)?,
            name: r.get(2)?,
            seats: r.get(3)?,
            reserved: r.get::<_, String>(4)? == "reserved",
            expires_at: r.get(5)?,
        })
    })?;
    rows.collect()
}

/// Every license and sublicense, for the engine.
pub fn catalog(tx: &Transaction<'_>) -> rusqlite::Result<Catalog> {
    // A license whose end the gateway has already seen pass (its expiry check ran after
    // it) stays ended even if the clock is set back: it ends "at the beginning of time".
    let seen: i64 = crate::db::settings::get(tx, crate::db::settings::EXPIRY_CHECKED_AT)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok(Catalog {
        licenses: licenses(tx)?
            .into_iter()
            .map(|l| License {
                id: l.id,
                seats: l.seats,
                expires_at: l.expires_at.map(|t| if t < seen { i64::MIN } else { t }),
            })
            .collect(),
        sublicenses: sublicenses(tx)?,
    })
}

/// The seat mappings a user's directory groups match (by displayName or externalId).
pub fn grants_of_user(tx: &Transaction<'_>, user_id: &str) -> rusqlite::Result<Vec<Grant>> {
    let mut stmt = tx.prepare_cached(
        "SELECT DISTINCT m.role, m.license_id, m.sublicense_id FROM group_members gm
         JOIN groups g ON g.id = gm.group_id
         JOIN group_mappings m ON m.group_key IN (g.display_name_key, lower(g.external_id))
              AND m.connection_id IS g.connection_id
         WHERE gm.user_id = ?1 AND m.role IN ('primary', 'sublicense')",
    )?;
    let rows = stmt.query_map([user_id], |r| {
        let role: String = r.get(0)?;
        let license_id: Option<String> = r.get(1)?;
        let sublicense_id: Option<String> = r.get(2)?;
        Ok(match (role.as_str(), sublicense_id) {
            ("sublicense", Some(sublicense_id)) => Grant::Sublicense { sublicense_id },
            _ => Grant::Primary {
                license_id: license_id.unwrap_or_default(),
            },
        })
    })?;
    rows.collect()
}

/// Everyone whose seat state may need deciding: users in a seat-mapped group and users
/// holding a seat row.
pub fn users_to_reconcile(tx: &Transaction<'_>) -> rusqlite::Result<Vec<String>> {
    let mut stmt = tx.prepare_cached(
        "SELECT gm.user_id FROM group_members gm
         JOIN groups g ON g.id = gm.group_id
         JOIN group_mappings m ON m.group_key IN (g.display_name_key, lower(g.external_id))
              AND m.connection_id IS g.connection_id
         WHERE m.role IN ('primary', 'sublicense')
         UNION SELECT user_id FROM seats",
    )?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}

/// The current members of a group (for events that change what the group matches).
pub fn member_ids(tx: &Transaction<'_>, group_id: &str) -> rusqlite::Result<Vec<String>> {
    crate::db::directory::member_ids(tx, group_id)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatRow {
    pub user_id: String,
    pub license_id: String,
    pub sublicense_id: Option<String>,
    pub state: SeatState,
    pub reason: Option<String>,
    pub since: i64,
    /// For a pending seat: when it started waiting, in microseconds (the queue's order).
    pub queued_us: i64,
}

impl SeatRow {
    pub fn assigned(&self) -> bool {
        self.state == SeatState::Assigned
    }
}

fn seat_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SeatRow> {
    Ok(SeatRow {
        user_id: r.get(0)?,
        license_id: r.get(1)?,
        sublicense_id: r.get(2)?,
        // Only `assigned` holds a seat; anything else waits.
        state: SeatState::parse(&r.get::<_, String>(3)?).unwrap_or(SeatState::Pending),
        reason: r.get(4)?,
        since: r.get(5)?,
        queued_us: r.get(6)?,
    })
}

pub fn seats_of_user(tx: &Transaction<'_>, user_id: &str) -> rusqlite::Result<Vec<SeatRow>> {
    let mut stmt = tx.prepare_cached(
        "SELECT user_id, license_id, sublicense_id, state, reason, since, queued_us FROM seats WHERE user_id = ?1 ORDER BY license_id",
    )?;
    let rows = stmt.query_map([user_id], seat_row)?;
    rows.collect()
}

/// Pending seats of a license, oldest first: the order in which freed seats are handed out.
pub fn pending_seats(tx: &Transaction<'_>, license_id: &str) -> rusqlite::Result<Vec<SeatRow>> {
    let mut stmt = tx.prepare_cached(
        "SELECT user_id, license_id, sublicense_id, state, reason, since, queued_us FROM seats
         WHERE license_id = ?1 AND state = 'pending' ORDER BY since, queued_us, user_id",
    )?;
    let rows = stmt.query_map([license_id], seat_row)?;
    rows.collect()
}

pub fn put_seat(tx: &Transaction<'_>, s: &SeatRow) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO seats (user_id, license_id, sublicense_id, state, reason, since, queued_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (user_id, license_id) DO UPDATE SET sublicense_id = excluded.sublicense_id,
           state = excluded.state, reason = excluded.reason, since = excluded.since, queued_us = excluded.queued_us",
    )?
    .execute(params![
        s.user_id,
        s.license_id,
        s.sublicense_id,
        s.state.as_str(),
        s.reason,
        s.since,
        s.queued_us
    ])?;
    Ok(())
}

pub fn delete_seat(tx: &Transaction<'_>, user_id: &str, license_id: &str) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM seats WHERE user_id = ?1 AND license_id = ?2")?
        .execute(params![user_id, license_id])?;
    Ok(())
}

/// Assigned seats per (license, pool), from the trigger-kept counters.
pub fn usage(tx: &Transaction<'_>) -> rusqlite::Result<Usage> {
    let mut stmt = tx.prepare_cached(
        "SELECT license_id, nullif(pool, ''), assigned FROM pool_usage WHERE assigned > 0",
    )?;
    let rows = stmt.query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))?;
    rows.collect()
}

/// Users waiting, per (license, pool).
pub fn pending_per_pool(tx: &Transaction<'_>) -> rusqlite::Result<Usage> {
    let mut stmt = tx.prepare_cached(
        "SELECT license_id, sublicense_id, count(*) FROM seats WHERE state = 'pending'
         GROUP BY license_id, sublicense_id",
    )?;
    let rows = stmt.query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))?;
    rows.collect()
}

/// Users waiting in one pool.
pub fn pending_in_pool(
    tx: &Transaction<'_>,
    license_id: &str,
    pool: Option<&str>,
) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "SELECT count(*) FROM seats WHERE license_id = ?1 AND sublicense_id IS ?2 AND state = 'pending'",
    )?
    .query_row(params![license_id, pool], |r| r.get(0))
}

/// Revokes a user's live devices for a license; returns their ids.
pub fn revoke_devices(
    tx: &Transaction<'_>,
    user_id: &str,
    license_id: Option<&str>,
    reason: RevokeReason,
    now: i64,
) -> rusqlite::Result<Vec<String>> {
    let mut stmt = tx.prepare_cached(
        "UPDATE devices SET revoked_at = ?3, revoke_reason = ?4
         WHERE user_id = ?1 AND (?2 IS NULL OR license_id = ?2) AND revoked_at IS NULL RETURNING id",
    )?;
    let rows = stmt.query_map(params![user_id, license_id, now, reason.as_str()], |r| {
        r.get(0)
    })?;
    rows.collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub user_id: Option<String>,
    pub subject: Option<String>,
    pub reason: Option<String>,
    pub detail: Option<String>,
}

/// What an audit entry says beyond who did what to which user.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditAbout<'a> {
    /// What was acted on: a license, pool, device, connection, token or admin.
    pub subject: Option<&'a str>,
    /// The reason code, for refusals and revocations.
    pub reason: Option<&'a str>,
    /// Free-form detail, often JSON.
    pub detail: Option<&'a str>,
}

pub fn audit(
    tx: &Transaction<'_>,
    at: i64,
    actor: &Actor,
    action: AuditAction,
    user_id: Option<&str>,
    about: AuditAbout<'_>,
) -> rusqlite::Result<()> {
    let AuditAbout {
        subject,
        reason,
        detail,
    } = about;
    tx.prepare_cached(
        "INSERT INTO audit_log (at, actor, action, user_id, subject, reason, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        at,
        actor.to_string(),
        action.as_str(),
        user_id,
        subject,
        reason,
        detail
    ])?;
    Ok(())
}

/// The newest audit entries first, optionally for one user and/or one action.
pub fn audit_entries(
    tx: &Transaction<'_>,
    user_id: Option<&str>,
    action: Option<&str>,
    limit: u32,
) -> rusqlite::Result<Vec<AuditEntry>> {
    let mut stmt = tx.prepare_cached(
        "SELECT id, at, actor, action, user_id, subject, reason, detail FROM audit_log
         WHERE (?1 IS NULL OR user_id = ?1) AND (?2 IS NULL OR action = ?2) ORDER BY id DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![user_id, action, limit], |r| {
        Ok(AuditEntry {
            id: r.get(0)?,
            at: r.get(1)?,
            actor: r.get(2)?,
            action: r.get(3)?,
            user_id: r.get(4)?,
            subject: r.get(5)?,
            reason: r.get(6)?,
            detail: r.get(7)?,
        })
    })?;
    rows.collect()
}

/// The newest directory event id (reconciliation looks at the events after a mark).
pub fn last_event_id(tx: &Transaction<'_>) -> rusqlite::Result<i64> {
    tx.prepare_cached("SELECT coalesce(max(id), 0) FROM directory_events")?
        .query_row([], |r| r.get(0))
}

/// A directory event: (kind, user_id, group_id, detail); the kind is `None` for a kind this
/// version does not know.
pub type Event = (
    Option<EventKind>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Directory events after `mark`.
pub fn events_after(tx: &Transaction<'_>, mark: i64) -> rusqlite::Result<Vec<Event>> {
    let mut stmt = tx.prepare_cached(
        "SELECT kind, user_id, group_id, detail FROM directory_events WHERE id > ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([mark], |r| {
        let kind: String = r.get(0)?;
        Ok((EventKind::parse(&kind), r.get(1)?, r.get(2)?, r.get(3)?))
    })?;
    rows.collect()
}

pub fn user_active(tx: &Transaction<'_>, user_id: &str) -> rusqlite::Result<Option<bool>> {
    tx.prepare_cached("SELECT active FROM users WHERE id = ?1")?
        .query_row([user_id], |r| r.get(0))
        .optional()
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeviceRow {
    pub id: String,
    /// The user of an SSO activation; `None` for a key device.
    pub user_id: Option<String>,
    pub license_id: String,
    pub thumbprint: String,
    pub name: String,
    pub os: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub lease_id: String,
    pub lease_expires_at: i64,
    pub revoked_at: Option<i64>,
    pub revoke_reason: Option<String>,
    /// The license key a per-device seat came from (`None` for a user's device).
    pub key_id: Option<String>,
    /// A key device's pool: the key's sublicense, `None` for the primary pool.
    pub sublicense_id: Option<String>,
    #[serde(skip)]
    pub public_jwk: String,
}

impl DeviceRow {
    /// Whoever the device's audit entries are about: its user, or none for a key device.
    pub fn user(&self) -> Option<&str> {
        self.user_id.as_deref()
    }
}

const DEVICE_COLS: &str = "id, user_id, license_id, thumbprint, name, os, created_at, last_seen_at, lease_id, lease_expires_at, revoked_at, revoke_reason, public_jwk, key_id, sublicense_id";

fn device_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeviceRow> {
    Ok(DeviceRow {
        id: r.get(0)?,
        user_id: r.get(1)?,
        license_id: r.get(2)?,
        thumbprint: r.get(3)?,
        name: r.get(4)?,
        os: r.get(5)?,
        created_at: r.get(6)?,
        last_seen_at: r.get(7)?,
        lease_id: r.get(8)?,
        lease_expires_at: r.get(9)?,
        revoked_at: r.get(10)?,
        revoke_reason: r.get(11)?,
        public_jwk: r.get(12)?,
        key_id: r.get(13)?,
        sublicense_id: r.get(14)?,
    })
}

pub fn devices_of_user(tx: &Transaction<'_>, user_id: &str) -> rusqlite::Result<Vec<DeviceRow>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {DEVICE_COLS} FROM devices WHERE user_id = ?1 ORDER BY created_at"
    ))?;
    let rows = stmt.query_map([user_id], device_row)?;
    rows.collect()
}

pub fn device(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<Option<DeviceRow>> {
    tx.prepare_cached(&format!("SELECT {DEVICE_COLS} FROM devices WHERE id = ?1"))?
        .query_row([id], device_row)
        .optional()
}

pub fn device_by_thumbprint(
    tx: &Transaction<'_>,
    thumbprint: &str,
) -> rusqlite::Result<Option<DeviceRow>> {
    tx.prepare_cached(&format!(
        "SELECT {DEVICE_COLS} FROM devices WHERE thumbprint = ?1"
    ))?
    .query_row([thumbprint], device_row)
    .optional()
}

pub fn live_device_count(tx: &Transaction<'_>, user_id: &str) -> rusqlite::Result<i64> {
    tx.prepare_cached("SELECT count(*) FROM devices WHERE user_id = ?1 AND revoked_at IS NULL")?
        .query_row([user_id], |r| r.get(0))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKey {
    pub kid: String,
    pub pkcs8: Vec<u8>,
    pub public_key: Vec<u8>,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    pub publish_until: Option<i64>,
}

fn signing_key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SigningKey> {
    Ok(SigningKey {
        kid: r.get(0)?,
        pkcs8: r.get(1)?,
        public_key: r.get(2)?,
        created_at: r.get(3)?,
        retired_at: r.get(4)?,
        publish_until: r.get(5)?,
    })
}

/// The key that signs now: the newest unretired one.
pub fn active_signing_key(tx: &Transaction<'_>) -> rusqlite::Result<Option<SigningKey>> {
    tx.prepare_cached(
        "SELECT kid, pkcs8, public_key, created_at, retired_at, publish_until FROM signing_keys
         WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1",
    )?
    .query_row([], signing_key_row)
    .optional()
}

/// Keys to publish: unretired ones and retired ones whose leases may still be valid.
pub fn published_signing_keys(tx: &Transaction<'_>, now: i64) -> rusqlite::Result<Vec<SigningKey>> {
    let mut stmt = tx.prepare_cached(
        "SELECT kid, pkcs8, public_key, created_at, retired_at, publish_until FROM signing_keys
         WHERE retired_at IS NULL OR publish_until > ?1 ORDER BY created_at DESC",
    )?;
    let rows = stmt.query_map([now], signing_key_row)?;
    rows.collect()
}

pub fn insert_signing_key(tx: &Transaction<'_>, k: &SigningKey) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO signing_keys (kid, pkcs8, public_key, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![k.kid, k.pkcs8, k.public_key, k.created_at])?;
    Ok(())
}

/// Retires every unretired key but `keep`; they stay published until `publish_until`.
pub fn retire_signing_keys(
    tx: &Transaction<'_>,
    keep: &str,
    now: i64,
    publish_until: i64,
) -> rusqlite::Result<usize> {
    tx.prepare_cached("UPDATE signing_keys SET retired_at = ?2, publish_until = ?3 WHERE retired_at IS NULL AND kid <> ?1")?.execute(params![keep, now, publish_until])
}

pub struct NewDevice<'a> {
    pub id: &'a str,
    pub holder: Holder<'a>,
    pub license_id: &'a str,
    pub thumbprint: &'a str,
    pub public_jwk: &'a str,
    pub name: &'a str,
    pub os: &'a str,
    pub lease_id: &'a str,
    pub lease_expires_at: i64,
}

/// Whom a device's seat belongs to.
#[derive(Debug, Clone, Copy)]
pub enum Holder<'a> {
    /// A person (an SSO activation): the seat is theirs.
    User(&'a str),
    /// A license key: a per-device seat in the key's pool (`sublicense`, else primary).
    Key {
        key_id: &'a str,
        sublicense: Option<&'a str>,
    },
}

/// Stores a device; an earlier (revoked) device with the same key is replaced.
pub fn insert_device(tx: &Transaction<'_>, d: &NewDevice<'_>, now: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM devices WHERE thumbprint = ?1 AND revoked_at IS NOT NULL")?
        .execute([d.thumbprint])?;
    let (user_id, key_id, sublicense_id) = match d.holder {
        Holder::User(u) => (Some(u), None, None),
        Holder::Key { key_id, sublicense } => (None, Some(key_id), sublicense),
    };
    tx.prepare_cached("INSERT INTO devices (id, user_id, license_id, thumbprint, public_jwk, name, os, created_at, last_seen_at, lease_id, lease_expires_at, key_id, sublicense_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10, ?11, ?12)")?.execute(params![d.id, user_id, d.license_id, d.thumbprint, d.public_jwk, d.name, d.os, now, d.lease_id, d.lease_expires_at, key_id, sublicense_id])?;
    Ok(())
}

/// Hands a key device to the person who activated it with SSO: it leaves the key (its
/// per-device seat is freed by the triggers) and takes the new lease under `license_id`.
pub fn move_device_to_user(
    tx: &Transaction<'_>,
    id: &str,
    user_id: &str,
    license_id: &str,
    lease_id: &str,
    lease_expires_at: i64,
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE devices SET user_id = ?2, key_id = NULL, sublicense_id = NULL, license_id = ?3,
           lease_id = ?4, lease_expires_at = ?5, last_seen_at = ?6 WHERE id = ?1",
    )?
    .execute(params![
        id,
        user_id,
        license_id,
        lease_id,
        lease_expires_at,
        now
    ])?;
    Ok(())
}

/// The live devices a license key holds seats for, oldest first.
pub fn devices_of_key(tx: &Transaction<'_>, key_id: &str) -> rusqlite::Result<Vec<DeviceRow>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {DEVICE_COLS} FROM devices WHERE key_id = ?1 AND revoked_at IS NULL ORDER BY created_at, id"
    ))?;
    let rows = stmt.query_map([key_id], device_row)?;
    rows.collect()
}

/// Records a renewal: the new lease, the proof time, and that the device was seen.
pub fn renew_device(
    tx: &Transaction<'_>,
    id: &str,
    lease_id: &str,
    lease_expires_at: i64,
    proof_at: i64,
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE devices SET lease_id = ?2, lease_expires_at = ?3, last_proof_at = ?4, last_seen_at = ?5 WHERE id = ?1")?.execute(params![id, lease_id, lease_expires_at, proof_at, now])?;
    Ok(())
}

/// The time of the device's last accepted proof (proofs must be newer: no replays).
pub fn last_proof_at(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<i64> {
    tx.prepare_cached("SELECT last_proof_at FROM devices WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
}

pub fn set_last_proof(tx: &Transaction<'_>, id: &str, proof_at: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE devices SET last_proof_at = ?2 WHERE id = ?1")?
        .execute(params![id, proof_at])?;
    Ok(())
}

pub fn revoke_device(
    tx: &Transaction<'_>,
    id: &str,
    reason: RevokeReason,
    now: i64,
) -> rusqlite::Result<bool> {
    Ok(tx.prepare_cached("UPDATE devices SET revoked_at = ?2, revoke_reason = ?3 WHERE id = ?1 AND revoked_at IS NULL")?.execute(params![id, now, reason.as_str()])? == 1)
}

/// Live devices not seen since `before`.
pub fn silent_devices(tx: &Transaction<'_>, before: i64) -> rusqlite::Result<Vec<DeviceRow>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {DEVICE_COLS} FROM devices WHERE revoked_at IS NULL AND last_seen_at < ?1"
    ))?;
    let rows = stmt.query_map([before], device_row)?;
    rows.collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    pub device_code_hash: String,
    pub browser_key: String,
    pub email: String,
    pub public_jwk: String,
    pub thumbprint: String,
    pub device_name: String,
    pub device_os: String,
    pub redirect_uri: Option<String>,
    pub code_challenge: Option<String>,
    pub saml_request_id: Option<String>,
    pub state: String,
    pub reason: Option<String>,
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    pub user_code: String,
    pub lease: Option<String>,
    pub auth_code_hash: Option<String>,
    pub interval_secs: i64,
    pub last_polled_at: Option<i64>,
    pub created_at: i64,
    pub expires_at: i64,
}

const ACTIVATION_COLS: &str = "device_code_hash, browser_key, email, public_jwk, thumbprint, device_name, device_os, redirect_uri, code_challenge, saml_request_id, state, reason, user_id, device_id, user_code, lease, auth_code_hash, interval_secs, last_polled_at, created_at, expires_at";

fn activation_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Activation> {
    Ok(Activation {
        device_code_hash: r.get(0)?,
        browser_key: r.get(1)?,
        email: r.get(2)?,
        public_jwk: r.get(3)?,
        thumbprint: r.get(4)?,
        device_name: r.get(5)?,
        device_os: r.get(6)?,
        redirect_uri: r.get(7)?,
        code_challenge: r.get(8)?,
        saml_request_id: r.get(9)?,
        state: r.get(10)?,
        reason: r.get(11)?,
        user_id: r.get(12)?,
        device_id: r.get(13)?,
        user_code: r.get(14)?,
        lease: r.get(15)?,
        auth_code_hash: r.get(16)?,
        interval_secs: r.get(17)?,
        last_polled_at: r.get(18)?,
        created_at: r.get(19)?,
        expires_at: r.get(20)?,
    })
}

/// Stores a new activation, drops ones expired for a day, and keeps at most
/// `max_outstanding` pending ones (the oldest go first, to the second: the table has no
/// finer order).
pub fn insert_activation(
    tx: &Transaction<'_>,
    a: &Activation,
    max_outstanding: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM activations WHERE expires_at < ?1")?
        .execute([a.created_at - 86_400])?;
    tx.execute(
        &format!("INSERT INTO activations ({ACTIVATION_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)"),
        params![
            a.device_code_hash, a.browser_key, a.email, a.public_jwk, a.thumbprint, a.device_name, a.device_os,
            a.redirect_uri, a.code_challenge, a.saml_request_id, a.state, a.reason, a.user_id, a.device_id,
            a.user_code, a.lease, a.auth_code_hash, a.interval_secs, a.last_polled_at, a.created_at, a.expires_at
        ],
    )?;
    tx.prepare_cached(
        "DELETE FROM activations WHERE device_code_hash IN (
           SELECT device_code_hash FROM activations WHERE state = 'pending' ORDER BY created_at
           LIMIT max(0, (SELECT count(*) FROM activations WHERE state = 'pending') - ?1))",
    )?
    .execute([max_outstanding])?;
    Ok(())
}

pub fn activation_by(
    tx: &Transaction<'_>,
    column: ActivationKey,
    value: &str,
) -> rusqlite::Result<Option<Activation>> {
    let column = match column {
        ActivationKey::DeviceCodeHash => "device_code_hash",
        ActivationKey::BrowserKey => "browser_key",
        ActivationKey::SamlRequest => "saml_request_id",
        ActivationKey::AuthCodeHash => "auth_code_hash",
    };
    tx.prepare_cached(&format!(
        "SELECT {ACTIVATION_COLS} FROM activations WHERE {column} = ?1"
    ))?
    .query_row([value], activation_row)
    .optional()
}

#[derive(Debug, Clone, Copy)]
pub enum ActivationKey {
    DeviceCodeHash,
    BrowserKey,
    SamlRequest,
    AuthCodeHash,
}

/// Writes an activation's mutable fields back.
pub fn update_activation(tx: &Transaction<'_>, a: &Activation) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE activations SET saml_request_id = ?2, state = ?3, reason = ?4, user_id = ?5, device_id = ?6,
           lease = ?7, auth_code_hash = ?8, interval_secs = ?9, last_polled_at = ?10 WHERE device_code_hash = ?1")?.execute(params![
            a.device_code_hash, a.saml_request_id, a.state, a.reason, a.user_id, a.device_id, a.lease,
            a.auth_code_hash, a.interval_secs, a.last_polled_at
        ])?;
    Ok(())
}

/// What a lease of a license may promise: its product, when the license ends, and the
/// longest offline grace its vendor entitlement allows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseTerms {
    pub product: String,
    pub ends_at: Option<i64>,
    /// Seconds; `None` for a license entered by hand.
    pub max_offline_grace: Option<i64>,
    /// The admin's bound on a lease's whole offline life (seconds), if any.
    pub max_offline: Option<i64>,
}

pub fn lease_terms(tx: &Transaction<'_>, license_id: &str) -> rusqlite::Result<LeaseTerms> {
    Ok(tx
        .prepare_cached(
            "SELECT l.product, l.expires_at, e.max_offline_grace_days * 86400, l.max_offline_secs
             FROM licenses l LEFT JOIN entitlements e ON e.license_id = l.id WHERE l.id = ?1",
        )?
        .query_row([license_id], |r| {
            Ok(LeaseTerms {
                product: r.get(0)?,
                ends_at: r.get(1)?,
                max_offline_grace: r.get(2)?,
                max_offline: r.get(3)?,
            })
        })
        .optional()?
        .unwrap_or_default())
}

/// How many licenses and sublicenses expire in `(after, until]`.
pub fn expiries_between(tx: &Transaction<'_>, after: i64, until: i64) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "SELECT (SELECT count(*) FROM licenses WHERE expires_at > ?1 AND expires_at <= ?2)
              + (SELECT count(*) FROM sublicenses WHERE expires_at > ?1 AND expires_at <= ?2)",
    )?
    .query_row(params![after, until], |r| r.get(0))
}
