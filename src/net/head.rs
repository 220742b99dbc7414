//! Parsing and vetting one request head at the gatekeeper. Pure: bytes in, a decision out.
//!
//! Only requests that pass are forwarded, rewritten into a canonical HTTP/1.1 head with a
//! known `Content-Length`, no hop-by-hop headers, and our client-address header.

use std::net::IpAddr;
use std::ops::ControlFlow;

use crate::config::Limits;
use crate::domain::problem::Reason;
use crate::error::HttpError;
use crate::http::{CLIENT_ADDR_HEADER, PROBE_HEADER, is_internal_header};

/// Headers that describe one hop; never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
    "http2-settings",
    CLIENT_ADDR_HEADER,
    PROBE_HEADER,
];

/// A vetted request head, ready to forward.
#[derive(Debug)]
pub struct Head {
    /// Bytes of the head in the client's stream (the body starts here).
    pub head_len: usize,
    pub body_len: usize,
    /// The rewritten head to send to the application.
    pub forward: Vec<u8>,
    pub method_is_head: bool,
    /// Whether the client wants the connection kept open after the response.
    pub keep_alive: bool,
    /// The client asked for `100 Continue` before sending its body.
    pub expects_continue: bool,
    pub path: String,
    /// The request target as sent (path and query), for the redirect of plain HTTP that
    /// reached the HTTPS port.
    pub target: String,
    pub method_is_get: bool,
    /// The body is written to a stored file by the gatekeeper, with the application's
    /// consent asked first (an upload); `forward` then announces no body.
    pub to_disk: bool,
}

/// The outcome of looking at the bytes received so far.
#[derive(Debug)]
pub enum Parsed {
    /// More bytes are needed (and the head is still within its size cap).
    Partial,
    Complete(Head),
    /// Refuse the request; the connection is closed after the answer.
    Reject {
        error: HttpError,
        path: String,
    },
}

/// Parses and vets the head at the start of `buf`.
pub fn parse(buf: &[u8], limits: &Limits, client: IpAddr) -> Parsed {
    let mut slots = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut req = httparse::Request::new(&mut slots);
    let head_len = match read_head(&mut req, buf, limits) {
        ControlFlow::Continue(n) => n,
        ControlFlow::Break(outcome) => return outcome,
    };
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return reject(
            Reason::BadRequest,
            "The request line is incomplete.",
            &path_hint(buf),
        );
    };
    let path = target.split('?').next().unwrap_or("").to_string();
    if method == "CONNECT" {
        // No address here is a proxy; Allow lists the methods some address accepts.
        let error = HttpError {
            message: "CONNECT is not supported.".into(),
            ..HttpError::method_not_allowed("GET, HEAD, POST, PUT, PATCH, DELETE")
        };
        return Parsed::Reject { error, path };
    }
    if !target.starts_with('/') {
        return reject(
            Reason::BadRequest,
            "The request target must be a path starting with '/'.",
            &path,
        );
    }
    let framing = match read_framing(req.headers, minor == 0) {
        Ok(framing) => framing,
        Err(error) => return Parsed::Reject { error, path },
    };
    let body_len = framing.content_length.unwrap_or(0);
    let cap = crate::routes::body_cap(method, &path, limits) as u64;
    if body_len > cap {
        return reject(
            Reason::PayloadTooLarge,
            &format!("The request body is larger than the {cap} bytes this address accepts."),
            &path,
        );
    }
    let client = forwarded_client(req.headers, client, limits);
    let to_disk = body_len > 0 && crate::routes::streams_body_to_disk(method, &path);
    let forwarded_len = if to_disk { 0 } else { body_len };
    let forward = forward_head(
        method,
        target,
        req.headers,
        forwarded_len,
        client,
        head_len + 64,
    );
    Parsed::Complete(Head {
        head_len,
        body_len: body_len as usize,
        forward,
        method_is_head: method == "HEAD",
        keep_alive: !framing.connection_close,
        expects_continue: framing.expects_continue,
        path,
        target: target.to_string(),
        method_is_get: method == "GET",
        to_disk,
    })
}

