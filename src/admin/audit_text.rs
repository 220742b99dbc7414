//! Audit entries as sentences for people: who did what to whom, with names instead of
//! ids and dates instead of epoch seconds. The stored entry is unchanged (CSV and API keep
//! it raw, times in ISO 8601 UTC); the portal shows the raw detail behind a disclosure.

use std::collections::HashMap;

use serde_json::Value;

use crate::audit::Actor;
use crate::db::licensing::AuditEntry;

/// Names for the ids audit entries hold: licenses, sublicenses, IdP connections.
#[derive(Default)]
pub struct Names {
    licenses: HashMap<String, String>,
    sublicenses: HashMap<String, String>,
    connections: HashMap<String, String>,
}

impl Names {
    pub fn load(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<Names> {
        Ok(Names {
            licenses: crate::db::licensing::licenses(tx)?
                .into_iter()
                .map(|l| (l.id, l.product))
                .collect(),
            sublicenses: crate::db::licensing::sublicenses(tx)?
                .into_iter()
                .map(|s| (s.id, s.name))
                .collect(),
            connections: crate::db::idp::list(tx)?
                .into_iter()
                .map(|c| (c.id, c.name))
                .collect(),
        })
    }

    /// A license by its product ("Parallels Desktop (lic-…)"), or the id if it is gone.
    fn license(&self, id: &str) -> String {
        match self.licenses.get(id) {
            Some(product) => format!("{product} ({id})"),
            None => id.to_string(),
        }
    }

    /// A pool: a sublicense by name, else a license's primary pool.
    fn pool(&self, id: &str) -> String {
        match (self.sublicenses.get(id), self.licenses.get(id)) {
            (Some(name), _) => format!("the {name} sublicense"),
            (None, Some(product)) => format!("the primary pool of {product}"),
            _ => id.to_string(),
        }
    }

    fn connection(&self, id: &str) -> String {
        self.connections
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }
}

/// Who acted, in words.
fn who(actor: &str, names: &Names) -> String {
    match Actor::parse(actor) {
        Some(Actor::Admin(name)) => name,
        Some(Actor::AdminToken(name)) => format!("The admin API token {name}"),
        Some(Actor::Scim(name)) => format!("The identity provider (SCIM token {name})"),
        Some(Actor::Saml(id)) => format!("A sign-in through {}", names.connection(&id)),
        Some(Actor::Device(id)) => format!("The device {id}"),
        Some(Actor::Cli) => "An admin on the command line".into(),
        Some(Actor::Setup) => "First-run setup".into(),
        Some(Actor::System) => "seatgate".into(),
        Some(Actor::Demo) => "The demo".into(),
        Some(Actor::LicenseKey(id)) => format!("The license key {id}"),
        None => actor.to_string(),
    }
}

/// An expiry as the portal's forms mean it.
fn expiry(v: &Value) -> String {
    match v.as_i64() {
        Some(t) => format!(
            "expiring at the end of {} (UTC)",
            &crate::clock::rfc3339(t)[..10]
        ),
        None => "no expiry".into(),
    }
}

/// "1 seat" / "30 seats".
fn seats_words(n: i64) -> String {
    if n == 1 {
        "1 seat".into()
    } else {
        format!("{n} seats")
    }
}

fn text<'a>(d: &'a Value, key: &str) -> &'a str {
    d[key].as_str().unwrap_or("?")
}

/// What every sentence draws on, read once from the entry.
struct Said<'a> {
    d: &'a Value,
    actor: String,
    person: String,
    /// Whether the entry is about a person (a key device's entries are not).
    has_person: bool,
    subject: &'a str,
    /// " (REASON)", or nothing.
    because: String,
    seats: i64,
}

/// The entry as one sentence.
pub fn sentence(e: &AuditEntry, user: Option<&str>, names: &Names) -> String {
    let d: Value = e
        .detail
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null);
    let reason = e.reason.as_deref().unwrap_or("");
    let said = Said {
        d: &d,
        actor: who(&e.actor, names),
        person: user
            .map(str::to_string)
            .or_else(|| e.user_id.clone())
            .unwrap_or_else(|| "someone".into()),
        has_person: e.user_id.is_some(),
        subject: e.subject.as_deref().unwrap_or(""),
        because: if reason.is_empty() {
            String::new()
        } else {
            format!(" ({reason})")
        },
        seats: d["seats"].as_i64().unwrap_or(0),
    };
    let action = e.action.as_str();
    seat_and_device(action, &said, names)
        .or_else(|| licensing(action, &said, names))
        .or_else(|| access(action, &said, names))
        .or_else(|| deployment(action, &said, names))
        .or_else(|| policies(action, &said))
        .or_else(|| images(action, &said))
        .unwrap_or_else(|| format!("{}: {action} {}{}.", said.actor, said.subject, said.because))
}

