//! SAML IdP connections and SP metadata, through the real binary.

use base64::Engine;

use crate::support::{run_cli, server};

fn cert_b64(cn: &str) -> String {
    let mut params = rcgen::CertificateParams::new(vec![cn.to_string()]).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    let key = rcgen::KeyPair::generate().expect("key");
    base64::engine::general_purpose::STANDARD.encode(params.self_signed(&key).expect("cert").der())
}

fn metadata(entity_id: &str, key_use: &str, cert: &str) -> String {
    format!(
        r#"<?xml version="1.0"?><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity_id}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="{key_use}"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://login.microsoftonline.com/t/saml2"/></md:IDPSSODescriptor></md:EntityDescriptor>"#
    )
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

fn inflate_request(location: &str) -> String {
    use std::io::Read;
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

#[test]
fn sp_initiated_login_redirects_with_a_bound_single_use_request() {
    let s = server().start();
    let dir = s.data_dir.to_str().expect("utf8").to_string();
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("entra.xml");
    std::fs::write(
        &file,
        metadata(
            "https://sts.windows.net/tenant/",
            "signing",
            &cert_b64("idp"),
        ),
    )
    .expect("write");
    let (code, _, err) = run_cli(
        &[
            "--data-dir",
            &dir,
            "idp",
            "add",
            "--name",
            "Contoso",
            "--metadata",
            file.to_str().expect("utf8"),
            "--domain",
            "contoso.com",
            "--preset",
            "entra",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
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
    for part in [
        "Path=/saml/acs",
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
        .and_then(|c| c.strip_prefix("sg_saml="))
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
