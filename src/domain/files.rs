//! The distribution point's rules, pure: names and versions of stored files, their
//! declared hashes, and the HTTP byte ranges of uploads (`Content-Range`) and downloads
//! (`Range`, RFC 9110 §14).

use super::problem::{Problem, Reason};

/// An image's name: what admins and the portal show.
pub fn check_name(name: &str) -> Result<String, Problem> {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(Problem::new(
            Reason::BadRequest,
            "A name must be 1 to 100 printable characters.",
        ));
    }
    Ok(name.to_string())
}

/// A version: letters, digits and `.`, `-`, `_`, `+`, starting with a letter or digit
/// (e.g. `2026.11`, `1.4.0-beta.2`): it appears in file names and feed URLs.
pub fn check_version(version: &str) -> Result<String, Problem> {
    let ok = !version.is_empty()
        && version.len() <= 64
        && version.starts_with(|c: char| c.is_ascii_alphanumeric())
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'+'));
    if !ok {
        return Err(Problem::new(
            Reason::BadRequest,
            "A version must be 1 to 64 letters, digits, '.', '-', '_' or '+', starting with a letter or digit.",
        ));
    }
    Ok(version.to_string())
}

/// A macOS version as `minimumSystemVersion` takes it: `13`, `13.0`, `14.2.1`.
pub fn check_os_version(v: &str) -> Result<String, Problem> {
    let parts: Vec<&str> = v.split('.').collect();
    let ok = (1..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| (1..=4).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    if !ok {
        return Err(Problem::new(
            Reason::BadRequest,
            "A macOS version is one to three numbers such as 13.0.",
        ));
    }
    Ok(v.to_string())
}

/// An update branch.
pub fn check_branch(branch: &str) -> Result<String, Problem> {
    match branch {
        "stable" | "beta" => Ok(branch.to_string()),
        _ => Err(Problem::new(
            Reason::BadRequest,
            "The branch must be stable or beta.",
        )),
    }
}

/// The file name a package is offered under: letters, digits, `.`, `-`, `_`, not
/// starting with a dot (it appears in the feed's URLs and in `Content-Disposition`).
pub fn check_file_name(name: &str) -> Result<String, Problem> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if !ok {
        return Err(Problem::new(
            Reason::BadRequest,
            "A file name must be 1 to 100 letters, digits, '.', '-' or '_', not starting with a dot.",
        ));
    }
    Ok(name.to_string())
}

/// A declared SHA-256: 64 hex digits, stored lower-case.
pub fn check_sha256(hex: &str) -> Result<String, Problem> {
    let hex = hex.trim().to_ascii_lowercase();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Problem::new(
            Reason::BadRequest,
            "sha256 must be 64 hexadecimal digits.",
        ));
    }
    Ok(hex)
}

/// An upload request's `Content-Range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentRange {
    /// `bytes FIRST-LAST/TOTAL`: this piece.
    Piece { first: u64, last: u64, total: u64 },
    /// `bytes */TOTAL`: no bytes, just asking how much is stored.
    Query { total: u64 },
}

pub fn parse_content_range(value: &str) -> Result<ContentRange, Problem> {
    let bad = || {
        Problem::new(
            Reason::BadRequest,
            "Content-Range must be 'bytes FIRST-LAST/TOTAL' (or 'bytes */TOTAL' to ask how much is stored).",
        )
    };
    let rest = value.trim().strip_prefix("bytes ").ok_or_else(bad)?;
    let (span, total) = rest.split_once('/').ok_or_else(bad)?;
    let total = number(total).ok_or_else(bad)?;
    if span == "*" {
        return Ok(ContentRange::Query { total });
    }
    let (first, last) = span.split_once('-').ok_or_else(bad)?;
    let (first, last) = (
        number(first).ok_or_else(bad)?,
        number(last).ok_or_else(bad)?,
    );
    if first > last || last >= total {
        return Err(bad());
    }
    Ok(ContentRange::Piece { first, last, total })
}