/// Seats and devices, as the licensing engine and the Macs change them.
fn seat_and_device(action: &str, c: &Said<'_>, names: &Names) -> Option<String> {
    let (d, actor, person, subject, because) = (
        c.d,
        c.actor.as_str(),
        c.person.as_str(),
        c.subject,
        c.because.as_str(),
    );
    Some(match action {
        "seat_granted" => format!("{person} received a seat from {}.", names.pool(subject)),
        "seat_pending" => format!(
            "{person} waits for a seat from {}{because}.",
            names.pool(subject)
        ),
        "seat_revoked" => format!(
            "{person} lost the seat from {}{because}.",
            names.pool(subject)
        ),
        "pending_cleared" => format!(
            "{person} no longer waits for a seat from {}.",
            names.pool(subject)
        ),
        "device_activated" if !c.has_person => format!(
            "{actor} activated {} ({}) with a per-device seat.",
            text(d, "name"),
            text(d, "os")
        ),
        "device_activated" => format!(
            "{person} activated {} ({}).",
            text(d, "name"),
            text(d, "os")
        ),
        "device_moved_to_user" => format!(
            "{person} activated the device {subject} with single sign-on: it left the license key {} and its per-device seat was freed.",
            text(d, "key")
        ),
        "device_revoked" => format!("{actor} revoked the device {subject} of {person}{because}."),
        "device_released" if !c.has_person => {
            format!(
                "{actor} released the key device {subject}{because}; its per-device seat was freed."
            )
        }
        "device_released" => format!("{actor} released the device {subject} of {person}{because}."),
        "renewal_refused" if !c.has_person => {
            format!("The key device {subject} was refused a renewal{because}.")
        }
        "renewal_refused" => {
            format!("The device {subject} of {person} was refused a renewal{because}.")
        }
        "activation_refused" if !c.has_person && subject.starts_with("key-") => format!(
            "An activation of {} with the license key {subject} was refused{because}.",
            text(d, "name")
        ),
        "activation_refused" => format!("An activation for {person} was refused{because}."),
        _ => return None,
    })
}

/// License keys, invitations, notifications and profiles: deploying to a fleet.
fn deployment(action: &str, c: &Said<'_>, names: &Names) -> Option<String> {
    let (d, actor, subject) = (c.d, c.actor.as_str(), c.subject);
    Some(match action {
        "invitations_sent" => format!(
            "{actor} invited {} people ({}){}.",
            d["invited"],
            if d["method"] == "key" {
                "license key"
            } else {
                "single sign-on"
            },
            match d["refused"].as_i64() {
                Some(n) if n > 0 => format!("; {n} address(es) refused"),
                _ => String::new(),
            }
        ),
        "notifications_changed" => format!(
            "{actor} changed the admin notifications: {}.",
            d.as_object()
                .map(|o| o
                    .iter()
                    .map(|(k, v)| format!(
                        "{k} {}{}",
                        if v["on"] == true { "on" } else { "off" },
                        match v["to"].as_str() {
                            Some(to) if !to.is_empty() => format!(" to {to}"),
                            _ => String::new(),
                        }
                    ))
                    .collect::<Vec<_>>()
                    .join("; "))
                .unwrap_or_default()
        ),
        "invitation_template_changed" => format!("{actor} changed the invitation email template."),
        "test_email_queued" => format!("{actor} queued a test email to {}.", text(d, "to")),
        "profile_with_key_exported" => format!(
            "{actor} exported a configuration profile holding the license key {} ({}).",
            text(d, "key"),
            text(d, "version")
        ),
        "invitation_resent" => format!(
            "{actor} sent the invitation {subject} to {} again, with a new link.",
            text(d, "email")
        ),
        "invitation_revoked" => format!(
            "{actor} revoked the invitation {subject} to {}.",
            text(d, "email")
        ),
        "license_key_created" => format!(
            "{actor} created the license key {subject} ({}, …{}) for {} devices of {}.",
            text(d, "name"),
            text(d, "hint"),
            d["devices"],
            names.pool(d["sublicense"].as_str().unwrap_or(text(d, "license")))
        ),
        "license_key_changed" if d.get("changes").is_some() => {
            format!("{actor} changed the license key {subject}: {}.", changes(d))
        }
        "license_key_changed" => format!(
            "{actor} changed the license key {subject}: {}, at most {} devices.",
            text(d, "name"),
            d["devices"]
        ),
        "license_key_rotated" => format!(
            "{actor} rotated the license key {subject}: …{} replaces …{}; its devices keep their seats.",
            text(d, "hint"),
            text(d, "old_hint")
        ),
        "license_key_revoked" => format!(
            "{actor} revoked the license key {subject} and its {} device(s).",
            d["devices"].as_array().map_or(0, Vec::len)
        ),
        _ => return None,
    })
}

