//! The `/scim/v2` handlers (routed, authenticated and rate limited by the pipeline from
//! `routes::ROUTES`), the shared request and response helpers, the per-token rate limit
//! and one request-log entry per request.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use super::reqlog::{self, Entry, RequestLog};
use super::{discovery, groups, users};
use crate::audit::Actor;
use crate::clock::now_unix;
use crate::db::Db;
use crate::error::{HttpError, Reason};
use crate::http::{Request, Response, percent_decode};
use crate::pipeline::{Ctx, Handled};
use crate::ratelimit::RateLimiter;

pub const BASE_PATH: &str = "/scim/v2";
/// The largest page a client may ask for (advertised as filter.maxResults).
pub const MAX_RESULTS: i64 = 1000;
const DEFAULT_COUNT: i64 = 100;

/// Everything the SCIM endpoints share.
pub struct Scim {
    pub db: Arc<Db>,
    /// `{public_url}/scim/v2`, for `location` and `$ref`.
    pub base_url: String,
    limiter: RateLimiter,
    log: RequestLog,
    /// Anyone can send requests without a token; they are logged (a wrong token is what an
    /// admin debugging provisioning needs to see) only as often as these allow, so they
    /// cannot push the IdP's own entries out of the log.
    unauthenticated_per_client: RateLimiter<IpAddr>,
    unauthenticated_overall: RateLimiter<()>,
}

/// Unauthenticated requests logged per client address: a burst, then one a minute.
const UNAUTHENTICATED_LOG_BURST: u32 = 5;
const UNAUTHENTICATED_LOG_PER_CLIENT_PER_SEC: f64 = 1.0 / 60.0;
/// And from everyone together: one a second (100,000 log rows take a day to turn over).
const UNAUTHENTICATED_LOG_OVERALL_PER_SEC: f64 = 1.0;

impl Scim {
    pub fn new(
        db: Arc<Db>,
        public_url: &str,
        config: &crate::config::ScimConfig,
        clock: crate::clock::Clock,
    ) -> std::io::Result<Scim> {
        Ok(Scim {
            log: RequestLog::start(Arc::clone(&db), config.request_log_rows as i64)?,
            db,
            base_url: format!("{public_url}{BASE_PATH}"),
            limiter: RateLimiter::new(
                f64::from(config.requests_per_second),
                config.burst,
                clock.clone(),
            ),
            unauthenticated_per_client: RateLimiter::new(
                UNAUTHENTICATED_LOG_PER_CLIENT_PER_SEC,
                UNAUTHENTICATED_LOG_BURST,
                clock.clone(),
            ),
            unauthenticated_overall: RateLimiter::new(
                UNAUTHENTICATED_LOG_OVERALL_PER_SEC,
                60,
                clock,
            ),
        })
    }

    /// The `location` of a resource, e.g. `{base}/Users/{id}`.
    pub fn location(&self, endpoint: &str, id: &str) -> String {
        format!("{}/{endpoint}/{id}", self.base_url)
    }

    /// Flushes the request log (at shutdown).
    pub fn close(&self) {
        self.log.close();
    }

    /// A SCIM token's request rate (the pipeline's limit for SCIM routes).
    pub fn limit(&self, token_id: i64) -> Result<(), HttpError> {
        self.limiter.check(token_id).map_err(|retry| {
            HttpError::scim(
                Reason::TooManyRequests,
                "tooMany",
                "Too many requests; slow down and retry.",
            )
            .with_retry_after(retry)
        })
    }

    /// One request-log entry per SCIM request, refused ones included.
    pub fn record(
        &self,
        req: &Request,
        error: Option<&HttpError>,
        response: &Response,
        token_id: Option<i64>,
        started: Instant,
    ) {
        if token_id.is_none()
            && (self.unauthenticated_per_client.check(req.client).is_err()
                || self.unauthenticated_overall.check(()).is_err())
        {
            return;
        }
        let (scim_type, detail) = match error {
            None => (None, None),
            Some(e) => (
                Some(e.effective_scim_type().to_string()),
                Some(e.message.clone()),
            ),
        };
        self.log.record(Entry {
            at: now_unix(),
            token_id,
            client: req.client.to_string(),
            method: req.method.clone(),
            path: req.path.chars().take(512).collect(),
            status: response.status,
            scim_type,
            detail,
            request: reqlog::sanitize_body(&req.body),
            duration_us: started.elapsed().as_micros() as i64,
        });
    }

