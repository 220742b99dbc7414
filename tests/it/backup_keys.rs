//! Issue 13 item 8: a backup with the keys (`backup --include-keys`) restores onto a new
//! machine so that every Mac keeps trusting the same CA, every issued lease still
//! verifies, and IdPs keep the same SP signing certificate. Refusals first: keys never
//! unencrypted unless asked, a wrong passphrase, a changed byte or a cut file change
//! nothing, not even create the data directory.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use crate::activation::client;
use crate::demo::activate_in_browser;
use crate::support::{TestServer, run_cli, server};

const PASSPHRASE: &str = "correct horse battery staple";

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

/// The SP signing certificate in the SAML metadata.
fn sp_cert(server: &TestServer) -> String {
    let xml = server.get("/saml/metadata").text();
    xml.split("<ds:X509Certificate>")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap_or_else(|| panic!("no signing certificate: {xml}"))
        .to_string()
}

/// A lease the demo organization issued to Alice, and a database copy holding its key.
fn demo_lease_and_database(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let demo = server().demo().start();
    assert!(demo.wait_for_log("Break-glass admin:", Duration::from_secs(30)));
    let base = format!("http://{}", demo.addr);
    let state = dir.join("client");
    let run = client(
        &state,
        &[
            "activate",
            "--server",
            &base,
            "--email",
            "alice@acme.example",
        ],
    );
    let url = run.browser_url();
    let done = activate_in_browser(&demo, &url, "Alice");
    assert_eq!(done.status, 200, "{}", done.text());
    let (ok, out) = run.finish();
    assert!(ok, "{out}");
    let lease = dir.join("alice.jws");
    std::fs::copy(state.join("lease.jws"), &lease).expect("lease");
    let copy = dir.join("demo.db");
    let (code, _, err) = demo.cli(&["backup", "--out", s(&copy)]);
    assert_eq!(code, 0, "{err}");
    (lease, copy)
}

