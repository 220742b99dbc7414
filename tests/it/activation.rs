//! End to end over real HTTPS with the real binary: SCIM provisioning into a mapped group,
//! activation by the reference client through SAML minted by pysaml2, the lease verified
//! with PyJWT against the JWKS, renewal with proof of possession, SCIM deactivation
//! refusing the renewal and handing the seat to the next pending user.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::pysaml2::{Answer, PyIdp, answer_redirect, python};
use crate::support::{HttpResponse, TestServer, db_query, server};

const BIN: &str = env!("CARGO_BIN_EXE_seatgate");

/// The reference client, running `args` with its own state directory.
pub(crate) struct ClientRun {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

pub(crate) fn client(state: &std::path::Path, args: &[&str]) -> ClientRun {
    let mut child = Command::new(BIN)
        .arg("client")
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("client");
    let out = child.stdout.take().expect("stdout");
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    ClientRun { child, lines }
}

impl ClientRun {
    /// Waits for the browser address the client prints.
    pub(crate) fn browser_url(&self) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(std::time::Duration::from_secs(20))
                .expect("the client printed no address");
            let line = line.trim();
            if line.starts_with("https://") || line.starts_with("http://") {
                return line.to_string();
            }
        }
    }

    pub(crate) fn finish(mut self) -> (bool, String) {
        let status = self.child.wait().expect("wait");
        // The reader thread ends at EOF, which follows the exit: drain until it does.
        let mut out: Vec<String> = self.lines.iter().collect();
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        out.push(err);
        (status.success(), out.join("\n"))
    }
}

fn run_client(state: &std::path::Path, args: &[&str]) -> (bool, String) {
    client(state, args).finish()
}

/// The browser: opens the activation page, confirms, and signs in at the pysaml2 IdP.
pub(crate) fn browse(s: &TestServer, idp: &PyIdp, url: &str, email: &str) -> HttpResponse {
    let path = url
        .split_once("127.0.0.1")
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(_, p)| format!("/{p}"))
        .expect("path");
    let page = s.get(&path);
    assert_eq!(page.status, 200, "{}", page.text());
    let text = page.text();
    let at = text.find("name=\"csrf\" value=\"").expect("csrf");
    let csrf = &text[at + 19..at + 19 + text[at + 19..].find('"').expect("end")];
    let cookie = page.set_cookie("__Host-sg_activate").expect("cookie");
    let start = s.request(
        "POST",
        &path,
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &cookie),
        ],
        format!("csrf={csrf}").as_bytes(),
    );
    assert_eq!(start.status, 303, "{}", start.text());
    answer_redirect(
        s,
        idp,
        "contoso",
        &start,
        &Answer {
            name_id: email,
            attributes: json!({"email": email}),
            ..Answer::default()
        },
    )
}

/// Verifies a lease with PyJWT (a standard JOSE library) against the server's JWKS.
pub(crate) fn pyjwt_verify(s: &TestServer, lease: &str) -> Value {
    let jwks = s.get("/.well-known/jwks.json").text();
    let script = r#"
import json, sys, jwt
jwks = json.loads(sys.argv[1]); token = sys.argv[2]
kid = jwt.get_unverified_header(token)["kid"]
key = next(k for k in jwks["keys"] if k["kid"] == kid)
claims = jwt.decode(token, jwt.PyJWK(key).key, algorithms=["EdDSA"], options={"require": ["exp", "iat", "nbf", "sub"]})
print(json.dumps(claims))
"#;
    let out = Command::new(python())
        .args(["-c", script, &jwks, lease])
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "PyJWT refused the lease: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("claims")
}

