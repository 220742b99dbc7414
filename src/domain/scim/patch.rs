//! SCIM PATCH (RFC 7644 §3.5.2) in every dialect real IdPs send, applied to a stored JSON
//! resource. Pure: the caller loads the resource, applies, validates and stores it in one
//! transaction. Group membership operations are returned separately so that a 1,000-member
//! change touches only the membership table.
//!
//! Dialects handled: Entra (`"Add"`/`"Replace"`/`"Remove"` in any case, boolean strings,
//! filtered paths that create missing elements, `manager` as an array, path-less replace with
//! dotted and URN keys under `aadOptscim062020`), Okta (path-less `{"active": false}`,
//! several ops per request, rename with a read-only `id` in the value, full member
//! replace), and member removal by value list or by `members[value eq "…"]`.

use serde_json::{Map, Value};

use super::filter::{AttrPath, CompareOp, Filter, PatchPath, Value as FValue, parse_patch_path};
use super::resource::{canonicalize_value, member_ids};
use super::schema::{self, Attr};
use crate::domain::problem::{Problem, Reason};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Add,
    Replace,
    Remove,
}

#[derive(Debug, Clone)]
pub struct Op {
    pub kind: OpKind,
    pub path: Option<PatchPath>,
    pub value: Option<Value>,
}

/// A change to a group's membership, applied in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberOp {
    Add(Vec<String>),
    Remove(Vec<String>),
    RemoveAll,
    Replace(Vec<String>),
}

fn no_target(msg: impl Into<String>) -> Problem {
    Problem::scim(Reason::BadRequest, "noTarget", msg)
}

fn invalid_value(msg: impl Into<String>) -> Problem {
    Problem::scim(Reason::BadRequest, "invalidValue", msg)
}

fn invalid_path(msg: impl Into<String>) -> Problem {
    Problem::scim(Reason::BadRequest, "invalidPath", msg)
}

/// Reads the `Operations` of a PatchOp request body.
pub fn parse_ops(body: &Value) -> Result<Vec<Op>, Problem> {
    let obj = body.as_object().ok_or_else(|| {
        Problem::scim(
            Reason::BadRequest,
            "invalidSyntax",
            "A PATCH body must be a PatchOp JSON object.",
        )
    })?;
    let ops = obj
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Operations"))
        .and_then(|(_, v)| v.as_array())
        .ok_or_else(|| {
            Problem::scim(
                Reason::BadRequest,
                "invalidSyntax",
                "A PATCH body needs an \"Operations\" list.",
            )
        })?;
    if ops.is_empty() {
        return Err(Problem::scim(
            Reason::BadRequest,
            "invalidSyntax",
            "\"Operations\" is empty.",
        ));
    }
    ops.iter()
        .map(|op| {
            let o = op.as_object().ok_or_else(|| {
                Problem::scim(
                    Reason::BadRequest,
                    "invalidSyntax",
                    "Each operation must be a JSON object.",
                )
            })?;
            let get = |name: &str| {
                o.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
            };
            let kind = match get("op")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                Some("add") => OpKind::Add,
                Some("replace") => OpKind::Replace,
                Some("remove") => OpKind::Remove,
                _ => {
                    return Err(invalid_value(
                        "Each operation's \"op\" must be add, replace or remove.",
                    ));
                }
            };
            let path = match get("path") {
                None | Some(Value::Null) => None,
                Some(Value::String(p)) if p.trim().is_empty() => None,
                Some(Value::String(p)) => Some(
                    parse_patch_path(p.trim())
                        .map_err(|e| invalid_path(format!("Invalid path {p:?}: {e}.")))?,
                ),
                Some(_) => return Err(invalid_path("\"path\" must be a string.")),
            };
            let value = get("value").cloned();
            if kind != OpKind::Remove && value.is_none() {
                return Err(invalid_value(
                    "add and replace operations need a \"value\".",
                ));
            }
            Ok(Op { kind, path, value })
        })
        .collect()
}

/// Applies operations to a user resource (without id/meta).
pub fn apply_user(resource: &mut Map<String, Value>, ops: &[Op]) -> Result<(), Problem> {
    for op in ops {
        apply(resource, op, schema::USER_ATTRS, true)?;
    }
    Ok(())
}

