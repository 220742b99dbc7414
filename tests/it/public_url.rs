//! Issue 13 item 7: the public URL after a port change. A URL only derived from the
//! listener follows it (sign-in keeps working on the new port); one typed at setup stays;
//! a form sent from another address is refused with ORIGIN_MISMATCH naming both addresses,
//! and every portal page opened at another address says so in a banner.

use std::path::Path;
use std::time::Duration;

use crate::support::{HttpResponse, TestServer, encode, server};

const LOGIN: &str = "__Host-sg_login";
const SESSION: &str = "__Host-sg_admin";
const PASSWORD: &str = "correct horse battery";

fn field(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = page
        .find(&marker)
        .unwrap_or_else(|| panic!("{name}: {page}"));
    let rest = &page[at + marker.len()..];
    rest[..rest.find('"').expect("end")].to_string()
}

/// First-run setup through the form, leaving the public URL as shown or typing `typed`.
fn set_up(s: &TestServer, typed: Option<&str>) -> String {
    assert!(s.wait_for_log("first-run setup", Duration::from_secs(5)));
    let link = std::fs::read_to_string(s.data_dir.join("setup-link.txt")).expect("link");
    let token = link
        .lines()
        .last()
        .and_then(|l| l.split_once('#'))
        .map(|(_, t)| t.to_string())
        .expect("token");
    let shown = field(&s.get("/setup").text(), "public_url");
    let url = typed.map_or(shown.clone(), str::to_string);
    let body = format!(
        "token={token}&username=owner&password={p}&confirm={p}&public_url={}",
        encode(&url),
        p = encode(PASSWORD)
    );
    let done = s.request(
        "POST",
        "/setup",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    );
    assert_eq!(done.status, 303, "{}", done.text());
    shown
}

/// The break-glass sign-in form, sent as a browser at `origin` would.
fn sign_in(s: &TestServer, host: &str, origin: &str) -> HttpResponse {
    let page = s.request("GET", "/admin/login", &[("Host", host)], b"");
    assert_eq!(page.status, 200);
    let cookie = page.set_cookie(LOGIN).expect("login cookie");
    let body = format!(
        "csrf={}&username=owner&password={}",
        field(&page.text(), "csrf"),
        encode(PASSWORD)
    );
    s.request(
        "POST",
        "/admin/login",
        &[
            ("Host", host),
            ("Origin", origin),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &cookie),
        ],
        body.as_bytes(),
    )
}

fn restart(s: &mut TestServer, dir: &Path) -> TestServer {
    s.stop();
    let next = server().data_dir(dir).start();
    assert_ne!(next.addr.port(), s.addr.port(), "a new port");
    next
}

#[test]
fn item7_a_derived_public_url_follows_the_listener_and_sign_in_keeps_working() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("data");
    let mut first = server().data_dir(&dir).start();
    let old = set_up(&first, None);
    assert_eq!(old, format!("https://127.0.0.1:{}", first.addr.port()));
    let old_host = old.trim_start_matches("https://").to_string();
    assert_eq!(sign_in(&first, &old_host, &old).status, 303);

    let s = restart(&mut first, &dir);
    let new = format!("https://127.0.0.1:{}", s.addr.port());
    let new_host = new.trim_start_matches("https://").to_string();
    assert!(
        s.wait_for_log(&format!("ready at {new}"), Duration::from_secs(5)),
        "the public URL moved with the listener: {}",
        s.log()
    );
    assert!(
        s.log().contains(&format!(
            "changed from {old} to {new}: identity providers need"
        )),
        "the move is said once, for the IdPs: {}",
        s.log()
    );

    // A correct password at the new address signs in (it used to say "form expired").
    let ok = sign_in(&s, &new_host, &new);
    assert_eq!(
        (ok.status, ok.header("location")),
        (303, Some("/admin")),
        "{}",
        ok.text()
    );
    let session = ok.set_cookie(SESSION).expect("session");
    let overview = s.request(
        "GET",
        "/admin",
        &[("Host", &new_host), ("Cookie", &session)],
        b"",
    );
    assert_eq!(overview.status, 200);
    assert!(
        !overview.text().contains("Wrong address"),
        "{}",
        overview.text()
    );

    // SAML: the SP entity ID and ACS URLs are built from the same public URL.
    let metadata = s.get("/saml/metadata").text();
    assert!(
        metadata.contains(&format!("entityID=\"{new}/saml/metadata\"")),
        "{metadata}"
    );
    assert!(!metadata.contains(&old), "{metadata}");
}

