//! Plain request and response values shared by the gatekeeper and the application.
//! Neither knows tiny_http or the socket a request came from.

use std::net::IpAddr;

/// The header the gatekeeper uses to pass the real client address to the application.
/// The gatekeeper strips any copy a client sends.
pub const CLIENT_ADDR_HEADER: &str = "x-seatgate-client";

/// The header of the gatekeeper's connection probes (answered, never logged). The
/// gatekeeper strips any copy a client sends.
pub const PROBE_HEADER: &str = "x-seatgate-probe";

/// Every header the gatekeeper and the application exchange starts with this; the
/// gatekeeper strips any such header a client sends, so none can be forged.
pub const INTERNAL_HEADER_PREFIX: &str = "x-seatgate-";

/// Whether a header is one of those (any case).
pub fn is_internal_header(name: &str) -> bool {
    name.get(..INTERNAL_HEADER_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(INTERNAL_HEADER_PREFIX))
}

/// A response header by which the application hands the gatekeeper a stored file to send
/// as the body, instead of the body itself (nginx's X-Accel-Redirect): `<path relative to
/// the storage folder> <first byte> <length>`. The gatekeeper streams it from disk, so a
/// 20 GB download costs a 64 KiB buffer, and no application thread.
pub const FILE_HEADER: &str = "x-seatgate-file";

/// The stage of a streamed upload, on the requests the gatekeeper sends the application
/// for one upload request (see `net::front`): `begin <body length>` asks whether the
/// body may be written (before any of it is read); `end <offset> <bytes written>
/// <outcome>` reports what was written, `outcome` being `complete`, `disk-full`,
/// `io-error`, `aborted` (the client went away) or `timeout`.
pub const UPLOAD_STAGE_HEADER: &str = "x-seatgate-upload";

/// The application's consent to a `begin` stage: `<path relative to the storage folder>
/// <offset>`: the gatekeeper truncates the file to the offset and writes the body there.
pub const SPOOL_HEADER: &str = "x-seatgate-spool";

/// The Content-Security-Policy of seatgate's own HTML pages (portal, SAML, activation,
/// error pages): scripts and styles only from seatgate's own assets (no inline code, so
/// injected markup cannot run), never framed.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'";

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path without the query string, percent-encoding untouched.
    pub path: String,
    pub query: String,
    /// Header names in lower case, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub client: IpAddr,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The token of an `Authorization: Bearer <token>` header.
    pub fn bearer_token(&self) -> Option<&str> {
        let value = self.header("authorization")?;
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body,
        }
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        let mut body = serde_json::to_vec(value).unwrap_or_default();
        body.push(b'\n');
        Response::new(status, "application/json", body)
    }

    pub fn text(status: u16, text: impl Into<String>) -> Response {
        Response::new(
            status,
            "text/plain; charset=utf-8",
            text.into().into_bytes(),
        )
    }

    /// A 303 to `location` (after a form post, and for sign-in redirects).
    pub fn see_other(location: &str) -> Response {
        Response::new(303, "text/plain; charset=utf-8", Vec::new())
            .with_header("Location", location)
    }

    /// A file to save (`Content-Disposition: attachment`), named `filename`.
    pub fn attachment(content_type: &str, filename: &str, body: Vec<u8>) -> Response {
        Response::new(200, content_type, body).with_header(
            "Content-Disposition",
            &format!("attachment; filename=\"{filename}\""),
        )
    }

    /// An HTML page under the pages' Content-Security-Policy.
    pub fn page(status: u16, html: String) -> Response {
        Response::html(status, html).with_header("Content-Security-Policy", PAGE_CSP)
    }

    pub fn html(status: u16, html: String) -> Response {
        Response::new(status, "text/html; charset=utf-8", html.into_bytes())
    }

    /// Sets a header, replacing any earlier value of the same name.
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Adds a header even if one of that name exists (several `Set-Cookie`s).
    pub fn with_extra_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The name of the first header that must not reach the wire: CR or LF in it would end
    /// the header early and let the rest be read as headers of their own (a split
    /// response), and NUL truncates it in some clients.
    pub fn unsafe_header(&self) -> Option<&str> {
        let unsafe_byte = |s: &str| s.bytes().any(|b| matches!(b, b'\r' | b'\n' | b'\0'));
        self.headers
            .iter()
            .find(|(k, v)| unsafe_byte(k) || unsafe_byte(v))
            .map(|(k, _)| k.as_str())
    }
}

/// Input a client encoded wrongly: the sentence for the 400 (`BAD_REQUEST`) it gets,
/// which `error.rs` turns into the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadEncoding(pub &'static str);

/// One decoded query parameter.
pub fn query_param(query: &str, name: &str) -> Result<Option<String>, BadEncoding> {
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == name {
            return percent_decode(v).map(Some);
        }
    }
    Ok(None)
}

/// An `application/x-www-form-urlencoded` body; a later duplicate field wins.
pub fn parse_form(body: &[u8]) -> Result<std::collections::BTreeMap<String, String>, BadEncoding> {
    let text =
        std::str::from_utf8(body).map_err(|_| BadEncoding("The form is not valid UTF-8."))?;
    let mut out = std::collections::BTreeMap::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(percent_decode(k)?, percent_decode(v)?);
    }
    Ok(out)
}