pub(crate) fn setup(config: &str) -> (TestServer, PyIdp, String, String) {
    let s = server().config(config).start();
    let idp = PyIdp::new("http://www.okta.com/exk1contoso");
    crate::saml::connect(&s, "Contoso", "okta", "contoso.com", &idp.metadata());
    let ok = |args: &[&str]| {
        let (code, out, err) = s.cli(args);
        assert_eq!(code, 0, "{out}{err}");
    };
    ok(&[
        "license",
        "add",
        "--product",
        "Parallels Desktop",
        "--seats",
        "1",
    ]);
    ok(&["group-map", "add", "--group", "Mac Users", "--primary"]);
    let scim = s.scim();
    let mut ids = Vec::new();
    for name in ["ryan@contoso.com", "kim@contoso.com"] {
        let r = scim.post("/Users", json!({"userName": name, "active": true}));
        ids.push(r.json()["id"].as_str().expect("id").to_string());
    }
    let members: Vec<Value> = ids.iter().map(|i| json!({"value": i})).collect();
    assert_eq!(
        scim.post(
            "/Groups",
            json!({"displayName": "Mac Users", "members": members})
        )
        .status,
        201
    );
    let [ryan, kim] = [ids[0].clone(), ids[1].clone()];
    (s, idp, ryan, kim)
}

#[test]
#[ignore = "needs Python with pysaml2 and PyJWT (scripts/test-venv); scripts/test runs it"]
fn a_mac_activates_with_sso_renews_and_loses_its_lease_when_deprovisioned() {
    let (s, idp, ryan, kim) = setup("[lease]\npoll_interval_secs = 1\n");
    let base = format!("https://127.0.0.1:{}", s.addr.port());
    let ca = s.ca_path();
    let ca = ca.to_str().expect("utf8");
    let state = tempfile::tempdir().expect("tmp");

    // Without the CA the client says what to do, not "UnknownIssuer".
    let (ok, out) = run_client(
        state.path(),
        &["activate", "--server", &base, "--email", "ryan@contoso.com"],
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("does not trust the certificate") && out.contains("--ca-cert"),
        "{out}"
    );

    let run = client(
        state.path(),
        &[
            "activate",
            "--server",
            &base,
            "--email",
            "ryan@contoso.com",
            "--ca-cert",
            ca,
            "--name",
            "Ryan's MacBook",
        ],
    );
    let url = run.browser_url();
    let done = browse(&s, &idp, &url, "ryan@contoso.com");
    assert_eq!(done.status, 200, "{}", done.text());
    assert!(done.text().contains("is activated"), "{}", done.text());
    let (ok, out) = run.finish();
    assert!(ok, "{out}");
    assert!(out.contains("activated: dev-"), "{out}");
    assert!(
        out.contains("the result (a lease, or why not, such as NO_SEATS) appears here"),
        "the client says what it waits for: {out}"
    );

    // The lease verifies with a standard JOSE library and carries what INTERFACES.md lists.
    let lease = std::fs::read_to_string(state.path().join("lease.jws")).expect("lease");
    let claims = pyjwt_verify(&s, &lease);
    assert_eq!(claims["iss"], base);
    assert_eq!(claims["sub"], ryan);
    assert_eq!(claims["email"], "ryan@contoso.com");
    assert_eq!(claims["product"], "Parallels Desktop");
    assert!(
        claims["license"]
            .as_str()
            .is_some_and(|l| l.starts_with("lic-"))
    );
    assert!(claims["cnf"]["jkt"].as_str().is_some_and(|t| t.len() == 43));
    assert!(claims["renew_after"].as_i64() < claims["exp"].as_i64());
    let mode = std::fs::metadata(state.path().join("device-key.p8")).expect("key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        mode.permissions().mode() & 0o777,
        0o600,
        "the device key is private"
    );

    // The activation link is single-use; the device code cannot be polled again.
    let path = format!("/{}", url.splitn(4, '/').nth(3).expect("path"));
    assert_eq!(
        s.get(&path).status,
        400,
        "a used activation link is refused"
    );
    assert!(s.get(&path).text().contains("ACTIVATION_EXPIRED"));

    // Renewal with proof of possession; `client verify` checks offline.
    let (ok, out) = run_client(state.path(), &["renew"]);
    assert!(ok, "{out}");
    let (ok, out) = run_client(state.path(), &["status"]);
    assert!(ok && out.contains("valid; renew after"), "{out}");
    let (ok, out) = run_client(
        state.path(),
        &[
            "verify",
            state.path().join("lease.jws").to_str().expect("utf8"),
        ],
    );
    assert!(ok && out.contains("\"cnf\""), "{out}");
    assert_eq!(
        db_query(&s, "SELECT count(*) FROM devices WHERE revoked_at IS NULL")[0][0],
        "1"
    );
    let explained = s.cli(&["explain", "ryan@contoso.com"]).1;
    assert!(
        explained.contains("device       dev-") && explained.contains("Ryan's MacBook"),
        "{explained}"
    );

    // Kim waits: the only seat is Ryan's.
    assert_eq!(
        db_query(
            &s,
            &format!("SELECT state, reason FROM seats WHERE user_id = '{kim}'")
        )[0],
        ["pending", "NO_SEATS"]
    );

    // The IdP deactivates Ryan: seat freed, device revoked, Kim seated, in one request.
    let off = s.scim().patch(
        &format!("/Users/{ryan}"),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "active", "value": false}]}),
    );
    assert_eq!(off.status, 200, "{}", off.text());
    assert_eq!(
        db_query(
            &s,
            &format!("SELECT state FROM seats WHERE user_id = '{kim}'")
        )[0][0],
        "assigned"
    );
    let (ok, out) = run_client(state.path(), &["renew"]);
    assert!(!ok, "{out}");
    assert!(out.contains("USER_INACTIVE"), "{out}");
    // The lease still verifies offline, but status says the server refused it.
    let (ok, out) = run_client(state.path(), &["status"]);
    assert!(ok, "{out}");
    assert!(out.contains("valid; renew after"), "{out}");
    assert!(
        out.contains("renewal    REFUSED by the server on") && out.contains("(USER_INACTIVE)"),
        "{out}"
    );
    let audit = s.cli(&["audit", "--user", "ryan@contoso.com"]).1;
    for action in [
        "device_activated",
        "seat_revoked",
        "device_revoked",
        "renewal_refused",
    ] {
        assert!(audit.contains(action), "{action} missing from:\n{audit}");
    }
}

