//! Licenses from the vendor (issue 15): signed entitlements imported on the command line,
//! air-gapped registration, seats re-decided when an entitlement changes, trials turning
//! into paid licenses, and every hostile file refused with one sentence, changing nothing.

use entitlement::registration::Request;
use entitlement::{Entitlement, KeyPair};
use serde_json::{Value, json};

use crate::kit::vendor::{DAY, entitlement, file, mint, now};
use crate::support::{Scim, TestServer, db_query, server};

const PRODUCT: &str = "Parallels Desktop";

fn ok(out: (i32, String, String)) -> String {
    assert_eq!(out.0, 0, "{}{}", out.1, out.2);
    out.1
}

/// Imports a token through `seatgate license import`: (exit code, what it said: the
/// output, or the error lines).
fn import(s: &TestServer, name: &str, token: &str) -> (i32, String) {
    let path = file(&s.data_dir.join(".."), name, token);
    let (code, out, err) = s.cli(&["license", "import", &path]);
    let errors: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("seatgate: "))
        .collect();
    (code, format!("{out}{}", errors.join("\n")))
}

/// The license id a first import created.
fn imported_license(out: &str) -> String {
    out.split_whitespace()
        .skip_while(|w| *w != "license")
        .nth(1)
        .expect("names the license")
        .to_string()
}

fn licenses(s: &TestServer) -> Vec<Vec<String>> {
    db_query(
        s,
        "SELECT id, product, seats, coalesce(expires_at, '') FROM licenses ORDER BY id",
    )
}

fn seated_users(s: &TestServer) -> usize {
    db_query(s, "SELECT user_id FROM seats WHERE state = 'assigned'").len()
}

