//! Directory storage: users, groups, memberships and directory events. Plain SQL over one
//! transaction handed in by the caller; the rules (uniqueness answers, relinking, PATCH
//! semantics) live in the SCIM layer.

use rusqlite::types::Value as Sql;
use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::filter_sql::Clause;
use crate::domain::scim::resource::{GroupFields, UserFields};

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: String,
    pub user_name: String,
    pub external_id: Option<String>,
    pub active: bool,
    pub display_name: Option<String>,
    pub resource: String,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// The IdP connection that provisioned the user (None: the unassigned scope).
    pub connection_id: Option<String>,
    /// The primary (else work, else first) email, case-folded.
    pub email_key: Option<String>,
}

#[derive(Debug, Clone)]
pub struct GroupRow {
    pub id: String,
    pub display_name: String,
    pub external_id: Option<String>,
    pub resource: String,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// The IdP connection that provisioned the group (None: the unassigned scope).
    pub connection_id: Option<String>,
}

/// A directory scope: the connection whose users and groups a SCIM token or a sign-in
/// may reach (None: the unassigned scope of SCIM tokens made without a connection).
pub type Scope<'a> = Option<&'a str>;

const USER_COLS: &str = "id, user_name, external_id, active, display_name, resource, version, created_at, updated_at, connection_id, email_key";
const GROUP_COLS: &str =
    "id, display_name, external_id, resource, version, created_at, updated_at, connection_id";

fn user_row(r: &Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: r.get(0)?,
        user_name: r.get(1)?,
        external_id: r.get(2)?,
        active: r.get::<_, i64>(3)? == 1,
        display_name: r.get(4)?,
        resource: r.get(5)?,
        version: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
        connection_id: r.get(9)?,
        email_key: r.get(10)?,
    })
}

fn group_row(r: &Row<'_>) -> rusqlite::Result<GroupRow> {
    Ok(GroupRow {
        id: r.get(0)?,
        display_name: r.get(1)?,
        external_id: r.get(2)?,
        resource: r.get(3)?,
        version: r.get(4)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
        connection_id: r.get(7)?,
    })
}

pub fn user_by_id(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<Option<UserRow>> {
    tx.prepare_cached(&format!("SELECT {USER_COLS} FROM users WHERE id = ?1"))?
        .query_row([id], user_row)
        .optional()
}

pub fn user_by_name_key(tx: &Transaction<'_>, key: &str) -> rusqlite::Result<Option<UserRow>> {
    tx.prepare_cached(&format!(
        "SELECT {USER_COLS} FROM users WHERE user_name_key = ?1"
    ))?
    .query_row([key], user_row)
    .optional()
}

/// Users of one scope with this externalId, oldest first.
pub fn users_by_external_id(
    tx: &Transaction<'_>,
    scope: Scope<'_>,
    external_id: &str,
) -> rusqlite::Result<Vec<UserRow>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {USER_COLS} FROM users WHERE external_id = ?1 AND connection_id IS ?2 ORDER BY rowid"
    ))?;
    let rows = stmt.query_map(params![external_id, scope], user_row)?;
    rows.collect()
}

/// Declares [`EventKind`] with each kind's stored string, once.
macro_rules! event_kinds {
    ($($kind:ident = $text:literal,)*) => {
        /// What a directory event (the licensing layer's input) records.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum EventKind {
            $($kind,)*
        }

        impl EventKind {
            pub const ALL: &[EventKind] = &[$(EventKind::$kind,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventKind::$kind => $text,)*
                }
            }
        }
    };
}

event_kinds! {
    UserCreated = "user_created",
    UserUpdated = "user_updated",
    UserDeactivated = "user_deactivated",
    UserReactivated = "user_reactivated",
    UserDeleted = "user_deleted",
    GroupCreated = "group_created",
    GroupUpdated = "group_updated",
    GroupDeleted = "group_deleted",
    MembersAdded = "members_added",
    MembersRemoved = "members_removed",
}

impl EventKind {
    /// The kind a stored event names (reconciliation reads events back).
    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.iter().copied().find(|k| k.as_str() == s)
    }
}

/// Inserts a user provisioned in `scope`, with its `user_created` event (and
/// `user_deactivated` for an inactive one); `detail` says how it came.
pub fn insert_user(
    tx: &Transaction<'_>,
    scope: Scope<'_>,
    id: &str,
    f: &UserFields,
    resource: &str,
    detail: Option<&str>,
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO users (id, user_name, user_name_key, external_id, active, display_name, email_key, resource, version, created_at, updated_at, connection_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9, ?9, ?10)",
    )?
    .execute(params![id, f.user_name, f.user_name_key, f.external_id, f.active, f.display_name, f.email_key, resource, now, scope])?;
    record_event(tx, EventKind::UserCreated, Some(id), None, detail, now)?;
    if !f.active {
        record_event(tx, EventKind::UserDeactivated, Some(id), None, None, now)?;
    }
    Ok(())
}