/// Applies operations to a group resource; membership changes are returned, in order.
pub fn apply_group(
    resource: &mut Map<String, Value>,
    ops: &[Op],
) -> Result<Vec<MemberOp>, Problem> {
    let mut member_ops = Vec::new();
    for op in ops {
        let is_members = |p: &PatchPath| p.attr.attr.eq_ignore_ascii_case("members");
        match &op.path {
            Some(p) if is_members(p) => member_ops.push(member_op(op, p)?),
            None => {
                // Path-less add/replace may carry members beside other attributes.
                let mut op = op.clone();
                if let Some(Value::Object(map)) = &mut op.value
                    && let Some(key) = map
                        .keys()
                        .find(|k| k.eq_ignore_ascii_case("members"))
                        .cloned()
                    && let Some(v) = map.remove(&key)
                {
                    let ids = member_ids(&v)?;
                    member_ops.push(if op.kind == OpKind::Replace {
                        MemberOp::Replace(ids)
                    } else {
                        MemberOp::Add(ids)
                    });
                }
                apply(resource, &op, schema::GROUP_ATTRS, false)?;
            }
            Some(_) => apply(resource, op, schema::GROUP_ATTRS, false)?,
        }
    }
    Ok(member_ops)
}

fn member_op(op: &Op, path: &PatchPath) -> Result<MemberOp, Problem> {
    if let Some(filter) = &path.filter {
        if op.kind != OpKind::Remove {
            return Err(invalid_path(
                "Filtered member paths are only supported for remove.",
            ));
        }
        let mut ids = Vec::new();
        collect_member_values(filter, &mut ids)?;
        return Ok(MemberOp::Remove(ids));
    }
    match (op.kind, &op.value) {
        (OpKind::Add, Some(v)) => Ok(MemberOp::Add(member_ids(v)?)),
        (OpKind::Replace, Some(v)) => Ok(MemberOp::Replace(member_ids(v)?)),
        (OpKind::Remove, None | Some(Value::Null)) => Ok(MemberOp::RemoveAll),
        (OpKind::Remove, Some(v)) => Ok(MemberOp::Remove(member_ids(v)?)),
        _ => Err(invalid_value(
            "add and replace operations need a \"value\".",
        )),
    }
}

/// `value eq "a" or value eq "b"` → [a, b].
fn collect_member_values(f: &Filter, out: &mut Vec<String>) -> Result<(), Problem> {
    match f {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: FValue::Str(id),
        } if path.attr.eq_ignore_ascii_case("value") => {
            out.push(id.clone());
            Ok(())
        }
        Filter::Or(items) => items.iter().try_for_each(|i| collect_member_values(i, out)),
        _ => Err(invalid_path(
            "A member filter must be value eq \"<id>\" (optionally joined with or).",
        )),
    }
}

fn apply(obj: &mut Map<String, Value>, op: &Op, attrs: &[Attr], user: bool) -> Result<(), Problem> {
    let Some(path) = &op.path else {
        if op.kind == OpKind::Remove {
            return Err(no_target("A remove operation needs a path."));
        }
        let Some(Value::Object(map)) = &op.value else {
            return Err(invalid_value(
                "Without a path, the value must be an object of attributes.",
            ));
        };
        for (key, value) in map {
            if ["id", "meta", "schemas"]
                .iter()
                .any(|k| k.eq_ignore_ascii_case(key))
            {
                continue; // Okta sends the read-only id along with a rename.
            }
            if key.eq_ignore_ascii_case(schema::ENTERPRISE) && user {
                let Value::Object(ext) = value else {
                    return Err(invalid_value("The enterprise extension must be an object."));
                };
                for (k, v) in ext {
                    let p = PatchPath {
                        attr: AttrPath {
                            schema: Some(schema::ENTERPRISE.to_string()),
                            attr: k.clone(),
                            sub: None,
                        },
                        filter: None,
                        sub: None,
                    };
                    apply_path(obj, op.kind, &p, Some(v.clone()), attrs, user)?;
                }
                continue;
            }
            let p = parse_patch_path(key)
                .map_err(|e| invalid_path(format!("Invalid attribute {key:?}: {e}.")))?;
            apply_path(obj, op.kind, &p, Some(value.clone()), attrs, user)?;
        }
        return Ok(());
    };
    apply_path(obj, op.kind, path, op.value.clone(), attrs, user)
}

