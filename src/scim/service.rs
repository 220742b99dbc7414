//! What every SCIM operation shares: the caller (a token's scope and audit actor, and the
//! one transaction a directory write and its seat changes share), listing queries, the
//! version check, new ids and the shapes of replies. No HTTP: the endpoints
//! (`endpoints::scim`) read requests into these and render the results.

use serde_json::Value;

use crate::audit::Actor;
use crate::db::Db;
use crate::domain::problem::{Problem, Reason};
use crate::http::percent_decode;

/// The largest page a client may ask for (advertised as filter.maxResults).
pub const MAX_RESULTS: i64 = 1000;
const DEFAULT_COUNT: i64 = 100;

/// One authenticated SCIM client's request: the operations' view of the directory, with the
/// actor its directory changes (and the seat changes they cause) are audited under.
pub struct Caller<'a> {
    pub db: &'a Db,
    /// `{public_url}/scim/v2`, for `location` and `$ref`.
    pub base_url: &'a str,
    /// `scim:<token name>`.
    actor: Actor,
    /// The connection the token provisions for: the only users and groups it sees.
    scope: Option<String>,
    /// The request's time (the gateway's clock, read once per request): every timestamp
    /// the operation stores.
    pub now: i64,
}

impl<'a> Caller<'a> {
    pub fn new(
        db: &'a Db,
        base_url: &'a str,
        actor: Actor,
        scope: Option<String>,
        now: i64,
    ) -> Caller<'a> {
        Caller {
            db,
            base_url,
            actor,
            scope,
            now,
        }
    }

    /// The `location` of a resource, e.g. `{base}/Users/{id}`.
    pub fn location(&self, endpoint: &str, id: &str) -> String {
        format!("{}/{endpoint}/{id}", self.base_url)
    }

    /// The directory scope of this token: everything else is 404 to it.
    pub fn scope(&self) -> crate::db::directory::Scope<'_> {
        self.scope.as_deref()
    }

    /// The user with this id if this token may see it.
    pub fn user(
        &self,
        tx: &rusqlite::Transaction<'_>,
        id: &str,
    ) -> rusqlite::Result<Option<crate::db::directory::UserRow>> {
        Ok(crate::db::directory::user_by_id(tx, id)?
            .filter(|u| u.connection_id.as_deref() == self.scope()))
    }

    /// The group with this id if this token may see it.
    pub fn group(
        &self,
        tx: &rusqlite::Transaction<'_>,
        id: &str,
    ) -> rusqlite::Result<Option<crate::db::directory::GroupRow>> {
        Ok(crate::db::directory::group_by_id(tx, id)?
            .filter(|g| g.connection_id.as_deref() == self.scope()))
    }

    /// A directory write: `f`'s changes, and the seat changes they cause, in one
    /// transaction (a 2xx means both are committed).
    pub fn write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, Problem>,
    ) -> Result<T, Problem> {
        self.db.write(|tx| {
            let mark = crate::db::licensing::last_event_id(tx)?;
            let value = f(tx)?;
            crate::licensing::reconcile::after_directory_change(tx, mark, &self.actor, self.now)?;
            Ok(value)
        })
    }
}

/// What a read or write of one resource returns: its JSON (attribute projection
/// applied), its version for the ETag, its address, and whether it was just created.
#[derive(Debug)]
pub struct Reply {
    pub resource: Value,
    pub version: i64,
    pub location: String,
    pub created: bool,
}

impl Reply {
    /// A rendered resource, projected by `q` when the request named attributes.
    pub fn new(resource: Value, version: i64, location: String, q: Option<&ListQuery>) -> Reply {
        let resource = match q {
            Some(q) => crate::domain::scim::resource::project(resource, &q.attributes, &q.excluded),
            None => resource,
        };
        Reply {
            resource,
            version,
            location,
            created: false,
        }
    }

    /// Applies the request's `attributes`/`excludedAttributes` (RFC 7644 §3.9: writes
    /// take them too).
    pub fn project(self, q: &ListQuery) -> Reply {
        Reply {
            resource: crate::domain::scim::resource::project(
                self.resource,
                &q.attributes,
                &q.excluded,
            ),
            ..self
        }
    }

    pub fn created(self) -> Reply {
        Reply {
            created: true,
            ..self
        }
    }
}

/// 412 unless `required` (from If-Match) names the current version; If-Match may list
/// several (RFC 9110 §13.1.1), and any one matching is enough.
pub fn check_version(required: &Option<String>, current: i64) -> Result<(), Problem> {
    let Some(listed) = required else {
        return Ok(());
    };
    let current = current.to_string();
    let matches = listed
        .split(',')
        .map(|tag| tag.trim().trim_start_matches("W/").trim_matches('"'))
        .any(|v| v == "*" || v == current);
    if matches {
        Ok(())
    } else {
        Err(Problem::scim(
            Reason::PreconditionFailed,
            "invalidVers",
            "The resource changed since you read it (If-Match does not match its version).",
        ))
    }
}

/// Query parameters (or SearchRequest fields) of a listing or read.
#[derive(Debug, Default, Clone)]
pub struct ListQuery {
    pub filter: Option<String>,
    /// 1-based.
    pub start_index: i64,
    pub count: i64,
    pub attributes: Vec<String>,
    pub excluded: Vec<String>,
    pub sort_by: Option<String>,
    pub descending: bool,
}

