//! IdP metadata in, SP metadata out.
//!
//! IdP metadata (from the admin) is parsed with samael's model; what seatgate keeps is the
//! IdP entity ID, its HTTP-Redirect single sign-on URL and its signing certificates. A
//! KeyDescriptor without `use` counts as a signing key (many IdPs publish it that way).
//! Metadata without a signing certificate is refused (SECURITY.md, SAML SP, 2).

use base64::Engine;
use samael::metadata::EntityDescriptor;

use crate::domain::connection::IdpCertificate;
use crate::domain::connection::IdpMetadata;
use crate::http::html_escape;

pub const REDIRECT_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
pub const POST_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
/// SP metadata says it is valid for this long; IdPs that cache it refresh within it.
const SP_METADATA_VALID_DAYS: i64 = 7;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("the metadata is not SAML 2.0 metadata XML ({0})")]
    NotMetadata(String),
    #[error("the metadata has a DOCTYPE; export it again from the IdP")]
    Doctype,
    #[error("the metadata describes no identity provider (no IDPSSODescriptor)")]
    NoIdp,
    #[error("the metadata has no entityID")]
    NoEntityId,
    #[error("the IdP offers no single sign-on URL with the HTTP-Redirect binding")]
    NoRedirectSso,
    #[error("the metadata has no signing certificate; seatgate never accepts unsigned sign-ins")]
    NoSigningCertificate,
    #[error("a signing certificate in the metadata is unreadable ({0})")]
    BadCertificate(String),
}

/// Parses an IdP's metadata document.
pub fn parse_idp_metadata(xml: &str) -> Result<IdpMetadata, MetadataError> {
    if xml.to_ascii_lowercase().contains("<!doctype") {
        return Err(MetadataError::Doctype);
    }
    // samael's reader tolerates undeclared prefixes and other breakage; insist on XML.
    roxmltree::Document::parse(xml)
        .map_err(|e| MetadataError::NotMetadata(format!("not well-formed XML: {e}")))?;
    let entity = xml
        .parse::<EntityDescriptor>()
        .map_err(|e| MetadataError::NotMetadata(e.to_string().chars().take(200).collect()))?;
    let entity_id = entity
        .entity_id
        .clone()
        .filter(|e| !e.trim().is_empty())
        .ok_or(MetadataError::NoEntityId)?;
    let idp = entity
        .idp_sso_descriptors
        .as_ref()
        .and_then(|d| d.first())
        .ok_or(MetadataError::NoIdp)?;
    let sso_url = idp
        .single_sign_on_services
        .iter()
        .find(|e| e.binding == REDIRECT_BINDING)
        .map(|e| e.location.trim().to_string())
        .filter(|l| l.starts_with("https://") || l.starts_with("http://"))
        .ok_or(MetadataError::NoRedirectSso)?;
    let mut certificates: Vec<IdpCertificate> = Vec::new();
    for key in &idp.key_descriptors {
        if key.key_use.as_deref().is_some_and(|u| u != "signing") {
            continue;
        }
        for text in key
            .key_info
            .x509_data
            .iter()
            .flat_map(|d| d.certificates.iter())
        {
            let cert = parse_certificate(text)?;
            if !certificates.iter().any(|c| c.sha256 == cert.sha256) {
                certificates.push(cert);
            }
        }
    }
    if certificates.is_empty() {
        return Err(MetadataError::NoSigningCertificate);
    }
    Ok(IdpMetadata {
        entity_id,
        sso_url,
        certificates,
    })
}

fn parse_certificate(base64_text: &str) -> Result<IdpCertificate, MetadataError> {
    let compact: String = base64_text
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| MetadataError::BadCertificate(e.to_string()))?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| MetadataError::BadCertificate(e.to_string()))?;
    Ok(IdpCertificate {
        sha256: crate::crypto::fingerprint(&der),
        subject: cert.subject().to_string(),
        not_after: cert.validity().not_after.timestamp(),
        der,
    })
}

/// The SP entity ID: `{public_url}/saml/metadata` (INTERFACES.md).
pub fn sp_entity_id(public_url: &str) -> String {
    format!("{public_url}/saml/metadata")
}

pub fn acs_url(public_url: &str, connection: &str) -> String {
    format!("{public_url}/saml/acs/{connection}")
}

