//! Applying the engine inside the transaction of the change that prompted it, so a SCIM
//! deactivation frees the seat and revokes the devices before the IdP gets its 200, and the
//! next pending user gets the freed seat in the same commit. The single writer connection
//! serializes these transactions, so a pool is never oversubscribed.

use std::collections::HashSet;

use rusqlite::Transaction;

use crate::audit::{Actor, AuditAction};
use crate::db::directory::EventKind;
use crate::db::licensing::{self as store, SeatRow};
use crate::domain::engine::{Catalog, Entitlements, Pool, RevokeReason, SeatState, Usage};
use crate::domain::problem::Reason;

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
        // The latest time the gateway has seen, never lowered: a clock set back must not
        // bring an ended license back (`db::licensing::catalog` reads it).
        if now > checked {
            settings::put(tx, settings::EXPIRY_CHECKED_AT, &now.to_string(), now)?;
        }
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

/// After a license's seat count changed and nothing else did (a renewal with more or
/// fewer seats, same dates): nobody's entitlement changed, so only its waiting users may
/// get a seat. Far cheaper than `reconcile` over every user.
pub fn after_capacity_change(
    tx: &Transaction<'_>,
    license: &str,
    actor: &Actor,
    now: i64,
) -> rusqlite::Result<Summary> {
    let mut pass = Pass::start(tx, actor, now)?;
    pass.seat_waiting_users(license)?;
    pass.record_usage()?;
    Ok(pass.summary)
}

/// After a key device took or gave back a per-device seat of `license` (an activation, a
/// release, a revoked key, a device moved to its person): the seat count to record for
/// usage reports, and a freed seat goes to whoever waits.
pub fn after_device_seats_change(
    tx: &Transaction<'_>,
    license: &str,
    actor: &Actor,
    now: i64,
) -> rusqlite::Result<Summary> {
    let mut pass = Pass::start(tx, actor, now)?;
    pass.changed.insert(license.to_string());
    pass.seat_waiting_users(license)?;
    pass.record_usage()?;
    Ok(pass.summary)
}

/// Decides the seats of `users` (everyone concerned when `None`), then hands freed seats
/// to pending users, oldest first.
pub fn reconcile(
    tx: &Transaction<'_>,
    users: Option<Vec<String>>,
    actor: &Actor,
    now: i64,
) -> rusqlite::Result<Summary> {
    let mut pass = Pass::start(tx, actor, now)?;
    let everyone = users.is_none();
    let users = match users {
        Some(u) => u,
        None => store::users_to_reconcile(tx)?,
    };
    for user in &users {
        pass.decide(user)?;
    }
    let licenses: Vec<String> = if everyone {
        pass.catalog.licenses.iter().map(|l| l.id.clone()).collect()
    } else {
        std::mem::take(&mut pass.freed).into_iter().collect()
    };
    for license in licenses {
        pass.seat_waiting_users(&license)?;
    }
    pass.record_usage()?;
    if everyone {
        // An admin change (seats, an expiry, a mapping): every pool's capacity may differ.
        super::history::record(tx, None, now)?;
    }
    Ok(pass.summary)
}

/// One reconciliation inside the caller's transaction: what it reads once, and what it
/// has changed so far.
struct Pass<'p, 't> {
    tx: &'p Transaction<'t>,
    catalog: Catalog,
    /// Seats in use per (license, pool), kept current as seats are granted and freed.
    usage: Usage,
    actor: &'p Actor,
    now: i64,
    summary: Summary,
    /// Licenses where a seat was freed: their waiting users may get it.
    freed: HashSet<String>,
    /// Licenses whose held seats changed: their usage is recorded at the end.
    changed: HashSet<String>,
    /// Licenses where someone started or stopped waiting (their pools' history).
    waiting_changed: HashSet<String>,
}

