//! Applying the engine inside the transaction of the change that prompted it, so a SCIM
//! deactivation frees the seat and revokes the devices before the IdP gets its 200, and the
//! next pending user gets the freed seat in the same commit. The single writer connection
//! serializes these transactions, so a pool is never oversubscribed.

use std::collections::HashSet;

use rusqlite::Transaction;

use super::engine::{Catalog, RevokeReason, SeatState};
use crate::audit::{Actor, AuditAction};
use crate::db::directory::EventKind;
use crate::db::licensing::{self as store, SeatRow};
use crate::error::Reason;

/// What a reconciliation changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub granted: usize,
    pub pending: usize,
    pub revoked: usize,
    pub devices_revoked: usize,
}

/// Runs a full reconciliation when a license or sublicense expiry has passed since the
/// last check, so seats in an expired sublicense move to the primary pool (or end, for an
/// expired license) without waiting for a directory change. Called by the housekeeping
/// thread; returns `None` when nothing expired.
pub fn apply_expiries(db: &crate::db::Db, now: i64) -> rusqlite::Result<Option<Summary>> {
    db.write(|tx| {
        use crate::db::settings;
        let checked: i64 = settings::get(tx, settings::EXPIRY_CHECKED_AT)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let expired = store::expiries_between(tx, checked, now)?;
        settings::put(tx, settings::EXPIRY_CHECKED_AT, &now.to_string(), now)?;
        if expired == 0 {
            return Ok(None);
        }
        reconcile(tx, None, &Actor::System, now).map(Some)
    })
}

/// Reconciles the users the directory events after `mark` touched.
pub fn after_directory_change(
    tx: &Transaction<'_>,
    mark: i64,
    actor: &Actor,
    now: i64,
) -> rusqlite::Result<Summary> {
    // In the order the changes happened: with too few seats, the first in gets one.
    let mut users: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    let mut add = |u: String, users: &mut Vec<String>| {
        if seen.insert(u.clone()) {
            users.push(u);
        }
    };
    for (kind, user_id, group_id, detail) in store::events_after(tx, mark)? {
        if let Some(u) = user_id {
            add(u, &mut users);
        }
        let listed: Vec<String> = detail
            .as_deref()
            .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
            .and_then(|d| d.get("users").cloned())
            .and_then(|u| serde_json::from_value(u).ok())
            .unwrap_or_default();
        for u in listed {
            add(u, &mut users);
        }
        // A renamed group (or a new externalId) may match other mappings now.
        if kind == Some(EventKind::GroupUpdated)
            && let Some(g) = group_id
        {
            for u in store::member_ids(tx, &g)? {
                add(u, &mut users);
            }
        }
    }
    if users.is_empty() {
        return Ok(Summary::default());
    }
    reconcile(tx, Some(users), actor, now)
}

/// Decides the seats of `users` (everyone concerned when `None`), then hands freed seats
/// to pending users, oldest first.
pub fn reconcile(
    tx: &Transaction<'_>,
    users: Option<Vec<String>>,
    actor: &Actor,
    now: i64,
) -> rusqlite::Result<Summary> {
    let catalog = store::catalog(tx)?;
    let mut usage = store::usage(tx)?;
    let everyone = users.is_none();
    let users = match users {
        Some(u) => u,
        None => store::users_to_reconcile(tx)?,
    };
    let mut summary = Summary::default();
    let mut freed: HashSet<String> = HashSet::new();
    for user in &users {
        decide(
            tx,
            &catalog,
            &mut usage,
            user,
            actor,
            now,
            &mut summary,
            &mut freed,
        )?;
    }
    let licenses: Vec<String> = if everyone {
        catalog.licenses.iter().map(|l| l.id.clone()).collect()
    } else {
        freed.into_iter().collect()
    };
    for license in licenses {
        for pending in store::pending_seats(tx, &license)? {
            if pending.reason.as_deref() != Some(Reason::NoSeats.code()) {
                continue;
            }
            let pool = pending.sublicense_id.clone();
            if catalog.has_room(&license, &pool, &usage, now) {
                grant(
                    tx,
                    &mut usage,
                    &pending.user_id,
                    &license,
                    pool,
                    actor,
                    now,
                    "a seat was freed",
                )?;
                summary.granted += 1;
            }
        }
    }
    Ok(summary)
}

