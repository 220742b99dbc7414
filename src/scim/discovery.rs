//! Discovery (`/ServiceProviderConfig`, `/ResourceTypes`, `/Schemas`), advertising exactly
//! what is implemented, and the root-level `POST /.search`.

use serde_json::{Value, json};

use super::service::{Caller, ListQuery, MAX_RESULTS, list_response};
use crate::db::directory::{self as dir};
use crate::db::filter_sql::Table;
use crate::domain::problem::{Problem, Reason};
use crate::domain::scim::schema::{self, ENTERPRISE, GROUP, USER};

pub fn service_provider_config(base: &str) -> Result<Value, Problem> {
    Ok(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": "https://github.com/seatgate/seatgate#scim",
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "A token made in the portal (Identity providers) or with `seatgate scim-token create`, sent as 'Authorization: Bearer <token>'.",
            "primary": true,
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")},
    }))
}

fn user_type(base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "A person who may hold a license seat.",
        "schema": USER,
        "schemaExtensions": [{"schema": ENTERPRISE, "required": false}],
        "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User")},
    })
}

fn group_type(base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": "Group",
        "name": "Group",
        "endpoint": "/Groups",
        "description": "A group of users; groups map to admin rights and license pools.",
        "schema": GROUP,
        "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/Group")},
    })
}

pub fn resource_types(base: &str) -> Result<Value, Problem> {
    Ok(list_response(2, 1, vec![user_type(base), group_type(base)]))
}

pub fn resource_type(base: &str, name: &str) -> Result<Value, Problem> {
    match name {
        "User" => Ok(user_type(base)),
        "Group" => Ok(group_type(base)),
        _ => Err(Problem::new(
            Reason::NotFound,
            format!("There is no resource type {name}."),
        )),
    }
}

fn all_schemas(base: &str) -> Vec<Value> {
    vec![
        schema::schema_resource(USER, "User", "User account", schema::USER_ATTRS, base),
        schema::schema_resource(
            ENTERPRISE,
            "EnterpriseUser",
            "Enterprise user",
            schema::ENTERPRISE_ATTRS,
            base,
        ),
        schema::schema_resource(GROUP, "Group", "Group", schema::GROUP_ATTRS, base),
    ]
}

pub fn schemas(base: &str) -> Result<Value, Problem> {
    let all = all_schemas(base);
    Ok(list_response(all.len() as i64, 1, all))
}

pub fn schema(base: &str, id: &str) -> Result<Value, Problem> {
    all_schemas(base)
        .into_iter()
        .find(|s| s["id"] == id)
        .ok_or_else(|| Problem::new(Reason::NotFound, format!("There is no schema {id}.")))
}

/// `POST /scim/v2/.search`: users then groups matching the filter, paged together.
pub fn search_all(scim: &Caller<'_>, q: &ListQuery) -> Result<Value, Problem> {
    let (total, items) = scim.db.read(|tx| {
        let user_clause = super::users::compile_filter(Table::Users, q.filter.as_deref())?;
        let group_clause = super::users::compile_filter(Table::Groups, q.filter.as_deref())?;
        let offset = q.start_index - 1;
        let users = dir::list_users(
            tx,
            &dir::Listing {
                scope: scim.scope(),
                filter: user_clause.as_ref(),
                order: None,
                offset,
                limit: q.count,
            },
        )?;
        let group_offset = (offset - users.total).max(0);
        let group_limit = q.count - users.rows.len() as i64;
        let groups = dir::list_groups(
            tx,
            &dir::Listing {
                scope: scim.scope(),
                filter: group_clause.as_ref(),
                order: None,
                offset: group_offset,
                limit: group_limit.max(0),
            },
        )?;
        let mut items = Vec::with_capacity(users.rows.len() + groups.rows.len());
        for row in &users.rows {
            items.push(super::users::listed(scim, tx, row, q)?);
        }
        for row in &groups.rows {
            items.push(super::groups::listed(scim, tx, row, q)?);
        }
        Ok::<_, Problem>((users.total + groups.total, items))
    })?;
    Ok(list_response(total, q.start_index, items))
}
