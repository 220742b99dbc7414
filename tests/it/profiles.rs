//! Issue 17 §1: the MDM configuration profile. Parsed by a real plist parser (Python's
//! plistlib), its signature verified by `openssl cms -verify`, every payload key checked;
//! stable identifiers across exports; malformed signing identities refused with one
//! sentence; the portal's Deploy page and the admin API serve the same bytes as the CLI;
//! and the reference client activates from the profile alone.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::{TestServer, server};

fn ok(s: &TestServer, args: &[&str]) -> String {
    let (code, out, err) = s.cli(args);
    assert_eq!(code, 0, "{args:?}: {out}{err}");
    out
}

/// The profile as Python's plistlib reads it (data as base64), with the CMS envelope
/// opened by `openssl cms -verify` first when `signed_by` gives the signer's CA.
fn plistlib(path: &Path) -> Value {
    let script = r#"
import base64, json, plistlib, sys
def plain(v):
    if isinstance(v, bytes): return {"data": base64.b64encode(v).decode()}
    if isinstance(v, dict): return {k: plain(x) for k, x in v.items()}
    if isinstance(v, list): return [plain(x) for x in v]
    return v
print(json.dumps(plain(plistlib.load(open(sys.argv[1], "rb")))))
"#;
    let out = Command::new(crate::pysaml2::python())
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "plistlib refused it: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn pem_to_der_b64(pem: &str) -> String {
    pem.lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>()
}

fn setup() -> TestServer {
    let s = server().start();
    let idp = crate::kit::saml::TestIdp::new("https://idp.contoso.example/metadata");
    crate::saml::connect(&s, "Contoso", "entra", "contoso.com", &idp.metadata());
    ok(
        &s,
        &[
            "license",
            "add",
            "--product",
            "Parallels Desktop",
            "--seats",
            "5",
        ],
    );
    s
}