fn staff(scim: &Scim<'_>, n: usize) -> Vec<String> {
    let ids: Vec<String> = (0..n)
        .map(|i| {
            let name = format!("user{i}@contoso.com");
            let r = scim.post("/Users", json!({"userName": name, "active": true}));
            assert_eq!(r.status, 201, "{}", r.text());
            r.json()["id"].as_str().expect("id").to_string()
        })
        .collect();
    let members: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
    let r = scim.post(
        "/Groups",
        json!({"displayName": "Staff", "members": members}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    ids
}

#[test]
fn an_entitlement_sets_its_license_and_a_smaller_serial_grants_nothing_over_its_size() {
    let s = server().start();
    let (code, out) = import(&s, "e1.jws", &mint(&entitlement("ent-1", 1, PRODUCT, 3)));
    assert_eq!(code, 0, "{out}");
    let license = imported_license(&out);
    assert_eq!(
        licenses(&s)[0][..3],
        [license.clone(), PRODUCT.into(), "3".into()]
    );
    ok(s.cli(&["group-map", "add", "--group", "Staff", "--primary"]));
    let scim = s.scim();
    let ids = staff(&scim, 3);
    assert_eq!(seated_users(&s), 3);

    // The admin cannot hand out more than the vendor sold.
    let (code, _, err) = s.cli(&["license", "set", &license, "--seats", "50"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("come from the vendor's entitlement ent-1"),
        "{err}"
    );

    // Serial 2 shrinks it. Nobody holding a seat loses it (as with any pool made
    // smaller); the pool grants nothing until it is under its new size, so the next user
    // waits, and a seat freed goes to nobody while the pool is still over.
    let (code, out) = import(&s, "e2.jws", &mint(&entitlement("ent-1", 2, PRODUCT, 2)));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("renewed (was serial 1)"), "{out}");
    assert_eq!(licenses(&s)[0][2], "2");
    assert_eq!(seated_users(&s), 3);
    let late = scim.post(
        "/Users",
        json!({"userName": "late@contoso.com", "active": true}),
    );
    let late = late.json()["id"].as_str().expect("id").to_string();
    let group = db_query(&s, "SELECT id FROM groups WHERE display_name = 'Staff'");
    let add = scim.patch(
        &format!("/Groups/{}", group[0][0]),
        json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": late}]}]}),
    );
    assert!(add.status == 204 || add.status == 200, "{}", add.text());
    assert_eq!(seated_users(&s), 3);
    let waiting = db_query(
        &s,
        &format!("SELECT state FROM seats WHERE user_id = '{late}'"),
    );
    assert_eq!(waiting, vec![vec!["pending".to_string()]]);
    let removed = scim.delete(&format!("/Users/{}", ids[0]));
    assert_eq!(removed.status, 204);
    assert_eq!(
        seated_users(&s),
        2,
        "the freed seat is not handed out over the new size"
    );
    let audit = db_query(
        &s,
        "SELECT action, detail FROM audit_log WHERE action = 'entitlement_imported' ORDER BY id",
    );
    assert_eq!(audit.len(), 2);
    assert!(audit[1][1].contains("\"serial\":2"), "{audit:?}");

    // The same file twice changes nothing; an older serial is refused.
    let (code, out) = import(&s, "e2b.jws", &mint(&entitlement("ent-1", 2, PRODUCT, 2)));
    assert!(code != 0 || out.contains("already imported"), "{out}");
    let (code, out) = import(&s, "e1b.jws", &mint(&entitlement("ent-1", 1, PRODUCT, 3)));
    assert_ne!(code, 0);
    assert!(out.contains("holds serial 2 of entitlement ent-1"), "{out}");
    assert_eq!(licenses(&s)[0][2], "2");
    let listed = ok(s.cli(&["license", "list"]));
    assert!(
        listed.contains("entitlement ent-1 serial 2: Contoso Ltd"),
        "{listed}"
    );
    // The vendor re-sending a lost file (minted again, same serial) changes nothing.
    let resent = Entitlement {
        issued_at: now() + 60,
        ..entitlement("ent-1", 2, PRODUCT, 2)
    };
    let (code, out) = import(&s, "e2c.jws", &mint(&resent));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("already imported"), "{out}");
    // Seats cannot be added by hand next to the vendor's (black-box round: they could).
    let (code, _, err) = s.cli(&[
        "license",
        "add",
        "--product",
        "parallels desktop",
        "--seats",
        "1000",
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("licensed by the vendor's entitlement ent-1"),
        "{err}"
    );
    assert_eq!(licenses(&s).len(), 1);
}

#[test]
fn importing_registers_a_license_entered_by_hand_keeping_its_mappings() {
    let s = server().start();
    let license = ok(s.cli(&["license", "add", "--product", PRODUCT, "--seats", "2"]))
        .trim()
        .to_string();
    ok(s.cli(&["group-map", "add", "--group", "Staff", "--primary"]));
    let scim = s.scim();
    staff(&scim, 3);
    assert_eq!(seated_users(&s), 2);
    let (code, out) = import(&s, "e.jws", &mint(&entitlement("ent-r", 1, PRODUCT, 3)));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "license {license}, entered by hand, now comes from the entitlement"
        )),
        "{out}"
    );
    assert_eq!(licenses(&s).len(), 1);
    assert_eq!(licenses(&s)[0][2], "3");
    assert_eq!(seated_users(&s), 3, "the waiting user got the new seat");
}

