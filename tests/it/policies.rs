//! Issue 18 §1: client policies through the real binary over HTTPS. Every setting set in
//! the portal's form reaches a Mac's effective policy, signed with the lease keys and
//! verified by the reference client and by PyJWT; precedence across overlapping groups;
//! a person leaving a group loses its policy at the next fetch; ETag hits; proofs are
//! single-use and for this action only; the published JSON Schema accepts what the
//! gateway accepts (checked with Python's jsonschema).

use std::process::Command;

use serde_json::{Value, json};

use crate::activation::{browse, client, setup};
use crate::portal::{get, session, submit};
use crate::pysaml2::python;
use crate::support::{TestServer, db_query};

fn ok(s: &TestServer, args: &[&str]) -> String {
    let (code, out, err) = s.cli(args);
    assert_eq!(code, 0, "{args:?}: {out}{err}");
    out
}

/// Activates `email` with SSO into `state`.
fn activate(s: &TestServer, idp: &crate::pysaml2::PyIdp, state: &std::path::Path, email: &str) {
    let base = format!("https://127.0.0.1:{}", s.addr.port());
    let ca = s.ca_path();
    let run = client(
        state,
        &[
            "activate",
            "--server",
            &base,
            "--email",
            email,
            "--ca-cert",
            ca.to_str().expect("utf8"),
        ],
    );
    let url = run.browser_url();
    assert_eq!(browse(s, idp, &url, email).status, 200);
    let (ok, out) = run.finish();
    assert!(ok, "{out}");
}

fn policy(state: &std::path::Path) -> (bool, String) {
    client(state, &["policy"]).finish()
}

/// The policy document the client kept, verified by PyJWT against the JWKS; its settings
/// must pass the published schema (jsonschema).
fn pyjwt_policy(s: &TestServer, state: &std::path::Path) -> Value {
    let token = std::fs::read_to_string(state.join("policy.jws")).expect("policy kept");
    let jwks = s.get("/.well-known/jwks.json").text();
    let script = r#"
import json, sys, jwt
jwks = json.loads(sys.argv[1]); token = sys.argv[2]
header = jwt.get_unverified_header(token)
assert header["typ"] == "seatgate-policy+jwt", header
key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
claims = jwt.decode(token, jwt.PyJWK(key).key, algorithms=["EdDSA"], options={"require": ["iat", "sub"]})
import jsonschema
jsonschema.validate(claims["settings"], json.loads(sys.argv[3]), cls=jsonschema.Draft202012Validator)
print(json.dumps(claims))
"#;
    let out = Command::new(python())
        .args([
            "-c",
            script,
            &jwks,
            &token,
            &s.get("/api/v1/policy-schema").text(),
        ])
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "PyJWT: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("claims")
}

fn lease_claims(state: &std::path::Path) -> Value {
    let lease = std::fs::read_to_string(state.join("lease.jws")).expect("lease");
    seatgate::domain::jose::Jws::parse(&lease)
        .expect("jws")
        .claims
}

/// Every setting, set through the portal's form.
fn strict_policy_in_the_portal(s: &TestServer, cookie: &str) -> String {
    let page = get(s, "/admin/policies", cookie).text();
    let r = submit(
        s,
        cookie,
        &page,
        "Create policy",
        &[("name", "Strict"), ("description", "Engineering Macs")],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let path = r.header("location").expect("location").to_string();
    let page = get(s, &path, cookie).text();
    let mut fields = vec![
        ("restricted_actions", "set"),
        ("usb_default", "deny"),
        ("usb_exceptions", "05AC:12A8 allow\n046d:c52b ask"),
        ("vm_expiration", "days_after_first_start"),
        ("vm_expiration_days", "90"),
        ("vm_expiration_warn_days", "7"),
        ("lock_on_suspend", "on"),
        ("hide_developer_tools", "on"),
        ("support_url", "https://help.contoso.com/mac"),
        ("support_label", "Contoso IT"),
        ("update_branch", "pinned"),
        ("update_version", "20.1.2"),
        ("customer_experience_program", "off"),
        ("lease_renewal_hours", "24"),
        ("offline_grace_hours", "48"),
    ];
    fields.push(("action_create_vm", "yes"));
    fields.push(("action_remove_vm", "yes"));
    // A bad value first: the form comes back with the reason and what was typed.
    let mut bad = fields.clone();
    bad.retain(|(k, _)| *k != "usb_exceptions");
    bad.push(("usb_exceptions", "apple deny"));
    let r = submit(s, cookie, &page, "Save policy", &bad);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("is not a USB device id"), "{}", r.text());
    assert!(
        r.text().contains("apple deny"),
        "the form keeps what was typed"
    );
    let r = submit(s, cookie, &page, "Save policy", &fields);
    assert_eq!(r.status, 303, "{}", r.text());
    path.rsplit('/').next().expect("id").to_string()
}

