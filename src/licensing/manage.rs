//! Admin changes to licenses, sublicenses and group mappings: validated, audited, and
//! followed by a reconciliation in the same transaction (shared by the CLI and the portal).

use crate::audit::{Actor, AuditAction};
use crate::clock::now_unix;
use crate::db::Db;
use crate::db::admin::{self as access, Target};
use crate::db::licensing::{self as store, LicenseRow};
use crate::domain::engine::Sublicense;

use super::reconcile::{self, Summary};

#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error("{0}")]
    Invalid(String),
    #[error("there is no license {0:?} (give its id or product name)")]
    UnknownLicense(String),
    #[error("there is no sublicense {0:?} (give its id or name)")]
    UnknownSublicense(String),
    #[error("there is no license key {0:?} (give its id or name)")]
    UnknownKey(String),
    #[error("there is no group mapping {0:?}")]
    UnknownMapping(String),
    #[error("there is no policy {0:?} (give its id or name)")]
    UnknownPolicy(String),
    #[error("there is no policy assignment {0:?} (`seatgate policy list` shows their ids)")]
    UnknownAssignment(String),
    #[error("{0:?} names several; give the id instead")]
    Ambiguous(String),
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
}

pub struct NewLicense<'a> {
    pub product: &'a str,
    pub seats: i64,
    pub expires_at: Option<i64>,
    pub key: Option<&'a str>,
}

/// The most seats a license or sublicense may have (the portal's forms take as many).
pub const MAX_SEATS: i64 = 10_000_000;

/// A name an admin types, checked as everywhere (`caps::admin_name`).
fn checked_name<'a>(what: &str, value: &'a str, max: usize) -> Result<&'a str, ManageError> {
    crate::caps::admin_name(what, value, max).map_err(ManageError::Invalid)
}

/// Seats within 0..=MAX_SEATS.
fn checked_seats(seats: i64) -> Result<i64, ManageError> {
    if (0..=MAX_SEATS).contains(&seats) {
        Ok(seats)
    } else {
        Err(ManageError::Invalid(format!(
            "seats must be a whole number from 0 to {MAX_SEATS}"
        )))
    }
}

/// A new license or sublicense must not be born expired (a typo in the year). Changing an
/// existing one's expiry to a past date ends it on purpose, and the answer says how many
/// seats that took.
fn checked_expiry(expires_at: Option<i64>, now: i64) -> Result<Option<i64>, ManageError> {
    match expires_at {
        Some(t) if t < now => Err(ManageError::Invalid(format!(
            "the expiry {} has already passed; choose a later date",
            &crate::clock::rfc3339(t)[..10]
        ))),
        other => Ok(other),
    }
}

/// Registers a license; returns its id.
pub fn add_license(db: &Db, actor: &Actor, l: &NewLicense<'_>) -> Result<String, ManageError> {
    let product = checked_name("product name", l.product, 200)?;
    checked_seats(l.seats)?;
    if let Some(key) = l.key {
        checked_name("license key", key, 200)?;
    }
    let now = now_unix();
    checked_expiry(l.expires_at, now)?;
    let id = format!("lic-{}", crate::crypto::random_hex(4));
    db.write(|tx| {
        // The vendor's entitlement is all there is of a product it licenses.
        let entitled = crate::db::entitlements::entitlements(tx)?
            .into_iter()
            .find(|e| e.claims.product.eq_ignore_ascii_case(product));
        if let Some(e) = entitled {
            return Err(ManageError::Invalid(format!(
                "{product} is licensed by the vendor's entitlement {}; import its renewals instead of adding seats by hand",
                e.claims.entitlement_id
            )));
        }
        store::insert_license(
            tx,
            &LicenseRow {
                id: id.clone(),
                product: product.to_string(),
                license_key: l.key.map(str::to_string),
                seats: l.seats,
                model: "per-user".into(),
                expires_at: l.expires_at,
                created_at: now,
                max_offline_secs: None,
            },
        )?;
        let detail =
            serde_json::json!({"product": product, "seats": l.seats, "expires_at": l.expires_at});
        store::audit(
            tx,
            now,
            actor,
            AuditAction::LicenseAdded,
            None,
            store::AuditAbout {
                subject: Some(&id),
                detail: Some(&detail.to_string()),
                ..Default::default()
            },
        )?;
        Ok::<_, ManageError>(())
    })?;
    Ok(id)
}

