//! The Assertion Consumer Service: the full validation chain (SECURITY.md, SAML SP).
//!
//! 1. the strict pre-filter ([`super::prefilter`]), before any signature code runs;
//! 2. the outstanding request named by InResponseTo: known, for this connection, unexpired,
//!    unused, and started in this browser (cookie hash). A response without InResponseTo
//!    (IdP-initiated) is refused unless the connection allows it, and then only opens the
//!    admin portal;
//! 3. samael verifies the signature against metadata rebuilt from *our stored* signing
//!    certificates (never a key from the response), with an algorithm allowlist, and checks
//!    issuer, conditions, InResponseTo;
//! 4. our own checks: an AudienceRestriction that names us, an identity, IssueInstant not in
//!    the future beyond the skew, Recipient and Destination equal to this ACS;
//! 5. replay cache and request consumption, in one transaction;
//! 6. the identity per the connection's preset, which must be in the connection's domains.
//!
//! Users see one sentence and a reason code; the detail goes to the log (never the
//! assertion itself).

use std::collections::BTreeMap;

use base64::Engine;
use samael::crypto::AllowedSignatureAlgorithm;
use samael::metadata::EntityDescriptor;
use samael::schema::Assertion;
use samael::service_provider::ServiceProvider;

use super::login::{BINDING_COOKIE, BINDING_PATH};
use super::metadata::{REDIRECT_BINDING, acs_url, sp_entity_id};
use super::prefilter;
use super::preset::{self, Identity};
use crate::clock::now_unix;
use crate::crypto::sha256_hex;
use crate::db::Db;
use crate::db::idp::{self, Purpose, VerificationKeys};
use crate::error::{HttpError, Reason};

/// Allowed clock difference between the IdP and us.
pub const CLOCK_SKEW_SECS: i64 = 180;

/// A verified sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub connection: String,
    /// The identity per the preset (NameID or a named attribute), lower-cased if an email.
    pub identity: String,
    pub email: Option<String>,
    /// The IdP's immutable user id (Entra's object id), when its preset names one.
    pub immutable_id: Option<String>,
    pub groups: Vec<String>,
    pub attributes: BTreeMap<String, Vec<String>>,
    /// The connection creates users unknown to the directory (no SCIM).
    pub jit_users: bool,
    pub return_to: Option<String>,
    /// What the sign-in was started for.
    pub purpose: Purpose,
    /// The AuthnRequest it answers (none for IdP-initiated sign-in).
    pub request_id: Option<String>,
}

fn rejected(detail: &str) -> HttpError {
    log::warn!(
        "SAML response refused: {}",
        crate::logging::client_text(detail)
    );
    HttpError::new(
        Reason::SamlRejected,
        "The sign-in response from your identity provider could not be accepted. Try again, or ask your IT administrator to check the sign-in log.",
    )
    .with_detail(detail)
}

fn clock_skew(detail: &str) -> HttpError {
    log::warn!(
        "SAML response refused: {}",
        crate::logging::client_text(detail)
    );
    HttpError::new(
        Reason::ClockSkew,
        "The sign-in response is dated in the future: the clocks of this gateway and your identity provider differ too much.",
    )
    .with_detail(detail)
}

fn expired(detail: &str) -> HttpError {
    log::warn!(
        "SAML response refused: {}",
        crate::logging::client_text(detail)
    );
    HttpError::new(
        Reason::SignInExpired,
        "This sign-in has expired or was started in another browser. Start the sign-in again.",
    )
    .with_detail(detail)
}