#[test]
#[ignore = "needs Python with pysaml2, PyJWT and jsonschema (scripts/test-venv); scripts/test runs it"]
fn every_setting_reaches_the_mac_signed_with_precedence_and_leaves_with_the_group() {
    let (s, idp, ryan, _kim) = setup("[lease]\npoll_interval_secs = 1\n");
    ok(&s, &["license", "set", "Parallels Desktop", "--seats", "5"]);
    let scim = s.scim();
    let eng = scim.post(
        "/Groups",
        json!({"displayName": "Engineering", "members": [{"value": ryan}]}),
    );
    assert_eq!(eng.status, 201);
    let eng_id = eng.json()["id"].as_str().expect("id").to_string();

    let cookie = session(&s);
    let strict = strict_policy_in_the_portal(&s, &cookie);
    // Priority 1 for Engineering; "Base" for everyone with Macs at 2; a default policy.
    ok(
        &s,
        &[
            "policy",
            "assign",
            &strict,
            "--group",
            "engineering",
            "--priority",
            "1",
        ],
    );
    ok(
        &s,
        &[
            "policy",
            "create",
            "Base",
            "--set",
            "lock_on_suspend=false",
            "--set",
            "update_branch=beta",
            "--set",
            "hide_developer_tools=true",
        ],
    );
    ok(
        &s,
        &[
            "policy",
            "assign",
            "Base",
            "--group",
            "Mac Users",
            "--priority",
            "2",
        ],
    );
    ok(
        &s,
        &[
            "policy",
            "create",
            "Company",
            "--set",
            r#"support_link={"url":"https://it.contoso.com","label":"IT"}"#,
            "--set",
            "customer_experience_program=true",
        ],
    );
    ok(&s, &["policy", "default", "Company"]);
    // A priority is never shared: precedence is never a tie.
    let (code, _, err) = s.cli(&[
        "policy",
        "assign",
        "Company",
        "--group",
        "Everyone",
        "--priority",
        "2",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("priority 2 is taken"), "{err}");

    let state = tempfile::tempdir().expect("tmp");
    activate(&s, &idp, state.path(), "ryan@contoso.com");
    let (fetched, out) = policy(state.path());
    assert!(fetched, "{out}");
    assert!(out.contains("(fetched), verified"), "{out}");
    let claims = pyjwt_policy(&s, state.path());
    let settings = &claims["settings"];
    assert_eq!(
        settings["restricted_actions"],
        json!(["create_vm", "remove_vm"])
    );
    assert_eq!(
        settings["usb"],
        json!({"default": "deny", "exceptions": [
        {"device": "05ac:12a8", "action": "allow"}, {"device": "046d:c52b", "action": "ask"}]})
    );
    assert_eq!(
        settings["vm_expiration"],
        json!({"mode": "days_after_first_start", "days": 90, "warn_days": 7})
    );
    assert_eq!(
        settings["lock_on_suspend"],
        json!(true),
        "Strict (priority 1) over Base"
    );
    assert_eq!(settings["hide_developer_tools"], json!(true));
    assert_eq!(
        settings["support_link"],
        json!({"url": "https://help.contoso.com/mac", "label": "Contoso IT"})
    );
    assert_eq!(settings["update_branch"], json!("20.1.2"));
    assert_eq!(settings["customer_experience_program"], json!(false));
    assert_eq!(settings["lease_renewal_seconds"], json!(86_400));
    assert_eq!(settings["offline_grace_seconds"], json!(172_800));
    assert_eq!(claims["device"], lease_claims(state.path())["device"]);
    assert_eq!(claims["sub"], ryan);

    // The lease names the policy, and its windows follow it after a renewal.
    let (renewed, out) = client(state.path(), &["renew"]).finish();
    assert!(renewed, "{out}");
    let lease = lease_claims(state.path());
    assert_eq!(lease["policy"], claims["policy"]);
    let iat = lease["iat"].as_i64().expect("iat");
    assert_eq!(
        lease["renew_after"].as_i64().expect("renew_after") - iat,
        86_400
    );
    assert_eq!(lease["exp"].as_i64().expect("exp") - iat, 86_400 + 172_800);

    // Unchanged: the gateway answers 304 and the client keeps its copy.
    let (ok2, out) = policy(state.path());
    assert!(ok2 && out.contains("(unchanged)"), "{out}");

    // explain shows each setting with its source.
    let explained = ok(&s, &["explain", "ryan@contoso.com"]);
    assert!(explained.contains("Lock a virtual machine on suspend: on (from policy \"Strict\" through group \"engineering\" (priority 1))"), "{explained}");
    assert!(explained.contains("Update branch: 20.1.2"), "{explained}");
    let page = get(&s, &format!("/admin/users/{ryan}"), &cookie).text();
    assert!(
        page.contains("policy &quot;Strict&quot; through group"),
        "the user page shows sources"
    );

    // Ryan leaves Engineering: the next fetch has no Strict setting left.
    let r = scim.patch(
        &format!("/Groups/{eng_id}"),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "remove", "path": format!("members[value eq \"{ryan}\"]")}]}),
    );
    assert!(r.status == 200 || r.status == 204, "{}", r.text());
    let (ok3, out) = policy(state.path());
    assert!(ok3 && out.contains("(fetched)"), "{out}");
    assert!(
        out.contains("older policy"),
        "the lease still names the old one: {out}"
    );
    let settings = pyjwt_policy(&s, state.path())["settings"].clone();
    assert_eq!(settings["lock_on_suspend"], json!(false), "from Base now");
    assert_eq!(settings["update_branch"], json!("beta"));
    assert_eq!(settings["restricted_actions"], json!([]), "built-in");
    assert_eq!(
        settings["support_link"]["url"], "https://it.contoso.com",
        "from the default"
    );
    assert_eq!(settings["customer_experience_program"], json!(true));

    // Every change is audited with what changed.
    let audit = db_query(
        &s,
        "SELECT action, detail FROM audit_log WHERE action LIKE 'policy_%' ORDER BY id",
    );
    let text = format!("{audit:?}");
    assert!(text.contains("usb: unset →"), "{text}");
    assert!(
        text.contains("policy_assigned") && text.contains("policy_default_changed"),
        "{text}"
    );
    let audit_page = get(&s, "/admin/audit", &cookie).text();
    assert!(
        audit_page.contains("changed the policy &quot;Strict&quot;: restricted_actions"),
        "{audit_page}"
    );
}

