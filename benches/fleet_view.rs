//! Policies and the fleet view (issue 18), run with `cargo bench --bench fleet_view`.
//!
//! 1. Policy fetches per second over HTTPS with 8 keep-alive clients against the release
//!    binary: `GET /api/v1/policy` with a fresh proof each (the replay guard is a write
//!    per fetch), answered 200 with the signed policy (ETag misses) or 304 (hits). Key
//!    devices whose key names a policy, with a default policy below it.
//! 2. The Licenses page at `USERS` users (default 100,000) with 13 months of daily
//!    history for 5 pools, over HTTPS from the release binary: 30 days and 12 months.
//!
//! Environment: `FETCHES` (default 8000 per mode), `DEVICES` (64), `USERS` (100000).

mod common;

use std::time::{Duration, Instant};

use common::client::{Client, Target};
use common::{cli, env_num};
use serde_json::{Value, json};

const CLIENTS: usize = 8;

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1));
    v.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

struct Device {
    id: String,
    kid: String,
    pkcs8: Vec<u8>,
}

fn activate(api: &Target, key: &str, n: usize) -> Vec<Device> {
    let mut c = Client::new(api);
    (0..n)
        .map(|_| {
            let (pkcs8, public) = seatgate::crypto::ed25519_generate().expect("key");
            let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": seatgate::crypto::b64url(&public)});
            let (status, body, _) = c.call(
                "POST",
                "/api/v1/activations",
                Some(&json!({"license_key": key, "device": {"public_key": jwk, "name": "Lab", "os": "macOS 15"}})),
            );
            assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
            let v: Value = serde_json::from_slice(&body).expect("json");
            Device {
                id: v["device_id"].as_str().expect("id").to_string(),
                kid: seatgate::domain::jose::okp_kid(&public),
                pkcs8,
            }
        })
        .collect()
}

/// `per_device` proofs per device, with increasing `iat` from `from` (within the
/// gateway's five-minute window).
fn proofs(devices: &[Device], per_device: usize, from: i64) -> Vec<Vec<String>> {
    devices
        .iter()
        .map(|d| {
            (0..per_device as i64)
                .map(|i| {
                    seatgate::domain::jose::sign_eddsa(
                        &d.pkcs8,
                        &d.kid,
                        "seatgate-proof+jwt",
                        &json!({"action": "policy", "device": d.id, "iat": from + i}),
                    )
                    .expect("proof")
                })
                .collect()
        })
        .collect()
}

/// Every device's proofs fetched by `CLIENTS` connections (a device's in order); returns
/// the wall time and each call's latency.
fn fetch_all(
    api: &Target,
    proofs: &[Vec<String>],
    etag: Option<&str>,
    expect: u16,
) -> (f64, Vec<Duration>) {
    let all = std::sync::Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..CLIENTS {
            let all = &all;
            s.spawn(move || {
                let mut c = Client::new(api);
                let mut mine = Vec::new();
                for device in proofs.iter().skip(t).step_by(CLIENTS) {
                    for p in device {
                        let auth = format!("Device {p}");
                        let mut headers = vec![("Authorization", auth.as_str())];
                        if let Some(e) = etag {
                            headers.push(("If-None-Match", e));
                        }
                        let (status, body, took) = c
                            .try_call_with("GET", "/api/v1/policy", &headers, None)
                            .expect("call");
                        assert_eq!(status, expect, "{}", String::from_utf8_lossy(&body));
                        mine.push(took);
                    }
                }
                all.lock().expect("lat").extend(mine);
            });
        }
    });
    (
        started.elapsed().as_secs_f64(),
        all.into_inner().expect("lat"),
    )
}