#[test]
fn item7_another_address_gets_a_banner_and_origin_mismatch_not_form_expired() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("data");
    let mut first = server().data_dir(&dir).start();
    let old = set_up(&first, None);
    let s = restart(&mut first, &dir);
    let new = format!("https://127.0.0.1:{}", s.addr.port());
    let new_host = new.trim_start_matches("https://").to_string();
    let old_host = old.trim_start_matches("https://").to_string();

    // The old address (a bookmark, a port forward): the login page says what is wrong.
    let page = s.request("GET", "/admin/login", &[("Host", &old_host)], b"");
    let text = page.text();
    assert!(text.contains("Wrong address"), "{text}");
    assert!(
        text.contains(&format!(
            "opened at {old_host} but this gateway&#39;s public URL is {new}"
        )) || text.contains(&format!(
            "opened at {old_host} but this gateway's public URL is {new}"
        )),
        "{text}"
    );
    assert!(text.contains("--public-url"), "{text}");
    let right = s.request("GET", "/admin/login", &[("Host", &new_host)], b"");
    assert!(!right.text().contains("Wrong address"), "{}", right.text());

    // The right password from the old Origin: refused, naming the cause, no session.
    let refused = sign_in(&s, &old_host, &old);
    assert_eq!(refused.status, 403, "{}", refused.text());
    let text = refused.text();
    assert!(text.contains("ORIGIN_MISMATCH"), "{text}");
    assert!(!text.contains("expired"), "{text}");
    assert!(text.contains(&new), "{text}");
    assert!(refused.set_cookie(SESSION).is_none());
    // The log line is written as the refusal is answered: wait for it, not race it.
    assert!(
        s.wait_for_log(
            &format!("Origin \"{old}\" is not {new}"),
            std::time::Duration::from_secs(10)
        ),
        "{}",
        s.log()
    );

    // Inside the portal: the banner, and a form from the other address is refused by name.
    let session = sign_in(&s, &new_host, &new)
        .set_cookie(SESSION)
        .expect("session");
    let wrong = s.request(
        "GET",
        "/admin",
        &[("Host", &old_host), ("Cookie", &session)],
        b"",
    );
    assert_eq!(wrong.status, 200);
    assert!(wrong.text().contains("Wrong address"), "{}", wrong.text());
    let csrf = field(&wrong.text(), "csrf");
    let out = s.request(
        "POST",
        "/admin/logout",
        &[
            ("Host", &old_host),
            ("Origin", &old),
            ("Cookie", &session),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        format!("csrf={csrf}").as_bytes(),
    );
    assert_eq!(out.status, 403);
    assert!(out.text().contains("ORIGIN_MISMATCH"), "{}", out.text());
    // The next page on the same app threads carries no stale banner.
    let again = s.request(
        "GET",
        "/admin",
        &[("Host", &new_host), ("Cookie", &session)],
        b"",
    );
    assert_eq!(again.status, 200, "the refused sign-out changed nothing");
    assert!(!again.text().contains("Wrong address"));
}

#[test]
fn item7_a_public_url_typed_at_setup_stays_after_a_port_change() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("data");
    let mut first = server().data_dir(&dir).start();
    let chosen = "https://gw.example.test:8443";
    set_up(&first, Some(chosen));
    let s = restart(&mut first, &dir);
    assert!(
        s.wait_for_log(&format!("ready at {chosen}"), Duration::from_secs(5)),
        "{}",
        s.log()
    );
    assert!(!s.log().contains("changed from"), "{}", s.log());
    let metadata = s.get("/saml/metadata").text();
    assert!(
        metadata.contains(&format!("entityID=\"{chosen}/saml/metadata\"")),
        "{metadata}"
    );
    // The listener's own address is not the public URL: refused by name, with the banner.
    let here = format!("https://127.0.0.1:{}", s.addr.port());
    let refused = sign_in(&s, here.trim_start_matches("https://"), &here);
    assert_eq!(refused.status, 403);
    let text = refused.text();
    assert!(
        text.contains("ORIGIN_MISMATCH") && text.contains("chosen at first-run setup"),
        "{text}"
    );
    // At the chosen address (a proxy or DNS name in front), it works.
    let ok = sign_in(&s, "gw.example.test:8443", chosen);
    assert_eq!(ok.status, 303, "{}", ok.text());
}