/// The value of one cookie in a `Cookie` header.
pub fn cookie<'a>(header: Option<&'a str>, name: &str) -> Option<&'a str> {
    header?
        .split(';')
        .map(str::trim)
        .find_map(|c| c.strip_prefix(name)?.strip_prefix('='))
}

/// How this deployment names and flags its cookies. Behind an `https://` public URL every
/// cookie is `Secure` and prefixed (`__Host-` for path `/`, `__Secure-` otherwise), so a
/// network attacker cannot plant one. Over plain `http://` (the loopback demo) browsers
/// would drop such cookies (Safari keeps no `Secure` cookie on http, and no browser
/// accepts `SameSite=None` without `Secure`), so they are plain and at most `Lax`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cookies {
    secure: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    Strict,
    Lax,
    /// Sent on cross-site POSTs (a SAML response from the IdP). Needs HTTPS; over plain
    /// HTTP it becomes `Lax`.
    None,
}

impl Cookies {
    pub fn for_public_url(public_url: &str) -> Cookies {
        Cookies {
            secure: public_url.starts_with("https://"),
        }
    }

    /// The full name of cookie `base` at `path`.
    pub fn name(&self, base: &str, path: &str) -> String {
        match (self.secure, path) {
            (false, _) => base.to_string(),
            (true, "/") => format!("__Host-{base}"),
            (true, _) => format!("__Secure-{base}"),
        }
    }

    /// A `Set-Cookie` value (always HttpOnly); `max_age` 0 deletes the cookie.
    pub fn set(
        &self,
        base: &str,
        value: &str,
        path: &str,
        max_age: u64,
        same_site: SameSite,
    ) -> String {
        let same_site = match (same_site, self.secure) {
            (SameSite::Strict, _) => "Strict",
            (SameSite::None, true) => "None",
            _ => "Lax",
        };
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}",
            self.name(base, path)
        )
    }

    /// The value of cookie `base` (set at `path`) in this request.
    pub fn get<'a>(&self, req: &'a Request, base: &str, path: &str) -> Option<&'a str> {
        cookie(req.header("cookie"), &self.name(base, path))
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters (for query values).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Decodes `%XX` and `+` in a query value; invalid encodings are a 400.
pub fn percent_decode(s: &str) -> Result<String, BadEncoding> {
    decode(s, true)
}

/// A path segment's `%XX` escapes decoded (`+` is a plus sign in a path).
pub fn percent_decode_path(s: &str) -> Result<std::borrow::Cow<'_, str>, BadEncoding> {
    if !s.contains('%') {
        return Ok(std::borrow::Cow::Borrowed(s));
    }
    decode(s, false).map(std::borrow::Cow::Owned)
}

fn decode(s: &str, plus_is_space: bool) -> Result<String, BadEncoding> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or(BadEncoding(if plus_is_space {
                        "The query string has an invalid %-escape."
                    } else {
                        "The address has an invalid %-escape."
                    }))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| {
        BadEncoding(if plus_is_space {
            "The query string is not valid UTF-8."
        } else {
            "The address is not valid UTF-8 once decoded."
        })
    })
}

/// The standard reason phrase for the statuses seatgate sends.
/// Whether `method` is one of `allow` (an `Allow` header value, e.g. `"GET, HEAD"`).
pub fn method_allowed(allow: &str, method: &str) -> bool {
    allow.split(", ").any(|m| m == method)
}

pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        507 => "Insufficient Storage",
        // The status code carries the meaning; the phrase is informational (RFC 9112 §4).
        _ => match status / 100 {
            1 => "Informational",
            2 => "Success",
            3 => "Redirection",
            4 => "Client Error",
            _ => "Server Error",
        },
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_prefixed_and_secure_only_behind_https() {
        let https = Cookies::for_public_url("https://gw.example");
        assert_eq!(
            https.set("sg_admin", "v", "/", 60, SameSite::Lax),
            "__Host-sg_admin=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure"
        );
        // __Host- requires Path=/; a narrower path takes __Secure-.
        assert_eq!(
            https.set("sg_saml", "v", "/saml/acs", 600, SameSite::None),
            "__Secure-sg_saml=v; Path=/saml/acs; Max-Age=600; HttpOnly; SameSite=None; Secure"
        );
        let http = Cookies::for_public_url("http://127.0.0.1:7070");
        // Browsers drop SameSite=None without Secure: plain HTTP gets Lax.
        assert_eq!(
            http.set("sg_saml", "v", "/saml/acs", 600, SameSite::None),
            "sg_saml=v; Path=/saml/acs; Max-Age=600; HttpOnly; SameSite=Lax"
        );
        let req = Request {
            method: "GET".into(),
            path: "/".into(),
            query: String::new(),
            headers: vec![(
                "cookie".into(),
                "sg_admin=plain; __Host-sg_admin=prefixed".into(),
            )],
            body: Vec::new(),
            client: std::net::IpAddr::from([127, 0, 0, 1]),
        };
        assert_eq!(https.get(&req, "sg_admin", "/"), Some("prefixed"));
        assert_eq!(http.get(&req, "sg_admin", "/"), Some("plain"));
    }
}
