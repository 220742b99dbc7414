//! `seatgate demo`, walked through as its printout tells a newcomer: the demo comes up, the
//! reference client activates Alice through the demo IdP (a real signed SAML assertion
//! through the production ACS), PyJWT verifies the lease against the JWKS, and the admin
//! portal, entered by the printed one-time link, shows Alice's device.

use crate::activation::{client, pyjwt_verify};
use crate::support::{HttpResponse, TestServer, server};

/// The fields of the first form in `html` that contains `marker`, as a browser would send
/// them untouched (unticked boxes left out), and its action.
pub(crate) fn form_containing(html: &str, marker: &str) -> (String, Vec<(String, String)>) {
    let form = html
        .split("<form")
        .skip(1)
        .map(|f| f.split("</form>").next().unwrap_or(""))
        .find(|f| f.contains(marker))
        .unwrap_or_else(|| panic!("no form with {marker:?} in:\n{html}"));
    let attr = |tag: &str, name: &str| {
        tag.split(&format!(" {name}=\""))
            .nth(1)
            .and_then(|v| v.split('"').next())
            .map(unescape)
    };
    let action = attr(form, "action").unwrap_or_default();
    let mut fields: Vec<(String, String)> = form
        .split("<input")
        .skip(1)
        .filter_map(|i| {
            let tag = i.split('>').next().unwrap_or("");
            // As a browser: an unticked box is not sent.
            let unticked = tag.contains("type=\"checkbox\"") && !tag.contains(" checked");
            if unticked {
                return None;
            }
            Some((attr(tag, "name")?, attr(tag, "value").unwrap_or_default()))
        })
        .collect();
    // A <select> sends its selected option, else its first.
    for select in form.split("<select").skip(1) {
        let tag = select.split('>').next().unwrap_or("");
        let Some(name) = attr(tag, "name") else {
            continue;
        };
        let options: Vec<&str> = select
            .split("</select>")
            .next()
            .unwrap_or("")
            .split("<option")
            .skip(1)
            .collect();
        let chosen = options
            .iter()
            .find(|o| o.split('>').next().unwrap_or("").contains(" selected"))
            .or(options.first());
        if let Some(value) = chosen.and_then(|o| attr(o.split('>').next().unwrap_or(""), "value")) {
            fields.push((name, value));
        }
    }
    (action, fields)
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The path and query of an absolute URL on this server.
fn local(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or("/".into(), |i| rest[i..].to_string())
}

fn post_form(
    s: &TestServer,
    path: &str,
    fields: &[(String, String)],
    cookie: &str,
) -> HttpResponse {
    s.request(
        "POST",
        path,
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", cookie),
        ],
        crate::support::form_body(fields).as_bytes(),
    )
}

/// A browser at the activation link: confirm, pick `name` at the demo IdP, post the
/// assertion to the ACS. Returns the final page.
pub(crate) fn activate_in_browser(s: &TestServer, url: &str, name: &str) -> HttpResponse {
    let path = local(url);
    let page = s.get(&path);
    assert_eq!(page.status, 200, "{}", page.text());
    let confirm_cookie = page
        .set_cookie("sg_activate")
        .expect("plain cookie over HTTP");
    assert!(
        !page
            .set_cookie_header("sg_activate")
            .unwrap_or("")
            .contains("Secure"),
        "a Secure cookie would be dropped by Safari on http://"
    );
    let (action, fields) = form_containing(&page.text(), "csrf");
    let to_idp = post_form(s, &action, &fields, &confirm_cookie);
    assert_eq!(to_idp.status, 303, "{}", to_idp.text());
    let binding = to_idp.set_cookie("sg_saml").expect("binding cookie");
    let location = to_idp.header("location").expect("to the IdP").to_string();
    assert!(
        location.contains("/demo-idp/sso?SAMLRequest="),
        "{location}"
    );

    let idp_page = s.get(&local(&location));
    assert_eq!(idp_page.status, 200, "{}", idp_page.text());
    assert!(idp_page.text().contains("DEMO"), "the demo is labelled");
    let (action, fields) = form_containing(&idp_page.text(), &format!("Sign in as {name}"));
    let signed = post_form(s, &action, &fields, "");
    assert_eq!(signed.status, 200, "{}", signed.text());
    let (acs, fields) = form_containing(&signed.text(), "SAMLResponse");
    assert!(acs.contains("/saml/acs/"), "{acs}");
    post_form(s, &local(&acs), &fields, &binding)
}

