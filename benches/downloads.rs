//! Issue 19's figures for the distribution point, over HTTPS on loopback:
//!
//! 1. upload throughput: a file sent as `Content-Range` pieces (written to disk by the
//!    gatekeeper, hashed and synced per piece);
//! 2. download throughput with `CONCURRENT` (8) simultaneous `curl` downloads of that file,
//!    against nginx serving the same file over HTTPS on the same machine (`curl` the client
//!    of both), with `/healthz` latency measured meanwhile (do downloads starve others?);
//! 3. the server's peak RSS during one download of a `BIG_GIB` (10) GiB image (a sparse file,
//!    so this machine's disk is not the limit: what is measured is the gatekeeper's path);
//! 4. appcast requests per second (8 keep-alive clients, 10 versions in the feed).
//!
//! `cargo bench --bench downloads`; `SIZE_MIB` (1024), `BIG_GIB`, `CONCURRENT`. nginx is
//! optional (`apt-get install nginx-light`); without it the comparison is skipped.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::client::{Client, Target};
use common::{Peaks, cli, env_num, mib, rss_bytes};

fn main() {
    // The commands the bench runs on the data directory read the same limit.
    // SAFETY: set before any thread starts.
    unsafe { std::env::set_var("SEATGATE_STORAGE_RESERVE", "256MiB") };
    let size_mib = env_num("SIZE_MIB", 1024);
    let big_gib = env_num("BIG_GIB", 10);
    let concurrent = env_num("CONCURRENT", 8);
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let server = common::kit::server::server()
        .binary(&common::bin())
        .data_dir(&data)
        .env("SEATGATE_BACKUP_ENABLED", "false")
        .graceful_stop()
        .forget_log_after_start()
        .start();
    let file = tmp.path().join("golden.img");
    write_pattern(&file, (size_mib as u64) << 20);
    let sha = sha256_file(&file);
    let token = cli(&data, &["admin-token", "create", "--name", "bench"])
        .lines()
        .last()
        .expect("token")
        .to_string();

    println!("## Distribution point (issue 19)\n");
    let took = upload(&server, &token, "Golden", "1.0", &file, &sha);
    println!(
        "| upload of {size_mib} MiB in 1 GiB pieces | {:.1} s | {:.0} MiB/s |",
        took.as_secs_f64(),
        size_mib as f64 / took.as_secs_f64()
    );

    // A tiny second image, made big (sparse) in place: the 10 GiB download's file.
    let small = tmp.path().join("small.img");
    write_pattern(&small, 1 << 20);
    upload(&server, &token, "Big", "1.0", &small, &sha256_file(&small));
    let big = (big_gib as u64) << 30;
    let big_id = sql_one(
        &data,
        "SELECT v.id FROM image_versions v JOIN images i ON i.id = v.image_id WHERE i.name = 'Big'",
    );
    std::fs::OpenOptions::new()
        .write(true)
        .open(data.join(format!("storage/images/{big_id}.img")))
        .expect("big")
        .set_len(big)
        .expect("sparse");
    sql_exec(
        &data,
        &format!("UPDATE image_versions SET size = {big} WHERE id = {big_id}"),
    );

    let auth = device_with_images(&server, &data);
    let base = format!("https://127.0.0.1:{}", server.addr.port());
    let ca = data.join("tls/ca.pem");
    let golden_url = format!("{base}/api/v1/images/{}/file", auth["Golden"].0);

    // 8 concurrent downloads, and /healthz meanwhile.
    let (bytes, wall, health) = concurrent_downloads(
        &golden_url,
        Some(&auth["Golden"].1),
        &ca,
        concurrent,
        &server,
    );
    let ours = bytes as f64 / wall / 1048576.0;
    println!(
        "| {concurrent} concurrent downloads of {size_mib} MiB (seatgate, curl) | {wall:.1} s | {ours:.0} MiB/s total |"
    );
    println!("| /healthz during them (p50 / p99 / max) | {health} | |");
    match nginx_baseline(tmp.path(), &file, concurrent) {
        Some(theirs) => println!(
            "| the same from nginx over HTTPS (2 workers, curl) | | {theirs:.0} MiB/s total: seatgate = {:.0}% |",
            100.0 * ours / theirs
        ),
        None => println!("| nginx baseline | skipped: nginx not installed | |"),
    }

    appcast_rate(&server, &data, &small);

    // One 10 GiB download, RSS sampled every 10 ms.
    let idle = rss_bytes(server.pid() as u32).unwrap_or(0);
    let peaks = Peaks::start(server.pid() as u32, &data);
    let big_url = format!("{base}/api/v1/images/{}/file", auth["Big"].0);
    let started = Instant::now();
    let got = curl_download(&big_url, Some(&auth["Big"].1), &ca);
    let took = started.elapsed().as_secs_f64();
    let (peak, _) = peaks.stop();
    assert_eq!(got, big, "the whole big file arrived");
    println!(
        "| one {big_gib} GiB download | {took:.1} s ({:.0} MiB/s) | server RSS {:.1} MiB before, peak {:.1} MiB during |\n",
        big as f64 / took / 1048576.0,
        mib(idle),
        mib(peak)
    );
}

