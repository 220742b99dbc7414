//! `seatgate demo` start-up, run with `cargo bench --bench demo`: the time from spawning
//! the release binary to (a) the gateway answering `GET /healthz` and (b) the walkthrough
//! being printed (the organization seeded, the demo IdP's key made), 5 runs, median.
//! Also the RSS once the demo is up.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The binary under test: `SEATGATE_BENCH_BIN`, else the one cargo built.
fn bin() -> String {
    std::env::var("SEATGATE_BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_seatgate").to_string())
}

fn healthz(addr: &str) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.1 200")
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let mut ready = Vec::new();
    let mut walkthrough = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let mut child = Command::new(bin())
            .args(["demo", "--listen", "127.0.0.1:0"])
            .env("SEATGATE_LOG_LEVEL", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let mut addr = String::new();
        for line in stderr.lines().map_while(Result::ok) {
            if let Some(a) = line.split("listening on http://").nth(1) {
                addr = a.trim().to_string();
                break;
            }
        }
        while !healthz(&addr) {
            std::thread::sleep(Duration::from_millis(1));
        }
        ready.push(started.elapsed());
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        for line in stdout.lines().map_while(Result::ok) {
            if line.starts_with("Break-glass admin:") {
                break;
            }
        }
        walkthrough.push(started.elapsed());
        std::thread::sleep(Duration::from_millis(300));
        rss.push(rss_kib(child.id()));
        // SIGTERM: the demo stops gracefully and deletes its directory.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let _ = child.wait();
    }
    ready.sort();
    walkthrough.sort();
    rss.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("# seatgate demo start-up (5 runs, release build)\n");
    println!("| figure | median | min–max |\n|---|---|---|");
    println!(
        "| spawn → GET /healthz answered | {:.0} ms | {:.0}–{:.0} ms |",
        ms(ready[2]),
        ms(ready[0]),
        ms(ready[4])
    );
    println!(
        "| spawn → walkthrough printed (organization seeded) | {:.0} ms | {:.0}–{:.0} ms |",
        ms(walkthrough[2]),
        ms(walkthrough[0]),
        ms(walkthrough[4])
    );
    println!(
        "| RSS with the demo up | {:.1} MiB | {:.1}–{:.1} MiB |",
        rss[2] as f64 / 1024.0,
        rss[0] as f64 / 1024.0,
        rss[4] as f64 / 1024.0
    );
}
