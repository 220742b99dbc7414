//! Fetching IdP metadata from its URL: HTTPS only (the document carries the certificates
//! every signature is checked against), the system's trusted roots plus an optional
//! operator-supplied CA file, a 1 MiB cap, a 15-second deadline, at most 3 redirects
//! (never to plain HTTP).

use std::path::Path;
use std::time::Duration;

use ureq::tls::{Certificate, RootCerts, TlsConfig};

const MAX_BYTES: u64 = 1024 * 1024;
const DEADLINE: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "metadata URLs must start with https:// (the metadata carries the IdP's signing certificates)"
    )]
    NotHttps,
    #[error("cannot read the CA file {path}: {detail}")]
    CaFile { path: String, detail: String },
    #[error("fetching {url} failed: {detail}")]
    Request { url: String, detail: String },
}

pub struct MetadataFetcher {
    agent: ureq::Agent,
}

impl MetadataFetcher {
    /// A fetcher trusting the system's roots and, if given, the PEM CAs in `extra_ca_file`.
    pub fn new(extra_ca_file: Option<&Path>) -> Result<MetadataFetcher, FetchError> {
        let mut roots: Vec<Certificate<'static>> = rustls_native_certs::load_native_certs()
            .certs
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        if let Some(path) = extra_ca_file {
            let ca_error = |detail: String| FetchError::CaFile {
                path: path.display().to_string(),
                detail,
            };
            let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
            let before = roots.len();
            for item in ureq::tls::parse_pem(&pem) {
                if let ureq::tls::PemItem::Certificate(c) =
                    item.map_err(|e| ca_error(e.to_string()))?
                {
                    roots.push(c);
                }
            }
            if roots.len() == before {
                return Err(ca_error("it holds no PEM certificate".into()));
            }
        }
        let root_certs = if roots.is_empty() {
            // No system store (a minimal container): Mozilla's roots, built in.
            RootCerts::WebPki
        } else {
            RootCerts::new_with_certs(&roots)
        };
        let config = ureq::Agent::config_builder()
            .https_only(true)
            .max_redirects(3)
            .timeout_global(Some(DEADLINE))
            .user_agent(concat!("seatgate/", env!("CARGO_PKG_VERSION")))
            .tls_config(TlsConfig::builder().root_certs(root_certs).build())
            .build();
        Ok(MetadataFetcher {
            agent: config.into(),
        })
    }

    /// GETs `url` and returns the body as text.
    pub fn fetch(&self, url: &str) -> Result<String, FetchError> {
        if !url.starts_with("https://") {
            return Err(FetchError::NotHttps);
        }
        let failed = |detail: String| FetchError::Request {
            url: url.to_string(),
            detail,
        };
        let mut response = self
            .agent
            .get(url)
            .header(
                "Accept",
                "application/samlmetadata+xml, application/xml, text/xml",
            )
            .call()
            .map_err(|e| failed(e.to_string()))?;
        response
            .body_mut()
            .with_config()
            .limit(MAX_BYTES)
            .read_to_string()
            .map_err(|e| failed(e.to_string()))
    }
}
