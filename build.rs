//! Build facts for `seatgate --version` (src/buildinfo.rs): git commit, build date, target,
//! and the xmlsec1 headers samael is built against. Reproducible: SOURCE_DATE_EPOCH, when
//! set, is the build date.

use std::process::Command;

fn main() {
    for var in [
        "SOURCE_DATE_EPOCH",
        // Set by scripts/build-static: a changed static prefix (an OpenSSL update) relinks.
        "SEATGATE_STATIC_DEPS",
        "SEATGATE_LIBXML2_SOURCE",
        "SEATGATE_XMLSEC1_SOURCE",
        "SEATGATE_OPENSSL_SOURCE",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    for var in [
        "SEATGATE_LIBXML2_SOURCE",
        "SEATGATE_XMLSEC1_SOURCE",
        "SEATGATE_OPENSSL_SOURCE",
    ] {
        let value = std::env::var(var).unwrap_or_default();
        println!("cargo:rustc-env={var}={value}");
    }
    // The dirty flag follows edits to what goes into the binary and to the git index.
    for path in ["src", "Cargo.toml", "Cargo.lock", "schema.sql", "build.rs"] {
        println!("cargo:rerun-if-changed={path}");
    }
    let mut watched = Vec::new();
    if let Some(git_dir) = git(&["rev-parse", "--git-dir"]) {
        watched.push(format!("{git_dir}/HEAD"));
        watched.push(format!("{git_dir}/index"));
    }
    if let (Some(common), Some(head_ref)) = (
        git(&["rev-parse", "--git-common-dir"]),
        git(&["symbolic-ref", "-q", "HEAD"]),
    ) {
        watched.push(format!("{common}/{head_ref}"));
        watched.push(format!("{common}/packed-refs"));
    }
    // A watched path that does not exist would rerun this script, and so recompile the
    // crate, on every build.
    for path in watched.iter().filter(|p| std::path::Path::new(p).exists()) {
        println!("cargo:rerun-if-changed={path}");
    }

    let commit = match git(&["rev-parse", "--short", "HEAD"]) {
        Some(hash) => match git(&["status", "--porcelain"]) {
            Some(status) if status.is_empty() => hash,
            Some(_) => format!("{hash}+dirty"),
            None => format!("{hash}+unknown-state"),
        },
        // A source tarball: no git, or not a repository.
        None => "unknown".to_string(),
    };
    println!("cargo:rustc-env=SEATGATE_GIT_COMMIT={commit}");

    let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(value) => value
            .trim()
            .parse::<i64>()
            .unwrap_or_else(|_| panic!("SOURCE_DATE_EPOCH={value:?} is not a number of seconds")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    };
    println!("cargo:rustc-env=SEATGATE_BUILD_DATE={}", utc(epoch));
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_string());
    println!("cargo:rustc-env=SEATGATE_TARGET={target}");

    // samael's build script runs the same xmlsec1-config from PATH.
    let xmlsec = Command::new("xmlsec1-config")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|v| v.trim().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=SEATGATE_XMLSEC1_HEADERS={xmlsec}");
}

/// `git ARGS` in the package directory, trimmed stdout, or None without git or a repository.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (Howard Hinnant's civil-from-days).
fn utc(epoch: i64) -> String {
    let (days, secs) = (epoch.div_euclid(86_400), epoch.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}
