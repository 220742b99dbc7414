//! Compiles a SCIM filter into a SQL `WHERE` clause over `users` or `groups`.
//!
//! Indexed attributes (id, userName, externalId, active, group membership) map to indexed
//! columns; other attributes are evaluated by SQLite's JSON functions on the stored
//! resource, inside the query. Every value and every JSON path is a bound parameter, never
//! spliced into the SQL text.

use rusqlite::types::Value as Sql;

use crate::clock::parse_rfc3339;
use crate::domain::problem::{Problem, Reason};
use crate::domain::scim::filter::{AttrPath, CompareOp, Filter, Value};
use crate::domain::scim::resource::fold;
use crate::domain::scim::schema::{self, Kind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Users,
    Groups,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Users => "users",
            Table::Groups => "groups",
        }
    }
}

/// A compiled clause and its parameters, in order.
#[derive(Debug, Default)]
pub struct Clause {
    pub sql: String,
    pub params: Vec<Sql>,
}

pub fn compile(table: Table, filter: &Filter) -> Result<Clause, Problem> {
    let mut c = Compiler {
        table,
        out: Clause::default(),
        aliases: 0,
    };
    c.filter(filter, None)?;
    Ok(c.out)
}

/// The SQL expression to sort by for a `sortBy` attribute.
pub fn sort_expr(table: Table, sort_by: &str) -> Result<(String, Vec<Sql>), Problem> {
    let path = crate::domain::scim::filter::parse_patch_path(sort_by)
        .map_err(|e| Problem::scim(Reason::BadRequest, "invalidValue", format!("sortBy: {e}")))?
        .attr;
    let mut c = Compiler {
        table,
        out: Clause::default(),
        aliases: 0,
    };
    let target = c.resolve(&path)?;
    let expr = match target {
        Target::Column { expr, .. } => expr.to_string(),
        Target::Json { case_exact, .. } => {
            let e = c.json_expr(&target);
            if case_exact { e } else { format!("lower({e})") }
        }
        Target::Multi { .. } | Target::Membership { .. } => {
            return Err(Problem::scim(
                Reason::BadRequest,
                "invalidValue",
                format!(
                    "sortBy {sort_by} is a multi-valued attribute; sort by a single-valued one"
                ),
            ));
        }
    };
    Ok((expr, c.out.params))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColKind {
    /// Stored case-folded; compare with folded values.
    Folded,
    Exact,
    Bool,
    Time,
}

#[derive(Debug, Clone)]
enum Target {
    Column {
        expr: &'static str,
        kind: ColKind,
    },
    /// A single value inside the stored resource.
    Json {
        path: String,
        case_exact: bool,
        kind: Kind,
    },
    /// A multi-valued attribute: some element's `sub` matches.
    Multi {
        array: String,
        sub: String,
    },
    /// Group membership (users.groups / groups.members).
    Membership {
        display: bool,
    },
}

struct Compiler {
    table: Table,
    out: Clause,
    aliases: usize,
}

impl Compiler {
    fn push(&mut self, sql: &str) {
        self.out.sql.push_str(sql);
    }

    fn param(&mut self, v: Sql) {
        self.out.sql.push('?');
        self.out.params.push(v);
    }

    /// `and`, `or` and `not` over `each` (how the operands compile where they stand): the
    /// one place the combinators are written, for whole filters and membership value
    /// filters alike. Returns false for a leaf, which the caller compiles.
    fn combinator(
        &mut self,
        f: &Filter,
        each: &mut dyn FnMut(&mut Self, &Filter) -> Result<(), Problem>,
    ) -> Result<bool, Problem> {
        match f {
            Filter::And(items) | Filter::Or(items) => {
                let joiner = if matches!(f, Filter::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                self.push("(");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.push(joiner);
                    }
                    each(self, item)?;
                }
                self.push(")");
            }
            Filter::Not(inner) => {
                // NOT over SQL three-valued logic: an absent attribute makes the inner
                // comparison NULL, and `not` of it must match (RFC 7644 semantics).
                self.push("NOT coalesce((");
                each(self, inner)?;
                self.push("), 0)");
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// `element`: inside a value filter, the json_each alias the paths are relative to.
    fn filter(&mut self, f: &Filter, element: Option<&str>) -> Result<(), Problem> {
        if self.combinator(f, &mut |c, item| c.filter(item, element))? {
            return Ok(());
        }
        match f {
            Filter::And(_) | Filter::Or(_) | Filter::Not(_) => {}
            Filter::Present(path) => self.present(path, element)?,
            Filter::Compare { path, op, value } => self.compare(path, *op, value, element)?,
            Filter::ValuePath { attr, filter } => {
                if element.is_some() {
                    return Err(invalid_filter("value filters cannot be nested"));
                }
                let target = self.resolve(attr)?;
                let array = match target {
                    Target::Multi { array, .. } => array,
                    Target::Membership { .. } => return self.membership_value_path(filter),
                    _ => {
                        return Err(invalid_filter(&format!(
                            "{} is not multi-valued",
                            attr.attr
                        )));
                    }
                };
                let alias = self.alias();
                self.push(&format!(
                    "EXISTS (SELECT 1 FROM json_each({}.resource, ",
                    self.table.name()
                ));
                self.param(Sql::Text(array));
                self.push(&format!(") AS {alias} WHERE "));
                self.filter(filter, Some(&alias))?;
                self.push(")");
            }
        }
        Ok(())
    }

    fn alias(&mut self) -> String {
        self.aliases += 1;
        format!("e{}", self.aliases)
    }

    fn present(&mut self, path: &AttrPath, element: Option<&str>) -> Result<(), Problem> {
        // `coalesce(x, '') <> ''`: present means set and not empty; x appears once so its
        // bound path parameter lines up.
        if let Some(alias) = element {
            self.push(&format!("coalesce(json_extract({alias}.value, "));
            self.param(Sql::Text(element_path(path)));
            self.push("), '') <> ''");
            return Ok(());
        }
        match self.resolve(path)? {
            Target::Column { expr, .. } => self.push(&format!("coalesce({expr}, '') <> ''")),
            t @ Target::Json { .. } => {
                let e = self.json_expr(&t);
                self.push(&format!("coalesce({e}, '') <> ''"));
            }
            // `addresses.locality pr`: some element has that sub-attribute.
            Target::Multi { array, sub } if path.sub.is_some() => {
                let alias = self.alias();
                self.push(&format!(
                    "EXISTS (SELECT 1 FROM json_each({}.resource, ",
                    self.table.name()
                ));
                self.param(Sql::Text(array));
                self.push(&format!(
                    ") AS {alias} WHERE coalesce(json_extract({alias}.value, "
                ));
                self.param(Sql::Text(format!("$.{}", json_key(&sub))));
                self.push("), '') <> '')");
            }
            Target::Multi { array, .. } => {
                self.push(&format!(
                    "coalesce(json_array_length({}.resource, ",
                    self.table.name()
                ));
                self.param(Sql::Text(array));
                self.push("), 0) > 0");
            }
            Target::Membership { display } => {
                let col = self.membership_column(display);
                self.push(&format!(
                    "EXISTS ({} AND coalesce({col}, '') <> '')",
                    self.membership_from()
                ));
            }
        }
        Ok(())
    }

    fn compare(
        &mut self,
        path: &AttrPath,
        op: CompareOp,
        value: &Value,
        element: Option<&str>,
    ) -> Result<(), Problem> {
        if let Some(alias) = element {
            let expr = format!("json_extract({alias}.value, ?)");
            let sub_kind = sub_kind(&path.attr);
            self.out.params.push(Sql::Text(element_path(path)));
            return self.emit_compare(&expr, sub_kind, false, op, value);
        }
        match self.resolve(path)? {
            Target::Column { expr, kind } => match kind {
                ColKind::Folded => {
                    self.emit_compare(expr, Kind::String, true, op, &fold_value(value))
                }
                ColKind::Exact => self.emit_compare(expr, Kind::String, true, op, value),
                ColKind::Bool => self.emit_compare(expr, Kind::Boolean, true, op, value),
                ColKind::Time => {
                    let Value::Str(s) = value else {
                        return Err(invalid_filter(
                            "dates are compared with quoted RFC 3339 strings",
                        ));
                    };
                    let Some(t) = parse_rfc3339(s) else {
                        return Err(invalid_filter(&format!(
                            "'{s}' is not an RFC 3339 date-time"
                        )));
                    };
                    self.emit_compare(expr, Kind::DateTime, true, op, &Value::Num(t as f64))
                }
            },
            t @ Target::Json { .. } => {
                let Target::Json {
                    case_exact, kind, ..
                } = t
                else {
                    unreachable!()
                };
                let expr = self.json_expr(&t);
                self.emit_compare(&expr, kind, case_exact, op, value)
            }
            Target::Multi { array, sub } => {
                let alias = self.alias();
                self.push(&format!(
                    "EXISTS (SELECT 1 FROM json_each({}.resource, ",
                    self.table.name()
                ));
                self.param(Sql::Text(array));
                self.push(&format!(") AS {alias} WHERE "));
                let expr = format!("json_extract({alias}.value, ?)");
                self.out
                    .params
                    .push(Sql::Text(format!("$.{}", json_key(&sub))));
                self.emit_compare(&expr, sub_kind(&sub), false, op, value)?;
                self.push(")");
                Ok(())
            }
            Target::Membership { display } => {
                self.push(&format!("EXISTS ({} AND ", self.membership_from()));
                self.membership_compare(display, op, value)?;
                self.push(")");
                Ok(())
            }
        }
    }

    /// Writes `expr <op> value`. `expr` may hold one `?` whose parameter the caller already
    /// pushed; every branch writes `expr` exactly once, before the value's parameter.
    fn emit_compare(
        &mut self,
        expr: &str,
        kind: Kind,
        case_exact: bool,
        op: CompareOp,
        value: &Value,
    ) -> Result<(), Problem> {
        if *value == Value::Null {
            return self.emit_null_compare(expr, op);
        }
        if kind == Kind::Boolean && !matches!(value, Value::Bool(_)) {
            return Err(invalid_filter(
                "a boolean attribute is compared with true or false",
            ));
        }
        if kind == Kind::Boolean && !matches!(op, CompareOp::Eq | CompareOp::Ne) {
            return Err(invalid_filter("booleans support only eq and ne"));
        }
        let insensitive = kind == Kind::String && !case_exact && matches!(value, Value::Str(_));
        let lhs = if insensitive {
            format!("lower({expr})")
        } else {
            expr.to_string()
        };
        match (op, sql_literal(value)) {
            (CompareOp::Co | CompareOp::Sw | CompareOp::Ew, Sql::Text(text)) => {
                // LIKE ignores ASCII case: right for case-insensitive attributes. Case-exact
                // ones (and folded columns, compared with folded values) use instr/substr.
                if insensitive || kind != Kind::String || !case_exact {
                    self.emit_like(&lhs, op, &text, insensitive);
                } else {
                    self.emit_exact_substring(&lhs, op, text);
                }
            }
            (CompareOp::Co | CompareOp::Sw | CompareOp::Ew, _) => {
                return Err(invalid_filter("co, sw and ew compare strings"));
            }
            (_, v) => self.emit_ordering(&lhs, op, v, insensitive),
        }
        Ok(())
    }

    fn emit_null_compare(&mut self, expr: &str, op: CompareOp) -> Result<(), Problem> {
        match op {
            CompareOp::Eq => {
                self.push(&format!("{expr} IS NULL"));
                Ok(())
            }
            CompareOp::Ne => {
                self.push(&format!("{expr} IS NOT NULL"));
                Ok(())
            }
            _ => Err(invalid_filter("null can only be compared with eq or ne")),
        }
    }

    /// `eq`, `ne`, `gt`, `ge`, `lt`, `le`.
    fn emit_ordering(&mut self, lhs: &str, op: CompareOp, v: Sql, insensitive: bool) {
        let sym = match op {
            CompareOp::Eq => "=",
            CompareOp::Ne => "<>",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::Lt => "<",
            _ => "<=",
        };
        // `ne` matches an absent value too (as `not (x eq v)` does): NULL <> v is
        // NULL in SQL, which would drop it.
        let ne = op == CompareOp::Ne;
        if ne {
            self.push("coalesce(");
        }
        self.push(&format!("{lhs} {sym} "));
        if insensitive {
            self.push("lower(");
            self.param(v);
            self.push(")");
        } else {
            self.param(v);
        }
        if ne {
            self.push(", 1)");
        }
    }

    /// `co`, `sw`, `ew` as LIKE, with the value's wildcards escaped.
    fn emit_like(&mut self, lhs: &str, op: CompareOp, text: &str, insensitive: bool) {
        let escaped = text
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let pattern = match op {
            CompareOp::Co => format!("%{escaped}%"),
            CompareOp::Sw => format!("{escaped}%"),
            _ => format!("%{escaped}"),
        };
        self.push(&format!("{lhs} LIKE "));
        let pattern = if insensitive {
            pattern.to_lowercase()
        } else {
            pattern
        };
        self.param(Sql::Text(pattern));
        self.push(" ESCAPE '\\'");
    }

    /// `co`, `sw`, `ew` respecting case.
    fn emit_exact_substring(&mut self, lhs: &str, op: CompareOp, text: String) {
        match op {
            CompareOp::Co => {
                self.push(&format!("instr({lhs}, "));
                self.param(Sql::Text(text));
                self.push(") > 0");
            }
            CompareOp::Sw => {
                self.push(&format!("substr({lhs}, 1, {}) = ", text.chars().count()));
                self.param(Sql::Text(text));
            }
            _ => {
                self.push(&format!(
                    "substr({lhs}, -{}) = ",
                    text.chars().count().max(1)
                ));
                self.param(Sql::Text(text));
            }
        }
    }

    /// The expression for a JSON target; pushes its path parameter (use it exactly once).
    fn json_expr(&mut self, target: &Target) -> String {
        let Target::Json { path, .. } = target else {
            return "NULL".into();
        };
        self.out.params.push(Sql::Text(path.clone()));
        format!("json_extract({}.resource, ?)", self.table.name())
    }

    fn membership_from(&self) -> String {
        match self.table {
            Table::Users => "SELECT 1 FROM group_members gm JOIN groups g ON g.id = gm.group_id WHERE gm.user_id = users.id".into(),
            Table::Groups => "SELECT 1 FROM group_members gm JOIN users g ON g.id = gm.user_id WHERE gm.group_id = groups.id".into(),
        }
    }

    /// `members[value eq "x"]` / `groups[display sw "E"]`: one membership row satisfies
    /// the whole value filter.
    fn membership_value_path(&mut self, filter: &Filter) -> Result<(), Problem> {
        self.push(&format!("EXISTS ({} AND ", self.membership_from()));
        self.membership_filter(filter)?;
        self.push(")");
        Ok(())
    }

    fn membership_filter(&mut self, f: &Filter) -> Result<(), Problem> {
        if self.combinator(f, &mut |c, item| c.membership_filter(item))? {
            return Ok(());
        }
        match f {
            Filter::And(_) | Filter::Or(_) | Filter::Not(_) => {}
            Filter::Compare { path, op, value } => {
                let display = membership_sub(&path.attr, path.sub.as_deref())?;
                self.membership_compare(display, *op, value)?;
            }
            Filter::Present(path) => {
                let display = membership_sub(&path.attr, path.sub.as_deref())?;
                let col = self.membership_column(display);
                self.push(&format!("coalesce({col}, '') <> ''"));
            }
            Filter::ValuePath { .. } => {
                return Err(invalid_filter("value filters cannot be nested"));
            }
        }
        Ok(())
    }

    /// The column a membership comparison reads, joined as `gm` (group_members) and `g`
    /// (the other side: the group of a user, or the user of a group). A member's display
    /// is what a Group renders: its displayName, else its userName.
    fn membership_column(&self, display: bool) -> &'static str {
        match (self.table, display) {
            (Table::Users, false) => "gm.group_id",
            (Table::Users, true) => "g.display_name_key",
            (Table::Groups, false) => "gm.user_id",
            (Table::Groups, true) => "coalesce(g.display_name, g.user_name)",
        }
    }

    fn membership_compare(
        &mut self,
        display: bool,
        op: CompareOp,
        value: &Value,
    ) -> Result<(), Problem> {
        let col = self.membership_column(display);
        match (self.table, display) {
            // Group names are stored folded; compare folded values exactly.
            (Table::Users, true) => {
                self.emit_compare(col, Kind::String, true, op, &fold_value(value))
            }
            (Table::Groups, true) => self.emit_compare(col, Kind::String, false, op, value),
            (_, false) => self.emit_compare(col, Kind::String, true, op, value),
        }
    }

    fn resolve(&mut self, path: &AttrPath) -> Result<Target, Problem> {
        if let Some(target) = self.extension_target(path)? {
            return Ok(target);
        }
        if let Some(target) = column_target(self.table, path)? {
            return Ok(target);
        }
        Ok(json_target(self.table, path))
    }

    /// An enterprise extension attribute; refuses any schema other than the table's own.
    fn extension_target(&self, path: &AttrPath) -> Result<Option<Target>, Problem> {
        let t = self.table;
        let Some(urn) = &path.schema else {
            return Ok(None);
        };
        if urn.eq_ignore_ascii_case(schema::ENTERPRISE) && t == Table::Users {
            let attr = schema::find(schema::ENTERPRISE_ATTRS, &path.attr);
            let name = attr.map_or(path.attr.as_str(), |a| a.name);
            let mut json = format!("$.\"{}\".{}", schema::ENTERPRISE, json_key(name));
            if let Some(sub) = &path.sub {
                json.push('.');
                json.push_str(&json_key(sub));
            }
            return Ok(Some(Target::Json {
                path: json,
                case_exact: false,
                kind: Kind::String,
            }));
        }
        let core = if t == Table::Users {
            schema::USER
        } else {
            schema::GROUP
        };
        if !urn.eq_ignore_ascii_case(core) {
            return Err(invalid_filter(&format!("unknown schema {urn}")));
        }
        Ok(None)
    }
}

/// The attributes stored in their own columns (or as membership rows); `None` for those
/// read from the stored resource.
fn column_target(t: Table, path: &AttrPath) -> Result<Option<Target>, Problem> {
    let name = path.attr.to_ascii_lowercase();
    let sub = path.sub.as_deref().map(str::to_ascii_lowercase);
    let col = |expr, kind| Ok(Some(Target::Column { expr, kind }));
    let membership = |display| Ok(Some(Target::Membership { display }));
    match (t, name.as_str(), sub.as_deref()) {
        (Table::Users, "id", None) => col("users.id", ColKind::Exact),
        (Table::Users, "username", None) => col("users.user_name_key", ColKind::Folded),
        (Table::Users, "externalid", None) => col("users.external_id", ColKind::Exact),
        (Table::Users, "active", None) => col("users.active", ColKind::Bool),
        (Table::Users, "meta", Some("created")) => col("users.created_at", ColKind::Time),
        (Table::Users, "meta", Some("lastmodified")) => col("users.updated_at", ColKind::Time),
        (Table::Users, "groups", None | Some("value")) => membership(false),
        (Table::Users, "groups", Some("display")) => membership(true),
        (Table::Groups, "id", None) => col("groups.id", ColKind::Exact),
        (Table::Groups, "displayname", None) => col("groups.display_name_key", ColKind::Folded),
        (Table::Groups, "externalid", None) => col("groups.external_id", ColKind::Exact),
        (Table::Groups, "meta", Some("created")) => col("groups.created_at", ColKind::Time),
        (Table::Groups, "meta", Some("lastmodified")) => col("groups.updated_at", ColKind::Time),
        (Table::Groups, "members", None | Some("value")) => membership(false),
        (Table::Groups, "members", Some("display")) => membership(true),
        (Table::Users, "groups", Some(other)) | (Table::Groups, "members", Some(other)) => {
            Err(invalid_filter(&format!(
                "{}.{other} cannot be filtered on; use value or display",
                path.attr
            )))
        }
        // Never stored, so a filter on it could only ever answer "nobody".
        (Table::Users, "password", _) => Err(invalid_filter("password cannot be filtered on")),
        _ => Ok(None),
    }
}

/// A core attribute read from the stored resource: one value, or some element of a
/// multi-valued attribute.
fn json_target(t: Table, path: &AttrPath) -> Target {
    let attrs = if t == Table::Users {
        schema::USER_ATTRS
    } else {
        schema::GROUP_ATTRS
    };
    let attr = schema::find(attrs, &path.attr);
    let canonical = attr.map_or(path.attr.clone(), |a| a.name.to_string());
    if let Some(a) = attr.filter(|a| a.multi) {
        let sub_name = path
            .sub
            .as_deref()
            .map(|s| schema::find(a.sub, s).map_or(s.to_string(), |x| x.name.to_string()))
            .unwrap_or_else(|| "value".into());
        return Target::Multi {
            array: format!("$.{}", json_key(&canonical)),
            sub: sub_name,
        };
    }
    let mut json = format!("$.{}", json_key(&canonical));
    let mut kind = attr.map_or(Kind::String, |a| a.kind);
    let mut case_exact = attr.is_some_and(|a| a.case_exact);
    if let Some(s) = &path.sub {
        let sub_attr = attr.and_then(|a| schema::find(a.sub, s));
        json.push('.');
        json.push_str(&json_key(sub_attr.map_or(s.as_str(), |x| x.name)));
        kind = sub_attr.map_or(Kind::String, |x| x.kind);
        case_exact = sub_attr.is_some_and(|x| x.case_exact);
    }
    Target::Json {
        path: json,
        case_exact,
        kind,
    }
}

/// A filter literal as an SQL parameter (whole numbers as integers).
fn sql_literal(v: &Value) -> Sql {
    match v {
        Value::Str(s) => Sql::Text(s.clone()),
        Value::Num(n) if n.fract() == 0.0 && n.abs() < 9e15 => Sql::Integer(*n as i64),
        Value::Num(n) => Sql::Real(*n),
        Value::Bool(b) => Sql::Integer(i64::from(*b)),
        Value::Null => Sql::Null,
    }
}

/// Whether a path inside a membership value filter is `display` (else `value`).
fn membership_sub(attr: &str, sub: Option<&str>) -> Result<bool, Problem> {
    match (attr.to_ascii_lowercase().as_str(), sub) {
        ("display", None) => Ok(true),
        ("value", None) => Ok(false),
        _ => Err(invalid_filter(
            "membership filters compare value or display",
        )),
    }
}

/// Quotes a JSON object key for a JSON path (names are validated by the parser; `$ref`
/// and the URN need quoting).
fn json_key(name: &str) -> String {
    if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', ""))
    }
}

/// A path relative to a multi-valued element (`type`, `value`, `primary`).
fn element_path(path: &AttrPath) -> String {
    let mut p = format!("$.{}", json_key(&canonical_sub(&path.attr)));
    if let Some(s) = &path.sub {
        p.push('.');
        p.push_str(&json_key(s));
    }
    p
}

fn canonical_sub(name: &str) -> String {
    for n in [
        "value",
        "display",
        "type",
        "primary",
        "$ref",
        "locality",
        "region",
        "postalCode",
        "country",
        "streetAddress",
        "formatted",
    ] {
        if n.eq_ignore_ascii_case(name) {
            return n.to_string();
        }
    }
    name.to_string()
}

fn sub_kind(name: &str) -> Kind {
    if name.eq_ignore_ascii_case("primary") {
        Kind::Boolean
    } else {
        Kind::String
    }
}

fn fold_value(v: &Value) -> Value {
    match v {
        Value::Str(s) => Value::Str(fold(s)),
        other => other.clone(),
    }
}

fn invalid_filter(message: &str) -> Problem {
    Problem::scim(
        Reason::BadRequest,
        "invalidFilter",
        format!("Invalid filter: {message}."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::scim::filter::parse_filter;
    use rusqlite::Connection;

    fn db() -> Connection {
        let c = Connection::open_in_memory().expect("db");
        c.execute_batch(include_str!("../../schema.sql"))
            .expect("schema");
        let users = [
            (
                "u1",
                "Bjensen@Example.com",
                Some("ext-1"),
                1,
                r#"{"userName":"Bjensen@Example.com","displayName":"Barbara Jensen","name":{"givenName":"Barbara","familyName":"Jensen"},"emails":[{"value":"bjensen@example.com","type":"work","primary":true},{"value":"babs@home.example","type":"home"}],"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Sales","employeeNumber":"701"},"title":"Tour Guide"}"#,
                1_700_000_000,
            ),
            (
                "u2",
                "ryan@contoso.com",
                Some("jyoung"),
                0,
                r#"{"userName":"ryan@contoso.com","displayName":"Ryan Leenay","emails":[{"value":"ryan@contoso.com","type":"work"}]}"#,
                1_800_000_000,
            ),
            (
                "u3",
                "nomail",
                None,
                1,
                r#"{"userName":"nomail"}"#,
                1_900_000_000,
            ),
        ];
        for (id, name, ext, active, res, at) in users {
            c.execute(
                "INSERT INTO users (id, user_name, user_name_key, external_id, active, resource, version, created_at, updated_at) VALUES (?1, ?2, lower(?2), ?3, ?4, ?5, 1, ?6, ?6)",
                rusqlite::params![id, name, ext, active, res, at],
            )
            .expect("user");
        }
        c.execute_batch(
            r#"INSERT INTO groups (id, display_name, display_name_key, resource, version, created_at, updated_at) VALUES ('g1', 'Engineers', 'engineers', '{"displayName":"Engineers"}', 1, 0, 0);
               INSERT INTO groups (id, display_name, display_name_key, resource, version, created_at, updated_at) VALUES ('g2', 'Admins', 'admins', '{"displayName":"Admins"}', 1, 0, 0);
               INSERT INTO group_members VALUES ('g1', 'u1'), ('g1', 'u2'), ('g2', 'u2');"#,
        )
        .expect("groups");
        c
    }

    fn ids(c: &Connection, table: Table, filter: &str) -> Vec<String> {
        let f = parse_filter(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
        let clause = compile(table, &f).unwrap_or_else(|e| panic!("{filter}: {e}"));
        let sql = format!(
            "SELECT id FROM {} WHERE {} ORDER BY id",
            table.name(),
            clause.sql
        );
        let mut stmt = c.prepare(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        stmt.query_map(rusqlite::params_from_iter(clause.params.iter()), |r| {
            r.get(0)
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
    }

    #[test]
    fn user_filters_match_what_idps_send() {
        let c = db();
        let u = |f: &str| ids(&c, Table::Users, f);
        assert_eq!(
            u(r#"userName eq "bjensen@example.com""#),
            ["u1"],
            "case-insensitive userName"
        );
        assert_eq!(
            u(r#"username Eq "BJENSEN@EXAMPLE.COM""#),
            ["u1"],
            "PingOne casing"
        );
        assert_eq!(u("externalId eq jyoung"), ["u2"], "unquoted value");
        assert_eq!(
            u(r#"externalId eq "JYOUNG""#),
            Vec::<String>::new(),
            "externalId is case-exact"
        );
        assert_eq!(
            u(r#"id eq "7f0c2d0e-0000-4000-8000-000000000000""#),
            Vec::<String>::new(),
            "Entra's random-GUID probe"
        );
        assert_eq!(u("active eq false"), ["u2"]);
        assert_eq!(
            u(r#"emails[type eq "work"].value eq "ryan@contoso.com""#),
            ["u2"],
            "Entra's form"
        );
        assert_eq!(
            u(r#"emails[type eq "work" and value co "example"]"#),
            ["u1"]
        );
        assert_eq!(
            u(r#"emails.value eq "BABS@home.example""#),
            ["u1"],
            "emails are case-insensitive"
        );
        assert_eq!(u(r#"emails co "contoso""#), ["u2"]);
        assert_eq!(u("emails pr"), ["u1", "u2"]);
        assert_eq!(u("title pr"), ["u1"]);
        assert_eq!(u(r#"name.familyName sw "jen""#), ["u1"]);
        assert_eq!(u(r#"displayName ew "LEENAY""#), ["u2"]);
        assert_eq!(
            u(
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "sales""#
            ),
            ["u1"]
        );
        assert_eq!(u(r#"meta.created gt "2025-01-01T00:00:00Z""#), ["u2", "u3"]);
        assert_eq!(u(r#"not (userName eq "nomail")"#), ["u1", "u2"]);
        assert_eq!(
            u(r#"not (title eq "Tour Guide")"#),
            ["u2", "u3"],
            "absent attributes satisfy not()"
        );
        assert_eq!(
            u(r#"userName sw "b" or (active eq false and displayName co "ryan")"#),
            ["u1", "u2"]
        );
        assert_eq!(u(r#"groups eq "g2""#), ["u2"]);
        assert_eq!(u(r#"groups[display eq "engineers"]"#), ["u1", "u2"]);
        assert_eq!(
            u(r#"userName co "%""#),
            Vec::<String>::new(),
            "LIKE wildcards are escaped"
        );
    }

    #[test]
    fn group_filters() {
        let c = db();
        let g = |f: &str| ids(&c, Table::Groups, f);
        assert_eq!(g(r#"displayName eq "ENGINEERS""#), ["g1"]);
        assert_eq!(g(r#"members[value eq "u2"]"#), ["g1", "g2"]);
        assert_eq!(g(r#"members eq "u1""#), ["g1"]);
        assert_eq!(g(r#"displayName sw "adm""#), ["g2"]);
        assert_eq!(
            g(r#"members.display eq "RYAN@contoso.com""#),
            ["g1", "g2"],
            "item 9.1: a member's display is its displayName, else its userName"
        );
        assert_eq!(g(r#"members[display co "jensen"]"#), ["g1"]);
    }

    #[test]
    fn nonsense_comparisons_are_invalid_filters() {
        for bad in [
            r#"active eq "yes""#,
            "active gt true",
            r#"meta.created gt "last week""#,
            "userName gt null",
            r#"urn:example:other:attr eq "x""#,
        ] {
            let f = parse_filter(bad).expect("parses");
            let e = compile(Table::Users, &f).expect_err(bad);
            assert_eq!(e.scim_type, Some("invalidFilter"), "{bad}");
        }
    }

    #[test]
    fn sorting_expressions() {
        assert_eq!(
            sort_expr(Table::Users, "userName").expect("ok").0,
            "users.user_name_key"
        );
        assert!(
            sort_expr(Table::Users, "name.familyName")
                .expect("ok")
                .0
                .starts_with("lower(json_extract")
        );
        assert!(sort_expr(Table::Users, "emails").is_err());
    }
}
