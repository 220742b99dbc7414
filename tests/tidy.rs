//! The README's architecture, executed (in the style of rust-analyzer's tidy tests): which
//! modules may use which crates, where SQL lives, what no function may grow past, and that
//! the code map names every file. Each invariant in README.md names the test guarding it.
//!
//! These read the sources as text: no build of seatgate is needed, and a failure names the
//! file and line to look at.

use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Every `.rs` file under `dir`, relative to `src/` (sorted, `/`-separated).
fn sources(dir: &str) -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("read source directory")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    let base = Path::new(ROOT).join(dir);
    let mut files = Vec::new();
    walk(&base, &mut files);
    files
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(&base)
                .expect("under base")
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&p).expect("read source");
            (rel, text)
        })
        .collect()
}

/// The text of a file without its `#[cfg(test)]` module (tests may use anything).
fn without_tests(text: &str) -> &str {
    text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text)
}

/// Lines (1-based) of `text` outside comments that contain `needle` as a path use.
fn uses(text: &str, crate_name: &str) -> Vec<usize> {
    let path = format!("{crate_name}::");
    let import = format!("use {crate_name}");
    without_tests(text)
        .lines()
        .enumerate()
        .filter(|(_, l)| {
            let code = l.split("//").next().unwrap_or("");
            let mentions = code.contains(&path) || code.trim_start().starts_with(&import);
            // `crate::x::` and `other_ring::` are not the crate itself.
            mentions
                && code.match_indices(&path).all(|(i, _)| {
                    i == 0
                        || !code[..i]
                            .ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':')
                })
        })
        .map(|(i, _)| i + 1)
        .collect()
}

