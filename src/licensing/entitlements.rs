//! Vendor entitlements: the gateway's instance key, registration requests, and importing
//! a vendor-signed entitlement, which sets its license's product, seats and end date and
//! re-decides every seat in the same transaction.
//!
//! Only the vendor keys compiled in below are trusted. The development key (whose private
//! half is public) is trusted only by builds with the `dev-vendor-key` feature (the test
//! suite's) and inside `seatgate demo`.

use entitlement::registration::{Held, Request};
use entitlement::{Entitlement, EntitlementError, InstanceKey, TrustedKey};

use crate::audit::{Actor, AuditAction};
use crate::db::Db;
use crate::db::entitlements::{self as store, EntitlementRow, InstanceKeyRow};
use crate::db::licensing::{self as licenses, LicenseRow};
use crate::domain::problem::{Problem, Reason};

use super::reconcile::{self, Summary};

/// The vendor's production keys (newest last). Their private halves never leave the
/// vendor; a rotation adds a key here and keeps the old one while its entitlements live.
pub const PRODUCTION_KEYS: &[TrustedKey] = &[TrustedKey {
    kid: "seatgate-2026-1",
    public_key: "cxB8QIRZgKmwjSPJGz2T8qP_ZD0DFbsYL-2JlBVrwjE",
}];

/// How far the vendor's clock may be ahead of the gateway's (time zones, drift).
const CLOCK_TOLERANCE: i64 = 86_400;

/// Whether this build trusts the development vendor key everywhere (test builds only;
/// `seatgate --version` says so).
pub const DEV_KEY_TRUSTED: bool = cfg!(feature = "dev-vendor-key");

/// The keys an import trusts: production, plus the development key in test builds and in
/// the demo.
pub fn trusted_keys(demo: bool) -> Vec<TrustedKey> {
    let mut keys = PRODUCTION_KEYS.to_vec();
    if DEV_KEY_TRUSTED || demo {
        keys.push(entitlement::dev::DEV_KEY);
    }
    keys
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Token(#[from] EntitlementError),
    #[error(
        "the entitlement is bound to another gateway (instance {bound}), not this one (instance {this}); ask the vendor for one issued to this gateway's registration request"
    )]
    OtherGateway { bound: String, this: String },
    #[error(
        "the gateway's clock says {now}, before the vendor issued this entitlement ({issued}); set the clock right and import it again"
    )]
    ClockBehind { now: String, issued: String },
    #[error("entitlement {id} was replaced by entitlement {by}; import {by}'s renewals instead")]
    Superseded { id: String, by: String },
    #[error(
        "serial {serial} of entitlement {id} names another customer ({found}) than the one held ({held}); nothing was changed"
    )]
    OtherCustomer {
        id: String,
        serial: u32,
        found: String,
        held: String,
    },
    #[error("the entitlement ended on {0}; ask the vendor for a renewal")]
    Expired(String),
    #[error("the entitlement starts on {0}; import it then")]
    NotStarted(String),
    #[error(
        "this gateway holds serial {held} of entitlement {id}, newer than the file's serial {serial}; nothing was changed"
    )]
    Older { id: String, serial: u32, held: u32 },
    #[error(
        "serial {serial} of entitlement {id} is already imported with other contents; the vendor must issue a new serial"
    )]
    SerialReused { id: String, serial: u32 },
    #[error(
        "reserved sublicenses of {license} hold {reserved} seats, more than the entitlement's {seats}; shrink them first"
    )]
    Reserved {
        license: String,
        reserved: i64,
        seats: i64,
    },
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("{0}")]
    Store(#[from] crate::db::DbError),
    #[error("the instance key could not be created or read")]
    Key,
}

impl From<ImportError> for Problem {
    fn from(e: ImportError) -> Problem {
        let reason = match &e {
            ImportError::Token(_) => Reason::EntitlementInvalid,
            ImportError::OtherGateway { .. } => Reason::EntitlementOtherGateway,
            ImportError::Expired(_) => Reason::EntitlementExpired,
            ImportError::NotStarted(_) => Reason::EntitlementNotStarted,
            ImportError::Older { .. }
            | ImportError::SerialReused { .. }
            | ImportError::Superseded { .. } => Reason::EntitlementOutdated,
            ImportError::OtherCustomer { .. } => Reason::EntitlementInvalid,
            ImportError::ClockBehind { .. } => Reason::ClockSkew,
            ImportError::Reserved { .. } => Reason::Conflict,
            ImportError::Db(_) | ImportError::Store(_) | ImportError::Key => {
                return match e {
                    ImportError::Db(e) => Problem::from(e),
                    ImportError::Store(e) => Problem::from(e),
                    _ => Problem::internal(),
                };
            }
        };
        let mut message = e.to_string();
        message[..1].make_ascii_uppercase();
        Problem::new(reason, format!("{message}."))
    }
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    /// A new license for a new entitlement.
    Added { license: String },
    /// A newer serial of an entitlement already held (renewal, upgrade, edition change).
    Renewed { license: String, from_serial: u32 },
    /// A paid entitlement took over a trial's license (no device re-activates).
    TrialConverted { license: String, trial: String },
    /// The same file again: nothing changed.
    Unchanged { license: String },
    /// A license entered by hand now comes from this entitlement.
    Registered { license: String },
}