#[test]
fn hostile_entitlement_files_are_refused_with_one_sentence_and_change_nothing() {
    let s = server().start();
    let good = mint(&entitlement("ent-h", 5, PRODUCT, 10));
    assert_eq!(import(&s, "good.jws", &good).0, 0);
    let before = licenses(&s);

    let mut tampered = good.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let stranger = KeyPair::generate().expect("key");
    let by_stranger = entitlement("ent-h", 6, PRODUCT, 10)
        .sign(&stranger, "some-other-vendor")
        .expect("signs");
    let forged_dev_kid = entitlement("ent-h", 6, PRODUCT, 10)
        .sign(&stranger, entitlement::dev::DEV_KEY.kid)
        .expect("signs");
    let payload = entitlement::jws::b64url(
        serde_json::to_string(&entitlement("ent-h", 7, PRODUCT, 999))
            .expect("json")
            .as_bytes(),
    );
    let unsigned = |alg: &str| {
        let header = entitlement::jws::b64url(
            format!(r#"{{"alg":"{alg}","typ":"seatgate-entitlement+jws","kid":"seatgate-dev-1"}}"#)
                .as_bytes(),
        );
        format!("{header}.{payload}.")
    };
    let hs256 = {
        let header = entitlement::jws::b64url(
            br#"{"alg":"HS256","typ":"seatgate-entitlement+jws","kid":"seatgate-dev-1"}"#,
        );
        format!("{header}.{payload}.c2lnbmF0dXJl")
    };
    let mut bound = entitlement("ent-h", 8, PRODUCT, 10);
    bound.instance = Some("another-gateways-thumbprint".into());
    let mut expired = entitlement("ent-old", 1, PRODUCT, 10);
    expired.starts_at = now() - 400 * DAY;
    expired.ends_at = now() - DAY;
    let mut future = entitlement("ent-future", 1, PRODUCT, 10);
    future.starts_at = now() + 30 * DAY;
    let reused = mint(&entitlement("ent-h", 5, PRODUCT, 11));
    let registration = Request {
        format: 1,
        instance: stranger.thumbprint(),
        gateway_version: "0".into(),
        public_url: "https://x".into(),
        hostname: "x".into(),
        current: vec![],
        created_at: now(),
    }
    .sign(&stranger);

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "one byte changed",
            String::from_utf8(tampered).expect("ascii"),
            "not a valid entitlement",
        ),
        (
            "unknown key",
            by_stranger,
            "unknown key (\"some-other-vendor\")",
        ),
        (
            "a trusted kid, another key",
            forged_dev_kid,
            "signature does not verify",
        ),
        ("alg none", unsigned("none"), "only EdDSA is accepted"),
        ("HS256", hs256, "only EdDSA is accepted"),
        (
            "another gateway's",
            mint(&bound),
            "bound to another gateway",
        ),
        ("expired", mint(&expired), "ended on"),
        ("not started", mint(&future), "starts on"),
        (
            "serial reused",
            reused,
            "already imported with other contents",
        ),
        (
            "older serial",
            mint(&entitlement("ent-h", 4, PRODUCT, 10)),
            "newer than the file's serial 4",
        ),
        (
            "a registration request",
            registration,
            "not a \"seatgate-entitlement+jws\"",
        ),
        (
            "not a token",
            "hello\u{0}\n\u{1b}[31m".into(),
            "not a signed token",
        ),
        (
            "another customer's renewal",
            mint(&Entitlement {
                customer_id: "cus-evil".into(),
                ..entitlement("ent-h", 9, PRODUCT, 10)
            }),
            "names another customer",
        ),
        (
            "issued after the gateway's now",
            mint(&Entitlement {
                issued_at: now() + 3 * DAY,
                ..entitlement("ent-h", 9, PRODUCT, 10)
            }),
            "(CLOCK_SKEW)",
        ),
    ];
    for (what, token, says) in cases {
        let (code, out) = import(&s, "bad.jws", &token);
        assert_ne!(code, 0, "{what}: {out}");
        assert!(out.contains(says), "{what}: {out}");
        assert_eq!(out.trim().lines().count(), 1, "{what}: one sentence: {out}");
        assert_eq!(code, 1, "{what}: a refusal is a runtime failure");
        let coded = [
            "(ENTITLEMENT_INVALID)",
            "(ENTITLEMENT_OTHER_GATEWAY)",
            "(ENTITLEMENT_EXPIRED)",
            "(ENTITLEMENT_NOT_STARTED)",
            "(ENTITLEMENT_OUTDATED)",
            "(CLOCK_SKEW)",
        ];
        assert!(
            coded.iter().any(|c| out.trim_end().ends_with(c)),
            "{what}: a reason code: {out}"
        );
        assert_eq!(licenses(&s), before, "{what} changed a license");
    }
    // A 10 MB file is refused before it is read.
    let big = "A".repeat(10 * 1024 * 1024);
    let (code, out) = import(&s, "big.jws", &big);
    assert_ne!(code, 0);
    assert!(out.contains("is not an entitlement file"), "{out}");
    let imported = db_query(
        &s,
        "SELECT count(*) FROM audit_log WHERE action = 'entitlement_imported'",
    );
    assert_eq!(imported[0][0], "1");
}