#[test]
#[ignore = "needs Python (scripts/test-venv); scripts/test runs it"]
fn the_profile_parses_and_holds_every_payload_key() {
    let s = setup();
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("p.mobileconfig");
    let out = ok(
        &s,
        &["profile", "export", "--out", file.to_str().expect("utf8")],
    );
    assert!(
        out.contains("unsigned") && out.contains("version "),
        "{out}"
    );
    let p = plistlib(&file);
    let base = format!("https://127.0.0.1:{}", s.addr.port());
    assert_eq!(p["PayloadType"], "Configuration");
    assert_eq!(p["PayloadVersion"], 1);
    assert_eq!(p["PayloadScope"], "System");
    assert_eq!(p["PayloadRemovalDisallowed"], false);
    assert_eq!(p["PayloadOrganization"], "127.0.0.1");
    let id = p["PayloadIdentifier"].as_str().expect("id").to_string();
    assert!(id.starts_with("com.seatgate.client.profile."), "{id}");
    let uuid = |v: &Value| v["PayloadUUID"].as_str().expect("uuid").to_string();
    assert_eq!(uuid(&p).len(), 36);
    let payloads = p["PayloadContent"].as_array().expect("payloads");
    assert_eq!(payloads.len(), 2);
    let ca = &payloads[0];
    assert_eq!(ca["PayloadType"], "com.apple.security.root");
    assert_eq!(ca["PayloadIdentifier"], format!("{id}.ca"));
    assert_eq!(ca["PayloadVersion"], 1);
    let ca_pem = std::fs::read_to_string(s.ca_path()).expect("ca");
    assert_eq!(
        ca["PayloadContent"]["data"],
        pem_to_der_b64(&ca_pem),
        "the gateway's CA, DER"
    );
    let prefs = &payloads[1];
    assert_eq!(prefs["PayloadType"], "com.seatgate.client");
    assert_eq!(prefs["PayloadIdentifier"], format!("{id}.preferences"));
    assert_eq!(prefs["ServerURL"], base.as_str());
    assert_eq!(prefs["ActivationMethod"], "sso");
    assert_eq!(prefs["EmailDomains"], json!(["contoso.com"]));
    assert_eq!(prefs["RenewalCheckInterval"], 3600);
    assert_eq!(prefs["ServerCACertificate"], ca["PayloadContent"]);
    assert!(prefs.get("LicenseKey").is_none());
    let version = prefs["ProfileVersion"]
        .as_str()
        .expect("version")
        .to_string();
    assert!(out.contains(&version), "{out}");
    let uuids: std::collections::HashSet<String> = [uuid(&p), uuid(ca), uuid(prefs)].into();
    assert_eq!(uuids.len(), 3, "distinct UUIDs");

    // Exported again: the same identifiers and version, byte for byte the same file.
    let again = dir.path().join("again.mobileconfig");
    ok(
        &s,
        &["profile", "export", "--out", again.to_str().expect("utf8")],
    );
    assert_eq!(
        std::fs::read(&file).expect("a"),
        std::fs::read(&again).expect("b")
    );
    // The portal and the API serve the same bytes.
    let cookie = crate::portal::session(&s);
    let page = crate::portal::get(&s, "/admin/deploy", &cookie);
    assert_eq!(page.status, 200);
    let text = page.text();
    assert!(text.contains(&version) && text.contains(&id), "{text}");
    assert!(text.contains("MDMs show it as unsigned"), "{text}");
    let download = crate::portal::get(&s, "/admin/deploy/profile.mobileconfig", &cookie);
    assert_eq!(download.status, 200);
    assert_eq!(
        download.header("content-type"),
        Some("application/x-apple-aspen-config")
    );
    assert!(
        download
            .header("content-disposition")
            .is_some_and(|d| d.contains("seatgate-127.0.0.1.mobileconfig"))
    );
    assert_eq!(download.body, std::fs::read(&file).expect("a"));
    assert_eq!(
        s.get("/admin/deploy/profile.mobileconfig").status,
        303,
        "signed-in admins only"
    );
    let token = crate::admin_api::admin_token(&s);
    let api = crate::admin_api::call(&s, &token, "GET", "/api/v1/admin/profile", None);
    assert_eq!(api.body, download.body);
    let info = crate::admin_api::call(&s, &token, "GET", "/api/v1/admin/profile/info", None).json();
    assert_eq!(info["version"], version.as_str());
    assert_eq!(info["identifier"], id.as_str());
    assert_eq!(info["signed_by"], Value::Null);

    // Another email domain: a new version, the same identifiers.
    let other = crate::kit::saml::TestIdp::new("https://idp.fabrikam.example/metadata");
    crate::saml::connect(&s, "Fabrikam", "okta", "fabrikam.com", &other.metadata());
    ok(
        &s,
        &["profile", "export", "--out", again.to_str().expect("utf8")],
    );
    let q = plistlib(&again);
    assert_eq!(q["PayloadIdentifier"], p["PayloadIdentifier"]);
    assert_eq!(q["PayloadUUID"], p["PayloadUUID"]);
    let prefs2 = &q["PayloadContent"][1];
    assert_eq!(
        prefs2["EmailDomains"],
        json!(["contoso.com", "fabrikam.com"])
    );
    assert_ne!(prefs2["ProfileVersion"], version.as_str());
}

