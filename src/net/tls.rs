//! TLS material: the local CA and server certificate of `mode = "self-signed"`, loading
//! operator PEM files, and the rustls server configuration (ring provider, TLS 1.2/1.3).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::clock;
use crate::datadir::{ensure_private_dir, write_private_file};

/// Apple's limit for server certificates is 398 days; stay one under.
const LEAF_DAYS: i64 = 397;
/// Renew the leaf when it has fewer days left than this.
const RENEW_DAYS: i64 = 30;
const CA_YEARS: i64 = 10;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {detail}")]
    Read { path: PathBuf, detail: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} contains no certificate")]
    NoCertificate { path: PathBuf },
    #[error("the certificate and key are not usable together: {0}")]
    Config(String),
    #[error("cannot generate a certificate: {0}")]
    Generate(String),
}

/// Where the server's certificate chain and key are, and the CA to trust (self-signed).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: Option<PathBuf>,
}

/// What operators see about a certificate.
#[derive(Debug, Clone)]
pub struct CertInfo {
    pub not_after: i64,
    pub sha256: String,
    pub names: Vec<String>,
}

/// Makes sure `dir` holds a local CA and a server certificate valid for `names` with at
/// least 30 days left; (re)issues what is missing, expiring or for other names.
pub fn prepare_self_signed(dir: &Path, names: &[String]) -> Result<TlsFiles, TlsError> {
    ensure_private_dir(dir).map_err(|source| TlsError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let files = TlsFiles {
        cert: dir.join("server.pem"),
        key: dir.join("server-key.pem"),
        ca: Some(dir.join("ca.pem")),
    };
    let ca_cert = dir.join("ca.pem");
    let ca_key = dir.join("ca-key.pem");
    let mut new_ca = false;
    if !ca_cert.exists() || !ca_key.exists() {
        generate_ca(&ca_cert, &ca_key)?;
        new_ca = true;
    }
    let reason = if new_ca {
        Some("a new local CA was created".to_string())
    } else {
        leaf_renewal_reason(&files.cert, &files.key, names)
    };
    if let Some(reason) = reason {
        log::info!("issuing a new server certificate: {reason}");
        issue_leaf(&ca_cert, &ca_key, &files.cert, &files.key, names)?;
    }
    Ok(files)
}

fn generate_ca(cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(gen_err)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        format!("seatgate local CA {}", &crate::crypto::random_hex(4)),
    );
    dn.push(DnType::OrganizationName, "seatgate");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(365 * CA_YEARS);
    let cert = params.self_signed(&key).map_err(gen_err)?;
    write_private_file(key_path, key.serialize_pem().as_bytes()).map_err(|source| {
        TlsError::Write {
            path: key_path.to_path_buf(),
            source,
        }
    })?;
    write_public_file(cert_path, cert.pem().as_bytes())?;
    log::info!(
        "created a local certificate authority in {}",
        cert_path.display()
    );
    Ok(())
}

fn issue_leaf(
    ca_cert: &Path,
    ca_key: &Path,
    cert_path: &Path,
    key_path: &Path,
    names: &[String],
) -> Result<(), TlsError> {
    let ca_key_pem = read_text(ca_key)?;
    let ca_pem = read_text(ca_cert)?;
    let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(gen_err)?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).map_err(gen_err)?;

    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(gen_err)?;
    let mut params = CertificateParams::new(names.to_vec()).map_err(gen_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_else(|| "localhost".into()),
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(LEAF_DAYS) - time::Duration::hours(1);
    let cert = params.signed_by(&key, &issuer).map_err(gen_err)?;
    write_private_file(key_path, key.serialize_pem().as_bytes()).map_err(|source| {
        TlsError::Write {
            path: key_path.to_path_buf(),
            source,
        }
    })?;
    // Serve the chain: leaf, then the CA (clients that trust the CA need not have it twice).
    let chain = format!("{}{}", cert.pem(), ca_pem);
    write_public_file(cert_path, chain.as_bytes())
}

/// Why the existing leaf must be replaced, or `None` if it is still good.
fn leaf_renewal_reason(cert: &Path, key: &Path, names: &[String]) -> Option<String> {
    if !cert.exists() || !key.exists() {
        return Some("none exists yet".into());
    }
    let info = match describe(cert) {
        Ok(info) => info,
        Err(e) => return Some(format!("the existing one is unreadable ({e})")),
    };
    if info.not_after - clock::now_unix() < RENEW_DAYS * 86_400 {
        return Some(format!(
            "the existing one expires {}",
            clock::rfc3339(info.not_after)
        ));
    }
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !info.names.iter().any(|have| have.eq_ignore_ascii_case(n)))
        .collect();
    if !missing.is_empty() {
        return Some(format!("it does not cover {missing:?}"));
    }
    None
}