impl<'p, 't> Pass<'p, 't> {
    /// A pass over the catalog and seat counts as they are now.
    fn start(tx: &'p Transaction<'t>, actor: &'p Actor, now: i64) -> rusqlite::Result<Self> {
        Ok(Pass {
            tx,
            catalog: store::catalog(tx)?,
            usage: store::usage(tx)?,
            actor,
            now,
            summary: Summary::default(),
            freed: HashSet::new(),
            changed: HashSet::new(),
            waiting_changed: HashSet::new(),
        })
    }
    /// The seats each changed license holds now, for usage reports (`db::usage`).
    fn record_usage(&self) -> rusqlite::Result<()> {
        let touched: HashSet<String> = self.changed.union(&self.waiting_changed).cloned().collect();
        if !touched.is_empty() {
            super::history::record(self.tx, Some(&touched), self.now)?;
        }
        for license in &self.changed {
            let held: i64 = self
                .usage
                .iter()
                .filter(|((l, _), _)| l == license)
                .map(|(_, n)| n)
                .sum();
            crate::db::usage::record(self.tx, license, held, self.now)?;
        }
        Ok(())
    }

    /// Brings one user's seats in line with what their groups entitle them to.
    fn decide(&mut self, user: &str) -> rusqlite::Result<()> {
        let active = store::user_active(self.tx, user)?;
        let grants = if active == Some(true) {
            store::grants_of_user(self.tx, user)?
        } else {
            Vec::new()
        };
        let entitled = self
            .catalog
            .entitle(active == Some(true), &grants, self.now);
        let current = store::seats_of_user(self.tx, user)?;
        self.drop_unentitled(user, active, &entitled, &current)?;
        for (license, decision) in entitled {
            let seat = current.iter().find(|s| s.license_id == license);
            match decision {
                Err(reason) => self.refuse(user, &license, reason, seat)?,
                Ok(pool) => self.seat(user, &license, pool, seat)?,
            }
        }
        Ok(())
    }

    /// Seats (held or awaited) of licenses the user is no longer entitled to.
    fn drop_unentitled(
        &mut self,
        user: &str,
        active: Option<bool>,
        entitled: &Entitlements,
        current: &[SeatRow],
    ) -> rusqlite::Result<()> {
        let lost = match active {
            None => Reason::Revoked,
            Some(false) => Reason::UserInactive,
            Some(true) => Reason::NotEntitled,
        };
        for seat in current
            .iter()
            .filter(|s| !entitled.iter().any(|(l, _)| *l == s.license_id))
        {
            store::delete_seat(self.tx, user, &seat.license_id)?;
            if seat.assigned() {
                self.release(seat, lost)?;
                self.freed.insert(seat.license_id.clone());
            } else {
                store::audit(
                    self.tx,
                    self.now,
                    self.actor,
                    AuditAction::PendingCleared,
                    Some(user),
                    store::AuditAbout {
                        subject: Some(&seat.license_id),
                        reason: Some(lost.code()),
                        ..Default::default()
                    },
                )?;
            }
        }
        Ok(())
    }

    /// The user may not have a seat of `license`: a held one is freed, and they wait with
    /// the reason (recorded once, not on every pass).
    fn refuse(
        &mut self,
        user: &str,
        license: &str,
        reason: Reason,
        seat: Option<&SeatRow>,
    ) -> rusqlite::Result<()> {
        if let Some(s) = seat.filter(|s| s.assigned()) {
            self.release(s, reason)?;
            self.freed.insert(license.to_string());
        }
        if seat.is_none_or(|s| s.assigned() || s.reason.as_deref() != Some(reason.code())) {
            self.pend(user, license, None, reason, seat.filter(|s| !s.assigned()))?;
            self.summary.pending += 1;
        }
        Ok(())
    }

    /// The user is entitled to a seat from `pool`: kept, moved there, granted, or awaited.
    fn seat(
        &mut self,
        user: &str,
        license: &str,
        pool: Pool,
        seat: Option<&SeatRow>,
    ) -> rusqlite::Result<()> {
        match seat {
            Some(s) if s.assigned() && s.sublicense_id == pool => {}
            Some(s) if s.assigned() => {
                // A better pool: move when it has room, else keep the seat held now
                // (a full preferred pool never takes access away).
                let mut without = self.usage.clone();
                *without
                    .entry((license.to_string(), s.sublicense_id.clone()))
                    .or_default() -= 1;
                if self.catalog.has_room(license, &pool, &without, self.now) {
                    self.usage = without;
                    self.freed.insert(license.to_string());
                    self.grant(user, license, pool, "moved to the pool its groups now give")?;
                }
            }
            _ => {
                if self.catalog.has_room(license, &pool, &self.usage, self.now) {
                    self.grant(user, license, pool, "entitled by group mapping")?;
                    self.summary.granted += 1;
                } else if seat.is_none_or(|s| {
                    s.reason.as_deref() != Some(Reason::NoSeats.code()) || s.sublicense_id != pool
                }) {
                    self.pend(
                        user,
                        license,
                        pool,
                        Reason::NoSeats,
                        seat.filter(|s| !s.assigned()),
                    )?;
                    self.summary.pending += 1;
                }
            }
        }
        Ok(())
    }