/// As the CLI prints it and the portal confirms it.
impl std::fmt::Display for Imported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Imported::Added { license } => write!(f, "entitlement imported as license {license}"),
            Imported::Renewed {
                license,
                from_serial,
            } => write!(f, "license {license} renewed (was serial {from_serial})"),
            Imported::TrialConverted { license, trial } => write!(
                f,
                "license {license} now runs on the paid entitlement (was trial {trial})"
            ),
            Imported::Unchanged { license } => {
                write!(f, "already imported: license {license} is unchanged")
            }
            Imported::Registered { license } => write!(
                f,
                "license {license}, entered by hand, now comes from the entitlement"
            ),
        }
    }
}

/// This gateway's instance key, created on first use.
pub fn instance_key(db: &Db, now: i64) -> Result<InstanceKey, ImportError> {
    let stored = db.write(|tx| {
        if let Some(key) = store::instance_key(tx)? {
            return Ok::<_, ImportError>(key);
        }
        let key = InstanceKey::generate().map_err(|_| ImportError::Key)?;
        store::insert_instance_key(
            tx,
            &InstanceKeyRow {
                pkcs8: key.pkcs8().to_vec(),
                public_key: key.public_key().to_vec(),
                thumbprint: key.thumbprint(),
                created_at: now,
            },
        )?;
        store::instance_key(tx)?.ok_or(ImportError::Key)
    })?;
    InstanceKey::from_pkcs8(&stored.pkcs8).map_err(|_| ImportError::Key)
}

/// Days before an entitlement's end at which the gateway warns (portal and log).
pub const WARN_DAYS: [i64; 3] = [30, 7, 1];

/// An entitlement nearing its end (or ended): what the warnings say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    pub entitlement_id: String,
    pub serial: u32,
    pub product: String,
    pub ends_at: i64,
    pub days_left: i64,
    pub trial: bool,
}

/// Entitlements within the first warning threshold of their end.
pub fn ending_soon(db: &Db, now: i64) -> rusqlite::Result<Vec<Ending>> {
    Ok(db
        .read(store::entitlements)?
        .into_iter()
        .map(|e| Ending {
            days_left: (e.claims.ends_at - now).div_euclid(86_400),
            entitlement_id: e.claims.entitlement_id,
            serial: e.claims.serial,
            product: e.claims.product,
            ends_at: e.claims.ends_at,
            trial: e.claims.trial,
        })
        .filter(|e| e.days_left < WARN_DAYS[0])
        .collect())
}

/// Which warning thresholds were logged, so each is logged once per entitlement serial
/// (a restart logs the current one again).
#[derive(Debug, Default)]
pub struct EndWarnings {
    logged: std::collections::HashMap<(String, u32), usize>,
}

impl EndWarnings {
    /// The warnings due now that were not logged yet: 30, 7 and 1 days before the end,
    /// and once when it has ended.
    pub fn due(&mut self, ending: Vec<Ending>) -> Vec<String> {
        let mut lines = Vec::new();
        for e in ending {
            let level = WARN_DAYS.iter().filter(|d| e.days_left < **d).count()
                + usize::from(e.days_left < 0);
            let key = (e.entitlement_id.clone(), e.serial);
            if self.logged.get(&key).is_some_and(|l| *l >= level) {
                continue;
            }
            self.logged.insert(key, level);
            let kind = if e.trial {
                "trial entitlement"
            } else {
                "entitlement"
            };
            lines.push(if e.days_left < 0 {
                format!(
                    "the {kind} {} for {} ended on {}: renewals are refused with LICENSE_EXPIRED; import the renewal from the vendor",
                    e.entitlement_id, e.product, crate::clock::rfc3339(e.ends_at)
                )
            } else {
                format!(
                    "the {kind} {} for {} ends in {} day(s), on {}; import the renewal from the vendor before then",
                    e.entitlement_id, e.product, e.days_left, crate::clock::rfc3339(e.ends_at)
                )
            });
        }
        lines
    }
}

