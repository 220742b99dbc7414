//! Admin notifications, sent through the outbox: a license or sublicense ending in 30, 7
//! or 1 days; a pool full with people waiting (at most daily); an IdP signing certificate
//! ending within 30 or 7 days; SCIM provisioning failing for an hour. Each can be switched
//! off and has its own recipients; each goes out once per occasion (`notifications_sent`).

use rusqlite::Transaction;

use crate::db::outbox::{self as store, Kind, NewMessage};
use crate::db::settings;

const DAY: i64 = 86_400;

/// One kind of notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    LicenseEnding,
    PoolFull,
    CertificateEnding,
    ScimFailing,
}

impl Notice {
    pub const ALL: &[Notice] = &[
        Notice::LicenseEnding,
        Notice::PoolFull,
        Notice::CertificateEnding,
        Notice::ScimFailing,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Notice::LicenseEnding => "license_ending",
            Notice::PoolFull => "pool_full",
            Notice::CertificateEnding => "certificate_ending",
            Notice::ScimFailing => "scim_failing",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Notice::LicenseEnding => "A license or sublicense ends in 30, 7 or 1 days",
            Notice::PoolFull => "A pool is full and people wait for a seat (at most daily)",
            Notice::CertificateEnding => {
                "An identity provider's signing certificate ends within 30 or 7 days"
            }
            Notice::ScimFailing => "SCIM provisioning has failed for an hour",
        }
    }

    pub fn parse(key: &str) -> Option<Notice> {
        Notice::ALL.iter().copied().find(|n| n.key() == key)
    }
}

fn on_key(n: Notice) -> String {
    format!("notify.{}.on", n.key())
}

fn to_key(n: Notice) -> String {
    format!("notify.{}.to", n.key())
}

/// Every notification's switch (on unless turned off) and recipients.
pub fn settings(tx: &Transaction<'_>) -> rusqlite::Result<Vec<(Notice, bool, String)>> {
    Notice::ALL
        .iter()
        .map(|&n| {
            let on = settings::get(tx, &on_key(n))?.is_none_or(|v| v == "1");
            let to = settings::get(tx, &to_key(n))?.unwrap_or_default();
            Ok((n, on, to))
        })
        .collect()
}

/// The addresses in a recipients field, or the sentence saying which is not one.
pub fn recipients(text: &str) -> Result<Vec<String>, String> {
    let list: Vec<String> = text
        .split([',', ';', ' ', '\n'])
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect();
    if list.len() > 20 {
        return Err("Give at most 20 recipients per notification.".into());
    }
    let mut seen = std::collections::HashSet::new();
    let mut unique = Vec::new();
    for a in list {
        if !crate::mail::is_address(&a) {
            return Err(format!(
                "{:?} is not an email address.",
                a.chars().take(80).collect::<String>()
            ));
        }
        if seen.insert(a.to_lowercase()) {
            unique.push(a);
        }
    }
    Ok(unique)
}

/// Stores one notification's switch and recipients; `Err` is the sentence for the admin.
pub fn save(
    tx: &Transaction<'_>,
    n: Notice,
    on: bool,
    to: &str,
    now: i64,
) -> rusqlite::Result<Result<(), String>> {
    let list = match recipients(to) {
        Ok(l) => l,
        Err(why) => return Ok(Err(why)),
    };
    settings::put(tx, &on_key(n), if on { "1" } else { "0" }, now)?;
    settings::put(tx, &to_key(n), &list.join(", "), now)?;
    Ok(Ok(()))
}

/// An occasion to notify about: its dedupe subject, subject line and text.
struct Occasion {
    subject: String,
    title: String,
    text: String,
}

fn day(t: i64) -> String {
    crate::clock::rfc3339(t)[..10].to_string()
}

fn license_endings(tx: &Transaction<'_>, now: i64) -> rusqlite::Result<Vec<Occasion>> {
    let mut out = Vec::new();
    let licenses = crate::db::licensing::licenses(tx)?;
    let subs = crate::db::licensing::sublicenses(tx)?;
    let ending = licenses
        .iter()
        .map(|l| (l.id.clone(), l.product.clone(), l.expires_at))
        .chain(subs.iter().map(|s| {
            let product = licenses
                .iter()
                .find(|l| l.id == s.license_id)
                .map_or(s.license_id.clone(), |l| l.product.clone());
            (
                s.id.clone(),
                format!("the {} sublicense of {product}", s.name),
                s.expires_at,
            )
        }));
    for (id, what, expires) in ending {
        let Some(end) = expires.filter(|&e| e > now) else {
            continue;
        };
        // The most urgent threshold reached; the larger ones are spent with it.
        let Some(&threshold) = [1i64, 7, 30].iter().find(|&&d| end - now <= d * DAY) else {
            continue;
        };
        let left = match (end - now) / DAY {
            0 => "less than a day".to_string(),
            1 => "1 day".to_string(),
            n => format!("{n} days"),
        };
        out.push(Occasion {
            subject: format!("{id}:{end}:{threshold}"),
            title: format!("{what} ends on {} (in {left})", day(end)),
            text: format!(
                "{what} ({id}) ends at the end of {} (UTC), in {left}. After that its seats are no longer handed out and the Macs using them stop at their next renewal. Renew it with the vendor, then import the new entitlement (Licenses in the portal).",
                day(end)
            ),
        });
    }
    Ok(out)
}