/// Validates a POST to `/saml/acs/{connection}`.
pub fn consume(
    db: &Db,
    public_url: &str,
    connection: &str,
    form: &[u8],
    cookie_header: Option<&str>,
) -> Result<SignedIn, HttpError> {
    let fields = crate::http::parse_form(form).map_err(|e| rejected(&e.message))?;
    let encoded = fields
        .get("SAMLResponse")
        .ok_or_else(|| rejected("no SAMLResponse field"))?;
    let vetted = prefilter::vet_form_value(encoded).map_err(|e| rejected(&e.to_string()))?;
    let in_response_to = response_attribute(&vetted.xml, "InResponseTo");
    let acs = acs_url(public_url, connection);
    if let Some(destination) = response_attribute(&vetted.xml, "Destination")
        && destination != acs
    {
        return Err(rejected(&format!(
            "Destination {destination:?} is not this ACS"
        )));
    }

    let now = now_unix();
    let binding_cookie =
        crate::http::Cookies::for_public_url(public_url).name(BINDING_COOKIE, BINDING_PATH);
    let browser =
        crate::http::cookie(cookie_header, &binding_cookie).map(|v| sha256_hex(v.as_bytes()));
    let (request, keys) = db.read(|tx| {
        let request = match &in_response_to {
            Some(id) => idp::request(tx, id)?,
            None => None,
        };
        Ok::<_, HttpError>((request, idp::verification_keys(tx, connection)?))
    })?;
    let keys = keys.ok_or_else(|| {
        HttpError::new(
            Reason::NotFound,
            "There is no sign-in connection with that name.",
        )
    })?;
    // An unsolicited response is accepted only where the connection allows it, and only
    // ever opens the admin portal (never a device activation).
    let (purpose, return_to) = match (&in_response_to, request) {
        (None, _) if keys.allow_idp_initiated => (Purpose::Admin, None),
        (None, _) => {
            return Err(rejected(
                "no InResponseTo: IdP-initiated sign-in is off for this connection",
            ));
        }
        (Some(_), None) => return Err(expired("InResponseTo names no request we sent")),
        (Some(_), Some(request)) => {
            if request.connection_id != connection {
                return Err(expired("the request was sent to another connection"));
            }
            if request.consumed_at.is_some() {
                return Err(expired("the request was already used"));
            }
            if request.expires_at < now {
                return Err(expired("the request expired"));
            }
            if browser.as_deref() != Some(request.browser_hash.as_str()) {
                return Err(expired(
                    "the response arrived in a browser other than the one that started the sign-in",
                ));
            }
            (request.purpose, request.return_to)
        }
    };

    let sp = service_provider(public_url, connection, &keys, in_response_to.is_none())?;
    let expected_ids: Option<[&str; 1]> = in_response_to.as_deref().map(|id| [id]);
    let assertion = sp
        .parse_xml_response(&vetted.xml, expected_ids.as_ref().map(|ids| &ids[..]))
        .map_err(|e| match &e {
            samael::service_provider::Error::AssertionConditionExpiredBefore { .. }
            | samael::service_provider::Error::AssertionSubjectConfirmationExpiredBefore {
                ..
            } => clock_skew(&format!("samael: {e}")),
            other => rejected(&format!("samael: {other}")),
        })?;
    check_assertion(&assertion, &sp_entity_id(public_url), &acs, now)?;

    let preset = preset::find(&keys.preset).unwrap_or(&preset::PRESETS[preset::PRESETS.len() - 1]);
    let attributes = attributes(&assertion);
    let name_id = assertion
        .subject
        .as_ref()
        .and_then(|s| s.name_id.as_ref())
        .map(|n| n.value.trim().to_string())
        .filter(|v| !v.is_empty());
    let identity = match preset.identity {
        Identity::NameId => name_id.clone(),
        Identity::Attribute(name) => first(&attributes, name),
    }
    .ok_or_else(|| rejected("the assertion carries no identity for this preset"))?;
    let email = preset
        .email_attribute
        .and_then(|a| first(&attributes, a))
        .or_else(|| identity.contains('@').then(|| identity.clone()))
        .map(|e| e.to_lowercase());
    let domain_of = |e: &str| e.rsplit_once('@').map(|(_, d)| d.to_string());
    let checked = email
        .as_deref()
        .or(Some(identity.as_str()))
        .and_then(domain_of);
    if !checked
        .as_ref()
        .is_some_and(|d| keys.domains.iter().any(|own| own == d))
    {
        log::warn!(
            "SAML sign-in refused: \"{}\" is outside the domains of connection {connection}",
            crate::logging::client_text(&identity)
        );
        return Err(HttpError::new(
            Reason::DomainNotAllowed,
            "Your identity provider is not allowed to sign in accounts of this email domain.",
        )
        .with_detail(format!(
            "{identity} is outside the connection's domains {:?}",
            keys.domains
        )));
    }
    let groups = preset
        .group_attribute
        .and_then(|a| attributes.get(a).cloned())
        .unwrap_or_default();
    let immutable_id = preset
        .immutable_id_attribute
        .and_then(|a| first(&attributes, a));

    // Replay cache and single use, together.
    let replay_until = assertion
        .conditions
        .as_ref()
        .and_then(|c| c.not_on_or_after)
        .map_or(now + 3600, |t| t.timestamp())
        + CLOCK_SKEW_SECS;
    db.write(|tx| {
        if !idp::remember_assertion(tx, &assertion.id, replay_until, now)? {
            return Err(rejected("the assertion was already used (replay)"));
        }
        if let Some(id) = &in_response_to
            && !idp::consume_request(tx, id, now)?
        {
            return Err(expired("the request was already used"));
        }
        Ok(())
    })?;
    log::info!(
        "SAML sign-in: \"{}\" via {connection}",
        crate::logging::client_text(&identity)
    );
    Ok(SignedIn {
        connection: connection.to_string(),
        identity: if identity.contains('@') {
            identity.to_lowercase()
        } else {
            identity
        },
        email,
        immutable_id,
        groups,
        attributes,
        jit_users: keys.jit_users,
        return_to,
        purpose,
        request_id: in_response_to,
    })
}

