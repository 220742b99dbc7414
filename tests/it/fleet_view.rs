//! Issue 18 §2 and §3 through the real binary over HTTPS: devices report their virtual
//! machines when they renew (1,000 accepted, one more refused with 413, bad reports
//! refused without touching the last one, a report replaces the previous one); the
//! portal's Virtual machines page filters them, the CSV and the API agree; the Licenses
//! page charts each pool's usage as SVG; `/metrics` shows per-pool gauges and licensing
//! counters.

use serde_json::{Value, json};

use crate::activation::client;
use crate::admin_api::{admin_token, call};
use crate::portal::{get, session};
use crate::support::{TestServer, db_query, server};

fn ok(s: &TestServer, args: &[&str]) -> String {
    let (code, out, err) = s.cli(args);
    assert_eq!(code, 0, "{args:?}: {out}{err}");
    out
}

fn vm(i: usize, image_version: &str) -> Value {
    json!({"uuid": format!("00000000-0000-4000-8000-{i:012}"), "name": format!("VM {i}"),
           "guest_os": if i.is_multiple_of(2) { "Windows 11" } else { "Ubuntu 24.04" },
           "image": {"name": "Win11 Golden", "version": image_version},
           "encrypted": !i.is_multiple_of(3), "expires_at": if i == 1 { "2000-01-01" } else { "2099-01-01" },
           "last_started_at": "2026-11-29T10:00:00Z"})
}

/// Activates a key device into `state` and returns the key.
fn key_device(s: &TestServer, state: &std::path::Path, key: &str, name: &str) {
    let base = format!("https://127.0.0.1:{}", s.addr.port());
    let ca = s.ca_path();
    let (ok, out) = client(
        state,
        &[
            "activate",
            "--server",
            &base,
            "--key",
            key,
            "--ca-cert",
            ca.to_str().expect("utf8"),
            "--name",
            name,
        ],
    )
    .finish();
    assert!(ok, "{out}");
}

fn renew_with(state: &std::path::Path, vms: &Value) -> (bool, String) {
    let file = state.join("vms.json");
    std::fs::write(&file, vms.to_string()).expect("write");
    client(state, &["renew", "--vms", file.to_str().expect("utf8")]).finish()
}

fn vm_count(s: &TestServer) -> i64 {
    db_query(s, "SELECT count(*) FROM device_vms")[0][0]
        .parse()
        .expect("count")
}

