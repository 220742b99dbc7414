//! `/scim/v2/Users`. Every write is one transaction that also records the directory event
//! the licensing layer acts on.

use serde_json::{Map, Value};

use super::service::{Caller, ListQuery, Reply, check_version, new_id};
use crate::db::directory::{self as dir, EventKind, Order, UserRow};
use crate::db::filter_sql::{self, Table};
use crate::domain::problem::{Problem, Reason};
use crate::domain::scim::resource::{self, Meta, UserFields};
use crate::domain::scim::{filter, patch};

fn not_found(id: &str) -> Problem {
    Problem::new(Reason::NotFound, format!("There is no user with id {id}."))
}

fn taken(user_name: &str) -> Problem {
    Problem::scim(
        Reason::Conflict,
        "uniqueness",
        format!("The userName {user_name} is already taken by another user."),
    )
}

fn render(scim: &Caller<'_>, row: &UserRow, groups: &[(String, String)]) -> Value {
    let meta = Meta {
        resource_type: "User",
        location: scim.location("Users", &row.id),
        created: row.created_at,
        updated: row.updated_at,
        version: row.version,
    };
    resource::render_user(&row.id, &row.resource, &meta, groups, scim.base_url)
}

fn respond(
    scim: &Caller<'_>,
    row: &UserRow,
    groups: &[(String, String)],
    q: Option<&ListQuery>,
) -> Reply {
    let location = scim.location("Users", &row.id);
    Reply::new(render(scim, row, groups), row.version, location, q)
}

pub fn create(scim: &Caller<'_>, body: Value) -> Result<Reply, Problem> {
    let (stored, fields) = resource::prepare_user(body)?;
    let text = stored.to_string();
    let now = scim.now;
    let row = scim.write(|tx| {
        check_domains(tx, scim.scope(), &fields, &stored)?;
        // A user the IdP deactivated and now sends again is relinked and updated instead
        // of refused (Entra and Okta both re-POST after a deactivation), but only when it
        // is the same person from the same connection: same userName and same externalId.
        // Anything else reusing a deactivated record's externalId is a new user.
        let relink = match dir::user_by_name_key(tx, &fields.user_name_key)? {
            Some(existing) if same_person(scim, &existing, &fields) => Some(existing.id),
            Some(_) => return Err(taken(&fields.user_name)),
            None => None,
        };
        let id = match relink {
            Some(id) => {
                let kind = if fields.active {
                    EventKind::UserReactivated
                } else {
                    EventKind::UserUpdated
                };
                let event = (kind, Some("relinked by a new POST"));
                dir::update_user(tx, &id, &fields, &text, event, now)?;
                id
            }
            None => {
                let id = new_id();
                dir::insert_user(tx, scim.scope(), &id, &fields, &text, None, now)?;
                // A new user has no groups and its row is exactly what was inserted: no
                // need to read it back (this is the hot path of an initial sync).
                let row = UserRow {
                    id,
                    user_name: fields.user_name.clone(),
                    external_id: fields.external_id.clone(),
                    active: fields.active,
                    display_name: fields.display_name.clone(),
                    resource: text.clone(),
                    version: 1,
                    created_at: now,
                    updated_at: now,
                    connection_id: scim.scope().map(str::to_string),
                    email_key: fields.email_key.clone(),
                };
                return Ok((row, Vec::new()));
            }
        };
        let row = dir::user_by_id(tx, &id)?.ok_or_else(Problem::internal)?;
        let groups = dir::groups_of_user(tx, &id)?;
        Ok::<_, Problem>((row, groups))
    })?;
    Ok(respond(scim, &row.0, &row.1, None).created())
}

/// Whether a POST re-creates a deactivated user: same scope, same userName (the caller
/// looked it up by it) and the same externalId (both absent counts as the same).
fn same_person(scim: &Caller<'_>, existing: &UserRow, fields: &UserFields) -> bool {
    !existing.active
        && existing.connection_id.as_deref() == scim.scope()
        && existing.external_id == fields.external_id
}

/// A connection's token may not provision a userName or any email in a domain another
/// connection owns: that name belongs to the other connection's people, and taking it
/// would block (or impersonate) them.
fn check_domains(
    tx: &rusqlite::Transaction<'_>,
    scope: dir::Scope<'_>,
    fields: &UserFields,
    resource: &Value,
) -> Result<(), Problem> {
    let Some(own) = scope else {
        return Ok(());
    };
    let emails = resource["emails"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["value"].as_str());
    for value in std::iter::once(fields.user_name_key.as_str()).chain(emails) {
        if let crate::email::Shape::Email { domain } = crate::email::shape(value)
            && let Some(owner) = crate::db::idp::connection_of_domain(tx, &domain)?
            && owner != own
        {
            return Err(Problem::scim(
                Reason::BadRequest,
                "invalidValue",
                format!(
                    "The domain of {value} belongs to another IdP connection; this token provisions only for {own}."
                ),
            ));
        }
    }
    Ok(())
}

