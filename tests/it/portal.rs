//! The admin portal over real HTTPS with the real binary: first-run setup, licenses and
//! mappings through forms, IdP connection setup, SCIM tokens shown once, users and the
//! audit log with CSV exports, and the admin JSON API with its own tokens.

use serde_json::{Value, json};

use crate::demo::form_containing;
use crate::support::{HttpResponse, TestServer, db_query, server};

const SESSION: &str = "__Host-sg_admin";

/// A signed-in portal session (break-glass admin through a one-time link).
/// The path of a new one-time sign-in link for the break-glass admin `root`.
pub(crate) fn login_link_path(s: &TestServer) -> String {
    let (code, link, err) = s.cli(&["admin", "login-link", "--username", "root"]);
    assert_eq!(code, 0, "{err}");
    link.trim()
        .split_once("/admin/")
        .map(|(_, p)| format!("/admin/{p}"))
        .expect("link")
}

pub(crate) fn session(s: &TestServer) -> String {
    let (code, _, err) = s.cli(&["admin", "set-password", "--username", "root", "--generate"]);
    assert_eq!(code, 0, "{err}");
    let r = s.get(&login_link_path(s));
    assert_eq!(r.status, 303, "{}", r.text());
    r.set_cookie(SESSION).expect("session")
}

pub(crate) fn get(s: &TestServer, path: &str, cookie: &str) -> HttpResponse {
    s.request("GET", path, &[("Cookie", cookie)], b"")
}

/// The secret a page shows once.
pub(crate) fn shown_token(page: &str) -> String {
    page.split("code class=\"copy token\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .expect("token shown")
        .to_string()
}

/// Fills the form of `page` holding `marker` with `values` and submits it.
pub(crate) fn submit(
    s: &TestServer,
    cookie: &str,
    page: &str,
    marker: &str,
    values: &[(&str, &str)],
) -> HttpResponse {
    let (action, mut fields) = form_containing(page, marker);
    for (k, v) in values {
        fields.retain(|(name, _)| name != k);
        fields.push((k.to_string(), v.to_string()));
    }
    s.request(
        "POST",
        &action,
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", cookie),
        ],
        crate::support::form_body(&fields).as_bytes(),
    )
}

