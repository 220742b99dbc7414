//! SAML IdP connections and SP metadata, through the real binary.

use base64::Engine;

use crate::kit::saml::metadata;
pub(crate) use crate::kit::saml::{TestIdp, inflate_request, rsa_key_and_certificate};
use crate::support::{run_cli, server};

fn cert_b64(cn: &str) -> String {
    let mut params = rcgen::CertificateParams::new(vec![cn.to_string()]).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    let key = rcgen::KeyPair::generate().expect("key");
    base64::engine::general_purpose::STANDARD.encode(params.self_signed(&key).expect("cert").der())
}

#[test]
fn idp_add_prints_what_to_enter_and_sp_metadata_lists_the_acs() {
    let s = server().start();
    let dir = s.data_dir.to_str().expect("utf8").to_string();
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("entra.xml");
    std::fs::write(
        &file,
        metadata(
            "https://sts.windows.net/tenant/",
            "signing",
            &cert_b64("Microsoft Azure Federated SSO Certificate"),
        ),
    )
    .expect("write");
    let f = file.to_str().expect("utf8");
    let (code, out, err) = run_cli(
        &[
            "--data-dir",
            &dir,
            "idp",
            "add",
            "--name",
            "Contoso Entra",
            "--metadata",
            f,
            "--domain",
            "Contoso.com",
            "--preset",
            "entra",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let base = format!("https://127.0.0.1:{}", s.addr.port());
    assert!(
        out.contains(&format!(
            "Entity ID (Identifier, Audience):  {base}/saml/metadata"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("{base}/saml/acs/contoso-entra")),
        "{out}"
    );
    assert!(out.contains("Group ID"), "the Entra preset's steps: {out}");
    assert!(
        out.contains("Microsoft Azure Federated SSO Certificate"),
        "{out}"
    );

    let (code, out, _) = run_cli(&["--data-dir", &dir, "idp", "list"], &[]);
    assert_eq!(code, 0);
    assert!(
        out.contains("contoso-entra") && out.contains("domains: contoso.com"),
        "{out}"
    );

    let r = s.get("/saml/metadata");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/samlmetadata+xml")
    );
    let xml = r.text();
    assert!(
        xml.contains(&format!("entityID=\"{base}/saml/metadata\"")),
        "{xml}"
    );
    assert!(
        xml.contains(&format!("Location=\"{base}/saml/acs/contoso-entra\"")),
        "{xml}"
    );
    assert_eq!(s.get("/saml/metadata/contoso-entra").status, 200);
    let missing = s.get("/saml/metadata/nope");
    assert_eq!(missing.status, 404);
    assert!(
        missing.text().contains("Reason code"),
        "an HTML page: {}",
        missing.text()
    );

    // The same domain cannot go to a second IdP.
    let (code, _, err) = run_cli(
        &[
            "--data-dir",
            &dir,
            "idp",
            "add",
            "--name",
            "Other",
            "--metadata",
            f,
            "--domain",
            "contoso.com",
        ],
        &[],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("already belongs to the connection contoso-entra"),
        "{err}"
    );
}

#[test]
fn idp_add_refuses_metadata_without_a_signing_certificate_and_urls() {
    let s = server().start();
    let dir = s.data_dir.to_str().expect("utf8").to_string();
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("enc-only.xml");
    std::fs::write(
        &file,
        metadata("https://idp.example", "encryption", &cert_b64("enc")),
    )
    .expect("write");
    let (code, _, err) = run_cli(
        &[
            "--data-dir",
            &dir,
            "idp",
            "add",
            "--name",
            "X",
            "--metadata",
            file.to_str().expect("utf8"),
            "--domain",
            "x.example",
        ],
        &[],
    );
    assert_eq!(code, 2);
    assert!(err.contains("no signing certificate"), "{err}");
    let (code, _, err) = run_cli(
        &[
            "--data-dir",
            &dir,
            "idp",
            "add",
            "--name",
            "X",
            "--metadata",
            "https://idp.example/metadata",
            "--domain",
            "x.example",
        ],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        s.get("/saml/metadata").status,
        200,
        "metadata with no connections is still served"
    );
}

#[test]
fn sp_initiated_login_redirects_with_a_bound_single_use_request() {
    let s = server().start();
    let idp_metadata = metadata(
        "https://sts.windows.net/tenant/",
        "signing",
        &cert_b64("idp"),
    );
    assert_eq!(
        connect(&s, "Contoso", "entra", "contoso.com", &idp_metadata),
        "contoso"
    );
    let base = format!("https://127.0.0.1:{}", s.addr.port());

    let r = s.get("/saml/login?email=Ryan%40Contoso.com&return=%2Fadmin%2Fusers");
    assert_eq!(r.status, 302, "{}", r.text());
    let location = r.header("location").expect("Location").to_string();
    assert!(
        location.starts_with("https://login.microsoftonline.com/t/saml2?SAMLRequest="),
        "{location}"
    );
    assert!(
        location.ends_with("&login_hint=ryan%40contoso.com"),
        "Entra gets login_hint: {location}"
    );
    let relay = location
        .split('&')
        .find_map(|p| p.strip_prefix("RelayState="))
        .expect("RelayState")
        .to_string();
    assert_eq!(relay.len(), 32, "an opaque key, not a URL");

    let xml = inflate_request(&location);
    let doc = roxmltree::Document::parse(&xml).expect("well-formed");
    let root = doc.root_element();
    let id = root.attribute("ID").expect("ID");
    assert!(
        id.starts_with("id") && id.len() == 34 && id[2..].chars().all(|c| c.is_ascii_hexdigit()),
        "128-bit id not starting with a digit: {id}"
    );
    assert_eq!(
        root.attribute("Destination"),
        Some("https://login.microsoftonline.com/t/saml2")
    );
    assert_eq!(
        root.attribute("AssertionConsumerServiceURL"),
        Some(format!("{base}/saml/acs/contoso").as_str())
    );
    assert!(xml.contains(&format!("<saml:Issuer>{base}/saml/metadata</saml:Issuer>")));
    assert!(!xml.contains("NameIDPolicy"));

    let cookie = r.header("set-cookie").expect("binding cookie").to_string();
    assert!(cookie.starts_with("__Host-sg_saml="), "{cookie}");
    for part in [
        "Path=/;",
        "HttpOnly",
        "SameSite=None",
        "Secure",
        "Max-Age=600",
    ] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    let secret = cookie
        .split(';')
        .next()
        .and_then(|c| c.strip_prefix("__Host-sg_saml="))
        .expect("value");
    let rows = crate::support::db_query(
        &s,
        &format!(
            "SELECT connection_id, browser_hash, return_to, email_hint, expires_at - created_at, consumed_at, relay_key FROM saml_requests WHERE id = '{id}'"
        ),
    );
    let hash: String = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        rows,
        vec![vec![
            "contoso".to_string(),
            hash,
            "/admin/users".into(),
            "ryan@contoso.com".into(),
            "600".into(),
            "NULL".into(),
            relay
        ]],
        "the request is stored, bound to the browser by the cookie's hash, and not yet used"
    );

    // By connection: no email, so no login_hint; every request gets a fresh id.
    let by_name = s.get("/saml/login/contoso");
    assert_eq!(by_name.status, 302);
    let second = by_name.header("location").expect("Location");
    assert!(!second.contains("login_hint"));
    assert_ne!(inflate_request(second), xml);

    // Unknown domains and foreign return addresses get a readable page with a reason code.
    let unknown = s.get("/saml/login?email=someone%40elsewhere.example");
    assert_eq!(unknown.status, 404);
    assert!(
        unknown.text().contains("DOMAIN_UNKNOWN"),
        "{}",
        unknown.text()
    );
    let evil = s.get("/saml/login?email=a%40contoso.com&return=https%3A%2F%2Fevil.example%2F");
    assert_eq!(evil.status, 400);
    assert_eq!(s.get("/saml/login").status, 400);
    assert_eq!(s.get("/saml/login/nope").status, 404);
}

/// The knobs of a minted response; `Mint::valid` is what a well-behaved IdP sends.
#[derive(Clone)]
pub(crate) struct Mint {
    pub(crate) name_id_format: Option<String>,
    /// Attribute statements as (name, values); replaces the default email + groups.
    pub(crate) attributes: Option<Vec<(String, Vec<String>)>>,
    pub(crate) in_response_to: Option<String>,
    pub(crate) acs: String,
    pub(crate) recipient: String,
    pub(crate) audience: Option<String>,
    pub(crate) issuer: String,
    pub(crate) name_id: String,
    pub(crate) email: String,
    pub(crate) issue_offset: i64,
    pub(crate) not_on_or_after_offset: i64,
    pub(crate) signature_method: &'static str,
    pub(crate) digest_method: &'static str,
}

impl Mint {
    pub(crate) fn valid(idp: &TestIdp, base: &str, request_id: &str) -> Mint {
        Mint {
            name_id_format: Some("urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified".into()),
            attributes: None,
            in_response_to: Some(request_id.into()),
            acs: format!("{base}/saml/acs/contoso"),
            recipient: format!("{base}/saml/acs/contoso"),
            audience: Some(format!("{base}/saml/metadata")),
            issuer: idp.entity_id.clone(),
            name_id: "Ryan@Contoso.com".into(),
            email: "ryan@contoso.com".into(),
            issue_offset: 0,
            not_on_or_after_offset: 300,
            signature_method: "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            digest_method: "http://www.w3.org/2001/04/xmlenc#sha256",
        }
    }

    pub(crate) fn xml(&self) -> String {
        let now = seatgate::clock::now_unix();
        let t = |off: i64| seatgate::clock::rfc3339(now + off);
        let aid = format!("_a{}", seatgate::crypto::random_hex(8));
        let irt = self
            .in_response_to
            .as_ref()
            .map(|i| format!(" InResponseTo=\"{i}\""))
            .unwrap_or_default();
        let audience = self.audience.as_ref().map(|a| format!("<saml:AudienceRestriction><saml:Audience>{a}</saml:Audience></saml:AudienceRestriction>")).unwrap_or_default();
        let format = self
            .name_id_format
            .as_ref()
            .map(|f| format!(" Format=\"{f}\""))
            .unwrap_or_default();
        let attributes = self.attributes.clone().unwrap_or_else(|| {
            vec![
                ("email".into(), vec![self.email.clone()]),
                (
                    "groups".into(),
                    vec!["Engineers".into(), "Seatgate Users".into()],
                ),
            ]
        });
        let statements: String = attributes
            .iter()
            .map(|(name, values)| {
                let v: String = values
                    .iter()
                    .map(|v| format!("<saml:AttributeValue>{v}</saml:AttributeValue>"))
                    .collect();
                format!("<saml:Attribute Name=\"{name}\">{v}</saml:Attribute>")
            })
            .collect();
        format!(
            r##"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r{rid}" Version="2.0" IssueInstant="{issue}" Destination="{acs}"{irt}><saml:Issuer>{issuer}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status><saml:Assertion ID="{aid}" Version="2.0" IssueInstant="{issue}"><saml:Issuer>{issuer}</saml:Issuer><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="{sm}"/><ds:Reference URI="#{aid}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="{dm}"/><ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data/></ds:KeyInfo></ds:Signature><saml:Subject><saml:NameID{format}>{name}</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData{irt} NotOnOrAfter="{noa}" Recipient="{recipient}"/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="{issue}" NotOnOrAfter="{noa}">{audience}</saml:Conditions><saml:AuthnStatement AuthnInstant="{issue}" SessionIndex="_s1"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement><saml:AttributeStatement>{statements}</saml:AttributeStatement></saml:Assertion></samlp:Response>"##,
            rid = seatgate::crypto::random_hex(8),
            issue = t(self.issue_offset),
            noa = t(self.issue_offset + self.not_on_or_after_offset),
            acs = self.acs,
            issuer = self.issuer,
            sm = self.signature_method,
            dm = self.digest_method,
            name = self.name_id,
            recipient = self.recipient,
        )
    }
}

/// Starts a sign-in; returns (request id, relay state, binding cookie "sg_saml=…").
fn begin(s: &crate::support::TestServer) -> (String, String, String) {
    begin_at(s, "contoso")
}

fn begin_at(s: &crate::support::TestServer, connection: &str) -> (String, String, String) {
    begin_with(s, &format!("/saml/login/{connection}"))
}

/// Starts a sign-in at `path` (any address that redirects to the IdP); returns (request
/// id, relay state, binding cookie "sg_saml=…").
pub(crate) fn begin_with(s: &crate::support::TestServer, path: &str) -> (String, String, String) {
    crate::kit::saml::started(&s.get(path))
}

fn post_acs(
    s: &crate::support::TestServer,
    signed_xml: &str,
    relay: &str,
    cookie: Option<&str>,
) -> crate::support::HttpResponse {
    post_acs_at(s, "contoso", signed_xml, relay, cookie)
}

pub(crate) fn post_acs_at(
    s: &crate::support::TestServer,
    connection: &str,
    signed_xml: &str,
    relay: &str,
    cookie: Option<&str>,
) -> crate::support::HttpResponse {
    let body = crate::kit::saml::acs_form(signed_xml, relay);
    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
    if let Some(c) = cookie {
        headers.push(("Cookie", c));
    }
    s.request(
        "POST",
        &format!("/saml/acs/{connection}"),
        &headers,
        body.as_bytes(),
    )
}

#[test]
#[ignore = "needs the xmlsec1 CLI; scripts/test runs it"]
fn acs_accepts_a_valid_signed_response_once_and_refuses_every_forgery() {
    let s = server().start();
    let idp = TestIdp::new("http://www.okta.com/exk1");
    assert_eq!(
        connect(&s, "Contoso", "okta", "contoso.com", &idp.metadata()),
        "contoso"
    );
    let base = format!("https://127.0.0.1:{}", s.addr.port());

    // A good sign-in.
    let (id, relay, cookie) = begin(&s);
    let good = idp.sign(&Mint::valid(&idp, &base, &id).xml());
    let r = post_acs(&s, &good, &relay, Some(&cookie));
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.log());
    let page = r.text();
    assert!(
        page.contains("ryan@contoso.com") && page.contains("Engineers, Seatgate Users"),
        "{page}"
    );
    // The same response again: refused (single-use request, replay cache).
    let again = post_acs(&s, &good, &relay, Some(&cookie));
    assert_eq!(again.status, 400);
    assert!(again.text().contains("SIGN_IN_EXPIRED"), "{}", again.text());

    // Each forgery gets its own fresh request, so only the forgery itself can fail it.
    let other_key = TestIdp::new("http://www.okta.com/exk1");
    type Case = (&'static str, Box<dyn Fn(&mut Mint)>, bool, &'static str);
    let cases: Vec<Case> = vec![
        (
            "wrong audience",
            Box::new(|m: &mut Mint| m.audience = Some("https://other-sp.example".into())),
            true,
            "SAML_RESPONSE_REJECTED",
        ),
        (
            "no audience",
            Box::new(|m: &mut Mint| m.audience = None),
            true,
            "SAML_RESPONSE_REJECTED",
        ),
        (
            "wrong recipient",
            Box::new(|m: &mut Mint| m.recipient = "https://evil.example/acs".into()),
            true,
            "SAML_RESPONSE_REJECTED",
        ),
        (
            "wrong destination",
            Box::new(|m: &mut Mint| m.acs = "https://evil.example/acs".into()),
            true,
            "SAML_RESPONSE_REJECTED",
        ),
        (
            "wrong issuer",
            Box::new(|m: &mut Mint| m.issuer = "https://evil-idp.example".into()),
            true,
            "SAML_RESPONSE_REJECTED",
        ),
        (
            "foreign InResponseTo",
            Box::new(|m: &mut Mint| {
                m.in_response_to = Some("idfeedfacefeedfacefeedfacefeedface".into())
            }),
            true,
            "SIGN_IN_EXPIRED",
        ),
        (
            "no InResponseTo (IdP-initiated)",
            Box::new(|m: &mut Mint| m.in_response_to = None),
            true,
            "SAML_RESPONSE_REJECTED",
        ),
        (
            "expired",
            Box::new(|m: &mut Mint| {
                m.issue_offset = -3600;
                m.not_on_or_after_offset = 300;
            }),
            true,
            "SAML_RESPONSE_REJECTED",
        ),
        (
            "future-dated",
            Box::new(|m: &mut Mint| m.issue_offset = 3600),
            true,
            "CLOCK_SKEW",
        ),
        (
            "user of another domain",
            Box::new(|m: &mut Mint| {
                m.name_id = "ceo@fabrikam.com".into();
                m.email = "ceo@fabrikam.com".into();
            }),
            true,
            "DOMAIN_NOT_ALLOWED",
        ),
        (
            "SHA-1",
            Box::new(|m: &mut Mint| {
                m.signature_method = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
                m.digest_method = "http://www.w3.org/2000/09/xmldsig#sha1";
            }),
            true,
            "SAML_RESPONSE_REJECTED",
        ),
        (
            "signed by another key",
            Box::new(|_: &mut Mint| {}),
            false,
            "SAML_RESPONSE_REJECTED",
        ),
    ];
    for (name, change, use_real_key, reason) in cases {
        let (id, relay, cookie) = begin(&s);
        let mut m = Mint::valid(&idp, &base, &id);
        change(&mut m);
        let signer = if use_real_key { &idp } else { &other_key };
        let r = post_acs(&s, &signer.sign(&m.xml()), &relay, Some(&cookie));
        assert!(
            r.status >= 400 && r.status < 500,
            "{name}: {} {}",
            r.status,
            r.text()
        );
        assert!(
            r.text().contains(reason),
            "{name}: expected {reason}: {}",
            r.text()
        );
    }

    // Not from this browser; tampered after signing; unsigned; hostile shapes.
    let (id, relay, _) = begin(&s);
    let r = post_acs(
        &s,
        &idp.sign(&Mint::valid(&idp, &base, &id).xml()),
        &relay,
        None,
    );
    assert!(
        r.text().contains("SIGN_IN_EXPIRED"),
        "no binding cookie: {}",
        r.text()
    );
    let (id, relay, cookie) = begin(&s);
    let tampered = idp
        .sign(&Mint::valid(&idp, &base, &id).xml())
        .replace("Ryan@Contoso.com", "Admin@Contoso.com");
    assert!(
        post_acs(&s, &tampered, &relay, Some(&cookie))
            .text()
            .contains("SAML_RESPONSE_REJECTED"),
        "tampered"
    );
    let (id, relay, cookie) = begin(&s);
    let unsigned = Mint::valid(&idp, &base, &id).xml();
    assert!(
        post_acs(&s, &unsigned, &relay, Some(&cookie))
            .text()
            .contains("SAML_RESPONSE_REJECTED"),
        "unsigned template"
    );
    let (id, relay, cookie) = begin(&s);
    let dev_zero = idp.sign(&Mint::valid(&idp, &base, &id).xml()).replacen(
        "URI=\"#_a",
        "URI=\"file:///dev/zero#_a",
        1,
    );
    assert!(
        post_acs(&s, &dev_zero, &relay, Some(&cookie))
            .text()
            .contains("SAML_RESPONSE_REJECTED"),
        "file reference"
    );
    let garbage = s.request(
        "POST",
        "/saml/acs/contoso",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"SAMLResponse=%%%not-base64",
    );
    assert_eq!(garbage.status, 400);
    crate::support::assert_still_serving(&s);
    assert!(
        !s.log().contains("Seatgate Users"),
        "assertion contents are not logged beyond the identity"
    );
}