/// 10 versions on the update server, then 8 keep-alive clients fetching the beta appcast
/// for 5 s.
fn appcast_rate(server: &common::Server, data: &Path, package: &Path) {
    for minor in 0..10 {
        let version = format!("20.{minor}.0");
        let branch = if minor % 2 == 0 { "stable" } else { "beta" };
        cli(
            data,
            &[
                "update",
                "add",
                package.to_str().expect("utf8"),
                "--version",
                &version,
                "--branch",
                branch,
                "--min-os",
                "13.0",
                "--notes",
                "Fixes and improvements.",
            ],
        );
    }
    let target = Target {
        addr: server.addr,
        tls: Some(common::client_config(&data.join("tls/ca.pem"))),
        authorization: None,
        content_type: "application/json",
        base: String::new(),
    };
    let until = Instant::now() + Duration::from_secs(5);
    let started = Instant::now();
    let (count, mut lat) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let mut c = Client::new(&target);
                    let mut lat = Vec::new();
                    while Instant::now() < until {
                        let (status, _, took) = c.call("GET", "/updates/beta/appcast.xml", None);
                        assert_eq!(status, 200);
                        lat.push(took);
                    }
                    lat
                })
            })
            .collect();
        let all: Vec<Duration> = handles
            .into_iter()
            .flat_map(|h| h.join().expect("client"))
            .collect();
        (all.len(), all)
    });
    let wall = started.elapsed().as_secs_f64();
    lat.sort();
    let p99 = lat.get(lat.len() * 99 / 100).copied().unwrap_or_default();
    println!(
        "| beta appcast (10 versions), 8 keep-alive clients | {count} in {wall:.1} s | {:.0} requests/s, p99 {:.1} ms |",
        count as f64 / wall,
        p99.as_secs_f64() * 1000.0
    );
}

/// Writes `size` bytes of a non-repeating pattern (xorshift), fast.
fn write_pattern(path: &Path, size: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut block = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for chunk in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n]).expect("write");
        left -= n as u64;
    }
    f.flush().expect("flush");
}

fn sha256_file(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("hash")
        .to_string()
}