pub fn get(scim: &Caller<'_>, id: &str, q: &ListQuery) -> Result<Reply, Problem> {
    let (row, groups) = scim.db.read(|tx| {
        let row = scim.user(tx, id)?.ok_or_else(|| not_found(id))?;
        let groups = if q.omits("groups") {
            Vec::new()
        } else {
            dir::groups_of_user(tx, id)?
        };
        Ok::<_, Problem>((row, groups))
    })?;
    Ok(respond(scim, &row, &groups, Some(q)))
}

pub fn replace(
    scim: &Caller<'_>,
    id: &str,
    required: Option<String>,
    body: Value,
) -> Result<Reply, Problem> {
    let (stored, fields) = resource::prepare_user(body)?;
    let text = stored.to_string();
    let (row, groups) = scim.write(|tx| {
        let before = scim.user(tx, id)?.ok_or_else(|| not_found(id))?;
        check_version(&required, before.version)?;
        check_domains(tx, scim.scope(), &fields, &stored)?;
        store(scim, tx, &before, &fields, &text)
    })?;
    Ok(respond(scim, &row, &groups, None))
}

pub fn patch(
    scim: &Caller<'_>,
    id: &str,
    required: Option<String>,
    body: Value,
) -> Result<Reply, Problem> {
    let ops = patch::parse_ops(&body)?;
    let (row, groups) = scim.write(|tx| {
        let before = scim.user(tx, id)?.ok_or_else(|| not_found(id))?;
        check_version(&required, before.version)?;
        let mut obj: Map<String, Value> =
            serde_json::from_str(&before.resource).unwrap_or_default();
        patch::apply_user(&mut obj, &ops)?;
        let fields = resource::user_fields(&obj)?;
        let stored = Value::Object(obj);
        check_domains(tx, scim.scope(), &fields, &stored)?;
        store(scim, tx, &before, &fields, &stored.to_string())
    })?;
    Ok(respond(scim, &row, &groups, None))
}

/// Writes a changed user and its events; refuses a userName another user has.
fn store(
    scim: &Caller<'_>,
    tx: &rusqlite::Transaction<'_>,
    before: &UserRow,
    fields: &UserFields,
    text: &str,
) -> Result<(UserRow, Vec<(String, String)>), Problem> {
    if let Some(other) = dir::user_by_name_key(tx, &fields.user_name_key)?
        && other.id != before.id
    {
        return Err(taken(&fields.user_name));
    }
    let now = scim.now;
    let kind = match (before.active, fields.active) {
        (true, false) => EventKind::UserDeactivated,
        (false, true) => EventKind::UserReactivated,
        _ => EventKind::UserUpdated,
    };
    dir::update_user(tx, &before.id, fields, text, (kind, None), now)?;
    let row = dir::user_by_id(tx, &before.id)?.ok_or_else(Problem::internal)?;
    let groups = dir::groups_of_user(tx, &before.id)?;
    Ok((row, groups))
}

pub fn delete(scim: &Caller<'_>, id: &str, required: Option<String>) -> Result<(), Problem> {
    scim.write(|tx| {
        let before = scim.user(tx, id)?.ok_or_else(|| not_found(id))?;
        check_version(&required, before.version)?;
        dir::delete_user(tx, id, scim.now)?;
        Ok::<_, Problem>(())
    })?;
    Ok(())
}

pub fn list(scim: &Caller<'_>, q: &ListQuery) -> Result<Value, Problem> {
    super::service::list_with(scim, q, page, listed)
}

/// A user as a listing shows it: groups unless omitted, then attribute projection.
pub(super) fn listed(
    scim: &Caller<'_>,
    tx: &rusqlite::Transaction<'_>,
    row: &UserRow,
    q: &ListQuery,
) -> Result<Value, Problem> {
    let groups = if q.omits("groups") {
        Vec::new()
    } else {
        dir::groups_of_user(tx, &row.id)?
    };
    Ok(resource::project(
        render(scim, row, &groups),
        &q.attributes,
        &q.excluded,
    ))
}

/// One page of users for a listing query.
pub fn page(
    tx: &rusqlite::Transaction<'_>,
    scope: dir::Scope<'_>,
    q: &ListQuery,
) -> Result<(i64, Vec<UserRow>), Problem> {
    let clause = compile_filter(Table::Users, q.filter.as_deref())?;
    let order = sort_order(Table::Users, q)?;
    let page = dir::list_users(
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

pub fn compile_filter(
    table: Table,
    text: Option<&str>,
) -> Result<Option<filter_sql::Clause>, Problem> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let parsed = filter::parse_filter(text).map_err(|e| {
        Problem::scim(
            Reason::BadRequest,
            "invalidFilter",
            format!("Invalid filter: {e}."),
        )
    })?;
    Ok(Some(filter_sql::compile(table, &parsed)?))
}

pub fn sort_order(table: Table, q: &ListQuery) -> Result<Option<Order>, Problem> {
    let Some(by) = q.sort_by.as_deref().filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let (expr, params) = filter_sql::sort_expr(table, by)?;
    Ok(Some(Order {
        expr,
        params,
        descending: q.descending,
    }))
}
