//! The demo's built-in identity provider: a sign-in page listing the demo directory's users
//! and a SAML 2.0 IdP that signs real assertions (RSA-SHA256, exclusive c14n, via xmlsec)
//! with its own key. Its responses go through the production ACS (pre-filter, signature,
//! audience, recipient, replay, request binding) like any IdP's.
//!
//! It exists only inside `seatgate demo`: `serve` never constructs one, no configuration
//! key enables it, and it answers only clients on the loopback interface.

use std::io::Read;
use std::sync::Arc;

use base64::Engine;
use maud::html;
use samael::crypto::CryptoProvider;

use crate::clock::{now_unix, rfc3339};
use crate::db::Db;
use crate::db::portal::Person;
use crate::domain::problem::Reason;
use crate::error::HttpError;
use crate::http::{Request, Response};

pub const PATH_PREFIX: &str = "/demo-idp/";
pub const SSO_PATH: &str = "/demo-idp/sso";
pub const POST_SCRIPT_PATH: &str = "/demo-idp/post.js";
/// An AuthnRequest from our own SP is a few hundred bytes; anything larger is refused.
const MAX_REQUEST_XML: u64 = 64 * 1024;

type Handled = Result<Response, HttpError>;

pub struct DemoIdp {
    db: Arc<Db>,
    entity_id: String,
    sso_url: String,
    acs_prefix: String,
    key_der: Vec<u8>,
    cert_der: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot create the demo IdP's signing key: {0}")]
pub struct KeyError(String);

impl DemoIdp {
    /// A fresh IdP with a new RSA-2048 key and a self-signed certificate for this run.
    pub fn new(db: Arc<Db>, public_url: &str) -> Result<DemoIdp, KeyError> {
        use samael::idp::{CertificateParams, IdentityProvider, KeyType, Rsa};
        let e = |e: samael::idp::error::Error| KeyError(e.to_string());
        let idp = IdentityProvider::generate_new(KeyType::Rsa(Rsa::Rsa2048)).map_err(e)?;
        let cert = idp
            .create_certificate(&CertificateParams {
                common_name: "seatgate demo IdP",
                issuer_name: "seatgate demo IdP",
                // Longer than the portal's 30-day expiry warning: a demo shows no false alarm.
                days_until_expiration: 365,
            })
            .map_err(e)?;
        Ok(DemoIdp {
            db,
            entity_id: format!("{public_url}/demo-idp"),
            sso_url: format!("{public_url}{SSO_PATH}"),
            acs_prefix: format!("{public_url}/saml/acs/"),
            key_der: idp.export_private_key_der().map_err(e)?,
            cert_der: cert.der_data().to_vec(),
        })
    }

    /// SAML metadata for `seatgate idp add`: entity ID, signing certificate, SSO endpoint.
    pub fn metadata_xml(&self) -> String {
        format!(
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{sso}"/></md:IDPSSODescriptor></md:EntityDescriptor>"#,
            entity = self.entity_id,
            cert = base64::engine::general_purpose::STANDARD.encode(&self.cert_der),
            sso = self.sso_url,
        )
    }

    /// The script that submits the HTTP-POST binding's form (no inline scripts).
    pub fn post_script(&self) -> Response {
        Response::new(
            200,
            "text/javascript; charset=utf-8",
            b"document.getElementById('saml-post').submit();\n".to_vec(),
        )
    }

    /// HTTP-Redirect binding: decode the AuthnRequest and show who can sign in.
    pub(crate) fn sign_in_page(&self, req: &Request) -> Handled {
        let encoded = crate::http::query_param(&req.query, "SAMLRequest")?.unwrap_or_default();
        let relay = crate::http::query_param(&req.query, "RelayState")?.unwrap_or_default();
        let request = AuthnRequest::decode(&encoded)?;
        self.check_acs(&request.acs)?;
        // The email the sign-in was started for (an activation's), listed first.
        let (mut users, hint) = self.db.read(|tx| {
            let hint = crate::db::idp::request(tx, &request.id)?.and_then(|r| r.email_hint);
            Ok::<_, HttpError>((
                crate::db::portal::people(tx, 500)?,
                hint.unwrap_or_default(),
            ))
        })?;
        users.sort_by_key(|u| !u.email.eq_ignore_ascii_case(&hint));
        let page = crate::page::layout(
            "Demo identity provider",
            None,
            html! {
                h1 { "Demo identity provider" }
                p.notice role="note" {
                    "This sign-in page stands in for your company's identity provider (Entra ID, Okta, …) in "
                    strong { "seatgate demo" } ". There are no passwords: pick a user. "
                    "seatgate receives a signed SAML assertion and checks it exactly as it checks a real IdP's."
                }
                table {
                    thead { tr { th { "User" } th { "Groups" } th {} } }
                    tbody {
                        @for u in &users {
                            tr.highlight[u.email.eq_ignore_ascii_case(&hint)] {
                                td {
                                    strong { (u.name) } br;
                                    span.muted { (u.email) }
                                    @if !u.active { " " span.bad { "(deactivated)" } }
                                }
                                td { (u.groups.join(", ")) }
                                td {
                                    form method="post" action=(SSO_PATH) {
                                        input type="hidden" name="request_id" value=(request.id);
                                        input type="hidden" name="acs" value=(request.acs);
                                        input type="hidden" name="audience" value=(request.issuer);
                                        input type="hidden" name="relay" value=(relay);
                                        input type="hidden" name="email" value=(u.email);
                                        button type="submit" { "Sign in as " (first_name(u)) }
                                    }
                                }
                            }
                        }
                    }
                }
            },
        );
        Ok(Response::page(200, page))
    }