/// Expiry, fingerprint and names of the first certificate in a PEM file.
pub fn describe(cert: &Path) -> Result<CertInfo, TlsError> {
    let bytes = std::fs::read(cert).map_err(|e| TlsError::Read {
        path: cert.to_path_buf(),
        detail: e.to_string(),
    })?;
    let bad = |detail: String| TlsError::Read {
        path: cert.to_path_buf(),
        detail,
    };
    let (_, pem) = x509_parser::pem::parse_x509_pem(&bytes).map_err(|e| bad(e.to_string()))?;
    let x509 = pem.parse_x509().map_err(|e| bad(e.to_string()))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = x509.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(d) => names.push(d.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(raw) => {
                    let ip = match raw.len() {
                        4 => <[u8; 4]>::try_from(*raw).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*raw).ok().map(IpAddr::from),
                        _ => None,
                    };
                    names.extend(ip.map(|ip| ip.to_string()));
                }
                _ => {}
            }
        }
    }
    Ok(CertInfo {
        not_after: x509.validity().not_after.timestamp(),
        sha256: crate::crypto::fingerprint(&pem.contents),
        names,
    })
}

/// A key others can read is no longer secret. OpenSSH refuses such keys; a gateway that
/// refused would be down over a permission, so this warns (at start and on SIGHUP).
fn warn_if_exposed(key: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(key) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        log::warn!(
            "the TLS private key {} is accessible to other users (mode {mode:04o}); restrict it with `chmod 600 {}`",
            key.display(),
            key.display()
        );
    }
}

/// Builds the rustls server configuration from PEM files.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |e: rustls_pki_types::pem::Error| TlsError::Read {
            path,
            detail: e.to_string(),
        }
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(read_err(&files.cert))?
        .collect::<Result<_, _>>()
        .map_err(read_err(&files.cert))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: files.cert.clone(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(read_err(&files.key))?;
    warn_if_exposed(&files.key);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The names the self-signed certificate must cover.
pub fn certificate_names(public_host: &str, extra: &[String]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut add = |n: &str| {
        let n = n
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if !n.is_empty() && !names.iter().any(|have| have.eq_ignore_ascii_case(&n)) {
            names.push(n);
        }
    };
    add(public_host);
    add("localhost");
    add("127.0.0.1");
    add("::1");
    if let Some(host) = crate::public_url::host_name() {
        add(&host);
        if !host.contains('.') {
            add(&format!("{host}.local"));
        }
    }
    for e in extra {
        add(e);
    }
    names
}

fn write_public_file(path: &Path, contents: &[u8]) -> Result<(), TlsError> {
    use std::os::unix::fs::PermissionsExt;
    write_private_file(path, contents)
        .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)))
        .map_err(|source| TlsError::Write {
            path: path.to_path_buf(),
            source,
        })
}

fn read_text(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|e| TlsError::Read {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}

fn gen_err(e: rcgen::Error) -> TlsError {
    TlsError::Generate(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_leaf_meets_apple_rules_and_is_reused() {
        let dir =
            std::env::temp_dir().join(format!("seatgate-tls-{}", crate::crypto::random_hex(6)));
        let names = vec!["gw.example.test".to_string(), "127.0.0.1".to_string()];
        let files = prepare_self_signed(&dir, &names).expect("generate");
        let info = describe(&files.cert).expect("describe");
        let days = (info.not_after - clock::now_unix()) / 86_400;
        assert!((390..=397).contains(&days), "leaf valid {days} days");
        assert!(info.names.contains(&"gw.example.test".to_string()));
        assert!(info.names.contains(&"127.0.0.1".to_string()));
        server_config(&files).expect("rustls accepts it");

        let again = prepare_self_signed(&dir, &names).expect("reuse");
        assert_eq!(
            describe(&again.cert).expect("describe").sha256,
            info.sha256,
            "reused, not reissued"
        );

        let more = vec!["other.example.test".to_string()];
        let reissued = prepare_self_signed(&dir, &more).expect("reissue");
        assert_ne!(
            describe(&reissued.cert).expect("describe").sha256,
            info.sha256
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("ca-key.pem"))
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