fn apply_path(
    obj: &mut Map<String, Value>,
    kind: OpKind,
    path: &PatchPath,
    value: Option<Value>,
    attrs: &[Attr],
    user: bool,
) -> Result<(), Problem> {
    if user && path.filter.is_none() && is_whole_extension(&path.attr) {
        return apply_whole_extension(obj, kind, value);
    }
    refuse_read_only(&path.attr, user)?;
    if path.attr.attr.eq_ignore_ascii_case("password") && user {
        return Ok(()); // Never stored.
    }
    let target = locate(obj, &path.attr, attrs, user);
    let mut value = value;
    if let (Some(v), Some(d)) = (value.as_mut(), target.def) {
        // Entra sends manager as [{"value": id}] and booleans as strings.
        accept_entra_forms(v, d);
        if path.attr.sub.is_none() && path.filter.is_none() {
            canonicalize_value(v, d);
        }
    }
    match (&path.filter, &path.attr.sub) {
        (None, None) => apply_to_attribute(target, kind, value),
        (None, Some(sub)) => apply_to_sub_attribute(target, kind, sub, value),
        (Some(filter), _) => {
            let sub = path.sub.as_deref().or(path.attr.sub.as_deref());
            apply_to_matching_elements(target, kind, filter, sub, value)
        }
    }
}

fn refuse_read_only(attr: &AttrPath, user: bool) -> Result<(), Problem> {
    let name = &attr.attr;
    if ["id", "meta", "schemas"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(name))
        && attr.schema.is_none()
    {
        return Err(Problem::scim(
            Reason::BadRequest,
            "mutability",
            format!("{name} is read-only."),
        ));
    }
    if user && name.eq_ignore_ascii_case("groups") && attr.schema.is_none() {
        return Err(Problem::scim(
            Reason::BadRequest,
            "mutability",
            "A user's groups are read-only; change the group's members instead.",
        ));
    }
    Ok(())
}

/// Where an operation lands: the object holding the attribute, the attribute's key in it
/// and its definition (none for attributes the schema does not know).
struct Target<'o, 'a> {
    container: &'o mut Map<String, Value>,
    key: String,
    def: Option<&'a Attr>,
}

/// Finds the object that holds the attribute: the resource itself, the enterprise
/// extension, or an unknown extension kept under its URN.
fn locate<'o, 'a>(
    obj: &'o mut Map<String, Value>,
    attr: &AttrPath,
    attrs: &'a [Attr],
    user: bool,
) -> Target<'o, 'a> {
    let name = &attr.attr;
    let enterprise = user
        && match &attr.schema {
            Some(urn) => urn.eq_ignore_ascii_case(schema::ENTERPRISE),
            None => {
                schema::find(attrs, name).is_none()
                    && schema::find(schema::ENTERPRISE_ATTRS, name).is_some()
            }
        };
    let (container, def): (&mut Map<String, Value>, Option<&Attr>) = if enterprise {
        (
            object_at(obj, schema::ENTERPRISE),
            schema::find(schema::ENTERPRISE_ATTRS, name),
        )
    } else if let Some(urn) = &attr.schema
        && !urn.eq_ignore_ascii_case(schema::USER)
        && !urn.eq_ignore_ascii_case(schema::GROUP)
    {
        // An extension we do not know: kept under its URN, never a failure.
        (object_at(obj, urn), None)
    } else {
        (obj, schema::find(attrs, name))
    };
    let key = def.map_or_else(
        || {
            container
                .keys()
                .find(|k| k.eq_ignore_ascii_case(name))
                .cloned()
                .unwrap_or_else(|| name.clone())
        },
        |d| d.name.to_string(),
    );
    Target {
        container,
        key,
        def,
    }
}

/// The object under `key`, created (or replacing a non-object) when missing.
fn object_at<'o>(obj: &'o mut Map<String, Value>, key: &str) -> &'o mut Map<String, Value> {
    let slot = obj
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    let Value::Object(map) = slot else {
        unreachable!("just made an object")
    };
    map
}

/// Entra's manager, [{"value": id}] or a bare id, as the schema's {"value": id}.
fn accept_entra_forms(value: &mut Value, def: &Attr) {
    if def.name == "manager" {
        *value = match value.take() {
            Value::Array(mut items) if !items.is_empty() => items.remove(0),
            Value::String(id) => serde_json::json!({ "value": id }),
            other => other,
        };
    }
}

