//! Licensing benchmark (issue 5), run with `cargo bench --bench licensing`.
//!
//! Against the release binary over HTTPS:
//! 1. lease renewals per second and their latency with 8 concurrent clients, each renewal a
//!    real one (a fresh proof signed by the device's Ed25519 key, verified, the user, seat
//!    and device re-checked, a new lease signed and stored);
//! 2. the time from a SCIM deactivation to the seat being free and handed to the next
//!    pending user (it happens inside the PATCH, so this is the PATCH's latency);
//! 3. `explain` latency with `USERS` users in the directory (in-process, on the same
//!    database file, while the server runs).
//!
//! Environment: `USERS` (default 100000), `RENEWALS` (20000; one device each).

mod common;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::client::{Client, Target};
use common::{cli, env_num};

const CLIENTS: usize = 8;

struct Latencies(Vec<Duration>);

impl Latencies {
    fn pct(&mut self, p: f64) -> f64 {
        self.0.sort();
        let i = ((self.0.len() as f64 * p).ceil() as usize).clamp(1, self.0.len()) - 1;
        self.0[i].as_secs_f64() * 1000.0
    }
}

fn main() {
    let users = env_num("USERS", 100_000);
    let renewals = env_num("RENEWALS", 20_000).min(users);
    let tmp = std::env::temp_dir().join(format!("seatgate-licensing-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let data = tmp.join("data");
    let server = common::spawn(&data, &[("SEATGATE_SCIM_REQUESTS_PER_SECOND", "0")]);
    println!(
        "# seatgate licensing benchmark\n\n{users} users, {renewals} devices, {CLIENTS} clients, 2 cores\n"
    );
    let token = cli(&data, &["scim-token", "create", "--name", "bench"])
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    // An IdP connection for the domain, so `explain` walks every step.
    let metadata = common::idp_metadata();
    let metadata_file = tmp.join("idp.xml");
    std::fs::write(&metadata_file, metadata).expect("metadata");
    cli(
        &data,
        &[
            "idp",
            "add",
            "--name",
            "Contoso",
            "--metadata",
            metadata_file.to_str().expect("utf8"),
            "--domain",
            "contoso.com",
            "--preset",
            "okta",
        ],
    );
    let license = cli(
        &data,
        &[
            "license",
            "add",
            "--product",
            "Bench",
            "--seats",
            &users.to_string(),
        ],
    );
    cli(
        &data,
        &[
            "group-map",
            "add",
            "--group",
            "Everyone",
            "--license",
            &license,
            "--primary",
        ],
    );
    let tls = Some(common::client_config(&data.join("tls/ca.pem")));
    let scim = Target {
        addr: server.addr,
        tls: tls.clone(),
        authorization: Some(format!("Bearer {token}")),
        content_type: "application/scim+json",
        base: "/scim/v2".into(),
    };

    // The directory: users, then the mapped group in 1,000-member PATCHes (seats follow).
    let started = Instant::now();
    let ids = create_users(&scim, users);
    let mut c = Client::new(&scim);
    let (status, body, _) = c.call("POST", "/Groups", Some(&json!({"displayName": "Everyone"})));
    assert_eq!(status, 201);
    let everyone: Value = serde_json::from_slice(&body).expect("json");
    let everyone = everyone["id"].as_str().expect("id").to_string();
    for chunk in ids.chunks(1000) {
        let members: Vec<Value> = chunk.iter().map(|i| json!({"value": i})).collect();
        let (status, _, _) = c.call(
            "PATCH",
            &format!("/Groups/{everyone}"),
            Some(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": members}]})),
        );
        assert!(status == 204 || status == 200);
    }
    println!(
        "setup: {users} users provisioned and seated in {:.1} s\n",
        started.elapsed().as_secs_f64()
    );

    // Devices, written straight into the database (their activation is not what is
    // measured), and one pre-signed proof per device.
    let proofs = make_devices(&data, &ids[..renewals], &license);
    let api = Target {
        addr: server.addr,
        tls: tls.clone(),
        authorization: None,
        content_type: "application/json",
        base: String::new(),
    };
    let started = Instant::now();
    let mut lat = parallel(&api, &proofs, |c, proof| {
        let (status, body, took) = c.call(
            "POST",
            "/api/v1/leases/renew",
            Some(&json!({"proof": proof})),
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        took
    });
    let wall = started.elapsed().as_secs_f64();
    println!("## Lease renewals ({CLIENTS} clients)\n");
    println!(
        "| renewals | wall time | renewals/s | p50 | p99 | target |\n|---|---|---|---|---|---|"
    );
    println!(
        "| {renewals} | {wall:.2} s | {:.0} | {:.2} ms | {:.2} ms | ≥ 5,000/s, p99 < 10 ms |\n",
        renewals as f64 / wall,
        lat.pct(0.5),
        lat.pct(0.99)
    );

    // Deactivation → seat free: a second, full license with a waiting list.
    let tight = cli(
        &data,
        &["license", "add", "--product", "Tight", "--seats", "100"],
    );
    cli(
        &data,
        &[
            "group-map",
            "add",
            "--group",
            "Tight",
            "--license",
            &tight,
            "--primary",
        ],
    );
    let members: Vec<Value> = ids[..300].iter().map(|i| json!({"value": i})).collect();
    let (status, _, _) = c.call(
        "POST",
        "/Groups",
        Some(&json!({"displayName": "Tight", "members": members})),
    );
    assert_eq!(status, 201);
    let db = rusqlite::Connection::open(data.join("seatgate.db")).expect("db");
    let assigned = |db: &rusqlite::Connection| -> i64 {
        db.query_row(
            "SELECT count(*) FROM seats WHERE license_id = ?1 AND state = 'assigned'",
            [&tight],
            |r| r.get(0),
        )
        .expect("count")
    };
    assert_eq!(assigned(&db), 100);
    let mut lat = Latencies(Vec::new());
    for id in &ids[..100] {
        let seated_before: i64 = db.query_row("SELECT count(*) FROM seats WHERE user_id = ?1 AND license_id = ?2 AND state = 'assigned'", [id, &tight], |r| r.get(0)).expect("seat");
        let (status, _, took) = c.call(
            "PATCH",
            &format!("/Users/{id}"),
            Some(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": false}]})),
        );
        assert_eq!(status, 200);
        // When the PATCH returns, the seat is already free and handed on.
        if seated_before == 1 {
            assert_eq!(
                assigned(&db),
                100,
                "the freed seat went to the next pending user"
            );
        }
        lat.0.push(took);
    }
    println!("## SCIM deactivation → seat free and handed to the next pending user\n");
    println!("| deactivations | p50 | p99 | seat free |\n|---|---|---|---|");
    println!(
        "| 100 | {:.2} ms | {:.2} ms | within the same request (checked after each) |\n",
        lat.pct(0.5),
        lat.pct(0.99)
    );

    // explain, in-process on the live database.
    let db = seatgate::db::Db::open(
        &data.join("seatgate.db"),
        &tmp.join("backups"),
        seatgate::db::Synchronous::Normal,
    )
    .expect("db");
    let mut lat = Latencies(Vec::new());
    for i in (0..users).step_by((users / 500).max(1)) {
        let started = Instant::now();
        let e = seatgate::licensing::explain::explain(
            &db,
            &format!("user{i}@contoso.com"),
            3,
            seatgate::licensing::policies::bounds(&Default::default()),
            seatgate::clock::now_unix(),
        )
        .expect("explain");
        lat.0.push(started.elapsed());
        assert_eq!(
            e.verdict,
            if i < 100 { "USER_INACTIVE" } else { "OK" },
            "{e:?}"
        );
    }
    println!("## explain with {users} users\n");
    println!("| calls | p50 | p99 |\n|---|---|---|");
    println!(
        "| {} | {:.2} ms | {:.2} ms |",
        lat.0.len(),
        lat.pct(0.5),
        lat.pct(0.99)
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&tmp);
}

fn create_users(scim: &Target, users: usize) -> Vec<String> {
    let ids = std::sync::Mutex::new(vec![String::new(); users]);
    std::thread::scope(|s| {
        for t in 0..CLIENTS {
            let ids = &ids;
            s.spawn(move || {
                let mut c = Client::new(scim);
                for i in (t..users).step_by(CLIENTS) {
                    let name = format!("user{i}@contoso.com");
                    let (status, body, _) = c.call("POST", "/Users", Some(&json!({"userName": name, "active": true, "emails": [{"value": name, "primary": true}]})));
                    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
                    let v: Value = serde_json::from_slice(&body).expect("json");
                    ids.lock().expect("ids")[i] = v["id"].as_str().expect("id").to_string();
                }
            });
        }
    });
    ids.into_inner().expect("ids")
}

/// Inserts one device per user and returns a renewal proof for each.
fn make_devices(data: &std::path::Path, users: &[String], license: &str) -> Vec<String> {
    let mut db = rusqlite::Connection::open(data.join("seatgate.db")).expect("db");
    db.busy_timeout(Duration::from_secs(10)).expect("busy");
    let tx = db.transaction().expect("tx");
    let now = seatgate::clock::now_unix();
    let mut proofs = Vec::with_capacity(users.len());
    for (i, user) in users.iter().enumerate() {
        let (pkcs8, public) = seatgate::crypto::ed25519_generate().expect("key");
        let key = seatgate::domain::jose::DeviceKey::from_jwk(
            &json!({"kty": "OKP", "crv": "Ed25519", "x": seatgate::crypto::b64url(&public)}),
        )
        .expect("jwk");
        let device = format!("dev-bench-{i}");
        tx.execute(
            "INSERT INTO devices (id, user_id, license_id, thumbprint, public_jwk, name, os, created_at, last_seen_at, lease_id, lease_expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'bench', 'macOS', ?6, ?6, 'lease-bench', ?6)",
            rusqlite::params![device, user, license, key.thumbprint, key.jwk.to_string(), now],
        )
        .expect("device");
        proofs.push(
            seatgate::domain::jose::sign_eddsa(
                &pkcs8,
                &key.thumbprint,
                "seatgate-proof+jwt",
                &json!({"action": "renew", "device": device, "iat": now}),
            )
            .expect("proof"),
        );
    }
    tx.commit().expect("commit");
    proofs
}

fn parallel(
    target: &Target,
    items: &[String],
    f: impl Fn(&mut Client<'_>, &str) -> Duration + Sync,
) -> Latencies {
    let all = std::sync::Mutex::new(Vec::with_capacity(items.len()));
    std::thread::scope(|s| {
        for chunk in items.chunks(items.len().div_ceil(CLIENTS)) {
            let (all, f) = (&all, &f);
            s.spawn(move || {
                let mut c = Client::new(target);
                let mine: Vec<Duration> = chunk.iter().map(|item| f(&mut c, item)).collect();
                all.lock().expect("lat").extend(mine);
            });
        }
    });
    Latencies(all.into_inner().expect("lat"))
}
