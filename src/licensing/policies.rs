//! Client policies: creating, changing and assigning them (validated and audited with a
//! diff; the portal, the CLI and the admin API all come here), a device's effective
//! policy, and its signed delivery (`GET /api/v1/policy`).

use rusqlite::Transaction;
use serde_json::{Value, json};

use crate::audit::{Actor, AuditAction};
use crate::config::LeaseConfig;
use crate::db::Db;
use crate::db::licensing::{self as store, AuditAbout, DeviceRow};
use crate::db::policies::{self as policy_store, AssignmentRow, PolicyRow};
use crate::domain::jose::sign_eddsa;
use crate::domain::policy::{Effective, Layer, LeaseBounds, Settings, Source};
use crate::domain::problem::{Problem, Reason};

use super::manage::ManageError;

pub const POLICY_TYP: &str = "seatgate-policy+jwt";
const MAX_NAME: usize = 100;
const MAX_DESCRIPTION: usize = 500;

/// The server's bounds on the lease settings a policy may ask for.
pub fn bounds(cfg: &LeaseConfig) -> LeaseBounds {
    LeaseBounds {
        max_renewal_secs: cfg.renew_after.as_secs(),
        max_grace_secs: cfg.offline_grace.as_secs(),
    }
}

fn settings_of(p: &PolicyRow) -> Settings {
    // Stored settings were validated when saved; an unreadable row (a hand edit) sets
    // nothing rather than failing every renewal.
    serde_json::from_str::<Value>(&p.settings)
        .ok()
        .and_then(|v| Settings::from_json(&v).ok())
        .unwrap_or_else(|| {
            log::error!("policy {} has unreadable settings; it sets nothing", p.id);
            Settings::default()
        })
}

/// The effective policy of a person (`user_id`) or of a license key's device (`key_id`).
pub fn effective(
    tx: &Transaction<'_>,
    user_id: Option<&str>,
    key_id: Option<&str>,
    bounds: LeaseBounds,
) -> rusqlite::Result<Effective> {
    let mut layers = Vec::new();
    if let Some(user) = user_id {
        // The user's group policies and the default, from one query.
        for l in policy_store::layers_of_user(tx, user)? {
            let source = if l.priority == policy_store::DEFAULT_PRIORITY {
                Source::Default {
                    policy_id: l.policy.id.clone(),
                    policy: l.policy.name.clone(),
                }
            } else {
                Source::Group {
                    policy_id: l.policy.id.clone(),
                    policy: l.policy.name.clone(),
                    group: l.group_ref,
                    priority: l.priority,
                }
            };
            layers.push(Layer {
                settings: settings_of(&l.policy),
                source,
            });
        }
        return Ok(Effective::compute(&layers, bounds));
    }
    if let Some(key) = key_id
        && let Some(p) = policy_store::key_policy(tx, key)?
    {
        layers.push(Layer {
            settings: settings_of(&p),
            source: Source::Key {
                policy_id: p.id,
                policy: p.name,
            },
        });
    }
    if let Some(p) = policy_store::default_policy(tx)? {
        layers.push(Layer {
            settings: settings_of(&p),
            source: Source::Default {
                policy_id: p.id,
                policy: p.name,
            },
        });
    }
    Ok(Effective::compute(&layers, bounds))
}

pub fn effective_of_device(
    tx: &Transaction<'_>,
    device: &DeviceRow,
    bounds: LeaseBounds,
) -> rusqlite::Result<Effective> {
    effective(
        tx,
        device.user_id.as_deref(),
        device.key_id.as_deref(),
        bounds,
    )
}

/// A policy by id or name.
pub fn find(tx: &Transaction<'_>, policy: &str) -> Result<PolicyRow, ManageError> {
    if let Some(p) = policy_store::by_id(tx, policy)? {
        return Ok(p);
    }
    policy_store::by_name(tx, policy)?.ok_or_else(|| ManageError::UnknownPolicy(policy.to_string()))
}

