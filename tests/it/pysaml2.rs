//! Interop with an independent IdP implementation: pysaml2 (tests/idp/pysaml2_idp.py,
//! signing through the xmlsec1 CLI) parses seatgate's real AuthnRequest from the redirect
//! URL and answers it with a signed Response in each preset's shape. The Python venv is
//! made by `scripts/test-venv` (run by `scripts/test`).

use std::path::PathBuf;
use std::process::Command;

use crate::saml::connect;
use crate::support::{HttpResponse, TestServer, server};

const ENTRA_EMAIL: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress";
const ENTRA_GROUPS: &str = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups";
const ENTRA_OID: &str = "http://schemas.microsoft.com/identity/claims/objectidentifier";
const EMAIL_FORMAT: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
const UNSPECIFIED_11: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";
const PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";

pub(crate) fn python() -> PathBuf {
    let path = std::env::var_os("SEATGATE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python")
        });
    assert!(
        path.exists(),
        "{} is missing: run scripts/test-venv (pysaml2 is the independent IdP these tests need)",
        path.display()
    );
    path
}

/// A pysaml2 IdP with its own RSA key.
pub(crate) struct PyIdp {
    dir: tempfile::TempDir,
    entity_id: String,
}

impl PyIdp {
    pub(crate) fn new(entity_id: &str) -> PyIdp {
        let dir = tempfile::tempdir().expect("tmp");
        crate::saml::rsa_key_and_certificate(dir.path(), "pysaml2-idp");
        PyIdp {
            dir,
            entity_id: entity_id.into(),
        }
    }

    fn run(&self, extra: &[&str]) -> String {
        let mut cmd = Command::new(python());
        cmd.arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/idp/pysaml2_idp.py"
        ))
        .args(&extra[..1])
        .args([
            "--entity-id",
            &self.entity_id,
            "--sso-url",
            "https://idp.example/sso",
        ])
        .arg("--key")
        .arg(self.dir.path().join("key.pem"))
        .arg("--cert")
        .arg(self.dir.path().join("cert.pem"))
        .args(&extra[1..]);
        let out = cmd.output().expect("python");
        assert!(
            out.status.success(),
            "pysaml2_idp.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf8")
    }

    pub(crate) fn metadata(&self) -> String {
        self.run(&["metadata"])
    }
}

/// What the IdP answers with.
pub(crate) struct Answer<'a> {
    pub(crate) name_id: &'a str,
    pub(crate) name_id_format: &'a str,
    pub(crate) attributes: serde_json::Value,
    pub(crate) sign_response: bool,
    pub(crate) sign_assertion: bool,
    pub(crate) sign_alg: &'a str,
    /// Leave out the Response's Destination.
    pub(crate) no_destination: bool,
}

impl Default for Answer<'_> {
    fn default() -> Self {
        Answer {
            name_id: "ryan@contoso.com",
            name_id_format: EMAIL_FORMAT,
            attributes: serde_json::json!({}),
            sign_response: false,
            sign_assertion: true,
            sign_alg: "rsa-sha256",
            no_destination: false,
        }
    }
}

/// Starts a sign-in at seatgate, lets pysaml2 answer the AuthnRequest, posts the response.
fn sign_in(s: &TestServer, idp: &PyIdp, connection: &str, answer: &Answer<'_>) -> HttpResponse {
    let start = s.get(&format!("/saml/login/{connection}"));
    assert_eq!(start.status, 302, "{}", start.text());
    answer_redirect(s, idp, connection, &start, answer)
}

/// Lets pysaml2 answer the AuthnRequest of a redirect to the IdP (`start`, with its binding
/// cookie) and posts the response to the ACS like a browser.
pub(crate) fn answer_redirect(
    s: &TestServer,
    idp: &PyIdp,
    connection: &str,
    start: &HttpResponse,
    answer: &Answer<'_>,
) -> HttpResponse {
    let location = start.header("location").expect("location").to_string();
    let cookie = start.set_cookie("__Host-sg_saml").expect("binding cookie");
    let relay = location
        .split('&')
        .find_map(|p| p.strip_prefix("RelayState="))
        .expect("relay")
        .to_string();
    let sp_metadata = idp.dir.path().join(format!("sp-{connection}.xml"));
    std::fs::write(
        &sp_metadata,
        s.get(&format!("/saml/metadata/{connection}")).text(),
    )
    .expect("write");
    let attributes = answer.attributes.to_string();
    let mut args = vec![
        "respond",
        "--sp-metadata",
        sp_metadata.to_str().expect("utf8"),
        "--redirect-url",
        &location,
        "--name-id",
        answer.name_id,
        "--name-id-format",
        answer.name_id_format,
        "--attributes",
        &attributes,
        "--sign-alg",
        answer.sign_alg,
    ];
    if answer.sign_response {
        args.push("--sign-response");
    }
    if !answer.sign_assertion {
        args.push("--no-sign-assertion");
    }
    if answer.no_destination {
        args.push("--no-destination");
    }
    let b64 = idp.run(&args);
    let body = format!(
        "SAMLResponse={}&RelayState={relay}",
        seatgate::http::percent_encode(b64.trim())
    );
    s.request(
        "POST",
        &format!("/saml/acs/{connection}"),
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &cookie),
        ],
        body.as_bytes(),
    )
}

