//! The instance key and the imported vendor entitlements.

use entitlement::Entitlement;
use rusqlite::{OptionalExtension, Row, Transaction, params};

/// This gateway's instance key as stored.
pub struct InstanceKeyRow {
    pub pkcs8: Vec<u8>,
    pub public_key: Vec<u8>,
    pub thumbprint: String,
    pub created_at: i64,
}

pub fn instance_key(tx: &Transaction<'_>) -> rusqlite::Result<Option<InstanceKeyRow>> {
    tx.query_row(
        "SELECT pkcs8, public_key, thumbprint, created_at FROM instance_key WHERE id = 1",
        [],
        |r| {
            Ok(InstanceKeyRow {
                pkcs8: r.get(0)?,
                public_key: r.get(1)?,
                thumbprint: r.get(2)?,
                created_at: r.get(3)?,
            })
        },
    )
    .optional()
}

/// Stores the instance key unless one exists (the first one stays: entitlements name it).
pub fn insert_instance_key(tx: &Transaction<'_>, key: &InstanceKeyRow) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT OR IGNORE INTO instance_key (id, pkcs8, public_key, thumbprint, created_at)
         VALUES (1, ?1, ?2, ?3, ?4)",
        params![key.pkcs8, key.public_key, key.thumbprint, key.created_at],
    )?;
    Ok(())
}

/// An imported entitlement: its claims, the license it sets, and the token as imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntitlementRow {
    pub claims: Entitlement,
    pub license_id: String,
    pub kid: String,
    pub token: String,
    pub imported_at: i64,
}

const COLUMNS: &str =
    "entitlement_id, license_id, serial, customer_id, customer_name, product, edition,
    seats, device_seats, starts_at, ends_at, trial, max_offline_grace_days, per_device_keys,
    gateways, instance, issued_at, kid, token, imported_at";

fn row(r: &Row<'_>) -> rusqlite::Result<EntitlementRow> {
    Ok(EntitlementRow {
        claims: Entitlement {
            format: entitlement::entitlement::FORMAT,
            entitlement_id: r.get(0)?,
            serial: r.get(2)?,
            customer_id: r.get(3)?,
            customer_name: r.get(4)?,
            product: r.get(5)?,
            edition: r.get(6)?,
            seats: r.get(7)?,
            device_seats: r.get(8)?,
            starts_at: r.get(9)?,
            ends_at: r.get(10)?,
            trial: r.get(11)?,
            max_offline_grace_days: r.get(12)?,
            per_device_keys: r.get(13)?,
            gateways: r.get(14)?,
            instance: r.get(15)?,
            issued_at: r.get(16)?,
        },
        license_id: r.get(1)?,
        kid: r.get(17)?,
        token: r.get(18)?,
        imported_at: r.get(19)?,
    })
}

pub fn entitlements(tx: &Transaction<'_>) -> rusqlite::Result<Vec<EntitlementRow>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM entitlements ORDER BY product, entitlement_id"
    ))?;
    let rows = stmt.query_map([], row)?;
    rows.collect()
}

pub fn entitlement(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<Option<EntitlementRow>> {
    tx.query_row(
        &format!("SELECT {COLUMNS} FROM entitlements WHERE entitlement_id = ?1"),
        [id],
        row,
    )
    .optional()
}

pub fn of_license(
    tx: &Transaction<'_>,
    license_id: &str,
) -> rusqlite::Result<Option<EntitlementRow>> {
    tx.query_row(
        &format!("SELECT {COLUMNS} FROM entitlements WHERE license_id = ?1"),
        [license_id],
        row,
    )
    .optional()
}

/// Stores an entitlement, replacing the row of the same license (a newer serial, or a
/// paid entitlement taking over a trial's license).
pub fn store(tx: &Transaction<'_>, e: &EntitlementRow) -> rusqlite::Result<()> {
    tx.execute(
        "DELETE FROM entitlements WHERE license_id = ?1 OR entitlement_id = ?2",
        params![e.license_id, e.claims.entitlement_id],
    )?;
    let c = &e.claims;
    tx.execute(
        &format!(
            "INSERT INTO entitlements ({COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)"
        ),
        params![
            c.entitlement_id,
            e.license_id,
            c.serial,
            c.customer_id,
            c.customer_name,
            c.product,
            c.edition,
            c.seats,
            c.device_seats,
            c.starts_at,
            c.ends_at,
            c.trial,
            c.max_offline_grace_days,
            c.per_device_keys,
            c.gateways,
            c.instance,
            c.issued_at,
            e.kid,
            e.token,
            e.imported_at,
        ],
    )?;
    Ok(())
}

/// Sets a license's product, key, seats and end date from its entitlement.
/// The seats a license gets from its entitlement: the per-user seats and the per-device
/// seats, one pool that people and license-key devices share.
pub fn license_seats(e: &Entitlement) -> i64 {
    i64::from(e.seats) + i64::from(e.device_seats)
}

pub fn apply_to_license(
    tx: &Transaction<'_>,
    license_id: &str,
    e: &Entitlement,
    now: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE licenses SET product = ?2, license_key = ?3, seats = ?4, expires_at = ?5, updated_at = ?6
         WHERE id = ?1",
        params![license_id, e.product, e.entitlement_id, license_seats(e), e.ends_at, now],
    )?;
    Ok(())
}

/// Records that `id` (at `serial`) was taken over by `by`.
pub fn supersede(
    tx: &Transaction<'_>,
    id: &str,
    serial: u32,
    by: &str,
    now: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT OR REPLACE INTO superseded_entitlements (entitlement_id, serial, superseded_by, superseded_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![id, serial, by, now],
    )?;
    Ok(())
}

/// The entitlement that took `id` over, if one did.
pub fn superseded_by(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<Option<String>> {
    tx.query_row(
        "SELECT superseded_by FROM superseded_entitlements WHERE entitlement_id = ?1",
        [id],
        |r| r.get(0),
    )
    .optional()
}
