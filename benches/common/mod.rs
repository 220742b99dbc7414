//! Shared by the benchmarks: start the release binary on a free loopback port, stop it when
//! dropped (so a failing bench leaves no server behind), and trust its local CA.
//! (A subdirectory module: Cargo does not take it for a benchmark of its own.)

#![allow(dead_code)] // each benchmark uses part of it

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

pub mod client;

pub const BIN: &str = env!("CARGO_BIN_EXE_seatgate");

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
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

/// Starts `seatgate serve` with `data_dir` (backups off, `RUST_LOG` unset, plus `env`) and
/// returns once it logs `listening on`. Its stderr is drained so it never blocks.
pub fn spawn(data_dir: &Path, env: &[(&str, &str)]) -> Server {
    let mut cmd = Command::new(BIN);
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
        .expect("spawn seatgate");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stderr).lines();
        for line in lines.by_ref().map_while(Result::ok) {
            if let Some(a) = line.split("listening on ").nth(1) {
                let _ = tx.send(a.trim().to_string());
                break;
            }
        }
        for _ in lines {}
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("seatgate started");
    let tls = url.starts_with("https://");
    let addr = url
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    Server { child, addr, tls }
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
