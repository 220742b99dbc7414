//! Issue 17 §3: license keys and per-device seats, through the real binary over HTTPS.
//! Keys shown once and stored hashed; a key's device limit and its pool's capacity both
//! refuse with NO_SEATS; unknown and rotated-away keys with KEY_UNKNOWN; a revoked key's
//! devices are refused at renewal with REVOKED and their seats go to whoever waits; a key
//! device its person activates with SSO moves to their seat (the demo IdP, real SAML).

use serde_json::{Value, json};

use crate::activation::client;
use crate::support::{TestServer, db_query, server};

fn ok(s: &TestServer, args: &[&str]) -> String {
    let (code, out, err) = s.cli(args);
    assert_eq!(code, 0, "{args:?}: {out}{err}");
    out
}

/// The key `license key create|rotate` printed: its last line, alone.
fn key_of(out: &str) -> String {
    let key = out.lines().last().expect("a line").trim().to_string();
    assert!(key.starts_with("SGK-") && key.len() == 33, "{out}");
    key
}

fn run(state: &std::path::Path, args: &[&str]) -> (bool, String) {
    client(state, args).finish()
}

fn jwk() -> Value {
    let (_, public) = seatgate::crypto::ed25519_generate().expect("key");
    json!({"kty": "OKP", "crv": "Ed25519", "x": seatgate::crypto::b64url(&public)})
}

pub(crate) fn activate_raw(s: &TestServer, key: &str) -> crate::support::HttpResponse {
    s.request(
        "POST",
        "/api/v1/activations",
        &[("Content-Type", "application/json")],
        json!({"license_key": key, "device": {"public_key": jwk(), "name": "Lab Mac", "os": "macOS 15"}})
            .to_string()
            .as_bytes(),
    )
}

