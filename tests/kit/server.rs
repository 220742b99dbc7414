//! Starts the real `seatgate` binary on a free loopback port with its own data directory,
//! and runs its CLI.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::ClientConnection;
use rustls::StreamOwned;
use rustls::pki_types::ServerName;

use super::http::{Conn, HttpResponse, client_config};
use super::wait::poll_until;

pub const BIN: &str = env!("CARGO_BIN_EXE_seatgate");

/// The binary under test: SEATGATE_TEST_BIN when set (`.ci/check-static` runs tests against
/// the static release build this way), else the one cargo built for this test run.
pub fn bin() -> String {
    std::env::var("SEATGATE_TEST_BIN").unwrap_or_else(|_| BIN.to_string())
}

/// A running server. Killed on drop if the test did not stop it (stopped with SIGTERM
/// first when it was started with [`Builder::graceful_stop`]).
pub struct TestServer {
    pub child: Option<Child>,
    pub data_dir: PathBuf,
    pub addr: SocketAddr,
    /// It listens with TLS (its `listening on https://…` line says so).
    pub tls: bool,
    graceful_stop: bool,
    log: Arc<Mutex<String>>,
    _tmp: Option<tempfile::TempDir>,
}

pub struct Builder {
    binary: Option<String>,
    env: Vec<(String, String)>,
    args: Vec<String>,
    data_dir: Option<PathBuf>,
    ulimit_nofile: Option<u32>,
    config_file: Option<String>,
    demo: bool,
    graceful_stop: bool,
    keep_log: bool,
}

pub fn server() -> Builder {
    Builder {
        binary: None,
        env: Vec::new(),
        args: Vec::new(),
        data_dir: None,
        ulimit_nofile: None,
        config_file: None,
        demo: false,
        graceful_stop: false,
        keep_log: true,
    }
}

impl Builder {
    pub fn env(mut self, k: &str, v: &str) -> Builder {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn envs(self, vars: &[(&str, &str)]) -> Builder {
        vars.iter().fold(self, |b, (k, v)| b.env(k, v))
    }

    /// Runs this binary instead of [`bin`] (the benchmarks' `SEATGATE_BENCH_BIN`).
    pub fn binary(mut self, path: &str) -> Builder {
        self.binary = Some(path.into());
        self
    }

    /// Stop with SIGTERM when dropped (and SIGKILL only if it hangs), so a data directory
    /// that outlives the server (a benchmark's, a demo's) is closed cleanly.
    pub fn graceful_stop(mut self) -> Builder {
        self.graceful_stop = true;
        self
    }

    /// Keep only the log up to `listening on`: a long benchmark logs a line per request,
    /// which nobody reads.
    pub fn forget_log_after_start(mut self) -> Builder {
        self.keep_log = false;
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

    pub fn plain_http(self) -> Builder {
        self.env("SEATGATE_TLS_MODE", "off")
    }

    /// `seatgate demo` instead of `serve`: plain HTTP, its walkthrough (stdout) in the log,
    /// and `data_dir` the demo's own.
    pub fn demo(mut self) -> Builder {
        self.demo = true;
        self.graceful_stop = true;
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
        self.try_start()
            .unwrap_or_else(|log| panic!("seatgate did not start; log:\n{log}"))
    }

    /// [`Builder::start`], but a server that exits or stays silent for 30 s is an error
    /// carrying its log (the durability benchmark counts refused restarts).
    pub fn try_start(self) -> Result<TestServer, String> {
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
                    .arg(self.binary.clone().unwrap_or_else(bin));
                c
            }
            None => Command::new(self.binary.clone().unwrap_or_else(bin)),
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
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("spawn {:?}: {e}", cmd.get_program()))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
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
            let keep_log = self.keep_log;
            std::thread::spawn(move || {
                let mut sent = false;
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    // Record the line before announcing the address, so a test that reads
                    // the log right after start() sees it.
                    if keep_log || !sent {
                        let mut l = log.lock().expect("log");
                        l.push_str(&line);
                        l.push('\n');
                    }
                    if !sent && let Some(url) = line.split("listening on ").nth(1) {
                        let _ = tx.send(url.trim().to_string());
                        sent = true;
                    }
                }
            });
        }
        let url = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(log.lock().expect("log").clone());
            }
        };
        let tls = url.starts_with("https://");
        let addr = url
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .parse()
            .map_err(|e| format!("address {url}: {e}"))?;
        let data_dir = if self.demo {
            let walkthrough_dir = || {
                let text = log.lock().expect("log").clone();
                let dir = text
                    .split("Data lives in ")
                    .nth(1)?
                    .split_whitespace()
                    .next()?;
                Some(PathBuf::from(dir).join("data"))
            };
            if !poll_until(Duration::from_secs(30), || walkthrough_dir().is_some()) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no walkthrough:\n{}", log.lock().expect("log")));
            }
            walkthrough_dir().ok_or("no walkthrough")?
        } else {
            data_dir
        };
        Ok(TestServer {
            child: Some(child),
            data_dir,
            addr,
            tls,
            graceful_stop: self.graceful_stop,
            log,
            _tmp: tmp,
        })
    }
}

impl TestServer {
    pub fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        poll_until(timeout, || self.log().contains(needle))
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    /// SIGKILL, then reap: a crash at whatever instant this is.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
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
        let child = self.child.as_mut()?;
        let mut exited = None;
        poll_until(timeout, || {
            exited = child.try_wait().ok().flatten();
            exited.is_some()
        });
        if exited.is_some() {
            self.child = None;
        }
        exited
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
            if self.graceful_stop {
                // SAFETY: signalling our own child, which has not been reaped.
                unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
                poll_until(Duration::from_secs(20), || {
                    c.try_wait().ok().flatten().is_some()
                });
            }
            let _ = c.kill();
            let _ = c.wait();
        }
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
