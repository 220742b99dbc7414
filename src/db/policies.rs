//! Client policies, their group assignments, the default policy and license keys' policies.

use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::admin::fold;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRow {
    pub id: String,
    pub name: String,
    pub description: String,
    /// The settings it sets, as JSON (checked by `domain::policy` before storing).
    pub settings: String,
    pub is_default: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentRow {
    pub id: String,
    pub policy_id: String,
    pub policy_name: String,
    pub group_ref: String,
    pub connection_id: Option<String>,
    pub priority: i64,
    pub created_at: i64,
}

/// Where the default policy sorts among a user's layers: after every assignment.
pub const DEFAULT_PRIORITY: i64 = i64::MAX;

/// A policy that applies to a user through one of their groups (or the default policy,
/// at `DEFAULT_PRIORITY`).
pub struct UserLayer {
    pub priority: i64,
    pub group_ref: String,
    pub policy: PolicyRow,
}

const POLICY: &str =
    "SELECT id, name, description, settings, is_default, created_at, updated_at FROM policies";

fn policy_row(r: &Row<'_>) -> rusqlite::Result<PolicyRow> {
    Ok(PolicyRow {
        id: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        settings: r.get(3)?,
        is_default: r.get::<_, i64>(4)? == 1,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
    })
}

pub fn list(tx: &Transaction<'_>) -> rusqlite::Result<Vec<PolicyRow>> {
    let mut stmt = tx.prepare_cached(&format!("{POLICY} ORDER BY name_key"))?;
    let rows = stmt.query_map([], policy_row)?;
    rows.collect()
}

pub fn by_id(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<Option<PolicyRow>> {
    tx.prepare_cached(&format!("{POLICY} WHERE id = ?1"))?
        .query_row([id], policy_row)
        .optional()
}

pub fn by_name(tx: &Transaction<'_>, name: &str) -> rusqlite::Result<Option<PolicyRow>> {
    tx.prepare_cached(&format!("{POLICY} WHERE name_key = ?1"))?
        .query_row([fold(name)], policy_row)
        .optional()
}

pub fn default_policy(tx: &Transaction<'_>) -> rusqlite::Result<Option<PolicyRow>> {
    tx.prepare_cached(&format!("{POLICY} WHERE is_default = 1"))?
        .query_row([], policy_row)
        .optional()
}

/// Inserts a policy; false when its name is taken.
pub fn insert(tx: &Transaction<'_>, p: &PolicyRow) -> rusqlite::Result<bool> {
    let n = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO policies (id, name, name_key, description, settings, is_default, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?6)",
        )?
        .execute(params![p.id, p.name, fold(&p.name), p.description, p.settings, p.created_at])?;
    Ok(n == 1)
}

/// Changes a policy's name, description and settings; false when the name is taken.
pub fn update(tx: &Transaction<'_>, p: &PolicyRow, now: i64) -> rusqlite::Result<bool> {
    let taken: Option<String> = tx
        .prepare_cached("SELECT id FROM policies WHERE name_key = ?1 AND id <> ?2")?
        .query_row(params![fold(&p.name), p.id], |r| r.get(0))
        .optional()?;
    if taken.is_some() {
        return Ok(false);
    }
    tx.prepare_cached(
        "UPDATE policies SET name = ?2, name_key = ?3, description = ?4, settings = ?5, updated_at = ?6
         WHERE id = ?1",
    )?
    .execute(params![p.id, p.name, fold(&p.name), p.description, p.settings, now])?;
    Ok(true)
}

pub fn delete(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM policies WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Makes `id` the default policy (or none).
pub fn set_default(tx: &Transaction<'_>, id: Option<&str>) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE policies SET is_default = 0 WHERE is_default = 1")?
        .execute([])?;
    if let Some(id) = id {
        tx.prepare_cached("UPDATE policies SET is_default = 1 WHERE id = ?1")?
            .execute([id])?;
    }
    Ok(())
}

const ASSIGNMENT: &str =
    "SELECT a.id, a.policy_id, p.name, a.group_ref, a.connection_id, a.priority, a.created_at
     FROM policy_assignments a JOIN policies p ON p.id = a.policy_id";

fn assignment_row(r: &Row<'_>) -> rusqlite::Result<AssignmentRow> {
    Ok(AssignmentRow {
        id: r.get(0)?,
        policy_id: r.get(1)?,
        policy_name: r.get(2)?,
        group_ref: r.get(3)?,
        connection_id: r.get(4)?,
        priority: r.get(5)?,
        created_at: r.get(6)?,
    })
}

/// Every assignment, highest priority (lowest number) first.
pub fn assignments(tx: &Transaction<'_>) -> rusqlite::Result<Vec<AssignmentRow>> {
    let mut stmt = tx.prepare_cached(&format!("{ASSIGNMENT} ORDER BY a.priority"))?;
    let rows = stmt.query_map([], assignment_row)?;
    rows.collect()
}

pub fn assignment(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<Option<AssignmentRow>> {
    tx.prepare_cached(&format!("{ASSIGNMENT} WHERE a.id = ?1"))?
        .query_row([id], assignment_row)
        .optional()
}

/// The assignment of a group in a scope, if it has one.
pub fn assignment_of_group(
    tx: &Transaction<'_>,
    group_ref: &str,
    connection: Option<&str>,
) -> rusqlite::Result<Option<AssignmentRow>> {
    tx.prepare_cached(&format!(
        "{ASSIGNMENT} WHERE a.group_key = ?1 AND a.connection_id IS ?2"
    ))?
    .query_row(params![fold(group_ref), connection], assignment_row)
    .optional()
}

pub fn assignment_with_priority(
    tx: &Transaction<'_>,
    priority: i64,
) -> rusqlite::Result<Option<AssignmentRow>> {
    tx.prepare_cached(&format!("{ASSIGNMENT} WHERE a.priority = ?1"))?
        .query_row([priority], assignment_row)
        .optional()
}

pub fn insert_assignment(tx: &Transaction<'_>, a: &AssignmentRow) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO policy_assignments (id, policy_id, group_ref, group_key, connection_id, priority, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        a.id,
        a.policy_id,
        a.group_ref,
        fold(&a.group_ref),
        a.connection_id,
        a.priority,
        a.created_at
    ])?;
    Ok(())
}

pub fn set_priority(tx: &Transaction<'_>, id: &str, priority: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE policy_assignments SET priority = ?2 WHERE id = ?1")?
        .execute(params![id, priority])?;
    Ok(())
}

pub fn delete_assignment(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM policy_assignments WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// The policies a user's directory groups carry (matched by displayName or externalId
/// within the group's connection, as seat mappings are), highest priority first, and
/// last the default policy (priority `DEFAULT_PRIORITY`, no group): one query, as every
/// renewal asks.
pub fn layers_of_user(tx: &Transaction<'_>, user_id: &str) -> rusqlite::Result<Vec<UserLayer>> {
    let mut stmt = tx.prepare_cached(
        "SELECT * FROM (
             SELECT DISTINCT a.priority, a.group_ref, p.id, p.name, p.description, p.settings,
                    p.is_default, p.created_at, p.updated_at
             FROM group_members gm
             JOIN groups g ON g.id = gm.group_id
             JOIN policy_assignments a ON a.group_key IN (g.display_name_key, lower(g.external_id))
                  AND a.connection_id IS g.connection_id
             JOIN policies p ON p.id = a.policy_id
             WHERE gm.user_id = ?1
             UNION ALL
             SELECT ?2, '', id, name, description, settings, is_default, created_at, updated_at
             FROM policies WHERE is_default = 1)
         ORDER BY 1",
    )?;
    let rows = stmt.query_map(params![user_id, DEFAULT_PRIORITY], |r| {
        Ok(UserLayer {
            priority: r.get(0)?,
            group_ref: r.get(1)?,
            policy: PolicyRow {
                id: r.get(2)?,
                name: r.get(3)?,
                description: r.get(4)?,
                settings: r.get(5)?,
                is_default: r.get::<_, i64>(6)? == 1,
                created_at: r.get(7)?,
                updated_at: r.get(8)?,
            },
        })
    })?;
    rows.collect()
}

/// The policy a license key gives its devices, if any.
pub fn key_policy(tx: &Transaction<'_>, key_id: &str) -> rusqlite::Result<Option<PolicyRow>> {
    tx.prepare_cached(&format!(
        "{POLICY} WHERE id = (SELECT policy_id FROM license_keys WHERE id = ?1)"
    ))?
    .query_row([key_id], policy_row)
    .optional()
}

pub fn set_key_policy(
    tx: &Transaction<'_>,
    key_id: &str,
    policy_id: Option<&str>,
) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE license_keys SET policy_id = ?2 WHERE id = ?1")?
        .execute(params![key_id, policy_id])?;
    Ok(())
}

/// How many license keys name a policy.
pub fn keys_with_policy(tx: &Transaction<'_>, policy_id: &str) -> rusqlite::Result<i64> {
    tx.prepare_cached("SELECT count(*) FROM license_keys WHERE policy_id = ?1")?
        .query_row([policy_id], |r| r.get(0))
}