fn checked_settings(v: &Value, bounds: LeaseBounds) -> Result<Settings, ManageError> {
    Settings::from_json(v)
        .and_then(|s| s.validated(bounds))
        .map_err(|e| ManageError::Invalid(e.to_string()))
}

fn checked_text(
    what: &str,
    value: &str,
    max: usize,
    empty_ok: bool,
) -> Result<String, ManageError> {
    let v = value.trim();
    if v.is_empty() && empty_ok {
        return Ok(String::new());
    }
    crate::caps::admin_name(what, v, max)
        .map(str::to_string)
        .map_err(ManageError::Invalid)
}

fn audit(
    tx: &Transaction<'_>,
    actor: &Actor,
    action: AuditAction,
    subject: &str,
    detail: &Value,
    now: i64,
) -> rusqlite::Result<()> {
    store::audit(
        tx,
        now,
        actor,
        action,
        None,
        AuditAbout {
            subject: Some(subject),
            detail: Some(&detail.to_string()),
            ..Default::default()
        },
    )
}

/// What a new policy or a change sets; `None` keeps what is there.
#[derive(Default)]
pub struct PolicyInput<'a> {
    pub name: Option<&'a str>,
    pub description: Option<&'a str>,
    pub settings: Option<&'a Value>,
}

pub fn create(
    db: &Db,
    actor: &Actor,
    bounds: LeaseBounds,
    input: &PolicyInput<'_>,
    now: i64,
) -> Result<PolicyRow, ManageError> {
    let name = checked_text("policy name", input.name.unwrap_or(""), MAX_NAME, false)?;
    let description = checked_text(
        "description",
        input.description.unwrap_or(""),
        MAX_DESCRIPTION,
        true,
    )?;
    let settings = checked_settings(input.settings.unwrap_or(&json!({})), bounds)?;
    let row = PolicyRow {
        id: format!("pol-{}", crate::crypto::random_hex(6)),
        name,
        description,
        settings: settings.to_json().to_string(),
        is_default: false,
        created_at: now,
        updated_at: now,
    };
    db.write(|tx| {
        if !policy_store::insert(tx, &row)? {
            return Err(ManageError::Invalid(format!(
                "there is already a policy named {:?}",
                row.name
            )));
        }
        let changes = crate::domain::policy::diff(&Settings::default(), &settings);
        audit(
            tx,
            actor,
            AuditAction::PolicyCreated,
            &row.id,
            &json!({"name": row.name, "changes": changes}),
            now,
        )?;
        Ok(row.clone())
    })
}

/// Changes a policy; the audit entry lists each setting that changed, before and after.
pub fn change(
    db: &Db,
    actor: &Actor,
    bounds: LeaseBounds,
    policy: &str,
    input: &PolicyInput<'_>,
    now: i64,
) -> Result<PolicyRow, ManageError> {
    let new_settings = input
        .settings
        .map(|v| checked_settings(v, bounds))
        .transpose()?;
    db.write(|tx| {
        let before = find(tx, policy)?;
        let mut after = before.clone();
        if let Some(n) = input.name {
            after.name = checked_text("policy name", n, MAX_NAME, false)?;
        }
        if let Some(d) = input.description {
            after.description = checked_text("description", d, MAX_DESCRIPTION, true)?;
        }
        let old = settings_of(&before);
        let new = new_settings.clone().unwrap_or_else(|| old.clone());
        after.settings = new.to_json().to_string();
        if !policy_store::update(tx, &after, now)? {
            return Err(ManageError::Invalid(format!(
                "there is already a policy named {:?}",
                after.name
            )));
        }
        let mut changes = crate::domain::policy::diff(&old, &new);
        if after.name != before.name {
            changes.insert(0, format!("name: {:?} → {:?}", before.name, after.name));
        }
        if after.description != before.description {
            changes.push("description changed".into());
        }
        if !changes.is_empty() {
            audit(
                tx,
                actor,
                AuditAction::PolicyChanged,
                &after.id,
                &json!({"name": after.name, "changes": changes}),
                now,
            )?;
        }
        Ok(policy_store::by_id(tx, &after.id)?.unwrap_or(after))
    })
}