#[test]
fn keys_hand_out_per_device_seats_within_their_limit_and_their_pool() {
    let s = server().start();
    let base = format!("https://127.0.0.1:{}", s.addr.port());
    let ca = s.ca_path();
    let ca = ca.to_str().expect("utf8");
    let license = ok(
        &s,
        &[
            "license",
            "add",
            "--product",
            "Parallels Desktop",
            "--seats",
            "3",
        ],
    )
    .trim()
    .to_string();
    let lab = key_of(&ok(
        &s,
        &[
            "license",
            "key",
            "create",
            "--license",
            &license,
            "--devices",
            "2",
            "--name",
            "Lab 3",
        ],
    ));

    // Shown once, stored only as a hash.
    let canonical = lab[4..].replace('-', "");
    for file in ["seatgate.db", "seatgate.db-wal"] {
        let data = std::fs::read(s.data_dir.join(file)).unwrap_or_default();
        assert!(
            !data
                .windows(canonical.len())
                .any(|w| w == canonical.as_bytes())
                && !data.windows(lab.len()).any(|w| w == lab.as_bytes()),
            "the key is not stored in {file}"
        );
    }
    assert_eq!(
        db_query(&s, "SELECT secret_hash FROM license_keys")[0][0],
        seatgate::crypto::sha256_hex(canonical.as_bytes())
    );
    let listed = ok(&s, &["license", "key", "list"]);
    assert!(!listed.contains(&lab), "{listed}");
    assert!(
        listed.contains("Lab 3") && listed.contains("0/2 devices"),
        "{listed}"
    );

    // A Mac activates with the key alone: a lease at once, bound to its key, no person.
    let mac1 = tempfile::tempdir().expect("tmp");
    let (done, out) = run(
        mac1.path(),
        &[
            "activate",
            "--server",
            &base,
            "--key",
            &lab,
            "--ca-cert",
            ca,
            "--name",
            "Lab Mac 1",
        ],
    );
    assert!(done, "{out}");
    assert!(out.contains("a per-device seat"), "{out}");
    let (done, out) = run(mac1.path(), &["verify"]);
    assert!(done, "{out}");
    let json_end = out.find("\n}").expect("a JSON object") + 2;
    let claims: Value = serde_json::from_str(&out[..json_end]).expect("claims");
    assert_eq!(claims["license"], license.as_str());
    assert!(
        claims["sub"]
            .as_str()
            .is_some_and(|d| d.starts_with("dev-"))
    );
    assert_eq!(claims["sub"], claims["device"]);
    assert!(
        claims["license_key"]
            .as_str()
            .is_some_and(|k| k.starts_with("key-"))
    );
    assert!(claims.get("email").is_none(), "{claims}");
    let (done, out) = run(mac1.path(), &["renew"]);
    assert!(done, "{out}");
    let (done, out) = run(mac1.path(), &["status"]);
    assert!(
        done && out.contains("per-device, license key key-"),
        "{out}"
    );

    // Typed in lower case with spaces: the same key. The third device: the key is full.
    let typed = lab.to_lowercase().replace('-', " ");
    assert_eq!(activate_raw(&s, &typed).status, 201);
    let full = activate_raw(&s, &lab);
    assert_eq!(full.status, 403, "{}", full.text());
    assert_eq!(full.json()["reason"], "NO_SEATS");

    // Another key of the same license: one seat left in the pool, then the pool is full.
    let spare = key_of(&ok(
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
    ));
    assert_eq!(activate_raw(&s, &spare).status, 201);
    let pool_full = activate_raw(&s, &spare);
    assert_eq!(pool_full.status, 403, "{}", pool_full.text());
    assert_eq!(pool_full.json()["reason"], "NO_SEATS");
    assert_eq!(
        db_query(&s, "SELECT assigned FROM pool_usage WHERE pool = ''")[0][0],
        "3"
    );

    // People compete for the same seats: a newly provisioned user waits.
    ok(
        &s,
        &["group-map", "add", "--group", "Mac Users", "--primary"],
    );
    let scim = s.scim();
    let kim = scim.post(
        "/Users",
        json!({"userName": "kim@contoso.com", "active": true}),
    );
    let kim = kim.json()["id"].as_str().expect("id").to_string();
    assert_eq!(
        scim.post(
            "/Groups",
            json!({"displayName": "Mac Users", "members": [{"value": kim}]})
        )
        .status,
        201
    );
    assert_eq!(
        db_query(
            &s,
            &format!("SELECT state, reason FROM seats WHERE user_id = '{kim}'")
        )[0],
        ["pending", "NO_SEATS"]
    );

    // Guessed, malformed and oversized keys: KEY_UNKNOWN, nothing stored.
    for bad in [
        "SGK-00000-00000-00000-00000-00000".to_string(),
        "not a key".to_string(),
        "x".repeat(10_000),
        "SGK-\u{0}\r\n".to_string(),
    ] {
        let r = activate_raw(&s, &bad);
        assert_eq!(r.status, 403, "{}", r.text());
        assert_eq!(r.json()["reason"], "KEY_UNKNOWN");
    }
    let r = s.request(
        "POST",
        "/api/v1/activations",
        &[("Content-Type", "application/json")],
        json!({"license_key": 42, "device": {"public_key": jwk()}})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.json()["reason"], "KEY_UNKNOWN", "{}", r.text());
    let r = s.request(
        "POST",
        "/api/v1/activations",
        &[("Content-Type", "application/json")],
        json!({"license_key": lab, "device": {"public_key": {"kty": "RSA"}}})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        db_query(&s, "SELECT count(*) FROM devices")[0][0],
        "3",
        "no refused activation left a device"
    );
    // The same device key twice: a conflict, not a second seat.
    let (again, out) = run(
        mac1.path(),
        &[
            "activate",
            "--server",
            &base,
            "--key",
            &spare,
            "--ca-cert",
            ca,
        ],
    );
    assert!(!again && out.contains("already activated"), "{out}");

    // Rotation: the old key activates nothing; the devices keep their seats and renew.
    let rotated = ok(&s, &["license", "key", "rotate", "Lab 3"]);
    let fresh = key_of(&rotated);
    assert!(
        rotated.contains("2 device(s) keep their seats"),
        "{rotated}"
    );
    assert_eq!(activate_raw(&s, &lab).json()["reason"], "KEY_UNKNOWN");
    assert_eq!(activate_raw(&s, &fresh).json()["reason"], "NO_SEATS");
    let (done, out) = run(mac1.path(), &["renew"]);
    assert!(done, "{out}");

    // Revoking the key revokes its devices (REVOKED at renewal) and Kim gets a seat.
    let revoked = ok(&s, &["license", "key", "revoke", "Lab 3"]);
    assert!(
        revoked.contains("its 2 device(s)") && revoked.contains("1 waiting user(s) received"),
        "{revoked}"
    );
    assert_eq!(
        db_query(
            &s,
            &format!("SELECT state FROM seats WHERE user_id = '{kim}'")
        )[0][0],
        "assigned"
    );
    let (done, out) = run(mac1.path(), &["renew"]);
    assert!(!done && out.contains("REVOKED"), "{out}");
    assert_eq!(activate_raw(&s, &fresh).json()["reason"], "REVOKED");
    let (code, _, err) = s.cli(&["license", "key", "rotate", "Lab 3"]);
    assert_ne!(code, 0);
    assert!(err.contains("is revoked"), "{err}");

    // The audit log tells the story in sentences; explain covers key devices.
    let audit = ok(&s, &["audit"]);
    for action in [
        "license_key_created",
        "license_key_rotated",
        "license_key_revoked",
        "device_activated",
        "activation_refused",
    ] {
        assert!(audit.contains(action), "{action} missing:\n{audit}");
    }
    assert!(audit.contains("license-key:key-"), "{audit}");
}