    /// The caller behind a SCIM route's token.
    fn caller<'a>(&'a self, cx: &Ctx<'_>) -> Result<Caller<'a>, HttpError> {
        let token = cx.scim_token()?;
        Ok(Caller {
            scim: self,
            actor: Actor::Scim(token.name.clone()),
            scope: token.connection_id.clone(),
        })
    }
}

/// The SCIM routes' handlers (`routes::ROUTES`): each reads its request and calls the
/// resource's operation as the token's caller.
impl Scim {
    pub fn service_provider_config(&self) -> Handled {
        Ok(scim_json(
            200,
            &discovery::service_provider_config(&self.base_url)?,
        ))
    }

    pub fn resource_types(&self) -> Handled {
        Ok(scim_json(200, &discovery::resource_types(&self.base_url)?))
    }

    pub fn resource_type(&self, name: &str) -> Handled {
        Ok(scim_json(
            200,
            &discovery::resource_type(&self.base_url, name)?,
        ))
    }

    pub fn schemas(&self) -> Handled {
        Ok(scim_json(200, &discovery::schemas(&self.base_url)?))
    }

    pub fn schema(&self, id: &str) -> Handled {
        Ok(scim_json(200, &discovery::schema(&self.base_url, id)?))
    }

    pub fn list_users(&self, cx: &Ctx<'_>) -> Handled {
        users::list(&self.caller(cx)?, &ListQuery::from_query(&cx.req.query)?)
    }

    pub fn create_user(&self, cx: &Ctx<'_>) -> Handled {
        users::create(&self.caller(cx)?, read_json(cx.req)?)
    }

    pub fn search_users(&self, cx: &Ctx<'_>) -> Handled {
        users::list(
            &self.caller(cx)?,
            &ListQuery::from_search(&read_json(cx.req)?)?,
        )
    }

    pub fn get_user(&self, cx: &Ctx<'_>) -> Handled {
        users::get(
            &self.caller(cx)?,
            cx.param("id"),
            &ListQuery::from_query(&cx.req.query)?,
        )
    }

    pub fn replace_user(&self, cx: &Ctx<'_>) -> Handled {
        let body = read_json(cx.req)?;
        users::replace(&self.caller(cx)?, cx.param("id"), if_match(cx.req), body)
    }

    pub fn patch_user(&self, cx: &Ctx<'_>) -> Handled {
        let body = read_json(cx.req)?;
        users::patch(&self.caller(cx)?, cx.param("id"), if_match(cx.req), body)
    }

    pub fn delete_user(&self, cx: &Ctx<'_>) -> Handled {
        users::delete(&self.caller(cx)?, cx.param("id"), if_match(cx.req))
    }

    pub fn list_groups(&self, cx: &Ctx<'_>) -> Handled {
        groups::list(&self.caller(cx)?, &ListQuery::from_query(&cx.req.query)?)
    }

    pub fn create_group(&self, cx: &Ctx<'_>) -> Handled {
        groups::create(&self.caller(cx)?, read_json(cx.req)?)
    }

    pub fn search_groups(&self, cx: &Ctx<'_>) -> Handled {
        groups::list(
            &self.caller(cx)?,
            &ListQuery::from_search(&read_json(cx.req)?)?,
        )
    }

    pub fn get_group(&self, cx: &Ctx<'_>) -> Handled {
        groups::get(
            &self.caller(cx)?,
            cx.param("id"),
            &ListQuery::from_query(&cx.req.query)?,
        )
    }

    pub fn replace_group(&self, cx: &Ctx<'_>) -> Handled {
        let body = read_json(cx.req)?;
        groups::replace(&self.caller(cx)?, cx.param("id"), if_match(cx.req), body)
    }

    pub fn patch_group(&self, cx: &Ctx<'_>) -> Handled {
        let body = read_json(cx.req)?;
        let q = ListQuery::from_query(&cx.req.query)?;
        groups::patch(
            &self.caller(cx)?,
            cx.param("id"),
            if_match(cx.req),
            body,
            &q,
        )
    }

    pub fn delete_group(&self, cx: &Ctx<'_>) -> Handled {
        groups::delete(&self.caller(cx)?, cx.param("id"), if_match(cx.req))
    }

    pub fn search_all(&self, cx: &Ctx<'_>) -> Handled {
        let q = ListQuery::from_search(&read_json(cx.req)?)?;
        discovery::search_all(&self.caller(cx)?, &q)
    }
}

/// One authenticated SCIM client's request: the handlers' view of the service, with the
/// actor its directory changes (and the seat changes they cause) are audited under.
pub struct Caller<'a> {
    scim: &'a Scim,
    /// `scim:<token name>`.
    actor: Actor,
    /// The connection the token provisions for: the only users and groups it sees.
    scope: Option<String>,
}

