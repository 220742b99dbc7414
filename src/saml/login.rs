//! SP-initiated sign-in (HTTP-Redirect binding): `/saml/login?email=` picks the IdP by the
//! email's domain, `/saml/login/{connection}` names it.
//!
//! The AuthnRequest ID is 128 random bits and starts with a letter (Entra refuses IDs
//! starting with a digit; samael's carry only 32 bits). It is stored with a short expiry,
//! single-use, and bound to this browser by a cookie whose hash is stored. RelayState is an
//! opaque key into that row: a URL from the request is never redirected to. No
//! NameIDPolicy is sent (Okta refuses one that differs from its configured format).

use std::io::Write;

use base64::Engine;

use super::metadata::{POST_BINDING, acs_url, sp_entity_id};
use super::preset;
use crate::clock::{now_unix, rfc3339};
use crate::crypto::{random_hex, sha256_hex};
use crate::db::Db;
use crate::db::idp::{self, LoginTarget, PendingRequest};
use crate::domain::identity::Purpose;
use crate::domain::problem::{Problem, Reason};
use crate::http::html_escape;
use crate::http::percent_encode;
use crate::preauth::Admitted;
use crate::saml::signing::{LazySpKey, SIG_ALG, SpSigningKey};

/// How long a user may take at the IdP (MFA included).
pub const REQUEST_TTL_SECS: i64 = 10 * 60;
/// The cookie that binds an AuthnRequest to the browser that started it. Path=/ makes it
/// `__Host-` over HTTPS, so a sibling subdomain cannot plant its own (SameSite=None, which
/// the IdP's cross-site POST needs, would otherwise carry a planted one to the ACS).
pub const BINDING_COOKIE: &str = "sg_saml";
pub const BINDING_PATH: &str = "/";

/// Which IdP to sign in with.
pub enum Target<'a> {
    Email(&'a str),
    Connection(&'a str),
}

/// Where to send the browser, and the binding cookie to set.
#[derive(Debug)]
pub struct Started {
    pub location: String,
    pub set_cookie: String,
    pub request_id: String,
}

/// Anyone may start a sign-in, so a start needs the caller to have passed the
/// pre-authentication limits ([`Admitted`]).
pub fn start(
    db: &Db,
    public_url: &str,
    signer: &LazySpKey,
    target: Target<'_>,
    purpose: Purpose,
    return_to: Option<&str>,
    admitted: Admitted,
) -> Result<Started, Problem> {
    let email = match &target {
        Target::Email(e) => Some(normalize_email(e)?),
        Target::Connection(_) => None,
    };
    let return_to = return_to.map(validate_return).transpose()?;
    let connection: LoginTarget = db.read(|tx| match (&target, &email) {
        (Target::Connection(id), _) => idp::target_by_id(tx, id),
        (Target::Email(_), Some(e)) => idp::target_by_domain(tx, e.split('@').nth(1).unwrap_or("")),
        (Target::Email(_), None) => Ok(None),
    })?
    .ok_or_else(|| match &target {
        Target::Email(_) => Problem::new(
            Reason::DomainUnknown,
            "Single sign-on is not set up for your email domain. Check the address, or ask your IT administrator.",
        ),
        Target::Connection(_) => Problem::new(Reason::NotFound, "There is no sign-in connection with that name."),
    })?;

    if connection.certificates == 0 {
        log::warn!(
            "sign-in refused: IdP connection {} has no signing certificate",
            connection.id
        );
        return Err(Problem::new(
            Reason::ConnectionIncomplete,
            "Single sign-on for your organization is not completely set up yet (the identity provider's signing certificate is missing). Ask your IT administrator.",
        ));
    }
    let signing_key = if connection.sign_requests {
        Some(signer.get().map_err(|e| {
            log::error!("cannot load the SAML request-signing key: {e}");
            Problem::internal()
        })?)
    } else {
        None
    };
    let request_id = format!("id{}", random_hex(16));
    let relay_key = random_hex(16);
    let browser_secret = crate::crypto::new_secret_token();
    let now = now_unix();
    db.write(|tx| {
        idp::insert_request(
            tx,
            &PendingRequest {
                id: &request_id,
                relay_key: &relay_key,
                connection_id: &connection.id,
                purpose,
                browser_hash: &sha256_hex(browser_secret.as_bytes()),
                email_hint: email.as_deref(),
                return_to: return_to.as_deref(),
                expires_at: now + REQUEST_TTL_SECS,
            },
            now,
            admitted.max_outstanding(),
        )
    })?;
    let xml = authn_request(
        &request_id,
        now,
        &connection.sso_url,
        &acs_url(public_url, &connection.id),
        &sp_entity_id(public_url),
    );
    let login_hint = email
        .as_deref()
        .filter(|_| preset::find(&connection.preset).is_some_and(|p| p.login_hint));
    Ok(Started {
        location: redirect_url(
            &connection.sso_url,
            &xml,
            &relay_key,
            login_hint,
            signing_key.as_deref(),
        )?,
        // SameSite=None: the ACS POST comes from the IdP's site; Lax cookies would not be sent.
        set_cookie: crate::http::Cookies::for_public_url(public_url).set(
            BINDING_COOKIE,
            &browser_secret,
            BINDING_PATH,
            REQUEST_TTL_SECS as u64,
            crate::http::SameSite::None,
        ),
        request_id,
    })
}

fn normalize_email(email: &str) -> Result<String, Problem> {
    let e = crate::caps::EMAIL.check(email.trim())?.to_lowercase();
    let valid = e.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !domain.contains('@')
    });
    if valid {
        Ok(e)
    } else {
        Err(Problem::new(
            Reason::BadRequest,
            "Enter your work email address, e.g. name@company.com.",
        ))
    }
}