    /// Hands a license's free seats to the users waiting for one, oldest first.
    fn seat_waiting_users(&mut self, license: &str) -> rusqlite::Result<()> {
        for pending in store::pending_seats(self.tx, license)? {
            if pending.reason.as_deref() != Some(Reason::NoSeats.code()) {
                continue;
            }
            let pool = pending.sublicense_id.clone();
            if self.catalog.has_room(license, &pool, &self.usage, self.now) {
                self.grant(&pending.user_id, license, pool, "a seat was freed")?;
                self.summary.granted += 1;
            }
        }
        Ok(())
    }

    fn grant(&mut self, user: &str, license: &str, pool: Pool, why: &str) -> rusqlite::Result<()> {
        self.changed.insert(license.to_string());
        *self
            .usage
            .entry((license.to_string(), pool.clone()))
            .or_default() += 1;
        let subject = pool.clone().unwrap_or_else(|| license.to_string());
        store::put_seat(
            self.tx,
            &SeatRow {
                user_id: user.to_string(),
                license_id: license.to_string(),
                sublicense_id: pool,
                state: SeatState::Assigned,
                reason: None,
                since: self.now,
                queued_us: 0,
            },
        )?;
        store::audit(
            self.tx,
            self.now,
            self.actor,
            AuditAction::SeatGranted,
            Some(user),
            store::AuditAbout {
                subject: Some(&subject),
                detail: Some(why),
                ..Default::default()
            },
        )
    }

    fn pend(
        &mut self,
        user: &str,
        license: &str,
        pool: Pool,
        reason: Reason,
        waiting: Option<&SeatRow>,
    ) -> rusqlite::Result<()> {
        self.waiting_changed.insert(license.to_string());
        let subject = pool.clone().unwrap_or_else(|| license.to_string());
        store::put_seat(
            self.tx,
            &SeatRow {
                user_id: user.to_string(),
                license_id: license.to_string(),
                sublicense_id: pool,
                state: SeatState::Pending,
                reason: Some(reason.code().to_string()),
                // A user already waiting keeps their place in the queue.
                since: waiting.map_or(self.now, |w| w.since),
                queued_us: waiting.map_or_else(crate::clock::now_micros, |w| w.queued_us),
            },
        )?;
        store::audit(
            self.tx,
            self.now,
            self.actor,
            AuditAction::SeatPending,
            Some(user),
            store::AuditAbout {
                subject: Some(&subject),
                reason: Some(reason.code()),
                ..Default::default()
            },
        )
    }

    /// Frees an assigned seat and revokes the user's devices on that license.
    fn release(&mut self, seat: &SeatRow, reason: Reason) -> rusqlite::Result<()> {
        self.changed.insert(seat.license_id.clone());
        *self
            .usage
            .entry((seat.license_id.clone(), seat.sublicense_id.clone()))
            .or_default() -= 1;
        let subject = seat
            .sublicense_id
            .clone()
            .unwrap_or_else(|| seat.license_id.clone());
        store::audit(
            self.tx,
            self.now,
            self.actor,
            AuditAction::SeatRevoked,
            Some(&seat.user_id),
            store::AuditAbout {
                subject: Some(&subject),
                reason: Some(reason.code()),
                ..Default::default()
            },
        )?;
        self.summary.revoked += 1;
        for device in store::revoke_devices(
            self.tx,
            &seat.user_id,
            Some(&seat.license_id),
            RevokeReason::SeatLost(reason),
            self.now,
        )? {
            store::audit(
                self.tx,
                self.now,
                self.actor,
                AuditAction::DeviceRevoked,
                Some(&seat.user_id),
                store::AuditAbout {
                    subject: Some(&device),
                    reason: Some(reason.code()),
                    ..Default::default()
                },
            )?;
            self.summary.devices_revoked += 1;
        }
        Ok(())
    }
}
