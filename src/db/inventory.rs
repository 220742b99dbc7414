//! The virtual machine inventory: each device's last report, and the fleet-wide listing
//! the portal, the CSV export and the admin API filter.

use rusqlite::types::Value as Sql;
use rusqlite::{Transaction, params, params_from_iter};

use crate::domain::inventory::Vm;

/// Replaces a device's inventory with `vms` (its latest report).
pub fn replace(
    tx: &Transaction<'_>,
    device_id: &str,
    vms: &[Vm],
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM device_vms WHERE device_id = ?1")?
        .execute([device_id])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO device_vms (device_id, uuid, name, guest_os, image_name, image_version, encrypted,
                                 expires_at, last_started_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for v in vms {
        insert.execute(params![
            device_id,
            v.uuid,
            v.name,
            v.guest_os,
            v.image_name,
            v.image_version,
            v.encrypted as i64,
            v.expires_at,
            v.last_started_at
        ])?;
    }
    tx.prepare_cached("UPDATE devices SET vms_reported_at = ?2 WHERE id = ?1")?
        .execute(params![device_id, now])?;
    Ok(())
}

/// Removes the inventory of devices released or revoked before `before`.
pub fn age_out(tx: &Transaction<'_>, before: i64) -> rusqlite::Result<usize> {
    tx.prepare_cached(
        "DELETE FROM device_vms WHERE device_id IN
             (SELECT id FROM devices WHERE revoked_at IS NOT NULL AND revoked_at < ?1)",
    )?
    .execute([before])
}

/// The distinct (image, version) pairs in the fleet, for "outdated".
pub fn image_versions(tx: &Transaction<'_>) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = tx.prepare_cached(
        "SELECT DISTINCT v.image_name, v.image_version FROM device_vms v
         JOIN devices d ON d.id = v.device_id
         WHERE d.revoked_at IS NULL AND v.image_name IS NOT NULL AND v.image_version IS NOT NULL",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// The guest operating systems in the fleet, for the filter's choices.
pub fn guest_systems(tx: &Transaction<'_>) -> rusqlite::Result<Vec<String>> {
    let mut stmt = tx.prepare_cached(
        "SELECT DISTINCT v.guest_os FROM device_vms v JOIN devices d ON d.id = v.device_id
         WHERE d.revoked_at IS NULL ORDER BY v.guest_os LIMIT 200",
    )?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}

/// A fleet-wide listing's filter (all optional).
#[derive(Debug, Default, Clone)]
pub struct VmFilter {
    /// Part of the user's email or name, or of the device's name.
    pub user: Option<String>,
    /// A group the user is in (displayName, case-insensitive).
    pub group: Option<String>,
    pub guest_os: Option<String>,
    pub unencrypted: bool,
    /// Expired, or expiring before this time.
    pub expiring_before: Option<i64>,
    /// Only VMs of these (image, version) pairs (the outdated ones).
    pub image_versions: Option<Vec<(String, String)>>,
}

/// A VM with its device and person.
#[derive(Debug, Clone)]
pub struct VmRow {
    pub vm: Vm,
    pub device_id: String,
    pub device_name: String,
    pub user: Option<String>,
    pub reported_at: Option<i64>,
}

fn like(s: &str) -> String {
    format!(
        "%{}%",
        s.to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

/// One page of VMs of live devices matching `f`, and how many match in all.
pub fn list(
    tx: &Transaction<'_>,
    f: &VmFilter,
    offset: i64,
    limit: i64,
) -> rusqlite::Result<(i64, Vec<VmRow>)> {
    let mut clauses = vec!["d.revoked_at IS NULL".to_string()];
    let mut args: Vec<Sql> = Vec::new();
    if let Some(u) = f.user.as_deref().filter(|u| !u.trim().is_empty()) {
        args.push(Sql::Text(like(u.trim())));
        let n = args.len();
        clauses.push(format!(
            "(lower(coalesce(u.user_name, '')) LIKE ?{n} ESCAPE '\\' OR lower(coalesce(u.full_name, '')) LIKE ?{n} ESCAPE '\\'
              OR lower(d.name) LIKE ?{n} ESCAPE '\\')"
        ));
    }
    if let Some(g) = f.group.as_deref().filter(|g| !g.trim().is_empty()) {
        args.push(Sql::Text(crate::db::admin::fold(g.trim())));
        let n = args.len();
        clauses.push(format!(
            "d.user_id IN (SELECT gm.user_id FROM group_members gm JOIN groups g ON g.id = gm.group_id
                           WHERE g.display_name_key = ?{n})"
        ));
    }
    if let Some(os) = f.guest_os.as_deref().filter(|o| !o.trim().is_empty()) {
        args.push(Sql::Text(os.trim().to_string()));
        clauses.push(format!("v.guest_os = ?{}", args.len()));
    }
    if f.unencrypted {
        clauses.push("v.encrypted = 0".into());
    }
    if let Some(t) = f.expiring_before {
        args.push(Sql::Integer(t));
        clauses.push(format!(
            "v.expires_at IS NOT NULL AND v.expires_at < ?{}",
            args.len()
        ));
    }
    if let Some(pairs) = &f.image_versions {
        // One parameter, however many pairs: a JSON array of [name, version].
        let list: Vec<[&str; 2]> = pairs
            .iter()
            .map(|(n, v)| [n.as_str(), v.as_str()])
            .collect();
        args.push(Sql::Text(
            serde_json::to_string(&list).unwrap_or_else(|_| "[]".into()),
        ));
        clauses.push(format!(
            "(v.image_name, v.image_version) IN
                 (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?{}))",
            args.len()
        ));
    }
    let from = format!(
        "FROM device_vms v JOIN devices d ON d.id = v.device_id LEFT JOIN users u ON u.id = d.user_id
         WHERE {}",
        clauses.join(" AND ")
    );
    let total: i64 = tx.query_row(
        &format!("SELECT count(*) {from}"),
        params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    args.push(Sql::Integer(limit));
    args.push(Sql::Integer(offset));
    let n = args.len();
    let mut stmt = tx.prepare(&format!(
        "SELECT v.uuid, v.name, v.guest_os, v.image_name, v.image_version, v.encrypted, v.expires_at,
                v.last_started_at, d.id, d.name, coalesce(u.email_key, u.user_name), d.vms_reported_at
         {from} ORDER BY lower(v.name), v.uuid LIMIT ?{} OFFSET ?{n}",
        n - 1
    ))?;
    let rows = stmt.query_map(params_from_iter(args.iter()), |r| {
        Ok(VmRow {
            vm: Vm {
                uuid: r.get(0)?,
                name: r.get(1)?,
                guest_os: r.get(2)?,
                image_name: r.get(3)?,
                image_version: r.get(4)?,
                encrypted: r.get::<_, i64>(5)? == 1,
                expires_at: r.get(6)?,
                last_started_at: r.get(7)?,
            },
            device_id: r.get(8)?,
            device_name: r.get(9)?,
            user: r.get(10)?,
            reported_at: r.get(11)?,
        })
    })?;
    Ok((total, rows.collect::<rusqlite::Result<_>>()?))
}