/// Registers `idp` as a connection; returns its id.
pub(crate) fn connect(
    s: &crate::support::TestServer,
    name: &str,
    preset: &str,
    domain: &str,
    metadata_xml: &str,
) -> String {
    crate::kit::saml::connect(&s.data_dir, name, preset, domain, metadata_xml)
}

/// Signs in through `connection` with the response `shape` gives; returns the page.
pub(crate) fn sign_in(
    s: &crate::support::TestServer,
    idp: &TestIdp,
    connection: &str,
    shape: impl Fn(&mut Mint),
) -> crate::support::HttpResponse {
    let base = format!("https://127.0.0.1:{}", s.addr.port());
    let (id, relay, cookie) = begin_at(s, connection);
    let mut m = Mint::valid(idp, &base, &id);
    m.acs = format!("{base}/saml/acs/{connection}");
    m.recipient = m.acs.clone();
    shape(&mut m);
    post_acs_at(s, connection, &idp.sign(&m.xml()), &relay, Some(&cookie))
}

#[test]
#[ignore = "needs the xmlsec1 CLI; scripts/test runs it"]
fn each_presets_response_shape_signs_in() {
    let s = server().start();

    // Entra: NameID is the UPN in emailAddress format; email claim URI; groups as object ids.
    let entra = TestIdp::new("https://sts.windows.net/72f988bf/");
    let c = connect(&s, "Entra", "entra", "contoso.com", &entra.metadata());
    let r = sign_in(&s, &entra, &c, |m| {
        m.name_id_format = Some("urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress".into());
        m.name_id = "Ryan@Contoso.com".into();
        m.attributes = Some(vec![
            (
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress".into(),
                vec!["ryan@contoso.com".into()],
            ),
            (
                "http://schemas.microsoft.com/identity/claims/objectidentifier".into(),
                vec!["a1b2c3d4-0000-4000-8000-000000000001".into()],
            ),
            (
                "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups".into(),
                vec![
                    "0b9d7e4a-1111-4111-8111-111111111111".into(),
                    "5c2e8f3b-2222-4222-8222-222222222222".into(),
                ],
            ),
        ]);
    });
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.log());
    assert!(
        r.text().contains("ryan@contoso.com")
            && r.text().contains("0b9d7e4a-1111-4111-8111-111111111111"),
        "{}",
        r.text()
    );

    // PingOne: the NameID is a UUID with no Format; the identity is the email attribute.
    let ping = TestIdp::new("https://auth.pingone.com/env-1");
    let c = connect(&s, "Ping", "ping", "fabrikam.com", &ping.metadata());
    let r = sign_in(&s, &ping, &c, |m| {
        m.name_id_format = None;
        m.name_id = "4f1e2d3c-9a8b-4c7d-8e6f-5a4b3c2d1e0f".into();
        m.attributes = Some(vec![
            ("email".into(), vec!["Lee@Fabrikam.com".into()]),
            ("memberOf".into(), vec!["Designers".into()]),
        ]);
    });
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.log());
    assert!(
        r.text().contains("<strong>lee@fabrikam.com</strong>") && r.text().contains("Designers"),
        "{}",
        r.text()
    );

    // JumpCloud: the non-standard SAML 1.0 unspecified NameID format.
    let jc = TestIdp::new("jumpcloud-free-text-entity");
    let c = connect(
        &s,
        "JumpCloud",
        "jumpcloud",
        "tailspin.example",
        &jc.metadata(),
    );
    let r = sign_in(&s, &jc, &c, |m| {
        m.name_id_format = Some("urn:oasis:names:tc:SAML:1.0:nameid-format:unspecified".into());
        m.name_id = "kim@tailspin.example".into();
        m.attributes = Some(vec![
            ("email".into(), vec!["kim@tailspin.example".into()]),
            ("memberOf".into(), vec!["Ops".into()]),
        ]);
    });
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.log());
    assert!(r.text().contains("kim@tailspin.example") && r.text().contains("Ops"));

    // Rollover: metadata with the old and the new certificate; responses signed with either work.
    let (old, new) = (
        TestIdp::new("https://idp.northwind.example"),
        TestIdp::new("https://idp.northwind.example"),
    );
    let both = metadata("https://idp.northwind.example", "signing", &old.cert_b64()).replace(
        "</md:KeyDescriptor>",
        &format!(
            "</md:KeyDescriptor><md:KeyDescriptor use=\"signing\"><ds:KeyInfo xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>",
            new.cert_b64()
        ),
    );
    let c = connect(&s, "Northwind", "generic", "northwind.example", &both);
    for signer in [&old, &new] {
        let r = sign_in(&s, signer, &c, |m| {
            m.name_id = "pat@northwind.example".into();
            m.email = "pat@northwind.example".into();
        });
        assert_eq!(r.status, 200, "{}\n{}", r.text(), s.log());
    }
    // An IdP cannot sign in users of another connection's domain.
    let r = sign_in(&s, &jc, "jumpcloud", |m| {
        m.name_id = "ryan@contoso.com".into();
        m.attributes = Some(vec![("email".into(), vec!["ryan@contoso.com".into()])]);
    });
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("DOMAIN_NOT_ALLOWED"));
}

