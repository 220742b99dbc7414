//! SCIM as real IdPs drive it: each test replays one IdP's request sequence (shapes from
//! IDP-DIALECTS.md) against the real binary and asserts the exact responses and stored
//! state. Then the bad inputs, concurrency and durability.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Scim, assert_still_serving, db_query, poll_until, server};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

fn id_of(r: &crate::support::HttpResponse) -> String {
    r.json()["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {}", r.text()))
        .to_string()
}

/// The id of the first resource of a ListResponse.
fn first_id(r: &crate::support::HttpResponse) -> String {
    r.json()["Resources"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no resource in {}", r.text()))
        .to_string()
}

fn total(r: &crate::support::HttpResponse) -> i64 {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["totalResults"].as_i64().expect("totalResults")
}

/// The directory events recorded so far, as "kind" strings.
fn events(s: &crate::support::TestServer) -> Vec<String> {
    db_query(s, "SELECT kind FROM directory_events ORDER BY id")
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

fn entra_user(upn: &str, object_id: &str) -> Value {
    json!({
        "schemas": [USER, ENTERPRISE],
        "externalId": object_id,
        "userName": upn,
        "active": true,
        "displayName": "Ryan Leenay",
        "emails": [{"primary": true, "type": "work", "value": upn}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Ryan Leenay", "familyName": "Leenay", "givenName": "Ryan"},
        "addresses": [{"type": "work", "locality": "Redmond", "country": "US"}],
        "phoneNumbers": [{"type": "work", "value": "+1 555 0100"}],
        "preferredLanguage": "en-US",
        "title": "Engineer",
        ENTERPRISE: {"department": "Engineering", "employeeNumber": "1001", "manager": {"value": "mgr-1"}},
        "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User": {"tag": "x"},
    })
}

#[test]
fn entra_initial_sync_then_disable_enable_delete() {
    let s = server().start();
    let scim = s.scim();
    // Entra's connection test: a random GUID filter must be an empty 200.
    assert_eq!(
        total(&scim.filter("Users", "id eq \"8a1f1c2e-7e4a-4a5e-9a1b-1c2d3e4f5a6b\"")),
        0
    );
    // Match by filter first, then create.
    assert_eq!(
        total(&scim.filter("Users", "userName eq \"ryan@contoso.com\"")),
        0
    );
    let created = scim.post("/Users", entra_user("Ryan@Contoso.com", "oid-1"));
    assert_eq!(created.status, 201, "{}", created.text());
    let uid = id_of(&created);
    assert_eq!(
        created.header("location"),
        Some(format!("https://127.0.0.1:{}/scim/v2/Users/{uid}", s.addr.port()).as_str())
    );
    let body = created.json();
    assert_eq!(body["userName"], "Ryan@Contoso.com", "returned as sent");
    assert_eq!(body[ENTERPRISE]["department"], "Engineering");
    assert_eq!(body["schemas"], json!([USER, ENTERPRISE]));
    // The unknown extension and attributes are kept, not refused.
    assert_eq!(
        body["urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User"]["tag"],
        "x"
    );

    // Entra matches later by its non-RFC emails form and by externalId.
    assert_eq!(
        total(&scim.filter(
            "Users",
            "emails[type eq \"work\"].value eq \"ryan@contoso.com\""
        )),
        1
    );
    assert_eq!(total(&scim.filter("Users", "externalId eq \"oid-1\"")), 1);

    // Groups: created, then membership by PATCH, with Entra's extra schema URI.
    let group = scim.post("/Groups", json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
        "externalId": "gid-1",
        "displayName": "Seatgate Users",
        "members": [],
    }));
    assert_eq!(group.status, 201, "{}", group.text());
    let gid = id_of(&group);
    let add = scim.patch(
        &format!("/Groups/{gid}"),
        json!({"schemas": [PATCH], "Operations": [
            {"op": "Add", "path": "members", "value": [{"value": uid}]}
        ]}),
    );
    assert_eq!(add.status, 204, "{}", add.text());
    let read = scim.get(&format!("/Groups/{gid}?excludedAttributes=members"));
    assert!(
        read.json().get("members").is_none(),
        "Entra's excludedAttributes=members"
    );
    assert_eq!(
        scim.get(&format!("/Users/{uid}")).json()["groups"][0]["value"],
        gid
    );

    // Disable, enable (booleans as strings), update a work email by filtered path.
    let off = scim.patch(
        &format!("/Users/{uid}"),
        json!({"schemas": [PATCH], "Operations": [
            {"op": "Replace", "path": "active", "value": "False"}
        ]}),
    );
    assert_eq!(off.status, 200, "{}", off.text());
    assert_eq!(off.json()["active"], false);
    assert_eq!(
        total(&scim.filter("Users", "userName eq \"ryan@contoso.com\"")),
        1,
        "inactive users are still returned"
    );
    let on = scim.patch(&format!("/Users/{uid}"), json!({"schemas": [PATCH], "Operations": [
        {"op": "Replace", "path": "active", "value": "True"},
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "ryan.leenay@contoso.com"},
        {"op": "Add", "path": "manager", "value": [{"value": "mgr-2"}]},
    ]}));
    assert_eq!(on.status, 200, "{}", on.text());
    assert_eq!(on.json()["active"], true);
    assert_eq!(on.json()["emails"][0]["value"], "ryan.leenay@contoso.com");
    assert_eq!(on.json()[ENTERPRISE]["manager"]["value"], "mgr-2");

    // Remove from group (Entra's value-list form), then delete ~30 days later.
    let rm = scim.patch(
        &format!("/Groups/{gid}"),
        json!({"schemas": [PATCH], "Operations": [
            {"op": "Remove", "path": "members", "value": [{"value": uid}]}
        ]}),
    );
    assert_eq!(rm.status, 204);
    assert_eq!(scim.delete(&format!("/Users/{uid}")).status, 204);
    assert_eq!(scim.get(&format!("/Users/{uid}")).status, 404);
    assert_eq!(scim.delete(&format!("/Users/{uid}")).status, 404);

    assert_eq!(
        events(&s),
        [
            "user_created",
            "group_created",
            "members_added",
            "user_deactivated",
            "user_reactivated",
            "members_removed",
            "user_deleted"
        ]
    );
    assert_eq!(db_query(&s, "SELECT count(*) FROM users")[0][0], "0");
}