/// Uploads `file` in 1 GiB pieces over one connection each; returns the time taken.
fn upload(
    server: &common::Server,
    token: &str,
    name: &str,
    version: &str,
    file: &Path,
    sha: &str,
) -> Duration {
    let size = std::fs::metadata(file).expect("meta").len();
    let body = json!({"name": name, "version": version, "size": size, "sha256": sha}).to_string();
    let r = server.request(
        "POST",
        "/api/v1/admin/images/uploads",
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().expect("id").to_string();
    let started = Instant::now();
    let mut source = std::fs::File::open(file).expect("open");
    let mut offset = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    while offset < size {
        let piece = (1u64 << 30).min(size - offset);
        let mut conn = server.connect();
        let head = format!(
            "PUT /api/v1/admin/uploads/{id} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Range: bytes {offset}-{}/{size}\r\nContent-Length: {piece}\r\n\r\n",
            offset + piece - 1
        );
        conn.write_all(head.as_bytes()).expect("head");
        let mut left = piece;
        while left > 0 {
            let n = (left as usize).min(buf.len());
            source.read_exact(&mut buf[..n]).expect("read");
            conn.write_all(&buf[..n]).expect("body");
            left -= n as u64;
        }
        conn.flush().expect("flush");
        let r = conn.read_response();
        assert!(r.status == 200 || r.status == 201, "{}", r.text());
        offset += piece;
    }
    started.elapsed()
}

/// A user in group "Bench" (seated), both images assigned to it, a device of theirs
/// written into the database, and its signed listing: image name → (version id,
/// download authorization).
fn device_with_images(
    server: &common::Server,
    data: &Path,
) -> std::collections::HashMap<String, (i64, String)> {
    let license = cli(
        data,
        &["license", "add", "--product", "Bench", "--seats", "10"],
    );
    cli(
        data,
        &[
            "group-map",
            "add",
            "--group",
            "Bench",
            "--license",
            &license,
            "--primary",
        ],
    );
    for image in ["Golden", "Big"] {
        cli(data, &["image", "assign", image, "--group", "Bench"]);
    }
    let scim = common::scim_target(server, data);
    let mut c = Client::new(&scim);
    let (status, body, _) = c.call(
        "POST",
        "/Users",
        Some(&json!({"userName": "bench@contoso.com", "active": true})),
    );
    assert_eq!(status, 201);
    let user: Value = serde_json::from_slice(&body).expect("json");
    let user = user["id"].as_str().expect("id").to_string();
    let (status, _, _) = c.call(
        "POST",
        "/Groups",
        Some(&json!({"displayName": "Bench", "members": [{"value": user}]})),
    );
    assert_eq!(status, 201);
    let (pkcs8, public) = seatgate::crypto::ed25519_generate().expect("key");
    let key = seatgate::domain::jose::DeviceKey::from_jwk(
        &json!({"kty": "OKP", "crv": "Ed25519", "x": seatgate::crypto::b64url(&public)}),
    )
    .expect("jwk");
    let now = seatgate::clock::now_unix();
    sql_exec(
        data,
        &format!(
            "INSERT INTO devices (id, user_id, license_id, thumbprint, public_jwk, name, os, created_at, last_seen_at, lease_id, lease_expires_at)
             VALUES ('dev-bench', '{user}', '{license}', '{}', '{}', 'bench', 'macOS', {now}, {now}, 'lease-bench', {})",
            key.thumbprint,
            key.jwk,
            now + 86400
        ),
    );
    let proof = seatgate::domain::jose::sign_eddsa(
        &pkcs8,
        &key.thumbprint,
        "seatgate-proof+jwt",
        &json!({"action": "images", "device": "dev-bench", "iat": now}),
    )
    .expect("proof");
    let api = Target {
        addr: server.addr,
        tls: Some(common::client_config(&data.join("tls/ca.pem"))),
        authorization: Some(format!("Device {proof}")),
        content_type: "application/json",
        base: String::new(),
    };
    let (status, body, _) = Client::new(&api).call("GET", "/api/v1/images", None);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let listing: Value = serde_json::from_slice(&body).expect("json");
    let claims = seatgate::domain::jose::Jws::parse(listing["listing"].as_str().expect("jws"))
        .expect("jws")
        .claims;
    claims["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|i| {
            let id = i["url"]
                .as_str()
                .expect("url")
                .rsplit('/')
                .nth(1)
                .expect("id")
                .parse()
                .expect("id");
            (
                i["name"].as_str().expect("name").to_string(),
                (
                    id,
                    format!("Download {}", i["authorization"].as_str().expect("auth")),
                ),
            )
        })
        .collect()
}

