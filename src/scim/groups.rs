//! `/scim/v2/Groups`. Membership lives in its own table, so adding or removing hundreds of
//! members touches only those rows; every change is one transaction with its events.

use serde_json::{Map, Value};

use super::service::{Caller, ListQuery, Reply, check_version, new_id};
use super::users::{compile_filter, sort_order};
use crate::db::directory::{self as dir, GroupRow};
use crate::db::filter_sql::Table;
use crate::domain::problem::{Problem, Reason};
use crate::domain::scim::patch::{self, MemberOp};
use crate::domain::scim::resource::{self, Meta};

type Tx<'a> = rusqlite::Transaction<'a>;
/// Members as (user id, display name).
type Members = Vec<(String, String)>;

fn not_found(id: &str) -> Problem {
    Problem::new(Reason::NotFound, format!("There is no group with id {id}."))
}

fn render(scim: &Caller<'_>, row: &GroupRow, members: Option<&[(String, String)]>) -> Value {
    let meta = Meta {
        resource_type: "Group",
        location: scim.location("Groups", &row.id),
        created: row.created_at,
        updated: row.updated_at,
        version: row.version,
    };
    resource::render_group(&row.id, &row.resource, &meta, members, scim.base_url)
}

/// Reads a group for a response, fetching members only if they will be shown.
fn load(
    scim: &Caller<'_>,
    tx: &Tx<'_>,
    id: &str,
    q: Option<&ListQuery>,
) -> Result<(GroupRow, Option<Members>), Problem> {
    let row = scim.group(tx, id)?.ok_or_else(|| not_found(id))?;
    let members = if q.is_some_and(|q| q.omits("members")) {
        None
    } else {
        Some(dir::members(tx, id)?)
    };
    Ok((row, members))
}

fn respond(
    scim: &Caller<'_>,
    row: &GroupRow,
    members: Option<&[(String, String)]>,
    q: Option<&ListQuery>,
) -> Reply {
    let location = scim.location("Groups", &row.id);
    Reply::new(render(scim, row, members), row.version, location, q)
}

/// Refuses member ids that are not users (a 4xx that names them, never a 5xx).
fn require_users(tx: &Tx<'_>, scope: dir::Scope<'_>, ids: &[String]) -> Result<(), Problem> {
    let unknown = dir::unknown_users(tx, scope, ids)?;
    if unknown.is_empty() {
        return Ok(());
    }
    let shown: Vec<&str> = unknown.iter().take(5).map(String::as_str).collect();
    Err(Problem::scim(
        Reason::BadRequest,
        "invalidValue",
        format!(
            "{} member id(s) are not users here (groups cannot be members): {}{}.",
            unknown.len(),
            shown.join(", "),
            if unknown.len() > 5 { ", …" } else { "" }
        ),
    ))
}

/// Applies membership changes in order; returns whether anything changed.
fn apply_members(
    tx: &Tx<'_>,
    scope: dir::Scope<'_>,
    group_id: &str,
    ops: &[MemberOp],
    now: i64,
) -> Result<bool, Problem> {
    let mut added: Vec<String> = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    for op in ops {
        match op {
            MemberOp::Add(ids) => {
                require_users(tx, scope, ids)?;
                added.extend(dir::add_members(tx, group_id, ids)?);
            }
            MemberOp::Remove(ids) => removed.extend(dir::remove_members(tx, group_id, ids)?),
            MemberOp::RemoveAll => {
                let all = dir::member_ids(tx, group_id)?;
                removed.extend(dir::remove_members(tx, group_id, &all)?);
            }
            MemberOp::Replace(ids) => {
                require_users(tx, scope, ids)?;
                let current = dir::member_ids(tx, group_id)?;
                let gone: Vec<String> = current
                    .iter()
                    .filter(|c| !ids.contains(c))
                    .cloned()
                    .collect();
                removed.extend(dir::remove_members(tx, group_id, &gone)?);
                added.extend(dir::add_members(tx, group_id, ids)?);
            }
        }
    }
    // A user both removed and re-added in one request ends up a member: report net change.
    let net_added: Vec<&String> = added.iter().filter(|a| !removed.contains(a)).collect();
    let net_removed: Vec<&String> = removed.iter().filter(|r| !added.contains(r)).collect();
    dir::record_members_change(tx, group_id, &net_added, &net_removed, now)?;
    Ok(!added.is_empty() || !removed.is_empty())
}

/// Writes a group's new attributes and records the change.
fn store_update(
    tx: &Tx<'_>,
    id: &str,
    fields: &resource::GroupFields,
    text: &str,
    now: i64,
) -> Result<(), Problem> {
    dir::update_group(tx, id, fields, text, now)?;
    Ok(())
}