fn full_pools(tx: &Transaction<'_>, now: i64) -> rusqlite::Result<Vec<Occasion>> {
    let licenses = crate::db::licensing::licenses(tx)?;
    Ok(crate::db::portal::pool_usage(tx, now)?
        .into_iter()
        .filter(|p| p.pending > 0 && p.seats.free <= 0)
        .map(|p| {
            let product = licenses
                .iter()
                .find(|l| l.id == p.license_id)
                .map_or(p.license_id.clone(), |l| l.product.clone());
            let pool = p.sublicense_id.clone().unwrap_or_default();
            Occasion {
                subject: format!("{}:{pool}:{}", p.license_id, day(now)),
                title: format!("{} of {product} is full: {} waiting", p.name, p.pending),
                text: format!(
                    "All {} seats of {} ({product}) are in use and {} people wait for one. They get a seat as soon as one frees up; to seat them now, add seats or release unused ones.",
                    p.seats.capacity, p.name, p.pending
                ),
            }
        })
        .collect())
}

fn certificate_endings(tx: &Transaction<'_>, now: i64) -> rusqlite::Result<Vec<Occasion>> {
    let mut out = Vec::new();
    for c in crate::db::idp::list(tx)? {
        for (fingerprint, _, not_after) in &c.certificates {
            if *not_after <= now - 30 * DAY {
                continue;
            }
            let Some(&threshold) = [7i64, 30].iter().find(|&&d| *not_after - now <= d * DAY) else {
                continue;
            };
            out.push(Occasion {
                subject: format!("{}:{fingerprint}:{threshold}", c.id),
                title: format!("The signing certificate of {} ends on {}", c.name, day(*not_after)),
                text: format!(
                    "A signing certificate of the identity provider connection {} ({}) {} on {}. Once the IdP signs with a new one, sign-ins fail until the connection has its metadata: update it on the connection's page (or it refreshes by itself when its metadata comes from a URL).",
                    c.name,
                    c.id,
                    if *not_after < now { "ended" } else { "ends" },
                    day(*not_after)
                ),
            });
        }
    }
    Ok(out)
}

fn scim_failures(tx: &Transaction<'_>, now: i64) -> rusqlite::Result<Vec<Occasion>> {
    // Per token: the first failure since its last success, when the newest request failed
    // too and that first failure is an hour old.
    let rows = store::scim_failing(tx, now - 7 * DAY, now - 3600)?;
    let mut out = Vec::new();
    for (token, since, failures) in rows {
        out.push(Occasion {
            subject: format!("{token}:{since}"),
            title: format!("SCIM provisioning has failed since {}", crate::clock::rfc3339(since)),
            text: format!(
                "The identity provider's SCIM requests with token {token} have failed since {} ({failures} failed request(s), none succeeded since). New hires, leavers and group changes are not reaching the gateway. `seatgate scim-log --failures` shows what the IdP sent and why it failed.",
                crate::clock::rfc3339(since)
            ),
        });
    }
    Ok(out)
}