#[test]
#[ignore = "needs the xmlsec1 CLI; scripts/test runs it"]
fn hostile_responses_are_refused_without_side_effects() {
    let s = server().start();
    let idp = TestIdp::new("http://www.okta.com/exk1");
    let c = connect(&s, "Contoso", "okta", "contoso.com", &idp.metadata());
    assert_eq!(c, "contoso");
    let base = format!("https://127.0.0.1:{}", s.addr.port());
    let refused = |r: crate::support::HttpResponse, what: &str| {
        assert!(
            r.status >= 400 && r.status < 500,
            "{what}: {} {}",
            r.status,
            r.text()
        );
    };

    // An external Reference URI: the server must never connect to it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let (id, relay, cookie) = begin(&s);
    let ssrf = idp.sign(&Mint::valid(&idp, &base, &id).xml()).replacen(
        "URI=\"#_a",
        &format!("URI=\"http://127.0.0.1:{port}/x#_a"),
        1,
    );
    refused(post_acs(&s, &ssrf, &relay, Some(&cookie)), "http reference");
    // An absence cannot be polled for: give a fetch the time it would take.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        listener.accept().is_err(),
        "the server fetched the external reference"
    );

    // Signature wrapping: the genuine signed assertion plus an attacker's unsigned one.
    let (id, relay, cookie) = begin(&s);
    let genuine = idp.sign(&Mint::valid(&idp, &base, &id).xml());
    let evil_assertion = format!(
        "<saml:Assertion ID=\"_evil\" Version=\"2.0\" IssueInstant=\"{}\"><saml:Issuer>http://www.okta.com/exk1</saml:Issuer><saml:Subject><saml:NameID>ceo@contoso.com</saml:NameID></saml:Subject></saml:Assertion>",
        seatgate::clock::rfc3339(seatgate::clock::now_unix())
    );
    let wrapped = genuine.replacen(
        "<saml:Assertion ",
        &format!("{evil_assertion}<saml:Assertion "),
        1,
    );
    refused(post_acs(&s, &wrapped, &relay, Some(&cookie)), "wrapping");

    // Comment injection in the NameID, signed after the injection (c14n drops comments).
    let (id, relay, cookie) = begin(&s);
    let mut m = Mint::valid(&idp, &base, &id);
    m.name_id = "admin@contoso.com<!---->.evil.example".into();
    refused(
        post_acs(&s, &idp.sign(&m.xml()), &relay, Some(&cookie)),
        "comment injection",
    );

    // DOCTYPE with an entity, and an XSLT transform.
    let (id, relay, cookie) = begin(&s);
    let doctype = format!(
        "<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>{}",
        idp.sign(&Mint::valid(&idp, &base, &id).xml())
    );
    refused(post_acs(&s, &doctype, &relay, Some(&cookie)), "doctype");
    let (id, relay, cookie) = begin(&s);
    let xslt = idp.sign(&Mint::valid(&idp, &base, &id).xml()).replacen(
        "<ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>",
        "<ds:Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xslt-19991116\"/>",
        1,
    );
    refused(post_acs(&s, &xslt, &relay, Some(&cookie)), "xslt");

    // 5 MB: refused at the gatekeeper before the application reads it.
    let big = format!("SAMLResponse={}", "A".repeat(5 * 1024 * 1024));
    let r = s.request(
        "POST",
        "/saml/acs/contoso",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        big.as_bytes(),
    );
    assert_eq!(r.status, 413);

    // None of it left a trace beyond refusals; the server still signs real users in.
    let r = sign_in(&s, &idp, "contoso", |_| {});
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
#[ignore = "needs the xmlsec1 CLI; scripts/test runs it"]
fn a_sign_in_is_matched_to_the_scim_directory() {
    let s = server().start();
    let entra = TestIdp::new("https://sts.windows.net/72f988bf/");
    let c = connect(&s, "Entra", "entra", "contoso.com", &entra.metadata());
    // The connection's own SCIM token: immutable ids match only its users.
    let scim = s.scim_for(&c);
    let post = |body: serde_json::Value| assert_eq!(scim.post("/Users", body).status, 201);
    post(serde_json::json!({"userName": "Ryan@Contoso.com"}));
    post(
        serde_json::json!({"userName": "kim.upn@contoso.com", "emails": [{"value": "Kim@Contoso.com", "primary": true}], "active": false}),
    );
    post(
        serde_json::json!({"userName": "lee@contoso.com", "externalId": "a1b2c3d4-0000-4000-8000-00000000beef"}),
    );

    let as_user = |name_id: &str, email: &str, object_id: &str| {
        let r = sign_in(&s, &entra, &c, |m| {
            m.name_id = name_id.into();
            m.attributes = Some(vec![
                (
                    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress".into(),
                    vec![email.into()],
                ),
                (
                    "http://schemas.microsoft.com/identity/claims/objectidentifier".into(),
                    vec![object_id.into()],
                ),
            ]);
        });
        assert_eq!(r.status, 200, "{}", r.text());
        r.text()
    };
    // By userName, case-insensitively.
    assert!(
        as_user("ryan@contoso.com", "ryan@contoso.com", "x1")
            .contains("Directory user: Ryan@Contoso.com (active)")
    );
    // By email when the UPN differs; the inactive state is shown.
    assert!(
        as_user("kim@contoso.com", "kim@contoso.com", "x2")
            .contains("Directory user: kim.upn@contoso.com (inactive)")
    );
    // By Entra's object id against externalId, whatever the UPN says.
    assert!(
        as_user(
            "lee.renamed@contoso.com",
            "lee.renamed@contoso.com",
            "a1b2c3d4-0000-4000-8000-00000000beef"
        )
        .contains("Directory user: lee@contoso.com (active)")
    );
    assert!(as_user("new@contoso.com", "new@contoso.com", "x4").contains("not provisioned"));
}