/// Bytes `curl` received from `url`.
fn curl_download(url: &str, auth: Option<&str>, ca: &Path) -> u64 {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "--cacert"])
        .arg(ca)
        .args(["-o", "/dev/null", "-w", "%{size_download}"]);
    if let Some(a) = auth {
        cmd.args(["-H", &format!("Authorization: {a}")]);
    }
    let out = cmd.arg(url).output().expect("curl");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// `n` curls at once: (bytes, seconds, "/healthz p50 / p99 / max" meanwhile).
fn concurrent_downloads(
    url: &str,
    auth: Option<&str>,
    ca: &Path,
    n: usize,
    server: &common::Server,
) -> (u64, f64, String) {
    let started = Instant::now();
    let (bytes, mut lat) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| s.spawn(|| curl_download(url, auth, ca)))
            .collect();
        let mut lat = Vec::new();
        while handles.iter().any(|h| !h.is_finished()) {
            let t = Instant::now();
            assert_eq!(server.get("/healthz").status, 200);
            lat.push(t.elapsed());
            std::thread::sleep(Duration::from_millis(20));
        }
        (
            handles
                .into_iter()
                .map(|h| h.join().expect("curl"))
                .sum::<u64>(),
            lat,
        )
    });
    let wall = started.elapsed().as_secs_f64();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    let health = format!(
        "{} / {} / {} ({} requests)",
        ms(pct(0.5)),
        ms(pct(0.99)),
        ms(*lat.last().unwrap_or(&Duration::ZERO)),
        lat.len()
    );
    (bytes, wall, health)
}

/// nginx (2 workers, TLS, a self-signed certificate) serving `file`: total MiB/s of `n`
/// concurrent curls; `None` without nginx.
fn nginx_baseline(dir: &Path, file: &Path, n: usize) -> Option<f64> {
    let nginx = [
        "/usr/sbin/nginx",
        "/usr/local/sbin/nginx",
        "/opt/homebrew/bin/nginx",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())?;
    let root = dir.join("nginx");
    std::fs::create_dir_all(root.join("www")).expect("mkdir");
    std::fs::hard_link(file, root.join("www/golden.img"))
        .or_else(|_| std::fs::copy(file, root.join("www/golden.img")).map(|_| ()))
        .expect("file");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
    std::fs::write(root.join("cert.pem"), cert.pem()).expect("cert");
    std::fs::write(root.join("key.pem"), key.serialize_pem()).expect("key");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let r = root.display();
    std::fs::write(
        root.join("nginx.conf"),
        format!(
            "worker_processes 2; daemon off; pid {r}/nginx.pid; error_log {r}/error.log;\nevents {{}}\nhttp {{ access_log off; client_body_temp_path {r}; proxy_temp_path {r}; fastcgi_temp_path {r}; uwsgi_temp_path {r}; scgi_temp_path {r};\n server {{ listen 127.0.0.1:{port} ssl; ssl_certificate {r}/cert.pem; ssl_certificate_key {r}/key.pem; root {r}/www; }} }}\n"
        ),
    )
    .expect("conf");
    let mut child = Command::new(&nginx)
        .args(["-c"])
        .arg(root.join("nginx.conf"))
        .args(["-p"])
        .arg(&root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    std::thread::sleep(Duration::from_millis(500));
    let url = format!("https://127.0.0.1:{port}/golden.img");
    let ca = root.join("cert.pem");
    let started = Instant::now();
    let bytes: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| s.spawn(|| curl_download(&url, None, &ca)))
            .collect();
        handles.into_iter().map(|h| h.join().expect("curl")).sum()
    });
    let wall = started.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    let expected = std::fs::metadata(file)
        .map(|m| m.len() * n as u64)
        .unwrap_or(0);
    (bytes == expected).then(|| bytes as f64 / wall / 1048576.0)
}

fn sql_exec(data: &Path, sql: &str) {
    let db = rusqlite::Connection::open(data.join("seatgate.db")).expect("db");
    db.busy_timeout(Duration::from_secs(10)).expect("busy");
    db.execute_batch(sql).expect("sql");
}

fn sql_one(data: &Path, sql: &str) -> i64 {
    let db = rusqlite::Connection::open(data.join("seatgate.db")).expect("db");
    db.query_row(sql, [], |r| r.get(0)).expect("row")
}