/// Replaces a user's resource, with the event `kind` says it was; returns the new version.
pub fn update_user(
    tx: &Transaction<'_>,
    id: &str,
    f: &UserFields,
    resource: &str,
    (kind, detail): (EventKind, Option<&str>),
    now: i64,
) -> rusqlite::Result<i64> {
    let version = tx.prepare_cached(
        "UPDATE users SET user_name = ?2, user_name_key = ?3, external_id = ?4, active = ?5, display_name = ?6,
                email_key = ?7, resource = ?8, version = version + 1, updated_at = ?9
         WHERE id = ?1 RETURNING version",
    )?
    .query_row(params![id, f.user_name, f.user_name_key, f.external_id, f.active, f.display_name, f.email_key, resource, now], |r| r.get(0))?;
    record_event(tx, kind, Some(id), None, detail, now)?;
    Ok(version)
}

/// Deletes a user, with its `user_deleted` event naming the groups it was in.
pub fn delete_user(tx: &Transaction<'_>, id: &str, now: i64) -> rusqlite::Result<bool> {
    let Some(user) = user_by_id(tx, id)? else {
        return Ok(false);
    };
    let groups = groups_of_user(tx, id)?;
    tx.prepare_cached("DELETE FROM users WHERE id = ?1")?
        .execute([id])?;
    let detail = serde_json::json!({"userName": user.user_name, "groups": groups.iter().map(|g| &g.0).collect::<Vec<_>>()});
    record_event(
        tx,
        EventKind::UserDeleted,
        Some(id),
        None,
        Some(&detail.to_string()),
        now,
    )?;
    Ok(true)
}