/// Deletes a policy that no group or key uses any more.
pub fn delete(db: &Db, actor: &Actor, policy: &str, now: i64) -> Result<PolicyRow, ManageError> {
    db.write(|tx| {
        let p = find(tx, policy)?;
        let assigned = policy_store::assignments(tx)?
            .into_iter()
            .filter(|a| a.policy_id == p.id)
            .count();
        if assigned > 0 {
            return Err(ManageError::Invalid(format!(
                "policy {:?} is assigned to {assigned} group(s); remove its assignments first",
                p.name
            )));
        }
        if p.is_default {
            return Err(ManageError::Invalid(format!(
                "policy {:?} is the default policy; choose another default (or none) first",
                p.name
            )));
        }
        let keys = policy_store::keys_with_policy(tx, &p.id)?;
        if keys > 0 {
            return Err(ManageError::Invalid(format!(
                "policy {:?} is the policy of {keys} license key(s); change their policy first",
                p.name
            )));
        }
        policy_store::delete(tx, &p.id)?;
        let changes = crate::domain::policy::diff(&settings_of(&p), &Settings::default());
        audit(
            tx,
            actor,
            AuditAction::PolicyDeleted,
            &p.id,
            &json!({"name": p.name, "was_default": p.is_default, "changes": changes}),
            now,
        )?;
        Ok(p)
    })
}

fn checked_priority(priority: i64) -> Result<i64, ManageError> {
    if (1..=100_000).contains(&priority) {
        Ok(priority)
    } else {
        Err(ManageError::Invalid(
            "the priority must be a whole number from 1 (highest) to 100000".into(),
        ))
    }
}

/// Assigns a policy to a group (as the IdP names it, within a connection's scope).
pub fn assign(
    db: &Db,
    actor: &Actor,
    policy: &str,
    group: &str,
    connection: Option<&str>,
    priority: i64,
    now: i64,
) -> Result<AssignmentRow, ManageError> {
    let group = crate::caps::admin_name("group name", group, 256).map_err(ManageError::Invalid)?;
    let priority = checked_priority(priority)?;
    db.write(|tx| {
        let p = find(tx, policy)?;
        if let Some(c) = connection
            && crate::db::idp::verification_keys(tx, c)?.is_none()
        {
            return Err(ManageError::Invalid(format!(
                "there is no IdP connection {c:?} (the Identity providers page and `seatgate idp list` name them)"
            )));
        }
        // A group that exists only in another scope would never match: say so now.
        let scopes = crate::db::directory::group_scopes(tx, &crate::db::admin::fold(group))?;
        if !scopes.is_empty() && !scopes.iter().any(|s| s.as_deref() == connection) {
            let label = crate::domain::connection::scope_label;
            let found: Vec<String> = scopes.iter().map(|s| label(s.as_deref())).collect();
            return Err(ManageError::Invalid(format!(
                "group {group:?} is in the directory only for {}, not for {}; assign it with that connection, or the policy never applies",
                found.join(", "),
                label(connection)
            )));
        }
        if let Some(a) = policy_store::assignment_of_group(tx, group, connection)? {
            return Err(ManageError::Invalid(format!(
                "group {:?} already has policy {:?}; remove that assignment first",
                a.group_ref, a.policy_name
            )));
        }
        if let Some(a) = policy_store::assignment_with_priority(tx, priority)? {
            return Err(ManageError::Invalid(format!(
                "priority {priority} is taken by group {:?} (policy {:?}); priorities are unique so that precedence is never a tie",
                a.group_ref, a.policy_name
            )));
        }
        let row = AssignmentRow {
            id: format!("pa-{}", crate::crypto::random_hex(6)),
            policy_id: p.id.clone(),
            policy_name: p.name.clone(),
            group_ref: group.to_string(),
            connection_id: connection.map(str::to_string),
            priority,
            created_at: now,
        };
        policy_store::insert_assignment(tx, &row)?;
        audit(
            tx,
            actor,
            AuditAction::PolicyAssigned,
            &p.id,
            &json!({"name": p.name, "group": row.group_ref, "connection": connection, "priority": priority, "assignment": row.id}),
            now,
        )?;
        Ok(row)
    })
}

