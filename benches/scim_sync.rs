//! SCIM benchmark (issue 3), run with `cargo bench --bench scim_sync`.
//!
//! An Entra-shaped initial sync against the release binary over HTTPS with 8 keep-alive
//! clients: for each user a match-by-filter GET (`userName eq`, empty) then a POST; then
//! 1,000 groups, each filled by one member PATCH (100 members each). Then: `userName eq`
//! filter latency at full size, five 1,000-member group PATCHes, and RSS and the WAL's size
//! sampled during the run. The same workload, scaled down, runs against the Python reference server
//! `scim2-server` (PyPI) over plain HTTP beside seatgate over plain HTTP, for a ratio.
//!
//! Environment: `SCIM_USERS` (default 100000), `SCIM_GROUPS` (1000), `SCIM_REF_USERS` (5000;
//! 0 skips the reference run), `SCIM2_SERVER` (path to the `scim2-server` executable; default looks in
//! `$HOME/.cache/seatgate-scim2-server/bin`).

mod common;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::client::{Client, Target};

const CLIENTS: usize = 8;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let users = env_num("SCIM_USERS", 100_000);
    let groups = env_num("SCIM_GROUPS", 1000);
    let ref_users = env_num("SCIM_REF_USERS", 5000);
    let tmp = std::env::temp_dir().join(format!("seatgate-scim-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);

    println!("# seatgate SCIM benchmark\n");
    println!(
        "{users} users, {groups} groups, {CLIENTS} concurrent keep-alive clients; release binary\n"
    );

    let (server, target) = start_seatgate(&tmp.join("https"), true);
    let peaks = common::Peaks::start(server.pid() as u32, &tmp.join("https/data"));
    let report = run_sync(&target, users, groups);
    let filter = filter_latency(&target, users, 4000);
    let big = big_patches(&target, users, 5);
    let (peak, wal) = peaks.stop();
    drop(server);

    println!("## Initial sync over HTTPS\n");
    println!(
        "| phase | requests | wall time | requests/s | p50 | p99 |\n|---|---|---|---|---|---|"
    );
    for p in &report.phases {
        p.row();
    }
    println!(
        "\nuser creates/s (POSTs only, during the user phase): {:.0}; whole sync: {:.1} s",
        report.creates_per_sec, report.total_secs
    );
    println!("\n## At {users} users\n");
    println!("| measurement | n | p50 | p99 | max |\n|---|---|---|---|---|");
    filter.row("GET /Users?filter=userName eq (random existing user)");
    big.row("PATCH adding 1,000 members to a group");
    println!(
        "\npeak RSS during the run: {:.1} MiB; largest WAL (sampled every 10 ms): {:.1} MiB",
        common::mib(peak),
        common::mib(wal)
    );

    if ref_users > 0 {
        reference_comparison(&tmp, ref_users, (ref_users / 100).max(1));
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

fn start_seatgate(dir: &Path, tls: bool) -> (common::Server, Target) {
    std::fs::create_dir_all(dir).expect("dir");
    let mut env = vec![("SEATGATE_SCIM_REQUESTS_PER_SECOND", "0")];
    if !tls {
        env.push(("SEATGATE_TLS_MODE", "off"));
    }
    let server = common::spawn(&dir.join("data"), &env);
    let target = common::scim_target(&server, &dir.join("data"));
    (server, target)
}

fn user_name(i: usize) -> String {
    format!("user{i:06}@contoso.example")
}

fn entra_user(i: usize) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": format!("0b1e{i:08}-7f00-4000-8000-000000000000"),
        "userName": user_name(i),
        "active": true,
        "displayName": format!("User {i}"),
        "emails": [{"primary": true, "type": "work", "value": user_name(i)}],
        "name": {"familyName": format!("Family{i}"), "givenName": "Given"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": format!("Dept{}", i % 50)},
    })
}

#[derive(Default)]
struct Latencies(Vec<Duration>);

impl Latencies {
    fn pct(&mut self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        self.0.sort();
        let i = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        self.0[i].as_secs_f64() * 1000.0
    }
}

struct Phase {
    name: &'static str,
    requests: usize,
    secs: f64,
    lat: Latencies,
}

impl Phase {
    fn row(&self) {
        let mut lat = Latencies(self.lat.0.clone());
        println!(
            "| {} | {} | {:.1} s | {:.0} | {:.2} ms | {:.2} ms |",
            self.name,
            self.requests,
            self.secs,
            self.requests as f64 / self.secs,
            lat.pct(0.5),
            lat.pct(0.99)
        );
    }
}

struct Report {
    phases: Vec<Phase>,
    creates_per_sec: f64,
    total_secs: f64,
}

/// Runs `work(client, index)` for every index in 0..n across CLIENTS threads.
fn parallel(
    target: &Target,
    n: usize,
    work: impl Fn(&mut Client<'_>, usize, &mut Vec<Duration>) + Sync,
) -> (f64, Latencies) {
    let next = AtomicU64::new(0);
    let all = Mutex::new(Vec::with_capacity(n * 2));
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..CLIENTS {
            scope.spawn(|| {
                let mut client = Client::new(target);
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i >= n {
                        break;
                    }
                    work(&mut client, i, &mut lat);
                }
                all.lock().expect("lock").extend(lat);
            });
        }
    });
    (
        started.elapsed().as_secs_f64(),
        Latencies(all.into_inner().expect("lock")),
    )
}

