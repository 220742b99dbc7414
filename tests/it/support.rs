//! Integration-test helpers on top of the shared kit (tests/kit): SCIM client, database
//! peeks, a small tmpfs. The launcher and HTTP client live in the kit, also used by benches.

#![allow(dead_code)]

use std::process::Command;
use std::time::{Duration, Instant};

pub use crate::kit::http::*;
pub use crate::kit::server::*;
pub use crate::kit::wait::{poll_until, wait_until};

/// Asserts that the server still answers a normal request promptly.
pub fn assert_still_serving(server: &TestServer) {
    let started = Instant::now();
    let r = server.get("/healthz");
    assert_eq!(r.status, 200, "server stopped serving: {}", r.text());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "healthz took {:?}",
        started.elapsed()
    );
}

/// A SCIM client for one server and token.
pub struct Scim<'a> {
    pub server: &'a TestServer,
    pub token: String,
}

impl TestServer {
    /// Creates a SCIM token with the CLI (as an admin would, while the server runs), in
    /// the unassigned scope.
    pub fn scim(&self) -> Scim<'_> {
        self.scim_token(None)
    }

    /// A SCIM token that provisions for one IdP connection.
    pub fn scim_for(&self, connection: &str) -> Scim<'_> {
        self.scim_token(Some(connection))
    }

    fn scim_token(&self, connection: Option<&str>) -> Scim<'_> {
        let mut args = vec![
            "--data-dir",
            self.data_dir.to_str().expect("utf8"),
            "scim-token",
            "create",
            "--name",
            "test",
        ];
        if let Some(c) = connection {
            args.extend(["--connection", c]);
        }
        let (code, out, err) = run_cli(&args, &[]);
        assert_eq!(code, 0, "{err}");
        Scim {
            server: self,
            token: out.lines().last().expect("token line").trim().to_string(),
        }
    }
}

impl Scim<'_> {
    pub fn call(&self, method: &str, path: &str, body: Option<&serde_json::Value>) -> HttpResponse {
        let auth = format!("Bearer {}", self.token);
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let mut headers = vec![("Authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("Content-Type", "application/scim+json"));
        }
        self.server
            .request(method, &format!("/scim/v2{path}"), &headers, &bytes)
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        self.call("GET", path, None)
    }

    pub fn post(&self, path: &str, body: serde_json::Value) -> HttpResponse {
        self.call("POST", path, Some(&body))
    }

    pub fn put(&self, path: &str, body: serde_json::Value) -> HttpResponse {
        self.call("PUT", path, Some(&body))
    }

    pub fn patch(&self, path: &str, body: serde_json::Value) -> HttpResponse {
        self.call("PATCH", path, Some(&body))
    }

    pub fn delete(&self, path: &str) -> HttpResponse {
        self.call("DELETE", path, None)
    }

    /// GET with a filter, URL-encoded.
    pub fn filter(&self, resource: &str, filter: &str) -> HttpResponse {
        self.get(&format!("/{resource}?filter={}", encode(filter)))
    }

    /// The raw request with arbitrary headers and body bytes.
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        let auth = format!("Bearer {}", self.token);
        let mut all = vec![("Authorization", auth.as_str())];
        all.extend_from_slice(headers);
        self.server
            .request(method, &format!("/scim/v2{path}"), &all, body)
    }
}

/// Runs a query against the server's database file (read-only use in assertions).
/// Runs one statement that changes the database behind the server.
pub fn db_exec(server: &TestServer, sql: &str) -> usize {
    let conn = rusqlite::Connection::open(server.data_dir.join("seatgate.db")).expect("open db");
    conn.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    conn.execute(sql, []).expect("execute")
}

pub fn db_query(server: &TestServer, sql: &str) -> Vec<Vec<String>> {
    let conn = rusqlite::Connection::open(server.data_dir.join("seatgate.db")).expect("open db");
    let mut stmt = conn.prepare(sql).expect("prepare");
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        (0..n)
            .map(|i| {
                r.get::<_, rusqlite::types::Value>(i).map(|v| match v {
                    rusqlite::types::Value::Null => "NULL".to_string(),
                    rusqlite::types::Value::Integer(i) => i.to_string(),
                    rusqlite::types::Value::Real(f) => f.to_string(),
                    rusqlite::types::Value::Text(t) => t,
                    rusqlite::types::Value::Blob(_) => "<blob>".to_string(),
                })
            })
            .collect()
    })
    .expect("query")
    .collect::<Result<_, _>>()
    .expect("rows")
}

/// A small tmpfs under `parent`, unmounted when dropped; `None` (the test then skips, saying
/// so) when not root or the mount fails.
pub struct Tmpfs(pub std::path::PathBuf);

impl Tmpfs {
    pub fn mount(parent: &std::path::Path, size: &str) -> Option<Tmpfs> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            println!("skipped: needs root to mount tmpfs");
            return None;
        }
        let mount = parent.join("small");
        std::fs::create_dir(&mount).expect("mkdir");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mount)
            .status()
            .expect("run mount");
        if !mounted.success() {
            println!("skipped: mount failed: {mounted}");
            return None;
        }
        Some(Tmpfs(mount))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}
