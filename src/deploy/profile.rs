//! The MDM configuration profile (.mobileconfig) that points a fleet of Macs at this
//! gateway: the gateway's CA root (`com.apple.security.root`) when it uses its own CA, and
//! the client app's managed preferences (server URL, activation method, the organization's
//! email domains, optionally a license key, renewal settings).
//!
//! Identifiers and UUIDs derive from the gateway's instance key, so every export of the
//! same gateway has the same ones and re-uploading a profile to an MDM replaces the old
//! one. The version is a hash of the settings: unchanged settings, unchanged version.
//! Signing (CMS SignedData, as Apple's tools and MDMs expect) is optional.

use std::path::Path;

use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::x509::X509;
use plist::{Dictionary, Value};

use crate::crypto::sha256_hex;

/// How the Macs activate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activation {
    /// Each user signs in with their work email (per-user seats).
    Sso,
    /// With a license key (per-device seats); `Some`: the key, embedded in the profile.
    Key(Option<String>),
}

impl Activation {
    pub fn method(&self) -> &'static str {
        match self {
            Activation::Sso => "sso",
            Activation::Key(_) => "key",
        }
    }
}

/// Everything a profile says, gathered from the gateway's configuration and database.
#[derive(Debug, Clone)]
pub struct ProfileInput {
    /// The gateway's public URL.
    pub server_url: String,
    /// The gateway's instance (the thumbprint of its instance key): the identifiers' seed.
    pub instance: String,
    pub organization: String,
    pub preference_domain: String,
    /// The gateway's own CA certificate (DER), when it uses one.
    pub ca_der: Option<Vec<u8>>,
    /// Every IdP connection's email domains, as a hint for the app's sign-in field.
    pub email_domains: Vec<String>,
    pub activation: Activation,
    pub renewal_check_secs: u64,
    /// `[profile] update_branch`: stable, beta or a pinned version.
    pub update_branch: String,
    /// Which of the gateway's profiles this is: empty for single sign-on, `key` for
    /// license-key activation without a key, `key-{id}` with license key `id` in it. Each
    /// has identifiers of its own, so a Mac in two MDM scopes keeps both.
    pub variant: String,
}

/// A built profile: its bytes (a plist, or CMS SignedData around it) and what it is.
#[derive(Debug, Clone)]
pub struct Profile {
    pub bytes: Vec<u8>,
    /// A hash of the settings: the same settings always give the same version.
    pub version: String,
    /// The signer's subject, when signed.
    pub signed_by: Option<String>,
    pub identifier: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{0}")]
    Identity(String),
    #[error("cannot build the profile: {0}")]
    Build(String),
}

/// A UUID derived from the gateway's instance and a payload's role (name-based, RFC 9562
/// version 8 layout): stable across exports, distinct between gateways.
fn stable_uuid(instance: &str, role: &str) -> String {
    let h = sha256_hex(format!("seatgate-profile:{instance}:{role}").as_bytes()).to_uppercase();
    let mut hex: Vec<char> = h[..32].chars().collect();
    hex[12] = '8';
    // The variant bits (10xx): 8, 9, A or B.
    hex[16] = ['8', '9', 'A', 'B'][usize::from(hex[16].to_digit(16).unwrap_or(0) as u8 & 3)];
    let s: String = hex.into_iter().collect();
    format!(
        "{}-{}-{}-{}-{}",
        &s[..8],
        &s[8..12],
        &s[12..16],
        &s[16..20],
        &s[20..32]
    )
}

fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', ':']).next().unwrap_or(rest)
}

/// The identifier every export of this gateway's profile has.
pub fn identifier(input: &ProfileInput) -> String {
    let base = format!(
        "{}.profile.{}",
        input.preference_domain,
        &sha256_hex(input.instance.as_bytes())[..12]
    );
    match input.variant.as_str() {
        "" => base,
        variant => format!("{base}.{variant}"),
    }
}