#[test]
fn entra_aad_opt_dialect() {
    let s = server().start();
    let scim = s.scim();
    let uid = id_of(&scim.post("/Users", entra_user("a@contoso.com", "oid-a")));
    let other = id_of(&scim.post("/Users", entra_user("b@contoso.com", "oid-b")));
    let gid = id_of(&scim.post(
        "/Groups",
        json!({"displayName": "G", "members": [{"value": uid}, {"value": other}]}),
    ));
    let r = scim.patch(
        &format!("/Users/{uid}?aadOptscim062020"),
        json!({"schemas": [PATCH], "Operations": [{
            "op": "replace",
            "value": {
                "name.givenName": "Alice",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "2002",
                "active": false,
            }
        }]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let u = r.json();
    assert_eq!(u["name"]["givenName"], "Alice");
    assert_eq!(u["name"]["familyName"], "Leenay");
    assert_eq!(u[ENTERPRISE]["employeeNumber"], "2002");
    assert_eq!(u["active"], false);
    let rm = scim.patch(
        &format!("/Groups/{gid}?aadOptscim062020"),
        json!({"schemas": [PATCH], "Operations": [
            {"op": "remove", "path": format!("members[value eq \"{uid}\"]")}
        ]}),
    );
    assert_eq!(rm.status, 204);
    let members = scim.get(&format!("/Groups/{gid}")).json()["members"].clone();
    assert_eq!(
        members,
        json!([{"value": other, "$ref": format!("https://127.0.0.1:{}/scim/v2/Users/{other}", s.addr.port()), "type": "User"}])
    );
}

#[test]
fn okta_import_create_deactivate_and_group_push() {
    let s = server().start();
    let scim = s.scim();
    // Okta's connection test.
    let probe = scim.get("/Users?startIndex=1&count=2");
    assert_eq!(probe.status, 200);
    assert_eq!(probe.header("content-type"), Some("application/scim+json"));
    assert_eq!(probe.json()["startIndex"], 1);
    for i in 0..3 {
        let r = scim.post("/Users", json!({
            "schemas": [USER],
            "userName": format!("user{i}@okta.example"),
            "name": {"givenName": "U", "familyName": format!("{i}")},
            "emails": [{"primary": true, "value": format!("user{i}@okta.example"), "type": "work"}],
            "displayName": format!("User {i}"),
            "locale": "en-US",
            "externalId": format!("00u{i}"),
            "groups": [],
            "password": "Placeholder-From-Okta1",
            "active": true,
        }));
        assert_eq!(r.status, 201, "{}", r.text());
        assert!(
            r.json().get("password").is_none(),
            "the placeholder password is never echoed"
        );
    }
    assert!(
        !db_query(&s, "SELECT group_concat(resource) FROM users")[0][0].contains("Placeholder"),
        "nor stored"
    );
    let page = scim.get("/Users?startIndex=2&count=2&sortBy=userName");
    assert_eq!(page.json()["totalResults"], 3);
    assert_eq!(page.json()["itemsPerPage"], 2);
    assert_eq!(
        page.json()["Resources"][0]["userName"],
        "user1@okta.example"
    );
    // The last, partial page and a page past the end still report the true total.
    let last = scim.get("/Users?startIndex=3&count=2").json();
    assert_eq!(
        (last["totalResults"].clone(), last["itemsPerPage"].clone()),
        (json!(3), json!(1))
    );
    let past = scim.get("/Users?startIndex=10&count=2").json();
    assert_eq!(
        (past["totalResults"].clone(), past["itemsPerPage"].clone()),
        (json!(3), json!(0))
    );
    assert_eq!(scim.get("/Users?count=0").json()["totalResults"], 3);

    let u0 = first_id(&scim.filter("Users", "userName eq \"user0@okta.example\""));
    // Deactivation as Okta sends it: path-less replace.
    let r = scim.patch(
        &format!("/Users/{u0}"),
        json!({"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": false}}]}),
    );
    assert_eq!(r.json()["active"], false);
    // Okta AIW apps deactivate with a full PUT.
    let mut full = scim.get(&format!("/Users/{u0}")).json();
    full["active"] = json!(true);
    full["name"]["givenName"] = json!("Renamed");
    let r = scim.put(&format!("/Users/{u0}"), full);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["name"]["givenName"], "Renamed");
    assert_eq!(r.json()["active"], true);

    // Group push: create, several ops in one PATCH, rename with read-only id, full replace.
    let ids: Vec<String> = (0..3)
        .map(|i| first_id(&scim.filter("Users", &format!("userName eq \"user{i}@okta.example\""))))
        .collect();
    let gid = id_of(&scim.post("/Groups", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Okta Push", "members": [{"value": ids[0], "display": "user0"}]})));
    let r = scim.patch(
        &format!("/Groups/{gid}"),
        json!({"schemas": [PATCH], "Operations": [
            {"op": "replace", "value": {"id": gid, "displayName": "Okta Push Renamed"}},
            {"op": "add", "path": "members", "value": [{"value": ids[1]}, {"value": ids[2]}]},
            {"op": "remove", "path": format!("members[value eq \"{}\"]", ids[0])},
        ]}),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let g = scim.get(&format!("/Groups/{gid}")).json();
    assert_eq!(g["displayName"], "Okta Push Renamed");
    let mut got: Vec<String> = g["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["value"].as_str().expect("v").to_string())
        .collect();
    got.sort();
    let mut want = vec![ids[1].clone(), ids[2].clone()];
    want.sort();
    assert_eq!(got, want);
    let r = scim.patch(&format!("/Groups/{gid}"), json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "members", "value": [{"value": ids[0]}]}]}));
    assert_eq!(r.status, 204);
    assert_eq!(
        db_query(
            &s,
            &format!("SELECT user_id FROM group_members WHERE group_id = '{gid}'")
        ),
        vec![vec![ids[0].clone()]]
    );
    assert_eq!(
        total(&scim.filter("Groups", "displayName eq \"okta push renamed\"")),
        1
    );
}