/// SP metadata listing one Assertion Consumer Service per connection. It advertises no
/// encryption (TLS protects the POST) and asks for signed assertions.
/// SP metadata listing the ACS of `connections`. `signing_cert_b64` is the request-signing
/// certificate; `requests_signed` says whether these connections get signed requests.
pub fn sp_metadata(
    public_url: &str,
    connections: &[String],
    signing_cert_b64: &str,
    requests_signed: bool,
    now: i64,
) -> String {
    let valid_until = crate::clock::rfc3339(now + SP_METADATA_VALID_DAYS * 86_400);
    let mut acs = String::new();
    for (i, id) in connections.iter().enumerate() {
        acs.push_str(&format!(
            "    <md:AssertionConsumerService Binding=\"{POST_BINDING}\" Location=\"{}\" index=\"{i}\" isDefault=\"{}\"/>\n",
            html_escape(&acs_url(public_url, id)),
            i == 0
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" entityID=\"{}\" validUntil=\"{valid_until}\">\n  <md:SPSSODescriptor AuthnRequestsSigned=\"{requests_signed}\" WantAssertionsSigned=\"true\" protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">\n    <md:KeyDescriptor use=\"signing\"><ds:KeyInfo xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:X509Data><ds:X509Certificate>{signing_cert_b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>\n    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified</md:NameIDFormat>\n    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>\n{acs}  </md:SPSSODescriptor>\n</md:EntityDescriptor>\n",
        html_escape(&sp_entity_id(public_url))
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A self-signed certificate, base64 DER, for metadata fixtures.
    pub(crate) fn cert_b64(cn: &str) -> String {
        let mut params = rcgen::CertificateParams::new(vec![cn.to_string()]).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        base64::engine::general_purpose::STANDARD.encode(cert.der())
    }

    pub(crate) fn idp_metadata(entity_id: &str, keys: &[(Option<&str>, &str)]) -> String {
        let key_descriptors: String = keys
            .iter()
            .map(|(use_, b64)| {
                let attr = use_.map(|u| format!(" use=\"{u}\"")).unwrap_or_default();
                format!("<KeyDescriptor{attr}><KeyInfo xmlns=\"http://www.w3.org/2000/09/xmldsig#\"><X509Data><X509Certificate>\n{b64}\n</X509Certificate></X509Data></KeyInfo></KeyDescriptor>")
            })
            .collect();
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?><EntityDescriptor ID="_m1" entityID="{entity_id}" xmlns="urn:oasis:names:tc:SAML:2.0:metadata"><IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">{key_descriptors}<SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://login.example/logout"/><SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://login.example/post"/><SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://login.example/saml2?idpid=C01"/></IDPSSODescriptor></EntityDescriptor>"#
        )
    }

    #[test]
    fn reads_entity_id_redirect_sso_and_every_signing_certificate() {
        let (a, b, enc) = (
            cert_b64("idp-2026"),
            cert_b64("idp-2027"),
            cert_b64("idp-enc"),
        );
        let xml = idp_metadata(
            "https://sts.windows.net/tenant/",
            &[
                (Some("signing"), &a),
                (None, &b),
                (Some("encryption"), &enc),
            ],
        );
        let m = parse_idp_metadata(&xml).expect("parses");
        assert_eq!(m.entity_id, "https://sts.windows.net/tenant/");
        assert_eq!(
            m.sso_url, "https://login.example/saml2?idpid=C01",
            "the Redirect binding, query kept"
        );
        assert_eq!(
            m.certificates.len(),
            2,
            "both signing certs (rollover); not the encryption one"
        );
        assert!(m.certificates[0].subject.contains("idp-2026"));
        assert!(m.certificates[0].not_after > crate::clock::now_unix());
    }

    #[test]
    fn refuses_metadata_without_signing_certificates_or_redirect_sso() {
        let enc = cert_b64("only-encryption");
        assert_eq!(
            parse_idp_metadata(&idp_metadata("https://idp", &[(Some("encryption"), &enc)])),
            Err(MetadataError::NoSigningCertificate)
        );
        let no_redirect = idp_metadata("https://idp", &[(None, &cert_b64("x"))]).replace(
            "bindings:HTTP-Redirect\" Location=\"https://login.example/saml2",
            "bindings:SOAP\" Location=\"https://login.example/saml2",
        );
        assert_eq!(
            parse_idp_metadata(&no_redirect),
            Err(MetadataError::NoRedirectSso)
        );
        assert!(matches!(
            parse_idp_metadata("<html/>"),
            Err(MetadataError::NotMetadata(_) | MetadataError::NoIdp | MetadataError::NoEntityId)
        ));
        let doctype = idp_metadata("https://idp", &[(None, &cert_b64("x"))]).replacen(
            "?>",
            "?><!DOCTYPE x>",
            1,
        );
        assert_eq!(parse_idp_metadata(&doctype), Err(MetadataError::Doctype));
        let garbage_cert = idp_metadata("https://idp", &[(None, "bm90IGEgY2VydA==")]);
        assert!(matches!(
            parse_idp_metadata(&garbage_cert),
            Err(MetadataError::BadCertificate(_))
        ));
    }

    #[test]
    fn malformed_xml_is_refused_even_where_samael_would_read_it() {
        let good = idp_metadata("https://idp", &[(Some("signing"), &cert_b64("a"))]);
        assert!(parse_idp_metadata(&good).is_ok());
        let undeclared = good
            .replace("<KeyDescriptor", "<md:KeyDescriptor")
            .replace("</KeyDescriptor>", "</md:KeyDescriptor>");
        assert!(matches!(
            parse_idp_metadata(&undeclared),
            Err(MetadataError::NotMetadata(m)) if m.contains("well-formed")
        ));
    }

    #[test]
    fn sp_metadata_lists_each_acs_and_no_encryption() {
        let xml = sp_metadata(
            "https://gw.example",
            &["contoso-entra".into(), "fabrikam-okta".into()],
            "MIIB",
            false,
            0,
        );
        assert!(xml.contains("entityID=\"https://gw.example/saml/metadata\""));
        assert!(xml.contains(
            "Location=\"https://gw.example/saml/acs/contoso-entra\" index=\"0\" isDefault=\"true\""
        ));
        assert!(xml.contains(
            "Location=\"https://gw.example/saml/acs/fabrikam-okta\" index=\"1\" isDefault=\"false\""
        ));
        assert!(
            !xml.contains("encryption"),
            "no encryption key is advertised"
        );
        assert!(xml.contains("<md:KeyDescriptor use=\"signing\">"));
        assert!(xml.contains("<ds:X509Certificate>MIIB</ds:X509Certificate>"));
        assert!(xml.contains("AuthnRequestsSigned=\"false\""));
        assert!(xml.contains("validUntil=\"1970-01-08T00:00:00Z\""));
        roxmltree::Document::parse(&xml).expect("well-formed");
    }
}