fn assert_signed_in(r: &HttpResponse, expected: &[&str]) {
    assert_eq!(r.status, 200, "{}", r.text());
    let page = r.text();
    for e in expected {
        assert!(page.contains(e), "{e:?} missing from:\n{page}");
    }
}

#[test]
#[ignore = "needs Python with pysaml2 and PyJWT (scripts/test-venv); scripts/test runs it"]
fn pysaml2_responses_in_each_presets_shape_sign_in() {
    let s = server().start();

    // Entra: UPN NameID (emailAddress), claim URIs, groups as object ids, assertion signed.
    let entra = PyIdp::new("https://sts.windows.net/0f6e3c2a-tenant/");
    let c = connect(&s, "Entra", "entra", "contoso.com", &entra.metadata());
    let r = sign_in(
        &s,
        &entra,
        &c,
        &Answer {
            name_id: "Ryan@Contoso.com",
            attributes: serde_json::json!({
                ENTRA_EMAIL: "ryan@contoso.com",
                ENTRA_OID: "7d3c9f1e-0000-4c1a-9b7e-3f5a2c1d0e9f",
                ENTRA_GROUPS: ["3b1e2c4d-5f60-4a7b-8c9d-0e1f2a3b4c5d", "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"],
            }),
            ..Answer::default()
        },
    );
    assert_signed_in(
        &r,
        &["ryan@contoso.com", "3b1e2c4d-5f60-4a7b-8c9d-0e1f2a3b4c5d"],
    );

    // Okta: response and assertion both signed, names as groups.
    let okta = PyIdp::new("http://www.okta.com/exk1a2b3c4d5e6f7g8h9");
    let c = connect(&s, "Okta", "okta", "fabrikam.com", &okta.metadata());
    let r = sign_in(
        &s,
        &okta,
        &c,
        &Answer {
            name_id: "kim@fabrikam.com",
            name_id_format: UNSPECIFIED_11,
            attributes: serde_json::json!({"email": "kim@fabrikam.com", "groups": ["Engineers", "Seatgate Users"]}),
            sign_response: true,
            ..Answer::default()
        },
    );
    assert_signed_in(&r, &["kim@fabrikam.com", "Engineers, Seatgate Users"]);

    // JumpCloud: SAML 1.1 unspecified NameID, memberOf, only the response signed.
    let jumpcloud = PyIdp::new("JumpCloud");
    let c = connect(
        &s,
        "JumpCloud",
        "jumpcloud",
        "northwind.com",
        &jumpcloud.metadata(),
    );
    let r = sign_in(
        &s,
        &jumpcloud,
        &c,
        &Answer {
            name_id: "lee@northwind.com",
            name_id_format: UNSPECIFIED_11,
            attributes: serde_json::json!({"email": "lee@northwind.com", "memberOf": ["Design"]}),
            sign_response: true,
            sign_assertion: false,
            ..Answer::default()
        },
    );
    assert_signed_in(&r, &["lee@northwind.com", "Groups: Design"]);

    // PingOne: a UUID NameID; the identity comes from the email attribute.
    let ping = PyIdp::new("https://auth.pingone.eu/5c3a1b2d/");
    let c = connect(&s, "Ping", "ping", "tailspin.com", &ping.metadata());
    let r = sign_in(
        &s,
        &ping,
        &c,
        &Answer {
            name_id: "f1e2d3c4-b5a6-4789-9abc-def012345678",
            name_id_format: PERSISTENT,
            attributes: serde_json::json!({"email": "Ana@Tailspin.com", "memberOf": ["Seatgate Users"]}),
            ..Answer::default()
        },
    );
    assert_signed_in(&r, &["ana@tailspin.com", "Groups: Seatgate Users"]);

    // Google Workspace: email NameID, a "groups" attribute, users created just in time.
    let google = PyIdp::new("https://accounts.google.com/o/saml2?idpid=C01abc");
    let c = connect(&s, "Google", "google", "adatum.com", &google.metadata());
    let r = sign_in(
        &s,
        &google,
        &c,
        &Answer {
            name_id: "Mo@Adatum.com",
            attributes: serde_json::json!({"groups": ["Sales"]}),
            ..Answer::default()
        },
    );
    assert_signed_in(
        &r,
        &["mo@adatum.com", "Directory user: mo@adatum.com (active)"],
    );
}

