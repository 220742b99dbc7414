//! Matching a signed-in identity to the SCIM directory: by the IdP's immutable id (against
//! externalId), then the identity (against userName, case-insensitively), then the email
//! (against the primary email). The first match wins.
//!
//! A connection only ever reaches its own users (provisioned by its SCIM tokens or its
//! just-in-time sign-ins) and those of the unassigned scope (SCIM tokens made without a
//! connection); immutable ids match only its own users. Whoever is found must also be
//! inside the connection's domains: every email-shaped userName or email of the user, and
//! for an unassigned user at least one of them (SECURITY.md, SAML SP 6).
//!
//! For connections without SCIM (Google Workspace), users unknown to the directory are
//! created just in time, and their memberships in the groups the assertion names are kept
//! in step at each sign-in. Those groups are recognizable by their externalId
//! `saml:{connection}:{name}`; groups pushed by SCIM are never touched.

use rusqlite::Transaction;
use serde_json::json;

use crate::db::Db;
use crate::db::directory::{self, SignInKey, UserRow};
use crate::domain::identity::Resolved;
use crate::domain::identity::SignedIn;
use crate::domain::problem::Problem;
use crate::domain::scim::resource::{self, fold};
use crate::email::{Shape, shape};

/// Finds the directory user of a sign-in; for JIT connections, creates it and keeps its
/// JIT group memberships in step with the assertion.
pub fn resolve(db: &Db, s: &SignedIn, jit: bool, now: i64) -> Result<Resolved, Problem> {
    let found = if jit {
        Some(db.write(|tx| {
            let mark = crate::db::licensing::last_event_id(tx)?;
            let user = provision(tx, s, now)?;
            let actor = crate::audit::Actor::Saml(s.connection.clone());
            crate::licensing::reconcile::after_directory_change(tx, mark, &actor, now)?;
            Ok::<_, Problem>(user)
        })?)
    } else {
        db.read(|tx| find(tx, s))?
    };
    if let Some(user) = &found {
        check_domains(s, user)?;
    }
    Ok(match found {
        Some(u) => Resolved::User {
            id: u.id,
            user_name: u.user_name,
            active: u.active,
        },
        None => Resolved::NotProvisioned,
    })
}

fn find(tx: &Transaction<'_>, s: &SignedIn) -> Result<Option<UserRow>, Problem> {
    let connection = s.connection.as_str();
    if let Some(immutable) = &s.immutable_id
        && let Some(u) = directory::users_by_external_id(tx, Some(connection), immutable)?
            .into_iter()
            .next()
    {
        return Ok(Some(u));
    }
    let by = |key: SignInKey, value: &str| {
        directory::sign_in_candidates(tx, connection, key, &fold(value))
            .map(|users| users.into_iter().next())
    };
    if let Some(u) = by(SignInKey::UserName, &s.identity)? {
        return Ok(Some(u));
    }
    match &s.email {
        Some(e) => Ok(by(SignInKey::Email, e)?),
        None => Ok(None),
    }
}

/// The directory user a sign-in resolved to must be inside the connection's domains.
fn check_domains(s: &SignedIn, user: &UserRow) -> Result<(), Problem> {
    let refuse = crate::saml::acs::domain_not_allowed;
    let values = std::iter::once(user.user_name.as_str()).chain(user.email_key.as_deref());
    let mut inside = false;
    for value in values {
        match shape(value) {
            Shape::Opaque => {}
            Shape::Malformed => {
                return Err(refuse(format!(
                    "{} matched the directory user {value:?}, which is not a valid email address",
                    s.identity
                )));
            }
            Shape::Email { domain } if s.domains.contains(&domain) => inside = true,
            Shape::Email { .. } => {
                return Err(refuse(format!(
                    "{} matched the directory user {value}, outside the domains {:?} of connection {}",
                    s.identity, s.domains, s.connection
                )));
            }
        }
    }
    // An unassigned user carries no connection: only its domain says who may sign it in.
    if user.connection_id.is_none() && !inside {
        return Err(refuse(format!(
            "{} matched the directory user {}, which has no email in the domains {:?} of connection {}",
            s.identity, user.user_name, s.domains, s.connection
        )));
    }
    Ok(())
}

fn provision(tx: &Transaction<'_>, s: &SignedIn, now: i64) -> Result<UserRow, Problem> {
    let scope = Some(s.connection.as_str());
    let user = match find(tx, s)? {
        Some(u) => {
            check_domains(s, &u)?;
            u
        }
        None => {
            let user_name = s.email.clone().unwrap_or_else(|| s.identity.clone());
            if let Some(other) = directory::user_by_name_key(tx, &fold(&user_name))? {
                // The name is taken outside this connection's reach.
                return Err(crate::saml::acs::domain_not_allowed(format!(
                    "{user_name} is already a directory user of {}, not of connection {}",
                    other
                        .connection_id
                        .as_deref()
                        .unwrap_or("the unassigned scope"),
                    s.connection
                )));
            }
            let mut body = json!({"userName": user_name, "active": true});
            if let Some(e) = &s.email {
                body["emails"] = json!([{"value": e, "type": "work", "primary": true}]);
            }
            if let Some(immutable) = &s.immutable_id {
                body["externalId"] = json!(immutable);
            }
            let (stored, fields) = resource::prepare_user(body)?;
            let id = crate::scim::service::new_id();
            let detail = json!({"just_in_time": s.connection}).to_string();
            directory::insert_user(
                tx,
                scope,
                &id,
                &fields,
                &stored.to_string(),
                Some(&detail),
                now,
            )?;
            directory::user_by_id(tx, &id)?.ok_or_else(Problem::internal)?
        }
    };
    // Only the connection's own users get its just-in-time groups: a user of the
    // unassigned scope keeps the groups its SCIM token gives it, and a group never holds
    // members of another scope.
    if user.connection_id.as_deref() != scope {
        return Ok(user);
    }
    let prefix = format!("saml:{}:", s.connection);
    let wanted: Vec<(String, &String)> = s
        .groups
        .iter()
        .map(|g| (format!("{prefix}{}", fold(g)), g))
        .collect();
    for (external_id, name) in &wanted {
        let group_id = match directory::group_by_external_id(tx, scope, external_id)? {
            Some(g) => g.id,
            None => {
                let (stored, fields, _) = resource::prepare_group(
                    json!({"displayName": name, "externalId": external_id}),
                )?;
                let id = crate::scim::service::new_id();
                directory::insert_group(tx, scope, &id, &fields, &stored.to_string(), now)?;
                id
            }
        };
        let added = directory::add_members(tx, &group_id, std::slice::from_ref(&user.id))?;
        directory::record_members_change(tx, &group_id, &added, &[], now)?;
    }
    for (group_id, external_id) in
        directory::groups_of_user_with_external_prefix(tx, &user.id, &prefix)?
    {
        if !wanted.iter().any(|(w, _)| *w == external_id) {
            let removed = directory::remove_members(tx, &group_id, std::slice::from_ref(&user.id))?;
            directory::record_members_change(tx, &group_id, &[], &removed, now)?;
        }
    }
    Ok(user)
}