/// Queues the notifications due now; returns how many emails were queued.
pub fn queue_due(tx: &Transaction<'_>, public_url: &str, now: i64) -> rusqlite::Result<usize> {
    let mut queued = 0;
    for (notice, on, to) in settings(tx)? {
        let recipients = recipients(&to).unwrap_or_default();
        if !on || recipients.is_empty() {
            continue;
        }
        let occasions = match notice {
            Notice::LicenseEnding => license_endings(tx, now)?,
            Notice::PoolFull => full_pools(tx, now)?,
            Notice::CertificateEnding => certificate_endings(tx, now)?,
            Notice::ScimFailing => scim_failures(tx, now)?,
        };
        for o in occasions {
            if !store::note_notification(tx, notice.key(), &o.subject, now)? {
                continue;
            }
            for r in &recipients {
                store::enqueue(
                    tx,
                    &NewMessage {
                        kind: Kind::Notification,
                        recipient: r.clone(),
                        subject: format!("seatgate: {}", o.title),
                        text_body: format!(
                            "{}\n\nThe admin portal: {public_url}/admin\n\nYou receive this because you are a recipient of \"{}\" (Invitations → Admin notifications in the portal).\n",
                            o.text,
                            notice.describe()
                        ),
                        html_body: None,
                    },
                    now,
                )?;
                queued += 1;
            }
        }
    }
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::db::{Db, Synchronous};

    fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().expect("tmp");
        let db = Db::open(&dir.path().join("n.db"), dir.path(), Synchronous::Normal).expect("db");
        (dir, db)
    }

    fn queued(db: &Db) -> Vec<(String, String)> {
        db.read(|tx| {
            let mut stmt = tx.prepare("SELECT recipient, subject FROM outbox ORDER BY id")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<Vec<(String, String)>>>()
        })
        .expect("outbox")
    }

    #[test]
    fn each_occasion_is_notified_once_to_each_recipient() {
        let (_dir, db) = db();
        let now = 1_800_000_000;
        db.write(|tx| {
            for n in Notice::ALL {
                assert_eq!(save(tx, *n, true, "a@contoso.com, b@contoso.com", now)?, Ok(()));
            }
            // A license ending in 3 days; a full pool (no seat) with one person waiting;
            // a SCIM token failing for two hours since its last success.
            tx.execute_batch(&format!(
                "INSERT INTO licenses (id, product, seats, model, expires_at, created_at, updated_at)
                   VALUES ('lic-1', 'PD', 0, 'per-user', {}, 0, 0);
                 INSERT INTO seats (user_id, license_id, state, reason, since) VALUES ('u-1', 'lic-1', 'pending', 'NO_SEATS', 0);
                 INSERT INTO scim_requests (at, token_id, client, method, path, status, duration_us)
                   VALUES ({ok}, 7, 'x', 'GET', '/Users', 200, 1), ({f1}, 7, 'x', 'POST', '/Users', 500, 1), ({f2}, 7, 'x', 'POST', '/Users', 500, 1);",
                now + 3 * DAY,
                ok = now - 3 * 3600,
                f1 = now - 2 * 3600,
                f2 = now - 60,
            ))?;
            Ok::<_, rusqlite::Error>(())
        })
        .expect("setup");
        let n = db
            .write(|tx| queue_due(tx, "https://gw", now))
            .expect("queue");
        let sent = queued(&db);
        assert_eq!(n, 6, "{sent:?}");
        assert!(
            sent.iter()
                .any(|(_, s)| s.starts_with("seatgate: PD ends on ") && s.ends_with("(in 3 days)")),
            "{sent:?}"
        );
        assert!(
            sent.iter()
                .any(|(_, s)| s.contains("Primary pool of PD is full: 1 waiting")),
            "{sent:?}"
        );
        assert!(
            sent.iter()
                .any(|(_, s)| s.starts_with("seatgate: SCIM provisioning has failed since")),
            "{sent:?}"
        );
        // The same occasions again: nothing new.
        assert_eq!(
            db.write(|tx| queue_due(tx, "https://gw", now + 300))
                .expect("again"),
            0
        );
        // A SCIM request that succeeds ends that failure; a later one is a new occasion.
        db.write(|tx| {
            tx.execute_batch(&format!(
                "INSERT INTO scim_requests (at, token_id, client, method, path, status, duration_us)
                   VALUES ({}, 7, 'x', 'GET', '/Users', 200, 1), ({}, 7, 'x', 'GET', '/Users', 503, 1);",
                now + 400,
                now + 500
            ))
        })
        .expect("more");
        assert_eq!(
            db.write(|tx| queue_due(tx, "https://gw", now + 1000))
                .expect("soon"),
            0,
            "not an hour yet"
        );
        assert_eq!(
            db.write(|tx| queue_due(tx, "https://gw", now + 500 + 3700))
                .expect("later"),
            2
        );
        // Switched off: nothing, whatever happens.
        db.write(|tx| {
            for n in Notice::ALL {
                assert_eq!(save(tx, *n, false, "a@contoso.com", now)?, Ok(()));
            }
            Ok::<_, rusqlite::Error>(())
        })
        .expect("off");
        assert_eq!(
            db.write(|tx| queue_due(tx, "https://gw", now + 2 * DAY + DAY / 2))
                .expect("off"),
            0
        );
    }

    #[test]
    fn recipients_are_addresses() {
        assert_eq!(
            recipients("a@x.com, b@y.org;c@z.net").expect("ok"),
            ["a@x.com", "b@y.org", "c@z.net"]
        );
        assert!(recipients("").expect("empty").is_empty());
        assert_eq!(
            recipients("a@x.com, A@X.com a@x.com").expect("dupes"),
            ["a@x.com"]
        );
        assert!(recipients("not-an-address").is_err());
        assert!(recipients("a@x.com\r\nBcc: evil@x.com").is_err());
    }
}
