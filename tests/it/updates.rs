//! Issue 19 §2: the local update server through the real binary over HTTPS. Packages
//! uploaded in resumable pieces are signed as Sparkle verifies (Ed25519 over the whole
//! file, checked here with ring against the published key); the stable, beta and pinned
//! appcasts and JSON feeds list what they must with public-URL addresses; downloads honour
//! Range; a retired version leaves the feeds and is no longer served; a device's feed
//! follows its policy's update branch, else the profile's; devices report their app
//! version at renewal and the portal's Updates page counts them; the profile points the
//! updater at the feed.

use serde_json::{Value, json};

use crate::activation::client;
use crate::admin_api::{admin_token, call};
use crate::portal::{get, session, submit};
use crate::support::{HttpResponse, TestServer, server};

fn ok(s: &TestServer, args: &[&str]) -> String {
    let (code, out, err) = s.cli(args);
    assert_eq!(code, 0, "{args:?}: {out}{err}");
    out
}

fn package_bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(17) ^ seed ^ (i >> 11) as u8)
        .collect()
}

/// Uploads a package over the admin API in two pieces; returns the final answer.
fn upload(s: &TestServer, token: &str, body: Value, bytes: &[u8]) -> HttpResponse {
    let r = call(
        s,
        token,
        "POST",
        "/api/v1/admin/updates/uploads",
        Some(body),
    );
    if r.status != 201 {
        return r;
    }
    let id = r.json()["id"].as_str().expect("id").to_string();
    let auth = format!("Bearer {token}");
    let half = bytes.len() / 2;
    let mut last = None;
    for (first, piece) in [(0, &bytes[..half]), (half, &bytes[half..])] {
        let range = format!("bytes {first}-{}/{}", first + piece.len() - 1, bytes.len());
        last = Some(s.request(
            "PUT",
            &format!("/api/v1/admin/uploads/{id}"),
            &[("Authorization", &auth), ("Content-Range", &range)],
            piece,
        ));
    }
    last.expect("answer")
}

fn verifies(key_b64: &str, signature_b64: &str, bytes: &[u8]) -> bool {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(key_b64).expect("key");
    let signature = b64.decode(signature_b64).expect("signature");
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key)
        .verify(bytes, &signature)
        .is_ok()
}