#[test]
fn jumpcloud_put_with_null_emails_and_ping_filters() {
    let s = server().start();
    let scim = s.scim();
    let uid = id_of(&scim.post("/Users", json!({"schemas": [USER], "userName": "jc@example.com", "emails": [{"value": "jc@example.com", "type": "work", "primary": true}]})));
    let r = scim.put(&format!("/Users/{uid}"), json!({
        "schemas": [USER], "id": uid, "userName": "jc@example.com", "active": false, "emails": null, "name": {"givenName": "J"}
    }));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json().get("emails").is_none());
    assert_eq!(r.json()["active"], false);
    assert_eq!(
        db_query(&s, "SELECT active, email_key FROM users"),
        vec![vec!["0".to_string(), "NULL".to_string()]]
    );
    // PingOne: case-insensitive attribute names and operators.
    assert_eq!(
        total(&scim.filter("Users", "username Eq \"JC@EXAMPLE.COM\"")),
        1
    );
    assert_eq!(
        total(&scim.filter(
            "Users",
            "USERNAME EQ \"jc@example.com\" AND active eq false"
        )),
        1
    );
}

#[test]
fn reposting_a_deactivated_user_relinks_instead_of_conflicting() {
    let s = server().start();
    let scim = s.scim();
    let first = id_of(&scim.post(
        "/Users",
        json!({"userName": "Leaver@corp.example", "externalId": "ext-9"}),
    ));
    scim.patch(
        &format!("/Users/{first}"),
        json!({"Operations": [{"op": "replace", "value": {"active": false}}]}),
    );
    let again = scim.post(
        "/Users",
        json!({"userName": "leaver@corp.example", "externalId": "ext-9", "active": true}),
    );
    assert_eq!(again.status, 201, "{}", again.text());
    assert_eq!(id_of(&again), first, "same user, relinked");
    assert_eq!(again.json()["active"], true);
    // An active user with that userName is a real conflict.
    let dup = scim.post("/Users", json!({"userName": "LEAVER@corp.example"}));
    assert_eq!(dup.status, 409);
    assert_eq!(dup.json()["scimType"], "uniqueness");
    assert_eq!(dup.json()["status"], "409");
    assert_eq!(db_query(&s, "SELECT count(*) FROM users")[0][0], "1");
}

