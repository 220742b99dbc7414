//! SCIM resources: turning what an IdP sends into what is stored (canonical attribute
//! names, coerced booleans, no read-only or secret attributes) and rendering stored rows
//! back (schemas, id, meta, groups/members, `attributes`/`excludedAttributes`). Pure.

use serde_json::{Map, Value, json};

use super::schema::{self, Attr, Kind};
use crate::clock::rfc3339;
use crate::domain::problem::{Problem, Reason};

/// The columns extracted from a user resource.
#[derive(Debug, Clone, PartialEq)]
pub struct UserFields {
    pub user_name: String,
    pub user_name_key: String,
    pub external_id: Option<String>,
    pub active: bool,
    pub display_name: Option<String>,
    pub email_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupFields {
    pub display_name: String,
    pub display_name_key: String,
    pub external_id: Option<String>,
}

/// Attributes every resource has; names are canonicalized like schema attributes.
const COMMON: &[&str] = &["id", "externalId", "meta", "schemas"];

pub fn invalid(message: impl Into<String>) -> Problem {
    Problem::scim(Reason::BadRequest, "invalidValue", message)
}

/// Case-folds a value that is compared case-insensitively (userName, emails, names).
pub fn fold(s: &str) -> String {
    s.to_lowercase()
}

/// Prepares a User body (POST or PUT) for storage.
pub fn prepare_user(body: Value) -> Result<(Value, UserFields), Problem> {
    let mut obj = into_object(body, "User")?;
    canonicalize_object(&mut obj, schema::USER_ATTRS);
    for read_only in ["id", "meta", "groups", "password", "schemas"] {
        obj.remove(read_only);
    }
    drop_nulls(&mut obj);
    let fields = user_fields(&obj)?;
    Ok((Value::Object(obj), fields))
}

/// Extracts and validates the indexed columns of a stored user resource.
pub fn user_fields(obj: &Map<String, Value>) -> Result<UserFields, Problem> {
    let user_name = match obj.get("userName") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(invalid("userName is required."));
        }
        Some(_) => return Err(invalid("userName must be a string.")),
    };
    let active = match obj.get("active") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid("active must be true or false.")),
    };
    Ok(UserFields {
        user_name_key: fold(&user_name),
        user_name,
        external_id: optional_string(obj, "externalId")?,
        active,
        display_name: optional_string(obj, "displayName")?,
        email_key: primary_email(obj).map(|e| fold(&e)),
    })
}

/// Prepares a Group body (POST or PUT). Returns the stored resource (without members),
/// its columns, and the member ids when the body lists members.
pub fn prepare_group(body: Value) -> Result<(Value, GroupFields, Option<Vec<String>>), Problem> {
    let mut obj = into_object(body, "Group")?;
    canonicalize_object(&mut obj, schema::GROUP_ATTRS);
    for read_only in ["id", "meta", "schemas"] {
        obj.remove(read_only);
    }
    drop_nulls(&mut obj);
    let members = match obj.remove("members") {
        None => None,
        Some(v) => Some(member_ids(&v)?),
    };
    let fields = group_fields(&obj)?;
    Ok((Value::Object(obj), fields, members))
}

pub fn group_fields(obj: &Map<String, Value>) -> Result<GroupFields, Problem> {
    let display_name = match obj.get("displayName") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => return Err(invalid("displayName is required.")),
    };
    Ok(GroupFields {
        display_name_key: fold(&display_name),
        display_name,
        external_id: optional_string(obj, "externalId")?,
    })
}

/// The user ids in a `members` value (an array of `{"value": id}`, or one such object).
pub fn member_ids(v: &Value) -> Result<Vec<String>, Problem> {
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => vec![v],
        Value::Null => Vec::new(),
        _ => {
            return Err(invalid(
                "members must be a list of {\"value\": \"<user id>\"}.",
            ));
        }
    };
    items
        .into_iter()
        .map(|m| {
            let value = m.as_object().and_then(|o| {
                o.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("value"))
                    .map(|(_, v)| v)
            });
            match value {
                Some(Value::String(id)) if !id.is_empty() => Ok(id.clone()),
                _ => Err(invalid("each member needs a \"value\" with a user id.")),
            }
        })
        .collect()
}

