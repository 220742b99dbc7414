//! Fleet deployment benchmark (issue 17), run with `cargo bench --bench fleet`.
//!
//! 1. License-key activations per second over HTTPS with 8 keep-alive clients against the
//!    release binary, each a real one (a fresh device key, the key checked, a per-device
//!    seat taken, a lease signed and stored), next to SSO activation *starts* per second
//!    (the same endpoint with an email: the row the browser flow then completes; the
//!    complete SSO activation's cost is dominated by the ACS, measured by `saml_acs`).
//! 2. 10,000 invitations queued (checked, stored, email rendered and queued) in one call,
//!    in-process on a real database file.
//! 3. Outbox throughput: `MESSAGES` (default 2,000) queued messages sent to a local SMTP
//!    server (aiosmtpd, `tests/smtp/sink.py`, from `scripts/test-venv`), in-process.
//!
//! Environment: `ACTIVATIONS` (default 4000), `MESSAGES` (2000).

mod common;

use std::io::{BufRead, BufReader};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::client::{Client, Target};
use common::{cli, env_num};

const CLIENTS: usize = 8;

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[i].as_secs_f64() * 1000.0
}

/// Sends every body in `bodies` to `POST path` from `CLIENTS` connections; returns the
/// wall time and each call's latency. Every answer must be `expect`.
fn run(api: &Target, path: &str, bodies: Vec<Value>, expect: u16) -> (f64, Vec<Duration>) {
    let queue = Mutex::new(bodies);
    let latencies = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..CLIENTS {
            s.spawn(|| {
                let mut c = Client::new(api);
                loop {
                    let Some(body) = queue.lock().expect("queue").pop() else {
                        break;
                    };
                    let (status, answer, took) = c.call("POST", path, Some(&body));
                    assert_eq!(status, expect, "{}", String::from_utf8_lossy(&answer));
                    latencies.lock().expect("lat").push(took);
                }
            });
        }
    });
    (
        started.elapsed().as_secs_f64(),
        latencies.into_inner().expect("lat"),
    )
}

fn device() -> Value {
    let (_, public) = seatgate::crypto::ed25519_generate().expect("key");
    json!({"public_key": {"kty": "OKP", "crv": "Ed25519", "x": seatgate::crypto::b64url(&public)}, "name": "Lab Mac", "os": "macOS 15"})
}

