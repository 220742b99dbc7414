//! The one place errors become responses.
//!
//! Handlers and the gatekeeper return an [`HttpError`]: an HTTP status, a stable reason
//! code and one sentence for the user. [`HttpError::render`] shapes it for the surface the
//! request came in on: JSON on `/api` (and anything machine-facing), the SCIM error schema
//! on `/scim/v2` (always with a `scimType`, see [`HttpError::effective_scim_type`]), a
//! readable page on HTML routes.

use crate::domain::problem::{Problem, Reason};
use crate::http::Response;

/// The shape of an error response; each route's surface chooses one
/// ([`crate::routes::Surface::format`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Api,
    Scim,
    Html,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct HttpError {
    pub status: u16,
    pub reason: Reason,
    pub message: String,
    /// Seconds for a `Retry-After` header (429/503).
    pub retry_after: Option<u32>,
    /// The methods the address accepts, for the `Allow` header every 405 carries.
    pub allow: Option<&'static str>,
    /// The SCIM `scimType` (RFC 7644 §3.12) the handler chose; see `effective_scim_type`.
    pub scim_type: Option<&'static str>,
    /// What an admin needs to know about a refusal (the sign-in log); never shown to
    /// the user, never secret material.
    pub detail: Option<String>,
    /// Names the log line that explains an internal error, so a user's report can be
    /// matched to it.
    pub request_id: Option<String>,
}

impl HttpError {
    pub fn new(reason: Reason, message: impl Into<String>) -> HttpError {
        Problem::new(reason, message).into()
    }

    /// A SCIM error with its `scimType`.
    pub fn scim(reason: Reason, scim_type: &'static str, message: impl Into<String>) -> HttpError {
        Problem::scim(reason, scim_type, message).into()
    }

    /// 405 for an address that accepts only `allow` (e.g. `"GET, HEAD"`).
    pub fn method_not_allowed(allow: &'static str) -> HttpError {
        HttpError {
            allow: Some(allow),
            ..HttpError::new(
                Reason::MethodNotAllowed,
                "This address does not accept that method.",
            )
        }
    }

    pub fn with_retry_after(mut self, seconds: u32) -> HttpError {
        self.retry_after = Some(seconds);
        self
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> HttpError {
        self.detail = Some(detail.into());
        self
    }

    /// The `scimType` this error carries on the SCIM surface: the handler's, else the
    /// one for its status (every SCIM error body has one).
    pub fn effective_scim_type(&self) -> &'static str {
        self.scim_type
            .unwrap_or_else(|| default_scim_type(self.status))
    }

    pub fn not_found() -> HttpError {
        Problem::not_found().into()
    }

    pub fn internal() -> HttpError {
        Problem::internal().into()
    }

    /// An internal error whose cause was logged under `request_id`.
    pub fn internal_logged(request_id: &str) -> HttpError {
        HttpError {
            request_id: Some(request_id.to_string()),
            ..HttpError::new(
                Reason::Internal,
                format!(
                    "The gateway hit an internal error; its log explains it under request id {request_id}."
                ),
            )
        }
    }

    /// The `error` word of the API body: the reason's, unless a caller chose another
    /// status for it (a 502, 504 or 417 from the gatekeeper), which is a `server_error`.
    fn error_word(&self) -> &'static str {
        if self.status == self.reason.status() {
            self.reason.error_word()
        } else {
            "server_error"
        }
    }

    /// The response in the format of the surface the request arrived on.
    pub fn render(&self, format: Format) -> Response {
        let mut response = match format {
            Format::Api => {
                let mut body = serde_json::json!({
                    "error": self.error_word(),
                    "reason": self.reason.code(),
                    "message": self.message,
                });
                if let Some(id) = &self.request_id {
                    body["request_id"] = id.as_str().into();
                }
                Response::json(self.status, &body)
            }
            Format::Scim => {
                let mut body = serde_json::json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                    "status": self.status.to_string(),
                    "detail": self.message,
                });
                body["scimType"] = self.effective_scim_type().into();
                Response::json(self.status, &body)
                    .with_header("Content-Type", "application/scim+json")
            }
            Format::Html => Response::html(self.status, error_page(self))
                .with_header("Content-Security-Policy", crate::http::PAGE_CSP),
        };
        if let Some(seconds) = self.retry_after {
            response = response.with_header("Retry-After", &seconds.to_string());
        }
        if let Some(allow) = self.allow {
            response = response.with_header("Allow", allow);
        }
        response
    }
}

/// A fresh id for a request whose failure is logged (64 random bits, hex).
pub fn new_request_id() -> String {
    crate::crypto::random_hex(8)
}

