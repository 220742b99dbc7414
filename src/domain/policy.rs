//! Client policies: the typed settings a policy may set, their validation, the published
//! JSON Schema, and the effective policy of a device (per setting, the first layer that
//! sets it: group assignments by priority, then the default policy, then the built-in
//! values). Pure: no database, no clock.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The schema's version; a client that knows an older one ignores settings it does not know.
pub const SCHEMA_VERSION: u32 = 1;
pub const SCHEMA_ID: &str = "urn:seatgate:policy:1";

/// The user actions a policy may restrict (the desktop app disables them).
pub const ACTIONS: &[(&str, &str)] = &[
    ("create_vm", "Create new virtual machines"),
    ("add_existing_vm", "Add existing virtual machines"),
    ("remove_vm", "Remove virtual machines"),
    ("clone_vm", "Clone virtual machines"),
    (
        "change_vm_settings",
        "Change a virtual machine's configuration",
    ),
    ("manage_snapshots", "Take, revert and delete snapshots"),
    ("export_vm", "Export or pack virtual machines"),
    ("change_network", "Change network settings"),
    (
        "share_mac_folders",
        "Share Mac folders with virtual machines",
    ),
    ("change_preferences", "Change the app's preferences"),
    (
        "install_from_media",
        "Install an operating system from an image file",
    ),
];

