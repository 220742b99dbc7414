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
//! 6. the identity per the connection's preset: every identifier the assertion offers for
//!    matching (NameID, identity and email attributes, immutable id) that looks like an
//!    email must be in the connection's domains, and at least one must.
//!
//! The unsigned wrapper is held to what the signature cannot vouch for: a signed Response
//! names this ACS as its Destination, the Status is Success, the Issuer (when present) is
//! the connection's; an unsolicited response carries no InResponseTo anywhere (an
//! assertion answering a request made in another browser is not IdP-initiated).
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
use crate::crypto::sha256_hex;
use crate::db::Db;
use crate::db::idp::{self, VerificationKeys};
use crate::domain::identity::Purpose;
use crate::domain::identity::SignedIn;
use crate::domain::problem::{Problem, Reason};
use crate::email::{Shape, shape};

/// Allowed clock difference between the IdP and us.
pub const CLOCK_SKEW_SECS: i64 = 180;

fn rejected(detail: &str) -> Problem {
    log::warn!(
        "SAML response refused: {}",
        crate::logging::client_text(detail)
    );
    Problem::new(
        Reason::SamlRejected,
        "The sign-in response from your identity provider could not be accepted. Try again, or ask your IT administrator to check the sign-in log.",
    )
    .with_detail(detail)
}

fn clock_skew(detail: &str) -> Problem {
    log::warn!(
        "SAML response refused: {}",
        crate::logging::client_text(detail)
    );
    Problem::new(
        Reason::ClockSkew,
        "The sign-in response is dated in the future: the clocks of this gateway and your identity provider differ too much.",
    )
    .with_detail(detail)
}

fn expired(detail: &str) -> Problem {
    log::warn!(
        "SAML response refused: {}",
        crate::logging::client_text(detail)
    );
    Problem::new(
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
    now: i64,
) -> Result<SignedIn, Problem> {
    let (vetted, wrapper) = read_response(form)?;
    let in_response_to = wrapper.in_response_to.clone();
    let acs = acs_url(public_url, connection);
    check_wrapper(&wrapper, vetted.response_signed, &acs)?;

    let binding_cookie =
        crate::http::Cookies::for_public_url(public_url).name(BINDING_COOKIE, BINDING_PATH);
    let browser =
        crate::http::cookie(cookie_header, &binding_cookie).map(|v| sha256_hex(v.as_bytes()));
    let (request, keys) = db.read(|tx| {
        let request = match &in_response_to {
            Some(id) => idp::request(tx, id)?,
            None => None,
        };
        Ok::<_, Problem>((request, idp::verification_keys(tx, connection)?))
    })?;
    let keys = keys.ok_or_else(|| {
        Problem::new(
            Reason::NotFound,
            "There is no sign-in connection with that name.",
        )
    })?;
    if let Some(issuer) = &wrapper.issuer
        && *issuer != keys.idp_entity_id
    {
        return Err(rejected(&format!(
            "the Response Issuer {issuer:?} is not this connection's IdP"
        )));
    }
    let (purpose, return_to) = match_request(
        &wrapper,
        request,
        Answering {
            connection,
            allow_idp_initiated: keys.allow_idp_initiated,
            browser: browser.as_deref(),
            now,
        },
    )?;

    let sp = service_provider(public_url, connection, &keys, in_response_to.is_none())?;
    let assertion = verify_assertion(
        &sp,
        &vetted.xml,
        in_response_to.as_deref(),
        &sp_entity_id(public_url),
        &acs,
        now,
    )?;

    let preset = preset::find(&keys.preset).unwrap_or(&preset::PRESETS[preset::PRESETS.len() - 1]);
    let claims = Claims::read(&assertion, preset)?;
    let offered = [
        ("NameID", claims.name_id.as_deref()),
        ("identity", Some(claims.identity.as_str())),
        ("email", claims.email.as_deref()),
        ("immutable id", claims.immutable_id.as_deref()),
    ];
    check_domains(connection, &offered, &keys.domains)?;
    use_once(db, &assertion, in_response_to.as_deref(), now)?;
    let Claims {
        identity,
        email,
        immutable_id,
        groups,
        attributes,
        ..
    } = claims;
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
        domains: keys.domains.clone(),
    })
}

/// The form's SAMLResponse, through the pre-filter, and its unsigned wrapper.
fn read_response(form: &[u8]) -> Result<(prefilter::Vetted, Wrapper), Problem> {
    let fields = crate::http::parse_form(form).map_err(|e| rejected(e.0))?;
    let encoded = fields
        .get("SAMLResponse")
        .ok_or_else(|| rejected("no SAMLResponse field"))?;
    let vetted = prefilter::vet_form_value(encoded).map_err(|e| rejected(&e.to_string()))?;
    let wrapper = Wrapper::read(&vetted.xml).ok_or_else(|| rejected("unreadable Response"))?;
    Ok((vetted, wrapper))
}