#[test]
fn an_air_gapped_registration_binds_an_entitlement_to_this_gateway_across_restarts() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let mut s = server().data_dir(&data).start();
    let request_path = s.data_dir.join("../request.jws");
    let out = ok(s.cli(&["register", "--out", request_path.to_str().expect("utf8")]));
    let token = std::fs::read_to_string(&request_path).expect("request written");
    let request = Request::verify(&token).expect("the vendor can verify it");
    assert!(out.contains(&request.instance), "{out}");
    assert!(request.public_url.starts_with("http"), "{request:?}");

    let mut bound = entitlement("ent-b", 1, PRODUCT, 5);
    bound.instance = Some(request.instance.clone());
    let bound = mint(&bound);
    // The same instance after a restart: the key is stored, not regenerated.
    s.stop();
    let s = server().data_dir(&data).start();
    let again = ok(s.cli(&["register", "--out", request_path.to_str().expect("utf8")]));
    assert!(again.contains(&request.instance), "{again}");
    let (code, out) = import(&s, "bound.jws", &bound);
    assert_eq!(code, 0, "{out}");
    let listed = ok(s.cli(&["license", "list"]));
    assert!(listed.contains("bound to this gateway"), "{listed}");
    // A renewal request names what the gateway holds.
    ok(s.cli(&["register", "--out", request_path.to_str().expect("utf8")]));
    let renewal =
        Request::verify(&std::fs::read_to_string(&request_path).expect("read")).expect("verifies");
    assert_eq!(renewal.current.len(), 1);
    assert_eq!(renewal.current[0].entitlement_id, "ent-b");
}

#[test]
fn a_trial_expires_then_the_paid_entitlement_takes_over_its_license_and_seats() {
    let s = server().start();
    let mut trial: Entitlement = entitlement("ent-trial", 1, PRODUCT, 5);
    trial.trial = true;
    trial.ends_at = now() + 3;
    let (code, out) = import(&s, "trial.jws", &mint(&trial));
    assert_eq!(code, 0, "{out}");
    let license = imported_license(&out);
    let idp = crate::saml::TestIdp::new("https://idp.contoso.example/saml");
    crate::saml::connect(&s, "Contoso", "okta", "contoso.com", &idp.metadata());
    ok(s.cli(&["group-map", "add", "--group", "Staff", "--primary"]));
    let scim = s.scim();
    staff(&scim, 2);
    assert_eq!(seated_users(&s), 2);

    // After its end, activation is refused with LICENSE_EXPIRED and explain says why.
    let expired = crate::support::poll_until(std::time::Duration::from_secs(20), || {
        let out = ok(s.cli(&["explain", "user0@contoso.com", "--json"]));
        out.contains("LICENSE_EXPIRED")
    });
    assert!(expired, "{}", ok(s.cli(&["explain", "user0@contoso.com"])));

    // The paid entitlement (another id, same customer and product) takes over the same
    // license: nothing to re-map, and every device's lease names the same license.
    let (code, out) = import(
        &s,
        "paid.jws",
        &mint(&entitlement("ent-paid", 1, PRODUCT, 10)),
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "license {license} now runs on the paid entitlement"
        )),
        "{out}"
    );
    assert_eq!(licenses(&s).len(), 1);
    assert_eq!(licenses(&s)[0][2], "10");
    let explained = ok(s.cli(&["explain", "user0@contoso.com", "--json"]));
    assert!(!explained.contains("LICENSE_EXPIRED"), "{explained}");
    assert_eq!(seated_users(&s), 2);
    // The superseded trial cannot come back as a license of its own (black-box round:
    // it did, adding its seats to the paid ones), not even as a later serial.
    let mut again = trial.clone();
    again.ends_at = now() + 30 * DAY;
    for serial in [1, 2] {
        again.serial = serial;
        let (code, out) = import(&s, "trial-again.jws", &mint(&again));
        assert_ne!(code, 0, "{out}");
        assert!(
            out.contains("was replaced by entitlement ent-paid"),
            "{out}"
        );
        assert!(out.contains("(ENTITLEMENT_OUTDATED)"), "{out}");
    }
    assert_eq!(licenses(&s).len(), 1);
}