#[test]
#[ignore = "needs Python (scripts/test-venv) and the openssl CLI; scripts/test runs it"]
fn signed_profiles_verify_with_openssl_cms() {
    let s = setup();
    let dir = tempfile::tempdir().expect("tmp");
    let d = |n: &str| dir.path().join(n).to_str().expect("utf8").to_string();
    // The organization's signing identity: a CA and a signing certificate it issued.
    let sh = |script: &str| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir.path())
            .output()
            .expect("sh");
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sh(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -subj '/CN=Contoso Root' -days 30",
    );
    sh(
        "openssl req -newkey rsa:2048 -nodes -keyout sign.key -out sign.csr -subj '/CN=Contoso MDM Signing/O=Contoso'",
    );
    sh(
        "openssl x509 -req -in sign.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out sign.pem -days 30",
    );
    sh("cat sign.pem ca.pem sign.key > identity.pem");
    sh(
        "openssl pkcs12 -export -in sign.pem -inkey sign.key -certfile ca.pem -out identity.p12 -passout pass:hunter22",
    );
    std::fs::write(dir.path().join("password"), "hunter22\n").expect("password");

    // PEM identity on the command line.
    let out = ok(
        &s,
        &[
            "profile",
            "export",
            "--out",
            &d("pem.mobileconfig"),
            "--sign-identity",
            &d("identity.pem"),
        ],
    );
    assert!(
        out.contains("signed by CN=Contoso MDM Signing, O=Contoso"),
        "{out}"
    );
    sh("openssl cms -verify -inform DER -in pem.mobileconfig -CAfile ca.pem -out pem.plist");
    let p = plistlib(&dir.path().join("pem.plist"));
    assert_eq!(p["PayloadType"], "Configuration");
    // A different CA does not verify it: the signature is real.
    sh(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -subj '/CN=Other' -days 30",
    );
    let bad = Command::new("openssl")
        .args([
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-in",
            "pem.mobileconfig",
            "-CAfile",
            "other.pem",
            "-out",
            "/dev/null",
        ])
        .current_dir(dir.path())
        .output()
        .expect("openssl");
    assert!(!bad.status.success(), "verified against the wrong CA");

    // PKCS#12 from the configuration, its password from a file; the portal says who signs.
    let config = format!(
        "[profile]\nsigning_identity = \"{}\"\nsigning_password_file = \"{}\"\norganization = \"Contoso IT\"\n",
        d("identity.p12"),
        d("password")
    );
    drop(s);
    let s = server().config(&config).start();
    std::fs::write(dir.path().join("c.toml"), &config).expect("config");
    let out = ok(
        &s,
        &[
            "--config",
            &d("c.toml"),
            "profile",
            "export",
            "--out",
            &d("p12.mobileconfig"),
        ],
    );
    assert!(out.contains("signed by CN=Contoso MDM Signing"), "{out}");
    sh("openssl cms -verify -inform DER -in p12.mobileconfig -CAfile ca.pem -out p12.plist");
    let p = plistlib(&dir.path().join("p12.plist"));
    assert_eq!(p["PayloadOrganization"], "Contoso IT");
    let cookie = crate::portal::session(&s);
    let page = crate::portal::get(&s, "/admin/deploy", &cookie).text();
    assert!(
        page.contains("by CN=Contoso MDM Signing, O=Contoso"),
        "{page}"
    );
    let download = crate::portal::get(&s, "/admin/deploy/profile.mobileconfig", &cookie);
    std::fs::write(dir.path().join("portal.mobileconfig"), &download.body).expect("write");
    sh("openssl cms -verify -inform DER -in portal.mobileconfig -CAfile ca.pem -out /dev/null");
    // The client reads a signed profile too.
    let client_dir = dir.path().join("client");
    let (code, out, err) = crate::support::run_cli(
        &[
            "client",
            "--state-dir",
            client_dir.to_str().expect("utf8"),
            "--config",
            &d("p12.mobileconfig"),
            "activate",
        ],
        &[],
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("give --email"),
        "the SSO profile needs the user's email: {err}"
    );
}

#[test]
fn malformed_signing_identities_are_refused_with_one_sentence() {
    let s = setup();
    let dir = tempfile::tempdir().expect("tmp");
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).expect("write");
        p.to_str().expect("utf8").to_string()
    };
    let cert_only = write(
        "cert.pem",
        std::fs::read(s.ca_path()).expect("ca").as_slice(),
    );
    for (file, says) in [
        (
            write("garbage.p12", b"\x01\x02not a thing"),
            "neither a PKCS#12 file",
        ),
        (write("empty.pem", b""), "neither a PKCS#12 file"),
        (cert_only, "no readable (unencrypted) private key"),
        (
            dir.path()
                .join("missing.p12")
                .to_str()
                .expect("utf8")
                .to_string(),
            "cannot read the signing identity",
        ),
        (
            write("big.pem", &vec![b'-'; 2 * 1024 * 1024]),
            "larger than 1 MiB",
        ),
    ] {
        let (code, out, err) = s.cli(&["profile", "export", "--sign-identity", &file]);
        assert_eq!(code, 2, "{file}: {out}{err}");
        assert!(out.is_empty(), "nothing written on a refusal: {out}");
        assert!(err.contains(says), "{file}: {err}");
        assert_eq!(
            err.lines()
                .filter(|l| l.starts_with("seatgate: error:"))
                .count(),
            1,
            "one sentence: {err}"
        );
    }
    // A key that is not the certificate's.
    let mismatched = format!(
        "{}{}",
        std::fs::read_to_string(s.ca_path()).expect("ca"),
        key_pem()
    );
    let file = write("mismatch.pem", mismatched.as_bytes());
    let (code, _, err) = s.cli(&["profile", "export", "--sign-identity", &file]);
    assert_eq!(code, 2);
    assert!(
        err.contains("does not belong to the (first) certificate"),
        "{err}"
    );
    // A license key that is not one, or a key with activation sso.
    let (code, _, err) = s.cli(&[
        "profile",
        "export",
        "--license-key",
        "SGK-00000-00000-00000-00000-00000",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("not a license key of this gateway"), "{err}");
    let (code, _, err) = s.cli(&[
        "profile",
        "export",
        "--activation",
        "sso",
        "--license-key",
        "x",
    ]);
    assert_eq!(code, 2, "{err}");
}