fn policy_fetches(tmp: &std::path::Path) {
    let fetches = env_num("FETCHES", 8000);
    let devices = env_num("DEVICES", 64);
    let data = tmp.join("fetch");
    let server = common::spawn(
        &data,
        &[
            ("SEATGATE_PRE_AUTH_PER_CLIENT_PER_MINUTE", "0"),
            ("SEATGATE_PRE_AUTH_GLOBAL_PER_MINUTE", "0"),
        ],
    );
    cli(
        &data,
        &["license", "add", "--product", "Bench", "--seats", "1000"],
    );
    let key = cli(
        &data,
        &[
            "license",
            "key",
            "create",
            "--license",
            "Bench",
            "--devices",
            "1000",
        ],
    )
    .lines()
    .last()
    .expect("key")
    .to_string();
    cli(
        &data,
        &[
            "policy",
            "create",
            "Lab",
            "--set",
            "lock_on_suspend=true",
            "--set",
            r#"usb={"default":"deny","exceptions":[{"device":"05ac:12a8","action":"allow"}]}"#,
            "--set",
            r#"restricted_actions=["create_vm","remove_vm"]"#,
        ],
    );
    cli(
        &data,
        &["policy", "create", "Company", "--set", "update_branch=beta"],
    );
    cli(&data, &["policy", "default", "Company"]);
    let key_id = cli(&data, &["license", "key", "list"]);
    let key_id = key_id
        .split_whitespace()
        .find(|w| w.starts_with("key-"))
        .expect("key id")
        .to_string();
    cli(&data, &["policy", "key", &key_id, "Lab"]);
    let api = Target {
        addr: server.addr,
        tls: Some(common::client_config(&data.join("tls/ca.pem"))),
        authorization: None,
        content_type: "application/json",
        base: String::new(),
    };
    let list = activate(&api, &key, devices);
    let per_device = fetches.div_ceil(devices).min(280);
    let now = seatgate::clock::now_unix();
    println!("## Policy fetches ({CLIENTS} clients, {devices} devices, a fresh proof each)\n");
    println!("| what | requests | wall time | per second | p50 | p99 |\n|---|---|---|---|---|---|");
    let misses = proofs(&list, per_device, now - 290);
    let (wall, mut lat) = fetch_all(&api, &misses, None, 200);
    let n = misses.iter().map(Vec::len).sum::<usize>();
    println!(
        "| ETag miss (200, signed policy) | {n} | {wall:.2} s | {:.0} | {:.2} ms | {:.2} ms |",
        n as f64 / wall,
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99)
    );
    // Every device has the same policy here, so one ETag fits all.
    let etag_value = head_etag(&api, &list[1..2], now - 290 + per_device as i64 + 1);
    let hits = proofs(&list, per_device, now - 290 + per_device as i64 + 2);
    let (wall, mut lat) = fetch_all(&api, &hits, Some(&etag_value), 304);
    println!(
        "| ETag hit (304) | {n} | {wall:.2} s | {:.0} | {:.2} ms | {:.2} ms |\n",
        n as f64 / wall,
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99)
    );
    drop(server);
}

/// The ETag a fetch answers (read from the raw response: the bench client returns bodies).
fn head_etag(api: &Target, device: &[Device], iat: i64) -> String {
    use std::io::{Read, Write};
    let proof = &proofs(device, 1, iat)[0][0];
    let tcp = std::net::TcpStream::connect(api.addr).expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(api.tls.clone().expect("tls"), name).expect("tls");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    write!(tls, "GET /api/v1/policy HTTP/1.1\r\nHost: localhost\r\nAuthorization: Device {proof}\r\nConnection: close\r\n\r\n").expect("write");
    let mut text = String::new();
    let _ = tls.read_to_string(&mut text);
    text.lines()
        .find_map(|l| {
            l.strip_prefix("etag: ")
                .or_else(|| l.strip_prefix("ETag: "))
        })
        .expect("etag header")
        .trim()
        .to_string()
}

fn main() {
    let tmp =
        std::env::temp_dir().join(format!("seatgate-fleet-view-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    println!("# seatgate policies and fleet view benchmark\n\n2 cores\n");
    policy_fetches(&tmp);
    licenses_page(&tmp);
    let _ = std::fs::remove_dir_all(&tmp);
}

/// A data directory with `users` users in 4 groups mapped to 4 sublicenses and the
/// primary pool, and 13 months of history for the 5 pools; then the page over HTTPS.
fn licenses_page(tmp: &std::path::Path) {
    let users = env_num("USERS", 100_000);
    let data = tmp.join("page");
    std::fs::create_dir_all(&data).expect("dir");
    let started = Instant::now();
    seed(&data, users);
    println!("## The Licenses page at {users} users, 13 months of history for 5 pools\n");
    println!("(seeded in {:.1} s)\n", started.elapsed().as_secs_f64());
    let server = common::spawn(&data, &[]);
    cli(
        &data,
        &["admin", "set-password", "--username", "bench", "--generate"],
    );
    let link = cli(&data, &["admin", "login-link", "--username", "bench"]);
    let link = link
        .split_whitespace()
        .find(|w| w.starts_with("https://"))
        .expect("link")
        .to_string();
    let path = link
        .splitn(4, '/')
        .nth(3)
        .map(|p| format!("/{p}"))
        .expect("path");
    let api = Target {
        addr: server.addr,
        tls: Some(common::client_config(&data.join("tls/ca.pem"))),
        authorization: None,
        content_type: "text/html",
        base: String::new(),
    };
    let cookie = login_cookie(&api, &path);
    println!("| range | page size | p50 | best | worst (10 loads) |\n|---|---|---|---|---|");
    for range in ["30d", "12m"] {
        let mut lat = Vec::new();
        let mut size = 0;
        for _ in 0..10 {
            let mut c = Client::new(&api);
            let (status, body, took) = c
                .try_call_with(
                    "GET",
                    &format!("/admin/licenses?range={range}"),
                    &[("Cookie", &cookie)],
                    None,
                )
                .expect("page");
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            assert!(String::from_utf8_lossy(&body).contains("svg class=\"chart\""));
            size = body.len();
            lat.push(took);
        }
        lat.sort();
        println!(
            "| {range} | {} KB | {:.1} ms | {:.1} ms | {:.1} ms |",
            size / 1024,
            pct(&mut lat, 0.5),
            lat[0].as_secs_f64() * 1000.0,
            lat[lat.len() - 1].as_secs_f64() * 1000.0
        );
    }
    println!();
    drop(server);
}

fn login_cookie(api: &Target, path: &str) -> String {
    use std::io::{Read, Write};
    let tcp = std::net::TcpStream::connect(api.addr).expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(api.tls.clone().expect("tls"), name).expect("tls");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut text = String::new();
    let _ = tls.read_to_string(&mut text);
    text.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(": ")?;
            name.eq_ignore_ascii_case("set-cookie")
                .then(|| value.split(';').next().unwrap_or("").to_string())
        })
        .filter(|c| c.starts_with("sg_session") || c.contains('='))
        .expect("session cookie")
}