/// Item 9.3 of issue 11: `client verify` checks that the lease was issued by the gateway
/// this client activated against and is bound to this device's key, and verifies the
/// stored lease when given no file. Activation goes through the demo IdP (real SAML).
#[test]
fn item9_3_client_verify_checks_issuer_and_device_and_defaults_to_the_stored_lease() {
    let s = server().demo().start();
    assert!(s.wait_for_log("Break-glass admin:", std::time::Duration::from_secs(20)));
    let base = format!("http://{}", s.addr);
    let mine = tempfile::tempdir().expect("tmp");
    let run = client(
        mine.path(),
        &[
            "activate",
            "--server",
            &base,
            "--email",
            "alice@acme.example",
        ],
    );
    let url = run.browser_url();
    let done = crate::demo::activate_in_browser(&s, &url, "Alice");
    assert_eq!(done.status, 200, "{}", done.text());
    let (ok, out) = run.finish();
    assert!(ok, "{out}");
    let lease_file = mine.path().join("lease.jws");
    let lease_path = lease_file.to_str().expect("utf8");

    // No FILE: the stored lease, against the gateway's JWKS.
    let (ok, out) = run_client(mine.path(), &["verify"]);
    assert!(ok && out.contains("\"alice@acme.example\""), "{out}");
    // As documented: a FILE, with the JWKS from the gateway or from --jwks.
    let (ok, out) = run_client(mine.path(), &["verify", lease_path]);
    assert!(ok && out.contains("\"cnf\""), "{out}");
    let jwks = mine.path().join("jwks.json");
    std::fs::write(&jwks, s.get("/.well-known/jwks.json").text()).expect("jwks");
    let jwks = jwks.to_str().expect("utf8");
    let (ok, out) = run_client(mine.path(), &["verify", lease_path, "--jwks", jwks]);
    assert!(ok && out.contains("\"cnf\""), "{out}");

    // Another device (its own key) holding Alice's lease and state refuses it.
    let other = tempfile::tempdir().expect("tmp");
    let (ok, out) = run_client(other.path(), &["verify", lease_path, "--jwks", jwks]);
    assert!(
        ok,
        "no activated client here: signature and time only: {out}"
    );
    std::fs::copy(
        mine.path().join("state.json"),
        other.path().join("state.json"),
    )
    .expect("copy");
    std::fs::copy(&lease_file, other.path().join("lease.jws")).expect("copy");
    for args in [vec!["verify"], vec!["verify", lease_path, "--jwks", jwks]] {
        let run = client(other.path(), &args);
        let (ok, out) = run.finish();
        assert!(!ok, "{args:?}: {out}");
        assert!(
            out.contains("error: the lease is bound to another device's key"),
            "{args:?}: {out}"
        );
        assert_eq!(
            out.lines().filter(|l| l.contains("error:")).count(),
            1,
            "one sentence: {out}"
        );
    }

    let code = Command::new(BIN)
        .args(["client", "--state-dir"])
        .arg(other.path())
        .arg("verify")
        .output()
        .expect("client")
        .status
        .code();
    assert_eq!(code, Some(1), "a refused lease is a runtime failure");

    // A client activated against another gateway refuses this gateway's lease.
    let state_file = mine.path().join("state.json");
    let state = std::fs::read_to_string(&state_file).expect("state");
    std::fs::write(
        &state_file,
        state.replace(&base, "https://gateway.other.example:8443"),
    )
    .expect("state");
    let (ok, out) = run_client(mine.path(), &["verify", lease_path, "--jwks", jwks]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "error: the lease was issued by {base}, not by https://gateway.other.example:8443"
        )),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.contains("error:")).count(),
        1,
        "one sentence: {out}"
    );
}