/// Gives an assignment another priority.
pub fn reprioritize(
    db: &Db,
    actor: &Actor,
    assignment: &str,
    priority: i64,
    now: i64,
) -> Result<AssignmentRow, ManageError> {
    let priority = checked_priority(priority)?;
    db.write(|tx| {
        let a = policy_store::assignment(tx, assignment)?
            .ok_or_else(|| ManageError::UnknownAssignment(assignment.to_string()))?;
        if a.priority == priority {
            return Ok(a);
        }
        if let Some(other) = policy_store::assignment_with_priority(tx, priority)? {
            return Err(ManageError::Invalid(format!(
                "priority {priority} is taken by group {:?} (policy {:?})",
                other.group_ref, other.policy_name
            )));
        }
        policy_store::set_priority(tx, &a.id, priority)?;
        audit(
            tx,
            actor,
            AuditAction::PolicyPriorityChanged,
            &a.policy_id,
            &json!({"name": a.policy_name, "group": a.group_ref, "priority": priority,
                    "changes": [format!("priority: {} → {priority}", a.priority)], "assignment": a.id}),
            now,
        )?;
        Ok(AssignmentRow { priority, ..a })
    })
}

pub fn unassign(
    db: &Db,
    actor: &Actor,
    assignment: &str,
    now: i64,
) -> Result<AssignmentRow, ManageError> {
    db.write(|tx| {
        let a = policy_store::assignment(tx, assignment)?
            .ok_or_else(|| ManageError::UnknownAssignment(assignment.to_string()))?;
        policy_store::delete_assignment(tx, &a.id)?;
        audit(
            tx,
            actor,
            AuditAction::PolicyUnassigned,
            &a.policy_id,
            &json!({"name": a.policy_name, "group": a.group_ref, "priority": a.priority, "assignment": a.id}),
            now,
        )?;
        Ok(a)
    })
}

