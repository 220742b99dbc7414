//! The programs some tests drive besides seatgate (the xmlsec1 and openssl CLIs, Python,
//! Chromium). Tests that need one are `#[ignore = "needs …; scripts/test runs it"]`, so
//! `cargo test` passes with Rust alone; `scripts/test` checks they are installed and runs them all
//! (`-- --include-ignored`). Run by hand without the tool, such a test fails saying so.

/// Fails the test unless `program` can be run (found on PATH, or a path that exists).
#[track_caller]
pub fn require(program: &str, install: &str) {
    let found = if program.contains('/') {
        std::path::Path::new(program).exists()
    } else {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
    };
    assert!(
        found,
        "this test needs `{program}`, which is not installed: {install} (scripts/install-deps installs it)"
    );
}