fn run_sync(target: &Target, users: usize, groups: usize) -> Report {
    let ids: Vec<Mutex<String>> = (0..users).map(|_| Mutex::new(String::new())).collect();
    let post_lat = Mutex::new(Vec::new());
    let (user_secs, lat) = parallel(target, users, |c, i, lat| {
        let filter = common::kit::http::encode(&format!("userName eq \"{}\"", user_name(i)));
        let (status, _, t) = c.call("GET", &format!("/Users?filter={filter}"), None);
        assert_eq!(status, 200);
        lat.push(t);
        let (status, body, t) = c.call("POST", "/Users", Some(&entra_user(i)));
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
        lat.push(t);
        post_lat.lock().expect("lock").push(t);
        let v: Value = serde_json::from_slice(&body).expect("json");
        *ids[i].lock().expect("lock") = v["id"].as_str().expect("id").to_string();
    });
    let ids: Vec<String> = ids
        .into_iter()
        .map(|m| m.into_inner().expect("lock"))
        .collect();
    let (group_secs, group_lat) = parallel(target, groups, |c, g, lat| {
        let (status, body, t) = c.call(
            "POST",
            "/Groups",
            Some(&json!({"displayName": format!("Group {g}"), "externalId": format!("g{g}")})),
        );
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
        lat.push(t);
        let gid = serde_json::from_slice::<Value>(&body).expect("json")["id"]
            .as_str()
            .expect("id")
            .to_string();
        let per = users / groups;
        let members: Vec<Value> = ids[g * per..(g + 1) * per]
            .iter()
            .map(|id| json!({"value": id}))
            .collect();
        let (status, body, t) = c.call(
            "PATCH",
            &format!("/Groups/{gid}"),
            Some(&json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "Add", "path": "members", "value": members}]})),
        );
        assert!(
            status == 204 || status == 200,
            "{status} {}",
            String::from_utf8_lossy(&body)
        );
        lat.push(t);
    });
    let creates = post_lat.into_inner().expect("lock").len() as f64;
    Report {
        creates_per_sec: creates / user_secs,
        total_secs: user_secs + group_secs,
        phases: vec![
            Phase {
                name: "users: GET filter + POST each",
                requests: users * 2,
                secs: user_secs,
                lat,
            },
            Phase {
                name: "groups: POST + member PATCH each",
                requests: groups * 2,
                secs: group_secs,
                lat: group_lat,
            },
        ],
    }
}