#[test]
fn bad_key_requests_are_refused_with_a_reason() {
    let s = server().start();
    let license = ok(&s, &["license", "add", "--product", "PD", "--seats", "1"])
        .trim()
        .to_string();
    for (args, says) in [
        (vec!["--devices", "0"], "device limit"),
        (vec!["--devices=-3"], "device limit"),
        (vec!["--devices", "99999999999"], "device limit"),
        (vec!["--devices", "1", "--name", "a\u{202e}b"], "name"),
        (
            vec!["--devices", "1", "--sublicense", "nope"],
            "no sublicense",
        ),
    ] {
        let mut all = vec!["license", "key", "create", "--license", &license];
        all.extend(args.iter().copied());
        let (code, out, err) = s.cli(&all);
        assert_ne!(code, 0, "{all:?}: {out}");
        assert!(err.contains(says), "{all:?}: {err}");
    }
    let (code, _, err) = s.cli(&[
        "license",
        "key",
        "create",
        "--license",
        "nope",
        "--devices",
        "1",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("no license"), "{err}");
    let (code, _, err) = s.cli(&["license", "key", "revoke", "key-nothing"]);
    assert_ne!(code, 0);
    assert!(err.contains("no license key"), "{err}");
    // A key on a sublicense keeps that sublicense from being removed until it is revoked.
    ok(
        &s,
        &[
            "sublicense",
            "add",
            "--license",
            &license,
            "--name",
            "Lab",
            "--seats",
            "1",
            "--reserved",
        ],
    );
    ok(
        &s,
        &[
            "license",
            "key",
            "create",
            "--license",
            &license,
            "--sublicense",
            "Lab",
            "--devices",
            "1",
        ],
    );
    let (code, _, err) = s.cli(&["sublicense", "remove", "Lab"]);
    assert_ne!(code, 0);
    assert!(err.contains("license key(s) still hand out seats"), "{err}");
}

/// Per-device to per-user: a Mac activated with a key is later activated by its person
/// with SSO (same device key, SAML minted by pysaml2): the device becomes theirs, on
/// their seat, and the key's seat is freed, in one transaction, audited.
#[test]
#[ignore = "needs Python with pysaml2 and PyJWT (scripts/test-venv); scripts/test runs it"]
fn a_key_device_moves_to_its_person_when_they_activate_it_with_sso() {
    let (s, idp, ryan, _kim) = crate::activation::setup("[lease]\npoll_interval_secs = 1\n");
    let base = format!("https://127.0.0.1:{}", s.addr.port());
    let ca = s.ca_path();
    let ca = ca.to_str().expect("utf8");
    // Three seats: Ryan's, Kim's (she waited), and one for the key.
    ok(&s, &["license", "set", "Parallels Desktop", "--seats", "3"]);
    let key = key_of(&ok(
        &s,
        &[
            "license",
            "key",
            "create",
            "--license",
            "Parallels Desktop",
            "--devices",
            "3",
        ],
    ));
    let mac = tempfile::tempdir().expect("tmp");
    let (done, out) = run(
        mac.path(),
        &[
            "activate",
            "--server",
            &base,
            "--key",
            &key,
            "--ca-cert",
            ca,
        ],
    );
    assert!(done, "{out}");
    let device = db_query(&s, "SELECT id FROM devices WHERE key_id IS NOT NULL")[0][0].clone();
    let held = |s: &TestServer| {
        db_query(s, "SELECT assigned FROM pool_usage WHERE pool = ''")[0][0].clone()
    };
    assert_eq!(held(&s), "3");
    assert_eq!(
        activate_raw(&s, &key).json()["reason"],
        "NO_SEATS",
        "the pool is full"
    );

    let run_sso = client(
        mac.path(),
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
    let url = run_sso.browser_url();
    let page = crate::activation::browse(&s, &idp, &url, "ryan@contoso.com");
    assert_eq!(page.status, 200, "{}", page.text());
    let (done, out) = run_sso.finish();
    assert!(done, "{out}");
    assert!(
        out.contains(&format!("activated: {device}")),
        "the same device: {out}"
    );

    let row = &db_query(
        &s,
        &format!(
            "SELECT user_id, key_id IS NULL, sublicense_id IS NULL, revoked_at IS NULL FROM devices WHERE id = '{device}'"
        ),
    )[0];
    assert_eq!(row, &[ryan.as_str(), "1", "1", "1"]);
    assert_eq!(db_query(&s, "SELECT count(*) FROM devices")[0][0], "1");
    assert_eq!(held(&s), "2", "the per-device seat was freed");
    assert_eq!(
        activate_raw(&s, &key).status,
        201,
        "the freed seat is free for the key again"
    );
    let audit = ok(&s, &["audit", "--action", "device_moved_to_user"]);
    assert!(audit.contains(&device), "{audit}");
    let (done, out) = run(mac.path(), &["status"]);
    assert!(done && out.contains("ryan@contoso.com"), "{out}");
    let (done, out) = run(mac.path(), &["renew"]);
    assert!(done, "{out}");
    let lease = std::fs::read_to_string(mac.path().join("lease.jws")).expect("lease");
    let claims = crate::activation::pyjwt_verify(&s, &lease);
    assert_eq!(claims["sub"], ryan.as_str());
    assert!(claims.get("license_key").is_none(), "{claims}");
}

/// The portal's License keys page and the admin API: create (shown once, never again),
/// change, rotate, revoke with confirmation, and the devices of a key with their seat.
#[test]
fn keys_are_managed_in_the_portal_and_the_admin_api() {
    use crate::portal::{get, session, shown_token, submit};
    let s = server().start();
    ok(
        &s,
        &[
            "license",
            "add",
            "--product",
            "Parallels Desktop",
            "--seats",
            "10",
        ],
    );
    ok(
        &s,
        &[
            "sublicense",
            "add",
            "--license",
            "Parallels Desktop",
            "--name",
            "Labs",
            "--seats",
            "4",
            "--reserved",
        ],
    );
    let cookie = session(&s);
    let page = get(&s, "/admin/keys", &cookie);
    assert_eq!(page.status, 200);
    let page = page.text();
    assert!(page.contains("No license key yet."), "{page}");

    // Refused: the form comes back with what was typed and the reason.
    let refused = submit(
        &s,
        &cookie,
        &page,
        "Create key",
        &[("devices", "0"), ("name", "Lab 3")],
    );
    assert_eq!(refused.status, 400);
    let text = refused.text();
    assert!(
        text.contains("device limit") && text.contains("value=\"Lab 3\""),
        "{text}"
    );

    // Created on the Labs sublicense: the key is on this page once, with no-store.
    let labs_pool = page
        .split("<option value=\"")
        .skip(1)
        .map(|o| o.split('"').next().unwrap_or(""))
        .find(|v| !v.ends_with('/'))
        .expect("a sublicense pool")
        .to_string();
    let created = submit(
        &s,
        &cookie,
        &page,
        "Create key",
        &[("devices", "3"), ("name", "Lab 3"), ("pool", &labs_pool)],
    );
    assert_eq!(created.status, 200, "{}", created.text());
    assert_eq!(created.header("cache-control"), Some("no-store"));
    let key = shown_token(&created.text());
    assert!(key.starts_with("SGK-"), "{key}");
    let again = get(&s, "/admin/keys", &cookie).text();
    assert!(!again.contains(&key), "shown only once");
    assert!(
        again.contains("Labs (Parallels Desktop)") && again.contains("0 of 3"),
        "{again}"
    );
    assert_eq!(activate_raw(&s, &key).status, 201);
    assert_eq!(
        db_query(
            &s,
            "SELECT count(*) FROM devices d JOIN license_keys k ON k.id = d.key_id WHERE d.sublicense_id = k.sublicense_id"
        )[0][0],
        "1",
        "the device's seat is in the key's sublicense"
    );
    let listed = get(&s, "/admin/keys", &cookie).text();
    assert!(
        listed.contains("1 of 3") && listed.contains("Lab Mac"),
        "{listed}"
    );

    // Change the limit; revoke needs the box ticked.
    let changed = submit(&s, &cookie, &listed, "Save Lab 3", &[("devices", "5")]);
    assert_eq!(changed.status, 303, "{}", changed.text());
    let page = get(&s, "/admin/keys", &cookie).text();
    assert!(
        page.contains("at most 5 devices") && page.contains("1 of 5"),
        "{page}"
    );
    let (action, fields) = crate::demo::form_containing(&page, "Revoke Lab 3");
    let unconfirmed = s.request(
        "POST",
        &action,
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &cookie),
        ],
        crate::support::form_body(&fields).as_bytes(),
    );
    assert_eq!(unconfirmed.status, 400, "{}", unconfirmed.text());
    assert!(unconfirmed.text().contains("refused at their next renewal"));
    assert_eq!(
        db_query(
            &s,
            "SELECT count(*) FROM license_keys WHERE revoked_at IS NULL"
        )[0][0],
        "1"
    );
    let rotated = submit(&s, &cookie, &page, "Rotate Lab 3", &[("confirm", "yes")]);
    assert_eq!(rotated.status, 200);
    let fresh = shown_token(&rotated.text());
    assert_ne!(fresh, key);
    assert_eq!(activate_raw(&s, &key).json()["reason"], "KEY_UNKNOWN");
    let revoked = submit(
        &s,
        &cookie,
        &rotated.text(),
        "Revoke Lab 3",
        &[("confirm", "yes")],
    );
    assert_eq!(revoked.status, 303);
    let page = get(&s, "/admin/keys", &cookie).text();
    assert!(
        page.contains("Revoked the license key Lab 3 and its 1 Mac(s)"),
        "{page}"
    );
    assert!(!page.contains(&fresh));

    // The admin API: the same operations, the key only in the answers that create it.
    let token = crate::admin_api::admin_token(&s);
    let call = |m: &str, p: &str, b: Option<Value>| crate::admin_api::call(&s, &token, m, p, b);
    let made = call(
        "POST",
        "/api/v1/admin/license-keys",
        Some(json!({"license": "Parallels Desktop", "devices": 2, "name": "API key"})),
    );
    assert_eq!(made.status, 201, "{}", made.text());
    let made = made.json();
    let secret = made["license_key"].as_str().expect("key").to_string();
    let id = made["key"]["id"].as_str().expect("id").to_string();
    assert_eq!(made["key"]["device_limit"], 2);
    assert_eq!(
        made["key"]["hint"],
        secret.rsplit('-').next().expect("hint")
    );
    let all = call("GET", "/api/v1/admin/license-keys", None);
    assert!(!all.text().contains(&secret), "{}", all.text());
    assert_eq!(all.json()["license_keys"].as_array().map(Vec::len), Some(2));
    assert_eq!(activate_raw(&s, &secret).status, 201);
    let devices = call(
        "GET",
        &format!("/api/v1/admin/license-keys/{id}/devices"),
        None,
    );
    assert_eq!(devices.json()["devices"].as_array().map(Vec::len), Some(1));
    for (body, status) in [
        (json!({"devices": 0}), 400),
        (json!({"devices": 3, "colour": "red"}), 400),
        (json!({"devices": 3}), 200),
    ] {
        let r = call(
            "PATCH",
            &format!("/api/v1/admin/license-keys/{id}"),
            Some(body.clone()),
        );
        assert_eq!(r.status, status, "{body}: {}", r.text());
    }
    let r = call(
        "POST",
        "/api/v1/admin/license-keys",
        Some(json!({"license": "nope", "devices": 1})),
    );
    assert_eq!(r.status, 404, "{}", r.text());
    let r = call("DELETE", "/api/v1/admin/license-keys/key-nothing", None);
    assert_eq!(r.status, 404, "{}", r.text());
    let rot = call(
        "POST",
        &format!("/api/v1/admin/license-keys/{id}/rotate"),
        None,
    );
    assert_eq!(rot.status, 200);
    assert_ne!(rot.json()["license_key"], secret.as_str());
    let gone = call("DELETE", &format!("/api/v1/admin/license-keys/{id}"), None);
    assert_eq!(gone.status, 200);
    assert_eq!(gone.json()["devices_revoked"], 1);

    // explain: by key id, by the key, by a device.
    let out = ok(&s, &["explain", &id]);
    assert!(out.contains("activation   REVOKED"), "{out}");
    let fresh_key = key_of(&ok(
        &s,
        &[
            "license",
            "key",
            "create",
            "--license",
            "Parallels Desktop",
            "--devices",
            "1",
        ],
    ));
    let out = ok(&s, &["explain", &fresh_key]);
    assert!(out.contains("activation   OK"), "{out}");
    assert_eq!(activate_raw(&s, &fresh_key).status, 201);
    let out = ok(&s, &["explain", &fresh_key]);
    assert!(
        out.contains("activation   NO_SEATS") && out.contains("all in use"),
        "{out}"
    );
    let dev = db_query(&s, "SELECT id FROM devices WHERE revoked_at IS NULL")[0][0].clone();
    let out = ok(&s, &["explain", &dev, "--json"]);
    let j: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(j["device"]["id"], dev.as_str());
    assert_eq!(j["verdict"], "NO_SEATS");
}