#[test]
#[ignore = "needs Python with pysaml2 and PyJWT (scripts/test-venv); scripts/test runs it"]
fn the_demo_walkthrough_activates_a_mac_through_the_demo_idp() {
    let s = server().demo().start();
    assert!(s.wait_for_log("Break-glass admin:", std::time::Duration::from_secs(20)));
    let log = s.log();
    let base = format!("http://{}", s.addr);
    assert!(
        log.contains(&format!("--server {base} --email alice@acme.example")),
        "{log}"
    );
    // The refusal step uses a second client state directory: the first one's device key
    // is Alice's by then.
    assert!(
        log.contains(&format!(
            "/client-2 activate --server {base} --email niaj@acme.example"
        )),
        "{log}"
    );

    // The seeded organization: some wait for seats, for the reason the API would give.
    let (code, out, _) = s.cli(&["explain", "niaj@acme.example", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).expect("json")["verdict"],
        "NO_SEATS"
    );
    let (_, out, _) = s.cli(&["explain", "henry@acme.example", "--json"]);
    assert!(out.contains("USER_INACTIVE"), "{out}");
    let (_, out, _) = s.cli(&["license", "list"]);
    assert!(
        out.contains("Engineering (reserved, no expiry): 10 used, 2 pending, 0 free of 10"),
        "{out}"
    );
    // Design's dynamic seats are primary-pool seats: the primary pool is full, not 4 free.
    assert!(
        out.contains(
            "primary pool: 15 used, 3 pending, 0 free of 15 (4 used through dynamic sublicenses)"
        ),
        "{out}"
    );
    assert!(
        out.contains("Design (dynamic, no expiry): 4 used, 1 pending, 0 free of 4"),
        "{out}"
    );
    let (_, out, _) = s.cli(&["explain", "goran@acme.example"]);
    assert!(out.contains("pool 15 of 15 used, 3 pending"), "{out}");

    // Step 2: the client command the walkthrough prints.
    let state = tempfile::tempdir().expect("tmp");
    let run = client(
        state.path(),
        &[
            "activate",
            "--server",
            &base,
            "--email",
            "alice@acme.example",
        ],
    );
    let url = run.browser_url();
    let done = activate_in_browser(&s, &url, "Alice");
    assert_eq!(done.status, 200, "{}", done.text());
    let (ok, out) = run.finish();
    assert!(ok, "{out}");
    let lease = std::fs::read_to_string(state.path().join("lease.jws")).expect("lease");
    let claims = pyjwt_verify(&s, lease.trim());
    assert_eq!(claims["email"], "alice@acme.example");
    // Her Mac's policy: Engineering's over the demo's default.
    let (ok, policy) = client(state.path(), &["policy"]).finish();
    assert!(ok, "{policy}");
    assert!(
        policy.contains("Lock a virtual machine on suspend: on"),
        "{policy}"
    );
    assert!(
        policy.contains("Support link: Acme IT help (https://help.acme.example)"),
        "{policy}"
    );
    assert_eq!(claims["policy"].as_str().map(str::len), Some(43));

    // Step 1: the one-time link opens the portal, once.
    let link = log
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix(&base)
                .filter(|p| p.starts_with("/admin/login/link"))
        })
        .expect("login link")
        .to_string();
    let signed_in = s.get(&link);
    assert_eq!(signed_in.status, 303, "{}", signed_in.text());
    let session = signed_in.set_cookie("sg_admin").expect("session");
    assert_eq!(s.get(&link).status, 401, "a one-time link works once");
    let users = s.request("GET", "/admin/users?q=alice", &[("Cookie", &session)], b"");
    assert_eq!(users.status, 200, "{}", users.text());
    let listing = users.text();
    let (detail, _) = listing
        .split("href=\"/admin/users/")
        .nth(1)
        .and_then(|r| r.split_once('"'))
        .expect("a link to Alice");
    let page = s.request(
        "GET",
        &format!("/admin/users/{detail}"),
        &[("Cookie", &session)],
        b"",
    );
    assert_eq!(page.status, 200, "{}", page.text());
    let text = page.text();
    assert!(
        text.contains("alice@acme.example") && text.contains("Engineering"),
        "{text}"
    );
    let device = claims["device"].as_str().expect("device id");
    assert!(
        text.contains(device) && text.contains(">active<"),
        "the device is listed, active: {text}"
    );

    // The overview: every pool, and the demo IdP's certificate without a false alarm.
    let overview = s.request("GET", "/admin", &[("Cookie", &session)], b"");
    let overview = overview.text();
    assert!(
        overview.contains("Primary pool</td><td>15 / 3 / 0 of 15"),
        "{overview}"
    );
    assert!(
        overview.contains("valid until") && !overview.contains(">expires "),
        "{overview}"
    );

    // Any email can be explained, provisioned or not.
    for (email, verdict) in [
        ("niaj%40acme.example", "NO_SEATS"),
        ("new.hire%40acme.example", "USER_NOT_PROVISIONED"),
        ("someone%40elsewhere.org", "DOMAIN_UNKNOWN"),
    ] {
        let r = s.request(
            "GET",
            &format!("/admin/explain?email={email}"),
            &[("Cookie", &session)],
            b"",
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(
            r.text().contains(&format!("<code>{verdict}</code>")),
            "{email}: {}",
            r.text()
        );
    }

    // Who is waiting for a seat, who is deactivated, who is entitled to nothing.
    let list = |filter: &str| {
        let r = s.request(
            "GET",
            &format!("/admin/users?seat={filter}"),
            &[("Cookie", &session)],
            b"",
        );
        assert_eq!(r.status, 200, "{}", r.text());
        r.text()
    };
    let waiting = list("waiting");
    assert!(
        waiting.contains("6 user(s), waiting for a seat."),
        "{waiting}"
    );
    assert!(
        waiting.contains("niaj@acme.example") && !waiting.contains("alice@acme.example"),
        "{waiting}"
    );
    let inactive = list("inactive");
    assert!(
        inactive.contains("henry@acme.example") && inactive.contains("1 user(s)"),
        "{inactive}"
    );
    assert!(list("none").contains("ines@acme.example"));
    let csv = s.request(
        "GET",
        "/admin/users.csv?seat=waiting",
        &[("Cookie", &session)],
        b"",
    );
    assert_eq!(csv.text().lines().count(), 7, "a header and six users");
    let bad = s.request(
        "GET",
        "/admin/users?seat=bogus",
        &[("Cookie", &session)],
        b"",
    );
    assert_eq!(bad.status, 400);
}