#[test]
#[ignore = "needs Python with pysaml2 and PyJWT (scripts/test-venv); scripts/test runs it"]
fn pysaml2_responses_seatgate_must_refuse_are_refused() {
    let s = server().start();
    let okta = PyIdp::new("http://www.okta.com/exk1a2b3c4d5e6f7g8h9");
    let c = connect(&s, "Okta", "okta", "fabrikam.com", &okta.metadata());

    // SHA-1 signatures are never accepted.
    let sha1 = sign_in(
        &s,
        &okta,
        &c,
        &Answer {
            name_id: "kim@fabrikam.com",
            sign_alg: "rsa-sha1",
            ..Answer::default()
        },
    );
    assert_eq!(sha1.status, 400, "{}", sha1.text());
    assert!(sha1.text().contains("SAML_RESPONSE_REJECTED"));

    // Unsigned (neither response nor assertion).
    let unsigned = sign_in(
        &s,
        &okta,
        &c,
        &Answer {
            name_id: "kim@fabrikam.com",
            sign_assertion: false,
            ..Answer::default()
        },
    );
    assert_eq!(unsigned.status, 400);

    // Another IdP's key, presenting its certificate in KeyInfo.
    let impostor = PyIdp::new("http://www.okta.com/exk1a2b3c4d5e6f7g8h9");
    let forged = sign_in(
        &s,
        &impostor,
        &c,
        &Answer {
            name_id: "kim@fabrikam.com",
            ..Answer::default()
        },
    );
    assert_eq!(forged.status, 400);

    // A user outside the connection's domains.
    let outside = sign_in(
        &s,
        &okta,
        &c,
        &Answer {
            name_id: "ceo@contoso.com",
            attributes: serde_json::json!({"email": "ceo@contoso.com"}),
            ..Answer::default()
        },
    );
    assert_eq!(outside.status, 403);
    assert!(outside.text().contains("DOMAIN_NOT_ALLOWED"));

    // Each was refused for its own reason (the admin-only detail says which).
    let details: Vec<String> =
        crate::support::db_query(&s, "SELECT detail FROM sign_in_log ORDER BY id")
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
    assert!(
        details[0].contains("signature method") && details[0].contains("rsa-sha1"),
        "{details:?}"
    );
    assert!(details[1].contains("unsigned"), "{details:?}");
    assert!(details[2].contains("signed"), "{details:?}");
    assert!(details[3].contains("outside the domains"), "{details:?}");
    crate::support::assert_still_serving(&s);
}

#[test]
#[ignore = "needs Python with pysaml2 and PyJWT (scripts/test-venv); scripts/test runs it"]
fn item8_a_signed_response_must_name_this_acs_as_its_destination() {
    let s = server().start();
    let okta = PyIdp::new("http://www.okta.com/exk1a2b3c4d5e6f7g8h9");
    let c = connect(&s, "Okta", "okta", "fabrikam.com", &okta.metadata());
    let answer = |sign_response: bool, no_destination: bool| Answer {
        name_id: "kim@fabrikam.com",
        attributes: serde_json::json!({"email": "kim@fabrikam.com"}),
        sign_response,
        no_destination,
        ..Answer::default()
    };
    // Control: a signed Response with its Destination signs in.
    let r = sign_in(&s, &okta, &c, &answer(true, false));
    assert_eq!(r.status, 200, "{}", r.text());
    // The same without Destination could be replayed at any SP trusting the IdP.
    let r = sign_in(&s, &okta, &c, &answer(true, true));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("SAML_RESPONSE_REJECTED"));
    let detail = crate::support::db_query(
        &s,
        "SELECT detail FROM sign_in_log WHERE outcome <> 'OK' ORDER BY id DESC LIMIT 1",
    );
    assert!(detail[0][0].contains("Destination"), "{detail:?}");
}
