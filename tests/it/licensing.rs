//! Seats follow the directory: licenses, sublicenses and group mappings from the CLI; SCIM
//! changes granting, queueing and revoking seats in the same request; `explain`; the
//! append-only audit log; no pool oversubscribed under concurrency.

use serde_json::{Value, json};

use crate::support::{Scim, TestServer, db_query, server};

fn ok(out: (i32, String, String)) -> String {
    assert_eq!(out.0, 0, "{}{}", out.1, out.2);
    out.1
}

fn user(scim: &Scim<'_>, name: &str) -> String {
    let r = scim.post(
        "/Users",
        json!({"userName": name, "active": true, "emails": [{"value": name, "primary": true}]}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_str().expect("id").to_string()
}

fn group(scim: &Scim<'_>, name: &str, members: &[&String]) -> String {
    let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
    let r = scim.post("/Groups", json!({"displayName": name, "members": members}));
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_str().expect("id").to_string()
}

fn patch_members(scim: &Scim<'_>, group: &str, op: &str, members: &[&String]) {
    let value: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
    let r = scim.patch(
        &format!("/Groups/{group}"),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": op, "path": "members", "value": value}]}),
    );
    assert!(r.status == 204 || r.status == 200, "{}", r.text());
}

fn set_active(scim: &Scim<'_>, id: &str, active: bool) {
    let r = scim.patch(
        &format!("/Users/{id}"),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "value": {"active": active}}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// (state, pool) of a user's seat, or None.
fn seat(s: &TestServer, user_id: &str) -> Option<(String, String)> {
    db_query(
        s,
        &format!("SELECT state, coalesce(sublicense_id, 'primary') FROM seats WHERE user_id = '{user_id}'"),
    )
    .into_iter()
    .next()
    .map(|r| (r[0].clone(), r[1].clone()))
}

fn explain(s: &TestServer, email: &str) -> Value {
    let out = ok(s.cli(&["explain", email, "--json"]));
    serde_json::from_str(&out).expect("json")
}

#[test]
fn seats_follow_the_directory_and_freed_seats_go_to_the_next_pending_user() {
    let s = server().start();
    let idp = crate::saml::TestIdp::new("https://idp.contoso.example/saml");
    crate::saml::connect(&s, "Contoso", "okta", "contoso.com", &idp.metadata());
    let license = ok(s.cli(&[
        "license",
        "add",
        "--product",
        "Parallels Desktop",
        "--seats",
        "4",
        "--key",
        "PD-XXXX",
    ]))
    .trim()
    .to_string();
    let eng = ok(s.cli(&[
        "sublicense",
        "add",
        "--license",
        "Parallels Desktop",
        "--name",
        "Engineering",
        "--seats",
        "2",
        "--reserved",
    ]))
    .trim()
    .to_string();
    // Reserved seats cannot exceed the license.
    let (code, _, err) = s.cli(&[
        "sublicense",
        "add",
        "--license",
        &license,
        "--name",
        "Too big",
        "--seats",
        "3",
        "--reserved",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("more than the license"), "{err}");
    ok(s.cli(&[
        "group-map",
        "add",
        "--group",
        "Engineers",
        "--sublicense",
        "Engineering",
    ]));
    ok(s.cli(&["group-map", "add", "--group", "Seatgate Users", "--primary"]));

    let scim = s.scim();
    let ids: Vec<String> = ["ann", "bob", "cat", "dan", "eve"]
        .iter()
        .map(|n| user(&scim, &format!("{n}@contoso.com")))
        .collect();
    let [ann, bob, cat, dan, eve] = [&ids[0], &ids[1], &ids[2], &ids[3], &ids[4]];

    // Engineering holds 2 reserved seats; the primary pool has the other 2.
    let engineers = group(&scim, "Engineers", &[ann, bob, cat]);
    let users = group(&scim, "Seatgate Users", &[dan]);
    assert_eq!(seat(&s, ann), Some(("assigned".into(), eng.clone())));
    assert_eq!(seat(&s, bob), Some(("assigned".into(), eng.clone())));
    assert_eq!(
        seat(&s, cat),
        Some(("pending".into(), eng.clone())),
        "a full pool queues, never falls back"
    );
    assert_eq!(seat(&s, dan), Some(("assigned".into(), "primary".into())));
    assert_eq!(seat(&s, eve), None, "not in a mapped group: no seat");
    let e = explain(&s, "cat@contoso.com");
    assert_eq!(e["verdict"], "NO_SEATS", "{e}");
    assert_eq!(e["licenses"][0]["pool_used"], 2);
    assert_eq!(e["licenses"][0]["pool_capacity"], 2);
    assert_eq!(explain(&s, "eve@contoso.com")["verdict"], "NOT_ENTITLED");
    assert_eq!(explain(&s, "ann@contoso.com")["verdict"], "OK");
    assert_eq!(
        explain(&s, "nobody@contoso.com")["verdict"],
        "USER_NOT_PROVISIONED"
    );
    assert_eq!(
        explain(&s, "ann@elsewhere.com")["verdict"],
        "DOMAIN_UNKNOWN"
    );
    let human = ok(s.cli(&["explain", "cat@contoso.com"]));
    assert!(
        human.contains("group        Engineers → sublicense:"),
        "{human}"
    );
    assert!(human.contains("activation   NO_SEATS"), "{human}");

    // Deactivating Ann frees her seat and Cat gets it, within the same SCIM request.
    set_active(&scim, ann, false);
    assert_eq!(seat(&s, ann), None);
    assert_eq!(seat(&s, cat), Some(("assigned".into(), eng.clone())));
    assert_eq!(explain(&s, "ann@contoso.com")["verdict"], "USER_INACTIVE");

    // Removal from the mapped group frees the seat; deletion too.
    patch_members(&scim, &engineers, "remove", &[bob]);
    assert_eq!(seat(&s, bob), None);
    patch_members(&scim, &users, "add", &[eve, bob]);
    assert_eq!(seat(&s, eve), Some(("assigned".into(), "primary".into())));
    assert_eq!(
        seat(&s, bob),
        Some(("pending".into(), "primary".into())),
        "primary pool: 2 seats, dan and eve"
    );
    assert_eq!(scim.delete(&format!("/Users/{dan}")).status, 204);
    assert_eq!(seat(&s, dan), None);
    assert_eq!(
        seat(&s, bob),
        Some(("assigned".into(), "primary".into())),
        "bob moves up when dan is deleted"
    );

    // An expired license entitles no one; un-expiring it restores the seats.
    ok(s.cli(&["license", "set", &license, "--expires", "2020-01-31"]));
    assert_eq!(seat(&s, bob), Some(("pending".into(), "primary".into())));
    assert_eq!(explain(&s, "bob@contoso.com")["verdict"], "LICENSE_EXPIRED");
    ok(s.cli(&["license", "set", &license, "--expires", "never"]));
    assert_eq!(seat(&s, bob), Some(("assigned".into(), "primary".into())));

    // Reserved seats cannot outgrow the license, either way round.
    let (code, _, err) = s.cli(&["license", "set", &license, "--seats", "1"]);
    assert_eq!(code, 2);
    assert!(err.contains("shrink them first"), "{err}");
    let (code, _, err) = s.cli(&["sublicense", "set", "Engineering", "--seats", "5"]);
    assert_eq!(code, 2);
    assert!(err.contains("more than the license"), "{err}");

    let list = ok(s.cli(&["license", "list"]));
    assert!(
        list.contains("primary pool: 2 used, 0 pending, 0 free of 2"),
        "{list}"
    );
    assert!(
        list.contains("Engineering (reserved, no expiry): 1 used, 0 pending, 1 free of 2"),
        "{list}"
    );

    // The audit log tells the story, per user, and cannot be rewritten.
    let story = ok(s.cli(&["audit", "--user", "ann@contoso.com"]));
    assert!(
        story.contains("scim:test seat_revoked") && story.contains("USER_INACTIVE"),
        "{story}"
    );
    assert!(story.contains("scim:test seat_granted"), "{story}");
    let cat_story = ok(s.cli(&["audit", "--user", "cat@contoso.com"]));
    assert!(
        cat_story.contains("seat_pending") && cat_story.contains("NO_SEATS"),
        "{cat_story}"
    );
    assert!(cat_story.contains("a seat was freed"), "{cat_story}");
    let conn = rusqlite::Connection::open(s.data_dir.join("seatgate.db")).expect("db");
    let refused = conn.execute("UPDATE audit_log SET action = 'x'", []);
    assert!(refused.is_err_and(|e| e.to_string().contains("append-only")));
    assert!(conn.execute("DELETE FROM audit_log", []).is_err());
    drop(conn);
    assert_usage_consistent(&s);
    crate::support::assert_still_serving(&s);
}

#[test]
fn a_dynamic_sublicense_competes_for_the_primary_pool_and_says_so() {
    let s = server().start();
    let idp = crate::saml::TestIdp::new("https://idp.contoso.example/saml");
    crate::saml::connect(&s, "Contoso", "okta", "contoso.com", &idp.metadata());
    ok(s.cli(&[
        "license",
        "add",
        "--product",
        "Parallels Desktop",
        "--seats",
        "3",
    ]));
    let design = ok(s.cli(&[
        "sublicense",
        "add",
        "--license",
        "Parallels Desktop",
        "--name",
        "Design",
        "--seats",
        "2",
    ]))
    .trim()
    .to_string();
    ok(s.cli(&[
        "group-map",
        "add",
        "--group",
        "Designers",
        "--sublicense",
        "Design",
    ]));
    ok(s.cli(&["group-map", "add", "--group", "Staff", "--primary"]));
    let scim = s.scim();
    let [ann, bob, cat, dan] =
        ["ann", "bob", "cat", "dan"].map(|n| user(&scim, &format!("{n}@contoso.com")));
    group(&scim, "Designers", &[&ann]);
    group(&scim, "Staff", &[&bob, &cat, &dan]);
    // 3 seats: Ann holds one through Design, Bob and Cat the other two; Dan waits.
    assert_eq!(seat(&s, &ann), Some(("assigned".into(), design.clone())));
    assert_eq!(seat(&s, &dan), Some(("pending".into(), "primary".into())));
    let list = ok(s.cli(&["license", "list"]));
    assert!(
        list.contains(
            "primary pool: 3 used, 1 pending, 0 free of 3 (1 used through dynamic sublicenses)"
        ),
        "{list}"
    );
    assert!(
        list.contains("Design (dynamic, no expiry): 1 used, 0 pending, 0 free of 2"),
        "Design has a seat of its own left but the primary pool is full: {list}"
    );

    // A second designer waits (after Dan, within the same second), and explain names the
    // primary pool as the cause.
    let eve = user(&scim, "eve@contoso.com");
    let designers = db_query(&s, "SELECT id FROM groups WHERE display_name = 'Designers'");
    patch_members(&scim, &designers[0][0], "add", &[&eve]);
    assert_eq!(seat(&s, &eve), Some(("pending".into(), design.clone())));
    let e = explain(&s, "eve@contoso.com");
    assert_eq!(e["verdict"], "NO_SEATS", "{e}");
    assert_eq!(e["licenses"][0]["pool_free"], 0, "{e}");
    assert_eq!(e["licenses"][0]["primary_full"], json!([3, 3]), "{e}");
    assert!(
        e["because"].as_str().is_some_and(
            |b| b.contains("the primary pool it draws from is full (3 of 3 seats used)")
        ),
        "{e}"
    );

    // Bob leaves: the oldest waiter (Dan, primary) gets the seat, not Eve.
    set_active(&scim, &bob, false);
    assert_eq!(seat(&s, &dan), Some(("assigned".into(), "primary".into())));
    assert_eq!(seat(&s, &eve), Some(("pending".into(), design.clone())));

    // Shrinking a pool below its use takes no seat away; it grants nothing until under.
    let out = ok(s.cli(&["sublicense", "set", "Design", "--seats", "0"]));
    assert!(out.contains("sublicense Design changed"), "{out}");
    assert_eq!(seat(&s, &ann), Some(("assigned".into(), design.clone())));
    let list = ok(s.cli(&["license", "list"]));
    assert!(
        list.contains("Design (dynamic, no expiry): 1 used, 1 pending, 0 free of 0"),
        "{list}"
    );

    // A sublicense goes only once nothing draws from it.
    let (code, _, err) = s.cli(&["sublicense", "remove", "Design"]);
    assert_eq!(code, 2);
    assert!(err.contains("group mapping(s) still grant seats"), "{err}");
    let mapping = db_query(
        &s,
        "SELECT id FROM group_mappings WHERE group_ref = 'Designers'",
    );
    ok(s.cli(&["group-map", "remove", &mapping[0][0]]));
    assert_eq!(seat(&s, &ann), None, "Ann is in no other mapped group");
    assert_eq!(seat(&s, &eve), None);
    let out = ok(s.cli(&["sublicense", "remove", &design]));
    assert!(out.contains("removed"), "{out}");
    let audit = ok(s.cli(&["audit", "--action", "sublicense_removed"]));
    assert!(audit.contains("admin:cli sublicense_removed"), "{audit}");
    assert!(!ok(s.cli(&["license", "list"])).contains("Design"));
}

#[test]
fn a_sublicense_expiring_while_running_moves_its_users_to_the_primary_pool() {
    let s = server().start();
    ok(s.cli(&["license", "add", "--product", "Pro", "--seats", "3"]));
    let contractors = ok(s.cli(&[
        "sublicense",
        "add",
        "--license",
        "Pro",
        "--name",
        "Contractors",
        "--seats",
        "2",
        "--reserved",
        "--expires",
        "2099-12-31",
    ]))
    .trim()
    .to_string();
    ok(s.cli(&[
        "group-map",
        "add",
        "--group",
        "Contractors",
        "--sublicense",
        "Contractors",
    ]));
    ok(s.cli(&["group-map", "add", "--group", "Staff", "--primary"]));
    let scim = s.scim();
    let [ann, bob, cat] = ["ann", "bob", "cat"].map(|n| user(&scim, &format!("{n}@contoso.com")));
    group(&scim, "Contractors", &[&ann, &bob]);
    group(&scim, "Staff", &[&cat]);
    assert_eq!(
        seat(&s, &ann),
        Some(("assigned".into(), contractors.clone()))
    );
    assert_eq!(
        seat(&s, &bob),
        Some(("assigned".into(), contractors.clone()))
    );
    assert_eq!(seat(&s, &cat), Some(("assigned".into(), "primary".into())));

    // The sublicense expires a second from now, with no directory change after it: the
    // server notices on its own. Its 2 seats return to the primary pool (now 3), where
    // Ann and Bob draw next to Cat.
    crate::support::db_exec(
        &s,
        &format!("UPDATE sublicenses SET expires_at = unixepoch() + 1 WHERE id = '{contractors}'"),
    );
    crate::support::wait_until(
        std::time::Duration::from_secs(15),
        "the expiry to be applied",
        || seat(&s, &ann).is_none_or(|(_, pool)| pool == "primary"),
    );
    for u in [&ann, &bob, &cat] {
        assert_eq!(seat(&s, u), Some(("assigned".into(), "primary".into())));
    }
    let story = ok(s.cli(&["audit", "--user", "ann@contoso.com"]));
    assert!(story.contains("system seat_"), "{story}");
    assert_usage_consistent(&s);
}

#[test]
fn concurrent_grants_never_oversubscribe_a_pool() {
    let s = server().start();
    ok(s.cli(&["license", "add", "--product", "Pro", "--seats", "5"]));
    ok(s.cli(&["group-map", "add", "--group", "Everyone", "--primary"]));
    let scim = s.scim();
    let everyone = group(&scim, "Everyone", &[]);
    let ids: Vec<String> = (0..40)
        .map(|i| user(&scim, &format!("u{i}@contoso.com")))
        .collect();
    std::thread::scope(|scope| {
        for chunk in ids.chunks(5) {
            let s = &s;
            let everyone = &everyone;
            scope.spawn(move || {
                let scim = s.scim();
                for id in chunk {
                    patch_members(&scim, everyone, "add", &[id]);
                }
            });
        }
    });
    let counts = db_query(
        &s,
        "SELECT state, count(*) FROM seats GROUP BY state ORDER BY state",
    );
    assert_eq!(
        counts,
        [
            ["assigned".to_string(), "5".to_string()],
            ["pending".to_string(), "35".to_string()]
        ]
    );

    // Concurrent removals: every freed seat is handed on; still never more than 5.
    let assigned: Vec<String> = db_query(&s, "SELECT user_id FROM seats WHERE state = 'assigned'")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    std::thread::scope(|scope| {
        for id in &assigned {
            let s = &s;
            let everyone = &everyone;
            scope.spawn(move || patch_members(&s.scim(), everyone, "remove", &[id]));
        }
    });
    let counts = db_query(
        &s,
        "SELECT state, count(*) FROM seats GROUP BY state ORDER BY state",
    );
    assert_eq!(
        counts,
        [
            ["assigned".to_string(), "5".to_string()],
            ["pending".to_string(), "30".to_string()]
        ]
    );
    assert_usage_consistent(&s);
}

/// The trigger-kept pool counters agree with the seats themselves.
fn assert_usage_consistent(s: &TestServer) {
    let counted = db_query(
        s,
        "SELECT license_id, coalesce(sublicense_id, ''), count(*) FROM seats WHERE state = 'assigned' GROUP BY 1, 2 ORDER BY 1, 2",
    );
    let kept = db_query(
        s,
        "SELECT license_id, pool, assigned FROM pool_usage WHERE assigned <> 0 ORDER BY 1, 2",
    );
    assert_eq!(counted, kept);
}
