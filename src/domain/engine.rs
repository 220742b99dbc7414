//! The assignment engine, pure: who is entitled to which pool of which license, and whether
//! a pool has room. Reconciliation (`super::reconcile`) feeds it rows and applies its
//! answers inside the transaction of the change that prompted them.
//!
//! Rules:
//! - Only an active user in at least one mapped group is entitled; a user is entitled to
//!   each license its mappings name.
//! - Within a license a user draws from exactly one pool. Precedence when several mapped
//!   groups match: reserved sublicenses, then dynamic sublicenses (each by name, then id),
//!   then the primary pool. A full pool means pending `NO_SEATS`; there is no silent
//!   fallback to another pool.
//! - An expired license entitles no one (`LICENSE_EXPIRED`). An expired sublicense gives its
//!   seats back to the primary pool, and its users draw from the primary pool.
//! - Reserved sublicenses are carved out of the license; the primary pool is what is left.
//!   Dynamic sublicenses take seats from the primary pool, up to their own limit.

use std::collections::HashMap;

use crate::domain::problem::Reason;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct License {
    pub id: String,
    pub seats: i64,
    pub expires_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sublicense {
    pub id: String,
    pub license_id: String,
    pub name: String,
    pub seats: i64,
    pub reserved: bool,
    pub expires_at: Option<i64>,
}

/// Whether a user holds a seat of a license or waits for one. The strings are the stored
/// `seats.state` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatState {
    Assigned,
    Pending,
}

impl SeatState {
    pub fn as_str(self) -> &'static str {
        match self {
            SeatState::Assigned => "assigned",
            SeatState::Pending => "pending",
        }
    }

    pub fn parse(s: &str) -> Option<SeatState> {
        [SeatState::Assigned, SeatState::Pending]
            .into_iter()
            .find(|state| state.as_str() == s)
    }
}

/// Why a device was revoked. The strings are the stored `devices.revoke_reason` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeReason {
    /// Deactivated on purpose: by an admin, the command line or the device itself.
    Deactivated,
    /// Not heard from for too long (housekeeping).
    Silent,
    /// The license key it was activated with was revoked (or its pool removed).
    KeyRevoked,
    /// Its user lost the seat, for this reason.
    SeatLost(Reason),
}

impl RevokeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RevokeReason::Deactivated => "DEACTIVATED",
            RevokeReason::Silent => "SILENT",
            RevokeReason::KeyRevoked => "KEY_REVOKED",
            RevokeReason::SeatLost(reason) => reason.code(),
        }
    }

    pub fn parse(s: &str) -> Option<RevokeReason> {
        match s {
            "DEACTIVATED" => Some(RevokeReason::Deactivated),
            "SILENT" => Some(RevokeReason::Silent),
            "KEY_REVOKED" => Some(RevokeReason::KeyRevoked),
            _ => Reason::from_code(s).map(RevokeReason::SeatLost),
        }
    }

    /// The reason code a renewal of the device is refused with.
    pub fn refusal(self) -> Reason {
        match self {
            RevokeReason::SeatLost(reason) => reason,
            RevokeReason::Deactivated | RevokeReason::Silent | RevokeReason::KeyRevoked => {
                Reason::Revoked
            }
        }
    }
}

/// A mapping the user's groups match: to a license's primary pool, or to a sublicense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    Primary { license_id: String },
    Sublicense { sublicense_id: String },
}

/// A pool within a license: `None` is the primary pool.
pub type Pool = Option<String>;

/// Everything about licenses and pools the engine needs, with usage counts.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub licenses: Vec<License>,
    pub sublicenses: Vec<Sublicense>,
}

fn expired(expires_at: Option<i64>, now: i64) -> bool {
    expires_at.is_some_and(|t| t < now)
}

impl Catalog {
    pub fn license(&self, id: &str) -> Option<&License> {
        self.licenses.iter().find(|l| l.id == id)
    }

    pub fn sublicense(&self, id: &str) -> Option<&Sublicense> {
        self.sublicenses.iter().find(|s| s.id == id)
    }

