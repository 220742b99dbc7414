//! Durability benchmark (issue 12), run with `cargo bench --bench durability`.
//!
//! Against the release binary over plain HTTP on loopback, in three parts (`PARTS`,
//! default `kills,flood,soak`):
//! 1. Kill points: `KILLS` (default 100) cycles of 8 SCIM clients creating users; the server
//!    is killed with SIGKILL at a pseudo-random instant 0.15–1.2 s into the writes and
//!    started again on the same files. Every other cycle runs with `wal_max_mib = 1`, so
//!    that kills land among frequent TRUNCATE checkpoints. Reports restarts refused, time
//!    from start to `/readyz` 200, and acknowledged creates missing at the end (read from the
//!    database file).
//! 2. Pre-auth flood: SCIM creates/s from 2 clients for `FLOOD_SECS` (15) alone, then again
//!    while 6 clients post activations and start SSO as 1,000 different client addresses
//!    (through `X-Forwarded-For` from a trusted proxy, so per-client and global limits are
//!    both in play); the database and WAL before and after.
//! 3. Soak: `SOAK_SECS` (600) of mixed load from 6 clients (creates, `displayName co`
//!    filters, paged lists, `/readyz`); RSS and the WAL every `SOAK_EVERY` (30) s.
//!
//! Needs `openssl` on PATH (the flood's IdP certificate).

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::client::{Client, Target};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let parts = std::env::var("PARTS").unwrap_or_else(|_| "kills,flood,soak".into());
    let tmp = std::env::temp_dir().join(format!("seatgate-durability-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("tmp");
    println!("# seatgate durability benchmark (release binary, plain HTTP, loopback)\n");
    if parts.contains("kills") {
        kills(&tmp.join("kills"), env_num("KILLS", 100));
    }
    if parts.contains("flood") {
        flood(&tmp.join("flood"), env_num("FLOOD_SECS", 15));
    }
    if parts.contains("soak") {
        soak(
            &tmp.join("soak"),
            env_num("SOAK_SECS", 600),
            env_num("SOAK_EVERY", 30),
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

const PLAIN: (&str, &str) = ("SEATGATE_TLS_MODE", "off");
const SCIM_UNLIMITED: (&str, &str) = ("SEATGATE_SCIM_REQUESTS_PER_SECOND", "0");

fn user(name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name,
        "active": true,
        "displayName": format!("Soak {name}"),
        "emails": [{"primary": true, "type": "work", "value": name}],
        "name": {"familyName": "Family", "givenName": "Given"},
    })
}

/// A small deterministic generator, so that a run's kill instants can be repeated.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Polls `/readyz` until it answers 200; returns false after 60 s.
fn wait_ready(server: &common::Server) -> bool {
    let target = Target {
        addr: server.addr,
        tls: None,
        authorization: None,
        content_type: "application/json",
        base: String::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(mut c) = Client::try_new(&target)
            && let Ok((200, _, _)) = c.try_call("GET", "/readyz", None)
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// SCIM creates from `clients` threads until `stop` is set or the connection fails; the
/// userNames the server acknowledged (201) are appended to `acked`.
fn writers(
    target: &Target,
    clients: usize,
    prefix: &str,
    stop: &AtomicBool,
    acked: &Mutex<Vec<String>>,
) {
    std::thread::scope(|scope| {
        for w in 0..clients {
            scope.spawn(move || {
                let mut mine = Vec::new();
                if let Ok(mut c) = Client::try_new(target) {
                    for i in 0.. {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let name = format!("{prefix}-{w}-{i}@durability.example");
                        match c.try_call("POST", "/Users", Some(&user(&name))) {
                            Ok((201, _, _)) => mine.push(name),
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                }
                acked.lock().expect("lock").extend(mine);
            });
        }
    });
}

fn kills(dir: &Path, cycles: u64) {
    let data = dir.join("data");
    let first = common::spawn(&data, &[PLAIN, SCIM_UNLIMITED]);
    let mut target = common::scim_target(&first, &data);
    drop(first);
    let acked = Mutex::new(Vec::new());
    let mut rng = Lcg(0x5ea7_6a7e);
    let (mut refused, mut not_ready) = (0u64, 0u64);
    let mut ready_ms: Vec<f64> = Vec::new();
    let mut cycle_times = Vec::new();
    for cycle in 0..cycles {
        let wal = if cycle % 2 == 1 { "1" } else { "64" };
        let env = [
            PLAIN,
            SCIM_UNLIMITED,
            ("SEATGATE_DATABASE_WAL_MAX_MIB", wal),
        ];
        let started = Instant::now();
        let mut server = match common::try_spawn(&data, &env) {
            Ok(s) => s,
            Err(said) => {
                refused += 1;
                println!("restart {cycle} refused:\n{said}\n");
                continue;
            }
        };
        if !wait_ready(&server) {
            not_ready += 1;
            println!("restart {cycle}: /readyz not 200 within 60 s");
        }
        ready_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        target.addr = server.addr;
        let stop = AtomicBool::new(false);
        let kill_after = Duration::from_millis(150 + rng.below(1050));
        let written = Instant::now();
        std::thread::scope(|scope| {
            scope.spawn(|| writers(&target, 8, &format!("k{cycle:03}"), &stop, &acked));
            std::thread::sleep(kill_after);
            server.kill9();
            stop.store(true, Ordering::Relaxed);
        });
        cycle_times.push(written.elapsed());
    }
    // A last start to read the result, then a clean stop so the file is whole.
    let last = common::try_spawn(&data, &[PLAIN, SCIM_UNLIMITED]);
    let final_ok = last.as_ref().map(wait_ready).unwrap_or(false);
    drop(last);
    let acked = acked.into_inner().expect("lock");
    let stored: std::collections::HashSet<String> = {
        let db = rusqlite::Connection::open(data.join("seatgate.db")).expect("open");
        let mut q = db.prepare("SELECT user_name FROM users").expect("query");
        q.query_map([], |r| r.get::<_, String>(0))
            .expect("rows")
            .map(|r| r.expect("row"))
            .collect()
    };
    let missing = acked.iter().filter(|n| !stored.contains(*n)).count();
    ready_ms.sort_by(f64::total_cmp);
    let pct = |p: f64| ready_ms[((ready_ms.len() - 1) as f64 * p) as usize];
    println!("## Kill points\n");
    println!(
        "{cycles} SIGKILLs under 8 SCIM writers (every other cycle with wal_max_mib = 1), then a restart each\n"
    );
    println!("| measurement | value |\n|---|---|");
    println!("| restarts refused | {refused} of {cycles} |");
    println!("| restarts not ready within 60 s | {not_ready} |");
    println!(
        "| start to /readyz 200 | p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms |",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "| acknowledged creates missing | {missing} of {} |",
        acked.len()
    );
    println!(
        "| users in the file after the last start ({}) | {} |\n",
        if final_ok { "ready" } else { "NOT ready" },
        stored.len()
    );
}

/// SCIM creates per second from 2 clients over `secs`, beside whatever else runs.
fn scim_rate(target: &Target, prefix: &str, secs: u64) -> f64 {
    let stop = AtomicBool::new(false);
    let acked = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        scope.spawn(|| writers(target, 2, prefix, &stop, &acked));
        std::thread::sleep(Duration::from_secs(secs));
        stop.store(true, Ordering::Relaxed);
    });
    acked.into_inner().expect("lock").len() as f64 / secs as f64
}

fn activation(email: &str) -> Value {
    let x = seatgate::crypto::b64url(&seatgate::crypto::random_bytes(32));
    json!({"email": email, "device": {"public_key": {"kty": "OKP", "crv": "Ed25519", "x": x}}})
}

fn db_and_wal(data: &Path) -> u64 {
    ["seatgate.db", "seatgate.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(data.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

fn flood(dir: &Path, secs: u64) {
    std::fs::create_dir_all(dir).expect("dir");
    let data = dir.join("data");
    let config = dir.join("seatgate.toml");
    std::fs::write(&config, "[limits]\ntrusted_proxies = [\"127.0.0.1\"]\n").expect("config");
    let config_env = ("SEATGATE_CONFIG", config.to_str().expect("utf8"));
    let server = common::spawn(&data, &[PLAIN, SCIM_UNLIMITED, config_env]);
    let cert = common::idp_certificate(dir);
    common::add_idp(&data, "https://idp.flood.example", &cert, "contoso.com");
    let scim = common::scim_target(&server, &data);
    let public = Target {
        addr: server.addr,
        tls: None,
        authorization: None,
        content_type: "application/json",
        base: String::new(),
    };
    // Warm up: the first creates pay for growing the file.
    scim_rate(&scim, "warm", 2);
    let size_before = db_and_wal(&data);
    let alone = scim_rate(&scim, "alone", secs);

    let stop = AtomicBool::new(false);
    let (admitted, limited, other) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let during = std::thread::scope(|scope| {
        for t in 0..6u64 {
            let (stop, public) = (&stop, &public);
            let (admitted, limited, other) = (&admitted, &limited, &other);
            scope.spawn(move || {
                let mut c = Client::new(public);
                let mut rng = Lcg(t + 1);
                for i in 0u64.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let n = rng.below(1000);
                    let xff = format!("198.51.{}.{}", n / 250, n % 250 + 1);
                    let headers = [("X-Forwarded-For", xff.as_str())];
                    let email = format!("u{n}@contoso.com");
                    let answer = if i % 2 == 0 {
                        c.try_call_with(
                            "POST",
                            "/api/v1/activations",
                            &headers,
                            Some(&activation(&email)),
                        )
                    } else {
                        let path = format!("/saml/login?email=u{n}%40contoso.com");
                        c.try_call_with("GET", &path, &headers, None)
                    };
                    match answer {
                        Ok((201 | 302 | 303, _, _)) => admitted.fetch_add(1, Ordering::Relaxed),
                        Ok((429, _, _)) => limited.fetch_add(1, Ordering::Relaxed),
                        Ok(_) => other.fetch_add(1, Ordering::Relaxed),
                        Err(_) => {
                            c = Client::new(public);
                            other.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            });
        }
        let rate = scim_rate(&scim, "flooded", secs);
        stop.store(true, Ordering::Relaxed);
        rate
    });
    let size_after = db_and_wal(&data);
    drop(server);
    let (admitted, limited, other) = (
        admitted.into_inner(),
        limited.into_inner(),
        other.into_inner(),
    );
    println!("## Pre-authentication flood\n");
    println!(
        "2 SCIM clients creating users for {secs} s alone, then for {secs} s beside 6 flooding clients (activations and SSO starts as 1,000 addresses)\n"
    );
    println!("| measurement | value |\n|---|---|");
    println!("| SCIM creates/s alone | {alone:.0} |");
    println!(
        "| SCIM creates/s during the flood | {during:.0} ({:.0}% of alone) |",
        100.0 * during / alone
    );
    println!(
        "| flood requests | {} ({:.0}/s): {admitted} admitted, {limited} answered 429, {other} other |",
        admitted + limited + other,
        (admitted + limited + other) as f64 / secs as f64
    );
    println!(
        "| database + WAL | {:.1} MiB before the SCIM-alone phase, {:.1} MiB after the flood |\n",
        common::mib(size_before),
        common::mib(size_after)
    );
}

fn soak(dir: &Path, secs: u64, every: u64) {
    let data = dir.join("data");
    let server = common::spawn(&data, &[PLAIN, SCIM_UNLIMITED]);
    let scim = common::scim_target(&server, &data);
    let peaks = common::Peaks::start(server.pid() as u32, &data);
    let stop = Arc::new(AtomicBool::new(false));
    let requests = AtomicU64::new(0);
    let mut samples = Vec::new();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..6u64 {
            let (stop, scim, requests) = (&stop, &scim, &requests);
            scope.spawn(move || {
                let mut c = Client::new(scim);
                let mut rng = Lcg(t + 100);
                for i in 0u64.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let roll = rng.below(100);
                    let (method, path, body) = if roll < 30 {
                        let name = format!("s{t}-{i}@soak.example");
                        ("POST", "/Users".to_string(), Some(user(&name)))
                    } else if roll < 65 {
                        let q =
                            format!("/Users?filter=displayName%20co%20%22{}%22", rng.below(999));
                        ("GET", q, None)
                    } else {
                        let start = 1 + rng.below(5000);
                        ("GET", format!("/Users?startIndex={start}&count=50"), None)
                    };
                    c.call(method, &path, body.as_ref());
                    requests.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        while started.elapsed() < Duration::from_secs(secs) {
            std::thread::sleep(Duration::from_secs(every));
            let rss = common::rss_bytes(server.pid() as u32).unwrap_or(0);
            let wal = std::fs::metadata(data.join("seatgate.db-wal"))
                .map(|m| m.len())
                .unwrap_or(0);
            let db = std::fs::metadata(data.join("seatgate.db"))
                .map(|m| m.len())
                .unwrap_or(0);
            samples.push((
                started.elapsed().as_secs(),
                rss,
                wal,
                db,
                requests.load(Ordering::Relaxed),
            ));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let (peak_rss, peak_wal) = peaks.stop();
    drop(server);
    println!("## Soak\n");
    println!(
        "{secs} s of mixed SCIM load from 6 clients (30% creates, 35% `displayName co` filters, 35% paged lists)\n"
    );
    println!("| at | RSS | WAL | database | requests so far |\n|---|---|---|---|---|");
    for (at, rss, wal, db, n) in &samples {
        println!(
            "| {at} s | {:.1} MiB | {:.1} MiB | {:.1} MiB | {n} |",
            common::mib(*rss),
            common::mib(*wal),
            common::mib(*db)
        );
    }
    let half = samples.len() / 2;
    let max_of = |s: &[(u64, u64, u64, u64, u64)]| s.iter().map(|x| x.1).max().unwrap_or(0);
    println!(
        "\npeak RSS {:.1} MiB (first half {:.1}, second half {:.1}); largest WAL {:.1} MiB (sampled every 10 ms)\n",
        common::mib(peak_rss),
        common::mib(max_of(&samples[..half])),
        common::mib(max_of(&samples[half..])),
        common::mib(peak_wal)
    );
}
