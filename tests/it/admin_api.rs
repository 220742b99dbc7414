//! The admin API's changes (issue 16 item 4): licenses, sublicenses, mappings, tokens,
//! connections' switches and devices through `/api/v1/admin`, with the validation and audit
//! of the portal, and the OpenAPI document held to the route table.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use seatgate::routes::{ROUTES, Surface};

use crate::support::{HttpResponse, TestServer, db_query, server};

pub(crate) fn admin_token(s: &TestServer) -> String {
    let (code, out, err) = s.cli(&["admin-token", "create", "--name", "ops"]);
    assert_eq!(code, 0, "{err}");
    out.lines().last().expect("token").to_string()
}

pub(crate) fn call(
    s: &TestServer,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> HttpResponse {
    let auth = format!("Bearer {token}");
    let text = body.map(|b| b.to_string()).unwrap_or_default();
    s.request(
        method,
        path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        text.as_bytes(),
    )
}

#[test]
fn the_openapi_document_lists_exactly_the_admin_api_routes() {
    let s = server().start();
    let token = admin_token(&s);
    let doc = call(&s, &token, "GET", "/api/v1/admin/openapi.json", None);
    assert_eq!(doc.status, 200, "{}", doc.text());
    let doc = doc.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .expect("operations")
                .keys()
                .map(|m| (m.to_uppercase(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .filter(|r| r.surface == Surface::AdminApi && !r.pattern.contains("{*"))
        .flat_map(|r| {
            ["GET", "POST", "PUT", "PATCH", "DELETE"]
                .into_iter()
                .filter(|m| r.methods.accepts(m))
                .map(|m| (m.to_string(), r.pattern.to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(documented, served);
    // Query parameters are declared, and PATCH fields that take null say so.
    let users = &doc["paths"]["/api/v1/admin/users"]["get"]["parameters"];
    for name in ["q", "seat", "sort", "dir", "offset", "limit"] {
        assert!(
            users
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["name"] == name && p["in"] == "query")),
            "{name}: {users}"
        );
    }
    let expires = doc.pointer(
        "/paths/~1api~1v1~1admin~1licenses~1{id}/patch/requestBody/content/application~1json/schema/properties/expires/type",
    );
    assert_eq!(expires, Some(&json!(["string", "null"])));
    // Every request body is a closed object, as the handlers refuse unknown fields.
    for (_, ops) in doc["paths"].as_object().expect("paths") {
        for (_, op) in ops.as_object().expect("ops") {
            if let Some(schema) = op.pointer("/requestBody/content/application~1json/schema") {
                assert_eq!(schema["additionalProperties"], false, "{op}");
            }
        }
    }
}

#[test]
fn licenses_sublicenses_mappings_tokens_and_connections_change_through_the_api() {
    let s = server().start();
    let token = admin_token(&s);
    let api = |method: &str, path: &str, body: Option<Value>| {
        call(&s, &token, method, &format!("/api/v1/admin/{path}"), body)
    };

    // Bad bodies change nothing, each with one sentence.
    for (body, says) in [
        (
            json!({"product": "Pro", "seats": 3, "colour": "red"}),
            "unknown field",
        ),
        (json!({"product": "Pro"}), "missing field"),
        (
            json!({"product": "Pro", "seats": 3, "expires": "soon"}),
            "is not a date",
        ),
        (json!({"product": "Pro", "seats": -1}), "from 0 to 10000000"),
        (
            json!({"product": "Pro", "seats": 1_000_000_000_000_000_000i64}),
            "from 0 to 10000000",
        ),
        (
            json!({"product": "P\u{7}\u{1b}[31m", "seats": 1}),
            "control or invisible",
        ),
        (
            json!({"product": "Pro\u{202e}", "seats": 1}),
            "control or invisible",
        ),
        (
            json!({"product": "x".repeat(300), "seats": 1}),
            "longer than 200",
        ),
        (
            json!({"product": "Pro", "seats": 1, "expires": "2000-01-01"}),
            "already passed",
        ),
    ] {
        let r = api("POST", "licenses", Some(body));
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(r.json()["reason"], "BAD_REQUEST");
        assert!(r.text().contains(says), "{says}: {}", r.text());
    }
    assert_eq!(db_query(&s, "SELECT count(*) FROM licenses")[0][0], "0");

    let created = api(
        "POST",
        "licenses",
        Some(json!({"product": "Pro", "seats": 1, "expires": "2099-06-30"})),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let license = created.json()["id"].as_str().expect("id").to_string();
    assert_eq!(created.json()["expires_at"], "2099-06-30T23:59:59Z");

    let sub = api(
        "POST",
        "sublicenses",
        Some(json!({"license": license, "name": "Eng", "seats": 1, "reserved": false})),
    );
    assert_eq!(sub.status, 201, "{}", sub.text());
    let sub = sub.json()["id"].as_str().expect("id").to_string();
    let mapped = api(
        "POST",
        "mappings",
        Some(json!({"group": "Engineers", "grants": "sublicense", "sublicense": sub})),
    );
    assert_eq!(mapped.status, 201, "{}", mapped.text());
    let mapping = mapped.json()["id"].as_str().expect("id").to_string();
    let bad = api(
        "POST",
        "mappings",
        Some(json!({"group": "X", "grants": "root"})),
    );
    assert_eq!(bad.status, 400, "{}", bad.text());
    let listed = api("GET", "mappings", None).json();
    assert_eq!(listed["mappings"][0]["grants"], "sublicense", "{listed}");

    // A SCIM token made here provisions; two engineers, one seat: one waits.
    let scim_token = api("POST", "scim-tokens", Some(json!({"name": "okta"})));
    assert_eq!(scim_token.status, 201, "{}", scim_token.text());
    assert_eq!(scim_token.header("cache-control"), Some("no-store"));
    let secret = scim_token.json()["token"]
        .as_str()
        .expect("secret")
        .to_string();
    let token_id = scim_token.json()["id"].as_i64().expect("id");
    let scim = |method: &str, path: &str, body: Value| {
        s.request(
            method,
            &format!("/scim/v2/{path}"),
            &[
                ("Authorization", &format!("Bearer {secret}")),
                ("Content-Type", "application/scim+json"),
            ],
            body.to_string().as_bytes(),
        )
    };
    let mut ids = Vec::new();
    for name in ["ann@contoso.com", "bob@contoso.com"] {
        let r = scim("POST", "Users", json!({"userName": name, "active": true}));
        assert_eq!(r.status, 201, "{}", r.text());
        ids.push(json!({"value": r.json()["id"]}));
    }
    let r = scim(
        "POST",
        "Groups",
        json!({"displayName": "Engineers", "members": ids}),
    );
    assert_eq!(r.status, 201, "{}", r.text());

    // One more seat for the pool: the waiting engineer gets it, and the answer says so.
    let changed = api(
        "PATCH",
        &format!("sublicenses/{sub}"),
        Some(json!({"seats": 2})),
    );
    assert_eq!(changed.status, 200, "{}", changed.text());
    let changed = api(
        "PATCH",
        &format!("licenses/{license}"),
        Some(json!({"seats": 2, "max_offline_days": 3})),
    );
    assert_eq!(changed.status, 200, "{}", changed.text());
    assert_eq!(changed.json()["seats"]["granted"], 1, "{}", changed.text());
    assert_eq!(changed.json()["max_offline_days"], 3);
    let cleared = api(
        "PATCH",
        &format!("licenses/{license}"),
        Some(json!({"expires": null, "max_offline_days": null})),
    );
    assert_eq!(cleared.status, 200, "{}", cleared.text());
    assert_eq!(
        db_query(
            &s,
            "SELECT coalesce(expires_at, 'never'), coalesce(max_offline_secs, 'default') FROM licenses"
        )[0],
        ["never", "default"]
    );
    let empty = api("PATCH", &format!("licenses/{license}"), Some(json!({})));
    assert_eq!(empty.status, 400);

    // Removing the sublicense is refused while a mapping draws from it.
    let refused = api("DELETE", &format!("sublicenses/{sub}"), None);
    assert_eq!(refused.status, 400, "{}", refused.text());
    let removed = api("DELETE", &format!("mappings/{mapping}"), None);
    assert_eq!(removed.status, 200, "{}", removed.text());
    assert_eq!(removed.json()["seats"]["revoked"], 2, "{}", removed.text());
    assert_eq!(
        api("DELETE", &format!("sublicenses/{sub}"), None).status,
        204
    );
    // Ids that name nothing (or something of another kind) are 404, as documented.
    for (method, path) in [
        ("DELETE", format!("sublicenses/{sub}")),
        ("DELETE", format!("mappings/{mapping}")),
        ("DELETE", format!("mappings/{license}")),
        ("PATCH", "licenses/map-nothing".to_string()),
    ] {
        let r = api(method, &path, Some(json!({"seats": 1})));
        assert_eq!(r.status, 404, "{method} {path}: {}", r.text());
        assert_eq!(r.json()["reason"], "NOT_FOUND");
    }

    // Revoking the SCIM token stops the IdP at once.
    assert_eq!(
        api("DELETE", &format!("scim-tokens/{token_id}"), None).status,
        204
    );
    assert_eq!(scim("GET", "Users", json!({})).status, 401);
    assert_eq!(
        api("DELETE", &format!("scim-tokens/{token_id}"), None).status,
        404
    );

    // Connections: none yet; an unknown one is 404.
    assert_eq!(
        api("GET", "connections", None).json()["connections"],
        json!([])
    );
    assert_eq!(
        api(
            "PATCH",
            "connections/nope",
            Some(json!({"jit_users": true}))
        )
        .status,
        404
    );

    // Every change is audited as the token's.
    let audit = s.cli(&["audit", "--limit", "100"]).1;
    for action in [
        "admin-token:ops license_added",
        "admin-token:ops sublicense_added",
        "admin-token:ops mapping_added",
        "admin-token:ops scim_token_created",
        "admin-token:ops license_changed",
        "admin-token:ops mapping_removed",
        "admin-token:ops sublicense_removed",
        "admin-token:ops scim_token_revoked",
    ] {
        assert!(audit.contains(action), "{action} missing:\n{audit}");
    }
}

/// An API call with a portal session that has ended says so (SESSION_EXPIRED), rather
/// than asking for credentials it was given; no cookie at all is UNAUTHORIZED.
#[test]
fn an_ended_portal_session_is_told_it_ended() {
    let s = server().start();
    let cookie = crate::portal::session(&s);
    let api = |cookie: Option<&str>| {
        let mut headers = vec![];
        if let Some(c) = cookie {
            headers.push(("Cookie", c));
        }
        s.request("GET", "/api/v1/admin/policies", &headers, b"")
    };
    assert_eq!(api(Some(&cookie)).status, 200);
    crate::support::db_exec(&s, "DELETE FROM admin_sessions");
    let ended = api(Some(&cookie));
    assert_eq!(ended.status, 401, "{}", ended.text());
    assert_eq!(ended.json()["reason"], "SESSION_EXPIRED");
    assert_eq!(api(None).json()["reason"], "UNAUTHORIZED");
}

/// Path ids are percent-decoded once: a name with a space reaches its policy, a bad
/// escape is a 400, and `+` stays a plus sign.
#[test]
fn path_ids_are_percent_decoded() {
    let s = server().start();
    let token = admin_token(&s);
    let (code, _, err) = s.cli(&["policy", "create", "Lab Macs+1"]);
    assert_eq!(code, 0, "{err}");
    let found = call(
        &s,
        &token,
        "GET",
        "/api/v1/admin/policies/Lab%20Macs+1",
        None,
    );
    assert_eq!(found.status, 200, "{}", found.text());
    assert_eq!(found.json()["name"], "Lab Macs+1");
    let bad = call(&s, &token, "GET", "/api/v1/admin/policies/%ZZ", None);
    assert_eq!(bad.status, 400, "{}", bad.text());
    let not_utf8 = call(&s, &token, "GET", "/api/v1/admin/policies/%FF", None);
    assert_eq!(not_utf8.status, 400, "{}", not_utf8.text());
    assert_eq!(
        call(
            &s,
            &token,
            "GET",
            "/api/v1/admin/policies/Lab%2520Macs",
            None
        )
        .status,
        404,
        "decoded once only"
    );
}