/// README.md: invariants "Only `net/inner.rs` knows tiny_http …".
#[test]
fn crates_are_used_only_where_the_readme_says() {
    let allowed: &[(&str, &[&str])] = &[
        ("tiny_http", &["net/inner.rs"]),
        ("rustls", &["net/front.rs", "net/tls.rs"]),
        (
            "ring",
            &["crypto.rs", "net/tls.rs", "domain/jose.rs", "client.rs"],
        ),
        ("rcgen", &["net/tls.rs", "saml/metadata.rs"]),
        ("openssl", &["saml/signing.rs", "deploy/profile.rs"]),
        (
            "samael",
            &["saml/acs.rs", "saml/metadata.rs", "demo/idp.rs"],
        ),
        ("matchit", &["routes.rs"]),
        ("ed25519_dalek", &["crypto.rs"]),
    ];
    let mut wrong = Vec::new();
    for (file, text) in sources("src") {
        for (krate, places) in allowed {
            if places.contains(&file.as_str()) {
                continue;
            }
            for line in uses(&text, krate) {
                wrong.push(format!(
                    "src/{file}:{line} uses {krate} (only {places:?} may)"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// README.md: "all SQL is in `db/` (elsewhere rusqlite appears only as the transaction
/// handle …)".
#[test]
fn sql_lives_in_db_only() {
    let sql = [
        "\"SELECT ",
        "\"INSERT ",
        "\"UPDATE ",
        "\"DELETE FROM",
        "\"CREATE ",
        "\"PRAGMA ",
        ".execute(",
        ".execute_batch(",
        ".prepare(",
        ".prepare_cached(",
        ".query_row(",
    ];
    let handle_only = [
        "rusqlite::Transaction",
        "rusqlite::Result",
        "rusqlite::Error",
    ];
    let mut wrong = Vec::new();
    for (file, text) in sources("src") {
        if file.starts_with("db/") {
            continue;
        }
        for (i, line) in without_tests(&text).lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if let Some(s) = sql.iter().find(|s| code.contains(*s)) {
                wrong.push(format!("src/{file}:{}: {s} outside db/", i + 1));
            }
            // error.rs maps rusqlite's error codes to reasons.
            let mut rest = code;
            while let Some(at) = rest.find("rusqlite::") {
                let tail = &rest[at..];
                if file != "error.rs" && !handle_only.iter().any(|h| tail.starts_with(h)) {
                    wrong.push(format!("src/{file}:{}: {tail} outside db/", i + 1));
                }
                rest = &rest[at + "rusqlite::".len()..];
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The layers of `src/`, lowest first: a module may import its own layer's modules and
/// the layers below, never above. The web and appliance layer on top (`admin/`,
/// `endpoints/`, `pipeline.rs`, `routes.rs`, `app.rs`, `net/`, `server.rs`, `cli/`, `demo/`
/// …) may import anything. Within the services, licensing comes before SCIM and SCIM
/// before SAML (a sign-in resolves against the directory, which drives seats).
const LAYERS: &[(&str, &[&str])] = &[
    (
        "utilities",
        &[
            "audit",
            "buildinfo",
            "caps",
            "cidr",
            "clock",
            "config",
            "crypto",
            "datadir",
            "email",
            "http",
            "logging",
            "metrics",
            "preauth",
            "ratelimit",
        ],
    ),
    ("domain", &["domain"]),
    ("store", &["db"]),
    ("licensing", &["licensing"]),
    ("scim", &["scim"]),
    ("saml", &["saml"]),
];

/// The top-level modules a file's code (tests aside) names as `crate::x`.
fn crate_imports(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (i, line) in without_tests(text).lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for (at, _) in code.match_indices("crate::") {
            let name: String = code[at + 7..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.push((i + 1, name));
        }
    }
    found
}

/// The layer index of a top-level module; `None` for the top (web and appliance) layer.
fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, mods)| mods.contains(&module))
}

/// README.md: "the domain is pure; the store, the services and the web layer only import
/// downwards".
#[test]
fn layers_import_only_downwards() {
    let mut wrong = Vec::new();
    for (file, text) in sources("src") {
        let module = file.split('/').next().unwrap_or("").trim_end_matches(".rs");
        let Some(own) = layer_of(module) else {
            continue;
        };
        for (line, imported) in crate_imports(&text) {
            if imported == module {
                continue;
            }
            match layer_of(&imported) {
                Some(layer) if layer <= own => {}
                _ => wrong.push(format!(
                    "src/{file}:{line}: the {} layer imports crate::{imported}",
                    LAYERS[own].0
                )),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_layer_check_can_fail() {
    let db_reaching_up = "use crate::licensing::manage;\n// crate::admin in a comment\n";
    let found = crate_imports(db_reaching_up);
    assert_eq!(found, vec![(1, "licensing".to_string())]);
    assert!(layer_of("licensing") > layer_of("db"));
    assert_eq!(layer_of("pipeline"), None);
}

/// README.md: "`seatgate demo` exists only in demo wiring".
#[test]
fn the_demo_is_reached_only_from_its_wiring() {
    let wiring = [
        "server.rs",  // starts the demo IdP and seeds the organization
        "cli/mod.rs", // the `demo` command
        "routes.rs",  // the demo IdP's routes (404 outside the demo)
        "app.rs",     // the demo IdP the routes call
    ];
    let mut wrong = Vec::new();
    for (file, text) in sources("src") {
        if file.starts_with("demo/") || wiring.contains(&file.as_str()) {
            continue;
        }
        for (i, line) in without_tests(&text).lines().enumerate() {
            if line
                .split("//")
                .next()
                .unwrap_or("")
                .contains("crate::demo")
            {
                wrong.push(format!("src/{file}:{}", i + 1));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "crate::demo outside the demo's wiring:\n{}",
        wrong.join("\n")
    );
}

/// README.md: "Every file is in the code map".
#[test]
fn the_code_map_names_every_source_file() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).expect("README");
    let start = readme.find("**Code map**").expect("a code map");
    let end = readme[start..]
        .find("**Invariants.**")
        .map_or(readme.len(), |e| start + e);
    let map = &readme[start..end];
    let mut missing = Vec::new();
    for (file, text) in sources("src") {
        let named = |p: &str| map.contains(&format!("`{p}`"));
        let covered = match file.strip_suffix("mod.rs") {
            // A module's root: named as its folder, or only declaring its files.
            Some(dir) => {
                named(dir)
                    || text.lines().all(|l| {
                        let l = l.trim();
                        l.is_empty()
                            || l.starts_with("//")
                            || l.starts_with("mod ")
                            || l.starts_with("pub mod ")
                            || l.starts_with("pub use ")
                    })
            }
            None => named(&file),
        };
        if !covered {
            missing.push(format!("src/{file}"));
        }
    }
    assert!(
        missing.is_empty(),
        "README.md's code map does not name:\n{}",
        missing.join("\n")
    );
}

/// The functions of `text` longer than `max` lines, as (name, first line, length).
fn long_functions(text: &str, max: usize) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i].trim_start();
        let signature = [
            "fn ",
            "pub fn ",
            "pub(crate) fn ",
            "pub(super) fn ",
            "const fn ",
            "pub const fn ",
        ]
        .iter()
        .find_map(|p| l.strip_prefix(p));
        let Some(rest) = signature else {
            i += 1;
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        // Count braces to the end of the body (strings and chars blanked out roughly).
        let (mut depth, mut opened, mut j) = (0i64, false, i);
        while j < lines.len() {
            let code = strip_literals(lines[j]);
            for c in code.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            if (opened && depth <= 0) || (!opened && code.trim_end().ends_with(';')) {
                break;
            }
            j += 1;
        }
        let length = j - i + 1;
        if opened && length > max {
            found.push((name, i + 1, length));
        }
        i += 1;
    }
    found
}

fn strip_literals(line: &str) -> String {
    let code = line.split("//").next().unwrap_or("");
    let mut out = String::new();
    let mut in_str = false;
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        match (in_str, c) {
            (true, '\\') => {
                chars.next();
            }
            (_, '"') => in_str = !in_str,
            (false, '\'') if chars.peek().is_some_and(|n| *n == '{' || *n == '}') => {
                chars.next();
            }
            (false, c) => out.push(c),
            (true, _) => {}
        }
    }
    out
}

/// Issue 14 item 8: no function over 100 lines outside page templates (maud `html!`
/// bodies, which read as the page they render), and no long argument lists waved through.
#[test]
fn no_function_is_over_100_lines_and_no_argument_list_is_waved_through() {
    let mut wrong = Vec::new();
    for (file, text) in sources("src") {
        for (name, line, length) in long_functions(without_tests(&text), 100) {
            let body: String = text.lines().skip(line - 1).take(length).collect();
            if body.contains("html! {") {
                continue;
            }
            wrong.push(format!("src/{file}:{line}: {name} is {length} lines"));
        }
        if text.contains("clippy::too_many_arguments") {
            wrong.push(format!("src/{file}: allows clippy::too_many_arguments"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_function_length_check_can_fail() {
    let long = format!("fn big() {{\n{}}}\n", "    let x = 1;\n".repeat(120));
    assert_eq!(long_functions(&long, 100).len(), 1);
    let braces_in_strings = "fn f() {\n    let s = \"}}}\";\n    let c = '{';\n}\n";
    assert_eq!(
        long_functions(braces_in_strings, 2),
        vec![("f".to_string(), 1, 4)]
    );
}

#[test]
fn the_crate_use_check_can_fail() {
    assert_eq!(
        uses("use tiny_http::Server;\nlet x = 1;\n", "tiny_http"),
        vec![1]
    );
    assert_eq!(
        uses("let s = tiny_http::Server::http(a);", "tiny_http"),
        vec![1]
    );
    assert!(uses("let r = crate::net::ring::x(); // ring::y", "ring").is_empty());
    assert!(uses("let r = other_ring::x();", "ring").is_empty());
}