#[test]
fn etags_and_if_match() {
    let s = server().start();
    let scim = s.scim();
    let r = scim.post("/Users", json!({"userName": "etag@example.com"}));
    let uid = id_of(&r);
    assert_eq!(r.header("etag"), Some("W/\"1\""));
    let stale = scim.raw(
        "PATCH",
        &format!("/Users/{uid}"),
        &[
            ("Content-Type", "application/scim+json"),
            ("If-Match", "W/\"7\""),
        ],
        br#"{"Operations":[{"op":"replace","path":"title","value":"x"}]}"#,
    );
    assert_eq!(stale.status, 412);
    let ok = scim.raw(
        "PATCH",
        &format!("/Users/{uid}"),
        &[
            ("Content-Type", "application/scim+json"),
            ("If-Match", "W/\"1\""),
        ],
        br#"{"Operations":[{"op":"replace","path":"title","value":"x"}]}"#,
    );
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("etag"), Some("W/\"2\""));
    // If-Match may list several versions; one current one is enough (black-box round 3).
    let listed = |tags: &str| {
        scim.raw(
            "PATCH",
            &format!("/Users/{uid}"),
            &[
                ("Content-Type", "application/scim+json"),
                ("If-Match", tags),
            ],
            br#"{"Operations":[{"op":"replace","path":"title","value":"y"}]}"#,
        )
        .status
    };
    assert_eq!(listed("W/\"1\", W/\"9\""), 412);
    assert_eq!(listed("W/\"1\", W/\"2\""), 200);
}