#[test]
fn devices_report_their_vms_and_the_portal_csv_and_api_filter_them() {
    let s = server().start();
    let license = ok(
        &s,
        &[
            "license",
            "add",
            "--product",
            "Parallels Desktop",
            "--seats",
            "10",
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
            "5",
            "--name",
            "Lab",
        ],
    );
    let key = out.lines().last().expect("key").trim().to_string();
    let (lab1, lab2) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    key_device(&s, lab1.path(), &key, "Lab Mac 1");
    key_device(&s, lab2.path(), &key, "Lab Mac 2");

    // 1,000 VMs: accepted and stored.
    // Each of its own image version: the "outdated" filter takes all 1,000 in stride.
    let thousand: Vec<Value> = (0..1000).map(|i| vm(i, &format!("1.{i}"))).collect();
    let (renewed, out) = renew_with(lab1.path(), &json!(thousand));
    assert!(renewed, "{out}");
    assert_eq!(vm_count(&s), 1000);
    let token = admin_token(&s);
    let outdated = call(
        &s,
        &token,
        "GET",
        "/api/v1/admin/vms?outdated=true&limit=1",
        None,
    );
    assert_eq!(outdated.status, 200, "{}", outdated.text());
    assert_eq!(outdated.json()["total"], 999);
    let bad = call(&s, &token, "GET", "/api/v1/admin/vms?outdated=maybe", None);
    assert_eq!(bad.status, 400, "{}", bad.text());
    // One more is over the cap: 413, and the last report stays. The client then renews
    // without the report, so a bad report never costs the Mac its license.
    let more: Vec<Value> = (0..1001).map(|i| vm(i, "2026.9")).collect();
    let (renewed, out) = renew_with(lab1.path(), &json!(more));
    assert!(renewed, "{out}");
    assert!(
        out.contains("the VM report was refused")
            && out.contains("at most 1000 are accepted")
            && out.contains("PAYLOAD_TOO_LARGE")
            && out.contains("renewed without it"),
        "{out}"
    );
    assert_eq!(vm_count(&s), 1000);
    // Bad reports are refused whole: a control character, a UUID twice, a wrong type.
    for bad in [
        json!([{"uuid": "00000000-0000-4000-8000-000000000001", "name": "a\u{7}b", "guest_os": "x", "encrypted": true}]),
        json!([vm(1, "1"), vm(1, "1")]),
        json!([{"uuid": "00000000-0000-4000-8000-000000000001", "name": "a", "guest_os": "x", "encrypted": "yes"}]),
        json!("not a list"),
    ] {
        let (renewed, out) = renew_with(lab1.path(), &bad);
        assert!(renewed, "{bad}: {out}");
        assert!(out.contains("The VM inventory was refused"), "{out}");
    }
    assert_eq!(vm_count(&s), 1000);
    let (_, status) = client(lab1.path(), &["status"]).finish();
    assert!(
        !status.contains("REFUSED"),
        "a refused report is not a refused renewal: {status}"
    );
    // A body over the renewal cap is refused before anything reads it.
    let big = format!(
        "{{\"proof\": \"x\", \"vms\": [\"{}\"]}}",
        "a".repeat(1_100_000)
    );
    let r = s.request(
        "POST",
        "/api/v1/leases/renew",
        &[("Content-Type", "application/json")],
        big.as_bytes(),
    );
    assert_eq!(r.status, 413);

    // A new report replaces the last one.
    let (renewed, out) = renew_with(
        lab1.path(),
        &json!([vm(0, "2026.9"), vm(1, "2026.9"), vm(3, "2026.9")]),
    );
    assert!(renewed, "{out}");
    // "2026.11" and "2026.11.0" are one version: neither is outdated by the other.
    let (renewed, out) = renew_with(
        lab2.path(),
        &json!([vm(10, "2026.11"), vm(11, "2026.11.0")]),
    );
    assert!(renewed, "{out}");
    assert_eq!(vm_count(&s), 5);

    let cookie = session(&s);
    let page = get(&s, "/admin/vms", &cookie).text();
    assert!(page.contains("5 virtual machine(s)"), "{page}");
    assert!(page.contains("outdated (latest 2026.11)"), "{page}");
    let count = |query: &str| -> String {
        let p = get(&s, &format!("/admin/vms?{query}"), &cookie).text();
        p.split(" virtual machine(s)")
            .next()
            .and_then(|t| t.rsplit('>').next())
            .unwrap_or("")
            .trim()
            .to_string()
    };
    assert_eq!(count("outdated=1"), "3");
    assert_eq!(count("unencrypted=1"), "2", "VMs 0 and 3");
    assert_eq!(count("expiring=1"), "1", "VM 1 expired in 2000");
    assert_eq!(count("guest_os=Ubuntu+24.04"), "3");
    assert_eq!(count("user=lab+mac+2"), "2");
    assert_eq!(
        count("group=Engineering"),
        "0",
        "key devices are in no group"
    );
    let csv = get(&s, "/admin/vms.csv?outdated=1", &cookie).text();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(
        csv.contains("\"Win11 Golden\",\"2026.9\",\"2026.11\""),
        "{csv}"
    );

    let api = call(
        &s,
        &token,
        "GET",
        "/api/v1/admin/vms?unencrypted=true&limit=1",
        None,
    )
    .json();
    assert_eq!(api["total"], 2);
    assert_eq!(api["vms"].as_array().map(Vec::len), Some(1));
    assert_eq!(api["vms"][0]["image"]["outdated"], true);

    // A deactivated Mac's VMs leave the list.
    let (deactivated, out) = client(lab2.path(), &["deactivate"]).finish();
    assert!(deactivated, "{out}");
    assert_eq!(count(""), "3");
}

