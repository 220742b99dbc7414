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
