//! License keys (`license_keys`): per-device seats handed out without a sign-in.

use rusqlite::{OptionalExtension, Transaction, params};

/// A license key as stored, with how many live devices hold its seats.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyRow {
    pub id: String,
    pub license_id: String,
    pub sublicense_id: Option<String>,
    pub name: String,
    /// The key's last group, to recognize it by (the key itself is never stored).
    pub hint: String,
    pub device_limit: i64,
    /// Live devices activated with it.
    pub devices: i64,
    pub created_at: i64,
    pub rotated_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The policy its devices get (none: the default policy).
    pub policy_id: Option<String>,
}

const COLS: &str = "k.id, k.license_id, k.sublicense_id, k.name, k.hint, k.device_limit,
    (SELECT count(*) FROM devices d WHERE d.key_id = k.id AND d.revoked_at IS NULL),
    k.created_at, k.rotated_at, k.revoked_at, k.policy_id";

fn key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyRow> {
    Ok(KeyRow {
        id: r.get(0)?,
        license_id: r.get(1)?,
        sublicense_id: r.get(2)?,
        name: r.get(3)?,
        hint: r.get(4)?,
        device_limit: r.get(5)?,
        devices: r.get(6)?,
        created_at: r.get(7)?,
        rotated_at: r.get(8)?,
        revoked_at: r.get(9)?,
        policy_id: r.get(10)?,
    })
}

pub struct NewKey<'a> {
    pub id: &'a str,
    pub license_id: &'a str,
    pub sublicense_id: Option<&'a str>,
    pub name: &'a str,
    pub secret_hash: &'a str,
    pub hint: &'a str,
    pub device_limit: i64,
}

pub fn insert(tx: &Transaction<'_>, k: &NewKey<'_>, now: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO license_keys (id, license_id, sublicense_id, name, secret_hash, hint, device_limit, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        k.id,
        k.license_id,
        k.sublicense_id,
        k.name,
        k.secret_hash,
        k.hint,
        k.device_limit,
        now
    ])?;
    Ok(())
}

pub fn by_id(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<Option<KeyRow>> {
    tx.prepare_cached(&format!(
        "SELECT {COLS} FROM license_keys k WHERE k.id = ?1"
    ))?
    .query_row([id], key_row)
    .optional()
}

/// The key whose secret hashes to `secret_hash`.
pub fn by_secret(tx: &Transaction<'_>, secret_hash: &str) -> rusqlite::Result<Option<KeyRow>> {
    tx.prepare_cached(&format!(
        "SELECT {COLS} FROM license_keys k WHERE k.secret_hash = ?1"
    ))?
    .query_row([secret_hash], key_row)
    .optional()
}

/// Every key (of one license when given), live ones first, then by license and name.
pub fn list(tx: &Transaction<'_>, license_id: Option<&str>) -> rusqlite::Result<Vec<KeyRow>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {COLS} FROM license_keys k WHERE ?1 IS NULL OR k.license_id = ?1
         ORDER BY k.revoked_at IS NOT NULL, k.license_id, k.name, k.id"
    ))?;
    let rows = stmt.query_map([license_id], key_row)?;
    rows.collect()
}

/// Keys not revoked that hand out seats of `sublicense_id`.
pub fn live_in_sublicense(tx: &Transaction<'_>, sublicense_id: &str) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "SELECT count(*) FROM license_keys WHERE sublicense_id = ?1 AND revoked_at IS NULL",
    )?
    .query_row([sublicense_id], |r| r.get(0))
}

pub fn set_secret(
    tx: &Transaction<'_>,
    id: &str,
    secret_hash: &str,
    hint: &str,
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE license_keys SET secret_hash = ?2, hint = ?3, rotated_at = ?4 WHERE id = ?1",
    )?
    .execute(params![id, secret_hash, hint, now])?;
    Ok(())
}

pub fn set_terms(
    tx: &Transaction<'_>,
    id: &str,
    name: &str,
    device_limit: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE license_keys SET name = ?2, device_limit = ?3 WHERE id = ?1")?
        .execute(params![id, name, device_limit])?;
    Ok(())
}

pub fn set_revoked(tx: &Transaction<'_>, id: &str, now: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE license_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
    )?
    .execute(params![id, now])?;
    Ok(())
}
