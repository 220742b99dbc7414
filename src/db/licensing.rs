//! Licensing storage: licenses, sublicenses, seats, devices, the audit log. Plain SQL over
//! the caller's transaction; the rules live in `crate::licensing`.

use rusqlite::{OptionalExtension, Transaction, params};

use crate::licensing::engine::{Catalog, Grant, License, Sublicense, Usage};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseRow {
    pub id: String,
    pub product: String,
    pub license_key: Option<String>,
    pub seats: i64,
    pub model: String,
    pub expires_at: Option<i64>,
    pub created_at: i64,
}

pub fn insert_license(tx: &Transaction<'_>, l: &LicenseRow) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO licenses (id, product, license_key, seats, model, expires_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        params![l.id, l.product, l.license_key, l.seats, l.model, l.expires_at, l.created_at],
    )?;
    Ok(())
}

pub fn licenses(tx: &Transaction<'_>) -> rusqlite::Result<Vec<LicenseRow>> {
    let mut stmt = tx.prepare_cached(
        "SELECT id, product, license_key, seats, model, expires_at, created_at FROM licenses ORDER BY created_at, id",
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
        })
    })?;
    rows.collect()
}

/// Changes a license's seats and expiry; false if there is no such license.
pub fn update_license(
    tx: &Transaction<'_>,
    id: &str,
    seats: i64,
    expires_at: Option<i64>,
    now: i64,
) -> rusqlite::Result<bool> {
    Ok(tx.execute(
        "UPDATE licenses SET seats = ?2, expires_at = ?3, updated_at = ?4 WHERE id = ?1",
        params![id, seats, expires_at, now],
    )? == 1)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SublicenseRow {
    pub id: String,
    pub license_id: String,
    pub name: String,
    pub seats: i64,
    pub reserved: bool,
    pub expires_at: Option<i64>,
}

pub fn insert_sublicense(
    tx: &Transaction<'_>,
    s: &SublicenseRow,
    now: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO sublicenses (id, license_id, name, seats, allocation, expires_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        params![
            s.id,
            s.license_id,
            s.name,
            s.seats,
            if s.reserved { "reserved" } else { "dynamic" },
            s.expires_at,
            now
        ],
    )?;
    Ok(())
}

pub fn sublicenses(tx: &Transaction<'_>) -> rusqlite::Result<Vec<SublicenseRow>> {
    let mut stmt = tx.prepare_cached(
        "SELECT id, license_id, name, seats, allocation, expires_at FROM sublicenses ORDER BY license_id, name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(SublicenseRow {
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
    Ok(Catalog {
        licenses: licenses(tx)?
            .into_iter()
            .map(|l| License {
                id: l.id,
                seats: l.seats,
                expires_at: l.expires_at,
            })
            .collect(),
        sublicenses: sublicenses(tx)?
            .into_iter()
            .map(|s| Sublicense {
                id: s.id,
                license_id: s.license_id,
                name: s.name,
                seats: s.seats,
                reserved: s.reserved,
                expires_at: s.expires_at,
            })
            .collect(),
    })
}

/// The seat mappings a user's directory groups match (by displayName or externalId).
pub fn grants_of_user(tx: &Transaction<'_>, user_id: &str) -> rusqlite::Result<Vec<Grant>> {
    let mut stmt = tx.prepare_cached(
        "SELECT DISTINCT m.role, m.license_id, m.sublicense_id FROM group_members gm
         JOIN groups g ON g.id = gm.group_id
         JOIN group_mappings m ON m.group_key IN (g.display_name_key, lower(g.external_id))
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
    pub assigned: bool,
    pub reason: Option<String>,
    pub since: i64,
}

fn seat_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SeatRow> {
    Ok(SeatRow {
        user_id: r.get(0)?,
        license_id: r.get(1)?,
        sublicense_id: r.get(2)?,
        assigned: r.get::<_, String>(3)? == "assigned",
        reason: r.get(4)?,
        since: r.get(5)?,
    })
}

pub fn seats_of_user(tx: &Transaction<'_>, user_id: &str) -> rusqlite::Result<Vec<SeatRow>> {
    let mut stmt = tx.prepare_cached(
        "SELECT user_id, license_id, sublicense_id, state, reason, since FROM seats WHERE user_id = ?1 ORDER BY license_id",
    )?;
    let rows = stmt.query_map([user_id], seat_row)?;
    rows.collect()
}

/// Pending seats of a license, oldest first: the order in which freed seats are handed out.
pub fn pending_seats(tx: &Transaction<'_>, license_id: &str) -> rusqlite::Result<Vec<SeatRow>> {
    let mut stmt = tx.prepare_cached(
        "SELECT user_id, license_id, sublicense_id, state, reason, since FROM seats
         WHERE license_id = ?1 AND state = 'pending' ORDER BY since, user_id",
    )?;
    let rows = stmt.query_map([license_id], seat_row)?;
    rows.collect()
}

pub fn put_seat(tx: &Transaction<'_>, s: &SeatRow) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO seats (user_id, license_id, sublicense_id, state, reason, since) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (user_id, license_id) DO UPDATE SET sublicense_id = excluded.sublicense_id,
           state = excluded.state, reason = excluded.reason, since = excluded.since",
    )?
    .execute(params![
        s.user_id,
        s.license_id,
        s.sublicense_id,
        if s.assigned { "assigned" } else { "pending" },
        s.reason,
        s.since
    ])?;
    Ok(())
}

pub fn delete_seat(tx: &Transaction<'_>, user_id: &str, license_id: &str) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM seats WHERE user_id = ?1 AND license_id = ?2")?
        .execute(params![user_id, license_id])?;
    Ok(())
}

/// Assigned seats per (license, pool).
pub fn usage(tx: &Transaction<'_>) -> rusqlite::Result<Usage> {
    let mut stmt = tx.prepare_cached(
        "SELECT license_id, sublicense_id, count(*) FROM seats WHERE state = 'assigned' GROUP BY license_id, sublicense_id",
    )?;
    let rows = stmt.query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))?;
    rows.collect()
}