impl std::ops::Deref for Caller<'_> {
    type Target = Scim;

    fn deref(&self) -> &Scim {
        self.scim
    }
}

impl Caller<'_> {
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
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, HttpError>,
    ) -> Result<T, HttpError> {
        self.db.write(|tx| {
            let mark = crate::db::licensing::last_event_id(tx)?;
            let value = f(tx)?;
            crate::licensing::reconcile::after_directory_change(tx, mark, &self.actor, now_unix())?;
            Ok(value)
        })
    }
}

/// The response for one rendered resource: `attributes`/`excludedAttributes` applied, its
/// ETag, and a Location when it was just created.
pub fn resource_response(
    status: u16,
    value: Value,
    version: i64,
    location: &str,
    q: Option<&ListQuery>,
) -> Response {
    let value = match q {
        Some(q) => super::resource::project(value, &q.attributes, &q.excluded),
        None => value,
    };
    let response = scim_json(status, &value).with_header("ETag", &super::resource::etag(version));
    if status == 201 {
        response.with_header("Location", location)
    } else {
        response
    }
}

/// A SCIM JSON response.
pub fn scim_json(status: u16, v: &Value) -> Response {
    Response::json(status, v).with_header("Content-Type", "application/scim+json")
}

/// Parses a request body as JSON, accepting `application/scim+json` and `application/json`.
pub fn read_json(req: &Request) -> Result<Value, HttpError> {
    if let Some(ct) = req.header("content-type") {
        let media = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if media != "application/scim+json" && media != "application/json" {
            return Err(HttpError::scim(
                Reason::UnsupportedMediaType,
                "invalidSyntax",
                format!(
                    "Send SCIM requests as application/scim+json or application/json, not {media}."
                ),
            ));
        }
    }
    if req.body.is_empty() {
        return Err(HttpError::scim(
            Reason::BadRequest,
            "invalidSyntax",
            "The request needs a JSON body.",
        ));
    }
    serde_json::from_slice(&req.body).map_err(|e| {
        HttpError::scim(
            Reason::BadRequest,
            "invalidSyntax",
            format!("The request body is not valid JSON: {e}."),
        )
    })
}

/// The version an `If-Match` header requires: `None` when absent or `*`.
pub fn if_match(req: &Request) -> Option<String> {
    let v = req.header("if-match")?.trim();
    if v == "*" {
        return None;
    }
    Some(v.trim_start_matches("W/").trim_matches('"').to_string())
}

/// 412 unless `required` (from If-Match) is the current version.
pub fn check_version(required: &Option<String>, current: i64) -> Result<(), HttpError> {
    match required {
        Some(v) if *v != current.to_string() => Err(HttpError::scim(
            Reason::PreconditionFailed,
            "invalidVers",
            "The resource changed since you read it (If-Match does not match its version).",
        )),
        _ => Ok(()),
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
    pub fn from_query(query: &str) -> Result<ListQuery, HttpError> {
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

    pub fn from_search(body: &Value) -> Result<ListQuery, HttpError> {
        let o = body.as_object().ok_or_else(|| {
            HttpError::scim(
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

fn bad_param(name: &str) -> HttpError {
    HttpError::scim(
        Reason::BadRequest,
        "invalidValue",
        format!("{name} must be an integer."),
    )
}

fn parse_int(name: &str, v: &str) -> Result<i64, HttpError> {
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
) -> Result<(i64, Vec<R>), HttpError>;
/// Renders one row as a listing shows it.
pub type ListedFn<R> =
    fn(&Caller<'_>, &rusqlite::Transaction<'_>, &R, &ListQuery) -> Result<Value, HttpError>;

/// A listing: one page of rows, each rendered as the listing shows it, in a ListResponse.
pub fn list_with<R>(
    scim: &Caller<'_>,
    q: &ListQuery,
    page: PageFn<R>,
    listed: ListedFn<R>,
) -> Result<Response, HttpError> {
    let (total, items) = scim.db.read(|tx| {
        let (total, rows) = page(tx, scim.scope(), q)?;
        let items = rows
            .iter()
            .map(|row| listed(scim, tx, row, q))
            .collect::<Result<Vec<_>, _>>()?;
        Ok::<_, HttpError>((total, items))
    })?;
    Ok(scim_json(200, &list_response(total, q.start_index, items)))
}

/// A ListResponse body.
pub fn list_response(total: i64, start_index: i64, resources: Vec<Value>) -> Value {
    serde_json::json!({
        "schemas": [super::schema::LIST],
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