struct Sample {
    lat: Latencies,
}

impl Sample {
    fn row(mut self, name: &str) {
        let max = self.lat.pct(1.0);
        println!(
            "| {name} | {} | {:.2} ms | {:.2} ms | {:.2} ms |",
            self.lat.0.len(),
            self.lat.pct(0.5),
            self.lat.pct(0.99),
            max
        );
    }
}

fn filter_latency(target: &Target, users: usize, n: usize) -> Sample {
    let (_, lat) = parallel(target, n, |c, i, lat| {
        let u = (i * 7919) % users;
        let filter = common::kit::http::encode(&format!("userName eq \"{}\"", user_name(u)));
        let (status, body, t) = c.call("GET", &format!("/Users?filter={filter}"), None);
        assert_eq!(status, 200);
        let found: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(found["totalResults"], 1, "user {u} found");
        lat.push(t);
    });
    Sample { lat }
}

/// Five groups each get 1,000 existing users in one PATCH (one client, sequential).
fn big_patches(target: &Target, users: usize, n: usize) -> Sample {
    let mut c = Client::new(target);
    let (_, body, _) = c.call("GET", "/Users?count=1000&startIndex=1&attributes=id", None);
    let page: Value = serde_json::from_slice(&body).expect("json");
    let ids: Vec<Value> = page["Resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| json!({"value": r["id"]}))
        .collect();
    assert_eq!(ids.len(), 1000.min(users));
    let mut lat = Vec::new();
    for k in 0..n {
        let (status, body, _) = c.call(
            "POST",
            "/Groups",
            Some(&json!({"displayName": format!("Big {k}")})),
        );
        assert_eq!(status, 201);
        let gid = serde_json::from_slice::<Value>(&body).expect("json")["id"]
            .as_str()
            .expect("id")
            .to_string();
        let (status, _, t) = c.call(
            "PATCH",
            &format!("/Groups/{gid}"),
            Some(&json!({"Operations": [{"op": "Add", "path": "members", "value": ids}]})),
        );
        assert!(status == 204 || status == 200);
        lat.push(t);
    }
    Sample {
        lat: Latencies(lat),
    }
}

/// The same workload, scaled down, against scim2-server and seatgate, both over HTTP.
/// The Python reference server, killed when dropped.
struct ReferenceServer(Child);

impl Drop for ReferenceServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn reference_comparison(tmp: &Path, users: usize, groups: usize) {
    let exe = std::env::var("SCIM2_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/seatgate-scim2-server/bin/scim2-server")
        });
    println!(
        "\n## Against the Python reference server (scim2-server), plain HTTP, {users} users, {groups} groups\n"
    );
    if !exe.exists() {
        println!(
            "skipped: {} not found (pip install scim2-server into that venv)",
            exe.display()
        );
        return;
    }
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        l.local_addr().expect("addr").port()
    };
    let reference = Command::new(&exe)
        .args(["--hostname", "127.0.0.1", "--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn scim2-server");
    let reference = ReferenceServer(reference);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "scim2-server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let python = Target {
        addr,
        tls: None,
        authorization: None,
        content_type: "application/scim+json",
        base: String::new(),
    };
    let py = run_sync(&python, users, groups);
    drop(reference);

    let (server, ours) = start_seatgate(&tmp.join("plain"), false);
    let sg = run_sync(&ours, users, groups);
    drop(server);

    println!(
        "| server | whole sync | user creates/s | users phase p99 | groups phase p99 |\n|---|---|---|---|---|"
    );
    for (name, mut r) in [("scim2-server (Python)", py), ("seatgate, TLS off", sg)] {
        let p99u = r.phases[0].lat.pct(0.99);
        let p99g = r.phases[1].lat.pct(0.99);
        println!(
            "| {name} | {:.1} s | {:.0} | {:.2} ms | {:.2} ms |",
            r.total_secs, r.creates_per_sec, p99u, p99g
        );
    }
}
