//! Shared by the benchmarks: start the release binary on a free loopback port, stop it when
//! dropped (so a failing bench leaves no server behind), and trust its local CA.
//! (A subdirectory module: Cargo does not take it for a benchmark of its own.)

#![allow(dead_code)] // each benchmark uses part of it

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

pub mod client;

pub const BIN: &str = env!("CARGO_BIN_EXE_seatgate");

/// The binary under test: `SEATGATE_BENCH_BIN` (e.g. the self-contained build from
/// `scripts/build-static`), else the one cargo built.
pub fn bin() -> String {
    std::env::var("SEATGATE_BENCH_BIN").unwrap_or_else(|_| BIN.to_string())
}

/// A running `seatgate serve`, stopped with SIGTERM when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub tls: bool,
}

impl Server {
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then reap: a crash at whatever instant this is.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: signalling our own child, which has not been reaped.
            unsafe {
                libc::kill(self.child.id() as i32, libc::SIGTERM);
            }
            let _ = self.child.wait();
        }
    }
}

/// Starts `seatgate serve` with `data_dir` (backups off, `RUST_LOG` unset, plus `env`) and
/// returns once it logs `listening on`. Its stderr is drained so it never blocks.
pub fn spawn(data_dir: &Path, env: &[(&str, &str)]) -> Server {
    try_spawn(data_dir, env).expect("seatgate started")
}

/// `spawn`, but a server that exits or stays silent for 30 s is an error carrying the last
/// lines it wrote (the durability bench counts refused restarts).
pub fn try_spawn(data_dir: &Path, env: &[(&str, &str)]) -> Result<Server, String> {
    let mut cmd = Command::new(bin());
    cmd.arg("--data-dir")
        .arg(data_dir)
        .args(["serve", "--listen", "127.0.0.1:0"]);
    cmd.env_remove("RUST_LOG")
        .env("SEATGATE_BACKUP_ENABLED", "false");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = Vec::new();
        for line in lines.by_ref().map_while(Result::ok) {
            if let Some(a) = line.split("listening on ").nth(1) {
                let _ = tx.send(Ok(a.trim().to_string()));
                break;
            }
            seen.push(line);
        }
        // Ended without listening: report what it said.
        let _ = tx.send(Err(seen.join("\n")));
        for _ in lines {}
    });
    let url = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(url)) => url,
        Ok(Err(said)) => {
            let _ = child.wait();
            return Err(said);
        }
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err("not listening after 30 s".into());
        }
    };
    let tls = url.starts_with("https://");
    let addr = url
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .parse()
        .map_err(|e| format!("address {url}: {e}"))?;
    Ok(Server { child, addr, tls })
}

/// A SCIM target for the server on `data_dir`, with a new (unassigned) bearer token.
pub fn scim_target(server: &Server, data_dir: &Path) -> client::Target {
    let out = Command::new(bin())
        .arg("--data-dir")
        .arg(data_dir)
        .args(["scim-token", "create", "--name", "bench"])
        .output()
        .expect("token");
    let token = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .expect("token")
        .trim()
        .to_string();
    client::Target {
        addr: server.addr,
        tls: server
            .tls
            .then(|| client_config(&data_dir.join("tls/ca.pem"))),
        authorization: Some(format!("Bearer {token}")),
        content_type: "application/scim+json",
        base: "/scim/v2".into(),
    }
}

/// The resident set size of process `pid` in bytes (Linux), if it can be read.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Samples a server's RSS and its `-wal` file every 10 ms in a thread and keeps the peaks.
pub struct Peaks {
    stop: Arc<AtomicBool>,
    rss: Arc<AtomicU64>,
    wal: Arc<AtomicU64>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Peaks {
    pub fn start(pid: u32, data_dir: &Path) -> Peaks {
        let stop = Arc::new(AtomicBool::new(false));
        let rss = Arc::new(AtomicU64::new(0));
        let wal = Arc::new(AtomicU64::new(0));
        let (s, r, w) = (Arc::clone(&stop), Arc::clone(&rss), Arc::clone(&wal));
        let wal_path = data_dir.join("seatgate.db-wal");
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(bytes) = rss_bytes(pid) {
                    r.fetch_max(bytes, Ordering::Relaxed);
                }
                if let Ok(m) = std::fs::metadata(&wal_path) {
                    w.fetch_max(m.len(), Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Peaks {
            stop,
            rss,
            wal,
            handle: Some(handle),
        }
    }

    /// The largest RSS and WAL size seen so far (the sampler keeps running).
    pub fn now(&self) -> (u64, u64) {
        (
            self.rss.load(Ordering::Relaxed),
            self.wal.load(Ordering::Relaxed),
        )
    }

    /// Stops sampling; returns (peak RSS, peak WAL) in bytes.
    pub fn stop(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.now()
    }
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

/// A TLS client configuration trusting the CA in `ca`.
pub fn client_config(ca: &Path) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("ca").flatten() {
        let _ = roots.add(cert);
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

/// Makes an RSA IdP key and certificate (as most IdPs use) with the `openssl` CLI in `dir`
/// (`key.pem`, `cert.pem`); returns the certificate's base64 DER.
pub fn idp_certificate(dir: &Path) -> String {
    let ok = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=bench-idp"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(ok.success());
    std::fs::read_to_string(dir.join("cert.pem"))
        .expect("cert")
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect()
}

/// SAML metadata of an IdP `entity` signing with `cert_b64`.
pub fn idp_metadata(entity: &str, cert_b64: &str) -> String {
    format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>{cert_b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.bench.example/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#
    )
}

/// Connects the IdP (`seatgate idp add`, generic preset) for `domain` on `data_dir`.
pub fn add_idp(tmp: &Path, data_dir: &Path, entity: &str, cert_b64: &str, domain: &str) {
    std::fs::write(tmp.join("md.xml"), idp_metadata(entity, cert_b64)).expect("md");
    let out = Command::new(bin())
        .arg("--data-dir")
        .arg(data_dir)
        .args(["idp", "add", "--name", "bench", "--preset", "generic"])
        .args(["--domain", domain, "--metadata"])
        .arg(tmp.join("md.xml"))
        .output()
        .expect("idp add");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