/// (license, pool, assigned, pending).
pub type PoolCount = (String, Option<String>, i64, i64);

/// Seat counts per (license, pool).
pub fn pool_counts(tx: &Transaction<'_>) -> rusqlite::Result<Vec<PoolCount>> {
    let mut stmt = tx.prepare_cached(
        "SELECT license_id, sublicense_id, sum(state = 'assigned'), sum(state = 'pending') FROM seats
         GROUP BY license_id, sublicense_id ORDER BY license_id, sublicense_id",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    rows.collect()
}

/// Revokes a user's live devices for a license; returns their ids.
pub fn revoke_devices(
    tx: &Transaction<'_>,
    user_id: &str,
    license_id: Option<&str>,
    reason: &str,
    now: i64,
) -> rusqlite::Result<Vec<String>> {
    let mut stmt = tx.prepare_cached(
        "UPDATE devices SET revoked_at = ?3, revoke_reason = ?4
         WHERE user_id = ?1 AND (?2 IS NULL OR license_id = ?2) AND revoked_at IS NULL RETURNING id",
    )?;
    let rows = stmt.query_map(params![user_id, license_id, now, reason], |r| r.get(0))?;
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

#[allow(clippy::too_many_arguments)]
pub fn audit(
    tx: &Transaction<'_>,
    at: i64,
    actor: &str,
    action: &str,
    user_id: Option<&str>,
    subject: Option<&str>,
    reason: Option<&str>,
    detail: Option<&str>,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO audit_log (at, actor, action, user_id, subject, reason, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![at, actor, action, user_id, subject, reason, detail])?;
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

/// A directory event: (kind, user_id, group_id, detail).
pub type Event = (String, Option<String>, Option<String>, Option<String>);

/// Directory events after `mark`.
pub fn events_after(tx: &Transaction<'_>, mark: i64) -> rusqlite::Result<Vec<Event>> {
    let mut stmt = tx.prepare_cached(
        "SELECT kind, user_id, group_id, detail FROM directory_events WHERE id > ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([mark], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
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
    pub user_id: String,
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
}

const DEVICE_COLS: &str = "id, user_id, license_id, thumbprint, name, os, created_at, last_seen_at, lease_id, lease_expires_at, revoked_at, revoke_reason";

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