#[test]
fn item8_a_bundle_with_keys_restores_onto_a_new_machine() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (lease, demo_db) = demo_lease_and_database(tmp.path());

    // Machine A: that organization over HTTPS, with its CA and SAML key.
    let a_dir = tmp.path().join("a");
    let (code, _, err) = run_cli(&["--data-dir", s(&a_dir), "restore", s(&demo_db)], &[]);
    assert_eq!(code, 0, "{err}");
    let mut a = server().data_dir(&a_dir).start();
    let ca_a = std::fs::read(a.ca_path()).expect("ca");
    let sp_cert_a = sp_cert(&a);
    let pass = tmp.path().join("passphrase");
    std::fs::write(&pass, format!("{PASSPHRASE}\n")).expect("passphrase");
    let bundle = tmp.path().join("a.bundle");

    // Keys are not written unencrypted unless the admin says so.
    let (code, _, err) = a.cli(&["backup", "--out", s(&bundle), "--include-keys"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--no-encryption"), "{err}");
    assert!(!bundle.exists());
    // A passphrase in the environment and --no-encryption contradict each other: the
    // admin who set the variable expects an encrypted bundle.
    let (code, _, err) = a.cli_env(
        &[
            "backup",
            "--out",
            s(&bundle),
            "--include-keys",
            "--no-encryption",
        ],
        &[("SEATGATE_BACKUP_PASSPHRASE", PASSPHRASE)],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unset one of them"), "{err}");
    assert!(!bundle.exists());

    // A passphrase file others can read is used, with a warning.
    std::fs::set_permissions(&pass, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod");
    let (code, out, err) = a.cli(&[
        "backup",
        "--out",
        s(&bundle),
        "--include-keys",
        "--passphrase-file",
        s(&pass),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("encrypted with the passphrase"), "{out}");
    assert!(
        err.contains("can be read by other users (mode 644)"),
        "{err}"
    );
    for file in [
        "seatgate.db",
        "tls/ca-key.pem",
        "tls/server-key.pem",
        "saml/sp-signing-key.pem",
    ] {
        assert!(out.contains(file), "{file}: {out}");
    }
    assert_eq!(mode(&bundle), 0o600);
    let bytes = std::fs::read(&bundle).expect("bundle");
    assert!(
        bytes.starts_with(b"SEATGATE-BUNDLE\n\x01\x01"),
        "magic, format 1, encrypted"
    );
    let private = std::fs::read(a_dir.join("tls/ca-key.pem")).expect("key");
    assert!(
        !bytes.windows(32).any(|w| w == &private[40..72]),
        "the CA key is not in the file in the clear"
    );
    a.stop();

    // A wrong or missing passphrase, a changed byte, a cut file: refused with a reason
    // code, and the new machine's data directory is not even created.
    let b_dir = tmp.path().join("b");
    let restore = |file: &Path, env: &[(&str, &str)]| {
        run_cli(&["--data-dir", s(&b_dir), "restore", s(file)], env)
    };
    let (code, _, err) = restore(
        &bundle,
        &[("SEATGATE_BACKUP_PASSPHRASE", "wrong horse battery")],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("BACKUP_WRONG_PASSPHRASE") && err.contains("nothing was written"),
        "{err}"
    );
    assert!(!b_dir.exists());
    let (code, _, err) = restore(&bundle, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("BACKUP_PASSPHRASE_REQUIRED"), "{err}");
    assert!(!b_dir.exists());
    let env = [("SEATGATE_BACKUP_PASSPHRASE", PASSPHRASE)];
    let bad = tmp.path().join("bad.bundle");
    for (what, damaged) in [
        ("a changed byte", {
            let mut b = bytes.clone();
            let mid = b.len() / 2;
            b[mid] ^= 0x20;
            b
        }),
        ("a cut file", bytes[..bytes.len() - 100].to_vec()),
        ("a lost last byte", bytes[..bytes.len() - 1].to_vec()),
    ] {
        std::fs::write(&bad, &damaged).expect("write");
        let (code, _, err) = restore(&bad, &env);
        assert_eq!(code, 1, "{what}: {err}");
        assert!(err.contains("BACKUP_DAMAGED"), "{what}: {err}");
        assert!(!b_dir.exists(), "{what}");
    }

    // The right passphrase: everything in place, keys 0600.
    let (code, out, err) = run_cli(
        &[
            "--data-dir",
            s(&b_dir),
            "restore",
            s(&bundle),
            "--passphrase-file",
            s(&pass),
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("start seatgate to use it"), "{out}");
    for file in [
        "seatgate.db",
        "tls/ca-key.pem",
        "tls/server-key.pem",
        "saml/sp-signing-key.pem",
    ] {
        assert_eq!(mode(&b_dir.join(file)), 0o600, "{file}");
    }
    assert_eq!(mode(&b_dir), 0o700);

    // Machine B serves a certificate from the same CA, A's leases and A's SAML key.
    let mut b = server().data_dir(&b_dir).start();
    assert_eq!(
        std::fs::read(b.ca_path()).expect("ca"),
        ca_a,
        "the Macs' trusted CA"
    );
    assert_eq!(b.get("/healthz").status, 200, "verified against A's CA");
    assert!(
        !b.log().contains("created a local certificate authority"),
        "{}",
        b.log()
    );
    let jwks = tmp.path().join("jwks.json");
    std::fs::write(&jwks, b.get("/.well-known/jwks.json").body).expect("jwks");
    let verify = |jwks: &Path| {
        run_cli(
            &[
                "client",
                "--state-dir",
                s(&tmp.path().join("verifier")),
                "verify",
                s(&lease),
                "--jwks",
                s(jwks),
            ],
            &[],
        )
    };
    let (code, out, err) = verify(&jwks);
    assert_eq!(
        code, 0,
        "the lease issued before the backup verifies: {err}"
    );
    assert!(out.contains("alice@acme.example"), "{out}");
    let empty = tmp.path().join("empty-jwks.json");
    std::fs::write(&empty, r#"{"keys":[]}"#).expect("jwks");
    assert_ne!(verify(&empty).0, 0, "verification needs the key");
    assert_eq!(sp_cert(&b), sp_cert_a, "the IdPs' SP signing certificate");
    b.stop();

    // Onto a data directory that has data: as a database restore does, what is replaced
    // is kept beside the backups.
    std::fs::write(b_dir.join("tls/ca-key.pem"), "a key made on B").expect("write");
    let (code, out, err) = run_cli(&["--data-dir", s(&b_dir), "restore", s(&bundle)], &env);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("the previous database was kept as"), "{out}");
    let kept = out
        .split("the previous keys were kept in ")
        .nth(1)
        .and_then(|r| r.lines().next())
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(
        std::fs::read_to_string(Path::new(kept).join("tls/ca-key.pem")).expect("kept"),
        "a key made on B"
    );
    assert_eq!(
        std::fs::read(b_dir.join("tls/ca-key.pem")).expect("key"),
        private
    );
    assert!(
        !b_dir.join("restore-incomplete").exists(),
        "a finished restore leaves no marker"
    );
}

#[test]
fn item8_an_unencrypted_bundle_needs_no_encryption_and_still_finds_damage() {
    let tmp = tempfile::tempdir().expect("tmp");
    let a = server().start();
    assert!(!sp_cert(&a).is_empty());
    let bundle = tmp.path().join("plain.bundle");
    let (code, out, err) = a.cli(&[
        "backup",
        "--out",
        s(&bundle),
        "--include-keys",
        "--no-encryption",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("NOT encrypted"), "{out}");
    assert_eq!(mode(&bundle), 0o600);
    let bytes = std::fs::read(&bundle).expect("bundle");
    assert!(bytes.starts_with(b"SEATGATE-BUNDLE\n\x01\x00"));
    let mut changed = bytes.clone();
    let mid = changed.len() / 2;
    changed[mid] ^= 0x01;
    let bad = tmp.path().join("bad");
    std::fs::write(&bad, &changed).expect("write");
    let c_dir = tmp.path().join("c");
    let (code, _, err) = run_cli(&["--data-dir", s(&c_dir), "restore", s(&bad)], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("BACKUP_DAMAGED"), "{err}");
    assert!(!c_dir.exists());
    // Black-box round: given a passphrase, the admin expects a bundle only its holder could
    // make; an unencrypted one (whose checksum anyone can forge) is refused.
    let (code, _, err) = run_cli(
        &["--data-dir", s(&c_dir), "restore", s(&bundle)],
        &[("SEATGATE_BACKUP_PASSPHRASE", "correct horse battery")],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("BACKUP_NOT_ENCRYPTED"), "{err}");
    assert!(!c_dir.exists());
    let (code, _, err) = run_cli(&["--data-dir", s(&c_dir), "restore", s(&bundle)], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read(c_dir.join("tls/ca.pem")).expect("ca"),
        std::fs::read(a.ca_path()).expect("ca")
    );
}