fn main() {
    let activations = env_num("ACTIVATIONS", 4000);
    let messages = env_num("MESSAGES", 2000);
    let tmp = std::env::temp_dir().join(format!("seatgate-fleet-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let data = tmp.join("data");
    // The pre-authentication limits would (rightly) stop one address at 2/s.
    let server = common::spawn(
        &data,
        &[
            ("SEATGATE_PRE_AUTH_PER_CLIENT_PER_MINUTE", "0"),
            ("SEATGATE_PRE_AUTH_GLOBAL_PER_MINUTE", "0"),
            ("SEATGATE_PRE_AUTH_MAX_OUTSTANDING", "1000000"),
        ],
    );
    println!("# seatgate fleet benchmark\n\n{CLIENTS} clients, 2 cores\n");
    let metadata = tmp.join("idp.xml");
    std::fs::write(&metadata, common::idp_metadata()).expect("metadata");
    cli(
        &data,
        &[
            "idp",
            "add",
            "--name",
            "Contoso",
            "--metadata",
            metadata.to_str().expect("utf8"),
            "--domain",
            "contoso.com",
            "--preset",
            "okta",
        ],
    );
    let seats = (activations * 2).to_string();
    cli(
        &data,
        &["license", "add", "--product", "Bench", "--seats", &seats],
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
            &seats,
        ],
    )
    .lines()
    .last()
    .expect("key")
    .to_string();
    let api = Target {
        addr: server.addr,
        tls: Some(common::client_config(&data.join("tls/ca.pem"))),
        authorization: None,
        content_type: "application/json",
        base: String::new(),
    };

    println!("## Activations ({CLIENTS} clients)\n");
    println!("| what | requests | wall time | per second | p50 | p99 |\n|---|---|---|---|---|---|");
    let bodies: Vec<Value> = (0..activations)
        .map(|_| json!({"license_key": key, "device": device()}))
        .collect();
    let (wall, mut lat) = run(&api, "/api/v1/activations", bodies, 201);
    println!(
        "| license-key activation (lease at once) | {activations} | {wall:.2} s | {:.0} | {:.2} ms | {:.2} ms |",
        activations as f64 / wall,
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99)
    );
    let bodies: Vec<Value> = (0..activations)
        .map(|i| json!({"email": format!("user{i}@contoso.com"), "device": device()}))
        .collect();
    let (wall, mut lat) = run(&api, "/api/v1/activations", bodies, 201);
    println!(
        "| SSO activation start (then browser, IdP, ACS) | {activations} | {wall:.2} s | {:.0} | {:.2} ms | {:.2} ms |\n",
        activations as f64 / wall,
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99)
    );
    drop(server);

    // Invitations, in-process on the same database.
    let db = seatgate::db::Db::open(
        &data.join("seatgate.db"),
        &tmp.join("backups"),
        seatgate::db::Synchronous::Normal,
    )
    .expect("db");
    let emails: Vec<String> = (0..10_000)
        .map(|i| format!("invitee{i}@contoso.com"))
        .collect();
    let ctx = seatgate::deploy::invitations::Context {
        public_url: "https://gateway.contoso.com:8443",
        organization: "Contoso",
        valid_for_secs: 14 * 86_400,
    };
    let started = Instant::now();
    let done = seatgate::deploy::invitations::invite(
        &db,
        &ctx,
        &seatgate::audit::Actor::Cli,
        &emails,
        &seatgate::deploy::invitations::Method::Sso,
        seatgate::clock::now_unix(),
    )
    .expect("invite");
    let took = started.elapsed().as_secs_f64();
    assert_eq!(done.created.len(), 10_000);
    println!("## Invitations\n");
    println!("| invitations | queued in | target |\n|---|---|---|");
    println!("| 10,000 (checked, stored, emails rendered and queued) | {took:.3} s | < 1 s |\n");

    // Outbox throughput to aiosmtpd on loopback.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let python =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/sink.py");
    let mut sink = std::process::Command::new(python)
        .arg(script)
        .arg(port.to_string())
        .arg(tmp.join("mails.jsonl"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("aiosmtpd (scripts/test-venv)");
    let mut line = String::new();
    BufReader::new(sink.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("ready");
    // Only the benchmark's messages: the invitations above are sent first otherwise.
    db.write(|tx| tx.execute("DELETE FROM outbox", []).map(|_| ()))
        .expect("clear");
    db.write(|tx| {
        for i in 0..messages {
            seatgate::db::outbox::enqueue(
                tx,
                &seatgate::db::outbox::NewMessage {
                    kind: seatgate::db::outbox::Kind::Notification,
                    recipient: format!("admin{i}@contoso.com"),
                    subject: "seatgate: benchmark".into(),
                    text_body: "A notification of the usual size.\n".repeat(8),
                    html_body: None,
                },
                seatgate::clock::now_unix(),
            )?;
        }
        Ok::<_, rusqlite::Error>(())
    })
    .expect("queue");
    let cfg = seatgate::config::SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        security: seatgate::config::SmtpSecurity::None,
        from: "seatgate <it@contoso.com>".into(),
        max_per_minute: 1_000_000,
        ..Default::default()
    };
    let mut outbox =
        seatgate::mail::outbox::Outbox::new(std::sync::Arc::new(db), &cfg).expect("outbox");
    let started = Instant::now();
    let mut sent = 0;
    while sent < messages {
        let pass = outbox
            .pass(&seatgate::clock::Clock::system(), &|| false)
            .expect("pass");
        assert_eq!(pass.failed + pass.retried, 0, "{pass:?}");
        sent += pass.sent;
    }
    let took = started.elapsed().as_secs_f64();
    let _ = sink.kill();
    let _ = sink.wait();
    println!("## Outbox\n");
    println!("| messages | wall time | messages/s | server |\n|---|---|---|---|");
    println!(
        "| {messages} | {took:.2} s | {:.0} | aiosmtpd on loopback, 4 connections at a time, one per message |",
        messages as f64 / took
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
