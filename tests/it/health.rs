//! Issue 12, items 4 and 5: a damaged database and a full disk are detected and said
//! clearly (readiness, every write path, the log, the portal, the metrics), the damaged
//! file is never written again, and a freed disk recovers without a restart.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{HttpResponse, Scim, TestServer, server};

const METRICS_TOKEN: &str = "metrics-token-0123456789";

fn user(name: &str, padding: usize) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name,
        "active": true,
        "title": "x".repeat(padding),
    })
}

fn sha256_of(path: &Path) -> String {
    seatgate::crypto::sha256_hex(&std::fs::read(path).expect("read the database"))
}

/// Writes deterministic garbage over `count` whole pages from the middle of the file.
fn damage_mid_file_pages(db: &Path, count: u64) {
    let len = std::fs::metadata(db).expect("db").len();
    let page = 4096u64;
    let pages = len / page;
    assert!(
        pages > 4 * count,
        "the database is too small to damage: {pages} pages"
    );
    let first = pages / 2 - count / 2;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(db)
        .expect("open the database for writing");
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut garbage = vec![0u8; page as usize];
    for n in 0..count {
        for b in garbage.iter_mut() {
            // xorshift64: random-looking, the same on every run.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *b = state as u8;
        }
        file.seek(SeekFrom::Start((first + n) * page))
            .expect("seek");
        file.write_all(&garbage).expect("write garbage");
    }
    file.sync_all().expect("sync");
}

/// `/readyz` once the check at start has finished (a large database is checked while
/// the server already serves).
fn readiness_after_the_start_check(s: &TestServer) -> HttpResponse {
    let checked = |r: &HttpResponse| r.status != 503 || r.json()["reason"] != "DATABASE_CHECKING";
    let done = crate::support::poll_until(Duration::from_secs(30), || checked(&s.get("/readyz")));
    assert!(done, "{}", s.log());
    s.get("/readyz")
}

fn assert_scim_503(r: &HttpResponse, what: &str) {
    assert_eq!(r.status, 503, "{what}: {}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/scim+json"),
        "{what}"
    );
    let body = r.json();
    assert_eq!(
        body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
        "{what}: {body}"
    );
    assert_eq!(body["status"], "503", "{what}: {body}");
}