/// Proofs for `GET /api/v1/policy`: signed by the device key the client keeps.
fn proof(state: &std::path::Path, action: &str, iat: i64) -> String {
    let pkcs8 = std::fs::read(state.join("device-key.p8")).expect("key");
    let device = lease_claims(state)["device"]
        .as_str()
        .expect("device")
        .to_string();
    let kid = lease_claims(state)["cnf"]["jkt"]
        .as_str()
        .expect("jkt")
        .to_string();
    seatgate::domain::jose::sign_eddsa(
        &pkcs8,
        &kid,
        "seatgate-proof+jwt",
        &json!({"action": action, "device": device, "iat": iat}),
    )
    .expect("sign")
}

#[test]
#[ignore = "needs Python with pysaml2 (scripts/test-venv); scripts/test runs it"]
fn a_policy_fetch_takes_a_fresh_proof_for_this_action_and_honours_etags() {
    let (s, idp, _ryan, kim) = setup("[lease]\npoll_interval_secs = 1\n");
    ok(&s, &["license", "set", "Parallels Desktop", "--seats", "5"]);
    let state = tempfile::tempdir().expect("tmp");
    activate(&s, &idp, state.path(), "ryan@contoso.com");
    let now = seatgate::clock::now_unix() + 5;
    let fetch = |p: &str, etag: Option<&str>| {
        let auth = format!("Device {p}");
        let mut headers = vec![("Authorization", auth.as_str())];
        if let Some(e) = etag {
            headers.push(("If-None-Match", e));
        }
        s.request("GET", "/api/v1/policy", &headers, b"")
    };
    let first = fetch(&proof(state.path(), "policy", now), None);
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.header("content-type"), Some("application/jose"));
    let etag = first.header("etag").expect("etag").to_string();
    // The same proof again is a replay; a renewal's proof is not a policy proof.
    assert_eq!(fetch(&proof(state.path(), "policy", now), None).status, 401);
    assert_eq!(
        fetch(&proof(state.path(), "renew", now + 1), None).status,
        401
    );
    assert_eq!(
        fetch(&proof(state.path(), "policy", now + 2), Some(&etag)).status,
        304
    );
    assert_eq!(
        fetch(
            &proof(state.path(), "policy", now + 3),
            Some("\"other\", W/\"x\"")
        )
        .status,
        200
    );
    // No proof: 401; a proof in a query or body of a GET is not read.
    assert_eq!(s.get("/api/v1/policy").status, 401);
    // The schema is public and versioned.
    let schema = s.get("/api/v1/policy-schema");
    assert_eq!(schema.status, 200);
    assert_eq!(schema.json()["$id"], "urn:seatgate:policy:1");

    // A deprovisioned person's Mac gets no policy.
    let r = s.scim().patch(
        &format!("/Users/{}", user_id(&s, "ryan@contoso.com")),
        json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": false}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let refused = fetch(&proof(state.path(), "policy", now + 4), None);
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert_eq!(refused.json()["reason"], "USER_INACTIVE");
    let _ = kim;
}