/// A proof for `device` signed by a fresh key that is not the device's.
fn foreign_proof(device: &str) -> String {
    let (pkcs8, public) = seatgate::crypto::ed25519_generate().expect("key");
    let key = seatgate::domain::jose::DeviceKey::from_jwk(
        &json!({"kty": "OKP", "crv": "Ed25519", "x": seatgate::crypto::b64url(&public)}),
    )
    .expect("jwk");
    seatgate::domain::jose::sign_eddsa(
        &pkcs8,
        &key.thumbprint,
        "seatgate-proof+jwt",
        &json!({"action": "renew", "device": device, "iat": seatgate::clock::now_unix()}),
    )
    .expect("sign")
}

#[test]
#[ignore = "needs Python with pysaml2 and PyJWT (scripts/test-venv); scripts/test runs it"]
fn stolen_replayed_and_over_limit_activations_are_refused() {
    let (s, idp, _ryan, _kim) = setup("[lease]\npoll_interval_secs = 1\ndevice_limit = 1\n");
    let base = format!("https://127.0.0.1:{}", s.addr.port());
    let ca = s.ca_path();
    let ca = ca.to_str().expect("utf8");
    let first = tempfile::tempdir().expect("tmp");
    let run = client(
        first.path(),
        &[
            "activate",
            "--server",
            &base,
            "--email",
            "ryan@contoso.com",
            "--ca-cert",
            ca,
        ],
    );
    let url = run.browser_url();
    assert_eq!(browse(&s, &idp, &url, "ryan@contoso.com").status, 200);
    assert!(run.finish().0);
    let device = db_query(&s, "SELECT id FROM devices")[0][0].clone();

    // Device B cannot renew device A's lease, and a captured proof cannot be replayed.
    let stolen = s.request(
        "POST",
        "/api/v1/leases/renew",
        &[("Content-Type", "application/json")],
        json!({"proof": foreign_proof(&device)})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(stolen.status, 401, "{}", stolen.text());
    let state: Value =
        serde_json::from_slice(&std::fs::read(first.path().join("state.json")).expect("state"))
            .expect("json");
    let key = std::fs::read(first.path().join("device-key.p8")).expect("key");
    let jwk_of = |pkcs8: &[u8]| {
        use ring::signature::KeyPair;
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8).expect("key");
        seatgate::domain::jose::DeviceKey::from_jwk(&json!({"kty": "OKP", "crv": "Ed25519", "x": seatgate::crypto::b64url(pair.public_key().as_ref())})).expect("jwk")
    };
    let proof = seatgate::domain::jose::sign_eddsa(&key, &jwk_of(&key).thumbprint, "seatgate-proof+jwt", &json!({"action": "renew", "device": state["device_id"], "iat": seatgate::clock::now_unix() - 1})).expect("sign");
    let renew = |p: &str| {
        s.request(
            "POST",
            "/api/v1/leases/renew",
            &[("Content-Type", "application/json")],
            json!({"proof": p}).to_string().as_bytes(),
        )
    };
    let renewed = renew(&proof);
    assert_eq!(renewed.status, 200, "{}", renewed.text());
    // As the real client would: keep the renewed lease's id.
    let mut state = state.clone();
    state["lease_id"] = renewed.json()["lease_id"].clone();
    state["last_proof_iat"] = json!(seatgate::clock::now_unix() - 1);
    std::fs::write(first.path().join("state.json"), state.to_string()).expect("state");
    let replay = renew(&proof);
    assert_eq!(replay.status, 401, "a replayed proof is refused");
    assert_eq!(renew("garbage").status, 401);

    // The device limit (1): a second Mac for Ryan is refused with DEVICE_LIMIT.
    let second = tempfile::tempdir().expect("tmp");
    let run = client(
        second.path(),
        &[
            "activate",
            "--server",
            &base,
            "--email",
            "ryan@contoso.com",
            "--ca-cert",
            ca,
        ],
    );
    let url = run.browser_url();
    let page = browse(&s, &idp, &url, "ryan@contoso.com");
    assert_eq!(page.status, 403);
    assert!(page.text().contains("DEVICE_LIMIT"), "{}", page.text());
    let (ok, out) = run.finish();
    assert!(
        !ok && out.contains("access_denied") && out.contains("DEVICE_LIMIT"),
        "{out}"
    );

    // Kim has no seat (one seat, Ryan's): refused with NO_SEATS.
    let third = tempfile::tempdir().expect("tmp");
    let run = client(
        third.path(),
        &[
            "activate",
            "--server",
            &base,
            "--email",
            "kim@contoso.com",
            "--ca-cert",
            ca,
        ],
    );
    let url = run.browser_url();
    assert_eq!(browse(&s, &idp, &url, "kim@contoso.com").status, 403);
    let (ok, out) = run.finish();
    assert!(!ok && out.contains("NO_SEATS"), "{out}");

    // A device code is single-use and unknown ones are refused like expired ones.
    let poll = s.request(
        "POST",
        "/api/v1/activations/token",
        &[("Content-Type", "application/json")],
        br#"{"device_code": "made-up"}"#,
    );
    assert_eq!(poll.status, 400);
    assert_eq!(poll.json()["error"], "expired_token");
    // Unknown domains and bad keys are refused at the start.
    let start = |body: Value| {
        s.request(
            "POST",
            "/api/v1/activations",
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
    };
    let unknown = start(
        json!({"email": "a@elsewhere.com", "device": {"public_key": {"kty": "OKP", "crv": "Ed25519", "x": seatgate::crypto::b64url(&[7u8; 32])}}}),
    );
    assert_eq!(
        (unknown.status, unknown.json()["reason"].clone()),
        (404, json!("DOMAIN_UNKNOWN"))
    );
    let bad_key =
        start(json!({"email": "a@contoso.com", "device": {"public_key": {"kty": "RSA"}}}));
    assert_eq!(bad_key.status, 400);
    let not_loopback = start(
        json!({"email": "a@contoso.com", "redirect_uri": "https://evil.example/cb", "code_challenge": "x".repeat(43), "code_challenge_method": "S256", "device": {"public_key": {"kty": "OKP", "crv": "Ed25519", "x": seatgate::crypto::b64url(&[9u8; 32])}}}),
    );
    assert_eq!(not_loopback.status, 400);

    // Self-service deactivation frees the device slot (the seat stays).
    let (ok, out) = run_client(first.path(), &["deactivate"]);
    assert!(ok, "{out}");
    assert_eq!(
        db_query(&s, "SELECT count(*) FROM devices WHERE revoked_at IS NULL")[0][0],
        "0"
    );
    crate::support::assert_still_serving(&s);
}

#[test]
#[ignore = "needs Python with pysaml2 and PyJWT (scripts/test-venv); scripts/test runs it"]
fn loopback_clients_get_a_code_exchanged_with_pkce_and_key_rotation_keeps_leases_valid() {
    let (s, idp, _ryan, _kim) = setup("");
    let (_, public) = seatgate::crypto::ed25519_generate().expect("key");
    let verifier = seatgate::crypto::new_secret_token();
    let challenge = seatgate::crypto::b64url(&seatgate::crypto::sha256(verifier.as_bytes()));
    let started = s.request(
        "POST",
        "/api/v1/activations",
        &[("Content-Type", "application/json")],
        json!({
            "email": "ryan@contoso.com",
            "device": {"public_key": {"kty": "OKP", "crv": "Ed25519", "x": seatgate::crypto::b64url(&public)}, "name": "Loopback Mac", "os": "macOS 15"},
            "redirect_uri": "http://127.0.0.1:53682/callback",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        })
        .to_string()
        .as_bytes(),
    );
    assert_eq!(started.status, 201, "{}", started.text());
    let url = started.json()["verification_uri_complete"]
        .as_str()
        .expect("url")
        .to_string();
    let back = browse(&s, &idp, &url, "ryan@contoso.com");
    assert_eq!(back.status, 303, "{}", back.text());
    let location = back.header("location").expect("location").to_string();
    let code = location
        .strip_prefix("http://127.0.0.1:53682/callback?code=")
        .unwrap_or_else(|| panic!("not sent back to the loopback address: {location}"))
        .to_string();
    let exchange = |code: &str, verifier: &str| {
        s.request(
            "POST",
            "/api/v1/activations/token",
            &[("Content-Type", "application/json")],
            json!({"code": code, "code_verifier": verifier})
                .to_string()
                .as_bytes(),
        )
    };
    let wrong = exchange(&code, "not-the-verifier-not-the-verifier-not-the-verifier");
    assert_eq!(
        (wrong.status, wrong.json()["error"].clone()),
        (400, json!("invalid_grant"))
    );
    let lease = exchange(&code, &verifier);
    assert_eq!(lease.status, 200, "{}", lease.text());
    let token = lease.json()["license"].as_str().expect("lease").to_string();
    assert_eq!(pyjwt_verify(&s, &token)["email"], "ryan@contoso.com");
    let again = exchange(&code, &verifier);
    assert_eq!(
        (again.status, again.json()["error"].clone()),
        (400, json!("expired_token")),
        "the code is single-use"
    );

    // Rotation: once the key is older than [lease] key_rotation, the next lease is signed
    // by a new key; the old one stays published, so the earlier lease still verifies.
    let old_kid = db_query(&s, "SELECT kid FROM signing_keys")[0][0].clone();
    crate::support::db_exec(
        &s,
        "UPDATE signing_keys SET created_at = created_at - 100 * 86400",
    );
    let state = tempfile::tempdir().expect("tmp");
    let base = format!("https://127.0.0.1:{}", s.addr.port());
    let ca = s.ca_path();
    let run = client(
        state.path(),
        &[
            "activate",
            "--server",
            &base,
            "--email",
            "ryan@contoso.com",
            "--ca-cert",
            ca.to_str().expect("utf8"),
        ],
    );
    let url = run.browser_url();
    assert_eq!(browse(&s, &idp, &url, "ryan@contoso.com").status, 200);
    assert!(run.finish().0);
    let kids: Vec<String> = db_query(&s, "SELECT kid FROM signing_keys ORDER BY created_at")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(kids.len(), 2);
    assert_eq!(kids[0], old_kid);
    let jwks = s.get("/.well-known/jwks.json").json();
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(2), "{jwks}");
    assert_eq!(
        pyjwt_verify(&s, &token)["email"],
        "ryan@contoso.com",
        "the old key's lease still verifies"
    );
    let new_lease = std::fs::read_to_string(state.path().join("lease.jws")).expect("lease");
    let header: Value = serde_json::from_slice(
        &seatgate::crypto::b64url_decode(new_lease.split('.').next().expect("header"))
            .expect("b64"),
    )
    .expect("json");
    assert_eq!(header["kid"], kids[1].as_str());
}