/// The schema's spelling of a sub-attribute, or the client's when the schema lacks it.
fn sub_attr_key(def: Option<&Attr>, sub: &str) -> String {
    def.and_then(|d| schema::find(d.sub, sub))
        .map_or_else(|| sub.to_string(), |s| s.name.to_string())
}

/// `emails`, `displayName`: the whole attribute.
fn apply_to_attribute(target: Target, kind: OpKind, value: Option<Value>) -> Result<(), Problem> {
    let Target {
        container,
        key,
        def,
    } = target;
    let multi = def.is_some_and(|d| d.multi);
    match kind {
        OpKind::Remove => {
            container.remove(&key);
        }
        OpKind::Replace => {
            let v = value.unwrap_or(Value::Null);
            if v.is_null() {
                container.remove(&key);
            } else {
                container.insert(key, v);
            }
        }
        OpKind::Add => {
            let v = value.unwrap_or(Value::Null);
            match (container.get_mut(&key), v) {
                (_, Value::Null) => {}
                (Some(Value::Array(existing)), Value::Array(new)) if multi => {
                    for item in new {
                        if !existing.contains(&item) {
                            existing.push(item);
                        }
                    }
                }
                (Some(Value::Object(existing)), Value::Object(new)) => existing.extend(new),
                (_, v) => {
                    container.insert(key, v);
                }
            }
        }
    }
    Ok(())
}

/// `name.givenName`: one sub-attribute, on an object or on every element of a list.
fn apply_to_sub_attribute(
    target: Target,
    kind: OpKind,
    sub: &str,
    value: Option<Value>,
) -> Result<(), Problem> {
    let sub_key = sub_attr_key(target.def, sub);
    let slot = target
        .container
        .entry(target.key)
        .or_insert_with(|| Value::Object(Map::new()));
    match (kind, slot) {
        (OpKind::Remove, Value::Object(o)) => {
            o.remove(&sub_key);
        }
        (OpKind::Remove, Value::Array(items)) => items
            .iter_mut()
            .filter_map(Value::as_object_mut)
            .for_each(|o| {
                o.remove(&sub_key);
            }),
        (_, Value::Object(o)) => {
            o.insert(sub_key, value.unwrap_or(Value::Null));
        }
        (_, Value::Array(items)) => {
            items
                .iter_mut()
                .filter_map(Value::as_object_mut)
                .for_each(|o| {
                    o.insert(sub_key.clone(), value.clone().unwrap_or(Value::Null));
                })
        }
        (_, other) => {
            let mut o = Map::new();
            o.insert(sub_key, value.unwrap_or(Value::Null));
            *other = Value::Object(o);
        }
    }
    Ok(())
}

/// `emails[type eq "work"].value`: the list elements the filter matches.
fn apply_to_matching_elements(
    target: Target,
    kind: OpKind,
    filter: &Filter,
    sub: Option<&str>,
    value: Option<Value>,
) -> Result<(), Problem> {
    let Target {
        container,
        key,
        def,
    } = target;
    let sub_key = sub.map(|s| sub_attr_key(def, s));
    let entry = container
        .entry(key.clone())
        .or_insert_with(|| Value::Array(Vec::new()));
    if !entry.is_array() {
        *entry = Value::Array(Vec::new());
    }
    let Value::Array(items) = entry else {
        unreachable!("just made an array")
    };
    let matched: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, e)| element_matches(e, filter))
        .map(|(i, _)| i)
        .collect();
    match kind {
        OpKind::Remove => remove_from_matched(items, &matched, sub_key.as_deref()),
        OpKind::Add | OpKind::Replace => {
            let v = value
                .ok_or_else(|| invalid_value("add and replace operations need a \"value\"."))?;
            if matched.is_empty() {
                // Entra: `emails[type eq "work"].value` on a user without a work email
                // creates that element.
                items.push(element_from_filter(filter, sub_key, v, def)?);
            } else {
                set_on_matched(items, &matched, sub_key.as_deref(), &v)?;
            }
        }
    }
    // An emptied list is dropped rather than stored as [].
    if let Some(Value::Array(items)) = container.get(&key)
        && items.is_empty()
    {
        container.remove(&key);
    }
    Ok(())
}