#[test]
fn first_run_setup_creates_the_admin_and_offers_the_ca() {
    let s = server().start();
    assert!(s.wait_for_log("first-run setup", std::time::Duration::from_secs(5)));
    let link = std::fs::read_to_string(s.data_dir.join("setup-link.txt")).expect("link file");
    let token = link
        .lines()
        .last()
        .and_then(|l| l.split_once('#'))
        .map(|(_, t)| t.to_string())
        .expect("token");
    let page = s.get("/setup");
    assert_eq!(page.status, 200);
    assert!(
        page.text().contains("/admin/assets/setup.js"),
        "the fragment is read by a script"
    );
    assert_eq!(s.get("/admin/assets/setup.js").status, 200);
    let public_url = format!("https://localhost:{}", s.addr.port());
    let form = |token: &str, password: &str, confirm: &str| {
        format!(
            "token={token}&username=owner&password={password}&confirm={confirm}&public_url={}",
            crate::support::encode(&public_url)
        )
    };
    let post = |body: String| {
        s.request(
            "POST",
            "/setup",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
    };
    let wrong = post(form(
        "not-the-token",
        "correct horse battery",
        "correct horse battery",
    ));
    assert_eq!(wrong.status, 400);
    assert!(
        wrong.text().contains("setup code is wrong"),
        "{}",
        wrong.text()
    );
    assert!(
        !wrong.text().contains("value=\"not-the-token\""),
        "a wrong code is not offered again"
    );
    let mismatch = post(form(
        &token,
        "correct horse battery",
        "correct horse batterY",
    ));
    assert_eq!(mismatch.status, 400);
    // Issue 16 item 1: the refused form keeps the code, the username and the URL, never
    // a password.
    let kept = mismatch.text();
    assert!(kept.contains("The two passwords differ."), "{kept}");
    assert!(kept.contains(&format!("value=\"{token}\"")), "{kept}");
    assert!(kept.contains("value=\"owner\""), "{kept}");
    assert!(kept.contains(&format!("value=\"{public_url}\"")), "{kept}");
    assert!(!kept.contains("correct horse"), "{kept}");
    let short = post(form(&token, "short", "short"));
    assert_eq!(short.status, 400, "{}", short.text());

    // The whole link pasted into the code field works as well as the code.
    let pasted = format!("{public_url}/setup#{token}");
    let done = post(form(
        &crate::support::encode(&pasted),
        "correct horse battery",
        "correct horse battery",
    ));
    assert_eq!(done.status, 303, "{}", done.text());
    assert_eq!(done.header("location"), Some("/admin/welcome"));
    let audit = s.cli(&["audit", "--action", "local_admin_created"]).1;
    assert!(audit.contains("setup local_admin_created"), "{audit}");
    let cookie = done.set_cookie(SESSION).expect("signed in");
    let welcome = get(&s, "/admin/welcome", &cookie);
    assert!(
        welcome.text().contains("/admin/tls/ca.pem"),
        "{}",
        welcome.text()
    );
    let ca = get(&s, "/admin/tls/ca.pem", &cookie);
    assert_eq!(ca.status, 200);
    assert!(ca.text().starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(ca.text(), std::fs::read_to_string(s.ca_path()).expect("ca"));

    // Used once: the link is spent and setup is over.
    let again = post(form(
        &token,
        "another good password",
        "another good password",
    ));
    assert_eq!(again.status, 303);
    assert_eq!(again.header("location"), Some("/admin/login"));
    let (_, admins, _) = s.cli(&["admin", "list"]);
    assert!(admins.starts_with("owner\t"), "{admins}");
}

#[test]
fn licenses_mappings_users_and_audit_through_the_portal() {
    let s = server().start();
    let cookie = session(&s);
    let page = get(&s, "/admin/licenses", &cookie).text();
    let r = submit(
        &s,
        &cookie,
        &page,
        "Register",
        &[("product", "Pro"), ("seats", "3"), ("key", "PRO-1234-5678")],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let page = get(&s, "/admin/licenses", &cookie).text();
    assert!(
        page.contains("…5678") && !page.contains("PRO-1234-5678"),
        "the key is masked"
    );
    // A reserved sublicense larger than the license is refused with the reason, on the page.
    let r = submit(
        &s,
        &cookie,
        &page,
        "Add sublicense",
        &[("name", "Eng"), ("seats", "4"), ("allocation", "reserved")],
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("more than the license"), "{}", r.text());
    // Issue 16 item 1: the refused form is shown as it was sent.
    let (_, kept) = form_containing(&r.text(), "Add sublicense");
    for (name, value) in [("name", "Eng"), ("seats", "4")] {
        assert!(
            kept.iter().any(|(k, v)| k == name && v == value),
            "{name} kept: {kept:?}"
        );
    }
    assert!(
        r.text().contains("<option value=\"reserved\" selected>"),
        "{}",
        r.text()
    );
    let r = submit(
        &s,
        &cookie,
        &page,
        "Add sublicense",
        &[("name", "Eng"), ("seats", "1"), ("allocation", "reserved")],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let page = get(&s, "/admin/licenses", &cookie).text();
    let (_, fields) = form_containing(&page, "Add mapping");
    let _ = fields;
    let eng_option = page
        .split("option value=\"sublicense:")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("sublicense option")
        .to_string();
    let r = submit(
        &s,
        &cookie,
        &page,
        "Add mapping",
        &[
            ("group", "Engineers"),
            ("role", &format!("sublicense:{eng_option}")),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    // A form without the session's CSRF token changes nothing.
    let forged = s.request(
        "POST",
        "/admin/mappings",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &cookie),
        ],
        b"csrf=forged&group=Everyone&role=admins",
    );
    assert_eq!(forged.status, 403);
    let (_, maps, _) = s.cli(&["group-map", "list"]);
    assert!(
        maps.contains("Engineers") && !maps.contains("Everyone"),
        "{maps}"
    );

    let scim = s.scim();
    let ids: Vec<String> = ["ann", "=cmd|' /C calc'!A0"]
        .iter()
        .map(|n| {
            let r = scim.post(
                "/Users",
                json!({"userName": format!("{n}@contoso.com"), "active": true}),
            );
            assert_eq!(r.status, 201, "{}", r.text());
            r.json()["id"].as_str().expect("id").to_string()
        })
        .collect();
    let members: Vec<Value> = ids.iter().map(|i| json!({"value": i})).collect();
    assert_eq!(
        scim.post(
            "/Groups",
            json!({"displayName": "Engineers", "members": members})
        )
        .status,
        201
    );

    let licenses = get(&s, "/admin/licenses", &cookie).text();
    assert!(
        licenses.contains("1 / 1 / 0 of 1"),
        "Eng: one used, one pending: {licenses}"
    );
    assert!(licenses.contains("<svg"), "usage bars");
    // Sublicenses are edited in place: one more seat, and the waiting engineer gets it.
    let r = submit(&s, &cookie, &licenses, "Save Eng", &[("seats", "2")]);
    assert_eq!(r.status, 303, "{}", r.text());
    let licenses = get(&s, "/admin/licenses", &cookie).text();
    assert!(licenses.contains("2 / 0 / 0 of 2"), "{licenses}");
    // Issue 16 item 3: the page after a change says what it did, once.
    assert!(
        licenses.contains("Saved the sublicense: 2 seats, no expiry. 1 person received a seat."),
        "{licenses}"
    );
    assert!(
        !get(&s, "/admin/licenses", &cookie)
            .text()
            .contains("Saved the sublicense"),
        "shown once"
    );
    // Issue 16 item 11: a license's offline limit, set on the page.
    let refused = submit(
        &s,
        &cookie,
        &licenses,
        "Save the offline limit",
        &[("days", "0")],
    );
    assert_eq!(refused.status, 400);
    assert!(
        refused.text().contains("from 1 to 365"),
        "{}",
        refused.text()
    );
    assert!(
        refused.text().contains("value=\"0\""),
        "the refused value is kept"
    );
    let r = submit(
        &s,
        &cookie,
        &licenses,
        "Save the offline limit",
        &[("days", "3")],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let after = get(&s, "/admin/licenses", &cookie).text();
    assert!(
        after.contains("work at most 3 days without reaching the gateway"),
        "{after}"
    );
    assert_eq!(
        db_query(&s, "SELECT max_offline_secs FROM licenses")[0][0],
        (3 * 86_400).to_string()
    );
    // Removing a mapping needs its box ticked; without it, nothing changes.
    let (action, fields) = form_containing(&licenses, "Remove the mapping of Engineers");
    let without_box: Vec<(String, String)> =
        fields.into_iter().filter(|(k, _)| k != "confirm").collect();
    let unconfirmed = s.request(
        "POST",
        &action,
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &cookie),
        ],
        crate::support::form_body(&without_box).as_bytes(),
    );
    assert_eq!(unconfirmed.status, 400, "{}", unconfirmed.text());
    assert!(
        unconfirmed.text().contains("Tick the box"),
        "{}",
        unconfirmed.text()
    );
    assert!(s.cli(&["group-map", "list"]).1.contains("Engineers"));
    let r = submit(&s, &cookie, &licenses, "Remove Eng", &[("confirm", "yes")]);
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("group mapping(s) still grant seats"),
        "{}",
        r.text()
    );
    let overview = get(&s, "/admin", &cookie).text();
    assert!(
        overview.contains("<h2>Seats</h2>")
            && overview.contains("Primary pool</td><td>0 / 0 / 1 of 1"),
        "the overview shows every pool: {overview}"
    );

    let users = get(&s, "/admin/users?q=ann", &cookie).text();
    assert!(
        users.contains("ann@contoso.com") && users.contains("1 user(s)"),
        "{users}"
    );
    let csv = get(&s, "/admin/users.csv", &cookie);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    let text = csv.text();
    assert!(text.starts_with("\"id\",\"user_name\""), "{text}");
    assert!(text.contains("\"'=cmd|"), "formulas are defused: {text}");

    let audit = get(
        &s,
        "/admin/audit?user=ann%40contoso.com&action=seat_granted",
        &cookie,
    )
    .text();
    assert!(
        audit.contains("<code>seat_granted</code>") && !audit.contains("<code>seat_pending</code>"),
        "{audit}"
    );
    // Issue 16 item 2: each entry is a sentence with names and dates, the stored entry
    // behind a disclosure, times marked for the browser's time zone.
    let log = get(&s, "/admin/audit", &cookie).text();
    for said in [
        "ann@contoso.com received a seat from the Eng sublicense.",
        "root mapped the group Engineers to a seat from the Eng sublicense.",
        "root registered Pro: 3 seats, no expiry.",
        "root limited leases of Pro (",
    ] {
        assert!(log.contains(said), "{said} missing from:\n{log}");
    }
    assert!(
        !log.contains("Primary {") && !log.contains("Sublicense {"),
        "no Rust debug text"
    );
    assert!(log.contains("<details class=\"raw\">"), "{log}");
    assert!(log.contains("<time class=\"local\" datetime=\""), "{log}");
    let all = get(&s, "/admin/audit.csv?action=mapping_added", &cookie).text();
    assert!(
        all.contains("admin:root") && all.contains("Engineers"),
        "{all}"
    );
    assert_eq!(all.lines().count(), 2, "{all}");
    let nobody = get(&s, "/admin/audit?user=ghost%40contoso.com", &cookie).text();
    assert!(nobody.contains("No user"), "{nobody}");
}

/// Item 9.4 of issue 11: a displayName that is a formula behind blanks or in full-width
/// form is exported with a leading `'`, so a spreadsheet shows it as text.
#[test]
fn item9_4_csv_export_defuses_formulas_behind_blanks_and_full_width_signs() {
    let s = server().start();
    let scim = s.scim();
    let names = [
        (
            "nbsp@contoso.com",
            "\u{a0}=HYPERLINK(\"https://evil.example\",\"x\")",
        ),
        ("lines@contoso.com", "\r\n+cmd|' /C calc'!A0"),
        ("wide@contoso.com", " ＠SUM(1+1)"),
        ("plain@contoso.com", "Plain Person"),
    ];
    for (user_name, display) in names {
        let r = scim.post(
            "/Users",
            json!({"userName": user_name, "displayName": display, "emails": [{"value": user_name, "primary": true}]}),
        );
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let cookie = session(&s);
    let text = get(&s, "/admin/users.csv", &cookie).text();
    for (user_name, display) in names {
        // user_name and display_name are adjacent columns; a cell may hold a line break.
        let quoted = display.replace('"', "\"\"");
        let expected = if display == "Plain Person" {
            format!("\"{user_name}\",\"{quoted}\",")
        } else {
            format!("\"{user_name}\",\"'{quoted}\",")
        };
        assert!(text.contains(&expected), "{expected:?} not in {text:?}");
    }
}

#[test]
fn idp_setup_shows_the_values_then_creates_the_connection_and_a_scim_token_once() {
    let s = server().start();
    let cookie = session(&s);
    // Issue 16 item 7: the portal's texts describe the portal, not the CLI.
    for preset in ["entra", "okta", "google", "jumpcloud", "ping", "generic"] {
        let page = get(
            &s,
            &format!("/admin/idp/new?preset={preset}&name=X"),
            &cookie,
        )
        .text();
        assert!(!page.contains("seatgate idp add"), "{preset}: {page}");
    }
    let overview = get(&s, "/admin", &cookie).text();
    assert!(
        !overview.contains("group-map") && overview.contains("/admin/licenses#mappings"),
        "{overview}"
    );
    let step2 = get(&s, "/admin/idp/new?preset=okta&name=Contoso+Okta", &cookie);
    assert_eq!(step2.status, 200);
    let text = step2.text();
    let acs = format!("https://localhost:{}/saml/acs/contoso-okta", s.addr.port());
    let _ = acs;
    assert!(
        text.contains("/saml/acs/contoso-okta"),
        "the ACS URL before the metadata: {text}"
    );
    assert!(text.contains("/saml/metadata"), "{text}");
    let idp = crate::saml::TestIdp::new("http://www.okta.com/exk1contoso");
    let r = submit(
        &s,
        &cookie,
        &text,
        "Create the connection",
        &[
            ("domains", "contoso.com"),
            ("metadata_xml", &idp.metadata()),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/admin/idp/contoso-okta"));
    let detail = get(&s, "/admin/idp/contoso-okta", &cookie).text();
    assert!(
        detail.contains("http://www.okta.com/exk1contoso") && detail.contains("CN=test-idp"),
        "{detail}"
    );
    assert!(detail.contains("/saml/login/contoso-okta"), "test sign-in");
    // Issue 16 item 4: the connection's switches are edited on its page.
    let saved = submit(
        &s,
        &cookie,
        &detail,
        "Save options",
        &[("jit_users", "on"), ("allow_idp_initiated", "on")],
    );
    assert_eq!(saved.status, 303, "{}", saved.text());
    let after = get(&s, "/admin/idp/contoso-okta", &cookie).text();
    assert!(
        after.contains("Saved: users created at first sign-in on, signed AuthnRequests off, IdP-initiated sign-in on."),
        "{after}"
    );
    assert_eq!(
        db_query(
            &s,
            "SELECT jit_users, sign_requests, allow_idp_initiated FROM idp_connections WHERE id = 'contoso-okta'"
        )[0],
        ["1", "0", "1"]
    );
    let audit = s.cli(&["audit", "--action", "idp_connection_changed"]).1;
    assert!(
        audit.contains("admin:root idp_connection_changed"),
        "{audit}"
    );
    // A certificate rollover: new metadata from the same IdP replaces the old; another
    // IdP's is refused and changes nothing.
    let page = get(&s, "/admin/idp/contoso-okta", &cookie).text();
    let rolled = crate::saml::TestIdp::new("http://www.okta.com/exk1contoso");
    let r = submit(
        &s,
        &cookie,
        &page,
        "Replace the metadata",
        &[("metadata_xml", &rolled.metadata())],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let replaced = get(&s, "/admin/idp/contoso-okta", &cookie).text();
    assert!(replaced.contains("Replaced the metadata: 1 signing certificate(s) trusted"));
    assert!(
        replaced.contains("updated in the admin portal"),
        "{replaced}"
    );
    let other = crate::saml::TestIdp::new("http://www.okta.com/somebody-else");
    let r = submit(
        &s,
        &cookie,
        &page,
        "Replace the metadata",
        &[("metadata_xml", &other.metadata())],
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("not this connection"), "{}", r.text());
    // The guided values include a SCIM token for this connection, generated on request.
    let generated = submit(&s, &cookie, &detail, "Generate a SCIM token", &[]);
    assert_eq!(generated.status, 200, "{}", generated.text());
    assert_eq!(generated.header("cache-control"), Some("no-store"));
    let text = generated.text();
    assert!(text.contains("Contoso Okta provisioning"), "{text}");
    let connection_token = shown_token(&text);
    let r = s.request(
        "GET",
        "/scim/v2/ServiceProviderConfig",
        &[("Authorization", &format!("Bearer {connection_token}"))],
        b"",
    );
    assert_eq!(r.status, 200, "the connection's token works");
    assert!(
        !get(&s, "/admin/idp/contoso-okta", &cookie)
            .text()
            .contains(&connection_token),
        "shown once"
    );
    // Revoked from the portal: the IdP is refused from its next request.
    let list = get(&s, "/admin/idp", &cookie).text();
    let r = submit(
        &s,
        &cookie,
        &list,
        "Revoke Contoso Okta provisioning",
        &[("confirm", "yes")],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let r = s.request(
        "GET",
        "/scim/v2/ServiceProviderConfig",
        &[("Authorization", &format!("Bearer {connection_token}"))],
        b"",
    );
    assert_eq!(r.status, 401, "a revoked token is refused");
    // The same domain cannot be claimed twice.
    let again = submit(
        &s,
        &cookie,
        &get(&s, "/admin/idp/new?preset=okta&name=Other", &cookie).text(),
        "Create the connection",
        &[
            ("domains", "contoso.com"),
            ("metadata_xml", &idp.metadata()),
        ],
    );
    assert_eq!(again.status, 400);
    assert!(again.text().contains("contoso.com"), "{}", again.text());

    let list = get(&s, "/admin/idp", &cookie).text();
    let created = submit(
        &s,
        &cookie,
        &list,
        "Create a SCIM token",
        &[("name", "Okta provisioning")],
    );
    assert_eq!(created.status, 200);
    assert_eq!(created.header("cache-control"), Some("no-store"));
    let text = created.text();
    let token = shown_token(&text);
    let r = s.request(
        "GET",
        "/scim/v2/Users",
        &[("Authorization", &format!("Bearer {token}"))],
        b"",
    );
    assert_eq!(r.status, 200, "the token works");
    // The SCIM request log is written in the background.
    let _ = crate::support::poll_until(std::time::Duration::from_secs(10), || {
        get(&s, "/admin/idp", &cookie)
            .text()
            .contains("GET /scim/v2/Users")
    });
    let list = get(&s, "/admin/idp", &cookie).text();
    assert!(!list.contains(&token), "shown once");
    assert!(
        list.contains("GET /scim/v2/Users"),
        "the last SCIM requests: {list}"
    );

    // Removing the connection needs a confirmation; then its domain no longer signs in.
    let detail = get(&s, "/admin/idp/contoso-okta", &cookie).text();
    let unconfirmed = submit(
        &s,
        &cookie,
        &detail,
        "Remove Contoso Okta",
        &[("confirm", "")],
    );
    assert_eq!(unconfirmed.status, 400, "{}", unconfirmed.text());
    let removed = submit(
        &s,
        &cookie,
        &detail,
        "Remove Contoso Okta",
        &[("confirm", "yes")],
    );
    assert_eq!(removed.status, 303, "{}", removed.text());
    // The page says what the removal did (the helper's walkthrough found it said the
    // opposite before).
    let after = get(&s, "/admin/idp", &cookie).text();
    assert!(
        after.contains(
            "Removed the connection contoso-okta: 0 user(s) and 0 group(s) it provisioned deleted"
        ),
        "{after}"
    );
    assert_eq!(get(&s, "/admin/idp/contoso-okta", &cookie).status, 404);
    let login = s.get("/saml/login?email=ann%40contoso.com");
    assert!(
        login.status >= 400 && login.text().contains("DOMAIN_UNKNOWN"),
        "{} {}",
        login.status,
        login.text()
    );

    // Each of these admin actions is in the audit log, with who did it.
    let audit = s.cli(&["audit", "--limit", "50"]).1;
    for action in [
        "admin:root idp_connection_added",
        "admin:root scim_token_created",
        "admin:root scim_token_revoked",
        "admin:root idp_connection_removed",
        "admin:cli local_admin_created",
        "system admin_login_link_created",
    ] {
        assert!(audit.contains(action), "{action}: {audit}");
    }
}

#[test]
fn the_admin_api_takes_admin_tokens_and_sessions_never_scim_tokens() {
    let s = server().start();
    let (_, out, _) = s.cli(&["admin-token", "create", "--name", "ops"]);
    let admin_token = out.lines().last().expect("token").to_string();
    let (_, out, _) = s.cli(&["scim-token", "create", "--name", "idp"]);
    let scim_token = out.lines().last().expect("token").to_string();
    s.cli(&["license", "add", "--product", "Pro", "--seats", "1"]);
    s.cli(&["group-map", "add", "--group", "All", "--primary"]);
    let scim = s.scim();
    let id = scim
        .post("/Users", json!({"userName": "ann@contoso.com"}))
        .json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    scim.post(
        "/Groups",
        json!({"displayName": "All", "members": [{"value": id}]}),
    );

    let call = |method: &str, path: &str, auth: &str| {
        s.request(
            method,
            path,
            &[("Authorization", &format!("Bearer {auth}"))],
            b"",
        )
    };
    let users = call("GET", "/api/v1/admin/users?q=ann", &admin_token);
    assert_eq!(users.status, 200, "{}", users.text());

    // Admin API tokens are also created (shown once) and revoked in the portal.
    let cookie = session(&s);
    let page = get(&s, "/admin/api-tokens", &cookie).text();
    assert!(page.contains("ops") && page.contains("active"), "{page}");
    let created = submit(
        &s,
        &cookie,
        &page,
        "Create an admin API token",
        &[("name", "nightly report")],
    );
    assert_eq!(created.status, 200, "{}", created.text());
    assert_eq!(created.header("cache-control"), Some("no-store"));
    let portal_token = shown_token(&created.text());
    assert_eq!(
        call("GET", "/api/v1/admin/licenses", &portal_token).status,
        200
    );
    let page = get(&s, "/admin/api-tokens", &cookie).text();
    assert!(!page.contains(&portal_token), "shown once");
    let revoked = submit(
        &s,
        &cookie,
        &page,
        "Revoke nightly report",
        &[("confirm", "yes")],
    );
    assert_eq!(revoked.status, 303, "{}", revoked.text());
    assert_eq!(
        call("GET", "/api/v1/admin/licenses", &portal_token).status,
        401
    );
    let audit = s.cli(&["audit", "--action", "admin_token_revoked"]).1;
    assert!(audit.contains("admin:root admin_token_revoked"), "{audit}");
    assert_eq!(users.json()["users"][0]["seat"], "assigned");
    let explain = call(
        "GET",
        "/api/v1/admin/explain?email=ann%40contoso.com",
        &admin_token,
    );
    assert_eq!(
        explain.json()["verdict"],
        "DOMAIN_UNKNOWN",
        "no IdP connection yet"
    );
    let licenses = call("GET", "/api/v1/admin/licenses", &admin_token).json();
    assert_eq!(licenses["licenses"][0]["pools"][0]["used"], 1);
    let audit = call(
        "GET",
        "/api/v1/admin/audit?action=seat_granted",
        &admin_token,
    )
    .json();
    assert_eq!(audit["entries"][0]["user"], "ann@contoso.com");
    let missing = call("DELETE", "/api/v1/admin/devices/nope", &admin_token);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["reason"], "NOT_FOUND");

    // Scopes do not cross.
    let refused = call("GET", "/api/v1/admin/users", &scim_token);
    assert_eq!(refused.status, 401);
    assert_eq!(refused.json()["reason"], "UNAUTHORIZED");
    assert_eq!(call("GET", "/scim/v2/Users", &admin_token).status, 401);
    s.cli(&["admin-token", "revoke", "ops"]);
    assert_eq!(call("GET", "/api/v1/admin/users", &admin_token).status, 401);

    // A portal session reads, and changes only with its CSRF token.
    let cookie = session(&s);
    let r = s.request("GET", "/api/v1/admin/users", &[("Cookie", &cookie)], b"");
    assert_eq!(r.status, 200);
    let r = s.request(
        "DELETE",
        "/api/v1/admin/devices/nope",
        &[("Cookie", &cookie)],
        b"",
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["reason"], "CSRF_FAILED");
}

/// Issue 16 item 5: the users list names people without a displayName by their given and
/// family name (and finds them by either), shows their groups and their place on the
/// waiting list, and sorts by any column; a bad sort is refused.
#[test]
fn the_users_list_names_groups_queues_and_sorts() {
    let s = server().start();
    let cookie = session(&s);
    assert_eq!(
        s.cli(&["license", "add", "--product", "Pro", "--seats", "1"])
            .0,
        0
    );
    assert_eq!(
        s.cli(&["group-map", "add", "--group", "Engineers", "--primary"])
            .0,
        0
    );
    let scim = s.scim();
    let mut ids = Vec::new();
    for (user, given, family) in [
        ("zoe@contoso.com", "Zoë", "Abbott"),
        ("adam@contoso.com", "Adam", "Zimmer"),
        ("kim@contoso.com", "Kim", "Moreau"),
    ] {
        let r = scim.post(
            "/Users",
            json!({"userName": user, "active": true, "name": {"givenName": given, "familyName": family}}),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        ids.push(r.json()["id"].as_str().expect("id").to_string());
    }
    // One seat: the first member gets it, the others wait in order.
    for id in &ids {
        let members = json!([{"value": id}]);
        let group = db_query(&s, "SELECT id FROM groups WHERE display_name = 'Engineers'");
        let r = match group.first() {
            None => scim.post(
                "/Groups",
                json!({"displayName": "Engineers", "members": members}),
            ),
            Some(g) => scim.patch(
                &format!("/Groups/{}", g[0]),
                json!({"Operations": [{"op": "add", "path": "members", "value": members}]}),
            ),
        };
        assert!(r.status < 300, "{}", r.text());
    }

    let page = get(&s, "/admin/users?q=moreau", &cookie).text();
    assert!(
        page.contains(">Kim Moreau</a>"),
        "found by family name: {page}"
    );
    assert!(page.contains("1 user(s)"), "{page}");
    let page = get(&s, "/admin/users", &cookie).text();
    assert!(
        page.contains("<td class=\"groups\">Engineers</td>"),
        "{page}"
    );
    assert!(page.contains("waiting (#1 for primary)"), "{page}");
    assert!(page.contains("waiting (#2 for primary)"), "{page}");
    // By name: Adam Zimmer, Kim Moreau, Zoë Abbott; by email, descending: zoe, kim, adam.
    let order = |page: &str, names: &[&str]| {
        let at: Vec<usize> = names
            .iter()
            .map(|n| {
                page.find(n)
                    .unwrap_or_else(|| panic!("{n} missing: {page}"))
            })
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{names:?} out of order");
    };
    order(&page, &[">Adam Zimmer<", ">Kim Moreau<", ">Zoë Abbott<"]);
    let by_email = get(&s, "/admin/users?sort=email&dir=desc", &cookie).text();
    order(
        &by_email,
        &[">Zoë Abbott<", ">Kim Moreau<", ">Adam Zimmer<"],
    );
    assert!(by_email.contains("aria-sort=\"descending\""), "{by_email}");
    let bad = get(&s, "/admin/users?sort=password", &cookie);
    assert_eq!(bad.status, 400, "{}", bad.text());
    // A page past the end shows the last page, not "Page 6 of 1".
    let past = get(&s, "/admin/users?page=6", &cookie).text();
    assert!(
        past.contains(">Adam Zimmer<") && !past.contains("Page 6"),
        "{past}"
    );
    // Fewer seats than are held: the pool says it is over, and by how much.
    let license = db_query(&s, "SELECT id FROM licenses")[0][0].clone();
    assert_eq!(s.cli(&["license", "set", &license, "--seats", "0"]).0, 0);
    let licenses = get(&s, "/admin/licenses", &cookie).text();
    assert!(
        licenses.contains("over by 1: nobody loses a seat"),
        "{licenses}"
    );
    assert!(get(&s, "/admin", &cookie).text().contains("over by 1"));
    assert!(
        s.cli(&["license", "list"])
            .1
            .contains("(over by 1: none handed out")
    );
    // The bare address sends a browser to the portal.
    let root = s.get("/");
    assert_eq!(
        (root.status, root.header("location")),
        (303, Some("/admin"))
    );
    let csv = get(&s, "/admin/users.csv?sort=name", &cookie).text();
    assert!(csv.contains("\"Kim Moreau\",\"Engineers\""), "{csv}");
}