/// A detail's `changes` list, joined: "lock_on_suspend: true → false; …".
fn changes(d: &Value) -> String {
    d["changes"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

/// Golden images: versions stored and deleted, group assignments.
fn images(action: &str, c: &Said<'_>) -> Option<String> {
    let (d, actor) = (c.d, c.actor.as_str());
    let name = text(d, "name");
    let version = text(d, "version");
    Some(match action {
        "image_version_added" => format!("{actor} added version {version} of the image {name:?}."),
        "image_version_deleted" => {
            format!("{actor} deleted version {version} of the image {name:?}.")
        }
        "image_assigned" if d["version"].is_null() => format!(
            "{actor} assigned the image {name:?} (its latest version) to group {:?}.",
            text(d, "group")
        ),
        "image_assigned" => format!(
            "{actor} assigned the image {name:?} pinned at version {version} to group {:?}.",
            text(d, "group")
        ),
        "package_added" => format!(
            "{actor} added app version {version} to the {} update branch.",
            text(d, "branch")
        ),
        "package_retired" => format!("{actor} retired app version {version}."),
        "image_unassigned" => format!(
            "{actor} removed the image {name:?} from group {:?}.",
            text(d, "group")
        ),
        _ => return None,
    })
}

/// Client policies and their assignments, with what changed.
fn policies(action: &str, c: &Said<'_>) -> Option<String> {
    let (d, actor) = (c.d, c.actor.as_str());
    let name = text(d, "name");
    let what = changes(d);
    Some(match action {
        "policy_created" if what.is_empty() => {
            format!("{actor} created the policy {name:?}, setting nothing yet.")
        }
        "policy_created" => format!("{actor} created the policy {name:?}: {what}."),
        "policy_changed" => format!("{actor} changed the policy {name:?}: {what}."),
        "policy_deleted" => format!("{actor} deleted the policy {name:?}."),
        "policy_priority_changed" => format!(
            "{actor} gave group {:?} (policy {name:?}) another priority: {what}.",
            text(d, "group")
        ),
        "policy_assigned" => format!(
            "{actor} assigned the policy {name:?} to group {:?} with priority {}.",
            text(d, "group"),
            d["priority"]
        ),
        "policy_unassigned" => format!(
            "{actor} removed the policy {name:?} from group {:?}.",
            text(d, "group")
        ),
        "policy_default_changed" => format!("{actor} changed the {what}."),
        _ => return None,
    })
}

/// Licenses, pools, mappings and the vendor's files, as admins change them.
fn licensing(action: &str, c: &Said<'_>, names: &Names) -> Option<String> {
    let (d, actor, subject, seats) = (c.d, c.actor.as_str(), c.subject, c.seats);
    Some(match action {
        "license_added" => format!(
            "{actor} registered {}: {}, {}.",
            text(d, "product"),
            seats_words(seats),
            expiry(&d["expires_at"])
        ),
        "license_changed" if d.get("max_offline_secs").is_some() => {
            match d["max_offline_secs"].as_i64() {
                Some(s) => format!(
                    "{actor} limited leases of {} to {} days offline.",
                    names.license(subject),
                    s / 86_400
                ),
                None => format!(
                    "{actor} set leases of {} back to the default offline windows.",
                    names.license(subject)
                ),
            }
        }
        "license_changed" => format!(
            "{actor} changed {}: {}, {}.",
            names.license(subject),
            seats_words(seats),
            expiry(&d["expires_at"])
        ),
        "sublicense_added" => format!(
            "{actor} added the {} sublicense {} of {}: {}, {}.",
            if d["reserved"].as_bool() == Some(true) {
                "reserved"
            } else {
                "dynamic"
            },
            text(d, "name"),
            names.license(text(d, "license")),
            seats_words(seats),
            expiry(&d["expires_at"])
        ),
        "sublicense_changed" => format!(
            "{actor} changed the sublicense {}: {}, {}.",
            text(d, "name"),
            seats_words(seats),
            expiry(&d["expires_at"])
        ),
        "sublicense_removed" => format!("{actor} removed the sublicense {}.", text(d, "name")),
        "mapping_added" => format!(
            "{actor} mapped the group {}{} to {}.",
            text(d, "group"),
            from(d, names),
            grant(d, names)
        ),
        "mapping_removed" => format!(
            "{actor} removed the mapping of the group {}.",
            text(d, "group")
        ),
        "entitlement_imported" => format!(
            "{actor} imported the vendor entitlement {} serial {} for {}: {} of {} until {} ({}).",
            text(d, "entitlement"),
            d["serial"],
            text(d, "customer"),
            seats_words(seats),
            text(d, "product"),
            d["ends_at"].as_i64().map_or_else(
                || "?".into(),
                |t| crate::clock::rfc3339(t)[..10].to_string()
            ),
            text(d, "how")
        ),
        "usage_report_exported" => format!(
            "{actor} exported the usage report for {}{}.",
            text(d, "month"),
            if d["user_names"].as_bool() == Some(true) {
                ", with user names"
            } else {
                ""
            }
        ),
        _ => return None,
    })
}

/// Who may administer and provision: connections, tokens, break-glass admins.
fn access(action: &str, c: &Said<'_>, names: &Names) -> Option<String> {
    let (d, actor, subject) = (c.d, c.actor.as_str(), c.subject);
    Some(match action {
        "idp_connection_added" => format!(
            "{actor} connected the identity provider {}.",
            text(d, "name")
        ),
        "idp_connection_changed" if d.get("metadata").is_some() => format!(
            "{actor} replaced the metadata of the identity provider {} ({} signing certificate(s)).",
            names.connection(subject),
            d["certificates"]
        ),
        "idp_connection_changed" => format!(
            "{actor} changed the settings of the identity provider {}.",
            names.connection(subject)
        ),
        "idp_connection_removed" => {
            format!("{actor} removed the identity provider {}.", text(d, "name"))
        }
        "scim_token_created" => format!("{actor} created the SCIM token {}.", text(d, "name")),
        "scim_token_revoked" => format!("{actor} revoked a SCIM token ({subject})."),
        "admin_token_created" => {
            format!("{actor} created the admin API token {}.", text(d, "name"))
        }
        "admin_token_revoked" => format!("{actor} revoked an admin API token ({subject})."),
        "local_admin_created" => format!("{actor} created the break-glass admin {subject}."),
        "local_admin_password_changed" => {
            format!("{actor} changed the password of the break-glass admin {subject}.")
        }
        "local_admin_removed" => format!("{actor} removed the break-glass admin {subject}."),
        "admin_login_link_created" => {
            format!("{actor} created a one-time sign-in link for {subject}.")
        }
        _ => return None,
    })
}

/// " from Contoso Okta" for a mapping that names its connection.
fn from(d: &Value, names: &Names) -> String {
    match d["connection"].as_str() {
        Some(id) => format!(" from {}", names.connection(id)),
        None => String::new(),
    }
}

/// What a mapping grants, from its audit detail (older entries kept only a description).
fn grant(d: &Value, names: &Names) -> String {
    match d["grants"].as_str() {
        Some("admins") => "admin access".into(),
        Some("primary") => format!("a seat of {}", names.license(text(d, "license"))),
        Some("sublicense") => format!("a seat from {}", names.pool(text(d, "sublicense"))),
        _ => d["mapping"].as_str().unwrap_or("?").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(actor: &str, action: &str, subject: &str, detail: &str) -> AuditEntry {
        AuditEntry {
            id: 1,
            at: 0,
            actor: actor.into(),
            action: action.into(),
            user_id: Some("8f1c…".into()),
            subject: Some(subject.into()),
            reason: None,
            detail: Some(detail.into()),
        }
    }

    #[test]
    fn entries_read_as_sentences_with_names_and_dates() {
        let mut names = Names::default();
        names
            .licenses
            .insert("lic-1".into(), "Parallels Desktop".into());
        names
            .sublicenses
            .insert("sub-1".into(), "Engineering".into());
        let e = entry(
            "admin:root",
            "license_changed",
            "lic-1",
            r#"{"seats":30,"expires_at":1814399999}"#,
        );
        assert_eq!(
            sentence(&e, None, &names),
            "root changed Parallels Desktop (lic-1): 30 seats, expiring at the end of 2027-06-30 (UTC)."
        );
        let e = entry(
            "admin:cli",
            "mapping_added",
            "map-1",
            r#"{"group":"Eng","connection":null,"grants":"sublicense","license":"lic-1","sublicense":"sub-1"}"#,
        );
        assert_eq!(
            sentence(&e, None, &names),
            "An admin on the command line mapped the group Eng to a seat from the Engineering sublicense."
        );
        let e = entry(
            "system",
            "seat_granted",
            "sub-1",
            "entitled by group mapping",
        );
        assert_eq!(
            sentence(&e, Some("ann@contoso.com"), &names),
            "ann@contoso.com received a seat from the Engineering sublicense."
        );
    }
}