/// One samael service provider for this connection, verifying only with our stored
/// certificates and only with allowed algorithms.
fn service_provider(
    public_url: &str,
    connection: &str,
    keys: &VerificationKeys,
    unsolicited: bool,
) -> Result<ServiceProvider, HttpError> {
    if keys.certificates_der.is_empty() {
        return Err(HttpError::new(
            Reason::ConnectionIncomplete,
            "Single sign-on for your organization is not completely set up yet. Ask your IT administrator.",
        )
        .with_detail("the connection has no signing certificate"));
    }
    let certs: String = keys
        .certificates_der
        .iter()
        .map(|der| {
            format!(
                "<md:KeyDescriptor use=\"signing\"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>",
                base64::engine::general_purpose::STANDARD.encode(der)
            )
        })
        .collect();
    let xml = format!(
        "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" entityID=\"{}\"><md:IDPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">{certs}<md:SingleSignOnService Binding=\"{REDIRECT_BINDING}\" Location=\"{}\"/></md:IDPSSODescriptor></md:EntityDescriptor>",
        crate::error::html_escape(&keys.idp_entity_id),
        crate::error::html_escape(&keys.sso_url),
    );
    let idp_metadata: EntityDescriptor = xml
        .parse()
        .map_err(|e| rejected(&format!("stored metadata: {e}")))?;
    // SHA-1 is never allowed: samael's allowlist has no SHA-1 entry to opt into.
    let allowed = vec![
        AllowedSignatureAlgorithm::RsaSha256,
        AllowedSignatureAlgorithm::RsaSha384,
        AllowedSignatureAlgorithm::RsaSha512,
        AllowedSignatureAlgorithm::EcdsaSha256,
    ];
    Ok(ServiceProvider {
        entity_id: Some(sp_entity_id(public_url)),
        acs_url: Some(acs_url(public_url, connection)),
        idp_metadata,
        allow_idp_initiated: unsolicited,
        allowed_signature_algorithms: Some(allowed),
        ..ServiceProvider::default()
    })
}

/// What samael leaves unchecked (SECURITY.md, SAML SP, 5).
fn check_assertion(a: &Assertion, entity_id: &str, acs: &str, now: i64) -> Result<(), HttpError> {
    let audiences: Vec<&String> = a
        .conditions
        .iter()
        .flat_map(|c| c.audience_restrictions.iter().flatten())
        .flat_map(|r| r.audience.iter())
        .collect();
    if audiences.is_empty() {
        return Err(rejected("no AudienceRestriction"));
    }
    if !audiences.iter().any(|aud| aud.as_str() == entity_id) {
        return Err(rejected(&format!(
            "audience {audiences:?} is not {entity_id}"
        )));
    }
    if a.issue_instant.timestamp() > now + CLOCK_SKEW_SECS {
        return Err(clock_skew(&format!(
            "IssueInstant {} is ahead of our clock by more than {CLOCK_SKEW_SECS} s",
            a.issue_instant
        )));
    }
    let confirmations: Vec<_> = a
        .subject
        .iter()
        .flat_map(|s| s.subject_confirmations.iter().flatten())
        .filter_map(|c| c.subject_confirmation_data.as_ref())
        .collect();
    if confirmations.is_empty()
        || !confirmations
            .iter()
            .all(|d| d.recipient.as_deref() == Some(acs))
    {
        return Err(rejected(
            "SubjectConfirmationData Recipient is missing or not this ACS",
        ));
    }
    Ok(())
}

fn attributes(a: &Assertion) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for statement in a.attribute_statements.iter().flatten() {
        for attr in &statement.attributes {
            let Some(name) = attr.name.as_ref() else {
                continue;
            };
            let values = attr
                .values
                .iter()
                .filter_map(|v| v.value.clone())
                .map(|v| v.trim().to_string());
            out.entry(name.clone()).or_default().extend(values);
        }
    }
    out
}

fn first(attributes: &BTreeMap<String, Vec<String>>, name: &str) -> Option<String> {
    attributes
        .get(name)?
        .iter()
        .find(|v| !v.is_empty())
        .cloned()
}

/// An attribute of the root Response element of vetted XML.
fn response_attribute(xml: &str, name: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    doc.root_element().attribute(name).map(str::to_string)
}
