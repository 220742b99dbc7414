//! `seatgate explain EMAIL`: what happens when this person activates now, and why, step by
//! step: domain → IdP connection → provisioned? active? → groups → mappings → pool and
//! seat counts → devices → verdict. The verdict uses the reason codes the API returns.

use serde::Serialize;

use super::verdict::{Applicant, verdict};
use crate::db::Db;
use crate::db::licensing::{self as store, DeviceRow, SeatRow};
use crate::domain::problem::{Problem, Reason};

#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub email: String,
    pub domain: String,
    /// The IdP connection that signs this domain in.
    pub connection: Option<String>,
    pub jit: bool,
    pub user: Option<UserState>,
    pub groups: Vec<GroupState>,
    pub licenses: Vec<LicenseState>,
    pub devices: Vec<DeviceRow>,
    /// The user's effective policy: per setting, its value and where it comes from.
    pub policy: Vec<PolicyLine>,
    /// The effective policy's digest (a lease's `policy` claim).
    pub policy_hash: Option<String>,
    /// What activation would do now: `OK`, or the reason code it would refuse with.
    pub verdict: String,
    /// The verdict in one sentence.
    pub because: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyLine {
    pub setting: String,
    pub value: String,
    pub from: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct UserState {
    pub id: String,
    pub user_name: String,
    pub active: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupState {
    pub name: String,
    pub external_id: Option<String>,
    /// Mappings this group matches: `admins`, `primary:{license}`, `sublicense:{id}`.
    pub mappings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LicenseState {
    pub license: String,
    pub product: String,
    /// The pool the user draws from (`primary` or a sublicense id), if entitled.
    pub pool: Option<String>,
    /// That pool as people call it: `primary pool` or `sublicense NAME`.
    pub pool_name: Option<String>,
    /// `assigned`, `pending` or `none`.
    pub seat: String,
    pub reason: Option<String>,
    /// Seats used in the pool; for the primary pool including dynamic sublicenses' seats.
    pub pool_used: i64,
    pub pool_capacity: i64,
    pub pending_in_pool: i64,
    /// Seats the pool can still grant.
    pub pool_free: i64,
    /// For a dynamic sublicense with seats of its own left: the primary pool it draws
    /// from is full, as (used, capacity).
    pub primary_full: Option<(i64, i64)>,
}

/// Explains what activating as `email` would do now.
pub fn explain(
    db: &Db,
    email: &str,
    device_limit: u32,
    bounds: crate::domain::policy::LeaseBounds,
    now: i64,
) -> Result<Explanation, Problem> {
    let email = email.trim().to_lowercase();
    let domain = email
        .rsplit_once('@')
        .map(|(_, d)| d.to_string())
        .unwrap_or_default();
    db.read(|tx| {
        let mut e = Explanation {
            email: email.clone(),
            domain: domain.clone(),
            connection: None,
            jit: false,
            user: None,
            groups: Vec::new(),
            licenses: Vec::new(),
            devices: Vec::new(),
            policy: Vec::new(),
            policy_hash: None,
            verdict: String::new(),
            because: String::new(),
        };
        let Some(user) = signed_in_user(tx, &mut e)? else {
            return Ok(e);
        };
        e.user = Some(UserState {
            id: user.id.clone(),
            user_name: user.user_name.clone(),
            active: user.active,
        });
        e.groups = group_states(tx, &user.id)?;
        e.devices = store::devices_of_user(tx, &user.id)?;
        let policy = super::policies::effective(tx, Some(&user.id), None, bounds)?;
        e.policy_hash = Some(policy.hash());
        e.policy = policy_lines(&policy);
        if user.active {
            e.licenses = license_states(tx, &user.id, now)?;
        }
        let applicant = Applicant::load(tx, &user.id, user.active)?;
        let decided = verdict(Some(&applicant), device_limit);
        let because = match decided {
            Ok(seat) => seated(&e, seat),
            Err(reason) => refused(&e, &applicant, reason, device_limit),
        };
        e.set_verdict(decided.err(), because);
        Ok(e)
    })
}

impl Explanation {
    fn set_verdict(&mut self, refusal: Option<Reason>, because: String) {
        self.verdict = refusal.map_or("OK".to_string(), |r| r.code().to_string());
        self.because = because;
    }
}

/// The directory user a sign-in at this email's connection reaches; when there is none,
/// the verdict says why (no connection, no certificate, not provisioned).
fn signed_in_user(
    tx: &rusqlite::Transaction<'_>,
    e: &mut Explanation,
) -> Result<Option<crate::db::directory::UserRow>, Problem> {
    use crate::db::directory::{self as dir, SignInKey};
    let Some(target) = crate::db::idp::target_by_domain(tx, &e.domain)? else {
        let because = format!("no IdP connection is bound to the domain {:?}", e.domain);
        e.set_verdict(Some(Reason::DomainUnknown), because);
        return Ok(None);
    };
    e.connection = Some(target.id.clone());
    e.jit = crate::db::idp::verification_keys(tx, &target.id)?.is_some_and(|k| k.jit_users);
    if target.certificates == 0 {
        let because = format!("the connection {} has no signing certificate", target.id);
        e.set_verdict(Some(Reason::ConnectionIncomplete), because);
        return Ok(None);
    }
    let fold = crate::domain::scim::resource::fold(&e.email);
    // Only the users this connection's sign-ins can reach (its own and the unassigned
    // scope's), as the ACS resolves them.
    let candidate = |key| {
        dir::sign_in_candidates(tx, &target.id, key, &fold).map(|users| users.into_iter().next())
    };
    if let Some(user) = match candidate(SignInKey::UserName)? {
        Some(u) => Some(u),
        None => candidate(SignInKey::Email)?,
    } {
        return Ok(Some(user));
    }
    // Someone of that name may exist in another connection's reach: say so, since that
    // is a provisioning mistake an admin can fix.
    let elsewhere = match dir::user_by_name_key(tx, &fold)? {
        Some(u) => Some(u),
        None => dir::user_by_email_key(tx, &fold)?,
    };
    let because = if let Some(other) = elsewhere {
        format!(
            "the directory user {} belongs to {}, and connection {} signs in only its own users (and those of SCIM tokens without a connection); provision it with a SCIM token of connection {}",
            other.user_name,
            crate::domain::connection::scope_label(other.connection_id.as_deref()),
            target.id,
            target.id
        )
    } else if e.jit {
        "the user is not in the directory yet; the connection creates users at their first sign-in, with the groups the IdP sends".to_string()
    } else {
        "the IdP has not provisioned this user over SCIM".to_string()
    };
    e.set_verdict(Some(Reason::UserNotProvisioned), because);
    Ok(None)
}

/// The user's groups with the mappings each matches.
fn group_states(
    tx: &rusqlite::Transaction<'_>,
    user_id: &str,
) -> rusqlite::Result<Vec<GroupState>> {
    let mappings = crate::db::admin::mappings(tx)?;
    let mut groups = Vec::new();
    for (gid, name) in crate::db::directory::groups_of_user(tx, user_id)? {
        let group = crate::db::directory::group_by_id(tx, &gid)?;
        let scope = group.as_ref().and_then(|g| g.connection_id.clone());
        let external_id = group.and_then(|g| g.external_id);
        let keys = [
            Some(name.to_lowercase()),
            external_id.as_ref().map(|x| x.to_lowercase()),
        ];
        let matched = mappings
            .iter()
            .filter(|m| m.connection_id == scope)
            .filter(|m| {
                keys.iter()
                    .flatten()
                    .any(|k| *k == crate::db::admin::fold(&m.group_ref))
            })
            .map(
                |m| match (m.role.as_str(), &m.sublicense_id, &m.license_id) {
                    ("sublicense", Some(s), _) => format!("sublicense:{s}"),
                    ("primary", _, Some(l)) => format!("primary:{l}"),
                    (role, _, _) => role.to_string(),
                },
            )
            .collect();
        groups.push(GroupState {
            name,
            external_id,
            mappings: matched,
        });
    }
    Ok(groups)
}

/// Per license the user is entitled to: the pool, the seat and the pool's counts.
fn license_states(
    tx: &rusqlite::Transaction<'_>,
    user_id: &str,
    now: i64,
) -> rusqlite::Result<Vec<LicenseState>> {
    let catalog = store::catalog(tx)?;
    let usage = store::usage(tx)?;
    let seats = store::seats_of_user(tx, user_id)?;
    let products = store::licenses(tx)?;
    let grants = store::grants_of_user(tx, user_id)?;
    let mut licenses = Vec::new();
    for (license, decision) in catalog.entitle(true, &grants, now) {
        let seat = seats.iter().find(|s| s.license_id == license);
        let pool = decision.as_ref().ok().cloned().flatten();
        let counts = catalog.pool_seats(&license, &pool, &usage, now);
        let primary_full = (counts.limited_by_primary && counts.free == 0).then(|| {
            let primary = catalog.pool_seats(&license, &None, &usage, now);
            (primary.used, primary.capacity)
        });
        licenses.push(LicenseState {
            product: products
                .iter()
                .find(|p| p.id == license)
                .map(|p| p.product.clone())
                .unwrap_or_default(),
            pool: decision
                .as_ref()
                .ok()
                .map(|p| p.clone().unwrap_or_else(|| "primary".into())),
            pool_name: decision.as_ref().ok().map(|p| match p {
                Some(id) => format!(
                    "sublicense {}",
                    catalog
                        .sublicense(id)
                        .map_or(id.as_str(), |s| s.name.as_str())
                ),
                None => "primary pool".into(),
            }),
            seat: match seat {
                Some(s) => s.state.as_str().into(),
                None => "none".into(),
            },
            reason: match &decision {
                Err(r) => Some(r.code().to_string()),
                Ok(_) => seat.and_then(|s| s.reason.clone()),
            },
            pool_used: counts.used,
            pool_capacity: counts.capacity,
            pending_in_pool: store::pending_in_pool(tx, &license, pool.as_deref())?,
            pool_free: counts.free,
            primary_full,
            license,
        });
    }
    Ok(licenses)
}

/// Why the verdict is OK: the seat activation draws on.
fn seated(e: &Explanation, seat: &SeatRow) -> String {
    match e.licenses.iter().find(|l| l.license == seat.license_id) {
        Some(l) => format!(
            "the user holds a seat of {} ({}) from the {}",
            l.product,
            l.license,
            l.pool_name.clone().unwrap_or_default()
        ),
        None => format!("the user holds a seat of {}", seat.license_id),
    }
}

/// The refusal in one sentence, with the counts that explain it.
fn refused(e: &Explanation, applicant: &Applicant, reason: Reason, device_limit: u32) -> String {
    let first = applicant
        .seats
        .first()
        .and_then(|s| e.licenses.iter().find(|l| l.license == s.license_id));
    match (reason, first) {
        (Reason::UserInactive, _) => "the user is deactivated in the directory".into(),
        (Reason::DeviceLimit, _) => format!(
            "the user already has {} active devices (limit {device_limit}); deactivate one first",
            applicant.live_devices
        ),
        (Reason::NotEntitled, _) if e.licenses.is_empty() => {
            "none of the user's groups is mapped to a license or sublicense".into()
        }
        (Reason::NotEntitled, _) => {
            "the user has no seat yet; the next reconciliation decides one".into()
        }
        (Reason::LicenseExpired, Some(l)) => format!("the license {} has expired", l.license),
        (_, Some(l)) => match l.primary_full {
            Some((used, capacity)) => format!(
                "the {} of {} has {} of {} seats used, but it is dynamic and the primary pool it draws from is full ({used} of {capacity} seats used); the user gets a seat as soon as one frees up",
                l.pool_name.clone().unwrap_or_default(),
                l.license,
                l.pool_used,
                l.pool_capacity
            ),
            None => format!(
                "the {} of {} is full ({} of {} seats used, {} waiting); the user gets a seat as soon as one frees up",
                l.pool_name.clone().unwrap_or_default(),
                l.license,
                l.pool_used,
                l.pool_capacity,
                l.pending_in_pool
            ),
        },
        (reason, None) => format!("activation is refused with {}", reason.code()),
    }
}

/// The human-readable form `seatgate explain` prints.
pub fn render(e: &Explanation) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "{}", e.email);
    let _ = writeln!(
        s,
        "  domain       {} → {}",
        e.domain,
        e.connection
            .as_deref()
            .map_or("no IdP connection".to_string(), |c| format!(
                "IdP connection {c}{}",
                if e.jit {
                    " (creates users at first sign-in)"
                } else {
                    ""
                }
            ))
    );
    match &e.user {
        Some(u) => {
            let _ = writeln!(
                s,
                "  directory    {} ({}), {}",
                u.user_name,
                u.id,
                if u.active { "active" } else { "INACTIVE" }
            );
        }
        None if e.connection.is_some() => {
            let _ = writeln!(s, "  directory    not provisioned");
        }
        None => {}
    }
    for g in &e.groups {
        let m = if g.mappings.is_empty() {
            "no mapping".to_string()
        } else {
            g.mappings.join(", ")
        };
        let _ = writeln!(s, "  group        {} → {m}", g.name);
    }
    for l in &e.licenses {
        let _ = writeln!(
            s,
            "  license      {} ({}): {}, seat {}{}; pool {} of {} used, {} pending",
            l.license,
            l.product,
            match (&l.pool, &l.pool_name) {
                (Some(id), Some(name)) if id != "primary" => format!("{name} ({id})"),
                (_, Some(name)) => name.clone(),
                _ => "no pool".into(),
            },
            l.seat,
            l.reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            l.pool_used,
            l.pool_capacity,
            l.pending_in_pool
        );
    }
    for d in &e.devices {
        let state = match (&d.revoked_at, &d.revoke_reason) {
            (Some(_), r) => format!("revoked ({})", r.as_deref().unwrap_or("")),
            (None, _) => format!(
                "active, lease until {}",
                crate::clock::rfc3339(d.lease_expires_at)
            ),
        };
        let _ = writeln!(
            s,
            "  device       {} {} ({}): {state}, last seen {}",
            d.id,
            d.name,
            d.os,
            crate::clock::rfc3339(d.last_seen_at)
        );
    }
    for p in &e.policy {
        let _ = writeln!(
            s,
            "  policy       {}: {} (from {})",
            p.setting, p.value, p.from
        );
    }
    let _ = writeln!(s, "  activation   {}: {}", e.verdict, e.because);
    s
}

/// An effective policy as explain's lines.
pub fn policy_lines(policy: &crate::domain::policy::Effective) -> Vec<PolicyLine> {
    super::policies::explain_rows(policy)
        .into_iter()
        .map(|(setting, value, from)| PolicyLine {
            setting,
            value,
            from,
        })
        .collect()
}
