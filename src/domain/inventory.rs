//! The virtual machine inventory a device reports when it renews: parsed and checked
//! here (types, lengths, formats, count), stored by `db::inventory`. Pure.

use serde::Deserialize;
use serde_json::Value;

/// The most virtual machines one report may list (more: 413).
pub const MAX_VMS: usize = 1_000;
const MAX_NAME: usize = 255;
const MAX_GUEST: usize = 100;
const MAX_IMAGE: usize = 128;

/// One virtual machine as a device reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vm {
    pub uuid: String,
    pub name: String,
    pub guest_os: String,
    pub image_name: Option<String>,
    pub image_version: Option<String>,
    pub encrypted: bool,
    pub expires_at: Option<i64>,
    pub last_started_at: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Image {
    name: String,
    version: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reported {
    uuid: String,
    name: String,
    guest_os: String,
    #[serde(default)]
    image: Option<Image>,
    encrypted: bool,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    last_started_at: Option<String>,
}

/// Why a report was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the report lists {0} virtual machines; at most {MAX_VMS} are accepted")]
    TooMany(usize),
    #[error("{0}")]
    Invalid(String),
}

fn text(what: &str, i: usize, v: &str, max: usize) -> Result<String, Refused> {
    // Checked before trimming: a control character at either end is refused, not cut.
    let invisible = v.chars().any(crate::caps::invisible);
    let v = v.trim();
    if v.is_empty() || v.chars().count() > max || invisible {
        return Err(Refused::Invalid(format!(
            "vms[{i}].{what} must be 1 to {max} characters without control or invisible formatting characters"
        )));
    }
    Ok(v.to_string())
}

fn time(what: &str, i: usize, v: Option<&str>) -> Result<Option<i64>, Refused> {
    v.map(|t| {
        // Exactly a date or an RFC 3339 time: no sign, no spaces, not before 1970.
        let parsed = if t.len() == 10 {
            crate::domain::policy::strict_date(t).map(|d| d + 86_399)
        } else {
            crate::clock::parse_rfc3339(t)
                .filter(|s| *s >= 0 && t.starts_with(|c: char| c.is_ascii_digit()) && t.trim() == t)
        };
        parsed.ok_or_else(|| {
            Refused::Invalid(format!(
                "vms[{i}].{what} must be an RFC 3339 time or a date (YYYY-MM-DD)"
            ))
        })
    })
    .transpose()
}

/// A UUID in its 8-4-4-4-12 hexadecimal form, lower-cased.
fn uuid(i: usize, v: &str) -> Result<String, Refused> {
    let v = v.trim().to_ascii_lowercase();
    let groups: Vec<&str> = v.split('-').collect();
    let ok = groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()));
    if !ok {
        return Err(Refused::Invalid(format!(
            "vms[{i}].uuid is not a UUID (8-4-4-4-12 hexadecimal digits)"
        )));
    }
    Ok(v)
}

/// Parses a report (`vms`: an array of objects); a UUID listed twice is refused.
pub fn parse(v: &Value) -> Result<Vec<Vm>, Refused> {
    let list = v
        .as_array()
        .ok_or_else(|| Refused::Invalid("vms must be an array".into()))?;
    if list.len() > MAX_VMS {
        return Err(Refused::TooMany(list.len()));
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let r: Reported = serde_json::from_value(item.clone())
            .map_err(|e| Refused::Invalid(format!("vms[{i}]: {e}")))?;
        let uuid = uuid(i, &r.uuid)?;
        if !seen.insert(uuid.clone()) {
            return Err(Refused::Invalid(format!(
                "vms[{i}].uuid {uuid} is listed twice"
            )));
        }
        let (image_name, image_version) = match r.image {
            Some(img) => (
                Some(text("image.name", i, &img.name, MAX_IMAGE)?),
                Some(text("image.version", i, &img.version, MAX_IMAGE)?),
            ),
            None => (None, None),
        };
        out.push(Vm {
            uuid,
            name: text("name", i, &r.name, MAX_NAME)?,
            guest_os: text("guest_os", i, &r.guest_os, MAX_GUEST)?,
            image_name,
            image_version,
            encrypted: r.encrypted,
            expires_at: time("expires_at", i, r.expires_at.as_deref())?,
            last_started_at: time("last_started_at", i, r.last_started_at.as_deref())?,
        });
    }
    Ok(out)
}