#[test]
fn item4_corrupt_pages_stop_writes_and_name_the_backup_to_restore() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let mut first = server().data_dir(&data).start();
    let scim = first.scim();
    let mut ids = Vec::new();
    for i in 0..300 {
        let r = scim.post("/Users", user(&format!("user{i:03}@contoso.com"), 3000));
        assert_eq!(r.status, 201, "{}", r.text());
        ids.push(r.json()["id"].as_str().expect("id").to_string());
    }
    let backup = data.join("backups").join("seatgate-nightly.db");
    let (code, _, err) = first.cli(&["backup", "--out", backup.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{err}");
    let token = scim.token.clone();
    let (_, out, _) = first.cli(&["admin-token", "create", "--name", "ops"]);
    let admin_token = out.lines().last().expect("token").to_string();
    assert!(first.stop().success());

    let db = data.join("seatgate.db");
    damage_mid_file_pages(&db, 16);
    let damaged = sha256_of(&db);

    let s = server().data_dir(&data).start();
    let scim = Scim { server: &s, token };
    let ready = readiness_after_the_start_check(&s);
    assert_eq!(ready.status, 503, "{}", ready.text());
    let body = ready.json();
    assert_eq!(body["status"], "fail");
    assert_eq!(body["reason"], "DATABASE_CORRUPT", "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("restore a backup"), "{message}");
    assert_eq!(s.get("/healthz").status, 200, "liveness stays up");

    // Every write path answers 503 with the reason; SCIM in the SCIM error shape.
    let created = scim.post("/Users", user("new@contoso.com", 10));
    assert_scim_503(&created, "SCIM create");
    let detail = created.json()["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(detail.contains("damaged"), "{detail}");
    assert_scim_503(&scim.delete(&format!("/Users/{}", ids[0])), "SCIM delete");
    assert_scim_503(
        &scim.patch(
            &format!("/Users/{}", ids[1]),
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                   "Operations": [{"op": "replace", "path": "active", "value": false}]}),
        ),
        "SCIM patch",
    );
    // A list reading damaged pages is the same 503, never a 500 "malformed".
    let listed = scim.get("/Users?count=1000");
    if listed.status != 200 {
        assert_scim_503(&listed, "SCIM list");
    }
    // The JSON API too: an admin token's first use records it (a write).
    let auth = format!("Bearer {admin_token}");
    let api = s.request(
        "GET",
        "/api/v1/admin/licenses",
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(api.status, 503, "{}", api.text());
    assert_eq!(api.json()["reason"], "DATABASE_CORRUPT");

    // The portal says what happened and exactly what to do, on every page.
    let command = format!(
        "seatgate --data-dir {} restore {}",
        data.display(),
        backup.display()
    );
    let page = s.get("/admin/login");
    let html = page.text();
    assert!(html.contains("class=\"health-banner\""), "{html}");
    assert!(html.contains(&command), "{html}");
    assert!(html.contains("stop seatgate"), "{html}");
    // So does the log.
    let log = s.log();
    assert!(log.contains(&command), "{log}");

    // Nothing more reaches the damaged file, not even at shutdown.
    let mut s = s;
    assert!(s.stop().success(), "{}", s.log());
    assert_eq!(sha256_of(&db), damaged, "the damaged file was written to");

    // The advice works: the backup restores and the gateway is ready again.
    let (code, _, err) = crate::support::run_cli(
        &[
            "--data-dir",
            data.to_str().expect("utf8"),
            "restore",
            backup.to_str().expect("utf8"),
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let again = server().data_dir(&data).start();
    assert_eq!(again.get("/readyz").status, 200);
}

fn metric(s: &TestServer, name: &str) -> Option<f64> {
    let auth = format!("Bearer {METRICS_TOKEN}");
    let text = s
        .request("GET", "/metrics", &[("Authorization", &auth)], b"")
        .text();
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Fills the file system holding `dir` until a write fails; returns the filler's path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("filler");
    let chunk = vec![0xa5u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    // The last partial chunk: fill to the very last byte.
    while f.write_all(&chunk[..1]).is_ok() {}
    path
}

#[test]
fn item5_full_disk_is_503_with_retry_after_and_recovers_without_restart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let Some(small) = crate::support::Tmpfs::mount(tmp.path(), "8m") else {
        return;
    };
    let mount = small.0.clone();
    let data = mount.join("data");
    let s = server()
        .data_dir(&data)
        .env("SEATGATE_METRICS_ENABLED", "true")
        .env("SEATGATE_METRICS_TOKEN", METRICS_TOKEN)
        .env("SEATGATE_DATABASE_MIN_FREE_SPACE", "2MiB")
        .start();
    let scim = s.scim();
    assert_eq!(
        scim.post("/Users", user("first@contoso.com", 10)).status,
        201
    );
    let free = metric(&s, "seatgate_disk_free_bytes").expect("free-space gauge");
    assert!(free > 2.0 * 1024.0 * 1024.0, "{free}");
    assert_eq!(metric(&s, "seatgate_disk_free_low"), Some(0.0));

    let filler = fill(&mount);
    // The warning comes from the periodic free-space check, before any write fails.
    assert!(
        s.wait_for_log("free space", Duration::from_secs(30)),
        "{}",
        s.log()
    );
    assert_eq!(metric(&s, "seatgate_disk_free_low"), Some(1.0));

    // Writes until one needs space the disk no longer has: 503, Retry-After, SCIM body.
    let mut refused = None;
    for i in 0..200 {
        let r = scim.post("/Users", user(&format!("u{i}@contoso.com"), 60_000));
        if r.status != 201 {
            refused = Some(r);
            break;
        }
    }
    let refused = refused.expect("a write on a full disk is refused");
    assert_scim_503(&refused, "SCIM create on a full disk");
    assert!(
        refused
            .header("retry-after")
            .is_some_and(|v| v.parse::<u32>().is_ok()),
        "{:?}",
        refused.headers
    );
    let ready = s.get("/readyz");
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert_eq!(ready.json()["reason"], "DISK_FULL");
    assert!(
        ready.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("disk is full")),
        "{}",
        ready.text()
    );
    assert_eq!(s.get("/healthz").status, 200);
    assert_eq!(
        metric(&s, "seatgate_database_state{state=\"disk_full\"}"),
        Some(1.0)
    );
    let page = s.get("/admin/login").text();
    assert!(page.contains("class=\"health-banner\""), "{page}");
    assert!(page.contains("disk is full"), "{page}");
    // End users are told only that changes cannot be stored, never where the data lives
    // (black-box round 3: an anonymous sign-in page named the data directory).
    let public = s.get("/saml/login?email=nobody@unknown.example").text();
    assert!(
        public.contains("cannot store changes right now"),
        "{public}"
    );
    let mount_path = mount.display().to_string();
    assert!(!public.contains(&mount_path), "{public}");
    assert!(!public.contains("disk is full"), "{public}");

    // Space freed: ready again without a restart (a background write succeeding, or the
    // next free-space measurement, ends the state), and writes succeed.
    std::fs::remove_file(&filler).expect("free space");
    let ready = crate::support::poll_until(Duration::from_secs(30), || {
        s.get("/readyz").status == 200 && metric(&s, "seatgate_disk_free_low") == Some(0.0)
    });
    assert!(ready, "{}", s.log());
    assert_eq!(
        scim.post("/Users", user("after@contoso.com", 10)).status,
        201
    );
    assert_eq!(
        metric(&s, "seatgate_database_state{state=\"ok\"}"),
        Some(1.0)
    );
    // (Its clients say Host: localhost, not the public URL's 127.0.0.1, so the page also
    // carries the wrong-address banner; only the health banner must be gone.)
    let page = s.get("/admin/login").text();
    assert!(!page.contains("<strong>Attention</strong>"), "{page}");

    // Stopped and started again on a full disk: it comes up, and is not ready from the
    // first request (it answered 200 for ~3 s, until a write failed).
    drop(s);
    let filler = fill(&mount);
    let s = server()
        .data_dir(&data)
        .env("SEATGATE_DATABASE_MIN_FREE_SPACE", "2MiB")
        .start();
    let ready = s.get("/readyz");
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert_eq!(ready.json()["reason"], "DISK_FULL", "{}", ready.text());
    std::fs::remove_file(&filler).expect("free space");
    let ready =
        crate::support::poll_until(Duration::from_secs(30), || s.get("/readyz").status == 200);
    assert!(ready, "{}", s.log());
}