#[test]
#[ignore = "needs Python with pysaml2 and PyJWT (scripts/test-venv); scripts/test runs it"]
fn admins_deactivate_devices_and_silent_devices_are_released() {
    // The server keeps the default release window so its housekeeping cannot race the
    // activations below; the CLI run at the end is given a 2 s window.
    let (s, idp, _ryan, _kim) = setup("[lease]\npoll_interval_secs = 1\n");
    let base = format!("https://127.0.0.1:{}", s.addr.port());
    let ca = s.ca_path();
    let ca = ca.to_str().expect("utf8");
    let mut devices = Vec::new();
    for _ in 0..2 {
        let state = tempfile::tempdir().expect("tmp");
        let run = client(
            state.path(),
            &[
                "activate",
                "--server",
                &base,
                "--email",
                "ryan@contoso.com",
                "--ca-cert",
                ca,
            ],
        );
        let url = run.browser_url();
        assert_eq!(browse(&s, &idp, &url, "ryan@contoso.com").status, 200);
        assert!(run.finish().0);
        devices.push(state);
    }
    let listed = s.cli(&["device", "list", "ryan@contoso.com"]).1;
    assert_eq!(listed.matches("active, lease until").count(), 2, "{listed}");
    let first = listed.split('\t').next().expect("id").to_string();

    // An admin deactivates one: its renewal is refused, the other keeps working.
    let (code, out, err) = s.cli(&["device", "deactivate", &first]);
    assert_eq!(code, 0, "{out}{err}");
    let (ok, out) = run_client(devices[0].path(), &["renew"]);
    assert!(!ok && out.contains("REVOKED"), "{out}");
    let (ok, out) = run_client(devices[1].path(), &["renew"]);
    assert!(ok, "{out}");

    // Silent for longer than release_silent_after (2 s here): released. The silence is
    // what is tested, and the binary reads the system clock.
    std::thread::sleep(std::time::Duration::from_millis(3100));
    let (code, out, _) = s.cli_env(
        &["device", "release-silent"],
        &[("SEATGATE_LEASE_RELEASE_SILENT_AFTER", "2s")],
    );
    assert_eq!(code, 0);
    assert!(out.contains("released 1 silent device"), "{out}");
    let audit = s.cli(&["audit", "--action", "device_released"]).1;
    assert!(
        audit.contains("admin:cli device_released") && audit.contains("DEACTIVATED"),
        "{audit}"
    );
    assert!(
        audit.contains("system device_released") && audit.contains("SILENT"),
        "{audit}"
    );
    assert_eq!(
        db_query(&s, "SELECT count(*) FROM devices WHERE revoked_at IS NULL")[0][0],
        "0"
    );
    // The user keeps the seat: devices come and go, the seat follows the directory.
    assert_eq!(
        db_query(&s, "SELECT count(*) FROM seats WHERE state = 'assigned'")[0][0],
        "1"
    );
}