#[test]
fn the_portal_and_the_admin_api_import_entitlements_and_warn_before_the_end() {
    let s = server().start();
    let cookie = crate::portal::session(&s);
    let get = |path: &str| s.request("GET", path, &[("Cookie", &cookie)], b"");

    // The registration request, downloaded from the portal, is one the vendor can verify.
    let r = get("/admin/registration-request");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/jose"));
    Request::verify(r.text().trim()).expect("a valid registration request");

    // A pasted entitlement that ends in five days: imported, shown, and warned about.
    let mut soon = entitlement("ent-portal", 1, PRODUCT, 4);
    soon.ends_at = now() + 5 * DAY + 3600;
    let page = get("/admin/licenses").text();
    let r = crate::portal::submit(
        &s,
        &cookie,
        &page,
        "/admin/entitlements",
        &[("entitlement", &mint(&soon))],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let page = get("/admin/licenses").text();
    assert!(page.contains("From the vendor: Contoso Ltd"), "{page}");
    assert!(page.contains("This entitlement ends in 5 days"), "{page}");
    assert!(!page.contains("Change seats or expiry"), "{page}");
    // The log says it too, once (housekeeping checks every few seconds).
    assert!(
        s.wait_for_log(
            "entitlement ent-portal for Parallels Desktop ends in 5 day(s)",
            std::time::Duration::from_secs(20)
        ),
        "{}",
        s.log()
    );
    // The usage report downloads as a file the vendor can verify; a bad month is a 400.
    let month = crate::kit::vendor::month_of(now());
    let r = get(&format!("/admin/usage-report?month={month}"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-disposition"),
        Some(format!("attachment; filename=\"seatgate-usage-{month}.jws\"").as_str())
    );
    entitlement::usage::Report::verify(r.text().trim()).expect("a valid usage report");
    let r = get("/admin/usage-report?month=%222026-01");
    assert_eq!(r.status, 400, "{}", r.text());
    // A bad paste shows its sentence on the page.
    let r = crate::portal::submit(
        &s,
        &cookie,
        &page,
        "/admin/entitlements",
        &[("entitlement", "garbage")],
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("not a signed token"), "{}", r.text());

    // The admin API: 201 for a new license, 200 unchanged, a reason code for each refusal.
    let (_, out, _) = s.cli(&["admin-token", "create", "--name", "ops"]);
    let token = out.lines().last().expect("token").to_string();
    let auth = format!("Bearer {token}");
    let post = |body: &[u8]| {
        s.request(
            "POST",
            "/api/v1/admin/entitlements",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/jose"),
            ],
            body,
        )
    };
    let api = mint(&entitlement("ent-api", 3, "Other Product", 7));
    let r = post(api.as_bytes());
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["outcome"], "added");
    let wrapped = serde_json::to_vec(&json!({ "entitlement": api })).expect("json");
    let r = post(&wrapped);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["outcome"], "unchanged");
    let mut bound = entitlement("ent-api", 4, "Other Product", 7);
    bound.instance = Some("elsewhere".into());
    let mut tampered = api.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    for (body, status, reason) in [
        (tampered, 400, "ENTITLEMENT_INVALID"),
        (
            mint(&entitlement("ent-api", 2, "Other Product", 9)).into_bytes(),
            409,
            "ENTITLEMENT_OUTDATED",
        ),
        (mint(&bound).into_bytes(), 400, "ENTITLEMENT_OTHER_GATEWAY"),
    ] {
        let r = post(&body);
        assert_eq!(r.status, status, "{}", r.text());
        assert_eq!(r.json()["reason"], reason, "{}", r.text());
    }
    let r = post(&vec![b'A'; 10 * 1024 * 1024]);
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(licenses(&s).len(), 2);
}