    /// Signs a response for the chosen user and posts it to the ACS (HTTP-POST binding).
    pub(crate) fn respond(&self, req: &Request) -> Handled {
        let form = crate::http::parse_form(&req.body)?;
        let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
        let acs = field("acs");
        self.check_acs(acs)?;
        let email = field("email");
        let user = self
            .db
            .read(|tx| crate::db::portal::people(tx, 500))?
            .into_iter()
            .find(|u| u.email.eq_ignore_ascii_case(email))
            .ok_or_else(|| {
                HttpError::new(Reason::BadRequest, "Pick one of the listed demo users.")
            })?;
        let xml = self.response_xml(&user, field("request_id"), field("audience"), acs);
        let signed =
            samael::crypto::Crypto::sign_xml(xml.as_bytes(), &self.key_der).map_err(|e| {
                log::error!("the demo IdP cannot sign: {e}");
                HttpError::internal()
            })?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(signed.as_bytes());
        let page = crate::page::layout(
            "Signing in",
            None,
            html! {
                h1 { "Returning to seatgate…" }
                form #saml-post method="post" action=(acs) {
                    input type="hidden" name="SAMLResponse" value=(encoded);
                    input type="hidden" name="RelayState" value=(field("relay"));
                    p { "Signed in at the demo IdP as " strong { (user.email) } "." }
                    button type="submit" { "Continue" }
                }
                script src=(POST_SCRIPT_PATH) {}
            },
        );
        Ok(Response::html(200, page).with_header(
            "Content-Security-Policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
    }

    /// Only our own ACS endpoints: the IdP never posts an assertion anywhere else.
    fn check_acs(&self, acs: &str) -> Result<(), HttpError> {
        if acs.starts_with(&self.acs_prefix) && !acs[self.acs_prefix.len()..].contains(['/', '?']) {
            Ok(())
        } else {
            Err(HttpError::new(
                Reason::BadRequest,
                "The demo IdP signs in only to this seatgate.",
            ))
        }
    }

    fn response_xml(&self, user: &Person, request_id: &str, audience: &str, acs: &str) -> String {
        let now = now_unix();
        let issue = rfc3339(now);
        let expires = rfc3339(now + 300);
        let assertion_id = format!("_a{}", crate::crypto::random_hex(16));
        let groups: String = user
            .groups
            .iter()
            .map(|g| {
                format!(
                    "<saml:AttributeValue>{}</saml:AttributeValue>",
                    xml_escape(g)
                )
            })
            .collect();
        format!(
            r##"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r{rid}" Version="2.0" IssueInstant="{issue}" Destination="{acs}" InResponseTo="{irt}"><saml:Issuer>{issuer}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status><saml:Assertion ID="{aid}" Version="2.0" IssueInstant="{issue}"><saml:Issuer>{issuer}</saml:Issuer><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#{aid}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature><saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">{email}</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData InResponseTo="{irt}" NotOnOrAfter="{expires}" Recipient="{acs}"/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="{issue}" NotOnOrAfter="{expires}"><saml:AudienceRestriction><saml:Audience>{audience}</saml:Audience></saml:AudienceRestriction></saml:Conditions><saml:AuthnStatement AuthnInstant="{issue}" SessionIndex="_s{rid}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement><saml:AttributeStatement><saml:Attribute Name="email"><saml:AttributeValue>{email}</saml:AttributeValue></saml:Attribute><saml:Attribute Name="displayName"><saml:AttributeValue>{name}</saml:AttributeValue></saml:Attribute><saml:Attribute Name="groups">{groups}</saml:Attribute></saml:AttributeStatement></saml:Assertion></samlp:Response>"##,
            rid = crate::crypto::random_hex(16),
            issuer = xml_escape(&self.entity_id),
            acs = xml_escape(acs),
            irt = xml_escape(request_id),
            audience = xml_escape(audience),
            aid = assertion_id,
            cert = base64::engine::general_purpose::STANDARD.encode(&self.cert_der),
            email = xml_escape(&user.email),
            name = xml_escape(&user.name),
        )
    }
}

/// The parts of an AuthnRequest the IdP needs.
struct AuthnRequest {
    id: String,
    acs: String,
    issuer: String,
}

impl AuthnRequest {
    fn decode(encoded: &str) -> Result<AuthnRequest, HttpError> {
        let bad = || {
            HttpError::new(
                Reason::BadRequest,
                "The sign-in request is not a valid SAML AuthnRequest.",
            )
        };
        let deflated = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| bad())?;
        let mut xml = String::new();
        flate2::read::DeflateDecoder::new(deflated.as_slice())
            .take(MAX_REQUEST_XML)
            .read_to_string(&mut xml)
            .map_err(|_| bad())?;
        let doc = roxmltree::Document::parse(&xml).map_err(|_| bad())?;
        let root = doc.root_element();
        if root.tag_name().name() != "AuthnRequest" {
            return Err(bad());
        }
        let issuer = root
            .children()
            .find(|n| n.tag_name().name() == "Issuer")
            .and_then(|n| n.text())
            .ok_or_else(bad)?;
        Ok(AuthnRequest {
            id: root.attribute("ID").ok_or_else(bad)?.to_string(),
            acs: root
                .attribute("AssertionConsumerServiceURL")
                .ok_or_else(bad)?
                .to_string(),
            issuer: issuer.trim().to_string(),
        })
    }
}

/// The name to greet a person by.
fn first_name(person: &Person) -> &str {
    person
        .name
        .split_whitespace()
        .next()
        .unwrap_or(&person.email)
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}
