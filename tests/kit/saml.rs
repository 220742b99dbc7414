//! A test IdP that signs like real ones (an RSA key, signatures made by the `xmlsec1` CLI,
//! independent of the server's samael), its metadata, registering it as a connection, and
//! the two halves of an SP-initiated sign-in as a browser sees them.

use std::io::Read;
use std::path::Path;

use base64::Engine;

use super::http::HttpResponse;
use super::server::run_cli;

/// Writes `key.pem` and `cert.pem` (RSA-2048, self-signed, 2 days) into `dir`. In-process
/// (the openssl crate), so that tests which only need an IdP's metadata need no CLI.
pub fn rsa_key_and_certificate(dir: &Path, cn: &str) {
    use openssl::{asn1::Asn1Time, bn::BigNum, hash::MessageDigest, pkey::PKey, rsa::Rsa};
    let key = PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("pkey");
    let mut name = openssl::x509::X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", cn).expect("cn");
    let name = name.build();
    let mut cert = openssl::x509::X509Builder::new().expect("x509");
    cert.set_version(2).expect("version");
    let serial = BigNum::from_u32(1)
        .and_then(|n| n.to_asn1_integer())
        .expect("serial");
    cert.set_serial_number(&serial).expect("serial");
    cert.set_subject_name(&name).expect("subject");
    cert.set_issuer_name(&name).expect("issuer");
    cert.set_pubkey(&key).expect("key");
    cert.set_not_before(&Asn1Time::days_from_now(0).expect("time"))
        .expect("not before");
    cert.set_not_after(&Asn1Time::days_from_now(2).expect("time"))
        .expect("not after");
    cert.sign(&key, MessageDigest::sha256()).expect("sign");
    let pem = cert.build().to_pem().expect("pem");
    std::fs::write(dir.join("cert.pem"), pem).expect("write cert");
    let key_pem = key.private_key_to_pem_pkcs8().expect("key pem");
    std::fs::write(dir.join("key.pem"), key_pem).expect("write key");
}

/// An IdP's SAML metadata: `entity_id` signing (`key_use`) with the base64 DER `cert`.
pub fn metadata(entity_id: &str, key_use: &str, cert: &str) -> String {
    format!(
        r#"<?xml version="1.0"?><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity_id}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="{key_use}"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://login.microsoftonline.com/t/saml2"/></md:IDPSSODescriptor></md:EntityDescriptor>"#
    )
}

/// A test IdP: its key and certificate in a temporary directory, and its entity ID.
pub struct TestIdp {
    dir: tempfile::TempDir,
    pub entity_id: String,
}

impl TestIdp {
    pub fn new(entity_id: &str) -> TestIdp {
        let dir = tempfile::tempdir().expect("tmp");
        rsa_key_and_certificate(dir.path(), "test-idp");
        TestIdp {
            dir,
            entity_id: entity_id.into(),
        }
    }

    /// The signing certificate, base64 DER (as metadata carries it).
    pub fn cert_b64(&self) -> String {
        let pem = std::fs::read_to_string(self.dir.path().join("cert.pem")).expect("cert");
        pem.lines().filter(|l| !l.starts_with("-----")).collect()
    }

    pub fn metadata(&self) -> String {
        metadata(&self.entity_id, "signing", &self.cert_b64())
    }

    /// Signs the assertion of `xml` (which carries a signature template) with the `xmlsec1`
    /// CLI, SHA-256. Safe to call from several threads.
    pub fn sign(&self, xml: &str) -> String {
        super::tools::require(
            "xmlsec1",
            "Debian package xmlsec1, Homebrew formula libxmlsec1",
        );
        let input = self
            .dir
            .path()
            .join(format!("in-{}.xml", seatgate::crypto::random_hex(4)));
        let output = input.with_extension("signed.xml");
        std::fs::write(&input, xml).expect("write");
        let key = format!(
            "{},{}",
            self.dir.path().join("key.pem").display(),
            self.dir.path().join("cert.pem").display()
        );
        let out = std::process::Command::new("xmlsec1")
            .args([
                "--sign",
                "--privkey-pem",
                &key,
                "--id-attr:ID",
                "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
                "--output",
            ])
            .arg(&output)
            .arg(&input)
            .output()
            .expect("xmlsec1");
        assert!(
            out.status.success(),
            "xmlsec1: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let signed = std::fs::read_to_string(&output).expect("signed");
        let _ = std::fs::remove_file(input);
        let _ = std::fs::remove_file(output);
        signed
    }
}

/// Registers an IdP with `seatgate idp add` on the data directory `data_dir`; returns the
/// connection's id.
pub fn connect(
    data_dir: &Path,
    name: &str,
    preset: &str,
    domain: &str,
    metadata_xml: &str,
) -> String {
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("md.xml");
    std::fs::write(&file, metadata_xml).expect("write");
    let (code, out, err) = run_cli(
        &[
            "--data-dir",
            data_dir.to_str().expect("utf8"),
            "idp",
            "add",
            "--name",
            name,
            "--metadata",
            file.to_str().expect("utf8"),
            "--domain",
            domain,
            "--preset",
            preset,
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    out.split_whitespace()
        .nth(2)
        .expect("connection id")
        .to_string()
}

/// The AuthnRequest XML carried in a redirect `location`.
pub fn inflate_request(location: &str) -> String {
    let query = location.split_once('?').map(|(_, q)| q).expect("query");
    let value = query
        .split('&')
        .find_map(|p| p.strip_prefix("SAMLRequest="))
        .expect("SAMLRequest");
    let b64 = seatgate::http::percent_decode(value).expect("decoded");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64");
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(&raw[..])
        .read_to_string(&mut xml)
        .expect("inflate");
    xml
}

/// What the redirect to the IdP starts: (request id, relay state, binding cookie
/// "__Host-sg_saml=…").
pub fn started(redirect: &HttpResponse) -> (String, String, String) {
    assert!(matches!(redirect.status, 302 | 303), "{}", redirect.text());
    let location = redirect.header("location").expect("Location");
    let xml = inflate_request(location);
    let doc = roxmltree::Document::parse(&xml).expect("xml");
    let id = doc.root_element().attribute("ID").expect("id").to_string();
    let relay = location
        .split('&')
        .find_map(|p| p.strip_prefix("RelayState="))
        .expect("relay")
        .to_string();
    let cookie = redirect
        .set_cookie("__Host-sg_saml")
        .expect("binding cookie");
    (id, relay, cookie)
}

/// The form a browser posts to the ACS with a signed response.
pub fn acs_form(signed_xml: &str, relay: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(signed_xml.as_bytes());
    format!(
        "SAMLResponse={}&RelayState={relay}",
        seatgate::http::percent_encode(&b64)
    )
}