fn into_object(body: Value, what: &str) -> Result<Map<String, Value>, Problem> {
    match body {
        Value::Object(o) => Ok(o),
        _ => Err(Problem::scim(
            Reason::BadRequest,
            "invalidSyntax",
            format!("The request body must be a JSON object describing a {what}."),
        )),
    }
}

fn optional_string(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, Problem> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(format!("{key} must be a string."))),
    }
}

/// The primary email, else the work email, else the first one.
fn primary_email(obj: &Map<String, Value>) -> Option<String> {
    let emails = obj.get("emails")?.as_array()?;
    let value = |e: &Value| e.get("value").and_then(Value::as_str).map(str::to_string);
    emails
        .iter()
        .find(|e| e.get("primary") == Some(&Value::Bool(true)))
        .and_then(value)
        .or_else(|| {
            emails
                .iter()
                .find(|e| {
                    e.get("type")
                        .and_then(Value::as_str)
                        .is_some_and(|t| t.eq_ignore_ascii_case("work"))
                })
                .and_then(value)
        })
        .or_else(|| emails.iter().find_map(value))
}

/// Removes top-level attributes set to null (SCIM: null means unassigned; JumpCloud sends
/// `"emails": null`).
fn drop_nulls(obj: &mut Map<String, Value>) {
    obj.retain(|_, v| !v.is_null());
}

/// Renames known attributes to their canonical case, coerces Entra's boolean strings, and
/// wraps single objects sent for multi-valued attributes. Unknown attributes are kept.
pub fn canonicalize_object(obj: &mut Map<String, Value>, attrs: &[Attr]) {
    let entries: Vec<(String, Value)> = std::mem::take(obj).into_iter().collect();
    for (key, mut value) in entries {
        let name = if key.eq_ignore_ascii_case(schema::ENTERPRISE) {
            if let Value::Object(inner) = &mut value {
                canonicalize_object(inner, schema::ENTERPRISE_ATTRS);
            }
            schema::ENTERPRISE.to_string()
        } else if let Some(common) = COMMON.iter().find(|c| c.eq_ignore_ascii_case(&key)) {
            common.to_string()
        } else if let Some(attr) = schema::find(attrs, &key) {
            canonicalize_value(&mut value, attr);
            attr.name.to_string()
        } else {
            key
        };
        obj.insert(name, value);
    }
}

pub fn canonicalize_value(value: &mut Value, attr: &Attr) {
    if attr.multi {
        if value.is_object() {
            *value = Value::Array(vec![value.take()]);
        }
        if let Value::Array(items) = value {
            for item in items.iter_mut() {
                if let Value::Object(o) = item {
                    canonicalize_object(o, attr.sub);
                }
            }
        }
        return;
    }
    match (attr.kind, &mut *value) {
        (Kind::Boolean, Value::String(s)) => {
            if s.eq_ignore_ascii_case("true") {
                *value = Value::Bool(true);
            } else if s.eq_ignore_ascii_case("false") {
                *value = Value::Bool(false);
            }
        }
        (Kind::Complex, Value::Object(o)) => canonicalize_object(o, attr.sub),
        _ => {}
    }
}

/// Timestamps and version of a stored row.
pub struct Meta<'a> {
    pub resource_type: &'a str,
    pub location: String,
    pub created: i64,
    pub updated: i64,
    pub version: i64,
}

pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

fn meta_json(m: &Meta<'_>) -> Value {
    json!({
        "resourceType": m.resource_type,
        "created": rfc3339(m.created),
        "lastModified": rfc3339(m.updated),
        "location": m.location,
        "version": etag(m.version),
    })
}

/// A stored user as SCIM JSON. `groups` are (id, displayName) pairs.
pub fn render_user(
    id: &str,
    stored: &str,
    meta: &Meta<'_>,
    groups: &[(String, String)],
    base: &str,
) -> Value {
    let mut obj = parse_stored(stored);
    let mut schemas = vec![json!(schema::USER)];
    if obj.contains_key(schema::ENTERPRISE) {
        schemas.push(json!(schema::ENTERPRISE));
    }
    obj.insert("schemas".into(), Value::Array(schemas));
    obj.insert("id".into(), json!(id));

    if !groups.is_empty() {
        let list: Vec<Value> = groups
            .iter()
            .map(|(gid, name)| json!({"value": gid, "display": name, "$ref": format!("{base}/Groups/{gid}"), "type": "direct"}))
            .collect();
        obj.insert("groups".into(), Value::Array(list));
    }
    obj.insert("meta".into(), meta_json(meta));
    Value::Object(obj)
}