/// A user's email (primary, else work, else first; else the userName), case-folded.
pub fn email_of(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<Option<String>> {
    tx.prepare_cached("SELECT coalesce(email_key, user_name_key) FROM users WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()
}

/// The groups a user is in, as (id, displayName), by name.
pub fn groups_of_user(
    tx: &Transaction<'_>,
    user_id: &str,
) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = tx.prepare_cached(
        "SELECT g.id, g.display_name FROM group_members gm JOIN groups g ON g.id = gm.group_id
         WHERE gm.user_id = ?1 ORDER BY g.display_name_key",
    )?;
    let rows = stmt.query_map([user_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// One page of a listing and the total number of matches.
pub struct Page<T> {
    pub total: i64,
    pub rows: Vec<T>,
}

/// Ordering for a listing: a sort expression (with its parameters) and direction.
pub struct Order {
    pub expr: String,
    pub params: Vec<Sql>,
    pub descending: bool,
}

/// A listing query: which scope, which filter, which order, which page.
pub struct Listing<'a> {
    pub scope: Scope<'a>,
    pub filter: Option<&'a Clause>,
    pub order: Option<&'a Order>,
    pub offset: i64,
    pub limit: i64,
}

pub fn list_users(tx: &Transaction<'_>, q: &Listing<'_>) -> rusqlite::Result<Page<UserRow>> {
    list(tx, "users", USER_COLS, q, user_row)
}

pub fn list_groups(tx: &Transaction<'_>, q: &Listing<'_>) -> rusqlite::Result<Page<GroupRow>> {
    list(tx, "groups", GROUP_COLS, q, group_row)
}

fn list<T>(
    tx: &Transaction<'_>,
    table: &str,
    cols: &str,
    q: &Listing<'_>,
    map: fn(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Page<T>> {
    let (order, offset, limit) = (q.order, q.offset, q.limit);
    let scope = Sql::from(q.scope.map(str::to_string));
    let (where_sql, mut params): (String, Vec<Sql>) = match q.filter {
        Some(c) => {
            let mut params = vec![scope];
            params.extend(c.params.iter().cloned());
            (
                format!(" WHERE {table}.connection_id IS ? AND ({})", c.sql),
                params,
            )
        }
        None => (format!(" WHERE {table}.connection_id IS ?"), vec![scope]),
    };
    let count = |params: &[Sql]| -> rusqlite::Result<i64> {
        tx.prepare_cached(&format!("SELECT count(*) FROM {table}{where_sql}"))?
            .query_row(rusqlite::params_from_iter(params.iter()), |r| r.get(0))
    };
    if limit == 0 {
        return Ok(Page {
            total: count(&params)?,
            rows: Vec::new(),
        });
    }
    let filter_params = params.clone();
    // Stable order: the requested sort, then insertion order.
    let order_sql = match order {
        Some(o) => {
            params.extend(o.params.iter().cloned());
            let dir = if o.descending { "DESC" } else { "ASC" };
            format!(" ORDER BY {} {dir}, {table}.rowid", o.expr)
        }
        None => format!(" ORDER BY {table}.rowid"),
    };
    params.push(Sql::Integer(limit));
    params.push(Sql::Integer(offset));
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {cols} FROM {table}{where_sql}{order_sql} LIMIT ? OFFSET ?"
    ))?;
    let rows: Vec<T> = stmt
        .query_map(rusqlite::params_from_iter(params.iter()), map)?
        .collect::<rusqlite::Result<_>>()?;
    // A page that is not full, and not past the end, already tells the total: this spares
    // the count query for the match-by-filter lookups IdPs send for every user.
    let total = if (rows.len() as i64) < limit && (!rows.is_empty() || offset == 0) {
        offset + rows.len() as i64
    } else {
        count(&filter_params)?
    };
    Ok(Page { total, rows })
}

pub fn group_by_id(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<Option<GroupRow>> {
    tx.prepare_cached(&format!("SELECT {GROUP_COLS} FROM groups WHERE id = ?1"))?
        .query_row([id], group_row)
        .optional()
}

/// Inserts a group provisioned in `scope`, with its `group_created` event.
pub fn insert_group(
    tx: &Transaction<'_>,
    scope: Scope<'_>,
    id: &str,
    f: &GroupFields,
    resource: &str,
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO groups (id, display_name, display_name_key, external_id, resource, version, created_at, updated_at, connection_id)
         VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?6, ?7)",
    )?
    .execute(params![id, f.display_name, f.display_name_key, f.external_id, resource, now, scope])?;
    let detail = serde_json::json!({"displayName": f.display_name}).to_string();
    record_event(
        tx,
        EventKind::GroupCreated,
        None,
        Some(id),
        Some(&detail),
        now,
    )?;
    Ok(())
}

/// Replaces a group's attributes, with its `group_updated` event; returns the new version.
pub fn update_group(
    tx: &Transaction<'_>,
    id: &str,
    f: &GroupFields,
    resource: &str,
    now: i64,
) -> rusqlite::Result<i64> {
    let version = tx.prepare_cached(
        "UPDATE groups SET display_name = ?2, display_name_key = ?3, external_id = ?4, resource = ?5,
                version = version + 1, updated_at = ?6
         WHERE id = ?1 RETURNING version",
    )?
    .query_row(params![id, f.display_name, f.display_name_key, f.external_id, resource, now], |r| r.get(0))?;
    let detail = serde_json::json!({"displayName": f.display_name}).to_string();
    record_event(
        tx,
        EventKind::GroupUpdated,
        None,
        Some(id),
        Some(&detail),
        now,
    )?;
    Ok(version)
}

/// Bumps a group's version after a membership change.
pub fn touch_group(tx: &Transaction<'_>, id: &str, now: i64) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "UPDATE groups SET version = version + 1, updated_at = ?2 WHERE id = ?1 RETURNING version",
    )?
    .query_row(params![id, now], |r| r.get(0))
}

/// Deletes a group, with its `group_deleted` event naming its members.
pub fn delete_group(tx: &Transaction<'_>, id: &str, now: i64) -> rusqlite::Result<bool> {
    let Some(group) = group_by_id(tx, id)? else {
        return Ok(false);
    };
    let members = member_ids(tx, id)?;
    tx.prepare_cached("DELETE FROM groups WHERE id = ?1")?
        .execute([id])?;
    let detail = serde_json::json!({"displayName": group.display_name, "users": members});
    record_event(
        tx,
        EventKind::GroupDeleted,
        None,
        Some(id),
        Some(&detail.to_string()),
        now,
    )?;
    Ok(true)
}

/// Members as (user id, displayName or userName), in userName order.
pub fn members(tx: &Transaction<'_>, group_id: &str) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = tx.prepare_cached(
        "SELECT u.id, coalesce(u.display_name, u.user_name) FROM group_members gm JOIN users u ON u.id = gm.user_id
         WHERE gm.group_id = ?1 ORDER BY u.user_name_key",
    )?;
    let rows = stmt.query_map([group_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

pub fn member_ids(tx: &Transaction<'_>, group_id: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = tx.prepare_cached("SELECT user_id FROM group_members WHERE group_id = ?1")?;
    let rows = stmt.query_map([group_id], |r| r.get(0))?;
    rows.collect()
}

/// The ids among `ids` that are not users of `scope` (another scope's users are unknown:
/// a group only ever holds users of its own connection).
pub fn unknown_users(
    tx: &Transaction<'_>,
    scope: Scope<'_>,
    ids: &[String],
) -> rusqlite::Result<Vec<String>> {
    let mut stmt =
        tx.prepare_cached("SELECT 1 FROM users WHERE id = ?1 AND connection_id IS ?2")?;
    let mut unknown = Vec::new();
    for id in ids {
        if !stmt.exists(params![id, scope])? {
            unknown.push(id.clone());
        }
    }
    Ok(unknown)
}

/// Adds members (already present ones are left alone); returns the ids actually added.
pub fn add_members(
    tx: &Transaction<'_>,
    group_id: &str,
    ids: &[String],
) -> rusqlite::Result<Vec<String>> {
    let mut stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?1, ?2)",
    )?;
    let mut added = Vec::new();
    for id in ids {
        if stmt.execute([group_id, id.as_str()])? > 0 {
            added.push(id.clone());
        }
    }
    Ok(added)
}

/// Removes members (absent ones are ignored); returns the ids actually removed.
pub fn remove_members(
    tx: &Transaction<'_>,
    group_id: &str,
    ids: &[String],
) -> rusqlite::Result<Vec<String>> {
    let mut stmt =
        tx.prepare_cached("DELETE FROM group_members WHERE group_id = ?1 AND user_id = ?2")?;
    let mut removed = Vec::new();
    for id in ids {
        if stmt.execute([group_id, id.as_str()])? > 0 {
            removed.push(id.clone());
        }
    }
    Ok(removed)
}

/// One recorded SCIM request.
#[derive(Debug, Clone)]
pub struct ScimRequest {
    pub at: i64,
    pub client: String,
    pub method: String,
    pub path: String,
    pub status: i64,
    pub scim_type: Option<String>,
    pub detail: Option<String>,
    pub request: Option<String>,
}

/// The newest recorded SCIM requests with at least `min_status`.
pub fn recent_scim_requests(
    tx: &Transaction<'_>,
    min_status: i64,
    limit: u32,
) -> rusqlite::Result<Vec<ScimRequest>> {
    let mut stmt = tx.prepare(
        "SELECT at, client, method, path, status, scim_type, detail, request FROM scim_requests
         WHERE status >= ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![min_status, limit], |r| {
        Ok(ScimRequest {
            at: r.get(0)?,
            client: r.get(1)?,
            method: r.get(2)?,
            path: r.get(3)?,
            status: r.get(4)?,
            scim_type: r.get(5)?,
            detail: r.get(6)?,
            request: r.get(7)?,
        })
    })?;
    rows.collect()
}

/// Records the net membership change of a group (`members_added`, `members_removed`),
/// after [`add_members`] and [`remove_members`] made it.
pub fn record_members_change<T: serde::Serialize>(
    tx: &Transaction<'_>,
    group_id: &str,
    added: &[T],
    removed: &[T],
    now: i64,
) -> rusqlite::Result<()> {
    for (kind, users) in [
        (EventKind::MembersAdded, added),
        (EventKind::MembersRemoved, removed),
    ] {
        if !users.is_empty() {
            let detail = serde_json::json!({ "users": users }).to_string();
            record_event(tx, kind, None, Some(group_id), Some(&detail), now)?;
        }
    }
    Ok(())
}

/// Records a directory change for the licensing layer, in the caller's transaction. Only
/// the writes above call it, so no change goes without its event.
fn record_event(
    tx: &Transaction<'_>,
    kind: EventKind,
    user_id: Option<&str>,
    group_id: Option<&str>,
    detail: Option<&str>,
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT INTO directory_events (at, kind, user_id, group_id, detail) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![now, kind.as_str(), user_id, group_id, detail])?;
    Ok(())
}