/// Removes the matched elements, or only their sub-attribute.
fn remove_from_matched(items: &mut Vec<Value>, matched: &[usize], sub_key: Option<&str>) {
    match sub_key {
        Some(s) => {
            for &i in matched {
                if let Some(o) = items[i].as_object_mut() {
                    o.remove(s);
                }
            }
        }
        None => {
            let mut i = 0;
            items.retain(|_| {
                let keep = !matched.contains(&i);
                i += 1;
                keep
            });
        }
    }
}

fn set_on_matched(
    items: &mut [Value],
    matched: &[usize],
    sub_key: Option<&str>,
    value: &Value,
) -> Result<(), Problem> {
    for &i in matched {
        let Some(o) = items[i].as_object_mut() else {
            continue;
        };
        match (sub_key, value) {
            (Some(s), v) => {
                o.insert(s.to_string(), v.clone());
            }
            (None, Value::Object(new)) => o.extend(new.clone()),
            (None, _) => {
                return Err(invalid_value(
                    "A filtered path without a sub-attribute needs an object value.",
                ));
            }
        }
    }
    Ok(())
}

/// A new list element: the filter's `eq` attributes plus the value.
fn element_from_filter(
    filter: &Filter,
    sub_key: Option<String>,
    value: Value,
    def: Option<&Attr>,
) -> Result<Value, Problem> {
    let mut element = Map::new();
    seed_from_filter(filter, &mut element)?;
    match (sub_key, value) {
        (Some(s), v) => {
            element.insert(s, v);
        }
        (None, Value::Object(o)) => element.extend(o),
        (None, _) => {
            return Err(invalid_value(
                "A filtered path without a sub-attribute needs an object value.",
            ));
        }
    }
    let mut element = Value::Object(element);
    if let Some(d) = def {
        // Canonicalizing a multi-valued attribute wraps the element in a list.
        canonicalize_value(&mut element, d);
        if let Value::Array(mut wrapped) = element {
            element = wrapped.pop().unwrap_or(Value::Null);
        }
    }
    Ok(element)
}

