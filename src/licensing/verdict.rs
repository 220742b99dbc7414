//! The activation verdict: whether a signed-in user may activate a device now, and from
//! which seat, or the reason code activation refuses with. Activation decides with it and
//! `seatgate explain` reports it, so the two cannot disagree.

use rusqlite::Transaction;

use crate::db::licensing::{self as store, SeatRow};
use crate::domain::problem::Reason;

/// What the verdict looks at for a provisioned user.
#[derive(Debug, Clone)]
pub struct Applicant {
    pub active: bool,
    /// The user's seats, by license id.
    pub seats: Vec<SeatRow>,
    /// Devices not revoked.
    pub live_devices: i64,
}

impl Applicant {
    pub fn load(tx: &Transaction<'_>, user_id: &str, active: bool) -> rusqlite::Result<Applicant> {
        Ok(Applicant {
            active,
            seats: store::seats_of_user(tx, user_id)?,
            live_devices: store::live_device_count(tx, user_id)?,
        })
    }
}

/// The seat an activation draws on, or why it is refused. `None` is a user the directory
/// does not have. The first refusal that applies wins: not provisioned, deactivated, no
/// assigned seat (the reason stored with the first seat, else `NOT_ENTITLED`), device limit.
pub fn verdict(applicant: Option<&Applicant>, device_limit: u32) -> Result<&SeatRow, Reason> {
    let applicant = applicant.ok_or(Reason::UserNotProvisioned)?;
    if !applicant.active {
        return Err(Reason::UserInactive);
    }
    let Some(seat) = applicant.seats.iter().find(|s| s.assigned()) else {
        return Err(applicant
            .seats
            .first()
            .and_then(|s| s.reason.as_deref())
            .and_then(Reason::from_code)
            .unwrap_or(Reason::NotEntitled));
    };
    if applicant.live_devices >= i64::from(device_limit) {
        return Err(Reason::DeviceLimit);
    }
    Ok(seat)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::engine::SeatState;

    fn seat(license: &str, assigned: bool, reason: Option<Reason>) -> SeatRow {
        SeatRow {
            user_id: "u".into(),
            license_id: license.into(),
            sublicense_id: None,
            state: if assigned {
                SeatState::Assigned
            } else {
                SeatState::Pending
            },
            reason: reason.map(|r| r.code().to_string()),
            since: 0,
            queued_us: 0,
        }
    }

    fn applicant(active: bool, seats: Vec<SeatRow>, live_devices: i64) -> Applicant {
        Applicant {
            active,
            seats,
            live_devices,
        }
    }

    #[test]
    fn refusals_come_in_their_order() {
        assert_eq!(verdict(None, 3), Err(Reason::UserNotProvisioned));
        let seated = vec![seat("L", true, None)];
        assert_eq!(
            verdict(Some(&applicant(false, seated.clone(), 0)), 3),
            Err(Reason::UserInactive)
        );
        assert_eq!(
            verdict(Some(&applicant(true, vec![], 0)), 3),
            Err(Reason::NotEntitled)
        );
        let waiting = vec![
            seat("A", false, Some(Reason::LicenseExpired)),
            seat("B", false, Some(Reason::NoSeats)),
        ];
        assert_eq!(
            verdict(Some(&applicant(true, waiting, 9)), 3),
            Err(Reason::LicenseExpired),
            "the first seat's reason"
        );
        assert_eq!(
            verdict(Some(&applicant(true, seated.clone(), 3)), 3),
            Err(Reason::DeviceLimit)
        );
        let mixed = vec![
            seat("A", false, Some(Reason::NoSeats)),
            seat("B", true, None),
        ];
        let a = applicant(true, mixed, 2);
        assert_eq!(verdict(Some(&a), 3).map(|s| s.license_id.as_str()), Ok("B"));
    }
}