/// RFC 7644 §3.9: `attributes`/`excludedAttributes` shape the reply of writes too
/// (black-box round 3 found POST, PUT and user PATCH ignoring them).
#[test]
fn writes_answer_with_the_attributes_asked_for() {
    let s = server().start();
    let scim = s.scim();
    let keys = |r: &crate::support::HttpResponse| {
        let mut k: Vec<String> = r
            .json()
            .as_object()
            .map_or_else(Vec::new, |o| o.keys().cloned().collect());
        k.sort();
        k
    };
    let created = scim.post(
        "/Users?excludedAttributes=displayName,emails",
        json!({"userName": "proj@example.com", "displayName": "P", "emails": [{"value": "proj@example.com"}]}),
    );
    assert_eq!(created.status, 201);
    assert!(
        !keys(&created).contains(&"displayName".to_string()),
        "{:?}",
        keys(&created)
    );
    assert!(!keys(&created).contains(&"emails".to_string()));
    let uid = id_of(&created);
    let put = scim.put(
        &format!("/Users/{uid}?attributes=userName"),
        json!({"userName": "proj@example.com", "displayName": "Q"}),
    );
    assert_eq!(put.status, 200);
    assert_eq!(keys(&put), ["id", "schemas", "userName"]);
    let patched = scim.patch(
        &format!("/Users/{uid}?attributes=displayName"),
        json!({"Operations": [{"op": "replace", "path": "displayName", "value": "R"}]}),
    );
    assert_eq!(patched.status, 200);
    assert_eq!(keys(&patched), ["displayName", "id", "schemas"]);
    let group = scim.post(
        "/Groups?attributes=displayName",
        json!({"displayName": "G", "members": [{"value": uid}]}),
    );
    assert_eq!(group.status, 201);
    assert_eq!(keys(&group), ["displayName", "id", "schemas"]);
    // The write happened in full: a plain read shows everything.
    let read = scim.get(&format!("/Users/{uid}"));
    assert_eq!(read.json()["displayName"], "R");
}