/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User` as a path parses as schema
/// `…:2.0` + attribute `User`; it means the whole extension.
fn is_whole_extension(p: &AttrPath) -> bool {
    p.sub.is_none()
        && p.schema
            .as_ref()
            .is_some_and(|s| format!("{s}:{}", p.attr).eq_ignore_ascii_case(schema::ENTERPRISE))
}

fn apply_whole_extension(
    obj: &mut Map<String, Value>,
    kind: OpKind,
    value: Option<Value>,
) -> Result<(), Problem> {
    match (kind, value) {
        (OpKind::Remove, _) => {
            obj.remove(schema::ENTERPRISE);
        }
        (_, Some(Value::Object(mut new))) => {
            super::resource::canonicalize_object(&mut new, schema::ENTERPRISE_ATTRS);
            match (kind, obj.get_mut(schema::ENTERPRISE)) {
                (OpKind::Add, Some(Value::Object(existing))) => existing.extend(new),
                _ => {
                    obj.insert(schema::ENTERPRISE.to_string(), Value::Object(new));
                }
            }
        }
        _ => {
            return Err(invalid_value(
                "The enterprise extension's value must be an object.",
            ));
        }
    }
    Ok(())
}

/// The attributes a new element gets from an `eq` filter: `type eq "work"` → type: work.
fn seed_from_filter(f: &Filter, element: &mut Map<String, Value>) -> Result<(), Problem> {
    match f {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value,
        } => {
            let v = match value {
                FValue::Str(s) => Value::String(s.clone()),
                FValue::Bool(b) => Value::Bool(*b),
                FValue::Num(n) => {
                    serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number)
                }
                FValue::Null => Value::Null,
            };
            element.insert(path.attr.clone(), v);
            Ok(())
        }
        Filter::And(items) => items.iter().try_for_each(|i| seed_from_filter(i, element)),
        _ => Err(no_target(
            "No element matches the path's filter, and it is not a simple 'eq' filter to create one from.",
        )),
    }
}

/// Whether a multi-valued element matches a value filter (case-insensitive strings).
pub fn element_matches(element: &Value, f: &Filter) -> bool {
    match f {
        Filter::And(items) => items.iter().all(|i| element_matches(element, i)),
        Filter::Or(items) => items.iter().any(|i| element_matches(element, i)),
        Filter::Not(inner) => !element_matches(element, inner),
        Filter::ValuePath { .. } => false,
        Filter::Present(path) => lookup(element, path)
            .is_some_and(|v| !v.is_null() && v != &Value::String(String::new())),
        Filter::Compare { path, op, value } => {
            let actual = lookup(element, path);
            compare_json(actual, *op, value)
        }
    }
}

fn lookup<'a>(element: &'a Value, path: &AttrPath) -> Option<&'a Value> {
    let o = element.as_object()?;
    let v = o
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(&path.attr))
        .map(|(_, v)| v)?;
    match &path.sub {
        None => Some(v),
        Some(s) => v
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(s))
            .map(|(_, v)| v),
    }
}

fn compare_json(actual: Option<&Value>, op: CompareOp, expected: &FValue) -> bool {
    match (actual, expected) {
        (None | Some(Value::Null), FValue::Null) => op == CompareOp::Eq,
        (Some(_), FValue::Null) => op == CompareOp::Ne,
        (Some(Value::String(a)), FValue::Str(e)) => {
            let (a, e) = (a.to_lowercase(), e.to_lowercase());
            match op {
                CompareOp::Eq => a == e,
                CompareOp::Ne => a != e,
                CompareOp::Co => a.contains(&e),
                CompareOp::Sw => a.starts_with(&e),
                CompareOp::Ew => a.ends_with(&e),
                CompareOp::Gt => a > e,
                CompareOp::Ge => a >= e,
                CompareOp::Lt => a < e,
                CompareOp::Le => a <= e,
            }
        }
        (Some(Value::Bool(a)), FValue::Bool(e)) => match op {
            CompareOp::Eq => a == e,
            CompareOp::Ne => a != e,
            _ => false,
        },
        // Entra's boolean strings inside stored elements.
        (Some(Value::String(a)), FValue::Bool(e)) => {
            let a = a.eq_ignore_ascii_case("true");
            match op {
                CompareOp::Eq => a == *e,
                CompareOp::Ne => a != *e,
                _ => false,
            }
        }
        (Some(Value::Number(a)), FValue::Num(e)) => {
            let a = a.as_f64().unwrap_or(f64::NAN);
            match op {
                CompareOp::Eq => a == *e,
                CompareOp::Ne => a != *e,
                CompareOp::Gt => a > *e,
                CompareOp::Ge => a >= *e,
                CompareOp::Lt => a < *e,
                CompareOp::Le => a <= *e,
                _ => false,
            }
        }
        (None, _) => op == CompareOp::Ne,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Map<String, Value> {
        json!({
            "userName": "ryan@contoso.com",
            "active": true,
            "name": {"givenName": "Ryan", "familyName": "Leenay"},
            "emails": [{"value": "ryan@contoso.com", "type": "work", "primary": true}],
        })
        .as_object()
        .expect("object")
        .clone()
    }

    fn patch(resource: &mut Map<String, Value>, body: Value) -> Result<(), Problem> {
        apply_user(resource, &parse_ops(&body)?)
    }

    #[test]
    fn entra_default_dialect() {
        let mut u = user();
        patch(&mut u, json!({"schemas": [schema::PATCH_OP], "Operations": [
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Add", "path": "emails[type eq \"home\"].value", "value": "ryan@home.example"},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "ryan.l@contoso.com"},
            {"op": "Add", "path": "manager", "value": [{"value": "boss-id"}]},
            {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Eng"},
            {"op": "Add", "path": "roles", "value": [{"value": "r1", "primary": "True"}]},
            {"op": "Replace", "path": "addresses[type eq \"work\"].locality", "value": "Redmond"},
        ]}))
        .expect("applies");
        assert_eq!(u["active"], json!(false));
        let emails = u["emails"].as_array().expect("emails");
        assert_eq!(emails.len(), 2);
        assert_eq!(emails[0]["value"], json!("ryan.l@contoso.com"));
        assert_eq!(
            emails[1],
            json!({"type": "home", "value": "ryan@home.example"})
        );
        assert_eq!(
            u[schema::ENTERPRISE]["manager"],
            json!({"value": "boss-id"})
        );
        assert_eq!(u[schema::ENTERPRISE]["department"], json!("Eng"));
        assert_eq!(u["roles"][0]["primary"], json!(true));
        assert_eq!(
            u["addresses"][0],
            json!({"type": "work", "locality": "Redmond"})
        );
    }

    #[test]
    fn entra_aad_opt_pathless_replace_with_dotted_and_urn_keys() {
        let mut u = user();
        patch(
            &mut u,
            json!({"Operations": [{"op": "replace", "value": {
                "name.givenName": "Ryan2",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "42",
                "active": false,
            }}]}),
        )
        .expect("applies");
        assert_eq!(u["name"]["givenName"], json!("Ryan2"));
        assert_eq!(u["name"]["familyName"], json!("Leenay"));
        assert_eq!(u[schema::ENTERPRISE]["employeeNumber"], json!("42"));
        assert_eq!(u["active"], json!(false));
    }

    #[test]
    fn okta_deactivation_and_rename_ignore_read_only_id() {
        let mut u = user();
        patch(
            &mut u,
            json!({"Operations": [{"op": "replace", "value": {"active": false, "id": "ignored"}}]}),
        )
        .expect("applies");
        assert_eq!(u["active"], json!(false));
        assert!(u.get("id").is_none());
        let mut g = json!({"displayName": "Old"})
            .as_object()
            .expect("o")
            .clone();
        let ops = apply_group(
            &mut g,
            &parse_ops(&json!({"Operations": [
                {"op": "replace", "value": {"id": "g1", "displayName": "New Name"}},
                {"op": "add", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]},
                {"op": "remove", "path": "members[value eq \"u3\"]"},
                {"op": "Remove", "path": "members", "value": [{"value": "u4"}]},
                {"op": "replace", "path": "members", "value": [{"value": "u5"}]},
                {"op": "remove", "path": "members"},
            ]}))
            .expect("ops"),
        )
        .expect("applies");
        assert_eq!(g["displayName"], json!("New Name"));
        assert_eq!(
            ops,
            vec![
                MemberOp::Add(vec!["u1".into(), "u2".into()]),
                MemberOp::Remove(vec!["u3".into()]),
                MemberOp::Remove(vec!["u4".into()]),
                MemberOp::Replace(vec!["u5".into()]),
                MemberOp::RemoveAll,
            ]
        );
    }

    #[test]
    fn remove_with_filter_and_sub_attributes() {
        let mut u = user();
        patch(
            &mut u,
            json!({"Operations": [
                {"op": "add", "path": "emails", "value": [{"value": "x@y", "type": "other"}]},
                {"op": "remove", "path": "emails[type eq \"other\"]"},
                {"op": "remove", "path": "name.familyName"},
                {"op": "remove", "path": "nickName"},
            ]}),
        )
        .expect("applies");
        assert_eq!(u["emails"].as_array().map(Vec::len), Some(1));
        assert_eq!(u["name"], json!({"givenName": "Ryan"}));
    }

    #[test]
    fn bad_operations_are_scim_errors() {
        let mut u = user();
        let cases = [
            (json!({"Operations": [{"op": "remove"}]}), "noTarget"),
            (
                json!({"Operations": [{"op": "jump", "path": "x"}]}),
                "invalidValue",
            ),
            (
                json!({"Operations": [{"op": "add", "path": "emails[type eq"}]}),
                "invalidPath",
            ),
            (
                json!({"Operations": [{"op": "replace", "path": "id", "value": "x"}]}),
                "mutability",
            ),
            (
                json!({"Operations": [{"op": "add", "path": "groups", "value": [{"value": "g"}]}]}),
                "mutability",
            ),
            (json!({"Operations": []}), "invalidSyntax"),
            (json!({"operations": "nope"}), "invalidSyntax"),
        ];
        for (body, scim_type) in cases {
            let e = patch(&mut u, body.clone()).expect_err("rejected");
            assert_eq!(e.scim_type, Some(scim_type), "{body}");
            assert_eq!(e.reason.status(), 400);
        }
    }

    #[test]
    fn add_is_idempotent_for_multi_valued_attributes() {
        let mut u = user();
        let body = json!({"Operations": [{"op": "add", "path": "emails", "value": [{"value": "ryan@contoso.com", "type": "work", "primary": true}]}]});
        patch(&mut u, body.clone()).expect("once");
        patch(&mut u, body).expect("twice");
        assert_eq!(u["emails"].as_array().map(Vec::len), Some(1));
    }
}