/// What a download's `Range` asks for, against a file of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// The whole file (no `Range`, or one the server may ignore: several ranges, or
    /// another unit).
    Whole,
    /// `start` and `len` of one range.
    Part { start: u64, len: u64 },
    /// A range entirely past the end: 416.
    Unsatisfiable,
}

pub fn parse_range(value: Option<&str>, size: u64) -> Result<Wanted, Problem> {
    let Some(value) = value else {
        return Ok(Wanted::Whole);
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(Wanted::Whole);
    };
    if spec.contains(',') {
        // Several ranges: answering with the whole file is allowed (RFC 9110 §14.2).
        return Ok(Wanted::Whole);
    }
    // A Range that cannot be read is ignored, as RFC 9110 §14.2 has it: the whole file.
    Ok(one_range(spec.trim(), size).unwrap_or(Wanted::Whole))
}

/// One `first-last`, `first-` or `-suffix`; `None` when it cannot be read. Positions
/// too large for 64 bits are as large as can be (past any file's end).
fn one_range(spec: &str, size: u64) -> Option<Wanted> {
    let position = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(s.parse().unwrap_or(u64::MAX))
    };
    let (first, last) = spec.split_once('-')?;
    Some(match (first.is_empty(), last.is_empty()) {
        (true, true) => return None,
        // `-N`: the last N bytes.
        (true, false) => {
            let n = position(last)?;
            if n == 0 || size == 0 {
                Wanted::Unsatisfiable
            } else {
                let len = n.min(size);
                Wanted::Part {
                    start: size - len,
                    len,
                }
            }
        }
        (false, _) => {
            let start = position(first)?;
            let end = if last.is_empty() {
                u64::MAX
            } else {
                position(last)?
            };
            if end < start {
                return None;
            }
            if start >= size {
                Wanted::Unsatisfiable
            } else {
                let last = end.min(size - 1);
                Wanted::Part {
                    start,
                    len: last - start + 1,
                }
            }
        }
    })
}

/// Orders release versions as semantic versioning does: the dotted core by number
/// (`1.10` after `1.9`, `2` = `2.0`), then a version with a pre-release suffix
/// (`20.2.0-beta.1`) before the same version without one; build metadata (`+…`) ignored.
pub fn compare_release(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    fn split(v: &str) -> (&str, Option<&str>) {
        let v = v.split('+').next().unwrap_or(v);
        match v.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (v, None),
        }
    }
    fn parts(s: &str) -> Vec<&str> {
        let mut p: Vec<&str> = s.split('.').collect();
        while p.len() > 1
            && p.last()
                .is_some_and(|x| x.trim_start_matches('0').is_empty())
        {
            p.pop();
        }
        p
    }
    fn part(a: &str, b: &str) -> Ordering {
        let num = |s: &str| s.bytes().all(|c| c.is_ascii_digit()) && !s.is_empty();
        match (num(a), num(b)) {
            (true, true) => {
                let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
                a.len().cmp(&b.len()).then_with(|| a.cmp(b))
            }
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => a.cmp(b),
        }
    }
    fn dotted(a: &str, b: &str) -> Ordering {
        let (a, b) = (parts(a), parts(b));
        for (x, y) in a.iter().zip(&b) {
            let o = part(x, y);
            if o != Ordering::Equal {
                return o;
            }
        }
        a.len().cmp(&b.len())
    }
    let ((ca, pa), (cb, pb)) = (split(a), split(b));
    dotted(ca, cb).then_with(|| match (pa, pb) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => dotted(x, y),
    })
}

/// Digits only (no sign, no spaces), as HTTP's byte positions are written.
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Whether an `If-Range` value names this strong entity tag (strong comparison).
pub fn etag_matches(header: Option<&str>, etag: &str) -> bool {
    header.is_some_and(|h| h.split(',').any(|t| t.trim() == etag))
}