    /// Seats of the primary pool: the license's, less its live reserved sublicenses'.
    pub fn primary_capacity(&self, license_id: &str, now: i64) -> i64 {
        let Some(l) = self.license(license_id) else {
            return 0;
        };
        if expired(l.expires_at, now) {
            return 0;
        }
        let reserved: i64 = self
            .sublicenses
            .iter()
            .filter(|s| s.license_id == license_id && s.reserved && !expired(s.expires_at, now))
            .map(|s| s.seats)
            .sum();
        (l.seats - reserved).max(0)
    }

    /// Which pool of each license a user with these grants draws from, or why none.
    pub fn entitle(&self, active: bool, grants: &[Grant], now: i64) -> Entitlements {
        let mut out: Entitlements = Vec::new();
        if !active {
            return out;
        }
        let mut by_license: HashMap<&str, Vec<Candidate<'_>>> = HashMap::new();
        for g in grants {
            match g {
                Grant::Primary { license_id } => {
                    if let Some(l) = self.license(license_id) {
                        by_license
                            .entry(&l.id)
                            .or_default()
                            .push(Candidate::Primary);
                    }
                }
                Grant::Sublicense { sublicense_id } => {
                    if let Some(s) = self.sublicense(sublicense_id)
                        && self.license(&s.license_id).is_some()
                    {
                        let c = if expired(s.expires_at, now) {
                            Candidate::Primary
                        } else {
                            Candidate::Sub(s)
                        };
                        by_license.entry(&s.license_id).or_default().push(c);
                    }
                }
            }
        }
        let mut licenses: Vec<&str> = by_license.keys().copied().collect();
        licenses.sort_unstable();
        for license_id in licenses {
            let Some(license) = self.license(license_id) else {
                continue;
            };
            if expired(license.expires_at, now) {
                out.push((license_id.to_string(), Err(Reason::LicenseExpired)));
                continue;
            }
            let mut candidates = by_license.remove(license_id).unwrap_or_default();
            candidates.sort_by(|a, b| a.rank().cmp(&b.rank()));
            let pool = match candidates.first() {
                Some(Candidate::Sub(s)) => Some(s.id.clone()),
                _ => None,
            };
            out.push((license_id.to_string(), Ok(pool)));
        }
        out
    }

    /// Seats held from the primary pool: its own and those of dynamic sublicenses, which
    /// compete for it.
    pub fn primary_used(&self, license_id: &str, usage: &Usage) -> i64 {
        usage
            .iter()
            .filter(|((l, p), _)| {
                l == license_id
                    && match p {
                        None => true,
                        Some(s) => self.sublicense(s).is_some_and(|s| !s.reserved),
                    }
            })
            .map(|(_, n)| *n)
            .sum()
    }

    /// How many more seats `pool` of `license_id` can grant now. A dynamic sublicense is
    /// bounded by its own limit and by what is left in the primary pool.
    pub fn free_seats(&self, license_id: &str, pool: &Pool, usage: &Usage, now: i64) -> i64 {
        let primary_free = || {
            (self.primary_capacity(license_id, now) - self.primary_used(license_id, usage)).max(0)
        };
        match pool {
            None => primary_free(),
            Some(sub_id) => {
                let Some(s) = self.sublicense(sub_id) else {
                    return 0;
                };
                if expired(s.expires_at, now) {
                    return 0;
                }
                let used = usage
                    .get(&(license_id.to_string(), Some(sub_id.clone())))
                    .copied()
                    .unwrap_or(0);
                let own = (s.seats - used).max(0);
                if s.reserved {
                    own
                } else {
                    own.min(primary_free())
                }
            }
        }
    }

    /// One pool's seats: what the portal, the admin API, the CLI and `explain` show.
    pub fn pool_seats(&self, license_id: &str, pool: &Pool, usage: &Usage, now: i64) -> PoolSeats {
        let held = |p: &Pool| {
            usage
                .get(&(license_id.to_string(), p.clone()))
                .copied()
                .unwrap_or(0)
        };
        let free = self.free_seats(license_id, pool, usage, now);
        match pool {
            None => {
                let used = self.primary_used(license_id, usage);
                PoolSeats {
                    capacity: self.primary_capacity(license_id, now),
                    used,
                    used_by_dynamic: used - held(pool),
                    free,
                    limited_by_primary: false,
                }
            }
            Some(id) => {
                let sublicense = self.sublicense(id);
                let capacity = sublicense.map_or(0, |s| s.seats);
                let used = held(pool);
                PoolSeats {
                    capacity,
                    used,
                    used_by_dynamic: 0,
                    free,
                    limited_by_primary: sublicense.is_some_and(|s| !s.reserved)
                        && free < (capacity - used).max(0),
                }
            }
        }
    }