/// Removes the assignments of a connection's groups (the connection is being removed),
/// each audited; returns how many.
pub fn unassign_connection(
    tx: &Transaction<'_>,
    connection: &str,
    actor: &Actor,
    now: i64,
) -> rusqlite::Result<usize> {
    let mut removed = 0;
    for a in policy_store::assignments(tx)? {
        if a.connection_id.as_deref() == Some(connection) {
            policy_store::delete_assignment(tx, &a.id)?;
            audit(
                tx,
                actor,
                AuditAction::PolicyUnassigned,
                &a.policy_id,
                &json!({"name": a.policy_name, "group": a.group_ref, "priority": a.priority,
                        "assignment": a.id, "connection_removed": connection}),
                now,
            )?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Makes a policy the default (everyone's lowest layer), or clears the default.
pub fn set_default(
    db: &Db,
    actor: &Actor,
    policy: Option<&str>,
    now: i64,
) -> Result<Option<PolicyRow>, ManageError> {
    db.write(|tx| {
        let before = policy_store::default_policy(tx)?;
        let p = policy.map(|p| find(tx, p)).transpose()?;
        policy_store::set_default(tx, p.as_ref().map(|p| p.id.as_str()))?;
        let name = |p: &Option<PolicyRow>| p.as_ref().map(|p| p.name.clone());
        if name(&before) != name(&p) {
            audit(
                tx,
                actor,
                AuditAction::PolicyDefaultChanged,
                p.as_ref().map_or("none", |p| p.id.as_str()),
                &json!({"changes": [format!("default policy: {} → {}",
                    name(&before).map_or("none".into(), |n| format!("{n:?}")),
                    name(&p).map_or("none".into(), |n| format!("{n:?}")))]}),
                now,
            )?;
        }
        Ok(p)
    })
}

/// Sets the policy a license key's devices get (or none: the default policy).
pub fn set_key_policy(
    db: &Db,
    actor: &Actor,
    key: &str,
    policy: Option<&str>,
    now: i64,
) -> Result<(), ManageError> {
    db.write(|tx| {
        let k = super::keys::find_key(tx, key)?;
        let before = policy_store::key_policy(tx, &k.id)?;
        let p = policy.map(|p| find(tx, p)).transpose()?;
        policy_store::set_key_policy(tx, &k.id, p.as_ref().map(|p| p.id.as_str()))?;
        let name = |p: &Option<PolicyRow>| {
            p.as_ref()
                .map_or("none".to_string(), |p| format!("{:?}", p.name))
        };
        if name(&before) != name(&p) {
            audit(
                tx,
                actor,
                AuditAction::LicenseKeyChanged,
                &k.id,
                &json!({"changes": [format!("policy: {} → {}", name(&before), name(&p))]}),
                now,
            )?;
        }
        Ok(())
    })
}

/// The answer to a policy fetch: the signed document, or "unchanged" for a matching ETag.
pub enum Fetched {
    NotModified { etag: String },
    Document { jws: String, etag: String },
}

/// An ETag list from `If-None-Match` matches `etag` (weak comparison, `*` matches all).
fn matches(if_none_match: Option<&str>, etag: &str) -> bool {
    if_none_match.is_some_and(|h| {
        h.split(',')
            .map(str::trim)
            .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
    })
}

/// `GET /api/v1/policy`: the effective policy of the device that signed `proof`, as a
/// JWS signed with the lease key (the same keys as leases, so `/.well-known/jwks.json`
/// verifies it). Refused like a renewal when the device may not renew.
pub fn fetch(
    db: &Db,
    cfg: &LeaseConfig,
    issuer: &str,
    proof: &str,
    if_none_match: Option<&str>,
    now: i64,
) -> Result<Fetched, Problem> {
    let super::leases::Proven {
        device,
        policy,
        key,
    } = super::leases::proven_device(db, cfg, proof, "policy", now)?;
    let hash = policy.hash();
    let etag = format!("\"{hash}\"");
    if matches(if_none_match, &etag) {
        return Ok(Fetched::NotModified { etag });
    }
    let claims = json!({
        "iss": issuer,
        "sub": device.user_id.as_deref().unwrap_or(&device.id),
        "device": device.id,
        "iat": now,
        "policy": hash,
        "schema": crate::domain::policy::SCHEMA_ID,
        "settings": policy.document(),
    });
    let jws = sign_eddsa(&key.pkcs8, &key.kid, POLICY_TYP, &claims)
        .map_err(|_| Problem::new(Reason::Internal, "The policy could not be signed."))?;
    Ok(Fetched::Document { jws, etag })
}

/// The effective policy of a user or a device, with each setting's source, for `explain`
/// and the user page.
pub fn explain_rows(policy: &Effective) -> Vec<(String, String, String)> {
    crate::domain::policy::SETTINGS
        .iter()
        .map(|(name, label)| {
            let value = policy.values.get(*name).cloned().unwrap_or(Value::Null);
            let source = policy
                .sources
                .get(*name)
                .map_or("built-in".into(), Source::describe);
            (
                label.to_string(),
                crate::domain::policy::describe_value(name, &value),
                source,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists_and_star() {
        assert!(matches(Some("\"a\""), "\"a\""));
        assert!(matches(Some("W/\"a\""), "\"a\""));
        assert!(matches(Some("\"b\", \"a\""), "\"a\""));
        assert!(matches(Some("*"), "\"a\""));
        assert!(!matches(Some("\"b\""), "\"a\""));
        assert!(!matches(None, "\"a\""));
    }
}