fn seed(data: &std::path::Path, users: usize) {
    use seatgate::audit::Actor;
    use seatgate::db::directory as dir;
    use seatgate::domain::scim::resource;
    use seatgate::licensing::manage;
    let db = seatgate::db::Db::open(
        &data.join("seatgate.db"),
        data,
        seatgate::db::Synchronous::Normal,
    )
    .expect("open");
    let now = seatgate::clock::now_unix();
    db.write(|tx| {
        let mut ids = Vec::with_capacity(users);
        for i in 0..users {
            let body = json!({"userName": format!("u{i:06}@bench.example"), "active": true});
            let (stored, fields) = resource::prepare_user(body).expect("user");
            let id = format!("u-{i:06}");
            dir::insert_user(tx, None, &id, &fields, &stored.to_string(), None, now)?;
            ids.push(id);
        }
        for g in 0..4 {
            let (stored, fields, _) =
                resource::prepare_group(json!({"displayName": format!("Group {g}")}))
                    .expect("group");
            dir::insert_group(
                tx,
                None,
                &format!("g-{g}"),
                &fields,
                &stored.to_string(),
                now,
            )?;
            let members: Vec<String> = ids.iter().skip(g).step_by(4).cloned().collect();
            dir::add_members(tx, &format!("g-{g}"), &members)?;
        }
        Ok::<_, rusqlite::Error>(())
    })
    .expect("directory");
    let actor = Actor::Cli;
    let license = manage::add_license(
        &db,
        &actor,
        &manage::NewLicense {
            product: "Bench",
            seats: (users * 9 / 10) as i64,
            expires_at: None,
            key: None,
        },
    )
    .expect("license");
    for g in 0..4 {
        let sub = manage::add_sublicense(
            &db,
            &actor,
            &manage::NewSublicense {
                license: &license,
                name: &format!("Team {g}"),
                seats: (users / 5) as i64,
                reserved: g % 2 == 0,
                expires_at: None,
            },
        )
        .expect("sublicense");
        manage::add_mapping(
            &db,
            &actor,
            &format!("Group {g}"),
            None,
            manage::MapTo::Sublicense(&sub),
        )
        .expect("mapping");
    }
    // 13 months of days per pool, as housekeeping would have recorded them.
    let pools: Vec<String> = std::iter::once(String::new())
        .chain(
            db.read(seatgate::db::licensing::sublicenses)
                .expect("subs")
                .into_iter()
                .map(|s| s.id),
        )
        .collect();
    db.write(|tx| {
        for pool in &pools {
            for d in 0..396 {
                let day = seatgate::db::usage::day_of(now - d * 86_400);
                seatgate::db::history::raise(
                    tx,
                    &seatgate::db::history::DayRow {
                        license_id: license.clone(),
                        pool: pool.clone(),
                        day,
                        used: (users as i64 / 6) + (d * 37 % 500),
                        pending: d % 40,
                        capacity: users as i64 / 5,
                        backfilled: false,
                    },
                )?;
            }
        }
        Ok::<_, rusqlite::Error>(())
    })
    .expect("history");
}
