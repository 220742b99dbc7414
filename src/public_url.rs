//! The public URL: where browsers, Macs and identity providers reach the gateway, where it
//! came from, and whether a request arrived at it.
//!
//! A URL someone chose (`public_url` in the config, `--public-url`, or typed at first-run
//! setup) is authoritative and never changes by itself. One only derived from the listening
//! address follows the listener, so `serve --listen :9443` after setup keeps the portal
//! working. Everything built from it (cookies, the Origin check, the SP entity ID, ACS
//! URLs, lease `iss`) is computed from the one value `serve` resolves at start.

use std::net::SocketAddr;

use crate::config::{Config, TlsMode};
use crate::db::{Db, DbError, settings};
use crate::http::Request;

/// Where the public URL in use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `public_url` in the config file or environment, or `--public-url`.
    Configured,
    /// Typed at first-run setup (different from the derived one shown there).
    ChosenAtSetup,
    /// Derived from the listening address: follows `--listen`.
    Listener,
}

impl Source {
    /// How the banner and the log name the source.
    pub fn describe(self) -> &'static str {
        match self {
            Source::Configured => "set by public_url or --public-url",
            Source::ChosenAtSetup => "chosen at first-run setup",
            Source::Listener => "derived from the listening address",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    pub url: String,
    pub source: Source,
}

/// The public URL `serve` uses: configured, else chosen at setup, else derived from `bound`.
pub fn resolve(config: &Config, db: &Db, bound: SocketAddr) -> Result<PublicUrl, DbError> {
    if !config.public_url.is_empty() {
        return Ok(PublicUrl {
            url: config.public_url.clone(),
            source: Source::Configured,
        });
    }
    let chosen = db.read(|tx| Ok::<_, DbError>(settings::get(tx, settings::PUBLIC_URL)?))?;
    Ok(match chosen {
        Some(url) => PublicUrl {
            url,
            source: Source::ChosenAtSetup,
        },
        None => PublicUrl {
            url: derived(config, bound),
            source: Source::Listener,
        },
    })
}

/// The URL derived from the listening address (the host name for a wildcard address).
pub fn derived(config: &Config, bound: SocketAddr) -> String {
    let scheme = if config.tls.mode == TlsMode::Off {
        "http"
    } else {
        "https"
    };
    let host = if bound.ip().is_unspecified() {
        host_name().unwrap_or_else(|| "localhost".into())
    } else {
        match bound.ip() {
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        }
    };
    format!("{scheme}://{host}:{}", bound.port())
}

/// `scheme://host[:port]` in the form browsers send as Origin: lower case, no default
/// port, no path.
pub fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    format!("{scheme}://{}", normal_authority(&scheme, authority))
}

/// `host[:port]` lower case, without the scheme's default port.
fn normal_authority(scheme: &str, authority: &str) -> String {
    let authority = authority.to_ascii_lowercase();
    let default = match scheme {
        "https" => ":443",
        "http" => ":80",
        _ => "",
    };
    match authority.strip_suffix(default) {
        Some(host) if !default.is_empty() => host.to_string(),
        _ => authority,
    }
}

/// Whether a POST's Origin (when the browser sent one) is the public URL's.
pub fn origin_matches(req: &Request, public_url: &str) -> bool {
    match req.header("origin") {
        Some(sent) => origin(sent) == origin(public_url),
        None => true,
    }
}

/// A request that reached the gateway under another address than the public URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// What the browser used (its Origin, else the forwarded or plain Host), as sent.
    pub seen: String,
    pub public_url: String,
    pub source: Source,
}

impl Mismatch {
    /// The banner and sign-in error text: what is wrong and what to do, in one sentence.
    pub fn advice(&self) -> String {
        format!(
            "This page was opened at {} but this gateway's public URL is {} ({}), so its forms are refused here: open {}/admin instead, or restart seatgate with --public-url set to the address you use.",
            self.seen,
            self.public_url,
            self.source.describe(),
            self.public_url
        )
    }
}

/// The mismatch between where `req` was sent and the public URL, if any: the Origin when
/// the browser sent one, else `X-Forwarded-Host` (a proxy's), else `Host`. Only ever
/// informs (a banner); the Origin check itself is [`origin_matches`].
pub fn mismatch(req: &Request, public: &PublicUrl) -> Option<Mismatch> {
    let ours = origin(&public.url);
    let seen = if let Some(sent) = req.header("origin") {
        (origin(sent) != ours).then(|| sent.to_string())
    } else {
        let host = req
            .header("x-forwarded-host")
            .and_then(|h| h.split(',').next())
            .or_else(|| req.header("host"))?
            .trim();
        let scheme = ours.split_once("://").map_or("https", |(s, _)| s);
        let mine = ours.split_once("://").map_or("", |(_, a)| a);
        (normal_authority(scheme, host) != mine).then(|| host.to_string())
    }?;
    Some(Mismatch {
        seen: crate::logging::client_text(&seen).to_string(),
        public_url: public.url.clone(),
        source: public.source,
    })
}

/// The machine's host name, if it has a usable one.
pub fn host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its full length; gethostname NUL-terminates within it
    // on success (we also stop at the buffer's end).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).trim().to_string();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> Request {
        Request {
            method: "GET".into(),
            path: "/admin/login".into(),
            query: String::new(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: Vec::new(),
            client: "127.0.0.1".parse().expect("ip"),
        }
    }

    fn public(url: &str) -> PublicUrl {
        PublicUrl {
            url: url.into(),
            source: Source::Listener,
        }
    }

    #[test]
    fn origins_compare_without_default_ports_or_case() {
        assert_eq!(origin("HTTPS://GW.example:443/x"), "https://gw.example");
        assert_eq!(origin("http://gw.example:80"), "http://gw.example");
        assert_eq!(origin("https://gw.example:8443"), "https://gw.example:8443");
        let sent = |o: &str| req(&[("origin", o)]);
        assert!(origin_matches(
            &sent("https://gw.example"),
            "https://gw.example:443"
        ));
        assert!(!origin_matches(
            &sent("https://gw.example:9443"),
            "https://gw.example:8443"
        ));
        assert!(!origin_matches(
            &sent("http://gw.example:8443"),
            "https://gw.example:8443"
        ));
        assert!(origin_matches(&req(&[]), "https://gw.example"));
    }

    #[test]
    fn a_mismatch_is_found_from_origin_forwarded_host_or_host() {
        let p = public("https://gw.example:8443");
        assert_eq!(mismatch(&req(&[("host", "gw.example:8443")]), &p), None);
        assert_eq!(mismatch(&req(&[("host", "GW.example:8443")]), &p), None);
        let m = mismatch(&req(&[("host", "gw.example:9443")]), &p).expect("mismatch");
        assert_eq!(m.seen, "gw.example:9443");
        assert!(m.advice().contains("--public-url"), "{}", m.advice());
        let proxied = [
            ("host", "127.0.0.1:8080"),
            ("x-forwarded-host", "gw.example:8443"),
        ];
        assert_eq!(mismatch(&req(&proxied), &p), None);
        let m = mismatch(&req(&[("origin", "https://other.example")]), &p).expect("origin");
        assert_eq!(m.seen, "https://other.example");
        let default_port = public("https://gw.example");
        assert_eq!(
            mismatch(&req(&[("host", "gw.example")]), &default_port),
            None
        );
        assert!(
            mismatch(&req(&[]), &p).is_none(),
            "no header, nothing to say"
        );
    }
}