pub fn create(scim: &Caller<'_>, body: Value) -> Result<Reply, Problem> {
    let (stored, fields, members) = resource::prepare_group(body)?;
    let text = stored.to_string();
    let (row, listed) = scim.write(|tx| {
        let now = scim.now;
        let id = new_id();
        dir::insert_group(tx, scim.scope(), &id, &fields, &text, now)?;
        if let Some(ids) = &members {
            apply_members(tx, scim.scope(), &id, &[MemberOp::Add(ids.clone())], now)?;
        }
        load(scim, tx, &id, None)
    })?;
    Ok(respond(scim, &row, listed.as_deref(), None).created())
}

pub fn get(scim: &Caller<'_>, id: &str, q: &ListQuery) -> Result<Reply, Problem> {
    let (row, members) = scim.db.read(|tx| load(scim, tx, id, Some(q)))?;
    Ok(respond(scim, &row, members.as_deref(), Some(q)))
}

/// PUT replaces the group's attributes; its members are replaced when the body lists
/// them and kept when it does not (an omitted list must not silently revoke seats).
pub fn replace(
    scim: &Caller<'_>,
    id: &str,
    required: Option<String>,
    body: Value,
) -> Result<Reply, Problem> {
    let (stored, fields, members) = resource::prepare_group(body)?;
    let text = stored.to_string();
    let (row, listed) = scim.write(|tx| {
        let before = scim.group(tx, id)?.ok_or_else(|| not_found(id))?;
        check_version(&required, before.version)?;
        let now = scim.now;
        store_update(tx, id, &fields, &text, now)?;
        if let Some(ids) = members {
            apply_members(tx, scim.scope(), id, &[MemberOp::Replace(ids)], now)?;
        }
        load(scim, tx, id, None)
    })?;
    Ok(respond(scim, &row, listed.as_deref(), None))
}

/// PATCH answers 204 (what IdPs expect from group PATCHes, fast) unless the client asked
/// for attributes back.
pub fn patch(
    scim: &Caller<'_>,
    id: &str,
    required: Option<String>,
    body: Value,
    q: &ListQuery,
) -> Result<Option<Reply>, Problem> {
    let ops = patch::parse_ops(&body)?;
    let wants_body = !q.attributes.is_empty() || !q.excluded.is_empty();
    let result = scim.write(|tx| {
        let before = scim.group(tx, id)?.ok_or_else(|| not_found(id))?;
        check_version(&required, before.version)?;
        let mut obj: Map<String, Value> =
            serde_json::from_str(&before.resource).unwrap_or_default();
        let member_ops = patch::apply_group(&mut obj, &ops)?;
        let now = scim.now;
        let stored = Value::Object(obj);
        let text = stored.to_string();
        if text != before.resource {
            let fields = resource::group_fields(stored.as_object().ok_or_else(Problem::internal)?)?;
            store_update(tx, id, &fields, &text, now)?;
        }
        if apply_members(tx, scim.scope(), id, &member_ops, now)? && text == before.resource {
            dir::touch_group(tx, id, now)?;
        }
        if wants_body {
            load(scim, tx, id, Some(q)).map(Some)
        } else {
            Ok(None)
        }
    })?;
    Ok(result.map(|(row, members)| respond(scim, &row, members.as_deref(), Some(q))))
}

pub fn delete(scim: &Caller<'_>, id: &str, required: Option<String>) -> Result<(), Problem> {
    scim.write(|tx| {
        let before = scim.group(tx, id)?.ok_or_else(|| not_found(id))?;
        check_version(&required, before.version)?;
        dir::delete_group(tx, id, scim.now)?;
        Ok::<_, Problem>(())
    })?;
    Ok(())
}

pub fn list(scim: &Caller<'_>, q: &ListQuery) -> Result<Value, Problem> {
    super::service::list_with(scim, q, page, listed)
}

/// A group as a listing shows it: members unless omitted, then attribute projection.
pub(super) fn listed(
    scim: &Caller<'_>,
    tx: &Tx<'_>,
    row: &GroupRow,
    q: &ListQuery,
) -> Result<Value, Problem> {
    let members = if q.omits("members") {
        None
    } else {
        Some(dir::members(tx, &row.id)?)
    };
    Ok(resource::project(
        render(scim, row, members.as_deref()),
        &q.attributes,
        &q.excluded,
    ))
}

pub fn page(
    tx: &Tx<'_>,
    scope: dir::Scope<'_>,
    q: &ListQuery,
) -> Result<(i64, Vec<GroupRow>), Problem> {
    let clause = compile_filter(Table::Groups, q.filter.as_deref())?;
    let order = sort_order(Table::Groups, q)?;
    let page = dir::list_groups(
        tx,
        &dir::Listing {
            scope,
            filter: clause.as_ref(),
            order: order.as_ref(),
            offset: q.start_index - 1,
            limit: q.count,
        },
    )?;
    Ok((page.total, page.rows))
}