/// A stored group as SCIM JSON. `members` are (id, displayName-or-userName) pairs, or
/// `None` when members were excluded (not fetched).
pub fn render_group(
    id: &str,
    stored: &str,
    meta: &Meta<'_>,
    members: Option<&[(String, String)]>,
    base: &str,
) -> Value {
    let mut obj = parse_stored(stored);
    obj.insert("schemas".into(), json!([schema::GROUP]));
    obj.insert("id".into(), json!(id));
    if let Some(members) = members {
        let list: Vec<Value> = members
            .iter()
                        .map(|(uid, _)| json!({"value": uid, "$ref": format!("{base}/Users/{uid}"), "type": "User"}))
            .collect();
        obj.insert("members".into(), Value::Array(list));
    }
    obj.insert("meta".into(), meta_json(meta));
    Value::Object(obj)
}

fn parse_stored(stored: &str) -> Map<String, Value> {
    match serde_json::from_str(stored) {
        Ok(Value::Object(o)) => o,
        _ => {
            log::error!("a stored SCIM resource is not a JSON object");
            Map::new()
        }
    }
}

/// Applies `attributes` / `excludedAttributes` (RFC 7644 §3.9). `id` and `schemas` are
/// always returned.
pub fn project(value: Value, attributes: &[String], excluded: &[String]) -> Value {
    let Value::Object(mut obj) = value else {
        return value;
    };
    if !attributes.is_empty() {
        let mut kept = Map::new();
        for key in ["schemas", "id"] {
            if let Some(v) = obj.remove(key) {
                kept.insert(key.into(), v);
            }
        }
        for want in attributes {
            let (top, sub) = split_attr(want);
            let Some((key, v)) = take_key(&mut obj, &top) else {
                continue;
            };
            match sub {
                None => {
                    kept.insert(key, v);
                }
                Some(sub) => {
                    let picked = pick_sub(&v, &sub);
                    if let Some(picked) = picked {
                        merge(&mut kept, key.clone(), picked);
                    }
                    obj.insert(key, v);
                }
            }
        }
        return Value::Object(kept);
    }
    for ex in excluded {
        let (top, sub) = split_attr(ex);
        if top.eq_ignore_ascii_case("id") || top.eq_ignore_ascii_case("schemas") {
            continue;
        }
        match sub {
            None => {
                take_key(&mut obj, &top);
            }
            Some(sub) => {
                if let Some(key) = obj.keys().find(|k| k.eq_ignore_ascii_case(&top)).cloned()
                    && let Some(v) = obj.get_mut(&key)
                {
                    remove_sub(v, &sub);
                }
            }
        }
    }
    Value::Object(obj)
}

/// `urn:...:User:department` → (`urn:...:User`, `department`); `name.givenName` →
/// (`name`, `givenName`); `userName` → (`userName`, None).
fn split_attr(path: &str) -> (String, Option<String>) {
    if path.eq_ignore_ascii_case(schema::ENTERPRISE) {
        return (schema::ENTERPRISE.to_string(), None);
    }
    if let Some(i) = path.rfind(':') {
        return (path[..i].to_string(), Some(path[i + 1..].to_string()));
    }
    match path.split_once('.') {
        Some((a, b)) => (a.to_string(), Some(b.to_string())),
        None => (path.to_string(), None),
    }
}

fn take_key(obj: &mut Map<String, Value>, name: &str) -> Option<(String, Value)> {
    let key = obj.keys().find(|k| k.eq_ignore_ascii_case(name))?.clone();
    obj.remove(&key).map(|v| (key, v))
}