/// Whether an `If-None-Match` value names this entity tag (weak comparison: `W/` aside;
/// `*` matches any).
pub fn none_match(header: Option<&str>, etag: &str) -> bool {
    header.is_some_and(|h| {
        h.split(',')
            .map(str::trim)
            .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(
            parse_content_range("bytes 0-99/1000").ok(),
            Some(ContentRange::Piece {
                first: 0,
                last: 99,
                total: 1000
            })
        );
        assert_eq!(
            parse_content_range("bytes */1000").ok(),
            Some(ContentRange::Query { total: 1000 })
        );
        for bad in [
            "bytes 5-4/10",
            "bytes 0-10/10",
            "bytes -1-4/10",
            "bytes 0-4/",
            "0-4/10",
            "bytes 0-4/99999999999999999999",
            "bytes +0-4/10",
        ] {
            assert!(parse_content_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges() {
        let p = |v: &str| parse_range(Some(v), 1000).ok();
        assert_eq!(p("bytes=0-99"), Some(Wanted::Part { start: 0, len: 100 }));
        assert_eq!(
            p("bytes=990-"),
            Some(Wanted::Part {
                start: 990,
                len: 10
            })
        );
        assert_eq!(
            p("bytes=990-5000"),
            Some(Wanted::Part {
                start: 990,
                len: 10
            })
        );
        assert_eq!(
            p("bytes=-10"),
            Some(Wanted::Part {
                start: 990,
                len: 10
            })
        );
        assert_eq!(
            p("bytes=-5000"),
            Some(Wanted::Part {
                start: 0,
                len: 1000
            })
        );
        assert_eq!(p("bytes=1000-"), Some(Wanted::Unsatisfiable));
        assert_eq!(p("bytes=-0"), Some(Wanted::Unsatisfiable));
        assert_eq!(p("bytes=0-1,5-6"), Some(Wanted::Whole));
        assert_eq!(p("items=0-1"), Some(Wanted::Whole));
        assert_eq!(p("bytes=9-1"), Some(Wanted::Whole));
        assert_eq!(p("bytes=-"), Some(Wanted::Whole));
        assert_eq!(p("bytes=a-b"), Some(Wanted::Whole));
        assert_eq!(
            p("bytes=0-18446744073709551615"),
            Some(Wanted::Part {
                start: 0,
                len: 1000
            })
        );
        assert!(check_os_version("13.0").is_ok() && check_os_version("14.2.1").is_ok());
        for bad in ["abc", "13.", "13..0", "", "1.2.3.4"] {
            assert!(check_os_version(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_range(None, 10).ok(), Some(Wanted::Whole));
    }

    #[test]
    fn releases_order_as_semver() {
        let mut v = vec![
            "1.10",
            "1.9",
            "20.2.0-beta.1",
            "20.2.0",
            "20.1.2",
            "2",
            "1.9.1",
            "20.2.0-beta.10",
            "20.2.0-alpha",
        ];
        v.sort_by(|a, b| compare_release(a, b));
        assert_eq!(
            v,
            [
                "1.9",
                "1.9.1",
                "1.10",
                "2",
                "20.1.2",
                "20.2.0-alpha",
                "20.2.0-beta.1",
                "20.2.0-beta.10",
                "20.2.0"
            ]
        );
        assert_eq!(compare_release("2.0", "2"), std::cmp::Ordering::Equal);
    }

    #[test]
    fn names_and_versions() {
        assert!(check_version("1.4.0-beta.2+b7").is_ok());
        for bad in ["", "../1", "1/2", ".1", "1 2", "a\0", &"9".repeat(65)] {
            assert!(check_version(bad).is_err(), "{bad:?}");
        }
        assert!(check_name("macOS 15 golden").is_ok());
        assert!(check_name("a\nb").is_err());
        assert!(check_sha256(&"A".repeat(64)).is_ok());
        assert!(check_sha256(&"g".repeat(64)).is_err());
    }
}
