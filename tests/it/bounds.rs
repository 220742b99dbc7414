//! Issue 11 item 4: what an unauthenticated client sends is bounded. Every field has a
//! length cap (400 FIELD_TOO_LONG, nothing stored), refused sign-ins do not grow the
//! database or the log, and client text cannot forge log lines.

use std::time::Duration;

use serde_json::json;

use crate::saml::{Mint, TestIdp, begin_with, connect, post_acs_at};
use crate::support::{HttpResponse, TestServer, db_query, encode, server};

const LOGIN: &str = "__Host-sg_login";

/// A login form's cookie and its CSRF value, reusable for many POSTs.
fn login_form(s: &TestServer) -> (String, String) {
    let page = s.get("/admin/login");
    assert_eq!(page.status, 200);
    let text = page.text();
    let at = text.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    let csrf = text[at..at + text[at..].find('"').expect("end")].to_string();
    (page.set_cookie(LOGIN).expect("login cookie"), csrf)
}

fn post_login(
    s: &TestServer,
    form: &(String, String),
    username: &str,
    password: &str,
) -> HttpResponse {
    let body = format!(
        "csrf={}&username={}&password={}",
        form.1,
        encode(username),
        encode(password)
    );
    s.request(
        "POST",
        "/admin/login",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", form.0.as_str()),
        ],
        body.as_bytes(),
    )
}

/// The database's size as SQLite sees it (pages in use, the WAL's included). The files'
/// sizes depended on whether a checkpoint from this second process got past the server's
/// readers, and the test failed now and then with the WAL's frames counted.
fn db_bytes(s: &TestServer) -> u64 {
    db_query(
        s,
        "SELECT (page_count - freelist_count) * page_size FROM pragma_page_count(), pragma_freelist_count(), pragma_page_size()",
    )[0][0]
        .parse()
        .expect("size")
}

fn reason(r: &HttpResponse) -> String {
    let text = r.text();
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["reason"].as_str().map(str::to_string))
        .unwrap_or(text)
}