#[test]
#[ignore = "needs the xmlsec1 CLI; scripts/test runs it"]
fn google_sign_ins_create_users_and_keep_their_groups_in_step() {
    let s = server().start();
    let google = TestIdp::new("https://accounts.google.com/o/saml2?idpid=C01abc");
    let c = connect(&s, "Google", "google", "contoso.com", &google.metadata());
    let as_kim = |groups: &[&str]| {
        let r = sign_in(&s, &google, &c, |m| {
            m.name_id_format =
                Some("urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress".into());
            m.name_id = "Kim@Contoso.com".into();
            m.attributes = Some(vec![(
                "groups".into(),
                groups.iter().map(|g| g.to_string()).collect(),
            )]);
        });
        assert_eq!(r.status, 200, "{}", r.text());
        r.text()
    };
    // A group SCIM or an admin created is never managed by JIT.
    let scim = s.scim_for(&c);
    assert_eq!(
        scim.post(
            "/Groups",
            serde_json::json!({"displayName": "Managed Elsewhere"})
        )
        .status,
        201
    );

    assert!(
        as_kim(&["Engineers", "Seatgate Users"])
            .contains("Directory user: kim@contoso.com (active)")
    );
    let members = |name: &str| {
        crate::support::db_query(
            &s,
            &format!("SELECT count(*) FROM group_members gm JOIN groups g ON g.id = gm.group_id WHERE g.display_name = '{name}'"),
        )[0][0]
            .clone()
    };
    assert_eq!(
        (members("Engineers"), members("Seatgate Users")),
        ("1".to_string(), "1".to_string())
    );
    let found = scim
        .filter("Users", "userName eq \"kim@contoso.com\"")
        .json();
    assert_eq!(found["totalResults"], 1, "the JIT user is in the directory");

    // Next sign-in: Engineers dropped, Designers added; the user is not duplicated.
    as_kim(&["Seatgate Users", "Designers"]);
    assert_eq!(members("Engineers"), "0");
    assert_eq!(
        (members("Seatgate Users"), members("Designers")),
        ("1".to_string(), "1".to_string())
    );
    assert_eq!(
        crate::support::db_query(&s, "SELECT count(*) FROM users")[0][0],
        "1"
    );
    assert_eq!(members("Managed Elsewhere"), "0");
    let kinds: Vec<String> =
        crate::support::db_query(&s, "SELECT kind FROM directory_events ORDER BY id")
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
    assert_eq!(
        kinds,
        [
            "group_created", // Managed Elsewhere (SCIM)
            "user_created",
            "group_created",
            "members_added",
            "group_created",
            "members_added",
            "group_created",
            "members_added",
            "members_removed"
        ]
    );

    // Without JIT (the default for other presets) an unknown user stays unknown.
    let okta = TestIdp::new("http://www.okta.com/exk2");
    let o = connect(&s, "Okta", "okta", "fabrikam.com", &okta.metadata());
    let r = sign_in(&s, &okta, &o, |m| {
        m.name_id = "new@fabrikam.com".into();
        m.email = "new@fabrikam.com".into();
    });
    assert!(r.text().contains("not provisioned"), "{}", r.text());
}