/// Changes a license's seats and/or expiry, then re-decides every seat.
pub fn set_license(
    db: &Db,
    actor: &Actor,
    license: &str,
    seats: Option<i64>,
    expires_at: Option<Option<i64>>,
) -> Result<Summary, ManageError> {
    let now = now_unix();
    db.write(|tx| {
        let current = find_license(tx, license)?;
        if let Some(e) = crate::db::entitlements::of_license(tx, &current.id)? {
            return Err(ManageError::Invalid(format!(
                "the seats and end date of {} come from the vendor's entitlement {}; import a newer one to change them",
                current.id, e.claims.entitlement_id
            )));
        }
        let seats = checked_seats(seats.unwrap_or(current.seats))?;
        let reserved = reserved_seats(tx, &current.id, None)?;
        if seats < reserved {
            return Err(ManageError::Invalid(format!(
                "reserved sublicenses of {} hold {reserved} seats, more than {seats}; shrink them first",
                current.id
            )));
        }
        let expires_at = expires_at.unwrap_or(current.expires_at);
        store::update_license(tx, &current.id, seats, expires_at, now)?;
        let detail = serde_json::json!({"seats": seats, "expires_at": expires_at});
        store::audit(
            tx,
            now,
            actor,
            AuditAction::LicenseChanged,
            None,
            store::AuditAbout {
                subject: Some(&current.id),
                detail: Some(&detail.to_string()),
                ..Default::default()
            },
        )?;
        Ok(reconcile::reconcile(tx, None, actor, now)?)
    })
}

/// The bounds of a license's offline limit: an hour (a Mac must be able to renew at all)
/// to a year.
pub const MAX_OFFLINE_RANGE: std::ops::RangeInclusive<i64> = 3_600..=365 * 86_400;

/// Bounds how long a lease of `license` works without reaching the gateway (`None`: the
/// `[lease]` windows), so a revoked or deprovisioned Mac stops sooner. Leases issued from
/// now on keep to it; one already on a Mac keeps its own end. Allowed on licenses from a
/// vendor entitlement too: it is the organization's policy, not a quantity it bought.
pub fn set_max_offline(
    db: &Db,
    actor: &Actor,
    license: &str,
    max_offline_secs: Option<i64>,
) -> Result<String, ManageError> {
    if let Some(secs) = max_offline_secs
        && !MAX_OFFLINE_RANGE.contains(&secs)
    {
        return Err(ManageError::Invalid(
            "the offline limit must be between 1 hour and 365 days".into(),
        ));
    }
    let now = now_unix();
    db.write(|tx| {
        let current = find_license(tx, license)?;
        store::set_max_offline(tx, &current.id, max_offline_secs, now)?;
        let detail = serde_json::json!({"max_offline_secs": max_offline_secs});
        store::audit(
            tx,
            now,
            actor,
            AuditAction::LicenseChanged,
            None,
            store::AuditAbout {
                subject: Some(&current.id),
                detail: Some(&detail.to_string()),
                ..Default::default()
            },
        )?;
        Ok(current.id)
    })
}

pub struct NewSublicense<'a> {
    pub license: &'a str,
    pub name: &'a str,
    pub seats: i64,
    pub reserved: bool,
    pub expires_at: Option<i64>,
}

pub fn add_sublicense(
    db: &Db,
    actor: &Actor,
    s: &NewSublicense<'_>,
) -> Result<String, ManageError> {
    let name = checked_name("sublicense name", s.name, 100)?;
    checked_seats(s.seats)?;
    checked_expiry(s.expires_at, now_unix())?;
    let id = format!("sub-{}", crate::crypto::random_hex(4));
    let now = now_unix();
    db.write(|tx| {
        let license = find_license(tx, s.license)?;
        if store::sublicenses(tx)?.iter().any(|x| x.license_id == license.id && x.name.eq_ignore_ascii_case(name)) {
            return Err(ManageError::Invalid(format!("license {} already has a sublicense {name:?}", license.id)));
        }
        if s.reserved {
            let reserved = reserved_seats(tx, &license.id, None)?;
            if reserved + s.seats > license.seats {
                return Err(ManageError::Invalid(format!(
                    "reserved sublicenses of {} would hold {} seats, more than the license's {}",
                    license.id,
                    reserved + s.seats,
                    license.seats
                )));
            }
        }
        store::insert_sublicense(tx, &Sublicense {
            id: id.clone(),
            license_id: license.id.clone(),
            name: name.to_string(),
            seats: s.seats,
            reserved: s.reserved,
            expires_at: s.expires_at,
        }, now)?;
        let detail = serde_json::json!({"license": license.id, "name": name, "seats": s.seats, "reserved": s.reserved, "expires_at": s.expires_at});
        store::audit(tx, now, actor, AuditAction::SublicenseAdded, None, store::AuditAbout { subject: Some(&id), detail: Some(&detail.to_string()), ..Default::default() })?;
        reconcile::reconcile(tx, None, actor, now)?;
        Ok(id.clone())
    })
}