/// Issue 11 item 3: an unauthenticated client could register
/// `http://127.0.0.1:1/cb\r\nSet-Cookie: …` and, once the victim signed in, the ACS answer
/// carried its headers. `redirect_uri` is now parsed and held to RFC 8252 §7.3, and the
/// `Location` that brings the code back is built by a URL serializer.
#[test]
#[ignore = "needs Python with pysaml2 and PyJWT (scripts/test-venv); scripts/test runs it"]
fn item3_redirect_uri_header_injection_refused() {
    let (s, idp, _ryan, _kim) = setup("");
    let (_, public) = seatgate::crypto::ed25519_generate().expect("key");
    let verifier = seatgate::crypto::new_secret_token();
    let challenge = seatgate::crypto::b64url(&seatgate::crypto::sha256(verifier.as_bytes()));
    let start = |redirect_uri: &str| {
        s.request(
            "POST",
            "/api/v1/activations",
            &[("Content-Type", "application/json")],
            json!({
                "email": "ryan@contoso.com",
                "device": {"public_key": {"kty": "OKP", "crv": "Ed25519", "x": seatgate::crypto::b64url(&public)}},
                "redirect_uri": redirect_uri,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            })
            .to_string()
            .as_bytes(),
        )
    };
    let long_path = format!("http://127.0.0.1:5000/{}", "a".repeat(500));
    for hostile in [
        "http://127.0.0.1:1/cb\r\nSet-Cookie: sg=x; Max-Age=31536000",
        "http://127.0.0.1:1/cb\nSet-Cookie: sg=x",
        "http://127.0.0.1:1/cb\0",
        "http://127.0.0.1:1/cb?x=\r\nLocation: https://evil.example/",
        "http://localhost:8080/cb",
        "http://127.0.0.2:8080/cb",
        "http://127.0.0.1/cb",
        "http://127.0.0.1:0/cb",
        "http://127.0.0.1:8080",
        "http://user:pw@127.0.0.1:8080/cb",
        "http://127.0.0.1:8080/cb#fragment",
        "https://127.0.0.1:8080/cb",
        "http://[::1]:8080/cb/../../x",
        "http://0x7f.1:8080/cb",
        "HTTP://127.0.0.1:8080/cb",
        " http://127.0.0.1:8080/cb",
        "http:127.0.0.1:8080/cb",
        long_path.as_str(),
    ] {
        let r = start(hostile);
        assert_eq!(r.status, 400, "{hostile:?} was accepted: {}", r.text());
        assert_eq!(r.json()["reason"], "INVALID_REDIRECT_URI", "{hostile:?}");
    }
    assert_eq!(
        db_query(&s, "SELECT count(*) FROM activations")[0][0],
        "0",
        "nothing was stored"
    );

    // A well-formed loopback URI with a query keeps it; the code is appended as a pair.
    let ok = start("http://[::1]:53682/callback?state=a%20b");
    assert_eq!(ok.status, 201, "{}", ok.text());
    let url = ok.json()["verification_uri_complete"]
        .as_str()
        .expect("url")
        .to_string();
    let back = browse(&s, &idp, &url, "ryan@contoso.com");
    assert_eq!(back.status, 303, "{}", back.text());
    let location = back.header("location").expect("location");
    let code = location
        .strip_prefix("http://[::1]:53682/callback?state=a%20b&code=")
        .unwrap_or_else(|| panic!("unexpected Location: {location}"));
    assert_eq!(code.len(), 43, "{location}");
    let lease = s.request(
        "POST",
        "/api/v1/activations/token",
        &[("Content-Type", "application/json")],
        json!({"code": code, "code_verifier": verifier})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(lease.status, 200, "{}", lease.text());
}

/// Issue 16 item 11: an admin bounds how long a Mac works offline per license, so a
/// revoked one stops sooner; the lease then asks for renewal at a third of it. Bad values
/// are refused and change nothing.
#[test]
fn a_licenses_offline_limit_bounds_the_lease() {
    let s = server().demo().start();
    assert!(s.wait_for_log("Break-glass admin:", std::time::Duration::from_secs(20)));
    let license = db_query(&s, "SELECT id FROM licenses")[0][0].clone();
    for bad in ["30m", "400d", "soon"] {
        let (code, _, err) = s.cli(&["license", "set", &license, "--max-offline", bad]);
        assert_ne!(code, 0, "{bad} accepted");
        assert!(
            err.contains("offline") || err.contains("max-offline"),
            "{err}"
        );
    }
    assert_eq!(
        db_query(
            &s,
            "SELECT coalesce(max_offline_secs, 'none') FROM licenses"
        )[0][0],
        "none"
    );
    // The demo's license comes from an entitlement: the limit is policy, so it is allowed.
    let (code, out, err) = s.cli(&["license", "set", &license, "--max-offline", "2d"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("at most 2d"), "{out}");
    assert!(s.cli(&["license", "list"]).1.contains("at most 2d"));

    let base = format!("http://{}", s.addr);
    let mine = tempfile::tempdir().expect("tmp");
    let run = client(
        mine.path(),
        &[
            "activate",
            "--server",
            &base,
            "--email",
            "alice@acme.example",
        ],
    );
    let url = run.browser_url();
    let done = crate::demo::activate_in_browser(&s, &url, "Alice");
    assert_eq!(done.status, 200, "{}", done.text());
    let (ok, out) = run.finish();
    assert!(ok, "{out}");
    let (ok, out) = run_client(mine.path(), &["verify"]);
    assert!(ok, "{out}");
    let claims: Value = serde_json::Deserializer::from_str(&out)
        .into_iter::<Value>()
        .next()
        .and_then(Result::ok)
        .expect("claims");
    let iat = claims["iat"].as_i64().expect("iat");
    assert_eq!(claims["exp"].as_i64(), Some(iat + 2 * 86_400), "{claims}");
    assert_eq!(
        claims["renew_after"].as_i64(),
        Some(iat + 2 * 86_400 / 3),
        "{claims}"
    );
    let audit = s.cli(&["audit", "--action", "license_changed"]).1;
    assert!(audit.contains("max_offline_secs"), "{audit}");
}