#[test]
fn item4_refused_sign_ins_do_not_grow_the_database_or_the_log() {
    let s = server().config("[admin]\nlogin_failures = 1\n").start();
    let form = login_form(&s);
    let db_before = db_bytes(&s);
    let log_before = s.log().len();

    // The largest username the front admits for /admin (256 KiB bodies).
    let huge = "u".repeat(250 * 1024);
    for i in 0..200 {
        let r = post_login(&s, &form, &format!("{i}{huge}"), "guess-guess-guess");
        assert_eq!(r.status, 400, "attempt {i}");
        assert!(r.text().contains("FIELD_TOO_LONG"), "{}", r.text());
    }
    // Usernames within the cap: the limiter refuses after 4 failures (4 × 1 per address),
    // and its refusals are one row with a count.
    for i in 0..200 {
        let name = format!("{i:04}{}", "n".repeat(60));
        let r = post_login(&s, &form, &name, &"p".repeat(1024));
        assert_eq!(r.status, if i < 4 { 401 } else { 429 }, "attempt {i}");
    }
    assert_eq!(
        post_login(&s, &form, "x", &"p".repeat(1025)).status,
        400,
        "passwords are capped too"
    );
    assert_eq!(
        post_login(&s, &form, &"u".repeat(1024 * 1024), "x").status,
        413,
        "above the body cap the front refuses"
    );

    let grown = db_bytes(&s).saturating_sub(db_before);
    assert!(grown < 1024 * 1024, "the database grew by {grown} bytes");
    let logged = s.log().len() - log_before;
    assert!(logged < 256 * 1024, "stderr grew by {logged} bytes");

    let rows = db_query(
        &s,
        "SELECT outcome, count, length(identity) FROM sign_in_log ORDER BY id",
    );
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert!(rows[..4].iter().all(|r| r[0] == "INVALID_CREDENTIALS"));
    assert_eq!(rows[4][..2], ["TOO_MANY_REQUESTS", "196"], "{rows:?}");
    let (code, out, _) = s.cli(&["sign-in-log", "--failures", "--limit", "1"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("TOO_MANY_REQUESTS") && out.contains("196 attempts"),
        "{out}"
    );
}

#[test]
fn item4_oversized_emails_and_device_fields_are_refused_and_nothing_stored() {
    let s = server().start();
    let idp = TestIdp::new("https://idp.contoso.example/saml");
    connect(&s, "Contoso", "okta", "contoso.com", &idp.metadata());
    let long_email = format!("{}@contoso.com", "a".repeat(8 * 1024));
    let megabyte = format!("{}@contoso.com", "a".repeat(1024 * 1024));

    for path in ["/admin/sso", "/saml/login"] {
        let r = s.get(&format!("{path}?email={}", encode(&long_email)));
        assert_eq!(r.status, 400, "{path}");
        assert!(r.text().contains("FIELD_TOO_LONG"), "{path}: {}", r.text());
        let r = s.get(&format!("{path}?email={}", encode(&megabyte)));
        assert_eq!(r.status, 431, "{path}: the front caps the head");
        let email_255 = format!("{}@contoso.com", "a".repeat(255 - 12));
        let r = s.get(&format!("{path}?email={}", encode(&email_255)));
        assert!(r.text().contains("FIELD_TOO_LONG"), "{path}: 255 bytes");
    }

    let activation = |email: &str, name: &str, os: &str| {
        let body = json!({
            "email": email,
            "device": {
                "public_key": {"kty": "OKP", "crv": "Ed25519", "x": seatgate::crypto::b64url(&seatgate::crypto::random_bytes(32))},
                "name": name,
                "os": os,
            },
        });
        s.request(
            "POST",
            "/api/v1/activations",
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
    };
    let ok = activation("ryan@contoso.com", &"M".repeat(128), &"m".repeat(128));
    assert_eq!(ok.status, 201, "{}", ok.text());
    for (what, r) in [
        ("email", activation(&long_email, "Mac", "macOS")),
        (
            "name",
            activation("ryan@contoso.com", &"M".repeat(129), "macOS"),
        ),
        (
            "name (UTF-8)",
            activation("ryan@contoso.com", &"é".repeat(65), "macOS"),
        ),
        (
            "os",
            activation("ryan@contoso.com", "Mac", &"m".repeat(129)),
        ),
    ] {
        assert_eq!(
            (r.status, reason(&r)),
            (400, "FIELD_TOO_LONG".into()),
            "{what}"
        );
    }
    assert_eq!(activation(&megabyte, "Mac", "macOS").status, 413);

    let stored = db_query(
        &s,
        "SELECT (SELECT count(*) FROM activations), (SELECT count(*) FROM saml_requests),
                (SELECT count(*) FROM sign_in_log)",
    );
    assert_eq!(
        stored,
        [["1", "0", "0"]],
        "only the valid activation is stored"
    );
}

#[test]
#[ignore = "needs the xmlsec1 CLI; scripts/test runs it"]
fn item4_control_characters_from_clients_do_not_forge_log_lines() {
    let s = server().start();
    let form = login_form(&s);
    // A username with a line break is refused before anything is logged or stored.
    let r = post_login(
        &s,
        &form,
        "x\nFORGED-LINE admin signed in",
        "guess-guess-guess",
    );
    assert_eq!(r.status, 400, "{}", r.text());

    // An IdP's NameID is client text too (the IdP is not the log's author).
    let idp = TestIdp::new("https://idp.contoso.example/saml");
    let c = connect(&s, "Contoso", "okta", "contoso.com", &idp.metadata());
    let base = format!("https://127.0.0.1:{}", s.addr.port());
    let (id, relay, cookie) = begin_with(&s, &format!("/saml/login/{c}"));
    let mut m = Mint::valid(&idp, &base, &id);
    m.acs = format!("{base}/saml/acs/{c}");
    m.recipient = m.acs.clone();
    m.name_id = "ryan\r\nFORGED-LINE ryan@contoso.com".into();
    let r = post_acs_at(&s, &c, &idp.sign(&m.xml()), &relay, Some(&cookie));
    assert!(r.status < 500, "{}", r.text());
    let attempts = db_query(&s, "SELECT method FROM sign_in_log ORDER BY id");
    assert_eq!(
        attempts,
        [["saml"]],
        "the sign-in was handled, the refused username never stored"
    );
    let log = s.log();
    assert!(
        log.lines()
            .filter(|l| l.contains("FORGED-LINE"))
            .all(|l| l.starts_with('[')),
        "a client started a log line:\n{log}"
    );
}

/// A `POST /api/v1/activations` body for a fresh device key.
fn activation_body(email: &str) -> Vec<u8> {
    let x = seatgate::crypto::b64url(&seatgate::crypto::random_bytes(32));
    json!({"email": email, "device": {"public_key": {"kty": "OKP", "crv": "Ed25519", "x": x}}})
        .to_string()
        .into_bytes()
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

/// Issue 12 item 6: 54,006 activations and 62,895 SAML requests in 20 s took the database
/// from 0.3 to 94 MB. Every request that stores a row before sign-in (activations, SSO
/// starts) now passes a per-client and a global limit (429 with Retry-After), so a flood
/// from one address stores only its burst, and another address is still served.
#[test]
fn item6_pre_auth_flood_is_limited_and_the_database_stays_small() {
    let s = server().plain_http().start();
    let idp = TestIdp::new("https://idp.contoso.example/saml");
    connect(&s, "Contoso", "okta", "contoso.com", &idp.metadata());
    let db_before = db_bytes(&s);
    let started = std::time::Instant::now();
    let (mut stored, mut limited) = (0u64, 0u64);
    let mut c = s.connect();
    for i in 0..3000 {
        match i % 3 {
            0 => c.send(
                "POST",
                "/api/v1/activations",
                &[JSON],
                &activation_body("ryan@contoso.com"),
            ),
            1 => c.send("GET", "/saml/login?email=ryan%40contoso.com", &[], b""),
            _ => c.send("GET", "/admin/sso?email=ryan%40contoso.com", &[], b""),
        }
        let r = c.read_response();
        match r.status {
            201 | 302 | 303 => stored += 1,
            429 => {
                limited += 1;
                let retry: u32 = r
                    .header("retry-after")
                    .and_then(|v| v.parse().ok())
                    .expect("429 carries an integer Retry-After");
                assert!(retry >= 1);
                assert!(r.text().contains("TOO_MANY_REQUESTS"), "{}", r.text());
            }
            other => panic!("request {i}: unexpected {other}: {}", r.text()),
        }
    }
    // The default burst (60) plus the steady rate (2/s) over the flood's duration.
    let bound = 60 + 2 * (started.elapsed().as_secs() + 1);
    assert!(stored <= bound, "{stored} rows stored (bound {bound})");
    assert!(limited >= 3000 - bound, "{limited} refused");
    let rows: u64 = db_query(
        &s,
        "SELECT (SELECT count(*) FROM activations) + (SELECT count(*) FROM saml_requests)",
    )[0][0]
        .parse()
        .expect("count");
    assert_eq!(
        rows, stored,
        "one row per admitted request, none per refusal"
    );
    let grown = db_bytes(&s).saturating_sub(db_before);
    assert!(grown < 512 * 1024, "the database grew by {grown} bytes");

    // Another client address is unaffected by the flooder's limit.
    let other = std::net::Ipv4Addr::new(127, 0, 0, 2);
    let r = s.request_from(
        other,
        "POST",
        "/api/v1/activations",
        &[JSON],
        &activation_body("kim@contoso.com"),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = s.request_from(
        other,
        "GET",
        "/saml/login?email=kim%40contoso.com",
        &[],
        b"",
    );
    assert_eq!(r.status, 302, "{}", r.text());
    let r = s.request_from(other, "GET", "/admin/sso?email=kim%40contoso.com", &[], b"");
    assert_eq!(r.status, 303, "{}", r.text());
}

/// Issue 12 item 6: the tables behind the limits are capped too; the oldest unfinished
/// activation or SAML request makes room for a new one.
#[test]
fn item6_outstanding_activations_and_requests_are_capped_oldest_first() {
    let s = server()
        .plain_http()
        .config(
            "[pre_auth]\nmax_outstanding = 20\nper_client_per_minute = 0\nglobal_per_minute = 0\n",
        )
        .start();
    let idp = TestIdp::new("https://idp.contoso.example/saml");
    connect(&s, "Contoso", "okta", "contoso.com", &idp.metadata());
    let mut codes = Vec::new();
    for i in 0..30 {
        if i == 15 {
            // Activations are ordered to the second: the second half starts a second later.
            let second = seatgate::clock::now_unix();
            crate::support::wait_until(
                std::time::Duration::from_secs(2),
                "the next second",
                || seatgate::clock::now_unix() > second,
            );
        }
        let r = s.request(
            "POST",
            "/api/v1/activations",
            &[JSON],
            &activation_body("ryan@contoso.com"),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        codes.push(r.json()["device_code"].as_str().expect("code").to_string());
        assert_eq!(s.get("/saml/login?email=ryan%40contoso.com").status, 302);
    }
    let count = |sql: &str| db_query(&s, sql)[0][0].clone();
    assert_eq!(count("SELECT count(*) FROM activations"), "20");
    assert_eq!(count("SELECT count(*) FROM saml_requests"), "20");
    let poll = |code: &str| {
        s.request(
            "POST",
            "/api/v1/activations/token",
            &[JSON],
            json!({"device_code": code}).to_string().as_bytes(),
        )
        .json()["error"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let polls: Vec<String> = codes.iter().map(|c| poll(c)).collect();
    let pending = |range: std::ops::Range<usize>| {
        polls[range]
            .iter()
            .filter(|p| *p == "authorization_pending")
            .count()
    };
    assert_eq!(pending(15..30), 15, "the newest stay: {polls:?}");
    assert_eq!(pending(0..15), 5, "only the oldest were dropped: {polls:?}");
    assert!(
        polls
            .iter()
            .all(|p| p == "authorization_pending" || p == "expired_token")
    );
    let first_ids = db_query(&s, "SELECT min(rowid) FROM saml_requests")[0][0].clone();
    assert_eq!(first_ids, "11", "SAML requests go strictly oldest first");
}

/// Black-box round (issue 14): every request without a SCIM token was written to the SCIM
/// request log, so anyone could push the IdP's own entries out of it. They are logged a
/// few per client, then one a minute.
#[test]
fn unauthenticated_scim_requests_cannot_flood_the_request_log() {
    let s = server().start();
    let rows = || {
        crate::support::db_query(&s, "SELECT count(*) FROM scim_requests")[0][0]
            .parse::<i64>()
            .expect("count")
    };
    let before = rows();
    for i in 0..200 {
        let r = s.request("GET", &format!("/scim/v2/Users/flood{i}"), &[], b"");
        assert_eq!(r.status, 401);
    }
    // The log is written in batches by a background thread: wait until it settles.
    crate::support::wait_until(
        Duration::from_secs(10),
        "the first refusals in the log",
        || rows() > before,
    );
    std::thread::sleep(Duration::from_millis(1500)); // nothing to observe: more must NOT come
    let logged = rows() - before;
    assert!(
        (1..=5).contains(&logged),
        "{logged} of 200 unauthenticated requests were logged"
    );
    // An IdP with its token is logged every time.
    let scim = s.scim();
    for _ in 0..20 {
        assert_eq!(scim.get("/Users").status, 200);
    }
    crate::support::wait_until(
        Duration::from_secs(10),
        "the IdP's requests in the log",
        || rows() >= before + logged + 20,
    );
}