#[test]
fn the_licenses_page_charts_each_pool_and_metrics_show_pools_and_outcomes() {
    let token = "metrics-token-0123456789";
    let s = server()
        .env("SEATGATE_METRICS_ENABLED", "true")
        .env("SEATGATE_METRICS_TOKEN", token)
        .start();
    let license = ok(
        &s,
        &[
            "license",
            "add",
            "--product",
            "Parallels Desktop",
            "--seats",
            "2",
        ],
    )
    .trim()
    .to_string();
    ok(
        &s,
        &["group-map", "add", "--group", "Mac Users", "--primary"],
    );
    let scim = s.scim();
    let mut members = Vec::new();
    for name in ["a@contoso.com", "b@contoso.com", "c@contoso.com"] {
        let r = scim.post("/Users", json!({"userName": name, "active": true}));
        members.push(json!({"value": r.json()["id"]}));
    }
    assert_eq!(
        scim.post(
            "/Groups",
            json!({"displayName": "Mac Users", "members": members})
        )
        .status,
        201
    );
    let out = ok(
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
    let key = out.lines().last().expect("key").trim().to_string();
    let lab = tempfile::tempdir().expect("tmp");
    // The pool is full (2 people), so the key is refused: a counted refusal.
    let base = format!("https://127.0.0.1:{}", s.addr.port());
    let ca = s.ca_path();
    let (activated, _) = client(
        lab.path(),
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
    assert!(!activated);

    // Today's row records the high-water marks as seats changed.
    let rows = db_query(&s, "SELECT pool, used, pending, capacity FROM pool_days");
    assert_eq!(
        rows,
        vec![vec!["".to_string(), "2".into(), "1".into(), "2".into()]]
    );

    let cookie = session(&s);
    let page = get(&s, "/admin/licenses", &cookie).text();
    assert!(page.contains("<svg class=\"chart\""), "{page}");
    assert!(
        page.contains("used at most 2 seats; today at most 2 of 2. Up to 1 person waited"),
        "the chart says it in words"
    );
    assert!(
        page.contains("stroke-dasharray=\"7 4\""),
        "capacity has its own dash pattern"
    );
    let year = get(&s, "/admin/licenses?range=12m", &cookie).text();
    assert!(year.contains("over 365 days"), "{year}");
    let csv = get(&s, "/admin/licenses/history.csv?days=30", &cookie).text();
    assert!(
        csv.contains(
            "\"Parallels Desktop\",\"primary\",\"Parallels Desktop\",\"2\",\"1\",\"2\",\"no\""
        ),
        "{csv}"
    );
    let admin = admin_token(&s);
    let api = call(
        &s,
        &admin,
        "GET",
        "/api/v1/admin/usage-history?days=7",
        None,
    )
    .json();
    assert_eq!(api["pools"][0]["days"][0]["used"], 2);
    assert_eq!(
        call(
            &s,
            &admin,
            "GET",
            "/api/v1/admin/usage-history?days=0",
            None
        )
        .json()["reason"],
        "BAD_REQUEST"
    );

    ok(&s, &["license", "set", &license, "--expires", "2099-12-31"]);
    let metrics = s
        .request(
            "GET",
            "/metrics",
            &[("Authorization", &format!("Bearer {token}"))],
            b"",
        )
        .text();
    let pool = format!("{{license=\"{license}\",pool=\"primary\"}}");
    assert!(
        metrics.contains(&format!("seatgate_pool_capacity_seats{pool} 2")),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("seatgate_pool_used_seats{pool} 2")),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("seatgate_pool_pending_seats{pool} 1")),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "seatgate_licensing_refusals_total{what=\"activation\",reason=\"NO_SEATS\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "seatgate_license_end_time_seconds{{license=\"{license}\"}} 4102444799"
        )),
        "{metrics}"
    );
}