#[allow(clippy::too_many_arguments)]
fn decide(
    tx: &Transaction<'_>,
    catalog: &Catalog,
    usage: &mut super::engine::Usage,
    user: &str,
    actor: &Actor,
    now: i64,
    summary: &mut Summary,
    freed: &mut HashSet<String>,
) -> rusqlite::Result<()> {
    let active = store::user_active(tx, user)?;
    let grants = if active == Some(true) {
        store::grants_of_user(tx, user)?
    } else {
        Vec::new()
    };
    let entitled = catalog.entitle(active == Some(true), &grants, now);
    let current = store::seats_of_user(tx, user)?;

    // Seats of licenses the user is no longer entitled to.
    let lost = match active {
        None => Reason::Revoked,
        Some(false) => Reason::UserInactive,
        Some(true) => Reason::NotEntitled,
    };
    for seat in current
        .iter()
        .filter(|s| !entitled.iter().any(|(l, _)| *l == s.license_id))
    {
        store::delete_seat(tx, user, &seat.license_id)?;
        if seat.assigned() {
            release(tx, usage, seat, lost, actor, now, summary)?;
            freed.insert(seat.license_id.clone());
        } else {
            store::audit(
                tx,
                now,
                actor,
                AuditAction::PendingCleared,
                Some(user),
                Some(&seat.license_id),
                Some(lost.code()),
                None,
            )?;
        }
    }

    for (license, decision) in entitled {
        let seat = current.iter().find(|s| s.license_id == license);
        match decision {
            Err(reason) => {
                if let Some(s) = seat.filter(|s| s.assigned()) {
                    release(tx, usage, s, reason, actor, now, summary)?;
                    freed.insert(license.clone());
                }
                if seat.is_none_or(|s| s.assigned() || s.reason.as_deref() != Some(reason.code())) {
                    pend(
                        tx,
                        user,
                        &license,
                        None,
                        reason,
                        seat.filter(|s| !s.assigned()),
                        actor,
                        now,
                    )?;
                    summary.pending += 1;
                }
            }
            Ok(pool) => match seat {
                Some(s) if s.assigned() && s.sublicense_id == pool => {}
                Some(s) if s.assigned() => {
                    // A better pool: move when it has room, else keep the seat held now
                    // (a full preferred pool never takes access away).
                    let mut without = usage.clone();
                    *without
                        .entry((license.clone(), s.sublicense_id.clone()))
                        .or_default() -= 1;
                    if catalog.has_room(&license, &pool, &without, now) {
                        *usage = without;
                        freed.insert(license.clone());
                        grant(
                            tx,
                            usage,
                            user,
                            &license,
                            pool,
                            actor,
                            now,
                            "moved to the pool its groups now give",
                        )?;
                    }
                }
                _ => {
                    if catalog.has_room(&license, &pool, usage, now) {
                        grant(
                            tx,
                            usage,
                            user,
                            &license,
                            pool,
                            actor,
                            now,
                            "entitled by group mapping",
                        )?;
                        summary.granted += 1;
                    } else if seat.is_none_or(|s| {
                        s.reason.as_deref() != Some(Reason::NoSeats.code())
                            || s.sublicense_id != pool
                    }) {
                        pend(
                            tx,
                            user,
                            &license,
                            pool,
                            Reason::NoSeats,
                            seat.filter(|s| !s.assigned()),
                            actor,
                            now,
                        )?;
                        summary.pending += 1;
                    }
                }
            },
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn grant(
    tx: &Transaction<'_>,
    usage: &mut super::engine::Usage,
    user: &str,
    license: &str,
    pool: Option<String>,
    actor: &Actor,
    now: i64,
    why: &str,
) -> rusqlite::Result<()> {
    *usage
        .entry((license.to_string(), pool.clone()))
        .or_default() += 1;
    let subject = pool.clone().unwrap_or_else(|| license.to_string());
    store::put_seat(
        tx,
        &SeatRow {
            user_id: user.to_string(),
            license_id: license.to_string(),
            sublicense_id: pool,
            state: SeatState::Assigned,
            reason: None,
            since: now,
            queued_us: 0,
        },
    )?;
    store::audit(
        tx,
        now,
        actor,
        AuditAction::SeatGranted,
        Some(user),
        Some(&subject),
        None,
        Some(why),
    )
}

#[allow(clippy::too_many_arguments)]
fn pend(
    tx: &Transaction<'_>,
    user: &str,
    license: &str,
    pool: Option<String>,
    reason: Reason,
    waiting: Option<&SeatRow>,
    actor: &Actor,
    now: i64,
) -> rusqlite::Result<()> {
    let subject = pool.clone().unwrap_or_else(|| license.to_string());
    store::put_seat(
        tx,
        &SeatRow {
            user_id: user.to_string(),
            license_id: license.to_string(),
            sublicense_id: pool,
            state: SeatState::Pending,
            reason: Some(reason.code().to_string()),
            // A user already waiting keeps their place in the queue.
            since: waiting.map_or(now, |w| w.since),
            queued_us: waiting.map_or_else(crate::clock::now_micros, |w| w.queued_us),
        },
    )?;
    store::audit(
        tx,
        now,
        actor,
        AuditAction::SeatPending,
        Some(user),
        Some(&subject),
        Some(reason.code()),
        None,
    )
}

/// Frees an assigned seat and revokes the user's devices on that license.
fn release(
    tx: &Transaction<'_>,
    usage: &mut super::engine::Usage,
    seat: &SeatRow,
    reason: Reason,
    actor: &Actor,
    now: i64,
    summary: &mut Summary,
) -> rusqlite::Result<()> {
    *usage
        .entry((seat.license_id.clone(), seat.sublicense_id.clone()))
        .or_default() -= 1;
    let subject = seat
        .sublicense_id
        .clone()
        .unwrap_or_else(|| seat.license_id.clone());
    store::audit(
        tx,
        now,
        actor,
        AuditAction::SeatRevoked,
        Some(&seat.user_id),
        Some(&subject),
        Some(reason.code()),
        None,
    )?;
    summary.revoked += 1;
    for device in store::revoke_devices(
        tx,
        &seat.user_id,
        Some(&seat.license_id),
        RevokeReason::SeatLost(reason),
        now,
    )? {
        store::audit(
            tx,
            now,
            actor,
            AuditAction::DeviceRevoked,
            Some(&seat.user_id),
            Some(&device),
            Some(reason.code()),
            None,
        )?;
        summary.devices_revoked += 1;
    }
    Ok(())
}