impl From<Problem> for HttpError {
    fn from(p: Problem) -> HttpError {
        HttpError {
            status: p.reason.status(),
            reason: p.reason,
            message: p.message,
            retry_after: p.retry_after,
            allow: None,
            scim_type: p.scim_type,
            detail: p.detail,
            request_id: None,
        }
    }
}

/// Whatever becomes a [`Problem`] becomes an `HttpError` the same way.
macro_rules! through_problem {
    ($($from:ty),*) => {
        $(impl From<$from> for HttpError {
            fn from(e: $from) -> HttpError {
                Problem::from(e).into()
            }
        })*
    };
}

through_problem!(
    crate::preauth::TooMany,
    crate::caps::Refused,
    crate::http::BadEncoding,
    crate::db::DbError,
    rusqlite::Error
);

impl HttpError {
    /// Every change while the database is damaged.
    pub fn database_corrupt() -> HttpError {
        Problem::database_corrupt().into()
    }
}

/// The `scimType` of a SCIM error whose handler named none. RFC 7644 §3.12 defines the
/// values for 400 only, but IdPs log and branch on `scimType`, and some clients parse it
/// into an enum of exactly the RFC's ten values, so every status gets the nearest of
/// those: 401/403 `invalidValue` (the credential presented), 404/405 `noTarget` (nothing
/// here takes that request), 409 `uniqueness`, 412 `invalidVers` (the resource version in
/// `If-Match`), 408/411/415/501 `invalidSyntax` (the request's form), 429/503 `tooMany`
/// (more requests than the server takes now), anything else `invalidValue` (413 and 431
/// too: a body or head too large is a value the server cannot take, not "too many
/// results", which is what `tooMany` means to a client reading it on a 400).
fn default_scim_type(status: u16) -> &'static str {
    match status {
        404 | 405 => "noTarget",
        409 => "uniqueness",
        412 => "invalidVers",
        408 | 411 | 415 | 501 => "invalidSyntax",
        429 | 503 => "tooMany",
        _ => "invalidValue",
    }
}

