//! Per-connection SAML options: signed AuthnRequests, IdP-initiated sign-in into the admin
//! portal, and IdP metadata fetched from (and refreshed at) an HTTPS URL.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use crate::saml::{Mint, TestIdp, connect, post_acs_at};
use crate::support::{db_exec, db_query, server};

fn query_value<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    url.split_once('?')?
        .1
        .split('&')
        .find_map(|p| p.strip_prefix(&format!("{name}=")))
}

#[test]
#[ignore = "needs the openssl CLI; scripts/test runs it"]
fn requests_are_signed_for_connections_that_ask_and_verify_with_the_published_key() {
    crate::kit::tools::require("openssl", "Debian package openssl");
    let s = server().start();
    let idp = TestIdp::new("https://idp.contoso.example/saml");
    let c = connect(&s, "Contoso", "entra", "contoso.com", &idp.metadata());

    // Off by default: no signature parameters.
    let plain = s.get(&format!("/saml/login/{c}"));
    let location = plain.header("location").expect("location").to_string();
    assert!(query_value(&location, "Signature").is_none(), "{location}");
    let metadata = s.get(&format!("/saml/metadata/{c}")).text();
    assert!(metadata.contains("AuthnRequestsSigned=\"false\""));

    let (code, out, err) = s.cli_env(&["idp", "set", &c, "--sign-requests", "on"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("sign-requests on"), "{out}");
    let metadata = s.get(&format!("/saml/metadata/{c}")).text();
    assert!(
        metadata.contains("AuthnRequestsSigned=\"true\""),
        "{metadata}"
    );

    let signed = s.get("/saml/login?email=ryan%40contoso.com");
    assert_eq!(signed.status, 302);
    let location = signed.header("location").expect("location").to_string();
    assert_eq!(
        query_value(&location, "SigAlg"),
        Some("http%3A%2F%2Fwww.w3.org%2F2001%2F04%2Fxmldsig-more%23rsa-sha256")
    );
    assert!(
        location.ends_with("&login_hint=ryan%40contoso.com"),
        "login_hint stays outside the signed part: {location}"
    );

    // Verify independently: openssl, the certificate from the SP metadata, and the octets
    // SAMLRequest=…&RelayState=…&SigAlg=… exactly as sent (SAML Bindings §3.4.4.1).
    let doc = roxmltree::Document::parse(&metadata).expect("xml");
    let cert_b64 = doc
        .descendants()
        .find(|n| n.has_tag_name("X509Certificate"))
        .and_then(|n| n.text())
        .expect("certificate in SP metadata");
    let tmp = tempfile::tempdir().expect("tmp");
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        cert_b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).expect("ascii"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    std::fs::write(tmp.path().join("sp.pem"), pem).expect("write");
    let pubkey = std::process::Command::new("openssl")
        .args(["x509", "-pubkey", "-noout", "-in"])
        .arg(tmp.path().join("sp.pem"))
        .output()
        .expect("openssl");
    assert!(pubkey.status.success());
    std::fs::write(tmp.path().join("pub.pem"), &pubkey.stdout).expect("write");
    let signed_part = {
        let q = location.split_once('?').expect("query").1;
        let end = q.find("&Signature=").expect("signature");
        q[..end].to_string()
    };
    let signature =
        seatgate::http::percent_decode(query_value(&location, "Signature").expect("sig"))
            .expect("decode");
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(signature)
        .expect("b64");
    std::fs::write(tmp.path().join("sig.bin"), raw).expect("write");
    std::fs::write(tmp.path().join("octets"), signed_part.as_bytes()).expect("write");
    let verify = |octets: &std::path::Path| {
        std::process::Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(tmp.path().join("pub.pem"))
            .arg("-signature")
            .arg(tmp.path().join("sig.bin"))
            .arg(octets)
            .output()
            .expect("openssl")
            .status
            .success()
    };
    assert!(verify(&tmp.path().join("octets")), "the signature verifies");
    std::fs::write(
        tmp.path().join("tampered"),
        signed_part.replace("RelayState=", "RelayState=x"),
    )
    .expect("write");
    assert!(
        !verify(&tmp.path().join("tampered")),
        "and covers the RelayState"
    );

    // The key is kept across restarts (IdPs pin it) and is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(s.data_dir.join("saml/sp-signing-key.pem"))
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // Google Workspace cannot verify signed requests: refused with a clear message.
    let google = TestIdp::new("https://accounts.google.com/o/saml2?idpid=C0");
    let tmp_md = tmp.path().join("g.xml");
    std::fs::write(&tmp_md, google.metadata()).expect("write");
    let (code, _, err) = s.cli_env(
        &[
            "idp",
            "add",
            "--name",
            "G",
            "--metadata",
            tmp_md.to_str().expect("utf8"),
            "--domain",
            "fabrikam.com",
            "--preset",
            "google",
            "--sign-requests",
        ],
        &[],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("does not accept signed AuthnRequests"),
        "{err}"
    );
}

#[test]
#[ignore = "needs the xmlsec1 CLI; scripts/test runs it"]
fn idp_initiated_sign_in_is_off_by_default_and_when_on_only_opens_the_admin_portal() {
    let s = server().start();
    let idp = TestIdp::new("https://idp.contoso.example/saml");
    let c = connect(&s, "Contoso", "okta", "contoso.com", &idp.metadata());
    let (code, _, err) = s.cli_env(
        &[
            "group-map",
            "add",
            "--group",
            "Seatgate Admins",
            "--admins",
            "--connection",
            &c,
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let base = format!("https://127.0.0.1:{}", s.addr.port());
    let unsolicited = |email: &str, groups: &[&str]| {
        let mut m = Mint::valid(&idp, &base, "unused");
        m.in_response_to = None;
        m.acs = format!("{base}/saml/acs/{c}");
        m.recipient = m.acs.clone();
        m.name_id = email.into();
        m.attributes = Some(vec![
            ("email".into(), vec![email.into()]),
            (
                "groups".into(),
                groups.iter().map(|g| g.to_string()).collect(),
            ),
        ]);
        idp.sign(&m.xml())
    };

    let off = post_acs_at(
        &s,
        &c,
        &unsolicited("ryan@contoso.com", &["Seatgate Admins"]),
        "",
        None,
    );
    assert_eq!(off.status, 400);
    assert!(off.text().contains("SAML_RESPONSE_REJECTED"));

    let (code, _, err) = s.cli_env(&["idp", "set", &c, "--idp-initiated", "on"], &[]);
    assert_eq!(code, 0, "{err}");
    let response = unsolicited("ryan@contoso.com", &["Seatgate Admins"]);
    let on = post_acs_at(&s, &c, &response, "/admin/evil-relay", None);
    assert_eq!(
        (on.status, on.header("location")),
        (303, Some("/admin")),
        "{}",
        on.text()
    );
    let session = on.set_cookie("__Host-sg_admin").expect("session");
    let overview = s.request("GET", "/admin", &[("Cookie", &session)], b"");
    assert_eq!(overview.status, 200);

    let replayed = post_acs_at(&s, &c, &response, "", None);
    assert_eq!(
        replayed.status, 400,
        "the replay cache covers unsolicited responses"
    );
    let not_admin = post_acs_at(
        &s,
        &c,
        &unsolicited("kim@contoso.com", &["Engineers"]),
        "",
        None,
    );
    assert_eq!(not_admin.status, 403);
    assert!(not_admin.text().contains("NOT_ADMIN"));
    let purposes = db_query(&s, "SELECT purpose, outcome FROM sign_in_log ORDER BY id");
    assert_eq!(purposes[1], ["admin", "OK"], "{purposes:?}");
}

/// A one-file HTTPS server for IdP metadata, with a certificate from its own CA.
struct MetadataServer {
    port: u16,
    ca: std::path::PathBuf,
    body: Arc<Mutex<(u16, String)>>,
    _dir: tempfile::TempDir,
}

impl MetadataServer {
    fn start(body: String) -> MetadataServer {
        let dir = tempfile::tempdir().expect("tmp");
        let files = seatgate::net::tls::prepare_self_signed(dir.path(), &["127.0.0.1".to_string()])
            .expect("certificates");
        let config = seatgate::net::tls::server_config(&files).expect("tls config");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let body = Arc::new(Mutex::new((200, body)));
        let shared = Arc::clone(&body);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let Ok(conn) = rustls::ServerConnection::new(Arc::clone(&config)) else {
                    continue;
                };
                let mut tls = rustls::StreamOwned::new(conn, stream);
                let mut reader = BufReader::new(&mut tls);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let (status, text) = shared.lock().expect("body").clone();
                let _ = write!(
                    tls,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
                let _ = tls.flush();
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        });
        MetadataServer {
            port,
            ca: files.ca.expect("a CA"),
            body,
            _dir: dir,
        }
    }

    fn serve(&self, status: u16, body: String) {
        *self.body.lock().expect("body") = (status, body);
    }
}

#[test]
#[ignore = "needs the xmlsec1 CLI; scripts/test runs it"]
fn metadata_from_a_url_is_refreshed_and_a_bad_fetch_keeps_the_last_good_copy() {
    let idp = TestIdp::new("https://idp.contoso.example/saml");
    let rolled = TestIdp::new("https://idp.contoso.example/saml");
    let md = MetadataServer::start(idp.metadata());
    let ca = md.ca.to_str().expect("utf8").to_string();
    let env = [("SEATGATE_SAML_METADATA_CA_FILE", ca.as_str())];
    let s = server()
        .env("SEATGATE_SAML_METADATA_CA_FILE", &ca)
        .config("[saml]\nmetadata_refresh = \"1m\"\n")
        .start();
    let url = format!("https://127.0.0.1:{}/federationmetadata.xml", md.port);

    // Without trusting the IdP's CA, the fetch fails: no connection is added.
    let (code, _, err) = s.cli_env(
        &[
            "idp",
            "add",
            "--name",
            "Contoso",
            "--metadata",
            &url,
            "--domain",
            "contoso.com",
        ],
        &[],
    );
    assert_eq!(code, 2);
    assert!(err.contains("fetching") && err.contains("failed"), "{err}");
    let (code, _, err) = s.cli_env(
        &[
            "idp",
            "add",
            "--name",
            "Contoso",
            "--metadata",
            "http://127.0.0.1:1/md.xml",
            "--domain",
            "contoso.com",
        ],
        &env,
    );
    assert_eq!(code, 2);
    assert!(err.contains("https://"), "{err}");

    let (code, out, err) = s.cli_env(
        &[
            "idp",
            "add",
            "--name",
            "Contoso",
            "--metadata",
            &url,
            "--domain",
            "contoso.com",
        ],
        &env,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Signing certificate"), "{out}");
    let certs = || db_query(&s, "SELECT count(*) FROM idp_certificates")[0][0].clone();
    assert_eq!(certs(), "1");

    // The IdP rolls over to a second certificate; a refresh picks it up.
    let both = format!(
        "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" entityID=\"{}\"><md:IDPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">{}{}<md:SingleSignOnService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" Location=\"https://idp.contoso.example/sso\"/></md:IDPSSODescriptor></md:EntityDescriptor>",
        "https://idp.contoso.example/saml",
        key_descriptor(&idp),
        key_descriptor(&rolled),
    );
    md.serve(200, both.clone());
    let (code, out, err) = s.cli_env(&["idp", "refresh"], &env);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("contoso: refreshed, 2 signing certificate(s)"),
        "{out}"
    );
    assert_eq!(certs(), "2");
    let signed_by_new = crate::saml::sign_in(&s, &rolled, "contoso", |_| {});
    assert_eq!(signed_by_new.status, 200, "{}", signed_by_new.text());

    // A broken fetch (500, garbage, another entity ID) keeps the last good copy.
    for (status, body, expect) in [
        (500, "oops".to_string(), "500"),
        (200, "<html>not metadata</html>".to_string(), "metadata"),
        (
            200,
            both.replace("https://idp.contoso.example/saml", "https://evil.example/"),
            "entity ID",
        ),
    ] {
        md.serve(status, body);
        let (code, out, _) = s.cli_env(&["idp", "refresh"], &env);
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains("kept the last good metadata") && out.contains(expect),
            "{out}"
        );
        assert_eq!(certs(), "2");
    }
    let (_, listed, _) = s.cli_env(&["idp", "list"], &env);
    assert!(listed.contains(&format!("metadata from {url}")), "{listed}");
    assert!(listed.contains("last attempt failed"), "{listed}");
    assert_eq!(
        crate::saml::sign_in(&s, &rolled, "contoso", |_| {}).status,
        200
    );

    // The server refreshes on its own once a connection is due.
    md.serve(200, idp.metadata());
    db_exec(&s, "UPDATE idp_metadata_urls SET last_attempt_at = 0");
    assert!(
        crate::support::poll_until(std::time::Duration::from_secs(20), || certs() == "1"),
        "no scheduled refresh; log:\n{}",
        s.log()
    );
    assert!(
        s.log()
            .contains("refreshed the metadata of IdP connection contoso")
    );
}

fn key_descriptor(idp: &TestIdp) -> String {
    let md = idp.metadata();
    let start = md.find("<md:KeyDescriptor").expect("key descriptor");
    let end = md.find("</md:KeyDescriptor>").expect("end") + "</md:KeyDescriptor>".len();
    md[start..end].to_string()
}

#[test]
#[ignore = "needs the xmlsec1 CLI; scripts/test runs it"]
fn a_connection_without_signing_certificates_is_reported_incomplete() {
    let s = server().start();
    let idp = TestIdp::new("https://idp.contoso.example/saml");
    let c = connect(&s, "Contoso", "okta", "contoso.com", &idp.metadata());
    let (id, relay, cookie) = crate::saml::begin_with(&s, &format!("/saml/login/{c}"));
    db_exec(&s, "DELETE FROM idp_certificates");

    let start = s.get("/saml/login?email=ryan%40contoso.com");
    assert_eq!(start.status, 503);
    assert!(
        start.text().contains("CONNECTION_INCOMPLETE"),
        "{}",
        start.text()
    );

    let base = format!("https://127.0.0.1:{}", s.addr.port());
    let mut m = Mint::valid(&idp, &base, &id);
    m.acs = format!("{base}/saml/acs/{c}");
    m.recipient = m.acs.clone();
    let r = post_acs_at(&s, &c, &idp.sign(&m.xml()), &relay, Some(&cookie));
    assert_eq!(r.status, 503);
    assert!(r.text().contains("CONNECTION_INCOMPLETE"));
}
