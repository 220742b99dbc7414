//! The vendor's tool from outside: minting from a TOML description, binding to a
//! registration request, and refusing requests and reports that were altered or that no
//! gateway writes, without letting their text rewrite the terminal.

use std::process::Command;

use entitlement::KeyPair;
use entitlement::registration::Request;
use entitlement::usage::{DayUsage, ProductUsage, Report};

fn vendor(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_seatgate-vendor"))
        .args(args)
        .output()
        .expect("run seatgate-vendor");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const DESCRIPTION: &str = r#"
customer_id = "cus-1"
customer_name = "Acme Corp"
entitlement_id = "ent-1"
serial = 1
product = "Parallels Desktop"
edition = "Enterprise"
seats = 25
starts = "2026-01-01"
ends = "2026-12-31"
"#;

#[test]
fn mints_from_a_description_and_binds_to_a_verified_request() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = |name: &str| dir.path().join(name).to_str().expect("utf8").to_string();
    std::fs::write(path("d.toml"), DESCRIPTION).expect("description");
    let gateway = KeyPair::generate().expect("key");
    let request = Request {
        format: 1,
        instance: gateway.thumbprint(),
        gateway_version: "0.1.0".into(),
        public_url: "https://gw.example".into(),
        hostname: "gw\u{1b}[2J".into(),
        current: vec![],
        created_at: 1_780_000_000,
    };
    std::fs::write(path("req.jws"), request.sign(&gateway)).expect("request");
    let (code, out, err) = vendor(&["verify-request", &path("req.jws")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&gateway.thumbprint()), "{out}");
    assert!(
        !out.contains('\u{1b}'),
        "escape sequences are shown, not obeyed: {out:?}"
    );

    let (code, _, err) = vendor(&[
        "mint",
        "--dev",
        &path("d.toml"),
        "--request",
        &path("req.jws"),
        "--out",
        &path("e.jws"),
    ]);
    assert_eq!(code, 0, "{err}");
    let token = std::fs::read_to_string(path("e.jws")).expect("minted");
    let e = entitlement::Entitlement::verify(token.trim(), &[entitlement::dev::DEV_KEY])
        .expect("verifies");
    assert_eq!(e.instance.as_deref(), Some(gateway.thumbprint().as_str()));
    assert_eq!(
        e.ends_at, 1_798_761_599,
        "valid through the end date's last second"
    );

    // A request edited after signing is refused, and so is minting against it.
    let mut edited = std::fs::read_to_string(path("req.jws"))
        .expect("read")
        .into_bytes();
    let i = edited.len() / 2;
    edited[i] = if edited[i] == b'A' { b'B' } else { b'A' };
    std::fs::write(path("bad.jws"), edited).expect("write");
    assert_ne!(vendor(&["verify-request", &path("bad.jws")]).0, 0);
    assert_ne!(
        vendor(&[
            "mint",
            "--dev",
            &path("d.toml"),
            "--request",
            &path("bad.jws")
        ])
        .0,
        0
    );
}

#[test]
fn reports_no_gateway_writes_are_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("r.jws");
    let file = file.to_str().expect("utf8");
    let key = KeyPair::generate().expect("key");
    let report = |month: &str, peak: i64| Report {
        format: 1,
        instance: key.thumbprint(),
        month: month.into(),
        gateway_version: "0.1.0".into(),
        generated_at: 1_780_000_000,
        entitlements: vec![],
        products: vec![ProductUsage {
            product: "P".into(),
            license: "lic-1".into(),
            entitlement_id: None,
            licensed_seats: 10,
            days: vec![DayUsage {
                date: "2026-10-01".into(),
                peak_seats: peak,
                average_seats: 1.0,
                activations: 0,
            }],
        }],
        seat_holders: None,
    };
    std::fs::write(file, report("2026-10", 7).sign(&key)).expect("write");
    let (code, out, err) = vendor(&["verify-report", file]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("P: licensed 10, peak 7"), "{out}");
    for (month, peak) in [("2026-13", 1), ("2026-10\u{1b}[2J", 1), ("2026-10", -1)] {
        std::fs::write(file, report(month, peak).sign(&key)).expect("write");
        let (code, out, err) = vendor(&["verify-report", file]);
        assert_ne!(code, 0, "{month:?} {peak}: {out}");
        assert!(!err.contains('\u{1b}'), "{err:?}");
    }
}