/// A throwaway EC private key in PEM.
fn key_pem() -> String {
    let key = openssl::ec::EcKey::generate(
        &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).expect("curve"),
    )
    .expect("key");
    let pem = openssl::pkey::PKey::from_ec_key(key)
        .expect("pkey")
        .private_key_to_pem_pkcs8()
        .expect("pem");
    String::from_utf8(pem).expect("utf8")
}

/// A Mac managed by the profile activates with nothing but the profile: the server, the
/// CA and the license key all come from it (the whole .mobileconfig, the preferences
/// plist as macOS stores it, or JSON).
#[test]
fn the_client_activates_from_the_profile_alone() {
    let s = setup();
    let key = ok(
        &s,
        &[
            "license",
            "key",
            "create",
            "--license",
            "Parallels Desktop",
            "--devices",
            "5",
        ],
    )
    .lines()
    .last()
    .expect("key")
    .to_string();
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("lab.mobileconfig");
    let out = ok(
        &s,
        &[
            "profile",
            "export",
            "--license-key",
            &key,
            "--out",
            file.to_str().expect("utf8"),
        ],
    );
    assert!(out.contains("version"), "{out}");
    let text = std::fs::read_to_string(&file).expect("profile");
    assert!(
        text.contains("<key>ActivationMethod</key>\n\t\t\t<string>key</string>"),
        "{text}"
    );
    assert!(text.contains(&key));
    // Its identifiers are its own: a Mac in the SSO profile's scope too keeps both.
    let sso = dir.path().join("sso.mobileconfig");
    ok(
        &s,
        &["profile", "export", "--out", sso.to_str().expect("utf8")],
    );
    let id_of = |t: &str| {
        t.split("<key>PayloadIdentifier</key>")
            .last()
            .and_then(|r| r.split("<string>").nth(1))
            .and_then(|r| r.split("</string>").next())
            .expect("identifier")
            .to_string()
    };
    let sso_text = std::fs::read_to_string(&sso).expect("sso");
    assert_ne!(id_of(&text), id_of(&sso_text));
    assert!(
        id_of(&text).contains(".key-key-"),
        "{} / {}",
        id_of(&text),
        id_of(&sso_text)
    );
    // A key typed in lower case with spaces is the same key, written the same way.
    let typed = key.to_lowercase().replace('-', " ");
    let again = dir.path().join("again.mobileconfig");
    ok(
        &s,
        &[
            "profile",
            "export",
            "--license-key",
            &typed,
            "--out",
            again.to_str().expect("utf8"),
        ],
    );
    assert_eq!(
        std::fs::read(&again).expect("again"),
        std::fs::read(&file).expect("file")
    );
    assert!(
        ok(&s, &["audit", "--action", "profile_with_key_exported"])
            .contains("profile_with_key_exported")
    );

    // The preferences payload alone, as a plist and as JSON.
    let start = text
        .find("<dict>\n\t\t\t<key>ServerURL")
        .expect("prefs dict");
    let end = start + text[start..].find("\n\t\t</dict>").expect("end") + "\n\t\t</dict>".len();
    let prefs_plist = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\">\n{}\n</plist>\n",
        &text[start..end]
    );
    let plist_file = dir.path().join("com.seatgate.client.plist");
    std::fs::write(&plist_file, prefs_plist).expect("plist");
    let ca = std::fs::read_to_string(s.ca_path()).expect("ca");
    let json_file = dir.path().join("prefs.json");
    std::fs::write(
        &json_file,
        json!({"ServerURL": format!("https://127.0.0.1:{}", s.addr.port()), "ActivationMethod": "key",
               "LicenseKey": key, "EmailDomains": ["contoso.com"]})
        .to_string(),
    )
    .expect("json");

    for (n, config) in [&file, &plist_file].into_iter().enumerate() {
        let state = dir.path().join(format!("mac{n}"));
        let (code, out, err) = crate::support::run_cli(
            &[
                "client",
                "--state-dir",
                state.to_str().expect("utf8"),
                "--config",
                config.to_str().expect("utf8"),
                "activate",
                "--name",
                "Lab Mac",
            ],
            &[],
        );
        assert_eq!(code, 0, "{config:?}: {out}{err}");
        assert!(out.contains("a per-device seat"), "{out}");
        let (code, out, err) = crate::support::run_cli(
            &[
                "client",
                "--state-dir",
                state.to_str().expect("utf8"),
                "renew",
            ],
            &[],
        );
        assert_eq!(code, 0, "renews with the profile's CA: {out}{err}");
    }
    // JSON without the CA: the gateway's certificate is not trusted, and the client says so.
    let state = dir.path().join("mac-json");
    let (code, _, err) = crate::support::run_cli(
        &[
            "client",
            "--state-dir",
            state.to_str().expect("utf8"),
            "--config",
            json_file.to_str().expect("utf8"),
            "activate",
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("TLS_UNTRUSTED"), "{err}");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).expect("ca");
    let (code, out, err) = crate::support::run_cli(
        &[
            "client",
            "--state-dir",
            state.to_str().expect("utf8"),
            "--config",
            json_file.to_str().expect("utf8"),
            "activate",
            "--ca-cert",
            ca_file.to_str().expect("utf8"),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    // Hostile settings files: one sentence each, nothing activated.
    for (name, bytes) in [
        ("junk", b"\x00\x01\x02".to_vec()),
        ("nokey.json", br#"{"ActivationMethod": "key"}"#.to_vec()),
        (
            "array.plist",
            b"<?xml version=\"1.0\"?><plist version=\"1.0\"><array/></plist>".to_vec(),
        ),
        ("huge.json", vec![b' '; 2 * 1024 * 1024]),
    ] {
        let f = dir.path().join(name);
        std::fs::write(&f, bytes).expect("write");
        let (code, out, err) = crate::support::run_cli(
            &[
                "client",
                "--state-dir",
                dir.path().join("x").to_str().expect("utf8"),
                "--config",
                f.to_str().expect("utf8"),
                "activate",
            ],
            &[],
        );
        assert_eq!(code, 2, "{name}: {out}{err}");
        assert_eq!(
            err.lines()
                .filter(|l| l.starts_with("seatgate: error:"))
                .count(),
            1,
            "{name}: {err}"
        );
        assert!(
            !err.contains("Io(") && !err.contains("Error {"),
            "{name}: {err}"
        );
    }
    // The portal's license-key profile: a live key only.
    let cookie = crate::portal::session(&s);
    let page = crate::portal::get(&s, "/admin/deploy", &cookie).text();
    let bad = crate::portal::submit(
        &s,
        &cookie,
        &page,
        "Download a license-key profile",
        &[("license_key", "SGK-nope")],
    );
    assert_eq!(bad.status, 403, "{}", bad.text());
    assert!(bad.text().contains("KEY_UNKNOWN"));
    let good = crate::portal::submit(
        &s,
        &cookie,
        &page,
        "Download a license-key profile",
        &[("license_key", &key)],
    );
    assert_eq!(good.status, 200);
    assert_eq!(good.body, std::fs::read(&file).expect("same as the CLI's"));
}