#[test]
fn unauthenticated_and_revoked_tokens_get_401_in_scim_shape() {
    let s = server().start();
    let r = s.get("/scim/v2/Users");
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json()["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    assert!(
        r.header("www-authenticate")
            .is_some_and(|v| v.starts_with("Bearer"))
    );
    let scim = s.scim();
    assert_eq!(scim.get("/Users").status, 200);
    let (code, _, err) = crate::support::run_cli(
        &[
            "--data-dir",
            s.data_dir.to_str().expect("utf8"),
            "scim-token",
            "revoke",
            "test",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(scim.get("/Users").status, 401);
    let wrong = Scim {
        server: &s,
        token: "x".repeat(43),
    };
    assert_eq!(wrong.get("/Users").status, 401);
}

#[test]
fn discovery_advertises_what_is_implemented_and_refuses_writes() {
    let s = server().start();
    let scim = s.scim();
    let spc = scim.get("/ServiceProviderConfig").json();
    assert_eq!(spc["patch"]["supported"], true);
    assert_eq!(spc["bulk"]["supported"], false);
    assert_eq!(spc["filter"]["maxResults"], 1000);
    assert_eq!(total(&scim.get("/ResourceTypes")), 2);
    assert_eq!(
        scim.get("/ResourceTypes/User").json()["schemaExtensions"][0]["schema"],
        ENTERPRISE
    );
    assert_eq!(total(&scim.get("/Schemas")), 3);
    assert_eq!(scim.get(&format!("/Schemas/{USER}")).json()["id"], USER);
    assert_eq!(scim.post("/Schemas", json!({})).status, 405);
    assert_eq!(scim.get("/Schemas/urn:nope").status, 404);
}

#[test]
fn bad_input_is_a_clean_scim_4xx_and_nothing_is_half_written() {
    let s = server().start();
    let scim = s.scim();
    let uid = id_of(&scim.post("/Users", json!({"userName": "keep@example.com"})));
    let gid = id_of(&scim.post(
        "/Groups",
        json!({"displayName": "Keep", "members": [{"value": uid}]}),
    ));
    let json_ct = [("Content-Type", "application/scim+json")];
    let cases: Vec<(&str, crate::support::HttpResponse, u16)> = vec![
        ("malformed JSON", scim.raw("POST", "/Users", &json_ct, b"{\"userName\": "), 400),
        ("wrong content type", scim.raw("POST", "/Users", &[("Content-Type", "text/plain")], br#"{"userName":"x"}"#), 415),
        ("invalid UTF-8", scim.raw("POST", "/Users", &json_ct, b"{\"userName\": \"\xff\xfe\"}"), 400),
        ("10 MB body", scim.raw("POST", "/Users", &json_ct, &vec![b' '; 10 * 1024 * 1024]), 413),
                ("100k-character filter in the URL", scim.filter("Users", &format!("userName eq \"{}\"", "a".repeat(100_000))), 431),
        ("100k-character filter in a search", scim.post("/Users/.search", json!({"filter": format!("userName eq \"{}\"", "a".repeat(100_000))})), 400),
        ("nesting depth 1000", scim.filter("Users", &format!("{}userName eq \"x\"{}", "(".repeat(1000), ")".repeat(1000))), 400),
        ("unknown member ids", scim.patch(&format!("/Groups/{gid}"), json!({"Operations": [
            {"op": "add", "path": "members", "value": [{"value": uid}, {"value": "no-such-user"}]}
        ]})), 400),
        ("PATCH on a missing path", scim.patch(&format!("/Users/{uid}"), json!({"Operations": [{"op": "remove"}]})), 400),
        ("PATCH with a broken path", scim.patch(&format!("/Users/{uid}"), json!({"Operations": [{"op": "replace", "path": "emails[type eq", "value": "x"}]})), 400),
        ("missing userName", scim.post("/Users", json!({"displayName": "nobody"})), 400),
        ("unknown resource", scim.get("/Users/does-not-exist"), 404),
    ];
    for (name, r, status) in cases {
        assert_eq!(r.status, status, "{name}: {}", r.text());
        let body = r.json();
        assert_eq!(
            body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
            "{name}"
        );
        assert_eq!(
            body["status"],
            status.to_string(),
            "{name}: status is a string"
        );
    }
    // The unknown-member PATCH added nobody (one transaction), and the group is intact.
    assert_eq!(
        db_query(&s, "SELECT count(*) FROM group_members")[0][0],
        "1"
    );
    assert_eq!(db_query(&s, "SELECT count(*) FROM users")[0][0], "1");
    // Every request above is in the request log with its outcome, without secrets.
    assert!(s.wait_for_log("GET /scim/v2/Users/{id} 404", Duration::from_secs(2)));
    let logged = || {
        db_query(&s, "SELECT count(*) FROM scim_requests WHERE status >= 400")[0][0]
            .parse::<i64>()
            .expect("n")
    };
    // The request log is written in the background.
    let _ = poll_until(Duration::from_secs(5), || logged() >= 10);
    assert!(logged() >= 10, "{} failures logged", logged());
    assert_still_serving(&s);
}

#[test]
fn sixteen_clients_patching_one_group_lose_no_member() {
    // Both modes: this once exposed tiny_http starving connections opened in a burst.
    for s in [server().start(), server().plain_http().start()] {
        sixteen_clients(&s);
    }
}

fn sixteen_clients(s: &crate::support::TestServer) {
    let scim = s.scim();
    let users: Vec<String> = (0..160)
        .map(|i| id_of(&scim.post("/Users", json!({"userName": format!("c{i}@example.com")}))))
        .collect();
    let gid = id_of(&scim.post("/Groups", json!({"displayName": "Contended"})));
    std::thread::scope(|scope| {
        for chunk in users.chunks(10) {
            let scim = &scim;
            let gid = &gid;
            scope.spawn(move || {
                for uid in chunk {
                    let r = scim.patch(&format!("/Groups/{gid}"), json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": uid}]}]}));
                    assert_eq!(r.status, 204, "{}", r.text());
                }
            });
        }
    });
    assert_eq!(
        db_query(
            s,
            &format!("SELECT count(*) FROM group_members WHERE group_id = '{gid}'")
        )[0][0],
        "160"
    );
    assert_eq!(
        scim.get(&format!("/Groups/{gid}")).json()["members"]
            .as_array()
            .map(Vec::len),
        Some(160)
    );
}

#[test]
fn every_created_user_survives_sigkill() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("data");
    let s = server().data_dir(&dir).start();
    let scim = s.scim();
    let token = scim.token.clone();
    let acknowledged = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        let killer = scope.spawn(|| {
            // Not waiting for a condition: the kill lands at an arbitrary instant of the
            // writes, which is what is tested.
            std::thread::sleep(Duration::from_millis(700));
            s.signal(libc::SIGKILL);
        });
        for t in 0..4 {
            let scim = &scim;
            let acknowledged = &acknowledged;
            scope.spawn(move || {
                for i in 0.. {
                    let body = json!({"userName": format!("k{t}-{i}@example.com")}).to_string();
                    let auth = format!("Bearer {}", scim.token);
                    let mut c = match std::panic::catch_unwind(|| scim.server.connect()) {
                        Ok(c) => c,
                        Err(_) => return,
                    };
                    let headers = [
                        ("Authorization", auth.as_str()),
                        ("Content-Type", "application/scim+json"),
                    ];
                    if c.try_send("POST", "/scim/v2/Users", &headers, body.as_bytes())
                        .is_err()
                    {
                        return;
                    }
                    match c.try_read_response() {
                        Ok(r) if r.status == 201 => acknowledged
                            .lock()
                            .expect("lock")
                            .push(r.json()["id"].as_str().expect("id").to_string()),
                        _ => return,
                    }
                }
            });
        }
        let _ = killer.join();
    });
    drop(s);
    let acknowledged = acknowledged.into_inner().expect("lock");
    assert!(
        acknowledged.len() > 20,
        "only {} users were created before the kill",
        acknowledged.len()
    );
    let s = server().data_dir(&dir).start();
    let scim = Scim { server: &s, token };
    for id in &acknowledged {
        assert_eq!(
            scim.get(&format!("/Users/{id}")).status,
            200,
            "user {id} got a 201 but is gone after kill -9"
        );
    }
}

#[test]
fn a_runaway_client_gets_429_with_an_integer_retry_after() {
    let s = server()
        .env("SEATGATE_SCIM_REQUESTS_PER_SECOND", "1")
        .env("SEATGATE_SCIM_BURST", "2")
        .start();
    let scim = s.scim();
    let statuses: Vec<u16> = (0..4).map(|_| scim.get("/Users").status).collect();
    assert_eq!(&statuses[..2], &[200, 200]);
    let limited = scim.get("/Users");
    assert_eq!(limited.status, 429);
    assert_eq!(limited.json()["status"], "429");
    let retry = limited.header("retry-after").expect("Retry-After");
    assert!(
        retry.parse::<u32>().is_ok_and(|n| n >= 1),
        "integer Retry-After: {retry}"
    );
    // Refused requests take no token, so asking until one is back is fair.
    assert!(
        poll_until(Duration::from_secs(5), || scim.get("/Users").status == 200),
        "allowed again after waiting"
    );
}

#[test]
fn scim_log_shows_what_the_idp_sent_and_why_it_failed() {
    let s = server().start();
    let scim = s.scim();
    scim.post(
        "/Users",
        json!({"userName": "ok@example.com", "password": "hunter2"}),
    );
    scim.post("/Users", json!({"displayName": "no user name"}));
    let dir = s.data_dir.to_str().expect("utf8");
    // The request log is written in the background.
    let _ = poll_until(Duration::from_secs(5), || {
        let (_, out, _) =
            crate::support::run_cli(&["--data-dir", dir, "scim-log", "--failures"], &[]);
        out.contains("userName is required.")
    });
    let (code, out, err) =
        crate::support::run_cli(&["--data-dir", dir, "scim-log", "--failures"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("POST /scim/v2/Users 400 invalidValue userName is required."),
        "{out}"
    );
    assert!(
        !out.contains("ok@example.com"),
        "--failures shows only failures: {out}"
    );
    let (code, out, _) = crate::support::run_cli(
        &["--data-dir", dir, "scim-log", "--limit", "5", "--bodies"],
        &[],
    );
    assert_eq!(code, 0);
    assert!(out.contains("ok@example.com"), "{out}");
    assert!(
        !out.contains("hunter2"),
        "passwords never reach the log: {out}"
    );
}