#[test]
fn packages_are_signed_for_sparkle_and_the_feeds_follow_branches_pins_and_retirement() {
    let s = server().start();
    let token = admin_token(&s);
    let stable = package_bytes(2_500_000, 1);
    let beta = package_bytes(1_200_000, 2);
    let r = upload(
        &s,
        &token,
        json!({"version": "20.1.2", "branch": "stable", "min_os": "13.0", "size": stable.len(),
               "sha256": seatgate::crypto::hex(&seatgate::crypto::sha256(&stable)), "notes": "Fixes <b>bugs</b> & more"}),
        &stable,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = upload(
        &s,
        &token,
        json!({"version": "20.2.0-beta.1", "branch": "beta", "min_os": "14.0", "size": beta.len(), "file_name": "Desktop-beta.pkg"}),
        &beta,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    // Refusals: the same version, a branch that is not one, path tricks in the file name.
    let half = call(
        &s,
        &token,
        "POST",
        "/api/v1/admin/updates/uploads",
        Some(
            json!({"version": "30.0", "branch": "beta", "min_os": "13.0", "size": 10, "notes": "old"}),
        ),
    );
    assert_eq!(half.status, 201);
    let changed = call(
        &s,
        &token,
        "POST",
        "/api/v1/admin/updates/uploads",
        Some(
            json!({"version": "30.0", "branch": "stable", "min_os": "14.0", "size": 10, "notes": "new"}),
        ),
    );
    assert_eq!(
        changed.status,
        409,
        "a resumed upload keeps its details: {}",
        changed.text()
    );
    let dup = call(
        &s,
        &token,
        "POST",
        "/api/v1/admin/updates/uploads",
        Some(json!({"version": "20.1.2", "branch": "stable", "min_os": "13.0", "size": 10})),
    );
    assert_eq!(
        (dup.status, dup.json()["reason"].clone()),
        (409, json!("VERSION_EXISTS"))
    );
    for bad in [
        json!({"version": "21", "branch": "nightly", "min_os": "13.0", "size": 10}),
        json!({"version": "21", "branch": "beta", "min_os": "13.0", "size": 10, "file_name": "../../x.pkg"}),
        json!({"version": "21", "branch": "beta", "min_os": "13.0", "size": 10, "file_name": "/etc/passwd"}),
        json!({"version": "../21", "branch": "beta", "min_os": "13.0", "size": 10}),
        json!({"version": "21", "branch": "beta", "min_os": "abc", "size": 10}),
        json!({"version": "21", "branch": "beta", "min_os": "13..0", "size": 10}),
    ] {
        let r = call(
            &s,
            &token,
            "POST",
            "/api/v1/admin/updates/uploads",
            Some(bad.clone()),
        );
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }

    let overview = call(&s, &token, "GET", "/api/v1/admin/updates", None).json();
    let key = overview["public_ed_key"].as_str().expect("key").to_string();
    let base = format!("https://127.0.0.1:{}", s.addr.port());

    // The stable feed has only the stable version; beta has both, newest first.
    let stable_feed = s.get("/updates/stable/feed.json").json();
    let items = stable_feed["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["version"], "20.1.2");
    let url = items[0]["url"].as_str().expect("url");
    assert!(
        url.starts_with(&base),
        "feed URLs use the public URL: {url}"
    );
    let beta_feed = s.get("/updates/beta/feed.json").json();
    let versions: Vec<&str> = beta_feed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["version"].as_str().expect("v"))
        .collect();
    assert_eq!(versions, ["20.2.0-beta.1", "20.1.2"]);
    let appcast = s.get("/updates/beta/appcast.xml");
    assert_eq!(
        appcast.header("content-type"),
        Some("application/rss+xml; charset=utf-8")
    );
    let xml = appcast.text();
    let doc = roxmltree::Document::parse(&xml).expect("the appcast is well-formed XML");
    let sparkle = "http://www.andymatuschak.org/xml-namespaces/sparkle";
    let enclosures: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("enclosure"))
        .collect();
    assert_eq!(enclosures.len(), 2);
    assert!(
        xml.contains("Fixes &lt;b&gt;bugs&lt;/b&gt; &amp; more"),
        "notes are escaped"
    );
    assert!(xml.contains("<sparkle:channel>beta</sparkle:channel>"));
    // Each enclosure's edSignature verifies over the bytes its URL serves.
    for e in &enclosures {
        let url = e.attribute("url").expect("url");
        let path = url.strip_prefix(&base).expect("public URL");
        let body = s.get(path);
        assert_eq!(body.status, 200);
        assert_eq!(
            e.attribute("length"),
            Some(body.body.len().to_string().as_str())
        );
        let sig = e.attribute((sparkle, "edSignature")).expect("edSignature");
        assert!(verifies(&key, sig, &body.body), "{url}");
        assert!(
            !verifies(&key, sig, &body.body[1..]),
            "a changed file fails"
        );
    }
    // Pinned, Range, unknown branch, wrong file name.
    let pinned = s.get("/updates/pinned/20.1.2/feed.json").json();
    assert_eq!(pinned["items"].as_array().expect("items").len(), 1);
    let pinned_beta = s.get("/updates/pinned/20.2.0-beta.1/appcast.xml").text();
    assert!(
        pinned_beta.contains("20.2.0-beta.1") && !pinned_beta.contains("sparkle:channel"),
        "{pinned_beta}"
    );
    assert!(
        xml.contains("<description sparkle:format=\"plain-text\">"),
        "{xml}"
    );
    assert_eq!(s.get("/updates/pinned/20.1.2%00/appcast.xml").status, 404);
    let path = url.strip_prefix(&base).expect("public URL").to_string();
    let part = s.request("GET", &path, &[("Range", "bytes=10-19")], b"");
    assert_eq!(
        (part.status, part.body.clone()),
        (206, stable[10..20].to_vec())
    );
    let past = s.request("GET", &path, &[("Range", "bytes=9999999-")], b"");
    assert_eq!(past.status, 416);
    assert_eq!(s.get("/updates/nightly/appcast.xml").status, 404);
    assert_eq!(
        s.get(&path.replace("App-20.1.2.pkg", "..%2F..%2Fseatgate.db"))
            .status,
        404
    );

    // Retiring takes it out of the feeds and stops serving it; twice is a conflict.
    let cookie = session(&s);
    let page = get(&s, "/admin/updates", &cookie).text();
    assert!(
        page.contains("20.2.0-beta.1") && page.contains(&key),
        "{page}"
    );
    let r = submit(
        &s,
        &cookie,
        &page,
        "/admin/updates/20.2.0-beta.1/retire",
        &[],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let versions = s.get("/updates/beta/feed.json").json()["items"]
        .as_array()
        .expect("items")
        .len();
    assert_eq!(versions, 1);
    assert_eq!(s.get("/updates/packages/2/Desktop-beta.pkg").status, 404);
    let again = call(
        &s,
        &token,
        "POST",
        "/api/v1/admin/updates/20.2.0-beta.1/retire",
        None,
    );
    assert_eq!(again.status, 409);
}

#[test]
fn a_macs_feed_follows_its_policy_else_the_profile_and_it_reports_its_app_version() {
    let s = server()
        .config("[profile]\nupdate_branch = \"beta\"\n")
        .start();
    let token = admin_token(&s);
    let license = ok(
        &s,
        &[
            "license",
            "add",
            "--product",
            "Parallels Desktop",
            "--seats",
            "5",
        ],
    )
    .trim()
    .to_string();
    let out = ok(
        &s,
        &[
            "license",
            "key",
            "create",
            "--license",
            &license,
            "--devices",
            "3",
            "--name",
            "Lab",
        ],
    );
    let key = out.lines().last().expect("key").trim().to_string();
    let state = tempfile::tempdir().expect("tmp");
    let base = format!("https://127.0.0.1:{}", s.addr.port());
    let ca = s.ca_path();
    let (activated, out) = client(
        state.path(),
        &[
            "activate",
            "--server",
            &base,
            "--key",
            &key,
            "--ca-cert",
            ca.to_str().expect("utf8"),
        ],
    )
    .finish();
    assert!(activated, "{out}");
    let bytes = package_bytes(100_000, 3);
    let file = state.path().join("app.pkg");
    std::fs::write(&file, &bytes).expect("write");
    ok(
        &s,
        &[
            "update",
            "add",
            file.to_str().expect("utf8"),
            "--version",
            "20.1.2",
            "--min-os",
            "13.0",
        ],
    );

    // No policy: the profile's branch (beta).
    let (fetched, out) = client(state.path(), &["updates"]).finish();
    assert!(fetched, "{out}");
    assert!(
        out.contains("update branch beta (from the profile)"),
        "{out}"
    );
    assert!(out.contains("20.1.2"), "{out}");
    // The key's policy pins a version: the feed is that version's.
    ok(
        &s,
        &[
            "policy",
            "create",
            "Pinned",
            "--set",
            "update_branch=\"20.1.2\"",
        ],
    );
    let key_id = crate::support::db_query(&s, "SELECT id FROM license_keys")[0][0].clone();
    ok(&s, &["policy", "key", &key_id, "Pinned"]);
    let (fetched, out) = client(state.path(), &["updates"]).finish();
    assert!(fetched, "{out}");
    assert!(
        out.contains("update branch 20.1.2 (from the policy)"),
        "{out}"
    );
    assert!(out.contains("/updates/pinned/20.1.2/appcast.xml"), "{out}");

    // The app version reported at renewal reaches the portal and the API.
    let (renewed, out) = client(state.path(), &["renew", "--app-version", "20.1.2"]).finish();
    assert!(renewed, "{out}");
    let (renewed, out) = client(state.path(), &["renew", "--app-version", "../../x"]).finish();
    assert!(
        renewed && out.contains("renewed without it"),
        "a bad version is refused, the lease still renewed: {out}"
    );
    let overview = call(&s, &token, "GET", "/api/v1/admin/updates", None).json();
    assert_eq!(
        overview["devices_by_version"],
        json!([{"version": "20.1.2", "devices": 1}])
    );
    let cookie = session(&s);
    let page = get(&s, "/admin/updates", &cookie).text();
    assert!(page.contains("App versions the Macs run"), "{page}");

    // The profile (the server's, with its configuration) points Sparkle at the feed.
    let profile = call(&s, &token, "GET", "/api/v1/admin/profile", None);
    assert_eq!(profile.status, 200, "{}", profile.text());
    let text = profile.text();
    assert!(
        text.contains("<key>SUFeedURL</key>") && text.contains("/updates/beta/appcast.xml"),
        "{text}"
    );
}

#[test]
fn downloads_beyond_max_file_streams_wait_with_a_503() {
    use std::io::Write;
    let s = server().config("[limits]\nmax_file_streams = 1\n").start();
    let bytes = package_bytes(48 << 20, 5);
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("big.pkg");
    std::fs::write(&file, &bytes).expect("write");
    ok(
        &s,
        &[
            "update",
            "add",
            file.to_str().expect("utf8"),
            "--version",
            "1.0",
            "--min-os",
            "13.0",
        ],
    );
    let path = "/updates/packages/1/App-1.0.pkg";
    // A client that asks and does not read holds the only slot.
    let mut slow = s.connect();
    slow.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .expect("request");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let second = s.get(path);
    assert_eq!(
        (second.status, second.json()["reason"].clone()),
        (503, json!("OVERLOADED"))
    );
    assert_eq!(second.header("retry-after"), Some("5"));
    assert_eq!(s.get("/healthz").status, 200);
    drop(slow);
    crate::support::wait_until(
        std::time::Duration::from_secs(10),
        "the slot is free again",
        || {
            s.request("GET", path, &[("Range", "bytes=0-9")], b"")
                .status
                == 206
        },
    );
}