/// Issue 14 item 4: activation and `seatgate explain` decide with one verdict. Every
/// person of the demo organization is explained, then activated through the demo IdP; the
/// ACS's answer must be the verdict `explain` gave.
#[test]
fn item14_explain_and_activation_agree_for_every_demo_user() {
    let s = server().demo().start();
    assert!(s.wait_for_log("Break-glass admin:", std::time::Duration::from_secs(20)));
    let start = |source: std::net::Ipv4Addr, email: &str| {
        let x = seatgate::crypto::b64url(&seatgate::crypto::random_bytes(32));
        let body = serde_json::json!({"email": email, "device": {"public_key": {"kty": "OKP", "crv": "Ed25519", "x": x}}});
        // One client address per activation: the pre-authentication limit is per client.
        let r = s.request_from(
            source,
            "POST",
            "/api/v1/activations",
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        );
        assert_eq!(r.status, 201, "{email}: {}", r.text());
        let v: serde_json::Value = serde_json::from_str(&r.text()).expect("json");
        v["verification_uri_complete"]
            .as_str()
            .expect("link")
            .to_string()
    };
    // Everyone the demo IdP can sign in, read off its sign-in page.
    let first = start(std::net::Ipv4Addr::new(127, 0, 1, 1), "alice@acme.example");
    let page = s.get(&local(&first));
    let (action, fields) = form_containing(&page.text(), "csrf");
    let cookie = page.set_cookie("sg_activate").expect("cookie");
    let to_idp = post_form(&s, &action, &fields, &cookie);
    let idp_page = s
        .get(&local(to_idp.header("location").expect("to the IdP")))
        .text();
    let emails: Vec<String> = idp_page
        .split("name=\"email\" value=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_string)
        .collect();
    assert!(emails.len() >= 30, "{idp_page}");

    let verdicts: Vec<(String, String)> = emails
        .iter()
        .map(|email| {
            let (code, out, err) = s.cli(&["explain", email, "--json"]);
            assert_eq!(code, 0, "{err}");
            let e: serde_json::Value = serde_json::from_str(&out).expect("json");
            (
                email.clone(),
                e["verdict"].as_str().expect("verdict").to_string(),
            )
        })
        .collect();
    assert!(verdicts.iter().any(|(_, v)| v == "OK"));
    assert!(verdicts.iter().any(|(_, v)| v == "NO_SEATS"));
    for (i, (email, verdict)) in verdicts.iter().enumerate() {
        let source = std::net::Ipv4Addr::new(127, 0, 2, u8::try_from(i + 1).expect("few users"));
        let url = start(source, email);
        // The button names the person by their first name, as the demo IdP shows it.
        let local_part = email.split('@').next().unwrap_or_default();
        let first_name = format!("{}{}<", local_part[..1].to_uppercase(), &local_part[1..]);
        let done = activate_in_browser(&s, &url, &first_name).text();
        let activated = done.contains("This device is activated");
        match verdict.as_str() {
            "OK" => assert!(activated, "{email}: explain said OK:\n{done}"),
            code => assert!(
                !activated && done.contains(&format!("Reason code {code}")),
                "{email}: explain said {code}:\n{done}"
            ),
        }
    }
}

/// Issue 16 item 12: the printed SCIM example creates a person and adds them to a group,
/// run exactly as printed (curl, through a shell); `explain` then knows them.
#[test]
fn the_printed_scim_commands_create_a_user_and_add_them_to_a_group() {
    crate::kit::tools::require("curl", "Debian package curl");
    let s = server().demo().start();
    assert!(s.wait_for_log("Break-glass admin:", std::time::Duration::from_secs(20)));
    // The commands as a shell reads them: continuation lines joined.
    let log = s.log().replace("\\\n", " ");
    let commands: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("curl "))
        .collect();
    assert_eq!(commands.len(), 3, "list, create, add to group: {log}");
    let sh = |command: &str| -> String {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .output()
            .expect("sh");
        assert!(out.status.success(), "{command}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let listed: serde_json::Value = serde_json::from_str(&sh(commands[0])).expect("json");
    assert_eq!(listed["Resources"].as_array().map(Vec::len), Some(3));
    let created: serde_json::Value = serde_json::from_str(&sh(commands[1])).expect("json");
    let id = created["id"].as_str().expect("the create answers an id");
    sh(&commands[2].replace("\"value\":\"ID\"", &format!("\"value\":\"{id}\"")));
    let (code, out, err) = s.cli(&["explain", "new.hire@acme.example", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Design"), "the new hire is in Design: {out}");
}