/// The page of an HTML error: styled by the portal's stylesheet, no inline style (the
/// pages' CSP allows none).
fn error_page(e: &HttpError) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>seatgate: {status}</title>\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<link rel=\"stylesheet\" href=\"{stylesheet}\"></head>\
<body>{banner}<main><h1>Something went wrong</h1><p>{message}</p><p class=\"muted\">Reason code: <code>{reason}</code> (HTTP {status})</p>\
</main></body></html>\n",
        status = e.status,
        stylesheet = crate::page::STYLESHEET_PATH,
        message = crate::http::html_escape(&e.message),
        reason = e.reason.code(),
        banner = crate::page::health_banner(false).into_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(r: &Response) -> serde_json::Value {
        serde_json::from_slice(&r.body).expect("json body")
    }

    #[test]
    fn api_errors_carry_error_reason_and_message() {
        let r = HttpError::new(Reason::PayloadTooLarge, "Too big.").render(Format::Api);
        assert_eq!(r.status, 413);
        assert_eq!(
            body(&r),
            serde_json::json!({"error": "payload_too_large", "reason": "PAYLOAD_TOO_LARGE", "message": "Too big."})
        );
    }

    #[test]
    fn scim_errors_use_the_scim_schema_with_string_status() {
        let r = HttpError::new(Reason::BadRequest, "Bad.").render(Format::Scim);
        let b = body(&r);
        assert_eq!(b["status"], "400");
        assert_eq!(
            b["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:Error"
        );
        assert_eq!(r.header("content-type"), Some("application/scim+json"));
    }

    #[test]
    fn item9_2_every_scim_error_has_an_rfc_scim_type() {
        const RFC_7644_TYPES: &[&str] = &[
            "invalidFilter",
            "tooMany",
            "uniqueness",
            "mutability",
            "invalidSyntax",
            "invalidPath",
            "noTarget",
            "invalidValue",
            "invalidVers",
            "sensitive",
        ];
        for reason in [
            Reason::Unauthorized,
            Reason::Forbidden,
            Reason::NotFound,
            Reason::MethodNotAllowed,
            Reason::Conflict,
            Reason::PreconditionFailed,
            Reason::PayloadTooLarge,
            Reason::TooManyRequests,
            Reason::HeadersTooLarge,
            Reason::Overloaded,
            Reason::Internal,
        ] {
            let b = body(&HttpError::new(reason, "No.").render(Format::Scim));
            let t = b["scimType"].as_str().unwrap_or_default();
            assert!(RFC_7644_TYPES.contains(&t), "{reason:?}: {b}");
        }
        let explicit = HttpError::scim(Reason::BadRequest, "invalidFilter", "Bad filter.");
        assert_eq!(
            body(&explicit.render(Format::Scim))["scimType"],
            "invalidFilter"
        );
    }

    #[test]
    fn html_errors_escape_the_message() {
        let r = HttpError::new(Reason::BadRequest, "<script>x</script>").render(Format::Html);
        let text = String::from_utf8(r.body).expect("utf8");
        assert!(text.contains("&lt;script&gt;"));
        assert!(!text.contains("<script>"));
    }

    #[test]
    fn logged_internal_errors_name_their_request_id_on_every_surface() {
        let e = HttpError::internal_logged("0123abcd");
        let api = e.render(Format::Api);
        assert_eq!(api.status, 500);
        assert_eq!(body(&api)["request_id"], "0123abcd");
        assert!(
            body(&api)["message"]
                .as_str()
                .is_some_and(|m| m.contains("0123abcd"))
        );
        assert!(
            body(&e.render(Format::Scim))["detail"]
                .as_str()
                .is_some_and(|m| m.contains("0123abcd"))
        );
        let page = String::from_utf8(e.render(Format::Html).body).expect("utf8");
        assert!(page.contains("0123abcd"), "{page}");
    }

    #[test]
    fn item5_full_disk_and_io_errors_are_503_with_retry_after() {
        let sqlite = |code| rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None);
        for (code, reason) in [
            (rusqlite::ffi::SQLITE_FULL, "DISK_FULL"),
            (rusqlite::ffi::SQLITE_IOERR_WRITE, "STORAGE_ERROR"),
        ] {
            let e = HttpError::from(sqlite(code));
            let api = e.render(Format::Api);
            assert_eq!(api.status, 503, "{reason}");
            assert_eq!(body(&api)["reason"], reason);
            assert!(api.header("retry-after").is_some(), "{reason}");
            let scim = e.render(Format::Scim);
            assert_eq!(body(&scim)["status"], "503");
            assert_eq!(
                body(&scim)["schemas"][0],
                "urn:ietf:params:scim:api:messages:2.0:Error"
            );
            assert!(scim.header("retry-after").is_some(), "{reason}");
        }
        // What is not the storage's fault stays an internal error.
        let other = HttpError::from(sqlite(rusqlite::ffi::SQLITE_MISMATCH));
        assert_eq!(other.status, 500);
        crate::db::health::global().wrote();
    }

    #[test]
    fn retry_after_is_a_header() {
        let r = HttpError::new(Reason::Overloaded, "Busy.")
            .with_retry_after(2)
            .render(Format::Api);
        assert_eq!(r.header("retry-after"), Some("2"));
    }

    #[test]
    fn item14_the_reason_table_has_one_unique_code_per_reason_and_one_word_per_status() {
        let mut codes = std::collections::HashSet::new();
        let mut words = std::collections::HashMap::new();
        for &reason in Reason::ALL {
            let code = reason.code();
            assert!(codes.insert(code), "{code} twice");
            assert!(
                code.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                "{code}"
            );
            assert_eq!(Reason::from_code(code), Some(reason), "{code} reads back");
            // The word names the status, so every reason of one status says the same.
            let word = *words.entry(reason.status()).or_insert(reason.error_word());
            assert_eq!(reason.error_word(), word, "{code}");
            let api = HttpError::new(reason, "x").render(Format::Api);
            assert_eq!(api.status, reason.status());
            assert_eq!(body(&api)["error"], word, "{code}");
        }
        assert_eq!(Reason::from_code("NO_SUCH_REASON"), None);
        // A status chosen over the reason's (the gatekeeper's 502/504) is a server error.
        let gateway = HttpError {
            status: 504,
            ..HttpError::new(Reason::Unavailable, "Slow.")
        };
        assert_eq!(body(&gateway.render(Format::Api))["error"], "server_error");
    }

    #[test]
    fn item14_every_reason_code_is_documented() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut docs = std::fs::read_to_string(root.join("README.md")).expect("README.md");
        // The spec lives beside the repository in the workspace; the README is enough.
        if let Ok(spec) = std::fs::read_to_string(root.join("../shared/spec/INTERFACES.md")) {
            docs.push_str(&spec);
        }
        let missing: Vec<&str> = Reason::ALL
            .iter()
            .map(|r| r.code())
            .filter(|code| !docs.contains(&format!("`{code}`")))
            .collect();
        assert!(missing.is_empty(), "undocumented reason codes: {missing:?}");
    }
}