/// The answer to a plain-HTTP request that reached the HTTPS port: browsers that typed
/// `http://` are sent to the same host and path over HTTPS; anything else learns, in plain
/// HTTP it can read, that this port speaks HTTPS. Without it, the TLS layer's reply looks
/// like garbage that browsers call "HTTP/0.9".
pub fn plain_http_on_tls_port(h: &Head, public_url: &str) -> Vec<u8> {
    // The gateway's own public URL, never the client's Host header: a redirect must not
    // be steerable to another site.
    let target = format!("{public_url}{}", h.target);
    let redirect = h.method_is_get || h.method_is_head;
    let status = if redirect {
        "301 Moved Permanently"
    } else {
        "400 Bad Request"
    };
    let shown = crate::http::html_escape(&target);
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>Use HTTPS</title>\
         <p>This port speaks HTTPS only. Open <a href=\"{shown}\">{shown}</a> instead.</p>\n"
    );
    let mut out = format!("HTTP/1.1 {status}\r\n");
    if redirect {
        out.push_str(&format!("Location: {target}\r\n"));
    }
    out.push_str(&format!(
        "Content-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    if !h.method_is_head {
        out.push_str(&body);
    }
    out.into_bytes()
}

/// The head's length once it is complete and within its caps; otherwise what to do now
/// (wait for more bytes, or refuse).
fn read_head<'h, 'b>(
    req: &mut httparse::Request<'h, 'b>,
    buf: &'b [u8],
    limits: &Limits,
) -> ControlFlow<Parsed, usize> {
    let too_large = || {
        reject(
            Reason::HeadersTooLarge,
            "The request head is larger than this gateway accepts.",
            &path_hint(buf),
        )
    };
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > limits.max_header_bytes => {
            return ControlFlow::Break(too_large());
        }
        Ok(httparse::Status::Partial) => return ControlFlow::Break(Parsed::Partial),
        Err(httparse::Error::TooManyHeaders) => {
            return ControlFlow::Break(reject(
                Reason::HeadersTooLarge,
                "The request has more header fields than this gateway accepts.",
                &path_hint(buf),
            ));
        }
        Err(_) => {
            return ControlFlow::Break(reject(
                Reason::BadRequest,
                "The request is not valid HTTP/1.1.",
                &path_hint(buf),
            ));
        }
    };
    if head_len > limits.max_header_bytes {
        return ControlFlow::Break(too_large());
    }
    ControlFlow::Continue(head_len)
}

/// How the body is framed and what the client asked of the connection.
struct Framing {
    content_length: Option<u64>,
    connection_close: bool,
    expects_continue: bool,
}

