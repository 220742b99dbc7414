//! The admin API for client policies (`/api/v1/admin/policies`, `/policy-assignments`):
//! list, create, change (settings, name, default), delete, assign to groups with a
//! priority, reprioritize, unassign. Through `licensing::policies`, as the portal and the
//! CLI.

use serde::Deserialize;
use serde_json::{Value, json};

use super::api_write::{body, double_option};
use super::{Admin, Handled};
use crate::audit::Actor;
use crate::clock::rfc3339;
use crate::db::policies::{AssignmentRow, PolicyRow};
use crate::error::HttpError;
use crate::http::{Request, Response};
use crate::licensing::policies::{self, PolicyInput};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPolicy {
    name: String,
    description: Option<String>,
    #[serde(default)]
    settings: Option<Value>,
    #[serde(default)]
    default: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyChange {
    name: Option<String>,
    description: Option<String>,
    /// Replaces every setting the policy sets.
    settings: Option<Value>,
    /// true: make it the default; false: if it is the default, clear the default.
    default: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAssignment {
    group: String,
    #[serde(default, deserialize_with = "double_option")]
    connection: Option<Option<String>>,
    priority: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignmentChange {
    priority: i64,
}

pub(crate) fn assignment_json(a: &AssignmentRow) -> Value {
    json!({"id": a.id, "policy": a.policy_id, "policy_name": a.policy_name, "group": a.group_ref,
           "connection": a.connection_id, "priority": a.priority, "created_at": rfc3339(a.created_at)})
}

fn policy_json(p: &PolicyRow, assignments: &[AssignmentRow]) -> Value {
    let settings: Value = serde_json::from_str(&p.settings).unwrap_or_else(|_| json!({}));
    let mine: Vec<Value> = assignments
        .iter()
        .filter(|a| a.policy_id == p.id)
        .map(assignment_json)
        .collect();
    json!({"id": p.id, "name": p.name, "description": p.description, "default": p.is_default,
           "settings": settings, "assignments": mine,
           "created_at": rfc3339(p.created_at), "updated_at": rfc3339(p.updated_at)})
}

impl Admin {
    fn policy_answer(&self, status: u16, id: &str) -> Handled {
        let (p, assignments) = self.db.read(|tx| {
            Ok::<_, HttpError>((
                policies::find(tx, id)?,
                crate::db::policies::assignments(tx)?,
            ))
        })?;
        Ok(Response::json(status, &policy_json(&p, &assignments)))
    }

    /// `GET /api/v1/admin/policies`: every policy with its assignments, and the schema's
    /// version.
    pub(crate) fn api_policies(&self) -> Handled {
        let (all, assignments) = self.db.read(|tx| {
            Ok::<_, HttpError>((
                crate::db::policies::list(tx)?,
                crate::db::policies::assignments(tx)?,
            ))
        })?;
        let list: Vec<Value> = all.iter().map(|p| policy_json(p, &assignments)).collect();
        Ok(Response::json(
            200,
            &json!({"schema": crate::domain::policy::SCHEMA_ID, "policies": list}),
        ))
    }

    /// `GET /api/v1/admin/policies/{id}`.
    pub(crate) fn api_policy(&self, id: &str) -> Handled {
        self.policy_answer(200, id)
    }

    /// `POST /api/v1/admin/policies`.
    pub(crate) fn api_create_policy(&self, req: &Request, actor: &Actor) -> Handled {
        let b: NewPolicy = body(req)?;
        let now = self.clock.now_unix();
        let p = policies::create(
            &self.db,
            actor,
            self.lease_bounds(),
            &PolicyInput {
                name: Some(&b.name),
                description: b.description.as_deref(),
                settings: b.settings.as_ref(),
            },
            now,
        )?;
        if b.default {
            policies::set_default(&self.db, actor, Some(&p.id), now)?;
        }
        self.policy_answer(201, &p.id)
    }

    /// `PATCH /api/v1/admin/policies/{id}`.
    pub(crate) fn api_change_policy(&self, req: &Request, actor: &Actor, id: &str) -> Handled {
        let b: PolicyChange = body(req)?;
        let now = self.clock.now_unix();
        let p = policies::change(
            &self.db,
            actor,
            self.lease_bounds(),
            id,
            &PolicyInput {
                name: b.name.as_deref(),
                description: b.description.as_deref(),
                settings: b.settings.as_ref(),
            },
            now,
        )?;
        match b.default {
            Some(true) => {
                policies::set_default(&self.db, actor, Some(&p.id), now)?;
            }
            Some(false) if p.is_default => {
                policies::set_default(&self.db, actor, None, now)?;
            }
            _ => {}
        }
        self.policy_answer(200, &p.id)
    }

    /// `DELETE /api/v1/admin/policies/{id}`.
    pub(crate) fn api_delete_policy(&self, actor: &Actor, id: &str) -> Handled {
        let p = policies::delete(&self.db, actor, id, self.clock.now_unix())?;
        Ok(Response::json(
            200,
            &json!({"deleted": p.id, "name": p.name}),
        ))
    }

    /// `POST /api/v1/admin/policies/{id}/assignments`.
    pub(crate) fn api_assign_policy(&self, req: &Request, actor: &Actor, id: &str) -> Handled {
        let b: NewAssignment = body(req)?;
        let a = policies::assign(
            &self.db,
            actor,
            id,
            &b.group,
            b.connection.flatten().as_deref(),
            b.priority,
            self.clock.now_unix(),
        )?;
        Ok(Response::json(201, &assignment_json(&a)))
    }

    /// `PATCH /api/v1/admin/policy-assignments/{id}`.
    pub(crate) fn api_reprioritize(&self, req: &Request, actor: &Actor, id: &str) -> Handled {
        let b: AssignmentChange = body(req)?;
        let a = policies::reprioritize(&self.db, actor, id, b.priority, self.clock.now_unix())?;
        Ok(Response::json(200, &assignment_json(&a)))
    }

    /// `DELETE /api/v1/admin/policy-assignments/{id}`.
    pub(crate) fn api_unassign(&self, actor: &Actor, id: &str) -> Handled {
        let a = policies::unassign(&self.db, actor, id, self.clock.now_unix())?;
        Ok(Response::json(200, &json!({"deleted": a.id})))
    }
}
