//! The database always comes back (issue 12): kills during checkpoints, online backups
//! under write load, and a bounded write-ahead log.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;

use crate::support::{TestServer, db_query, run_cli, server};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// Creates users `{prefix}-{n}` until `stop` is set, `limit` are created or the server is
/// gone. Returns the userNames the server acknowledged with 201.
fn create_users(
    s: &TestServer,
    token: &str,
    prefix: &str,
    limit: usize,
    stop: &AtomicBool,
) -> Vec<String> {
    let auth = format!("Bearer {token}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/scim+json"),
    ];
    let mut acknowledged = Vec::new();
    for n in 0..limit {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let name = format!("{prefix}-{n}@durability.example");
        let body = json!({"schemas": [USER], "userName": name, "displayName": "x".repeat(200)});
        match s.try_request(
            "POST",
            "/scim/v2/Users",
            &headers,
            body.to_string().as_bytes(),
        ) {
            Ok(r) if r.status == 201 => acknowledged.push(name),
            Ok(r) => panic!("create {name}: {} {}", r.status, r.text()),
            Err(_) => break,
        }
    }
    acknowledged
}

fn scim_token(data_dir: &Path) -> String {
    let (code, out, err) = run_cli(
        &[
            "--data-dir",
            data_dir.to_str().expect("utf8"),
            "scim-token",
            "create",
            "--name",
            "load",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    out.lines().last().expect("token line").trim().to_string()
}

fn wal_len(s: &TestServer) -> u64 {
    std::fs::metadata(s.data_dir.join("seatgate.db-wal")).map_or(0, |m| m.len())
}

/// A crash at 30 points of a WAL reset under SCIM write load: a debug-build hook aborts
/// the process 0 to 58 µs (2 µs apart) after the checkpoint wrote page 1 with a page
/// count the file does not have yet, the window the old start-up check called
/// "truncated". Every restart comes up, and every write that got its 201 is there.
#[test]
fn item1_crashed_during_checkpoints_always_restarts_with_every_acknowledged_write() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("data");
    let start = |crash_point: Option<u32>| {
        let b = server()
            .data_dir(&dir)
            .plain_http()
            .config("[database]\nwal_max_mib = 4\n")
            .env("SEATGATE_SCIM_REQUESTS_PER_SECOND", "0");
        match crash_point {
            Some(n) => b.env("SEATGATE_TEST_CRASH_IN_CHECKPOINT", &n.to_string()),
            None => b,
        }
        .start()
    };
    let mut first = start(None);
    let token = scim_token(&dir);
    first.stop();
    let mut acknowledged = Vec::new();
    let never = AtomicBool::new(false);
    for point in 0..30u32 {
        let crashing = start(Some(point));
        let acked: Vec<String> = std::thread::scope(|scope| {
            let writers: Vec<_> = (0..2)
                .map(|w| {
                    let (s, token, never) = (&crashing, &token, &never);
                    scope.spawn(move || {
                        create_users(s, token, &format!("p{point}w{w}"), usize::MAX, never)
                    })
                })
                .collect();
            writers
                .into_iter()
                .flat_map(|w| w.join().expect("writer"))
                .collect()
        });
        let mut crashing = crashing;
        let status = crashing
            .wait_exit(Duration::from_secs(20))
            .expect("crashed");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGABRT),
            "point {point}: the hook crashed it"
        );
        acknowledged.extend(acked);
        // The restart under test; it then stops cleanly, so the next crash point starts
        // from an empty WAL and the hook fires under load, not during start-up.
        let mut back = start(None);
        let present: HashSet<String> = db_query(&back, "SELECT user_name FROM users")
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
        let lost: Vec<&String> = acknowledged
            .iter()
            .filter(|n| !present.contains(*n))
            .collect();
        assert!(
            lost.is_empty(),
            "point {point}: {} of {} acknowledged writes lost: {lost:?}",
            lost.len(),
            acknowledged.len()
        );
        assert_eq!(back.stop().code(), Some(0));
    }
    assert!(
        acknowledged.len() > 30 * 20,
        "the load wrote: {}",
        acknowledged.len()
    );
}

/// `seatgate backup` against a server taking SCIM writes (with the WAL restarting every
/// few dozen writes): every run succeeds and yields an intact copy.
#[test]
fn item1_backups_under_write_load_never_fail() {
    let s = server()
        .plain_http()
        .config("[database]\nwal_max_mib = 1\n")
        .env("SEATGATE_SCIM_REQUESTS_PER_SECOND", "0")
        .start();
    let token = scim_token(&s.data_dir);
    let stop = AtomicBool::new(false);
    let out = tempfile::tempdir().expect("tmp");
    std::thread::scope(|scope| {
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let (s, token, stop) = (&s, &token, &stop);
                scope.spawn(move || create_users(s, token, &format!("b{w}"), usize::MAX, stop))
            })
            .collect();
        for i in 0..12 {
            let file = out.path().join(format!("backup-{i}.db"));
            let (code, stdout, err) = s.cli(&["backup", "--out", file.to_str().expect("utf8")]);
            // A failure stops the writers, or the scope would wait for them forever.
            stop.store(code != 0, Ordering::Relaxed);
            assert_eq!(code, 0, "backup {i} failed under load: {err}");
            assert!(stdout.contains("integrity ok"), "{stdout}");
        }
        stop.store(true, Ordering::Relaxed);
        let written: usize = writers
            .into_iter()
            .map(|w| w.join().expect("w").len())
            .sum();
        assert!(written > 0, "the writers wrote during the backups");
    });
}

/// Sustained SCIM creates keep the WAL near `[database] wal_max_mib`; before the bound it
/// grew with every write until shutdown.
#[test]
fn item2_wal_stays_bounded_under_sustained_writes() {
    let s = server()
        .plain_http()
        .config("[database]\nwal_max_mib = 1\n")
        .env("SEATGATE_SCIM_REQUESTS_PER_SECOND", "0")
        .start();
    let token = scim_token(&s.data_dir);
    let stop = AtomicBool::new(false);
    let largest = AtomicU64::new(0);
    let never = AtomicBool::new(false);
    let created: usize = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                largest.fetch_max(wal_len(&s), Ordering::Relaxed);
                // The sampling rate, not a wait.
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let (s, token, never) = (&s, &token, &never);
                scope.spawn(move || create_users(s, token, &format!("w{w}"), 1500, never).len())
            })
            .collect();
        let created = writers.into_iter().map(|w| w.join().expect("w")).sum();
        stop.store(true, Ordering::Relaxed);
        sampler.join().expect("sampler");
        created
    });
    assert_eq!(created, 6000);
    let largest = largest.load(Ordering::Relaxed);
    // 1 MiB bound; the headroom covers the writes that land while a checkpoint runs.
    assert!(
        largest < 6 * 1024 * 1024,
        "the WAL reached {largest} bytes with a 1 MiB bound"
    );
}
