//! The `/scim/v2` handlers (routed, authenticated and rate limited by the pipeline from
//! `routes::ROUTES`), the shared request and response helpers, the per-token rate limit
//! and one request-log entry per request.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use crate::audit::Actor;
use crate::clock::Clock;
use crate::db::Db;
use crate::domain::problem::Reason;
use crate::error::HttpError;
use crate::http::{Request, Response};
use crate::pipeline::{Ctx, Handled};
use crate::ratelimit::RateLimiter;
use crate::scim::reqlog::{self, Entry, RequestLog};
use crate::scim::service::{Caller, ListQuery, Reply};
use crate::scim::{discovery, groups, users};

pub const BASE_PATH: &str = "/scim/v2";

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
    clock: Clock,
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
                clock.clone(),
            ),
            clock,
        })
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
            at: self.clock.now_unix(),
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
        Ok(Caller::new(
            &self.db,
            &self.base_url,
            Actor::Scim(token.name.clone()),
            token.connection_id.clone(),
            self.clock.now_unix(),
        ))
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
        let q = ListQuery::from_query(&cx.req.query)?;
        Ok(scim_json(200, &users::list(&self.caller(cx)?, &q)?))
    }

    pub fn create_user(&self, cx: &Ctx<'_>) -> Handled {
        let q = ListQuery::from_query(&cx.req.query)?;
        let written = users::create(&self.caller(cx)?, read_json(cx.req)?)?;
        Ok(reply(written.project(&q)))
    }

    pub fn search_users(&self, cx: &Ctx<'_>) -> Handled {
        let q = ListQuery::from_search(&read_json(cx.req)?)?;
        Ok(scim_json(200, &users::list(&self.caller(cx)?, &q)?))
    }

    pub fn get_user(&self, cx: &Ctx<'_>) -> Handled {
        let q = ListQuery::from_query(&cx.req.query)?;
        Ok(reply(users::get(&self.caller(cx)?, cx.param("id"), &q)?))
    }

    pub fn replace_user(&self, cx: &Ctx<'_>) -> Handled {
        let q = ListQuery::from_query(&cx.req.query)?;
        let body = read_json(cx.req)?;
        let caller = self.caller(cx)?;
        let written = users::replace(&caller, cx.param("id"), if_match(cx.req), body)?;
        Ok(reply(written.project(&q)))
    }

    pub fn patch_user(&self, cx: &Ctx<'_>) -> Handled {
        let q = ListQuery::from_query(&cx.req.query)?;
        let body = read_json(cx.req)?;
        let caller = self.caller(cx)?;
        let written = users::patch(&caller, cx.param("id"), if_match(cx.req), body)?;
        Ok(reply(written.project(&q)))
    }

    pub fn delete_user(&self, cx: &Ctx<'_>) -> Handled {
        users::delete(&self.caller(cx)?, cx.param("id"), if_match(cx.req))?;
        Ok(no_content())
    }

    pub fn list_groups(&self, cx: &Ctx<'_>) -> Handled {
        let q = ListQuery::from_query(&cx.req.query)?;
        Ok(scim_json(200, &groups::list(&self.caller(cx)?, &q)?))
    }

    pub fn create_group(&self, cx: &Ctx<'_>) -> Handled {
        let q = ListQuery::from_query(&cx.req.query)?;
        let written = groups::create(&self.caller(cx)?, read_json(cx.req)?)?;
        Ok(reply(written.project(&q)))
    }

    pub fn search_groups(&self, cx: &Ctx<'_>) -> Handled {
        let q = ListQuery::from_search(&read_json(cx.req)?)?;
        Ok(scim_json(200, &groups::list(&self.caller(cx)?, &q)?))
    }

    pub fn get_group(&self, cx: &Ctx<'_>) -> Handled {
        let q = ListQuery::from_query(&cx.req.query)?;
        Ok(reply(groups::get(&self.caller(cx)?, cx.param("id"), &q)?))
    }

    pub fn replace_group(&self, cx: &Ctx<'_>) -> Handled {
        let q = ListQuery::from_query(&cx.req.query)?;
        let body = read_json(cx.req)?;
        let caller = self.caller(cx)?;
        let written = groups::replace(&caller, cx.param("id"), if_match(cx.req), body)?;
        Ok(reply(written.project(&q)))
    }

    /// A PATCH answers 204 unless the request asked for attributes back (RFC 7644 §3.5.2).
    pub fn patch_group(&self, cx: &Ctx<'_>) -> Handled {
        let body = read_json(cx.req)?;
        let q = ListQuery::from_query(&cx.req.query)?;
        let caller = self.caller(cx)?;
        let patched = groups::patch(&caller, cx.param("id"), if_match(cx.req), body, &q)?;
        Ok(patched.map_or_else(no_content, reply))
    }

    pub fn delete_group(&self, cx: &Ctx<'_>) -> Handled {
        groups::delete(&self.caller(cx)?, cx.param("id"), if_match(cx.req))?;
        Ok(no_content())
    }

    pub fn search_all(&self, cx: &Ctx<'_>) -> Handled {
        let q = ListQuery::from_search(&read_json(cx.req)?)?;
        Ok(scim_json(
            200,
            &discovery::search_all(&self.caller(cx)?, &q)?,
        ))
    }
}

/// The response for one resource: its ETag, and a Location when it was just created.
fn reply(r: Reply) -> Response {
    let status = if r.created { 201 } else { 200 };
    let response = scim_json(status, &r.resource)
        .with_header("ETag", &crate::domain::scim::resource::etag(r.version));
    if r.created {
        response.with_header("Location", &r.location)
    } else {
        response
    }
}

fn no_content() -> Response {
    Response::new(204, "application/scim+json", Vec::new())
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

/// The `If-Match` header (its version list is read by `check_version`): `None` when
/// absent or `*`.
pub fn if_match(req: &Request) -> Option<String> {
    let v = req.header("if-match")?.trim();
    if v == "*" {
        return None;
    }
    Some(v.to_string())
}
