//! The fleet's virtual machines, as devices report them at renewal: the filtered listing
//! the portal, the CSV export and the admin API share, and ageing out the inventory of
//! devices released long ago.

use std::collections::HashMap;

use crate::db::Db;
use crate::db::inventory::{self as store, VmFilter, VmRow};
use crate::domain::inventory::compare_versions;
use crate::domain::problem::Problem;

/// How long the VMs of a released or revoked device stay listed in the database.
pub const KEEP_RELEASED_SECS: i64 = 30 * 86_400;
/// "Expiring": within this many seconds.
pub const EXPIRING_SECS: i64 = 30 * 86_400;

/// What an admin filters the fleet's VMs by (the page's and the API's query).
#[derive(Debug, Default, Clone)]
pub struct Query {
    pub user: Option<String>,
    pub group: Option<String>,
    pub guest_os: Option<String>,
    pub unencrypted: bool,
    pub expiring: bool,
    pub outdated: bool,
}

/// One page of the listing, with what the filters offer.
pub struct Listing {
    pub total: i64,
    pub rows: Vec<VmRow>,
    /// The newest version of each golden image seen in the fleet.
    pub latest: HashMap<String, String>,
    pub guest_systems: Vec<String>,
}

/// The newest version of each image in the fleet, and the (image, version) pairs older
/// than it.
fn versions(pairs: Vec<(String, String)>) -> (HashMap<String, String>, Vec<(String, String)>) {
    let mut latest: HashMap<String, String> = HashMap::new();
    for (name, version) in &pairs {
        let newer = latest
            .get(name)
            .is_none_or(|v| compare_versions(version, v).is_gt());
        if newer {
            latest.insert(name.clone(), version.clone());
        }
    }
    let outdated = pairs
        .into_iter()
        .filter(|(n, v)| {
            latest
                .get(n)
                .is_some_and(|l| compare_versions(v, l).is_lt())
        })
        .collect();
    (latest, outdated)
}

pub fn list(db: &Db, q: &Query, offset: i64, limit: i64, now: i64) -> Result<Listing, Problem> {
    db.read(|tx| {
        let (latest, outdated) = versions(store::image_versions(tx)?);
        let filter = VmFilter {
            user: q.user.clone(),
            group: q.group.clone(),
            guest_os: q.guest_os.clone(),
            unencrypted: q.unencrypted,
            expiring_before: q.expiring.then_some(now + EXPIRING_SECS),
            image_versions: q.outdated.then_some(outdated),
        };
        let (total, rows) = store::list(tx, &filter, offset, limit)?;
        Ok(Listing {
            total,
            rows,
            latest,
            guest_systems: store::guest_systems(tx)?,
        })
    })
}

/// Housekeeping: forgets the VMs of devices released or revoked over 30 days ago.
pub fn age_out(db: &Db, now: i64) -> Result<usize, Problem> {
    Ok(db.write(|tx| store::age_out(tx, now - KEEP_RELEASED_SECS))?)
}

#[cfg(test)]
mod tests {
    use super::versions;

    #[test]
    fn older_versions_of_an_image_are_outdated() {
        let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
        let (latest, outdated) = versions(vec![
            pair("Win11", "2026.9"),
            pair("Win11", "2026.11"),
            pair("Ubuntu", "24.04"),
        ]);
        assert_eq!(latest["Win11"], "2026.11");
        assert_eq!(outdated, vec![pair("Win11", "2026.9")]);
    }
}