fn user_id(s: &TestServer, email: &str) -> String {
    db_query(
        s,
        &format!("SELECT id FROM users WHERE user_name = '{email}'"),
    )[0][0]
        .clone()
}

#[test]
#[ignore = "needs Python with jsonschema (scripts/test-venv); scripts/test runs it"]
fn the_published_schema_accepts_what_the_gateway_accepts_and_refuses_the_rest() {
    let s = crate::support::server().start();
    let schema = s.get("/api/v1/policy-schema").text();
    let cases = json!([
        [true, {"restricted_actions": ["create_vm"], "usb": {"default": "ask", "exceptions": [{"device": "05ac:12a8", "action": "deny"}]},
                "vm_expiration": {"mode": "date", "date": "2027-06-30", "warn_days": 14}, "lock_on_suspend": true,
                "hide_developer_tools": false, "support_link": {"url": "mailto:it@contoso.com", "label": "IT"},
                "update_branch": "beta", "customer_experience_program": false, "lease_renewal_seconds": 86400,
                "offline_grace_seconds": 86400}],
        [true, {"vm_expiration": {"mode": "never"}, "update_branch": "20.1"}],
        [false, {"restricted_actions": ["fly"]}],
        [false, {"usb": {"default": "maybe"}}],
        [false, {"vm_expiration": {"mode": "date"}}],
        [false, {"support_link": {"url": "javascript:alert(1)", "label": "x"}}],
        [false, {"update_branch": "nightly"}],
        [false, {"lease_renewal_seconds": 59}],
        [false, {"colour": "blue"}]
    ]);
    let script = r#"
import json, sys, jsonschema
schema = json.loads(sys.argv[1]); cases = json.loads(sys.argv[2])
jsonschema.Draft202012Validator.check_schema(schema)
v = jsonschema.Draft202012Validator(schema)
print(json.dumps([v.is_valid(doc) for _, doc in cases]))
"#;
    let out = Command::new(python())
        .args(["-c", script, &schema, &cases.to_string()])
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts: Vec<bool> = serde_json::from_slice(&out.stdout).expect("verdicts");
    for (case, schema_ok) in cases.as_array().expect("cases").iter().zip(verdicts) {
        let name = format!("t{}", rand_suffix());
        let (code, _, err) = s.cli(&["policy", "create", &name, "--set", "lock_on_suspend=true"]);
        assert_eq!(code, 0, "{err}");
        let file = s.data_dir.join("p.json");
        std::fs::write(&file, case[1].to_string()).expect("write");
        let (code, _, err) = s.cli(&[
            "policy",
            "set",
            &name,
            "--file",
            file.to_str().expect("utf8"),
        ]);
        assert_eq!(case[0], json!(schema_ok), "the schema on {}", case[1]);
        assert_eq!(code == 0, schema_ok, "the gateway on {}: {err}", case[1]);
    }
}

fn rand_suffix() -> String {
    seatgate::crypto::random_hex(4)
}

