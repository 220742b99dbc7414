//! Shared by the benchmarks: start the release binary on a free loopback port, stop it when
//! dropped (so a failing bench leaves no server behind), and trust its local CA; the
//! launcher, TLS client and IdP are the test kit's (`tests/kit`, here as `common::kit`).
//! (A subdirectory module: Cargo does not take it for a benchmark of its own.)

#![allow(dead_code)] // each benchmark uses part of it

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

pub mod client;

/// The launcher, HTTP client and test IdP the integration tests use.
#[path = "../../tests/kit/mod.rs"]
pub mod kit;

pub use kit::http::client_config;
pub use kit::server::TestServer as Server;

pub const BIN: &str = env!("CARGO_BIN_EXE_seatgate");

/// The binary under test: `SEATGATE_BENCH_BIN` (e.g. the self-contained build from
/// `scripts/build-static`), else the one cargo built.
pub fn bin() -> String {
    std::env::var("SEATGATE_BENCH_BIN").unwrap_or_else(|_| BIN.to_string())
}

/// Starts `seatgate serve` with `data_dir` (backups off, `RUST_LOG` unset, plus `env`) and
/// returns once it logs `listening on`; stopped with SIGTERM when dropped, so a failing
/// bench leaves no server behind.
pub fn spawn(data_dir: &Path, env: &[(&str, &str)]) -> Server {
    try_spawn(data_dir, env).expect("seatgate started")
}

/// `spawn`, but a server that exits or stays silent for 30 s is an error carrying what it
/// wrote (the durability bench counts refused restarts).
pub fn try_spawn(data_dir: &Path, env: &[(&str, &str)]) -> Result<Server, String> {
    kit::server::server()
        .binary(&bin())
        .data_dir(data_dir)
        .env("SEATGATE_BACKUP_ENABLED", "false")
        .envs(env)
        .graceful_stop()
        .forget_log_after_start()
        .try_start()
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

/// Makes an RSA IdP key and certificate (as most IdPs use) in `dir` (`key.pem`,
/// `cert.pem`); returns the certificate's base64 DER.
pub fn idp_certificate(dir: &Path) -> String {
    kit::saml::rsa_key_and_certificate(dir, "bench-idp");
    std::fs::read_to_string(dir.join("cert.pem"))
        .expect("cert")
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect()
}

/// Connects the IdP (`seatgate idp add`, generic preset) for `domain` on `data_dir`.
pub fn add_idp(data_dir: &Path, entity: &str, cert_b64: &str, domain: &str) {
    let metadata = kit::saml::metadata(entity, "signing", cert_b64);
    kit::saml::connect(data_dir, "bench", "generic", domain, &metadata);
}

/// A number from the environment (a benchmark's size), else `default`.
pub fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs a command of the binary on `data`; its stdout, trimmed (a failure stops the bench).
pub fn cli(data: &Path, args: &[&str]) -> String {
    let out = Command::new(bin())
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .expect("cli");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// SAML metadata of an IdP at `https://idp.contoso.example` with a fresh certificate, for
/// `idp add` (the benchmarks never sign in through it).
pub fn idp_metadata() -> String {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["idp.contoso.example".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.contoso.example"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.contoso.example/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#,
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, cert.der())
    )
}