/// Reads the framing headers, refusing any framing the gatekeeper cannot check.
fn read_framing(headers: &[httparse::Header<'_>], http_1_0: bool) -> Result<Framing, HttpError> {
    let refuse = |reason, message: &str| Err(HttpError::new(reason, message));
    let mut framing = Framing {
        content_length: None,
        connection_close: http_1_0,
        expects_continue: false,
    };
    for h in headers {
        let name = h.name;
        if name.eq_ignore_ascii_case("transfer-encoding") {
            // Both framings at once is the classic smuggling shape; chunked alone is not
            // supported (a body must announce its length so its cap can be checked).
            return if framing.content_length.is_some()
                || headers
                    .iter()
                    .any(|x| x.name.eq_ignore_ascii_case("content-length"))
            {
                refuse(
                    Reason::BadRequest,
                    "A request must not carry both Content-Length and Transfer-Encoding.",
                )
            } else {
                refuse(
                    Reason::LengthRequired,
                    "Request bodies must be sent with a Content-Length.",
                )
            };
        }
        if name.eq_ignore_ascii_case("upgrade") {
            return refuse(
                Reason::UnsupportedFeature,
                "Protocol upgrades are not supported.",
            );
        }
        if name.eq_ignore_ascii_case("content-length") {
            let Some(n) = parse_length(h.value) else {
                return refuse(
                    Reason::BadRequest,
                    "The Content-Length header is not a valid number.",
                );
            };
            if framing.content_length.is_some_and(|seen| seen != n) {
                return refuse(
                    Reason::BadRequest,
                    "The request has conflicting Content-Length headers.",
                );
            }
            framing.content_length = Some(n);
        } else if name.eq_ignore_ascii_case("connection") {
            let value = String::from_utf8_lossy(h.value).to_ascii_lowercase();
            if value.split(',').any(|t| t.trim() == "close") {
                framing.connection_close = true;
            } else if value.split(',').any(|t| t.trim() == "keep-alive") {
                framing.connection_close = false;
            }
        } else if name.eq_ignore_ascii_case("expect") {
            if !h.value.eq_ignore_ascii_case(b"100-continue") {
                return Err(HttpError {
                    status: 417,
                    ..HttpError::new(
                        Reason::UnsupportedFeature,
                        "Only 'Expect: 100-continue' is supported.",
                    )
                });
            }
            framing.expects_continue = true;
        }
    }
    Ok(framing)
}

/// The client's address: the peer's, or the one a trusted proxy forwarded.
fn forwarded_client(headers: &[httparse::Header<'_>], peer: IpAddr, limits: &Limits) -> IpAddr {
    let forwarded_for: Vec<&str> = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("x-forwarded-for"))
        .filter_map(|h| std::str::from_utf8(h.value).ok())
        .collect();
    super::proxy::client(peer, &forwarded_for, &limits.trusted_proxies)
}

/// The canonical head sent to the application: HTTP/1.1, no hop-by-hop headers, the
/// vetted Content-Length and our client-address header.
fn forward_head(
    method: &str,
    target: &str,
    headers: &[httparse::Header<'_>],
    body_len: u64,
    client: IpAddr,
    capacity: usize,
) -> Vec<u8> {
    let mut forward = Vec::with_capacity(capacity);
    forward.extend_from_slice(method.as_bytes());
    forward.push(b' ');
    forward.extend_from_slice(&ascii_target(target));
    forward.extend_from_slice(b" HTTP/1.1\r\n");
    for h in headers {
        if is_internal_header(h.name)
            || HOP_BY_HOP
                .iter()
                .any(|skip| h.name.eq_ignore_ascii_case(skip))
            || h.name.eq_ignore_ascii_case("content-length")
        {
            continue;
        }
        forward.extend_from_slice(h.name.as_bytes());
        forward.extend_from_slice(b": ");
        forward.extend(ascii_value(h.value));
        forward.extend_from_slice(b"\r\n");
    }
    if body_len > 0 || matches!(method, "POST" | "PUT" | "PATCH") {
        forward.extend_from_slice(format!("Content-Length: {body_len}\r\n").as_bytes());
    }
    forward.extend_from_slice(
        format!("{CLIENT_ADDR_HEADER}: {client}\r\nConnection: keep-alive\r\n\r\n").as_bytes(),
    );
    forward
}

/// A header value as the application can read it. obs-text (RFC 9110 §5.5: bytes 0x80 to
/// 0xFF, e.g. `User-Agent: café` in UTF-8 or Latin-1) is valid HTTP, but the inner server
/// reads heads as ASCII and drops the connection on anything else, so each such byte is
/// forwarded as `?`. No value seatgate interprets (tokens, cookies, media types) is
/// legitimately non-ASCII: a token with such bytes still fails to match, as it should.
fn ascii_value(value: &[u8]) -> impl Iterator<Item = u8> + '_ {
    value.iter().map(|&b| if b.is_ascii() { b } else { b'?' })
}

/// The request target as the application can read it: httparse accepts UTF-8 in it, which
/// RFC 3986 allows only percent-encoded, so non-ASCII bytes are percent-encoded (the same
/// URL a browser would have sent).
fn ascii_target(target: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(target.len());
    for b in target.bytes() {
        if b.is_ascii() {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    out
}

/// The path of a request whose head could not be fully parsed (too large, too many
/// headers), read from the start of the request line, so the refusal still comes in the
/// right shape (e.g. the SCIM error schema under /scim).
fn path_hint(buf: &[u8]) -> String {
    let after_method = match buf.iter().position(|b| *b == b' ') {
        Some(i) if i < 16 => &buf[i + 1..],
        _ => return String::new(),
    };
    let path: Vec<u8> = after_method
        .iter()
        .take(256)
        .take_while(|b| !matches!(b, b'?' | b' ' | b'\r' | b'\n'))
        .copied()
        .collect();
    match String::from_utf8(path) {
        Ok(p) if p.starts_with('/') => p,
        _ => String::new(),
    }
}

fn reject(reason: Reason, message: &str, path: &str) -> Parsed {
    Parsed::Reject {
        error: HttpError::new(reason, message),
        path: path.to_string(),
    }
}

/// Strict Content-Length: ASCII digits only. A number too large for u64 saturates (it is
/// over every cap anyway), so it is answered 413, never parsed into an allocation.
fn parse_length(value: &[u8]) -> Option<u64> {
    let v = value.trim_ascii();
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        v.iter()
            .try_fold(0u64, |acc, d| {
                acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
            })
            .unwrap_or(u64::MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7));

    fn run(raw: &str) -> Parsed {
        parse(raw.as_bytes(), &Limits::default(), CLIENT)
    }

    fn rejected(raw: &str) -> (u16, &'static str) {
        match run(raw) {
            Parsed::Reject { error, .. } => (error.status, error.reason.code()),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    fn complete(raw: &str) -> Head {
        match run(raw) {
            Parsed::Complete(h) => h,
            other => panic!("expected a complete head, got {other:?}"),
        }
    }

    #[test]
    fn rewrites_a_simple_request_with_the_client_address() {
        let h = complete(
            "GET /healthz?x=1 HTTP/1.1\r\nHost: a\r\nX-Seatgate-Client: 6.6.6.6\r\nConnection: keep-alive\r\n\r\n",
        );
        let fwd = String::from_utf8(h.forward).expect("utf8");
        assert_eq!(
            fwd,
            "GET /healthz?x=1 HTTP/1.1\r\nHost: a\r\nx-seatgate-client: 192.0.2.7\r\nConnection: keep-alive\r\n\r\n"
        );
        assert!(h.keep_alive);
        assert_eq!(h.path, "/healthz");
        assert_eq!(h.body_len, 0);
    }

    #[test]
    fn huge_content_length_is_413_without_allocating() {
        assert_eq!(
            rejected(
                "POST /scim/v2/Users HTTP/1.1\r\nContent-Length: 4611686018427387904\r\n\r\nabc"
            ),
            (413, "PAYLOAD_TOO_LARGE")
        );
        assert_eq!(
            rejected("POST /x HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
            (413, "PAYLOAD_TOO_LARGE")
        );
        assert_eq!(
            rejected("POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
            (400, "BAD_REQUEST")
        );
    }

    #[test]
    fn body_caps_follow_the_route_class() {
        let limits = Limits::default();
        let ok = format!(
            "POST /scim/v2/Users HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            limits.body_max_scim
        );
        assert!(matches!(run(&ok), Parsed::Complete(_)));
        let too_big_for_api = format!(
            "POST /api/v1/activations HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            limits.body_max_api + 1
        );
        assert_eq!(rejected(&too_big_for_api), (413, "PAYLOAD_TOO_LARGE"));
    }

    #[test]
    fn smuggling_shapes_are_refused() {
        assert_eq!(
            rejected(
                "POST /api/x HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
            ),
            (400, "BAD_REQUEST")
        );
        assert_eq!(
            rejected(
                "POST /api/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
            ),
            (400, "BAD_REQUEST")
        );
        assert_eq!(
            rejected("POST /api/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            (411, "LENGTH_REQUIRED")
        );
        assert_eq!(
            rejected("POST /api/x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
            (400, "BAD_REQUEST")
        );
        assert_eq!(
            rejected("POST /api/x HTTP/1.1\r\nContent-Length: +5\r\n\r\n"),
            (400, "BAD_REQUEST")
        );
        assert_eq!(
            rejected("GET /api/x HTTP/1.1\r\nContent-Length : 5\r\n\r\n"),
            (400, "BAD_REQUEST")
        );
    }

    #[test]
    fn header_floods_and_oversized_heads_are_431() {
        let mut many = String::from("GET / HTTP/1.1\r\n");
        for i in 0..100 {
            many.push_str(&format!("X-{i}: y\r\n"));
        }
        many.push_str("\r\n");
        assert_eq!(rejected(&many), (431, "HEADERS_TOO_LARGE"));
        let long = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n", "a".repeat(20_000));
        assert_eq!(rejected(&long), (431, "HEADERS_TOO_LARGE"));
        let huge_query = format!(
            "GET /scim/v2/Users?filter={} HTTP/1.1\r\n",
            "a".repeat(100_000)
        );
        match run(&huge_query) {
            Parsed::Reject { path, error } => {
                assert_eq!(error.status, 431);
                assert_eq!(path, "/scim/v2/Users", "the refusal is shaped for SCIM");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn upgrades_connect_and_garbage_are_refused() {
        assert_eq!(
            rejected("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
            (501, "UNSUPPORTED_FEATURE")
        );
        assert_eq!(
            rejected("CONNECT a:443 HTTP/1.1\r\n\r\n"),
            (405, "METHOD_NOT_ALLOWED")
        );
        assert_eq!(
            rejected("\x16\x03\x01\x02\x00\x01\x00\x01\x7c\x03\x03\r\n\r\n"),
            (400, "BAD_REQUEST")
        );
        assert_eq!(
            rejected("GET http://evil/ HTTP/1.1\r\n\r\n"),
            (400, "BAD_REQUEST")
        );
    }

    #[test]
    fn internal_headers_from_clients_are_dropped() {
        let h = complete(
            "GET / HTTP/1.1\r\nX-Seatgate-Probe: 1\r\nx-seatgate-client: 1.2.3.4\r\nX-Seatgate-Upload: end 0 99 complete\r\nx-seatgate-FILE: images/1.img 0 9\r\n\r\n",
        );
        let fwd = String::from_utf8(h.forward)
            .expect("utf8")
            .to_ascii_lowercase();
        assert!(!fwd.contains("probe"), "{fwd}");
        assert!(!fwd.contains("upload") && !fwd.contains("file"), "{fwd}");
        assert_eq!(fwd.matches("x-seatgate-client").count(), 1, "{fwd}");
        assert!(fwd.contains("x-seatgate-client: 192.0.2.7"), "{fwd}");
    }

    #[test]
    fn partial_heads_wait_and_http10_closes() {
        assert!(matches!(
            run("GET /healthz HTTP/1.1\r\nHost:"),
            Parsed::Partial
        ));
        assert!(!complete("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(complete("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
        assert!(!complete("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive);
    }

    #[test]
    fn item7_obs_text_and_utf8_targets_are_forwarded_as_ascii() {
        let h = match parse(
            b"GET /caf\xc3\xa9?q=\xc3\xa9 HTTP/1.1\r\nUser-Agent: caf\xc3\xa9 caf\xe9\r\nAuthorization: Bearer \xff\r\n\r\n",
            &Limits::default(),
            CLIENT,
        ) {
            Parsed::Complete(h) => h,
            other => panic!("expected a complete head, got {other:?}"),
        };
        assert!(
            h.forward.is_ascii(),
            "{:?}",
            String::from_utf8_lossy(&h.forward)
        );
        let fwd = String::from_utf8(h.forward).expect("ascii");
        assert!(
            fwd.starts_with("GET /caf%C3%A9?q=%C3%A9 HTTP/1.1\r\n"),
            "{fwd}"
        );
        assert!(fwd.contains("\r\nUser-Agent: caf?? caf?\r\n"), "{fwd}");
        assert!(fwd.contains("\r\nAuthorization: Bearer ?\r\n"), "{fwd}");
        // Tab and visible ASCII pass unchanged.
        let fwd = String::from_utf8(complete("GET / HTTP/1.1\r\nX-A: a\tb ~\r\n\r\n").forward)
            .expect("utf8");
        assert!(fwd.contains("X-A: a\tb ~\r\n"), "{fwd}");
    }

    #[test]
    fn expect_continue_is_handled_here_not_forwarded() {
        let h =
            complete("POST /api/x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
        assert!(h.expects_continue);
        assert!(
            !String::from_utf8_lossy(&h.forward)
                .to_ascii_lowercase()
                .contains("expect")
        );
        assert_eq!(
            rejected("POST /api/x HTTP/1.1\r\nExpect: magic\r\nContent-Length: 3\r\n\r\n").0,
            417
        );
    }
}