/// A second IdP connection's group of the same name never gets the first one's policy,
/// and an assignment names a connection that exists.
#[test]
fn a_policy_for_one_connections_group_never_reaches_another_connections_users() {
    let s = crate::support::server().start();
    let contoso = crate::kit::saml::TestIdp::new("https://idp.contoso.example/metadata");
    let fabrikam = crate::kit::saml::TestIdp::new("https://idp.fabrikam.example/metadata");
    let a = crate::saml::connect(&s, "Contoso", "okta", "contoso.com", &contoso.metadata());
    let b = crate::saml::connect(&s, "Fabrikam", "okta", "fabrikam.com", &fabrikam.metadata());
    for (conn, email) in [(&a, "ryan@contoso.com"), (&b, "eve@fabrikam.com")] {
        let scim = s.scim_for(conn);
        let user = scim.post("/Users", json!({"userName": email, "active": true}));
        assert_eq!(user.status, 201, "{}", user.text());
        let g = scim.post(
            "/Groups",
            json!({"displayName": "Engineering", "members": [{"value": user.json()["id"]}]}),
        );
        assert_eq!(g.status, 201, "{}", g.text());
    }
    ok(
        &s,
        &[
            "policy",
            "create",
            "Strict",
            "--set",
            "hide_developer_tools=true",
        ],
    );
    let (code, _, err) = s.cli(&[
        "policy",
        "assign",
        "Strict",
        "--group",
        "Engineering",
        "--priority",
        "1",
        "--connection",
        "conn-nope",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no IdP connection"), "{err}");
    ok(
        &s,
        &[
            "policy",
            "assign",
            "Strict",
            "--group",
            "Engineering",
            "--priority",
            "1",
            "--connection",
            &a,
        ],
    );
    let ryan = ok(&s, &["explain", "ryan@contoso.com"]);
    assert!(
        ryan.contains("Hide developer tools: on (from policy \"Strict\""),
        "{ryan}"
    );
    let eve = ok(&s, &["explain", "eve@fabrikam.com"]);
    assert!(
        eve.contains("Hide developer tools: off (from built-in)"),
        "{eve}"
    );
    // Without a connection the group would never match: refused, saying where it is.
    ok(
        &s,
        &["policy", "create", "Loose", "--set", "lock_on_suspend=true"],
    );
    let (code, _, err) = s.cli(&[
        "policy",
        "assign",
        "Loose",
        "--group",
        "engineering",
        "--priority",
        "2",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("only for connection {a}, connection {b}"))
            || err.contains(&format!("only for connection {b}, connection {a}")),
        "{err}"
    );
    let eve = ok(&s, &["explain", "eve@fabrikam.com"]);
    assert!(
        eve.contains("Lock a virtual machine on suspend: off (from built-in)"),
        "{eve}"
    );
    // Removing a connection removes its groups' assignments (audited), so nothing is
    // left to apply if an id came back, and the policy can be deleted.
    let removed = ok(&s, &["idp", "remove", &a]);
    assert!(
        removed.contains("1 policy assignment(s) removed"),
        "{removed}"
    );
    assert!(
        !ok(&s, &["policy", "list"]).contains("priority"),
        "no assignment left"
    );
    ok(&s, &["policy", "delete", "Strict"]);
}

/// A license key's Macs get the key's policy (set in the portal), over the default.
#[test]
fn a_license_keys_macs_get_its_policy_set_in_the_portal() {
    let s = crate::support::server().start();
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
    let key = ok(
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
            "Lab",
        ],
    );
    let key = key.lines().last().expect("key").trim().to_string();
    ok(
        &s,
        &[
            "policy",
            "create",
            "Lab Macs",
            "--set",
            "lock_on_suspend=true",
        ],
    );
    ok(
        &s,
        &[
            "policy",
            "create",
            "Everyone",
            "--set",
            "lock_on_suspend=false",
            "--set",
            "update_branch=beta",
        ],
    );
    ok(&s, &["policy", "default", "Everyone"]);
    let cookie = session(&s);
    let page = get(&s, "/admin/keys", &cookie).text();
    let id = db_query(&s, "SELECT id FROM policies WHERE name = 'Lab Macs'")[0][0].clone();
    let r = submit(&s, &cookie, &page, "Set policy", &[("policy", &id)]);
    assert_eq!(r.status, 303, "{}", r.text());
    let explained = ok(&s, &["explain", &key]);
    assert!(
        explained.contains(
            "Lock a virtual machine on suspend: on (from policy \"Lab Macs\" of the license key)"
        ),
        "{explained}"
    );
    assert!(
        explained.contains("Update branch: beta (from the default policy \"Everyone\")"),
        "{explained}"
    );

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
    let (fetched, out) = policy(state.path());
    assert!(fetched, "{out}");
    assert!(
        out.contains("Lock a virtual machine on suspend: on")
            && out.contains("Update branch: beta"),
        "{out}"
    );
    // Back to the default: the next fetch says so.
    ok(&s, &["policy", "key", "Lab", "--none"]);
    let (_, out) = policy(state.path());
    assert!(
        out.contains("(fetched)") && out.contains("Lock a virtual machine on suspend: off"),
        "{out}"
    );
    let audit = db_query(
        &s,
        "SELECT detail FROM audit_log WHERE action = 'license_key_changed'",
    );
    let last: Value = serde_json::from_str(&audit[1][0]).expect("json");
    assert_eq!(last["changes"][0], "policy: \"Lab Macs\" → none");
}

/// What a form or a client did not mean is refused with a reason, never dropped: values
/// the form does not offer, exceptions without a default, a pinned word; the default
/// policy is not deleted under the Macs; an expired proof; unknown assignments.
#[test]
fn forms_proofs_and_deletions_refuse_what_was_not_meant() {
    let s = crate::support::server().start();
    let cookie = session(&s);
    ok(&s, &["policy", "create", "Base"]);
    let id = db_query(&s, "SELECT id FROM policies WHERE name = 'Base'")[0][0].clone();
    let page = get(&s, &format!("/admin/policies/{id}"), &cookie).text();
    for (fields, says) in [
        (
            vec![("lock_on_suspend", "maybe")],
            "lock_on_suspend must be Inherit or one of",
        ),
        (
            vec![("usb_exceptions", "05ac:12a8 deny")],
            "USB exceptions need the default too",
        ),
        (
            vec![("update_branch", "pinned"), ("update_version", "beta")],
            "pinned version is numbers and dots",
        ),
        (
            vec![("action_create_vm", "yes")],
            "Restrict the actions checked below",
        ),
    ] {
        let r = submit(&s, &cookie, &page, "Save policy", &fields);
        assert_eq!(r.status, 400, "{fields:?}: {}", r.text());
        assert!(r.text().contains(says), "{fields:?}: {}", r.text());
    }
    assert_eq!(
        db_query(
            &s,
            &format!("SELECT settings FROM policies WHERE id = '{id}'")
        )[0][0],
        "{}"
    );
    // Lease windows that are not whole hours survive a save of the form as shown.
    ok(
        &s,
        &[
            "policy",
            "set",
            "Base",
            "--set",
            "lease_renewal_seconds=5400",
            "--set",
            "offline_grace_seconds=3601",
        ],
    );
    let page = get(&s, &format!("/admin/policies/{id}"), &cookie).text();
    let r = submit(&s, &cookie, &page, "Save policy", &[]);
    assert_eq!(r.status, 303, "{}", r.text());
    let saved: Value = serde_json::from_str(
        &db_query(
            &s,
            &format!("SELECT settings FROM policies WHERE id = '{id}'"),
        )[0][0],
    )
    .expect("json");
    assert_eq!(
        saved,
        json!({"lease_renewal_seconds": 5400, "offline_grace_seconds": 3601})
    );

    ok(&s, &["policy", "default", "Base"]);
    let (code, _, err) = s.cli(&["policy", "delete", "Base"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is the default policy"), "{err}");
    let (code, _, err) = s.cli(&["policy", "unassign", "pa-nope"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("there is no policy assignment"), "{err}");

    let token = crate::admin_api::admin_token(&s);
    for bad in ["limit=0", "limit=1001", "limit=abc", "offset=-1"] {
        let r =
            crate::admin_api::call(&s, &token, "GET", &format!("/api/v1/admin/vms?{bad}"), None);
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }

    // A proof past its own exp is refused.
    let license = ok(&s, &["license", "add", "--product", "P", "--seats", "2"])
        .trim()
        .to_string();
    let key = ok(
        &s,
        &[
            "license",
            "key",
            "create",
            "--license",
            &license,
            "--devices",
            "1",
        ],
    );
    let key = key.lines().last().expect("key").trim().to_string();
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
    let pkcs8 = std::fs::read(state.path().join("device-key.p8")).expect("key");
    let claims = lease_claims(state.path());
    let now = seatgate::clock::now_unix();
    let expired = seatgate::domain::jose::sign_eddsa(
        &pkcs8,
        claims["cnf"]["jkt"].as_str().expect("jkt"),
        "seatgate-proof+jwt",
        &json!({"action": "policy", "device": claims["device"], "iat": now, "exp": now - 1}),
    )
    .expect("sign");
    let r = s.request(
        "GET",
        "/api/v1/policy",
        &[("Authorization", &format!("Device {expired}"))],
        b"",
    );
    assert_eq!(r.status, 401, "{}", r.text());
}