impl ListQuery {
    pub fn from_query(query: &str) -> Result<ListQuery, Problem> {
        let mut q = ListQuery {
            start_index: 1,
            count: DEFAULT_COUNT,
            ..ListQuery::default()
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v)?;
            match k.to_ascii_lowercase().as_str() {
                "filter" => q.filter = Some(v),
                "startindex" => q.start_index = parse_int("startIndex", &v)?,
                "count" => q.count = parse_int("count", &v)?,
                "attributes" => q.attributes = split_list(&v),
                "excludedattributes" => q.excluded = split_list(&v),
                "sortby" => q.sort_by = Some(v),
                "sortorder" => q.descending = v.eq_ignore_ascii_case("descending"),
                _ => {} // Unknown parameters (e.g. Entra's aadOptscim062020) are ignored.
            }
        }
        Ok(q.clamped())
    }

    pub fn from_search(body: &Value) -> Result<ListQuery, Problem> {
        let o = body.as_object().ok_or_else(|| {
            Problem::scim(
                Reason::BadRequest,
                "invalidSyntax",
                "A search body must be a SearchRequest object.",
            )
        })?;
        let get = |name: &str| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        };
        let int = |name: &str, default: i64| match get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Number(n)) => n.as_i64().ok_or_else(|| bad_param(name)),
            Some(Value::String(s)) => parse_int(name, s),
            Some(_) => Err(bad_param(name)),
        };
        let list = |name: &str| match get(name) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            Some(Value::String(s)) => split_list(s),
            _ => Vec::new(),
        };
        let q = ListQuery {
            filter: get("filter").and_then(Value::as_str).map(str::to_string),
            start_index: int("startIndex", 1)?,
            count: int("count", DEFAULT_COUNT)?,
            attributes: list("attributes"),
            excluded: list("excludedAttributes"),
            sort_by: get("sortBy").and_then(Value::as_str).map(str::to_string),
            descending: get("sortOrder")
                .and_then(Value::as_str)
                .is_some_and(|s| s.eq_ignore_ascii_case("descending")),
        };
        Ok(q.clamped())
    }

    fn clamped(mut self) -> ListQuery {
        self.start_index = self.start_index.max(1);
        self.count = self.count.clamp(0, MAX_RESULTS);
        self
    }

    /// Whether `attr` is left out of responses by `attributes`/`excludedAttributes`.
    pub fn omits(&self, attr: &str) -> bool {
        if !self.attributes.is_empty() {
            return !self.attributes.iter().any(|a| {
                a.eq_ignore_ascii_case(attr)
                    || a.to_ascii_lowercase()
                        .starts_with(&format!("{}.", attr.to_ascii_lowercase()))
            });
        }
        self.excluded.iter().any(|a| a.eq_ignore_ascii_case(attr))
    }
}

fn bad_param(name: &str) -> Problem {
    Problem::scim(
        Reason::BadRequest,
        "invalidValue",
        format!("{name} must be an integer."),
    )
}

fn parse_int(name: &str, v: &str) -> Result<i64, Problem> {
    v.trim().parse().map_err(|_| bad_param(name))
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A new resource id: a random (version 4) UUID.
pub fn new_id() -> String {
    let mut b = crate::crypto::random_bytes(16);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = crate::crypto::hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Reads one page of rows and the total for a listing query.
pub type PageFn<R> = fn(
    &rusqlite::Transaction<'_>,
    crate::db::directory::Scope<'_>,
    &ListQuery,
) -> Result<(i64, Vec<R>), Problem>;
/// Renders one row as a listing shows it.
pub type ListedFn<R> =
    fn(&Caller<'_>, &rusqlite::Transaction<'_>, &R, &ListQuery) -> Result<Value, Problem>;

/// A listing: one page of rows, each rendered as the listing shows it, in a ListResponse.
pub fn list_with<R>(
    scim: &Caller<'_>,
    q: &ListQuery,
    page: PageFn<R>,
    listed: ListedFn<R>,
) -> Result<Value, Problem> {
    let (total, items) = scim.db.read(|tx| {
        let (total, rows) = page(tx, scim.scope(), q)?;
        let items = rows
            .iter()
            .map(|row| listed(scim, tx, row, q))
            .collect::<Result<Vec<_>, _>>()?;
        Ok::<_, Problem>((total, items))
    })?;
    Ok(list_response(total, q.start_index, items))
}

/// A ListResponse body.
pub fn list_response(total: i64, start_index: i64, resources: Vec<Value>) -> Value {
    serde_json::json!({
        "schemas": [crate::domain::scim::schema::LIST],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_decoded_and_clamped() {
        let q = ListQuery::from_query("filter=userName%20eq%20%22a%2Bb%40x%22&startIndex=0&count=5000&excludedAttributes=members&aadOptscim062020")
            .expect("parses");
        assert_eq!(q.filter.as_deref(), Some("userName eq \"a+b@x\""));
        assert_eq!((q.start_index, q.count), (1, MAX_RESULTS));
        assert!(q.omits("members"));
        assert!(ListQuery::from_query("count=many").is_err());
        assert!(ListQuery::from_query("filter=%zz").is_err());
    }

    #[test]
    fn ids_are_uuid_v4() {
        let id = new_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, new_id());
    }
}
