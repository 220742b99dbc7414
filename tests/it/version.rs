//! `seatgate --version`: the build facts and the linked C libraries, in the documented
//! shape (README "Install"), from the real binary (or SEATGATE_TEST_BIN).

use crate::support::run_cli;

/// "1.2.37", "3.0.19 27 Jan 2026": a dotted numeric version first.
fn starts_with_dotted_version(text: &str) -> bool {
    let first = text.split(' ').next().unwrap_or("");
    let parts: Vec<&str> = first.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// "(static)", "(static; source …)" or "(dynamic: /path/of/the/library…)".
fn linkage_of(value: &str, library_file_prefix: &str) -> String {
    let open = value
        .find('(')
        .unwrap_or_else(|| panic!("no linkage in {value:?}"));
    let inner = value[open + 1..]
        .strip_suffix(')')
        .unwrap_or_else(|| panic!("unclosed linkage in {value:?}"));
    let linkage = inner.split(';').next().unwrap_or("");
    if let Some(path) = linkage.strip_prefix("dynamic: ") {
        let file = std::path::Path::new(path);
        assert!(
            file.is_absolute() && file.exists(),
            "{value:?}: {path} is not a file"
        );
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        assert!(
            name.starts_with(library_file_prefix),
            "{value:?}: {name} is another library"
        );
        "dynamic".to_string()
    } else {
        assert_eq!(linkage, "static", "{value:?}");
        "static".to_string()
    }
}

#[test]
fn version_names_commit_date_target_and_each_linked_library() {
    let (code, out, err) = run_cli(&["--version"], &[]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 8, "{out}");
    // Test builds trust the development vendor key and say so; packages never do
    // (`scripts/build-static` refuses such a binary).
    let expected = if std::env::var_os("SEATGATE_TEST_BIN").is_some() {
        "vendor keys: production"
    } else {
        "vendor keys: production and DEVELOPMENT (a test build: it trusts entitlements anyone can sign)"
    };
    assert_eq!(lines[7], expected, "{out}");
    assert_eq!(lines[0], format!("seatgate {}", env!("CARGO_PKG_VERSION")));
    let field = |i: usize, name: &str| -> String {
        let (key, value) = lines[i]
            .split_once(':')
            .unwrap_or_else(|| panic!("line {i} {:?}", lines[i]));
        assert_eq!(key, name, "{out}");
        value.trim().to_string()
    };

    let commit = field(1, "commit");
    let hash = commit.strip_suffix("+dirty").unwrap_or(&commit);
    assert!(
        commit == "unknown" || (hash.len() >= 7 && hash.chars().all(|c| c.is_ascii_hexdigit())),
        "{commit:?}"
    );

    let built = field(2, "built");
    let b = built.as_bytes();
    assert!(
        b.len() == 20
            && built.chars().enumerate().all(|(i, c)| match i {
                4 | 7 => c == '-',
                10 => c == 'T',
                13 | 16 => c == ':',
                19 => c == 'Z',
                _ => c.is_ascii_digit(),
            }),
        "{built:?} is not YYYY-MM-DDTHH:MM:SSZ"
    );

    let target = field(3, "target");
    assert!(
        target.split('-').count() >= 3 && target.contains(std::env::consts::ARCH),
        "{target:?}"
    );

    let mut linkages = Vec::new();
    for (i, name, file) in [
        (4, "xmlsec1", "libxmlsec1"),
        (5, "libxml2", "libxml2"),
        (6, "OpenSSL", "libcrypto"),
    ] {
        let value = field(i, name);
        assert!(starts_with_dotted_version(&value), "{name}: {value:?}");
        linkages.push(linkage_of(&value, file));
    }
    let openssl = field(6, "OpenSSL");
    assert!(
        openssl.starts_with('3'),
        "OpenSSL 3 is required: {openssl:?}"
    );

    // The short flag stays one line, for scripts.
    let (code, short, _) = run_cli(&["-V"], &[]);
    assert_eq!(code, 0);
    assert_eq!(short.trim_end(), lines[0]);
    eprintln!("linkage: {linkages:?}");
}