/// The most USB exceptions one policy may list.
pub const MAX_USB_EXCEPTIONS: usize = 200;
const MAX_LABEL: usize = 64;
const MAX_URL: usize = 512;
/// The shortest renewal interval a policy may ask for: the shortest `[lease] renew_after`
/// the gateway takes, so an effective policy always fits the schema.
pub const MIN_RENEWAL_SECS: u64 = 60;
/// The shortest offline grace a policy may set (as `[lease] offline_grace`: none).
pub const MIN_GRACE_SECS: u64 = 0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UsbAction {
    Allow,
    Ask,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsbException {
    /// `vvvv:pppp`, the vendor and product ids in hexadecimal.
    pub device: String,
    pub action: UsbAction,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Usb {
    pub default: UsbAction,
    #[serde(default)]
    pub exceptions: Vec<UsbException>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum VmExpiration {
    /// Virtual machines never expire.
    Never,
    /// They stop on a date (`YYYY-MM-DD`, end of day UTC).
    Date { date: String, warn_days: u32 },
    /// They stop this many days after their first start.
    DaysAfterFirstStart { days: u32, warn_days: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupportLink {
    pub url: String,
    pub label: String,
}

/// The settings one policy sets; an absent one is inherited from the next layer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restricted_actions: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usb: Option<Usb>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vm_expiration: Option<VmExpiration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_on_suspend: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hide_developer_tools: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub support_link: Option<SupportLink>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_experience_program: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_renewal_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offline_grace_seconds: Option<u64>,
}

/// Every setting's name, in the order pages and documents list them.
pub const SETTINGS: &[(&str, &str)] = &[
    ("restricted_actions", "Restricted actions"),
    ("usb", "USB devices"),
    ("vm_expiration", "Virtual machine expiration"),
    ("lock_on_suspend", "Lock a virtual machine on suspend"),
    ("hide_developer_tools", "Hide developer tools"),
    ("support_link", "Support link"),
    ("update_branch", "Update branch"),
    ("customer_experience_program", "Customer experience program"),
    ("lease_renewal_seconds", "Lease renewal interval"),
    ("offline_grace_seconds", "Offline grace"),
];

/// The server's own bounds on the lease settings (`[lease]`).
#[derive(Debug, Clone, Copy)]
pub struct LeaseBounds {
    pub max_renewal_secs: u64,
    pub max_grace_secs: u64,
}

/// A refused policy: which setting, and why, in one sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.text())]
pub struct Invalid {
    pub setting: String,
    pub message: String,
}

impl Invalid {
    /// "the usb setting: …", or the message alone when it is about the whole object.
    fn text(&self) -> String {
        if self.setting == "settings" {
            self.message.clone()
        } else {
            format!("the {} setting: {}", self.setting, self.message)
        }
    }
}

fn invalid(setting: &str, message: impl Into<String>) -> Invalid {
    Invalid {
        setting: setting.to_string(),
        message: message.into(),
    }
}

impl Settings {
    /// Parses a policy's settings object (unknown settings and wrong types refused).
    pub fn from_json(v: &Value) -> Result<Settings, Invalid> {
        let Some(map) = v.as_object() else {
            return Err(invalid("settings", "must be a JSON object"));
        };
        if let Some((name, _)) = map.iter().find(|(_, v)| v.is_null()) {
            return Err(invalid(
                name,
                "must not be null (leave it out to inherit it)",
            ));
        }
        if let Some(exp) = map.get("vm_expiration").and_then(Value::as_object) {
            let allowed: &[&str] = match exp.get("mode").and_then(Value::as_str) {
                Some("never") => &["mode"],
                Some("date") => &["mode", "date", "warn_days"],
                _ => &["mode", "days", "warn_days"],
            };
            if let Some(extra) = exp.keys().find(|k| !allowed.contains(&k.as_str())) {
                return Err(invalid(
                    "vm_expiration",
                    format!("{extra:?} does not belong to this mode"),
                ));
            }
        }
        serde_json::from_value(v.clone()).map_err(|e| {
            let text = e.to_string();
            let setting = text
                .split('`')
                .nth(1)
                .filter(|_| text.starts_with("unknown field"))
                .unwrap_or("settings")
                .to_string();
            Invalid {
                setting,
                message: text,
            }
        })
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| json!({}))
    }

    /// Checks every value this policy sets, and normalizes what may be written several
    /// ways (USB ids to lower case, actions in vocabulary order).
    pub fn validated(mut self, bounds: LeaseBounds) -> Result<Settings, Invalid> {
        if let Some(actions) = &mut self.restricted_actions {
            let mut seen = std::collections::HashSet::new();
            if let Some(twice) = actions.iter().find(|a| !seen.insert(a.as_str())) {
                return Err(invalid(
                    "restricted_actions",
                    format!("{twice:?} is listed twice"),
                ));
            }
            for a in actions.iter() {
                if !ACTIONS.iter().any(|(name, _)| name == a) {
                    return Err(invalid(
                        "restricted_actions",
                        format!("{a:?} is not an action (one of: {})", action_names()),
                    ));
                }
            }
            let set: Vec<String> = ACTIONS
                .iter()
                .filter(|(name, _)| actions.iter().any(|a| a == name))
                .map(|(name, _)| name.to_string())
                .collect();
            *actions = set;
        }
        if let Some(usb) = &mut self.usb {
            validate_usb(usb)?;
        }
        if let Some(exp) = &self.vm_expiration {
            validate_expiration(exp)?;
        }
        if let Some(link) = &mut self.support_link {
            validate_link(link)?;
        }
        if let Some(branch) = &self.update_branch
            && !valid_branch(branch)
        {
            return Err(invalid(
                "update_branch",
                format!("{branch:?} is not stable, beta or a version to pin (such as 20.1.2)"),
            ));
        }
        check_seconds(
            "lease_renewal_seconds",
            self.lease_renewal_seconds,
            MIN_RENEWAL_SECS,
            bounds.max_renewal_secs,
        )?;
        check_seconds(
            "offline_grace_seconds",
            self.offline_grace_seconds,
            MIN_GRACE_SECS,
            bounds.max_grace_secs,
        )?;
        Ok(self)
    }
}

fn action_names() -> String {
    ACTIONS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

fn validate_usb(usb: &mut Usb) -> Result<(), Invalid> {
    if usb.exceptions.len() > MAX_USB_EXCEPTIONS {
        return Err(invalid(
            "usb",
            format!("at most {MAX_USB_EXCEPTIONS} exceptions"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for e in &mut usb.exceptions {
        let id = e.device.to_ascii_lowercase();
        let ok = id.len() == 9
            && id.as_bytes()[4] == b':'
            && id
                .bytes()
                .enumerate()
                .all(|(i, b)| i == 4 || b.is_ascii_hexdigit());
        if !ok {
            return Err(invalid(
                "usb",
                format!(
                    "{:?} is not a USB device id (vendor:product in hexadecimal, such as 05ac:12a8)",
                    e.device.chars().take(40).collect::<String>()
                ),
            ));
        }
        if !seen.insert(id.clone()) {
            return Err(invalid("usb", format!("{id} is listed twice")));
        }
        e.device = id;
    }
    Ok(())
}

fn validate_expiration(exp: &VmExpiration) -> Result<(), Invalid> {
    let warn = match exp {
        VmExpiration::Never => return Ok(()),
        VmExpiration::Date { date, warn_days } => {
            if strict_date(date).is_none() {
                return Err(invalid(
                    "vm_expiration",
                    format!(
                        "{:?} is not a date (YYYY-MM-DD)",
                        date.chars().take(40).collect::<String>()
                    ),
                ));
            }
            *warn_days
        }
        VmExpiration::DaysAfterFirstStart { days, warn_days } => {
            if !(1..=3650).contains(days) {
                return Err(invalid(
                    "vm_expiration",
                    "days after the first start must be from 1 to 3650",
                ));
            }
            if warn_days >= days {
                return Err(invalid(
                    "vm_expiration",
                    "the warning must start before the virtual machine expires",
                ));
            }
            *warn_days
        }
    };
    if warn > 365 {
        return Err(invalid("vm_expiration", "warn at most 365 days ahead"));
    }
    Ok(())
}

/// A `YYYY-MM-DD` date exactly as the schema's pattern says (no sign, no spaces), from
/// 1970 to 9999; its first second (UTC).
pub fn strict_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    (shape && s[..4] >= *"1970")
        .then(|| crate::clock::parse_date(s))
        .flatten()
}

fn validate_link(link: &mut SupportLink) -> Result<(), Invalid> {
    link.label = link.label.trim().to_string();
    link.url = link.url.trim().to_string();
    if link.label.is_empty() || link.label.chars().count() > MAX_LABEL {
        return Err(invalid(
            "support_link",
            format!("the label must be 1 to {MAX_LABEL} characters"),
        ));
    }
    if link.label.chars().any(crate::caps::invisible) {
        return Err(invalid(
            "support_link",
            "the label must not hold control or invisible formatting characters",
        ));
    }
    let url_ok = link.url.len() <= MAX_URL
        && (link.url.starts_with("https://") || link.url.starts_with("mailto:"))
        && link.url.len() > 8
        && !link
            .url
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '"' || c == '<' || c == '>');
    if !url_ok {
        return Err(invalid(
            "support_link",
            format!(
                "the link must be an https:// or mailto: address of at most {MAX_URL} characters"
            ),
        ));
    }
    Ok(())
}

fn valid_branch(branch: &str) -> bool {
    if branch == "stable" || branch == "beta" {
        return true;
    }
    let parts: Vec<&str> = branch.split('.').collect();
    (2..=4).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 6 && p.bytes().all(|b| b.is_ascii_digit()))
}

fn check_seconds(setting: &str, value: Option<u64>, min: u64, max: u64) -> Result<(), Invalid> {
    match value {
        Some(v) if v < min || v > max => Err(invalid(
            setting,
            format!(
                "must be from {} to {} (the gateway's limit)",
                human_seconds(min),
                human_seconds(max.max(min))
            ),
        )),
        _ => Ok(()),
    }
}

/// `90000` → "1 day 1 hour"; whole days or hours, as the forms take them.
pub fn human_seconds(s: u64) -> String {
    let (d, h, m) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60);
    let unit = |n: u64, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let mut parts = Vec::new();
    if d > 0 {
        parts.push(unit(d, "day"));
    }
    if h > 0 {
        parts.push(unit(h, "hour"));
    }
    if m > 0 || parts.is_empty() {
        parts.push(unit(m, "minute"));
    }
    parts.join(" ")
}

/// The values a device gets for settings no policy sets.
pub fn built_in(bounds: LeaseBounds) -> Settings {
    Settings {
        restricted_actions: Some(Vec::new()),
        usb: Some(Usb {
            default: UsbAction::Ask,
            exceptions: Vec::new(),
        }),
        vm_expiration: Some(VmExpiration::Never),
        lock_on_suspend: Some(false),
        hide_developer_tools: Some(false),
        support_link: None,
        update_branch: Some("stable".into()),
        customer_experience_program: Some(false),
        lease_renewal_seconds: Some(bounds.max_renewal_secs),
        offline_grace_seconds: Some(bounds.max_grace_secs),
    }
}

/// Where an effective setting came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum Source {
    /// A policy assigned to a group the user is in.
    Group {
        policy_id: String,
        policy: String,
        group: String,
        priority: i64,
    },
    /// The policy a license key names.
    Key { policy_id: String, policy: String },
    /// The default policy.
    Default { policy_id: String, policy: String },
    /// No policy sets it.
    BuiltIn,
}

impl Source {
    pub fn describe(&self) -> String {
        match self {
            Source::Group {
                policy,
                group,
                priority,
                ..
            } => format!("policy {policy:?} through group {group:?} (priority {priority})"),
            Source::Key { policy, .. } => format!("policy {policy:?} of the license key"),
            Source::Default { policy, .. } => format!("the default policy {policy:?}"),
            Source::BuiltIn => "built-in".into(),
        }
    }
}

/// One layer of the stack: a policy's settings and where it applies.
pub struct Layer {
    pub settings: Settings,
    pub source: Source,
}

/// A device's effective policy: every setting's value and its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub values: Map<String, Value>,
    pub sources: BTreeMap<String, Source>,
}

impl Effective {
    /// Per setting, the first layer (highest priority first) that sets it; the lease
    /// settings never above the server's bounds (which may have shrunk since).
    pub fn compute(layers: &[Layer], bounds: LeaseBounds) -> Effective {
        let mut values = Map::new();
        let mut sources = BTreeMap::new();
        let built = built_in(bounds).to_json();
        let layer_json: Vec<Value> = layers.iter().map(|l| l.settings.to_json()).collect();
        for (name, _) in SETTINGS {
            let found = layers
                .iter()
                .zip(&layer_json)
                .find_map(|(l, json)| json.get(*name).cloned().map(|v| (v, l.source.clone())));
            let (value, source) = found.unwrap_or_else(|| {
                (
                    built.get(*name).cloned().unwrap_or(Value::Null),
                    Source::BuiltIn,
                )
            });
            // A setting with no value (no support link) is left out, as in a policy.
            if !value.is_null() {
                values.insert(name.to_string(), value);
            }
            sources.insert(name.to_string(), source);
        }
        for (name, max) in [
            ("lease_renewal_seconds", bounds.max_renewal_secs),
            ("offline_grace_seconds", bounds.max_grace_secs),
        ] {
            if values
                .get(name)
                .and_then(Value::as_u64)
                .is_some_and(|v| v > max)
            {
                values.insert(name.to_string(), json!(max));
            }
        }
        Effective { values, sources }
    }

    /// A short, stable digest of the values (the lease's `policy` claim and the ETag).
    pub fn hash(&self) -> String {
        let canonical = Value::Object(self.values.clone()).to_string();
        crate::crypto::b64url(&crate::crypto::sha256(canonical.as_bytes()))
    }

    pub fn seconds(&self, name: &str) -> Option<u64> {
        self.values.get(name).and_then(Value::as_u64)
    }

    /// The effective policy as the device receives it (inside the signed document).
    pub fn document(&self) -> Value {
        Value::Object(self.values.clone())
    }
}

/// What changed between two versions of a policy's settings, one line per setting.
pub fn diff(before: &Settings, after: &Settings) -> Vec<String> {
    let (b, a) = (before.to_json(), after.to_json());
    let show = |v: Option<&Value>| v.map_or("unset".to_string(), Value::to_string);
    SETTINGS
        .iter()
        .filter(|(name, _)| b.get(*name) != a.get(*name))
        .map(|(name, _)| format!("{name}: {} → {}", show(b.get(*name)), show(a.get(*name))))
        .collect()
}

/// A value in words, for pages and `explain`.
pub fn describe_value(name: &str, v: &Value) -> String {
    let mut out = String::new();
    match (name, v) {
        (_, Value::Null) => out.push_str("none"),
        ("restricted_actions", Value::Array(a)) if a.is_empty() => out.push_str("none"),
        ("restricted_actions", Value::Array(a)) => {
            let names: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
            out.push_str(&names.join(", "));
        }
        ("usb", u) => {
            let _ = write!(out, "{}", u["default"].as_str().unwrap_or("?"));
            if let Some(ex) = u["exceptions"].as_array().filter(|e| !e.is_empty()) {
                let list: Vec<String> = ex
                    .iter()
                    .map(|e| {
                        format!(
                            "{} {}",
                            e["device"].as_str().unwrap_or("?"),
                            e["action"].as_str().unwrap_or("?")
                        )
                    })
                    .collect();
                let _ = write!(out, ", except {}", list.join(", "));
            }
        }
        ("vm_expiration", e) => match e["mode"].as_str() {
            Some("date") => {
                let _ = write!(
                    out,
                    "on {}, warned {} days ahead",
                    e["date"].as_str().unwrap_or("?"),
                    e["warn_days"]
                );
            }
            Some("days_after_first_start") => {
                let _ = write!(
                    out,
                    "{} days after the first start, warned {} days ahead",
                    e["days"], e["warn_days"]
                );
            }
            _ => out.push_str("never"),
        },
        ("support_link", l) => {
            let _ = write!(
                out,
                "{} ({})",
                l["label"].as_str().unwrap_or(""),
                l["url"].as_str().unwrap_or("")
            );
        }
        ("lease_renewal_seconds" | "offline_grace_seconds", Value::Number(n)) => {
            out.push_str(&human_seconds(n.as_u64().unwrap_or(0)));
        }
        (_, Value::Bool(b)) => out.push_str(if *b { "on" } else { "off" }),
        (_, Value::String(s)) => out.push_str(s),
        (_, other) => out.push_str(&other.to_string()),
    }
    out
}

/// The JSON Schema (draft 2020-12) of a policy's settings, published at
/// `/api/v1/policy-schema`.
pub fn json_schema() -> Value {
    let actions: Vec<&str> = ACTIONS.iter().map(|(n, _)| *n).collect();
    let warn = json!({"type": "integer", "minimum": 0, "maximum": 365});
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "seatgate client policy",
        "description": "The settings one policy sets. A device's effective policy takes each setting from the highest-priority policy that sets it, then the default policy, then the built-in value.",
        "version": SCHEMA_VERSION,
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "restricted_actions": {
                "description": "User actions the app disables.",
                "type": "array", "uniqueItems": true,
                "items": {"enum": actions}
            },
            "usb": {
                "description": "What happens when a USB device is connected: allow it to the virtual machine, ask the user, or deny; exceptions by vendor:product id.",
                "type": "object", "additionalProperties": false, "required": ["default"],
                "properties": {
                    "default": {"enum": ["allow", "ask", "deny"]},
                    "exceptions": {
                        "type": "array", "maxItems": MAX_USB_EXCEPTIONS,
                        "items": {
                            "type": "object", "additionalProperties": false,
                            "required": ["device", "action"],
                            "properties": {
                                "device": {"type": "string", "pattern": "^[0-9A-Fa-f]{4}:[0-9A-Fa-f]{4}$"},
                                "action": {"enum": ["allow", "ask", "deny"]}
                            }
                        }
                    }
                }
            },
            "vm_expiration": {
                "description": "When virtual machines stop working.",
                "oneOf": [
                    {"type": "object", "additionalProperties": false, "required": ["mode"],
                     "properties": {"mode": {"const": "never"}}},
                    {"type": "object", "additionalProperties": false, "required": ["mode", "date", "warn_days"],
                     "properties": {"mode": {"const": "date"},
                                    "date": {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
                                    "warn_days": warn}},
                    {"type": "object", "additionalProperties": false, "required": ["mode", "days", "warn_days"],
                     "properties": {"mode": {"const": "days_after_first_start"},
                                    "days": {"type": "integer", "minimum": 1, "maximum": 3650},
                                    "warn_days": warn}}
                ]
            },
            "lock_on_suspend": {"description": "Ask for the Mac password to resume a suspended virtual machine.", "type": "boolean"},
            "hide_developer_tools": {"description": "Hide the app's developer tools.", "type": "boolean"},
            "support_link": {
                "description": "A custom support link in the app's Help menu.",
                "type": "object", "additionalProperties": false, "required": ["url", "label"],
                "properties": {
                    "url": {"type": "string", "maxLength": MAX_URL, "pattern": "^(https://|mailto:)[^\\s\"<>]+$"},
                    "label": {"type": "string", "minLength": 1, "maxLength": MAX_LABEL}
                }
            },
            "update_branch": {
                "description": "Which updates the app takes: stable, beta, or one version pinned.",
                "type": "string",
                "pattern": "^(stable|beta|[0-9]{1,6}(\\.[0-9]{1,6}){1,3})$"
            },
            "customer_experience_program": {"description": "Whether the app takes part in the customer experience program.", "type": "boolean"},
            "lease_renewal_seconds": {
                "description": "How often the device renews its lease; never longer than the gateway's [lease] renew_after.",
                "type": "integer", "minimum": MIN_RENEWAL_SECS
            },
            "offline_grace_seconds": {
                "description": "How long a lease keeps working offline after its renewal is due; never longer than the gateway's [lease] offline_grace.",
                "type": "integer", "minimum": MIN_GRACE_SECS
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: LeaseBounds = LeaseBounds {
        max_renewal_secs: 7 * 86_400,
        max_grace_secs: 14 * 86_400,
    };

    fn settings(v: Value) -> Result<Settings, Invalid> {
        Settings::from_json(&v)?.validated(BOUNDS)
    }

    #[test]
    fn every_setting_is_typed_and_bad_values_name_the_setting() {
        for (bad, setting) in [
            (json!({"restricted_actions": ["fly"]}), "restricted_actions"),
            (json!({"usb": {"default": "maybe"}}), "settings"),
            (
                json!({"usb": {"default": "ask", "exceptions": [{"device": "05ac", "action": "deny"}]}}),
                "usb",
            ),
            (
                json!({"usb": {"default": "ask", "exceptions": [{"device": "05ac:12a8", "action": "deny"}, {"device": "05AC:12A8", "action": "allow"}]}}),
                "usb",
            ),
            (
                json!({"vm_expiration": {"mode": "date", "date": "2027-02-30", "warn_days": 3}}),
                "vm_expiration",
            ),
            (
                json!({"vm_expiration": {"mode": "date", "date": "-0001-01-01\n", "warn_days": 3}}),
                "vm_expiration",
            ),
            (
                json!({"vm_expiration": {"mode": "date", "date": " 2027-06-30", "warn_days": 3}}),
                "vm_expiration",
            ),
            (
                json!({"vm_expiration": {"mode": "date", "date": "0000-01-01", "warn_days": 3}}),
                "vm_expiration",
            ),
            (
                json!({"vm_expiration": {"mode": "never", "days": 5}}),
                "vm_expiration",
            ),
            (json!({"lock_on_suspend": null}), "lock_on_suspend"),
            (
                json!({"restricted_actions": ["create_vm", "create_vm"]}),
                "restricted_actions",
            ),
            (
                json!({"usb": {"default": "ask", "exceptions": [{"device": " 05ac:12a8 ", "action": "deny"}]}}),
                "usb",
            ),
            (
                json!({"support_link": {"url": "https://help.example", "label": "IT\u{202E}pleh"}}),
                "support_link",
            ),
            (
                json!({"vm_expiration": {"mode": "days_after_first_start", "days": 5, "warn_days": 5}}),
                "vm_expiration",
            ),
            (
                json!({"support_link": {"url": "javascript:alert(1)", "label": "Help"}}),
                "support_link",
            ),
            (
                json!({"support_link": {"url": "https://help.example", "label": ""}}),
                "support_link",
            ),
            (json!({"update_branch": "nightly"}), "update_branch"),
            (
                json!({"lease_renewal_seconds": 59}),
                "lease_renewal_seconds",
            ),
            (
                json!({"offline_grace_seconds": 99 * 86_400}),
                "offline_grace_seconds",
            ),
            (json!({"colour": "blue"}), "colour"),
        ] {
            let e = settings(bad.clone()).expect_err(&bad.to_string());
            assert_eq!(e.setting, setting, "{bad}: {e}");
        }
        let ok = settings(json!({"usb": {"default": "deny", "exceptions": [{"device": "05AC:12A8", "action": "allow"}]},
                                 "restricted_actions": ["remove_vm", "create_vm"], "update_branch": "20.1.2"}))
        .expect("valid");
        assert_eq!(ok.usb.expect("usb").exceptions[0].device, "05ac:12a8");
        assert_eq!(
            ok.restricted_actions.expect("list"),
            ["create_vm", "remove_vm"]
        );
    }

    #[test]
    fn each_setting_comes_from_the_first_layer_that_sets_it() {
        let layer = |v: Value, source: Source| Layer {
            settings: settings(v).expect("valid"),
            source,
        };
        let group = |p: &str, g: &str, prio: i64| Source::Group {
            policy_id: p.into(),
            policy: p.into(),
            group: g.into(),
            priority: prio,
        };
        let layers = [
            layer(json!({"lock_on_suspend": true}), group("strict", "Eng", 1)),
            layer(
                json!({"lock_on_suspend": false, "update_branch": "beta"}),
                group("loose", "All", 2),
            ),
            layer(
                json!({"hide_developer_tools": true}),
                Source::Default {
                    policy_id: "d".into(),
                    policy: "d".into(),
                },
            ),
        ];
        let e = Effective::compute(&layers, BOUNDS);
        assert_eq!(e.values["lock_on_suspend"], json!(true));
        assert_eq!(e.sources["lock_on_suspend"], group("strict", "Eng", 1));
        assert_eq!(e.values["update_branch"], json!("beta"));
        assert_eq!(e.sources["update_branch"], group("loose", "All", 2));
        assert_eq!(e.values["hide_developer_tools"], json!(true));
        assert_eq!(e.sources["usb"], Source::BuiltIn);
        assert_eq!(
            e.values.len(),
            SETTINGS.len() - 1,
            "no support link: left out"
        );
        // The server's bounds shrank after the policy was saved: the lease setting follows.
        let small = LeaseBounds {
            max_renewal_secs: 7_200,
            max_grace_secs: 7_200,
        };
        let e2 = Effective::compute(&layers[..1], small);
        assert_eq!(e2.values["lease_renewal_seconds"], json!(7_200));
        assert_ne!(e.hash(), e2.hash());
        assert_eq!(e.hash(), Effective::compute(&layers, BOUNDS).hash());
    }

    #[test]
    fn a_diff_names_each_changed_setting() {
        let a = settings(json!({"lock_on_suspend": true, "update_branch": "stable"})).expect("a");
        let b = settings(json!({"lock_on_suspend": false, "usb": {"default": "deny"}})).expect("b");
        assert_eq!(
            diff(&a, &b),
            [
                "usb: unset → {\"default\":\"deny\",\"exceptions\":[]}",
                "lock_on_suspend: true → false",
                "update_branch: \"stable\" → unset",
            ]
        );
    }
}