fn pick_sub(v: &Value, sub: &str) -> Option<Value> {
    match v {
        Value::Object(o) => {
            let (k, inner) = o.iter().find(|(k, _)| k.eq_ignore_ascii_case(sub))?;
            Some(json!({ k.clone(): inner.clone() }))
        }
        Value::Array(items) => Some(Value::Array(
            items.iter().filter_map(|i| pick_sub(i, sub)).collect(),
        )),
        _ => None,
    }
}

fn merge(into: &mut Map<String, Value>, key: String, picked: Value) {
    match (into.get_mut(&key), picked) {
        (Some(Value::Object(existing)), Value::Object(new)) => existing.extend(new),
        (_, picked) => {
            into.insert(key, picked);
        }
    }
}

fn remove_sub(v: &mut Value, sub: &str) {
    match v {
        Value::Object(o) => o.retain(|k, _| !k.eq_ignore_ascii_case(sub)),
        Value::Array(items) => items.iter_mut().for_each(|i| remove_sub(i, sub)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_are_canonicalized_and_secrets_dropped() {
        let (stored, fields) = prepare_user(json!({
            "schemas": [schema::USER],
            "UserName": "Ryan.Leenay@Example.com",
            "ACTIVE": "False",
            "password": "placeholder-from-okta",
            "emails": [{"Primary": "True", "Type": "work", "Value": "Ryan.Leenay@Example.com"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user": {"Department": "Eng"},
            "addresses": [{"type": "work", "locality": "Redmond"}],
            "x-unknown": {"kept": true},
            "id": "client-chosen",
            "groups": [{"value": "g"}],
        }))
        .expect("valid");
        assert_eq!(fields.user_name, "Ryan.Leenay@Example.com");
        assert_eq!(fields.user_name_key, "ryan.leenay@example.com");
        assert!(!fields.active);
        assert_eq!(fields.email_key.as_deref(), Some("ryan.leenay@example.com"));
        let o = stored.as_object().expect("object");
        assert!(o.contains_key("userName") && !o.contains_key("UserName"));
        assert!(!o.contains_key("password") && !o.contains_key("id") && !o.contains_key("groups"));
        assert_eq!(o["emails"][0]["primary"], json!(true));
        assert_eq!(o[schema::ENTERPRISE]["department"], json!("Eng"));
        assert_eq!(o["x-unknown"], json!({"kept": true}));
    }

    #[test]
    fn jumpcloud_null_emails_and_missing_username() {
        let (stored, fields) =
            prepare_user(json!({"userName": "a", "emails": null})).expect("valid");
        assert!(stored.get("emails").is_none());
        assert_eq!(fields.email_key, None);
        assert!(fields.active, "active defaults to true");
        let e = prepare_user(json!({"displayName": "x"})).expect_err("userName required");
        assert_eq!(e.reason.status(), 400);
        assert_eq!(e.scim_type, Some("invalidValue"));
        assert!(prepare_user(json!(["not", "an", "object"])).is_err());
    }

    #[test]
    fn group_members_are_extracted() {
        let (stored, fields, members) =
            prepare_group(json!({"displayName": "Eng", "members": [{"value": "u1"}, {"Value": "u2", "display": "x"}]}))
                .expect("valid");
        assert_eq!(fields.display_name_key, "eng");
        assert_eq!(members, Some(vec!["u1".to_string(), "u2".to_string()]));
        assert!(stored.get("members").is_none());
        assert!(
            prepare_group(json!({"displayName": "Eng", "members": [{"display": "no value"}]}))
                .is_err()
        );
    }

    #[test]
    fn projection_keeps_id_and_schemas() {
        let v = json!({"schemas": ["s"], "id": "1", "userName": "a", "name": {"givenName": "G", "familyName": "F"}, "emails": [{"value": "e", "type": "work"}]});
        let only = project(
            v.clone(),
            &["userName".into(), "name.givenName".into()],
            &[],
        );
        assert_eq!(
            only,
            json!({"schemas": ["s"], "id": "1", "userName": "a", "name": {"givenName": "G"}})
        );
        let without = project(
            v,
            &[],
            &["emails".into(), "name.familyName".into(), "id".into()],
        );
        assert_eq!(
            without,
            json!({"schemas": ["s"], "id": "1", "userName": "a", "name": {"givenName": "G"}})
        );
    }
}