/// The user whose primary email is `email_key` (case-folded), oldest first if several.
pub fn user_by_email_key(
    tx: &Transaction<'_>,
    email_key: &str,
) -> rusqlite::Result<Option<UserRow>> {
    tx.prepare_cached(&format!(
        "SELECT {USER_COLS} FROM users WHERE email_key = ?1 ORDER BY rowid LIMIT 1"
    ))?
    .query_row([email_key], user_row)
    .optional()
}

/// The users a sign-in through `connection` may resolve to by a key (`user_name_key` or
/// `email_key`): the connection's own users first, then the unassigned scope's, oldest
/// first.
pub fn sign_in_candidates(
    tx: &Transaction<'_>,
    connection: &str,
    column: SignInKey,
    key: &str,
) -> rusqlite::Result<Vec<UserRow>> {
    let column = match column {
        SignInKey::UserName => "user_name_key",
        SignInKey::Email => "email_key",
    };
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {USER_COLS} FROM users WHERE {column} = ?1 AND (connection_id = ?2 OR connection_id IS NULL)
         ORDER BY connection_id IS NULL, rowid"
    ))?;
    let rows = stmt.query_map(params![key, connection], user_row)?;
    rows.collect()
}

/// Deletes every user and group of a connection's scope, each with its directory event
/// (for the licensing layer); returns how many users and groups.
pub fn delete_scope(
    tx: &Transaction<'_>,
    connection: &str,
    now: i64,
) -> rusqlite::Result<(usize, usize)> {
    let ids = |sql: &str| -> rusqlite::Result<Vec<(String, String)>> {
        let mut stmt = tx.prepare(sql)?;
        let rows = stmt.query_map([connection], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect()
    };
    let groups = ids("SELECT id, display_name FROM groups WHERE connection_id = ?1")?;
    for (id, _) in &groups {
        delete_group(tx, id, now)?;
    }
    let users = ids("SELECT id, user_name FROM users WHERE connection_id = ?1")?;
    for (id, _) in &users {
        delete_user(tx, id, now)?;
    }
    Ok((users.len(), groups.len()))
}

/// The scopes that hold a group with this displayName or externalId (case-folded).
pub fn group_scopes(tx: &Transaction<'_>, key: &str) -> rusqlite::Result<Vec<Option<String>>> {
    let mut stmt = tx.prepare_cached(
        "SELECT DISTINCT connection_id FROM groups WHERE display_name_key = ?1 OR lower(external_id) = ?1",
    )?;
    let rows = stmt.query_map([key], |r| r.get(0))?;
    rows.collect()
}

/// Which key [`sign_in_candidates`] looks users up by.
#[derive(Debug, Clone, Copy)]
pub enum SignInKey {
    UserName,
    Email,
}

/// The group of `scope` with this externalId, if any (oldest first).
pub fn group_by_external_id(
    tx: &Transaction<'_>,
    scope: Scope<'_>,
    external_id: &str,
) -> rusqlite::Result<Option<GroupRow>> {
    tx.prepare_cached(&format!(
        "SELECT {GROUP_COLS} FROM groups WHERE external_id = ?1 AND connection_id IS ?2 ORDER BY rowid LIMIT 1"
    ))?
    .query_row(params![external_id, scope], group_row)
    .optional()
}

/// The user's groups whose externalId starts with `prefix`, as (id, externalId).
pub fn groups_of_user_with_external_prefix(
    tx: &Transaction<'_>,
    user_id: &str,
    prefix: &str,
) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = tx.prepare_cached(
        "SELECT g.id, g.external_id FROM group_members gm JOIN groups g ON g.id = gm.group_id
         WHERE gm.user_id = ?1 AND substr(g.external_id, 1, length(?2)) = ?2",
    )?;
    let rows = stmt.query_map(params![user_id, prefix], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// One SCIM request as the request log stores it.
#[derive(Debug, Clone)]
pub struct ScimRequestEntry {
    pub at: i64,
    pub token_id: Option<i64>,
    pub client: String,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub scim_type: Option<String>,
    pub detail: Option<String>,
    pub request: Option<String>,
    pub duration_us: i64,
}

pub fn append_scim_requests(
    tx: &Transaction<'_>,
    entries: &[ScimRequestEntry],
) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO scim_requests (at, token_id, client, method, path, status, scim_type, detail, request, duration_us)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for e in entries {
        stmt.execute(params![
            e.at,
            e.token_id,
            e.client,
            e.method,
            e.path,
            e.status,
            e.scim_type,
            e.detail,
            e.request,
            e.duration_us
        ])?;
    }
    Ok(())
}

/// Keeps the newest `keep_rows` logged requests.
pub fn prune_scim_requests(tx: &Transaction<'_>, keep_rows: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "DELETE FROM scim_requests WHERE id <= (SELECT max(id) FROM scim_requests) - ?1",
    )?
    .execute([keep_rows])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_kinds_have_one_unique_string_each() {
        let mut seen = std::collections::HashSet::new();
        for &kind in EventKind::ALL {
            assert!(seen.insert(kind.as_str()), "{kind:?} twice");
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("user_renamed"), None);
    }
}