/// Seats held by the reserved sublicenses of `license_id`, leaving out `except`.
pub(crate) fn reserved_seats(
    tx: &rusqlite::Transaction<'_>,
    license_id: &str,
    except: Option<&str>,
) -> rusqlite::Result<i64> {
    Ok(store::sublicenses(tx)?
        .iter()
        .filter(|x| x.license_id == license_id && x.reserved && Some(x.id.as_str()) != except)
        .map(|x| x.seats)
        .sum())
}

/// Changes a sublicense's seats and/or expiry, then re-decides every seat. Fewer seats
/// than are in use takes no seat away: the pool grants nothing until it is under its limit.
pub fn set_sublicense(
    db: &Db,
    actor: &Actor,
    sublicense: &str,
    seats: Option<i64>,
    expires_at: Option<Option<i64>>,
) -> Result<Summary, ManageError> {
    let now = now_unix();
    db.write(|tx| {
        let current = find_sublicense(tx, sublicense)?;
        let seats = checked_seats(seats.unwrap_or(current.seats))?;
        if current.reserved {
            let license = find_license(tx, &current.license_id)?;
            let reserved = reserved_seats(tx, &license.id, Some(&current.id))? + seats;
            if reserved > license.seats {
                return Err(ManageError::Invalid(format!(
                    "reserved sublicenses of {} would hold {reserved} seats, more than the license's {}",
                    license.id, license.seats
                )));
            }
        }
        let expires_at = expires_at.unwrap_or(current.expires_at);
        store::update_sublicense(tx, &current.id, seats, expires_at, now)?;
        let detail = serde_json::json!({"name": current.name, "seats": seats, "expires_at": expires_at});
        store::audit(tx, now, actor, AuditAction::SublicenseChanged, None, store::AuditAbout { subject: Some(&current.id), detail: Some(&detail.to_string()), ..Default::default() })?;
        Ok(reconcile::reconcile(tx, None, actor, now)?)
    })
}

/// Removes a sublicense nobody draws from any more: its group mappings must be gone and
/// its users moved or released (which removing the mappings does, room permitting).
pub fn remove_sublicense(db: &Db, actor: &Actor, sublicense: &str) -> Result<(), ManageError> {
    let now = now_unix();
    db.write(|tx| {
        let current = find_sublicense(tx, sublicense)?;
        let mapped = access::mappings(tx)?
            .iter()
            .filter(|m| m.sublicense_id.as_deref() == Some(current.id.as_str()))
            .count();
        if mapped > 0 {
            return Err(ManageError::Invalid(format!(
                "{mapped} group mapping(s) still grant seats of sublicense {:?}; remove them first (their users move to the pools their other groups give)",
                current.name
            )));
        }
        let keys = crate::db::keys::live_in_sublicense(tx, &current.id)?;
        if keys > 0 {
            return Err(ManageError::Invalid(format!(
                "{keys} license key(s) still hand out seats of sublicense {:?}; revoke them first",
                current.name
            )));
        }
        let seats = store::seats_in_sublicense(tx, &current.id)?;
        if seats > 0 {
            return Err(ManageError::Invalid(format!(
                "{seats} user(s) still hold or wait for seats of sublicense {:?} (the pool they would move to is full); free seats there first",
                current.name
            )));
        }
        store::delete_sublicense(tx, &current.id)?;
        let detail = serde_json::json!({"license": current.license_id, "name": current.name});
        store::audit(tx, now, actor, AuditAction::SublicenseRemoved, None, store::AuditAbout { subject: Some(&current.id), detail: Some(&detail.to_string()), ..Default::default() })?;
        Ok(())
    })
}

