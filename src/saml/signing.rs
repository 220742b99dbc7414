//! The SP's request-signing key: RSA-2048 with a self-signed certificate, created on first
//! run in `<data_dir>/saml/` (key 0600), published in the SP metadata, and used to sign
//! HTTP-Redirect AuthnRequests for connections that ask for it (SAML Bindings §3.4.4.1).
//! RSA rather than ECDSA because that is what every IdP verifies.
//!
//! OpenSSL is already linked for samael/xmlsec; ring cannot generate RSA keys.

use std::path::{Path, PathBuf};

use base64::Engine;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::Signer;
use openssl::x509::{X509, X509NameBuilder};

/// `SigAlg` of signed requests.
pub const SIG_ALG: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const KEY_FILE: &str = "sp-signing-key.pem";
const CERT_FILE: &str = "sp-signing-cert.pem";
/// IdPs pin this certificate when they verify requests; a long life avoids needless
/// re-configuration (its expiry is not checked by IdPs that verify redirect signatures).
const CERT_DAYS: u32 = 3650;

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("the SP signing key in {path} is unusable: {detail}")]
    Invalid { path: PathBuf, detail: String },
}

/// The SP key, loaded (or created, which takes RSA key generation's ~0.1 s) on first use,
/// so neither start-up nor idle memory pays for it when no one needs it.
pub struct LazySpKey {
    dir: PathBuf,
    key: std::sync::Mutex<Option<std::sync::Arc<SpSigningKey>>>,
}

impl LazySpKey {
    pub fn new(dir: PathBuf) -> LazySpKey {
        LazySpKey {
            dir,
            key: std::sync::Mutex::new(None),
        }
    }

    pub fn get(&self) -> Result<std::sync::Arc<SpSigningKey>, SigningError> {
        let mut slot = self.key.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(key) = slot.as_ref() {
            return Ok(std::sync::Arc::clone(key));
        }
        let key = std::sync::Arc::new(SpSigningKey::load_or_create(&self.dir)?);
        *slot = Some(std::sync::Arc::clone(&key));
        Ok(key)
    }
}

pub struct SpSigningKey {
    key: PKey<Private>,
    cert_der: Vec<u8>,
}

impl std::fmt::Debug for SpSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpSigningKey").finish_non_exhaustive()
    }
}

impl SpSigningKey {
    /// Loads the key from `dir`, creating it (and `dir`, 0700) the first time.
    pub fn load_or_create(dir: &Path) -> Result<SpSigningKey, SigningError> {
        let io = |context: String| move |source| SigningError::Io { context, source };
        crate::datadir::ensure_private_dir(dir)
            .map_err(io(format!("cannot prepare {}", dir.display())))?;
        let (key_path, cert_path) = (dir.join(KEY_FILE), dir.join(CERT_FILE));
        if !key_path.exists() || !cert_path.exists() {
            let (key_pem, cert_pem) = generate().map_err(|e| SigningError::Invalid {
                path: key_path.clone(),
                detail: e.to_string(),
            })?;
            crate::datadir::write_private_file(&key_path, &key_pem)
                .map_err(io(format!("cannot write {}", key_path.display())))?;
            std::fs::write(&cert_path, &cert_pem)
                .map_err(io(format!("cannot write {}", cert_path.display())))?;
            log::info!("created the SAML request-signing key in {}", dir.display());
        }
        let invalid = |e: openssl::error::ErrorStack| SigningError::Invalid {
            path: key_path.clone(),
            detail: e.to_string(),
        };
        let key_pem =
            std::fs::read(&key_path).map_err(io(format!("cannot read {}", key_path.display())))?;
        let cert_pem = std::fs::read(&cert_path)
            .map_err(io(format!("cannot read {}", cert_path.display())))?;
        let key = PKey::private_key_from_pem(&key_pem).map_err(invalid)?;
        let cert = X509::from_pem(&cert_pem).map_err(invalid)?;
        if !cert.public_key().map_err(invalid)?.public_eq(&key) {
            return Err(SigningError::Invalid {
                path: cert_path,
                detail: "the certificate does not belong to the key".into(),
            });
        }
        Ok(SpSigningKey {
            key,
            cert_der: cert.to_der().map_err(invalid)?,
        })
    }

    /// The certificate, base64 DER, for `<ds:X509Certificate>`.
    pub fn certificate_b64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.cert_der)
    }

    /// Signs the octets of a redirect query (`SAMLRequest=…&RelayState=…&SigAlg=…`, exactly
    /// as sent); returns the base64 signature.
    pub fn sign(&self, octets: &[u8]) -> Result<String, openssl::error::ErrorStack> {
        let mut signer = Signer::new(MessageDigest::sha256(), &self.key)?;
        signer.update(octets)?;
        Ok(base64::engine::general_purpose::STANDARD.encode(signer.sign_to_vec()?))
    }
}

fn generate() -> Result<(Vec<u8>, Vec<u8>), openssl::error::ErrorStack> {
    let key = PKey::from_rsa(Rsa::generate(2048)?)?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("CN", "seatgate SAML request signing")?;
    let name = name.build();
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let mut cert = X509::builder()?;
    cert.set_version(2)?;
    let serial = serial.to_asn1_integer()?;
    cert.set_serial_number(&serial)?;
    cert.set_subject_name(&name)?;
    cert.set_issuer_name(&name)?;
    cert.set_pubkey(&key)?;
    let (not_before, not_after) = (
        Asn1Time::days_from_now(0)?,
        Asn1Time::days_from_now(CERT_DAYS)?,
    );
    cert.set_not_before(&not_before)?;
    cert.set_not_after(&not_after)?;
    cert.sign(&key, MessageDigest::sha256())?;
    Ok((key.private_key_to_pem_pkcs8()?, cert.build().to_pem()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_reloads_and_signs_verifiably() {
        let dir = tempfile::tempdir().expect("tmp");
        let saml = dir.path().join("saml");
        let a = SpSigningKey::load_or_create(&saml).expect("create");
        let b = SpSigningKey::load_or_create(&saml).expect("reload");
        assert_eq!(a.certificate_b64(), b.certificate_b64(), "the key is kept");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(saml.join(KEY_FILE))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        let signature = a.sign(b"SAMLRequest=abc&SigAlg=x").expect("sign");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(signature)
            .expect("b64");
        let cert = X509::from_der(&a.cert_der).expect("cert");
        let public = cert.public_key().expect("public");
        let mut verifier =
            openssl::sign::Verifier::new(MessageDigest::sha256(), &public).expect("verifier");
        verifier
            .update(b"SAMLRequest=abc&SigAlg=x")
            .expect("update");
        assert!(verifier.verify(&raw).expect("verify"));
    }

    #[test]
    fn a_certificate_of_another_key_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let one = dir.path().join("one");
        let two = dir.path().join("two");
        SpSigningKey::load_or_create(&one).expect("one");
        SpSigningKey::load_or_create(&two).expect("two");
        std::fs::copy(two.join(CERT_FILE), one.join(CERT_FILE)).expect("copy");
        assert!(matches!(
            SpSigningKey::load_or_create(&one),
            Err(SigningError::Invalid { .. })
        ));
    }
}