/// Orders versions as people read them: `1.10` after `1.9`, numbers before words.
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    // A version made of numbers (1.10, 2026.11) ranks above any other, so a device
    // reporting "zzz" or "v2" cannot make the fleet's real versions look outdated;
    // trailing zeros do not count (2 = 2.0).
    // Each number as its digits without leading zeros, so any length compares: by
    // length, then digit by digit.
    let parts = |s: &str| -> Option<Vec<(usize, String)>> {
        let mut n: Vec<(usize, String)> = s
            .split('.')
            .map(|p| {
                (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())).then(|| {
                    let digits = p.trim_start_matches('0').to_string();
                    (digits.len(), digits)
                })
            })
            .collect::<Option<_>>()?;
        while n.len() > 1 && n.last().is_some_and(|(len, _)| *len == 0) {
            n.pop();
        }
        Some(n)
    };
    match (parts(a), parts(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Greater,
        (None, Some(_)) => std::cmp::Ordering::Less,
        (None, None) => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vm(uuid: &str) -> Value {
        json!({"uuid": uuid, "name": "Windows 11", "guest_os": "Windows 11",
               "image": {"name": "Win11 Golden", "version": "2026.11"}, "encrypted": true,
               "expires_at": "2027-06-30", "last_started_at": "2026-11-29T10:00:00Z"})
    }

    #[test]
    fn a_report_is_typed_and_capped() {
        let ok = parse(&json!([vm("1E0C9E4A-0000-4000-8000-000000000001")])).expect("ok");
        assert_eq!(ok[0].uuid, "1e0c9e4a-0000-4000-8000-000000000001");
        assert_eq!(ok[0].image_version.as_deref(), Some("2026.11"));
        let many: Vec<Value> = (0..=MAX_VMS)
            .map(|i| vm(&format!("00000000-0000-4000-8000-{i:012}")))
            .collect();
        assert_eq!(parse(&json!(many)), Err(Refused::TooMany(MAX_VMS + 1)));
        for bad in [
            json!([vm("not-a-uuid")]),
            json!([
                vm("00000000-0000-4000-8000-000000000001"),
                vm("00000000-0000-4000-8000-000000000001")
            ]),
            json!([{"uuid": "00000000-0000-4000-8000-000000000001", "name": "a\u{0}b", "guest_os": "x", "encrypted": false}]),
            json!([{"uuid": "00000000-0000-4000-8000-000000000001", "name": "a", "guest_os": "x", "encrypted": "yes"}]),
            json!([{"uuid": "00000000-0000-4000-8000-000000000001", "name": "a", "guest_os": "x", "encrypted": false, "extra": 1}]),
            json!([{"uuid": "00000000-0000-4000-8000-000000000001", "name": "a", "guest_os": "x", "encrypted": false, "expires_at": "soon"}]),
            json!([{"uuid": "00000000-0000-4000-8000-000000000001", "name": "a", "guest_os": "x", "encrypted": false, "expires_at": "+2027-01-01"}]),
            json!([{"uuid": "00000000-0000-4000-8000-000000000001", "name": "a", "guest_os": "x", "encrypted": false, "expires_at": "2027-01-01 "}]),
            json!([{"uuid": "00000000-0000-4000-8000-000000000001", "name": "a", "guest_os": "x", "encrypted": false, "expires_at": "0000-01-01"}]),
            json!([{"uuid": "00000000-0000-4000-8000-000000000001", "name": "a\u{202E}b", "guest_os": "x", "encrypted": false}]),
            json!({"not": "an array"}),
        ] {
            assert!(matches!(parse(&bad), Err(Refused::Invalid(_))), "{bad}");
        }
    }

    #[test]
    fn versions_compare_numerically() {
        use std::cmp::Ordering::*;
        assert_eq!(compare_versions("1.10", "1.9"), Greater);
        assert_eq!(compare_versions("2026.11", "2026.11"), Equal);
        assert_eq!(compare_versions("2026.2", "2026.11"), Less);
        assert_eq!(compare_versions("2", "2.0"), Equal);
        assert_eq!(compare_versions("2.0.0", "02"), Equal);
        assert_eq!(
            compare_versions("123456789012345678901234567890", "9"),
            Greater,
            "any length"
        );
        assert_eq!(
            compare_versions("zzz", "20.1.2"),
            Less,
            "words never outrank numbers"
        );
        assert_eq!(compare_versions("v2", "1"), Less);
    }
}
