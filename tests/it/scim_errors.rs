//! Item 9.2 of issue 11: every SCIM error body, whatever its status and whichever layer
//! refused the request (the gatekeeper, authentication, the handlers), carries the SCIM
//! error schema, the status as a string and a `scimType` from RFC 7644 §3.12's list, and
//! the SCIM request log records that same type.

use serde_json::json;

use crate::support::{HttpResponse, db_query, server};

#[track_caller]
fn assert_scim_error(r: &HttpResponse, status: u16, scim_type: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/scim+json"),
        "{status}"
    );
    let body = r.json();
    assert_eq!(
        body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"]),
        "{status}"
    );
    assert_eq!(body["status"], status.to_string(), "{status}");
    assert_eq!(body["scimType"], scim_type, "{status}: {body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| d.ends_with('.')),
        "one sentence: {body}"
    );
}

#[test]
fn item9_2_every_scim_error_status_carries_a_scim_type() {
    let s = server().start();
    let scim = s.scim();

    let anonymous = s.request("GET", "/scim/v2/Users", &[], b"");
    assert_scim_error(&anonymous, 401, "invalidValue");
    let wrong = s.request(
        "GET",
        "/scim/v2/Users",
        &[("Authorization", "Bearer not-a-token")],
        b"",
    );
    assert_scim_error(&wrong, 401, "invalidValue");

    assert_scim_error(
        &scim.get("/Users/6f1c0d1e-0000-4000-8000-000000000000"),
        404,
        "noTarget",
    );
    assert_scim_error(&scim.get("/Nothing"), 404, "invalidPath");
    assert_scim_error(&scim.delete("/Users"), 405, "noTarget");
    assert_scim_error(
        &scim.call("PUT", "/Schemas", Some(&json!({}))),
        405,
        "noTarget",
    );

    let created = scim.post("/Users", json!({"userName": "ann@contoso.com"}));
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json()["id"].as_str().expect("id").to_string();
    assert_scim_error(
        &scim.post("/Users", json!({"userName": "ANN@contoso.com"})),
        409,
        "uniqueness",
    );
    let stale = scim.raw(
        "PUT",
        &format!("/Users/{id}"),
        &[
            ("Content-Type", "application/scim+json"),
            ("If-Match", "W/\"999\""),
        ],
        json!({"userName": "ann@contoso.com"})
            .to_string()
            .as_bytes(),
    );
    assert_scim_error(&stale, 412, "invalidVers");
    let plain = scim.raw(
        "POST",
        "/Users",
        &[("Content-Type", "text/plain")],
        b"userName=x",
    );
    assert_scim_error(&plain, 415, "invalidSyntax");
    // Refused by the gatekeeper from the head alone, before any body is read.
    let huge = scim.raw(
        "POST",
        "/Users",
        &[
            ("Content-Type", "application/scim+json"),
            ("Content-Length", "104857600"),
        ],
        b"{}",
    );
    assert_scim_error(&huge, 413, "invalidValue");
    assert_scim_error(&scim.raw("POST", "/Users", &[], b""), 400, "invalidSyntax");

    // The request log keeps the type the client saw (the gatekeeper's refusals never
    // reach the application, so they are not in it).
    let failures = || {
        db_query(
            &s,
            "SELECT status, coalesce(scim_type, '-') FROM scim_requests WHERE status >= 400 ORDER BY id",
        )
    };
    // Written in the background: wait for the last request above.
    let _ = crate::support::poll_until(std::time::Duration::from_secs(5), || {
        failures()
            .iter()
            .any(|r| r[0] == "400" && r[1] == "invalidSyntax")
    });
    let logged = failures();
    let logged: Vec<(String, String)> = logged
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    for (status, scim_type) in [
        ("401", "invalidValue"),
        ("404", "noTarget"),
        ("405", "noTarget"),
        ("409", "uniqueness"),
        ("412", "invalidVers"),
        ("415", "invalidSyntax"),
    ] {
        assert!(
            logged.contains(&(status.to_string(), scim_type.to_string())),
            "{status} {scim_type} not in {logged:?}"
        );
    }
}

#[test]
fn item9_2_rate_limited_scim_requests_carry_too_many() {
    let s = server()
        .env("SEATGATE_SCIM_REQUESTS_PER_SECOND", "1")
        .env("SEATGATE_SCIM_BURST", "1")
        .start();
    let scim = s.scim();
    let statuses: Vec<HttpResponse> = (0..3).map(|_| scim.get("/Users")).collect();
    let limited = statuses
        .iter()
        .find(|r| r.status == 429)
        .expect("a 429 within three requests at burst 1");
    assert_scim_error(limited, 429, "tooMany");
}