#[test]
fn a_usage_report_shows_each_days_peak_signed_by_this_gateway_without_personal_data() {
    use entitlement::usage::Report;
    let s = server().start();
    let (code, out) = import(&s, "e.jws", &mint(&entitlement("ent-u", 1, PRODUCT, 5)));
    assert_eq!(code, 0, "{out}");
    ok(s.cli(&["group-map", "add", "--group", "Staff", "--primary"]));
    let scim = s.scim();
    let ids = staff(&scim, 3);
    // The peak stays when a seat is given back the same day.
    assert_eq!(scim.delete(&format!("/Users/{}", ids[2])).status, 204);

    let month = crate::kit::vendor::month_of(now());
    let path = s.data_dir.join("../usage.jws");
    let path = path.to_str().expect("utf8");
    let out = ok(s.cli(&["usage", "report", "--month", &month, "--out", path]));
    assert!(out.contains("without personal data"), "{out}");
    let report = Report::verify(std::fs::read_to_string(path).expect("read").trim())
        .expect("the vendor can verify it");
    let register = ok(s.cli(&["register", "--out", path]));
    assert!(
        register.contains(&report.instance),
        "signed by this gateway's instance key"
    );
    assert_eq!(report.month, month);
    assert_eq!(report.seat_holders, None);
    let product = &report.products[0];
    assert_eq!(
        (
            product.product.as_str(),
            product.entitlement_id.as_deref(),
            product.licensed_seats
        ),
        (PRODUCT, Some("ent-u"), 5)
    );
    let today = product.days.last().expect("today");
    assert_eq!(today.peak_seats, 3, "{report:?}");
    assert!(product.days.iter().rev().skip(1).all(|d| d.peak_seats == 0));

    // With the admin's consent, who holds a seat.
    ok(s.cli(&[
        "usage",
        "report",
        "--month",
        &month,
        "--out",
        path,
        "--include-users",
    ]));
    let report =
        Report::verify(std::fs::read_to_string(path).expect("read").trim()).expect("valid");
    assert_eq!(
        report.seat_holders,
        Some(vec![
            "user0@contoso.com".to_string(),
            "user1@contoso.com".to_string()
        ])
    );
    // Every report taken is on record, and whether it named people.
    let audited = db_query(
        &s,
        "SELECT detail FROM audit_log WHERE action = 'usage_report_exported' ORDER BY id",
    );
    assert_eq!(audited.len(), 2);
    assert!(audited[1][0].contains("\"user_names\":true"), "{audited:?}");
    // Months that are not one, or have not begun.
    for bad in ["2026-13", "next", "2999-01", " 2026-01", "0000-01"] {
        let (code, _, err) = s.cli(&["usage", "report", "--month", bad, "--out", path]);
        assert_eq!(code, 2, "{bad}: {err}");
        assert_eq!(
            err.lines().filter(|l| l.starts_with("seatgate: ")).count(),
            1,
            "{err}"
        );
    }
}

/// A clock set back must never extend an entitlement: a license end the gateway has seen
/// pass stays passed. (The test cannot move the server's clock back, so it moves the
/// gateway's record of the latest time it has seen forward, which is the same situation.)
#[test]
fn a_clock_set_back_never_brings_an_ended_license_back() {
    let s = server().start();
    let idp = crate::saml::TestIdp::new("https://idp.contoso.example/saml");
    crate::saml::connect(&s, "Contoso", "okta", "contoso.com", &idp.metadata());
    let mut e = entitlement("ent-clock", 1, PRODUCT, 5);
    e.ends_at = now() + 5 * DAY;
    assert_eq!(import(&s, "e.jws", &mint(&e)).0, 0);
    ok(s.cli(&["group-map", "add", "--group", "Staff", "--primary"]));
    let scim = s.scim();
    staff(&scim, 1);
    assert_eq!(seated_users(&s), 1);

    // The gateway has seen a time after the end (then its clock went back to now).
    let seen = now() + 10 * DAY;
    let conn = rusqlite::Connection::open(s.data_dir.join("seatgate.db")).expect("db");
    conn.execute(
        "INSERT INTO settings (key, value, updated_at) VALUES ('licensing_expiry_checked_at', ?1, ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [seen.to_string()],
    )
    .expect("seen");
    drop(conn);
    // The next decision treats the license as ended, though the clock says it runs.
    staff_member(&scim, "later@contoso.com");
    let explained = ok(s.cli(&["explain", "user0@contoso.com", "--json"]));
    assert!(explained.contains("LICENSE_EXPIRED"), "{explained}");
    // Nor can the file be imported again as if it were still valid.
    let mut renewal = e.clone();
    renewal.serial = 2;
    let (code, out) = import(&s, "again.jws", &mint(&renewal));
    assert_ne!(code, 0);
    assert!(out.contains("ended on"), "{out}");
}

fn staff_member(scim: &Scim<'_>, name: &str) {
    let r = scim.post("/Users", json!({"userName": name, "active": true}));
    assert_eq!(r.status, 201, "{}", r.text());
}