/// What the signature cannot vouch for in the wrapper: where it was sent, and its status.
fn check_wrapper(wrapper: &Wrapper, response_signed: bool, acs: &str) -> Result<(), Problem> {
    match &wrapper.destination {
        Some(destination) if destination != acs => {
            return Err(rejected(&format!(
                "Destination {destination:?} is not this ACS"
            )));
        }
        // SAML bindings 3.5.5.2: a signed message must say where it was meant to go, or
        // it could be replayed at any SP that trusts the IdP.
        None if response_signed => {
            return Err(rejected("the signed Response carries no Destination"));
        }
        _ => {}
    }
    if wrapper.status.as_deref() != Some(STATUS_SUCCESS) {
        return Err(rejected(&format!(
            "the Response status is {:?}, not Success",
            wrapper.status.as_deref().unwrap_or("missing")
        )));
    }
    Ok(())
}

/// Who a response must answer: this connection, in this browser, now.
struct Answering<'a> {
    connection: &'a str,
    allow_idp_initiated: bool,
    /// The hash of the browser's binding cookie, when it sent one.
    browser: Option<&'a str>,
    now: i64,
}

/// The purpose and return address of the sign-in the response answers: a request we sent
/// from this browser, or (where the connection allows it) none.
fn match_request(
    wrapper: &Wrapper,
    request: Option<idp::StoredRequest>,
    answering: Answering<'_>,
) -> Result<(Purpose, Option<String>), Problem> {
    let in_response_to = wrapper.in_response_to.as_ref();
    match (in_response_to, request) {
        // An assertion that answers a request (solicited in some browser) with the
        // wrapper's InResponseTo stripped is not an IdP-initiated sign-in.
        (None, _) if !wrapper.confirmation_in_response_to.is_empty() => Err(rejected(
            "an unsolicited Response carries an assertion that answers a request",
        )),
        // An unsolicited response is accepted only where the connection allows it, and
        // only ever opens the admin portal (never a device activation).
        (None, _) if answering.allow_idp_initiated => Ok((Purpose::Admin, None)),
        (None, _) => Err(rejected(
            "no InResponseTo: IdP-initiated sign-in is off for this connection",
        )),
        (Some(_), None) => Err(expired("InResponseTo names no request we sent")),
        (Some(_), Some(request)) => {
            if request.connection_id != answering.connection {
                return Err(expired("the request was sent to another connection"));
            }
            if request.consumed_at.is_some() {
                return Err(expired("the request was already used"));
            }
            if request.expires_at < answering.now {
                return Err(expired("the request expired"));
            }
            if wrapper
                .confirmation_in_response_to
                .iter()
                .any(|id| Some(id) != in_response_to)
            {
                return Err(rejected(
                    "the assertion answers another request than the Response",
                ));
            }
            if answering.browser != Some(request.browser_hash.as_str()) {
                return Err(expired(
                    "the response arrived in a browser other than the one that started the sign-in",
                ));
            }
            Ok((request.purpose, request.return_to))
        }
    }
}

/// samael verifies the signature and its own conditions, then ours
/// ([`check_assertion`]).
fn verify_assertion(
    sp: &ServiceProvider,
    xml: &str,
    in_response_to: Option<&str>,
    entity_id: &str,
    acs: &str,
    now: i64,
) -> Result<Assertion, Problem> {
    let expected_ids: Option<[&str; 1]> = in_response_to.map(|id| [id]);
    let assertion = sp
        .parse_xml_response(xml, expected_ids.as_ref().map(|ids| &ids[..]))
        .map_err(|e| match &e {
            samael::service_provider::Error::AssertionConditionExpiredBefore { .. }
            | samael::service_provider::Error::AssertionSubjectConfirmationExpiredBefore {
                ..
            } => clock_skew(&format!("samael: {e}")),
            other => rejected(&format!("samael: {other}")),
        })?;
    check_assertion(&assertion, entity_id, acs, now)?;
    Ok(assertion)
}

/// Who the assertion says signed in, read the way the connection's preset says.
struct Claims {
    name_id: Option<String>,
    identity: String,
    email: Option<String>,
    immutable_id: Option<String>,
    groups: Vec<String>,
    attributes: BTreeMap<String, Vec<String>>,
}

impl Claims {
    fn read(assertion: &Assertion, preset: &preset::Preset) -> Result<Claims, Problem> {
        let attributes = attributes(assertion);
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
        let groups = preset
            .group_attribute
            .and_then(|a| attributes.get(a).cloned())
            .unwrap_or_default();
        let immutable_id = preset
            .immutable_id_attribute
            .and_then(|a| first(&attributes, a));
        Ok(Claims {
            name_id,
            identity,
            email,
            immutable_id,
            groups,
            attributes,
        })
    }
}