/// Only local paths are accepted, and they are stored server-side, never echoed into a
/// redirect from the request itself.
fn validate_return(path: &str) -> Result<String, Problem> {
    let path = crate::caps::RETURN_PATH.check(path)?;
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && !path.chars().any(char::is_control);
    if ok {
        Ok(path.to_string())
    } else {
        Err(Problem::new(
            Reason::BadRequest,
            "The return address must be a path on this gateway.",
        ))
    }
}

/// The AuthnRequest. Values are escaped; IDs and URLs come from our own data.
pub fn authn_request(id: &str, now: i64, destination: &str, acs: &str, issuer: &str) -> String {
    format!(
        "<samlp:AuthnRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"{}\" Version=\"2.0\" IssueInstant=\"{}\" Destination=\"{}\" AssertionConsumerServiceURL=\"{}\" ProtocolBinding=\"{POST_BINDING}\"><saml:Issuer>{}</saml:Issuer></samlp:AuthnRequest>",
        html_escape(id),
        rfc3339(now),
        html_escape(destination),
        html_escape(acs),
        html_escape(issuer),
    )
}

/// HTTP-Redirect binding: raw DEFLATE, base64, URL-encoded; appended to an SSO URL that may
/// already have a query (Google's `?idpid=`).
pub fn redirect_url(
    sso_url: &str,
    request_xml: &str,
    relay_state: &str,
    login_hint: Option<&str>,
    signer: Option<&SpSigningKey>,
) -> Result<String, Problem> {
    let mut deflater =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = deflater.write_all(request_xml.as_bytes());
    let deflated = deflater.finish().unwrap_or_default();
    let encoded = base64::engine::general_purpose::STANDARD.encode(deflated);
    let sep = if sso_url.contains('?') { '&' } else { '?' };
    // The signed octets are exactly the parameters as sent, in this order (SAML Bindings
    // §3.4.4.1); the IdP's own query parameters and login_hint are not part of them.
    let mut signed = format!(
        "SAMLRequest={}&RelayState={}",
        percent_encode(&encoded),
        percent_encode(relay_state)
    );
    if let Some(key) = signer {
        signed.push_str(&format!("&SigAlg={}", percent_encode(SIG_ALG)));
        let signature = key.sign(signed.as_bytes()).map_err(|e| {
            log::error!("cannot sign an AuthnRequest: {e}");
            Problem::internal()
        })?;
        signed.push_str(&format!("&Signature={}", percent_encode(&signature)));
    }
    let mut url = format!("{sso_url}{sep}{signed}");
    if let Some(hint) = login_hint {
        url.push_str(&format!("&login_hint={}", percent_encode(hint)));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn inflate(url: &str) -> String {
        let q = url.split_once('?').map(|(_, q)| q).expect("query");
        let value = q
            .split('&')
            .find_map(|p| p.strip_prefix("SAMLRequest="))
            .expect("SAMLRequest");
        let b64 = crate::http::percent_decode(value).expect("decoded");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64");
        let mut xml = String::new();
        flate2::read::DeflateDecoder::new(&raw[..])
            .read_to_string(&mut xml)
            .expect("inflate");
        xml
    }

    #[test]
    fn redirect_keeps_an_existing_query_and_round_trips() {
        let xml = authn_request(
            "idabc",
            0,
            "https://accounts.google.com/o/saml2/idp?idpid=C01",
            "https://gw/saml/acs/g",
            "https://gw/saml/metadata",
        );
        let url = redirect_url(
            "https://accounts.google.com/o/saml2/idp?idpid=C01",
            &xml,
            "k1",
            None,
            None,
        )
        .expect("url");
        assert!(
            url.starts_with("https://accounts.google.com/o/saml2/idp?idpid=C01&SAMLRequest="),
            "{url}"
        );
        assert!(url.ends_with("&RelayState=k1"));
        assert_eq!(inflate(&url), xml);
        let entra = redirect_url(
            "https://login.microsoftonline.com/t/saml2",
            &xml,
            "k",
            Some("a+b@contoso.com"),
            None,
        )
        .expect("url");
        assert!(
            entra.contains("?SAMLRequest=") && entra.ends_with("&login_hint=a%2Bb%40contoso.com"),
            "{entra}"
        );
    }

    #[test]
    fn the_request_escapes_values_and_sends_no_name_id_policy() {
        let xml = authn_request(
            "id1",
            0,
            "https://idp/x?a=1&b=2",
            "https://gw/saml/acs/c",
            "https://gw/saml/metadata",
        );
        assert!(xml.contains("Destination=\"https://idp/x?a=1&amp;b=2\""));
        assert!(!xml.contains("NameIDPolicy"));
        roxmltree::Document::parse(&xml).expect("well-formed");
    }

    #[test]
    fn emails_and_return_paths_are_checked() {
        assert_eq!(
            normalize_email(" Ryan@Contoso.COM ").expect("ok"),
            "ryan@contoso.com"
        );
        for bad in ["", "ryan", "@contoso.com", "ryan@localhost", "a@b@c.com"] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
        assert!(validate_return("/admin/users").is_ok());
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil",
            "admin",
            "/a\nb",
        ] {
            assert!(validate_return(bad).is_err(), "{bad}");
        }
    }
}