/// The seed of this profile's UUIDs: the instance, and the variant when there is one.
fn seed(input: &ProfileInput) -> String {
    match input.variant.as_str() {
        "" => input.instance.clone(),
        variant => format!("{}:{variant}", input.instance),
    }
}

/// The settings' hash, 12 hex digits.
fn version(input: &ProfileInput) -> String {
    let settings = serde_json::json!({
        "server": input.server_url, "organization": input.organization,
        "domain": input.preference_domain, "ca": input.ca_der.as_deref().map(sha256_hex),
        "domains": input.email_domains, "activation": input.activation.method(),
        "key": match &input.activation { Activation::Key(Some(k)) => Some(sha256_hex(k.as_bytes())), _ => None },
        "renewal": input.renewal_check_secs, "updates": input.update_branch,
    });
    sha256_hex(settings.to_string().as_bytes())[..12].to_string()
}

fn dict(pairs: Vec<(&str, Value)>) -> Dictionary {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// The managed preferences the client app reads (and `seatgate client --config`).
pub fn preferences(input: &ProfileInput, version: &str) -> Dictionary {
    let mut p = dict(vec![
        ("ServerURL", Value::String(input.server_url.clone())),
        (
            "ActivationMethod",
            Value::String(input.activation.method().into()),
        ),
        (
            "EmailDomains",
            Value::Array(
                input
                    .email_domains
                    .iter()
                    .map(|d| Value::String(d.clone()))
                    .collect(),
            ),
        ),
        (
            "RenewalCheckInterval",
            Value::Integer(input.renewal_check_secs.into()),
        ),
        ("ProfileVersion", Value::String(version.to_string())),
        ("UpdateBranch", Value::String(input.update_branch.clone())),
        (
            "SUFeedURL",
            Value::String(format!(
                "{}{}",
                input.server_url,
                crate::distribution::updates::Feed::of_setting(&input.update_branch).appcast_path()
            )),
        ),
    ]);
    if let Activation::Key(Some(key)) = &input.activation {
        p.insert("LicenseKey".into(), Value::String(key.clone()));
    }
    if let Some(ca) = &input.ca_der {
        p.insert("ServerCACertificate".into(), Value::Data(ca.clone()));
    }
    p
}

/// The profile as a plist document (unsigned).
pub fn build(input: &ProfileInput) -> Result<(Vec<u8>, String), ProfileError> {
    let version = version(input);
    let id = identifier(input);
    let host = host_of(&input.server_url).to_string();
    let organization = if input.organization.is_empty() {
        host.clone()
    } else {
        input.organization.clone()
    };
    let mut payloads = Vec::new();
    if let Some(ca) = &input.ca_der {
        payloads.push(Value::Dictionary(dict(vec![
            (
                "PayloadType",
                Value::String("com.apple.security.root".into()),
            ),
            ("PayloadVersion", Value::Integer(1.into())),
            ("PayloadIdentifier", Value::String(format!("{id}.ca"))),
            (
                "PayloadUUID",
                Value::String(stable_uuid(&seed(input), "ca")),
            ),
            (
                "PayloadDisplayName",
                Value::String(format!("seatgate certificate authority ({host})")),
            ),
            (
                "PayloadCertificateFileName",
                Value::String("seatgate-ca.cer".into()),
            ),
            ("PayloadContent", Value::Data(ca.clone())),
        ])));
    }
    let mut prefs = preferences(input, &version);
    for (k, v) in [
        (
            "PayloadType",
            Value::String(input.preference_domain.clone()),
        ),
        ("PayloadVersion", Value::Integer(1.into())),
        (
            "PayloadIdentifier",
            Value::String(format!("{id}.preferences")),
        ),
        (
            "PayloadUUID",
            Value::String(stable_uuid(&seed(input), "preferences")),
        ),
        (
            "PayloadDisplayName",
            Value::String("seatgate licensing settings".into()),
        ),
    ] {
        prefs.insert(k.into(), v);
    }
    payloads.push(Value::Dictionary(prefs));
    let trusts = if input.ca_der.is_some() {
        ", and trusts the gateway's certificate authority"
    } else {
        ""
    };
    let top = dict(vec![
        ("PayloadType", Value::String("Configuration".into())),
        ("PayloadVersion", Value::Integer(1.into())),
        ("PayloadIdentifier", Value::String(id)),
        (
            "PayloadUUID",
            Value::String(stable_uuid(&seed(input), "profile")),
        ),
        (
            "PayloadDisplayName",
            Value::String(format!("seatgate licensing ({host})")),
        ),
        (
            "PayloadDescription",
            Value::String(format!(
                "Points this Mac's licensing at the gateway {}{trusts} (activation: {}; profile version {version}).",
                input.server_url,
                match input.activation {
                    Activation::Sso => "single sign-on",
                    Activation::Key(_) => "license key",
                }
            )),
        ),
        ("PayloadOrganization", Value::String(organization)),
        ("PayloadScope", Value::String("System".into())),
        ("PayloadRemovalDisallowed", Value::Boolean(false)),
        ("PayloadContent", Value::Array(payloads)),
    ]);
    let mut out = Vec::new();
    Value::Dictionary(top)
        .to_writer_xml(&mut out)
        .map_err(|e| ProfileError::Build(e.to_string()))?;
    Ok((out, version))
}

/// An admin-supplied signing identity: the certificate, its key and its chain.
pub struct SigningIdentity {
    cert: X509,
    key: PKey<Private>,
    chain: Vec<X509>,
}

impl SigningIdentity {
    /// Reads a PKCS#12 file (with `password`) or PEM holding the certificate (leaf first,
    /// then its chain) and the private key. Every refusal is one sentence naming the file.
    pub fn load(path: &Path, password: &str) -> Result<SigningIdentity, ProfileError> {
        let name = path.display();
        let bad = |why: String| ProfileError::Identity(why);
        let bytes = read_bounded(path, 1024 * 1024)
            .map_err(|why| bad(format!("cannot read the signing identity {name}: {why}")))?;
        let identity = if bytes.starts_with(b"-----")
            || bytes.windows(11).any(|w| w == b"-----BEGIN ")
        {
            let certs = X509::stack_from_pem(&bytes).unwrap_or_default();
            let key = PKey::private_key_from_pem(&bytes).map_err(|_| {
                bad(format!(
                    "{name} holds no readable (unencrypted) private key; put the certificate and its key in one PEM file, or use PKCS#12"
                ))
            })?;
            let mut certs = certs.into_iter();
            let cert = certs.next().ok_or_else(|| {
                bad(format!(
                    "{name} holds no certificate; put the signing certificate before its chain"
                ))
            })?;
            SigningIdentity {
                cert,
                key,
                chain: certs.collect(),
            }
        } else {
            let p12 = Pkcs12::from_der(&bytes).map_err(|_| {
                bad(format!(
                    "{name} is neither a PKCS#12 file (.p12, .pfx) nor PEM with a certificate and its private key"
                ))
            })?;
            let parsed = p12.parse2(password).map_err(|_| {
                bad(format!(
                    "cannot open the PKCS#12 file {name}: the password is wrong (see [profile] signing_password_file) or it uses a legacy cipher (re-export it with: openssl pkcs12 -export -keypbe AES-256-CBC -certpbe AES-256-CBC)"
                ))
            })?;
            let (Some(cert), Some(key)) = (parsed.cert, parsed.pkey) else {
                return Err(bad(format!(
                    "the PKCS#12 file {name} lacks the certificate or its private key"
                )));
            };
            SigningIdentity {
                cert,
                key,
                chain: parsed
                    .ca
                    .map(|s| s.into_iter().collect())
                    .unwrap_or_default(),
            }
        };
        let matches = identity
            .cert
            .public_key()
            .map(|p| p.public_eq(&identity.key))
            .unwrap_or(false);
        if !matches {
            return Err(bad(format!(
                "in {name}, the private key does not belong to the (first) certificate"
            )));
        }
        let now = openssl::asn1::Asn1Time::days_from_now(0)
            .map_err(|e| ProfileError::Build(e.to_string()))?;
        if identity.cert.not_after() < now {
            return Err(bad(format!(
                "the signing certificate in {name} expired on {}; MDMs would show the profile as not verified",
                identity.cert.not_after()
            )));
        }
        if identity.cert.not_before() > now {
            return Err(bad(format!(
                "the signing certificate in {name} is not valid before {}; MDMs would show the profile as not verified",
                identity.cert.not_before()
            )));
        }
        if identity.key.id() == openssl::pkey::Id::RSA && identity.key.bits() < 2048 {
            return Err(bad(format!(
                "the RSA key in {name} has {} bits; use at least 2048",
                identity.key.bits()
            )));
        }
        // Profiles are verified by macOS and MDMs: RSA or ECDSA signers only.
        if !matches!(
            identity.key.id(),
            openssl::pkey::Id::RSA | openssl::pkey::Id::EC
        ) {
            return Err(bad(format!(
                "the key in {name} is neither RSA nor EC; macOS and MDMs verify profiles signed with RSA or ECDSA"
            )));
        }
        Ok(identity)
    }

    /// The signer, as System Settings shows it.
    pub fn subject(&self) -> String {
        self.cert
            .subject_name()
            .entries()
            .filter_map(|e| {
                let key = e.object().nid().short_name().ok()?;
                let value = e.data().to_string().ok()?;
                Some(format!("{key}={value}"))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn not_after(&self) -> String {
        self.cert.not_after().to_string()
    }

    /// `data` wrapped in CMS SignedData (DER), the certificate and chain included.
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>, ProfileError> {
        let mut chain = Stack::new().map_err(|e| ProfileError::Build(e.to_string()))?;
        for c in &self.chain {
            chain
                .push(c.clone())
                .map_err(|e| ProfileError::Build(e.to_string()))?;
        }
        CmsContentInfo::sign(
            Some(&self.cert),
            Some(&self.key),
            Some(&chain),
            Some(data),
            CMSOptions::BINARY,
        )
        .and_then(|cms| cms.to_der())
        .map_err(|e| ProfileError::Build(format!("CMS signing failed: {e}")))
    }
}

/// A PEM certificate as DER (the CA the profile carries).
pub fn certificate_der(pem: &[u8]) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    X509::from_pem(pem).and_then(|c| c.to_der())
}

/// A DER certificate as PEM (the client trusting the CA a profile carries).
pub fn certificate_pem(der: &[u8]) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    X509::from_der(der).and_then(|c| c.to_pem())
}

/// A regular file's contents, refused beyond `max` bytes before anything is read (a FIFO,
/// a device or a huge file never fills memory or blocks).
pub fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("it is not a regular file".into());
    }
    let limit = if max.is_multiple_of(1024 * 1024) {
        format!("{} MiB", max / (1024 * 1024))
    } else {
        format!("{} KiB", max / 1024)
    };
    if meta.len() > max {
        return Err(format!("it is larger than {limit}"));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(max + 1).read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > max {
        return Err(format!("it is larger than {limit}"));
    }
    Ok(bytes)
}

/// Builds the profile and signs it when an identity is given.
pub fn export(
    input: &ProfileInput,
    identity: Option<&SigningIdentity>,
) -> Result<Profile, ProfileError> {
    let (xml, version) = build(input)?;
    let (bytes, signed_by) = match identity {
        Some(id) => (id.sign(&xml)?, Some(id.subject())),
        None => (xml, None),
    };
    Ok(Profile {
        bytes,
        version,
        signed_by,
        identifier: identifier(input),
    })
}

/// The managed preferences in a file an admin or MDM produced: a preferences plist (XML
/// or binary, as macOS writes `/Library/Managed Preferences/<domain>.plist`), the same as
/// JSON, or a whole .mobileconfig (signed or not; the payload holding `ServerURL`).
pub fn read_preferences(bytes: &[u8]) -> Result<Dictionary, String> {
    let unwrapped;
    let bytes = if bytes.first() == Some(&0x30) {
        // DER: a signed profile. Its signature is the MDM's business; the content is read
        // without checking the signer.
        let mut cms = CmsContentInfo::from_der(bytes)
            .map_err(|_| "the file is neither a plist, JSON, nor a signed profile".to_string())?;
        let mut content = Vec::new();
        cms.verify(
            None,
            None,
            None,
            Some(&mut content),
            CMSOptions::NO_SIGNER_CERT_VERIFY | CMSOptions::BINARY,
        )
        .map_err(|_| "the signed profile's signature does not verify".to_string())?;
        unwrapped = content;
        &unwrapped[..]
    } else {
        bytes
    };
    let value: Value = if bytes.trim_ascii_start().starts_with(b"{") {
        let json: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON ({e})"))?;
        plist::to_value(&json)
            .map_err(|_| "JSON that is not a dictionary of settings".to_string())?
    } else {
        Value::from_reader(std::io::Cursor::new(bytes)).map_err(|_| {
            "neither a plist, JSON, nor a configuration profile (.mobileconfig)".to_string()
        })?
    };
    let dict = value
        .into_dictionary()
        .ok_or_else(|| "the file is not a dictionary of settings".to_string())?;
    if dict.contains_key("ServerURL") {
        return Ok(dict);
    }
    // A whole profile: the payload carrying the app's settings.
    dict.get("PayloadContent")
        .and_then(Value::as_array)
        .and_then(|payloads| {
            payloads
                .iter()
                .filter_map(Value::as_dictionary)
                .find(|p| p.contains_key("ServerURL"))
                .cloned()
        })
        .ok_or_else(|| "the file holds no ServerURL setting".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> ProfileInput {
        ProfileInput {
            server_url: "https://gw.contoso.com:8443".into(),
            instance: "abc".into(),
            organization: String::new(),
            preference_domain: "com.seatgate.client".into(),
            ca_der: Some(vec![0x30, 1, 2]),
            email_domains: vec!["contoso.com".into()],
            activation: Activation::Sso,
            renewal_check_secs: 3600,
            update_branch: "stable".into(),
            variant: String::new(),
        }
    }

    #[test]
    fn identifiers_are_stable_and_versions_follow_the_settings() {
        let a = input();
        let (x1, v1) = build(&a).expect("build");
        let (x2, v2) = build(&a).expect("build");
        assert_eq!(x1, x2, "the same settings give the same bytes");
        assert_eq!(v1, v2);
        let mut b = a.clone();
        b.email_domains.push("fabrikam.com".into());
        assert_ne!(build(&b).expect("build").1, v1);
        let mut other = a.clone();
        other.instance = "def".into();
        assert_ne!(identifier(&other), identifier(&a));
        let mut lab = a.clone();
        lab.variant = "key-key-1".into();
        assert_ne!(identifier(&lab), identifier(&a));
        assert_ne!(
            stable_uuid(&seed(&lab), "profile"),
            stable_uuid(&seed(&a), "profile")
        );
        let u = stable_uuid("abc", "profile");
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "8");
        assert!("89AB".contains(&u[19..20]), "{u}");
        assert_eq!(host_of("https://gw.contoso.com:8443/x"), "gw.contoso.com");
    }

    #[test]
    fn preferences_read_back_from_plist_json_and_the_whole_profile() {
        let mut a = input();
        a.activation = Activation::Key(Some("SGK-1".into()));
        let (xml, _) = build(&a).expect("build");
        let whole = read_preferences(&xml).expect("profile");
        assert_eq!(
            whole["ServerURL"].as_string(),
            Some("https://gw.contoso.com:8443")
        );
        assert_eq!(whole["LicenseKey"].as_string(), Some("SGK-1"));
        let json = br#"{"ServerURL": "https://x.example", "ActivationMethod": "sso"}"#;
        assert_eq!(
            read_preferences(json).expect("json")["ActivationMethod"].as_string(),
            Some("sso")
        );
        for bad in [&b"nonsense"[..], b"{}", b"[1]", b"\x30\x01"] {
            assert!(read_preferences(bad).is_err());
        }
    }
}