/// A registration request for the vendor, signed with the instance key.
pub fn registration_request(
    db: &Db,
    public_url: &str,
    hostname: &str,
    now: i64,
) -> Result<(String, String), ImportError> {
    let key = instance_key(db, now)?;
    let current = db.read(store::entitlements)?;
    let request = Request {
        format: entitlement::registration::FORMAT,
        instance: key.thumbprint(),
        gateway_version: env!("CARGO_PKG_VERSION").to_string(),
        public_url: public_url.to_string(),
        hostname: hostname.to_string(),
        current: current
            .iter()
            .map(|e| Held {
                entitlement_id: e.claims.entitlement_id.clone(),
                serial: e.claims.serial,
            })
            .collect(),
        created_at: now,
    };
    Ok((request.sign(&key), key.thumbprint()))
}

/// Imports a vendor-signed entitlement: verifies it, checks it against this gateway and
/// what it holds, sets its license, and re-decides every seat, in one transaction.
pub fn import(
    db: &Db,
    token: &str,
    trusted: &[TrustedKey],
    actor: &Actor,
    now: i64,
) -> Result<(Imported, Summary), ImportError> {
    let (claims, kid) = Entitlement::verify_with_kid(token, trusted)?;
    let this = instance_key(db, now)?.thumbprint();
    if let Some(bound) = claims.instance.as_ref().filter(|b| **b != this) {
        return Err(ImportError::OtherGateway {
            bound: bound.clone(),
            this,
        });
    }
    // The latest time this gateway has seen: a clock set back does not make an ended
    // entitlement importable again.
    let seen: i64 = db
        .read(|tx| crate::db::settings::get(tx, crate::db::settings::EXPIRY_CHECKED_AT))?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if claims.ends_at < now.max(seen) {
        return Err(ImportError::Expired(crate::clock::rfc3339(claims.ends_at)));
    }
    // A file issued more than a day after the gateway's "now": the clock is behind.
    if claims.issued_at > now + CLOCK_TOLERANCE {
        return Err(ImportError::ClockBehind {
            now: crate::clock::rfc3339(now),
            issued: crate::clock::rfc3339(claims.issued_at),
        });
    }
    if claims.starts_at > now {
        return Err(ImportError::NotStarted(crate::clock::rfc3339(
            claims.starts_at,
        )));
    }
    db.write(|tx| {
        let (imported, license) = place(tx, &claims, now)?;
        if let Imported::Unchanged { .. } = imported {
            return Ok((imported, Summary::default()));
        }
        let reserved = super::manage::reserved_seats(tx, &license, None)?;
        if reserved > store::license_seats(&claims) {
            return Err(ImportError::Reserved {
                license,
                reserved,
                seats: store::license_seats(&claims),
            });
        }
        let before = licenses::licenses(tx)?
            .into_iter()
            .find(|l| l.id == license);
        store::apply_to_license(tx, &license, &claims, now)?;
        store::store(
            tx,
            &EntitlementRow {
                claims: claims.clone(),
                license_id: license.clone(),
                kid: kid.clone(),
                token: token.trim().to_string(),
                imported_at: now,
            },
        )?;
        audit(tx, actor, &imported, &claims, now)?;
        // Who is entitled to a license depends on the group mappings (unchanged here) and
        // on whether it has ended. A license that had ended (a trial, say) comes back:
        // every seat is re-decided. Otherwise only its seat count changed, so only its
        // waiting list can move (a new license has none).
        let had_ended = before.is_some_and(|b| b.expires_at.is_some_and(|t| t < now));
        let summary = if had_ended {
            reconcile::reconcile(tx, None, actor, now)?
        } else {
            reconcile::after_capacity_change(tx, &license, actor, now)?
        };
        Ok((imported, summary))
    })
}

/// Which license the entitlement sets, and how: a newer serial of one held, a paid
/// entitlement replacing a trial of the same customer and product, or a new license.
fn place(
    tx: &rusqlite::Transaction<'_>,
    claims: &Entitlement,
    now: i64,
) -> Result<(Imported, String), ImportError> {
    if let Some(by) = store::superseded_by(tx, &claims.entitlement_id)? {
        return Err(ImportError::Superseded {
            id: claims.entitlement_id.clone(),
            by,
        });
    }
    if let Some(held) = store::entitlement(tx, &claims.entitlement_id)? {
        return against_held(held, claims);
    }
    let held = store::entitlements(tx)?;
    let trial = held.iter().find(|e| {
        e.claims.trial
            && !claims.trial
            && e.claims.customer_id == claims.customer_id
            && e.claims.product == claims.product
    });
    if let Some(trial) = trial {
        let (license, trial) = (trial.license_id.clone(), trial.claims.clone());
        store::supersede(
            tx,
            &trial.entitlement_id,
            trial.serial,
            &claims.entitlement_id,
            now,
        )?;
        return Ok((
            Imported::TrialConverted {
                license: license.clone(),
                trial: trial.entitlement_id,
            },
            license,
        ));
    }
    // Registering a license that was entered by hand: the one hand license of the
    // product becomes the vendor's (its sublicenses and mappings stay).
    let by_hand: Vec<LicenseRow> = licenses::licenses(tx)?
        .into_iter()
        .filter(|l| l.product == claims.product)
        .filter(|l| !held.iter().any(|e| e.license_id == l.id))
        .collect();
    if let [hand] = by_hand.as_slice() {
        return Ok((
            Imported::Registered {
                license: hand.id.clone(),
            },
            hand.id.clone(),
        ));
    }
    let license = format!("lic-{}", crate::crypto::random_hex(4));
    licenses::insert_license(
        tx,
        &LicenseRow {
            id: license.clone(),
            product: claims.product.clone(),
            license_key: Some(claims.entitlement_id.clone()),
            seats: store::license_seats(claims),
            model: "per-user".into(),
            expires_at: Some(claims.ends_at),
            created_at: now,
            max_offline_secs: None,
        },
    )?;
    Ok((
        Imported::Added {
            license: license.clone(),
        },
        license,
    ))
}