/// Issue 11 item 9.5: SAML's HTML pages (the test sign-in result, refusals of the ACS and
/// of sign-in starts) are sent with the portal's Content-Security-Policy, and need no
/// inline style that it would block.
#[test]
#[ignore = "needs the xmlsec1 CLI; scripts/test runs it"]
fn item9_5_saml_test_sign_in_and_error_pages_carry_the_portal_csp() {
    let s = server().start();
    let idp = TestIdp::new("http://www.okta.com/exk1");
    let c = connect(&s, "Contoso", "okta", "contoso.com", &idp.metadata());
    let portal = s.get("/admin/login");
    let csp = portal
        .header("content-security-policy")
        .expect("the portal's CSP")
        .to_string();

    let garbage = s.request(
        "POST",
        &format!("/saml/acs/{c}"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"SAMLResponse=bm90IFNBTUw%3D&RelayState=x",
    );
    assert_eq!(garbage.status, 400, "{}", garbage.text());
    assert!(
        garbage.text().contains("SAML_RESPONSE_REJECTED"),
        "{}",
        garbage.text()
    );
    let unknown = s.get("/saml/login/nope");
    assert_eq!(unknown.status, 404);
    let test = sign_in(&s, &idp, &c, |_| {});
    assert_eq!(test.status, 200, "{}", test.text());
    assert!(test.text().contains("Signed in"), "{}", test.text());
    for (what, page) in [
        ("ACS refusal", &garbage),
        ("unknown connection", &unknown),
        ("test sign-in", &test),
    ] {
        assert_eq!(
            page.header("content-security-policy"),
            Some(csp.as_str()),
            "{what}"
        );
        assert!(!page.text().contains("style="), "{what}: {}", page.text());
    }
}
