//! Test kit: starts the real `seatgate` binary on a free loopback port with its own data
//! directory, and talks to it over real sockets with a real TLS client.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

pub const BIN: &str = env!("CARGO_BIN_EXE_seatgate");

/// The binary under test: SEATGATE_TEST_BIN when set (`.ci/check-static` runs tests against
/// the static release build this way), else the one cargo built for this test run.
pub fn bin() -> String {
    std::env::var("SEATGATE_TEST_BIN").unwrap_or_else(|_| BIN.to_string())
}

/// A running server. Killed on drop if the test did not stop it.
pub struct TestServer {
    pub child: Option<Child>,
    pub data_dir: PathBuf,
    pub addr: SocketAddr,
    pub tls: bool,
    demo: bool,
    log: Arc<Mutex<String>>,
    _tmp: Option<tempfile::TempDir>,
}

pub struct Builder {
    env: Vec<(String, String)>,
    args: Vec<String>,
    data_dir: Option<PathBuf>,
    tls: bool,
    ulimit_nofile: Option<u32>,
    config_file: Option<String>,
    demo: bool,
}

pub fn server() -> Builder {
    Builder {
        env: Vec::new(),
        args: Vec::new(),
        data_dir: None,
        tls: true,
        ulimit_nofile: None,
        config_file: None,
        demo: false,
    }
}

impl Builder {
    pub fn env(mut self, k: &str, v: &str) -> Builder {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn arg(mut self, a: &str) -> Builder {
        self.args.push(a.into());
        self
    }

    /// Use (and keep) this data directory instead of a fresh temporary one.
    pub fn data_dir(mut self, dir: &Path) -> Builder {
        self.data_dir = Some(dir.to_path_buf());
        self
    }

    pub fn plain_http(mut self) -> Builder {
        self.tls = false;
        self.env("SEATGATE_TLS_MODE", "off")
    }

    /// `seatgate demo` instead of `serve`: plain HTTP, its walkthrough (stdout) in the log,
    /// and `data_dir` the demo's own.
    pub fn demo(mut self) -> Builder {
        self.demo = true;
        self.tls = false;
        self
    }

    pub fn ulimit_nofile(mut self, n: u32) -> Builder {
        self.ulimit_nofile = Some(n);
        self
    }

    pub fn config(mut self, toml: &str) -> Builder {
        self.config_file = Some(toml.into());
        self
    }

    /// Starts the server and waits for its `listening on` line.
    pub fn start(self) -> TestServer {
        let (tmp, data_dir) = match self.data_dir {
            Some(d) => (None, d),
            None => {
                let t = tempfile::tempdir().expect("tempdir");
                let d = t.path().join("data");
                (Some(t), d)
            }
        };
        let mut cmd = match self.ulimit_nofile {
            Some(n) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(bin());
                c
            }
            None => Command::new(bin()),
        };
        cmd.arg("--data-dir").arg(&data_dir);
        if let Some(text) = &self.config_file {
            let path = data_dir.with_extension("toml");
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, text).expect("write config");
            cmd.arg("--config").arg(path);
        }
        cmd.arg(if self.demo { "demo" } else { "serve" })
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(&self.args);
        cmd.env_remove("RUST_LOG").env("SEATGATE_LOG_LEVEL", "info");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdout(if self.demo {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn seatgate");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        if let Some(stdout) = child.stdout.take() {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    let mut l = log.lock().expect("log");
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut sent = false;
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    // Record the line before announcing the address, so a test that reads
                    // the log right after start() sees it.
                    {
                        let mut l = log.lock().expect("log");
                        l.push_str(&line);
                        l.push('\n');
                    }
                    if !sent && let Some(addr) = line.split("listening on ").nth(1) {
                        let addr = addr
                            .trim_start_matches("https://")
                            .trim_start_matches("http://")
                            .trim();
                        let _ = tx.send(addr.to_string());
                        sent = true;
                    }
                }
            });
        }
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a.parse().expect("address in log line"),
            Err(_) => {
                let _ = child.kill();
                panic!("seatgate did not start; log:\n{}", log.lock().expect("log"));
            }
        };
        let data_dir = if self.demo {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            loop {
                let text = log.lock().expect("log").clone();
                if let Some(dir) = text
                    .split("Data lives in ")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                {
                    break PathBuf::from(dir).join("data");
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "no walkthrough:\n{text}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        } else {
            data_dir
        };
        TestServer {
            child: Some(child),
            data_dir,
            addr,
            tls: self.tls,
            demo: self.demo,
            log,
            _tmp: tmp,
        }
    }
}

impl TestServer {
    pub fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// SIGTERM, then waits for the exit.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait_exit(Duration::from_secs(20))
            .expect("seatgate exits after SIGTERM")
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        while Instant::now() < end {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        None
    }

    pub fn ca_path(&self) -> PathBuf {
        self.data_dir.join("tls/ca.pem")
    }

    /// A new client connection (TLS when the server uses TLS).
    pub fn connect(&self) -> Conn {
        self.wrap(TcpStream::connect(self.addr).expect("connect"))
    }