/// A file for an entitlement this gateway holds: a renewal, the same file again, or a
/// refusal (older, reused serial, another customer).
fn against_held(
    held: EntitlementRow,
    claims: &Entitlement,
) -> Result<(Imported, String), ImportError> {
    let license = held.license_id.clone();
    if held.claims.customer_id != claims.customer_id {
        return Err(ImportError::OtherCustomer {
            id: claims.entitlement_id.clone(),
            serial: claims.serial,
            found: claims.customer_id.clone(),
            held: held.claims.customer_id,
        });
    }
    // A file re-minted for the same serial (only its issue time differs) is the same.
    let same = Entitlement {
        issued_at: held.claims.issued_at,
        ..claims.clone()
    } == held.claims;
    match held.claims.serial.cmp(&claims.serial) {
        std::cmp::Ordering::Greater => Err(ImportError::Older {
            id: claims.entitlement_id.clone(),
            serial: claims.serial,
            held: held.claims.serial,
        }),
        std::cmp::Ordering::Equal if same => Ok((
            Imported::Unchanged {
                license: license.clone(),
            },
            license,
        )),
        std::cmp::Ordering::Equal => Err(ImportError::SerialReused {
            id: claims.entitlement_id.clone(),
            serial: claims.serial,
        }),
        std::cmp::Ordering::Less => Ok((
            Imported::Renewed {
                license: license.clone(),
                from_serial: held.claims.serial,
            },
            license,
        )),
    }
}

fn audit(
    tx: &rusqlite::Transaction<'_>,
    actor: &Actor,
    imported: &Imported,
    c: &Entitlement,
    now: i64,
) -> rusqlite::Result<()> {
    let (license, how) = match imported {
        Imported::Added { license } => (license, "added".to_string()),
        Imported::Renewed {
            license,
            from_serial,
        } => (license, format!("renewed from serial {from_serial}")),
        Imported::TrialConverted { license, trial } => (license, format!("replaced trial {trial}")),
        Imported::Unchanged { license } => (license, "unchanged".to_string()),
        Imported::Registered { license } => {
            (license, "registered a license entered by hand".to_string())
        }
    };
    let detail = serde_json::json!({
        "entitlement": c.entitlement_id, "serial": c.serial, "customer": c.customer_name,
        "product": c.product, "edition": c.edition, "seats": c.seats,
        "device_seats": c.device_seats, "ends_at": c.ends_at, "trial": c.trial, "how": how,
    });
    licenses::audit(
        tx,
        now,
        actor,
        AuditAction::EntitlementImported,
        None,
        licenses::AuditAbout {
            subject: Some(license),
            detail: Some(&detail.to_string()),
            ..Default::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ending(days_left: i64) -> Ending {
        Ending {
            entitlement_id: "ent-1".into(),
            serial: 1,
            product: "P".into(),
            ends_at: 1_800_000_000,
            days_left,
            trial: false,
        }
    }

    #[test]
    fn each_end_warning_is_logged_once() {
        let mut w = EndWarnings::default();
        assert_eq!(w.due(vec![ending(29)]).len(), 1, "30 days");
        assert!(
            w.due(vec![ending(20)]).is_empty(),
            "still the 30-day warning"
        );
        assert_eq!(w.due(vec![ending(6)]).len(), 1, "7 days");
        assert_eq!(w.due(vec![ending(0)]).len(), 1, "1 day");
        let ended = w.due(vec![ending(-1)]);
        assert!(ended[0].contains("LICENSE_EXPIRED"), "{ended:?}");
        assert!(w.due(vec![ending(-5)]).is_empty());
        // A renewal (new serial) starts over.
        let mut renewed = ending(25);
        renewed.serial = 2;
        assert_eq!(w.due(vec![renewed]).len(), 1);
    }
}