    /// Whether `pool` of `license_id` has a free seat, given the assigned seats per pool.
    pub fn has_room(&self, license_id: &str, pool: &Pool, usage: &Usage, now: i64) -> bool {
        self.free_seats(license_id, pool, usage, now) > 0
    }
}

/// One pool's seats as the engine counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolSeats {
    pub capacity: i64,
    /// Assigned seats; for the primary pool including those of dynamic sublicenses.
    pub used: i64,
    /// Of `used` in the primary pool, the seats held through dynamic sublicenses.
    pub used_by_dynamic: i64,
    /// Seats the pool can still grant (a dynamic sublicense is also bounded by the
    /// primary pool).
    pub free: i64,
    /// A dynamic sublicense has seats of its own left that the primary pool it draws
    /// from cannot back.
    pub limited_by_primary: bool,
}

/// Assigned seats per (license, pool).
pub type Usage = HashMap<(String, Pool), i64>;

/// Per license: the pool to draw from, or why the user cannot have a seat of it.
pub type Entitlements = Vec<(String, Result<Pool, Reason>)>;

enum Candidate<'a> {
    Sub(&'a Sublicense),
    Primary,
}

impl Candidate<'_> {
    fn rank(&self) -> (u8, &str, &str) {
        match self {
            Candidate::Sub(s) if s.reserved => (0, &s.name, &s.id),
            Candidate::Sub(s) => (1, &s.name, &s.id),
            Candidate::Primary => (2, "", ""),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog {
            licenses: vec![License {
                id: "L".into(),
                seats: 10,
                expires_at: None,
            }],
            sublicenses: vec![
                Sublicense {
                    id: "eng".into(),
                    license_id: "L".into(),
                    name: "Engineering".into(),
                    seats: 4,
                    reserved: true,
                    expires_at: None,
                },
                Sublicense {
                    id: "des".into(),
                    license_id: "L".into(),
                    name: "Design".into(),
                    seats: 3,
                    reserved: false,
                    expires_at: None,
                },
            ],
        }
    }

    fn primary() -> Grant {
        Grant::Primary {
            license_id: "L".into(),
        }
    }

    fn sub(id: &str) -> Grant {
        Grant::Sublicense {
            sublicense_id: id.into(),
        }
    }

    #[test]
    fn inactive_or_unmapped_users_are_entitled_to_nothing() {
        let c = catalog();
        assert!(c.entitle(false, &[primary()], 0).is_empty());
        assert!(c.entitle(true, &[], 0).is_empty());
    }

    #[test]
    fn precedence_is_reserved_then_dynamic_then_primary() {
        let c = catalog();
        let all = [primary(), sub("des"), sub("eng")];
        assert_eq!(
            c.entitle(true, &all, 0),
            vec![("L".to_string(), Ok(Some("eng".to_string())))]
        );
        assert_eq!(
            c.entitle(true, &[primary(), sub("des")], 0),
            vec![("L".to_string(), Ok(Some("des".to_string())))]
        );
        assert_eq!(
            c.entitle(true, &[primary()], 0),
            vec![("L".to_string(), Ok(None))]
        );
    }

    #[test]
    fn expiry_of_a_license_refuses_and_of_a_sublicense_falls_back_to_the_primary_pool() {
        let mut c = catalog();
        c.sublicenses[0].expires_at = Some(100);
        assert_eq!(
            c.entitle(true, &[sub("eng")], 200),
            vec![("L".to_string(), Ok(None))]
        );
        assert_eq!(
            c.primary_capacity("L", 50),
            6,
            "reserved seats are carved out"
        );
        assert_eq!(
            c.primary_capacity("L", 200),
            10,
            "and return when it expires"
        );
        c.licenses[0].expires_at = Some(300);
        assert_eq!(
            c.entitle(true, &[sub("des")], 400),
            vec![("L".to_string(), Err(Reason::LicenseExpired))]
        );
        assert_eq!(c.primary_capacity("L", 400), 0);
    }

    #[test]
    fn pools_have_room_by_their_own_rules() {
        let c = catalog();
        let mut usage = Usage::new();
        let eng = Some("eng".to_string());
        let des = Some("des".to_string());
        assert!(c.has_room("L", &eng, &usage, 0));
        usage.insert(("L".into(), eng.clone()), 4);
        assert!(
            !c.has_room("L", &eng, &usage, 0),
            "reserved: its own 4 seats"
        );
        assert!(
            c.has_room("L", &None, &usage, 0),
            "reserved use leaves the primary pool alone"
        );
        usage.insert(("L".into(), des.clone()), 3);
        assert!(!c.has_room("L", &des, &usage, 0), "dynamic: its own limit");
        usage.insert(("L".into(), des.clone()), 2);
        usage.insert(("L".into(), None), 4);
        assert!(
            !c.has_room("L", &None, &usage, 0),
            "primary: 10 - 4 reserved = 6, all used"
        );
        assert!(
            !c.has_room("L", &des, &usage, 0),
            "dynamic seats come out of the primary pool"
        );
        usage.insert(("L".into(), None), 3);
        assert!(c.has_room("L", &des, &usage, 0));
        assert!(!c.has_room("L", &Some("nope".into()), &usage, 0));
    }

    #[test]
    fn free_seats_count_dynamic_use_against_the_primary_pool() {
        let c = catalog();
        let mut usage = Usage::new();
        let des = Some("des".to_string());
        // primary capacity 6 (10 - 4 reserved); des is dynamic with 3 seats.
        usage.insert(("L".into(), None), 2);
        usage.insert(("L".into(), des.clone()), 2);
        assert_eq!(
            c.primary_used("L", &usage),
            4,
            "dynamic seats are primary seats"
        );
        assert_eq!(c.free_seats("L", &None, &usage, 0), 2);
        assert_eq!(c.free_seats("L", &des, &usage, 0), 1, "its own limit binds");
        usage.insert(("L".into(), None), 4);
        assert_eq!(c.free_seats("L", &None, &usage, 0), 0);
        assert_eq!(
            c.free_seats("L", &des, &usage, 0),
            0,
            "a full primary pool leaves a dynamic sublicense nothing"
        );
        assert_eq!(
            c.free_seats("L", &Some("eng".into()), &usage, 0),
            4,
            "reserved seats stay free"
        );
    }

    #[test]
    fn pool_seats_say_when_the_primary_pool_limits_a_dynamic_sublicense() {
        let c = catalog();
        let mut usage = Usage::new();
        let des = Some("des".to_string());
        usage.insert(("L".into(), None), 4);
        usage.insert(("L".into(), des.clone()), 1);
        let primary = c.pool_seats("L", &None, &usage, 0);
        assert_eq!(
            primary,
            PoolSeats {
                capacity: 6,
                used: 5,
                used_by_dynamic: 1,
                free: 1,
                limited_by_primary: false
            }
        );
        let dynamic = c.pool_seats("L", &des, &usage, 0);
        assert_eq!((dynamic.capacity, dynamic.used, dynamic.free), (3, 1, 1));
        assert!(
            dynamic.limited_by_primary,
            "2 of its own left, 1 in the primary pool"
        );
        let reserved = c.pool_seats("L", &Some("eng".into()), &usage, 0);
        assert_eq!((reserved.free, reserved.limited_by_primary), (4, false));
    }

    #[test]
    fn seat_states_and_revoke_reasons_keep_their_stored_strings() {
        for (state, text) in [
            (SeatState::Assigned, "assigned"),
            (SeatState::Pending, "pending"),
        ] {
            assert_eq!(state.as_str(), text);
            assert_eq!(SeatState::parse(text), Some(state));
        }
        assert_eq!(SeatState::parse("held"), None);
        for (reason, text) in [
            (RevokeReason::Deactivated, "DEACTIVATED"),
            (RevokeReason::Silent, "SILENT"),
            (
                RevokeReason::SeatLost(Reason::UserInactive),
                "USER_INACTIVE",
            ),
            (RevokeReason::SeatLost(Reason::NotEntitled), "NOT_ENTITLED"),
        ] {
            assert_eq!(reason.as_str(), text);
            assert_eq!(RevokeReason::parse(text), Some(reason));
        }
        assert_eq!(RevokeReason::Silent.refusal(), Reason::Revoked);
        assert_eq!(
            RevokeReason::SeatLost(Reason::LicenseExpired).refusal(),
            Reason::LicenseExpired
        );
    }
}