    /// A new connection from another loopback address (`127.0.0.2`, …; Linux routes all
    /// of 127/8 to `lo`), so that a test can be several clients the server tells apart.
    pub fn connect_from(&self, source: std::net::Ipv4Addr) -> Conn {
        use std::os::fd::FromRawFd;
        let std::net::IpAddr::V4(server_ip) = self.addr.ip() else {
            panic!("the test server listens on IPv4");
        };
        let sockaddr = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(ip).to_be(),
            },
            sin_zero: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: a fresh socket is owned by the TcpStream at once; the addresses are
        // valid sockaddr_in values that outlive the calls.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            let tcp = TcpStream::from_raw_fd(fd);
            let local = sockaddr(source, 0);
            let bound = libc::bind(fd, (&raw const local).cast(), len);
            assert_eq!(
                bound,
                0,
                "bind {source}: {}",
                std::io::Error::last_os_error()
            );
            let remote = sockaddr(server_ip, self.addr.port());
            let connected = libc::connect(fd, (&raw const remote).cast(), len);
            assert_eq!(connected, 0, "connect: {}", std::io::Error::last_os_error());
            self.wrap(tcp)
        }
    }

    /// One request on a fresh connection from `source` (see [`TestServer::connect_from`]).
    pub fn request_from(
        &self,
        source: std::net::Ipv4Addr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        let mut c = self.connect_from(source);
        c.send(method, path, headers, body);
        c.read_response()
    }

    fn wrap(&self, tcp: TcpStream) -> Conn {
        tcp.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        if !self.tls {
            return Conn::Plain(tcp);
        }
        let config = client_config(&self.ca_path());
        let name = ServerName::try_from("localhost").expect("name");
        let conn = ClientConnection::new(config, name).expect("client");
        Conn::Tls(Box::new(StreamOwned::new(conn, tcp)))
    }

    /// One request on a fresh connection.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        let mut c = self.connect();
        c.send(method, path, headers, body);
        c.read_response()
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        self.request("GET", path, &[], b"")
    }

    /// Like `request`, but a server that is gone (killed, refusing) is an error, not a panic.
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<HttpResponse> {
        let mut c = self.wrap(TcpStream::connect(self.addr)?);
        c.try_send(method, path, headers, body)?;
        c.try_read_response()
    }

    /// Runs a command of the binary on this server's data directory.
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        self.cli_env(args, &[])
    }

    pub fn cli_env(&self, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
        let mut all = vec!["--data-dir", self.data_dir.to_str().expect("utf8")];
        all.extend_from_slice(args);
        run_cli(&all, env)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- seatgate log ({}) ---\n{}--- end of log ---",
                self.data_dir.display(),
                self.log()
            );
        }
        if let Some(mut c) = self.child.take() {
            // A demo deletes its temporary directory when stopped gracefully.
            if self.demo {
                unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
                let deadline = std::time::Instant::now() + Duration::from_secs(5);
                while c.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn client_config(ca: &Path) -> Arc<ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("ca file") {
        roots.add(cert.expect("ca cert")).expect("add root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

pub enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Conn {
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(t) => t,
            Conn::Tls(s) => s.get_ref(),
        }
    }

    pub fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) {
        self.try_send(method, path, headers, body)
            .expect("send request");
    }

    /// Like `send`, but a failed write (e.g. the server died) is returned, not a panic.
    pub fn try_send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<()> {
        let mut head = format!("{method} {path} HTTP/1.1\r\n");
        // `Host: localhost` unless the test names its own.
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            head.push_str("Host: localhost\r\n");
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty()
            && !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        self.write_all(&bytes)
    }

    /// Reads one response (Content-Length framing).
    pub fn read_response(&mut self) -> HttpResponse {
        self.try_read_response().expect("a response")
    }

    pub fn try_read_response(&mut self) -> std::io::Result<HttpResponse> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let mut slots = [httparse::EMPTY_HEADER; 64];
            let mut r = httparse::Response::new(&mut slots);
            if let Ok(httparse::Status::Complete(head_len)) = r.parse(&buf) {
                let status = r.code.unwrap_or(0);
                let headers: Vec<(String, String)> = r
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                if status == 100 {
                    buf.drain(..head_len);
                    continue;
                }
                while buf.len() < head_len + len {
                    let n = self.read(&mut chunk)?;
                    if n == 0 {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                return Ok(HttpResponse {
                    status,
                    headers,
                    body: buf[head_len..head_len + len].to_vec(),
                });
            }
            let n = self.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// True if the server closed the connection (EOF or reset) within `timeout`.
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        self.tcp().set_read_timeout(Some(timeout)).expect("timeout");
        let mut b = [0u8; 1024];
        loop {
            match self.read(&mut b) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return false;
                }
                Err(_) => return true,
            }
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(t) => t.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(t) => t.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(t) => t.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `name=value` pair of the cookie `name` this response sets.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k == "set-cookie")
            .find_map(|(_, v)| {
                let pair = v.split(';').next()?;
                pair.starts_with(&format!("{name}="))
                    .then(|| pair.to_string())
            })
    }

    /// The whole `Set-Cookie` header value of the cookie `name`.
    pub fn set_cookie_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == "set-cookie")
            .map(|(_, v)| v.as_str())
            .find(|v| v.starts_with(&format!("{name}=")))
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Runs the binary with arguments and returns (exit code, stdout, stderr).
pub fn run_cli(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(bin());
    cmd.args(args).env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run seatgate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

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

/// Percent-encodes a query value.
/// An `application/x-www-form-urlencoded` body.
pub fn form_body(fields: &[(String, String)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
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