/// What a mapping should grant, as the admin named it.
pub enum MapTo<'a> {
    Admins,
    Primary { license: Option<&'a str> },
    Sublicense(&'a str),
}

/// Maps a group of `connection` (its SCIM tokens' and sign-ins' groups; None: the
/// unassigned scope's); returns the mapping id and what the reconciliation changed.
pub fn add_mapping(
    db: &Db,
    actor: &Actor,
    group: &str,
    connection: Option<&str>,
    to: MapTo<'_>,
) -> Result<(String, Summary), ManageError> {
    let group = checked_name("group name", group, 256)?;
    let id = format!("map-{}", crate::crypto::random_hex(6));
    let now = now_unix();
    db.write(|tx| {
        if let Some(c) = connection
            && crate::db::idp::verification_keys(tx, c)?.is_none()
        {
            return Err(ManageError::Invalid(format!(
                "there is no IdP connection {c:?} (the Identity providers page and `seatgate idp list` name them)"
            )));
        }
        let (target_license, target_sub);
        let target = match to {
            MapTo::Admins => Target::Admins,
            MapTo::Primary { license } => {
                target_license = match license {
                    Some(l) => find_license(tx, l)?.id,
                    None => {
                        let all = store::licenses(tx)?;
                        match all.as_slice() {
                            [only] => only.id.clone(),
                            [] => return Err(ManageError::Invalid("add a license first (seatgate license add)".into())),
                            _ => return Err(ManageError::Invalid("there are several licenses; say which with --license".into())),
                        }
                    }
                };
                Target::Primary { license_id: &target_license }
            }
            MapTo::Sublicense(s) => {
                target_sub = find_sublicense(tx, s)?;
                Target::Sublicense { license_id: &target_sub.license_id, sublicense_id: &target_sub.id }
            }
        };
        if access::add_mapping(tx, &id, group, connection, target, now)?.is_none() {
            return Err(ManageError::Invalid(format!(
                "group {group:?} already has a mapping of that kind (a group maps to at most one sublicense); remove it first"
            )));
        }
        let detail = match target {
            Target::Admins => serde_json::json!({"group": group, "connection": connection, "grants": "admins"}),
            Target::Primary { license_id } => serde_json::json!({"group": group, "connection": connection, "grants": "primary", "license": license_id}),
            Target::Sublicense { license_id, sublicense_id } => serde_json::json!({"group": group, "connection": connection, "grants": "sublicense", "license": license_id, "sublicense": sublicense_id}),
        };
        store::audit(tx, now, actor, AuditAction::MappingAdded, None, store::AuditAbout { subject: Some(&id), detail: Some(&detail.to_string()), ..Default::default() })?;
        let summary = reconcile::reconcile(tx, None, actor, now)?;
        Ok((id.clone(), summary))
    })
}

pub fn remove_mapping(db: &Db, actor: &Actor, id: &str) -> Result<Summary, ManageError> {
    let now = now_unix();
    db.write(|tx| {
        let Some(m) = access::mapping(tx, id)? else {
            return Err(ManageError::UnknownMapping(id.to_string()));
        };
        access::remove_mapping(tx, id)?;
        let detail = serde_json::json!({"group": m.group_ref, "role": m.role});
        store::audit(
            tx,
            now,
            actor,
            AuditAction::MappingRemoved,
            None,
            store::AuditAbout {
                subject: Some(id),
                detail: Some(&detail.to_string()),
                ..Default::default()
            },
        )?;
        Ok(reconcile::reconcile(tx, None, actor, now)?)
    })
}

pub fn find_license(tx: &rusqlite::Transaction<'_>, key: &str) -> Result<LicenseRow, ManageError> {
    let all = store::licenses(tx)?;
    if let Some(l) = all.iter().find(|l| l.id == key) {
        return Ok(l.clone());
    }
    let named: Vec<&LicenseRow> = all
        .iter()
        .filter(|l| l.product.eq_ignore_ascii_case(key))
        .collect();
    match named.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(ManageError::UnknownLicense(key.to_string())),
        _ => Err(ManageError::Ambiguous(key.to_string())),
    }
}

pub fn find_sublicense(
    tx: &rusqlite::Transaction<'_>,
    key: &str,
) -> Result<Sublicense, ManageError> {
    let all = store::sublicenses(tx)?;
    if let Some(s) = all.iter().find(|s| s.id == key) {
        return Ok(s.clone());
    }
    let named: Vec<&Sublicense> = all
        .iter()
        .filter(|s| s.name.eq_ignore_ascii_case(key))
        .collect();
    match named.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(ManageError::UnknownSublicense(key.to_string())),
        _ => Err(ManageError::Ambiguous(key.to_string())),
    }
}

/// `YYYY-MM-DD` → the end of that day, UTC.
pub fn parse_expiry(date: &str) -> Result<i64, ManageError> {
    crate::clock::parse_date(date)
        .map(|start| start + 86_399)
        .ok_or_else(|| ManageError::Invalid(format!("{date:?} is not a date like 2027-06-30")))
}