/// Replay cache and single use, together: the assertion and the request it answers are
/// each accepted once.
fn use_once(
    db: &Db,
    assertion: &Assertion,
    in_response_to: Option<&str>,
    now: i64,
) -> Result<(), Problem> {
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
        if let Some(id) = in_response_to
            && !idp::consume_request(tx, id, now)?
        {
            return Err(expired("the request was already used"));
        }
        Ok(())
    })
}

/// The refusal of an identity outside a connection's domains; `why` (with the values that
/// disagree) goes to the sign-in log, escaped into the process log.
pub fn domain_not_allowed(why: String) -> Problem {
    log::warn!(
        "SAML sign-in refused: {}",
        crate::logging::client_text(&why)
    );
    Problem::new(
        Reason::DomainNotAllowed,
        "Your identity provider is not allowed to sign in accounts of this email domain.",
    )
    .with_detail(why)
}

/// Every email-shaped identifier the assertion offers must be in the connection's
/// domains, at least one must be, and none may be malformed (two `@`, an empty local
/// part): otherwise one connection could reach another's users through whichever
/// identifier the directory matches first.
fn check_domains(
    connection: &str,
    offered: &[(&str, Option<&str>)],
    domains: &[String],
) -> Result<(), Problem> {
    let refuse = domain_not_allowed;
    let present = offered
        .iter()
        .filter_map(|(what, value)| value.map(|v| (*what, v, shape(v))));
    let inside = present
        .clone()
        .find(|(_, _, shape)| matches!(shape, Shape::Email { domain } if domains.contains(domain)))
        .map(|(what, value, _)| format!("{what} {value}"));
    for (what, value, shape) in present {
        // A line break, a C1 control or a bidi override has no place in an identifier,
        // and would travel on into logs and terminals.
        if value.chars().any(crate::caps::invisible) {
            return Err(refuse(format!(
                "the {what} {value:?} contains control or invisible formatting characters"
            )));
        }
        match shape {
            Shape::Opaque => {}
            Shape::Malformed => {
                return Err(refuse(format!(
                    "the {what} {value:?} is not a valid email address"
                )));
            }
            Shape::Email { domain } if domains.contains(&domain) => {}
            Shape::Email { .. } => {
                // Both values, so the admin sees which identifiers disagree.
                let agreeing = inside
                    .as_deref()
                    .map(|i| format!(", while the {i} is inside"))
                    .unwrap_or_default();
                return Err(refuse(format!(
                    "the {what} {value} is outside the domains {domains:?} of connection {connection}{agreeing}"
                )));
            }
        }
    }
    if inside.is_none() {
        return Err(refuse(format!(
            "the assertion offers no email in the domains {domains:?} of connection {connection}"
        )));
    }
    Ok(())
}

const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";

/// What the unsigned Response wrapper says, read from vetted XML.
struct Wrapper {
    destination: Option<String>,
    in_response_to: Option<String>,
    issuer: Option<String>,
    status: Option<String>,
    /// InResponseTo of the assertion's SubjectConfirmationData elements.
    confirmation_in_response_to: Vec<String>,
}

impl Wrapper {
    fn read(xml: &str) -> Option<Wrapper> {
        const PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
        const ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
        let doc = roxmltree::Document::parse(xml).ok()?;
        let root = doc.root_element();
        fn child<'a, 'i>(
            parent: roxmltree::Node<'a, 'i>,
            ns: &str,
            name: &str,
        ) -> Option<roxmltree::Node<'a, 'i>> {
            parent.children().find(|n| n.has_tag_name((ns, name)))
        }
        let status = child(root, PROTOCOL, "Status")
            .and_then(|s| child(s, PROTOCOL, "StatusCode"))
            .and_then(|c| c.attribute("Value"))
            .map(str::to_string);
        let confirmation_in_response_to = root
            .descendants()
            .filter(|n| n.has_tag_name((ASSERTION, "SubjectConfirmationData")))
            .filter_map(|n| n.attribute("InResponseTo"))
            .map(str::to_string)
            .collect();
        Some(Wrapper {
            destination: root.attribute("Destination").map(str::to_string),
            in_response_to: root.attribute("InResponseTo").map(str::to_string),
            issuer: child(root, ASSERTION, "Issuer")
                .and_then(|i| i.text())
                .map(|t| t.trim().to_string()),
            status,
            confirmation_in_response_to,
        })
    }
}

/// One samael service provider for this connection, verifying only with our stored
/// certificates and only with allowed algorithms.
fn service_provider(
    public_url: &str,
    connection: &str,
    keys: &VerificationKeys,
    unsolicited: bool,
) -> Result<ServiceProvider, Problem> {
    if keys.certificates_der.is_empty() {
        return Err(Problem::new(
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
        crate::http::html_escape(&keys.idp_entity_id),
        crate::http::html_escape(&keys.sso_url),
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
fn check_assertion(a: &Assertion, entity_id: &str, acs: &str, now: i64) -> Result<(), Problem> {
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
