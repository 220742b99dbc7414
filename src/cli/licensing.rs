//! `seatgate license …`, `sublicense …`, `explain`, `audit`.

use clap::Subcommand;

use super::access::{ACTOR, manage_error, print_summary};
use super::{CliError, runtime};
use crate::clock::{now_unix, rfc3339};
use crate::config::Config;
use crate::db::Db;
use crate::db::licensing as store;
use crate::domain::engine::RevokeReason;
use crate::licensing::manage::{self, NewLicense, NewSublicense};

#[derive(Debug, Subcommand)]
pub enum LicenseCommand {
    /// Register a license; prints its id
    Add {
        #[arg(long)]
        product: String,
        #[arg(long)]
        seats: i64,
        /// Last day of validity (UTC), e.g. 2027-06-30
        #[arg(long, value_name = "YYYY-MM-DD")]
        expires: Option<String>,
        /// The vendor's license key, kept for reference
        #[arg(long)]
        key: Option<String>,
    },
    /// Licenses and their pools: seats used, pending and free
    List,
    /// Import a vendor-signed entitlement (a file from the vendor): sets its license's
    /// product, seats and end date, and re-decides every seat at once
    Import {
        /// The entitlement file (a compact JWS)
        file: std::path::PathBuf,
    },
    /// Change a license's seats or expiry; seats are re-decided at once
    Set {
        /// The license's id or product name
        license: String,
        #[arg(long)]
        seats: Option<i64>,
        /// Last day of validity, or "never"
        #[arg(long, value_name = "YYYY-MM-DD|never")]
        expires: Option<String>,
        /// The longest a Mac works without reaching the gateway (e.g. 3d, 12h; 1h to
        /// 365d), so a revoked one stops sooner; "default" for the [lease] windows
        #[arg(long, value_name = "DURATION|default")]
        max_offline: Option<String>,
    },
    /// License keys: per-device seats for Macs activated without a sign-in
    #[command(subcommand)]
    Key(KeyCommand),
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a key handing out up to N seats of a license's primary pool (or of one of
    /// its sublicenses) to devices; prints it once (only the key on the last line)
    Create {
        /// The license's id or product name
        #[arg(long)]
        license: String,
        /// Draw the seats from this sublicense (id or name) instead of the primary pool
        #[arg(long)]
        sublicense: Option<String>,
        /// How many devices the key may activate at once
        #[arg(long)]
        devices: i64,
        /// A name to recognize it by, e.g. "Lab 3" [default: the pool's name]
        #[arg(long)]
        name: Option<String>,
    },
    /// Keys with their pool, devices in use and state (the keys themselves are never shown
    /// again)
    List {
        /// Only this license's keys (id or product name)
        #[arg(long)]
        license: Option<String>,
    },
    /// The devices a key holds seats for
    Devices {
        /// The key's id or name
        key: String,
    },
    /// Rename a key or change its device limit (a lower limit takes no seat away; it stops
    /// new activations until devices are released)
    Set {
        /// The key's id or name
        key: String,
        #[arg(long)]
        devices: Option<i64>,
        #[arg(long)]
        name: Option<String>,
    },
    /// Give a key a new secret, printed once; its devices keep their seats and the old
    /// key activates nothing more
    Rotate {
        /// The key's id or name
        key: String,
    },
    /// Revoke a key and every device activated with it: each is refused at its next
    /// renewal with REVOKED, and their seats go to whoever waits
    Revoke {
        /// The key's id or name
        key: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsageCommand {
    /// Write a month's usage report: per license and day, peak and average seats and
    /// activations; no personal data unless --include-users
    Report {
        /// The month (UTC), e.g. 2026-10; the current month runs up to now
        #[arg(long, value_name = "YYYY-MM")]
        month: String,
        #[arg(long)]
        out: std::path::PathBuf,
        /// Also list the user names holding a seat when the report is made
        #[arg(long)]
        include_users: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SublicenseCommand {
    /// Create a named slice of a license; prints its id
    #[command(group(clap::ArgGroup::new("allocation").args(["reserved", "dynamic"])))]
    Add {
        /// The license's id or product name
        #[arg(long)]
        license: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        seats: i64,
        /// Its own seats, carved out of the license's
        #[arg(long)]
        reserved: bool,
        /// Seats taken from the license's primary pool, up to --seats (the default)
        #[arg(long)]
        dynamic: bool,
        /// Last day of validity (UTC); afterwards its seats return to the primary pool
        #[arg(long, value_name = "YYYY-MM-DD")]
        expires: Option<String>,
    },
    /// Change a sublicense's seats or expiry; seats are re-decided at once
    ///
    /// Fewer seats than in use takes none away: the pool grants nothing until it is under
    /// its limit.
    Set {
        /// The sublicense's id or name
        sublicense: String,
        #[arg(long)]
        seats: Option<i64>,
        /// Last day of validity, or "never"
        #[arg(long, value_name = "YYYY-MM-DD|never")]
        expires: Option<String>,
    },
    /// Remove a sublicense no group mapping and no user draws from any more
    Remove {
        /// The sublicense's id or name
        sublicense: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// A user's devices (email or directory id)
    List { user: String },
    /// Deactivate a device (its user keeps the seat)
    Deactivate { id: String },
    /// Release devices silent for longer than [lease] release_silent_after, now
    ReleaseSilent,
}

pub fn device(db: &Db, config: &Config, cmd: DeviceCommand) -> Result<(), CliError> {
    let now = now_unix();
    match cmd {
        DeviceCommand::List { user } => {
            let devices = db
                .read(|tx| {
                    let key = crate::domain::scim::resource::fold(&user);
                    let id = crate::db::directory::user_by_name_key(tx, &key)?
                        .or(crate::db::directory::user_by_email_key(tx, &key)?)
                        .map_or(user.clone(), |u| u.id);
                    store::devices_of_user(tx, &id)
                })
                .map_err(runtime)?;
            if devices.is_empty() {
                outln!("no devices");
            }
            for d in devices {
                let state = match &d.revoked_at {
                    Some(at) => format!(
                        "revoked {} ({})",
                        rfc3339(*at),
                        d.revoke_reason.as_deref().unwrap_or("")
                    ),
                    None => format!("active, lease until {}", rfc3339(d.lease_expires_at)),
                };
                outln!(
                    "{}\t{}\t{}\t{state}\tlast seen {}",
                    d.id,
                    d.name,
                    d.os,
                    rfc3339(d.last_seen_at)
                );
            }
        }
        DeviceCommand::Deactivate { id } => {
            db.write(|tx| {
                let d = store::device(tx, &id)?.ok_or_else(|| {
                    crate::domain::problem::Problem::new(
                        crate::domain::problem::Reason::NotFound,
                        format!("there is no device {id:?}"),
                    )
                })?;
                crate::licensing::leases::release_device(
                    tx,
                    &d,
                    ACTOR,
                    RevokeReason::Deactivated,
                    now,
                )
            })
            .map_err(|e| CliError::Usage(e.message))?;
            outln!("deactivated {id}");
        }
        DeviceCommand::ReleaseSilent => {
            let n = crate::licensing::leases::release_silent(db, &config.lease, now)
                .map_err(|e| CliError::Runtime(e.message))?;
            outln!("released {n} silent device(s)");
        }
    }
    Ok(())
}

pub fn license(db: &Db, cmd: LicenseCommand) -> Result<(), CliError> {
    match cmd {
        LicenseCommand::Add {
            product,
            seats,
            expires,
            key,
        } => {
            let expires_at = expires
                .as_deref()
                .map(manage::parse_expiry)
                .transpose()
                .map_err(manage_error)?;
            let id = manage::add_license(
                db,
                ACTOR,
                &NewLicense {
                    product: &product,
                    seats,
                    expires_at,
                    key: key.as_deref(),
                },
            )
            .map_err(manage_error)?;
            outln!("{id}");
        }
        LicenseCommand::List => print_licenses(db)?,
        LicenseCommand::Key(cmd) => license_key(db, cmd)?,
        LicenseCommand::Import { file } => import_entitlement(db, &file)?,
        LicenseCommand::Set {
            license,
            seats,
            expires,
            max_offline,
        } => {
            if seats.is_none() && expires.is_none() && max_offline.is_none() {
                return Err(CliError::Usage(
                    "give --seats, --expires or --max-offline".into(),
                ));
            }
            if let Some(limit) = max_offline {
                let secs = match limit.as_str() {
                    "default" => None,
                    text => Some(
                        humantime::parse_duration(text)
                            .map_err(|e| {
                                CliError::Usage(format!(
                                    "--max-offline {text:?}: {e}; use e.g. 3d or 12h"
                                ))
                            })?
                            .as_secs() as i64,
                    ),
                };
                let id =
                    manage::set_max_offline(db, ACTOR, &license, secs).map_err(manage_error)?;
                match secs {
                    Some(s) => outln!(
                        "license {id}: new leases work at most {} without reaching the gateway",
                        crate::config::format_duration(std::time::Duration::from_secs(s as u64))
                    ),
                    None => outln!("license {id}: leases follow the [lease] windows"),
                }
            }
            if seats.is_some() || expires.is_some() {
                let expires_at = expiry_change(expires.as_deref())?;
                let summary = manage::set_license(db, ACTOR, &license, seats, expires_at)
                    .map_err(manage_error)?;
                outln!("license {license} changed");
                print_summary(&summary);
            }
        }
    }
    Ok(())
}

fn license_key(db: &Db, cmd: KeyCommand) -> Result<(), CliError> {
    use crate::licensing::keys;
    let now = now_unix();
    match cmd {
        KeyCommand::Create {
            license,
            sublicense,
            devices,
            name,
        } => {
            let issued = keys::create(
                db,
                ACTOR,
                &keys::NewKeyRequest {
                    license: &license,
                    sublicense: sublicense.as_deref(),
                    name: name.as_deref(),
                    devices,
                },
                now,
            )
            .map_err(manage_error)?;
            outln!(
                "created license key {} ({}) for up to {} devices; it is shown only now:",
                issued.key.id,
                issued.key.name,
                issued.key.device_limit
            );
            outln!("{}", issued.secret);
        }
        KeyCommand::List { license } => print_keys(db, license.as_deref())?,
        KeyCommand::Devices { key } => print_key_devices(db, &key)?,
        KeyCommand::Set { key, devices, name } => {
            if devices.is_none() && name.is_none() {
                return Err(CliError::Usage("give --devices or --name".into()));
            }
            let k =
                keys::set(db, ACTOR, &key, name.as_deref(), devices, now).map_err(manage_error)?;
            outln!(
                "license key {} ({}): at most {} devices, {} in use",
                k.id,
                k.name,
                k.device_limit,
                k.devices
            );
        }
        KeyCommand::Rotate { key } => {
            let issued = keys::rotate(db, ACTOR, &key, now).map_err(manage_error)?;
            outln!(
                "rotated license key {} ({}); its {} device(s) keep their seats; the new key is shown only now:",
                issued.key.id,
                issued.key.name,
                issued.key.devices
            );
            outln!("{}", issued.secret);
        }
        KeyCommand::Revoke { key } => {
            let done = keys::revoke(db, ACTOR, &key, now).map_err(manage_error)?;
            outln!(
                "revoked license key {} ({}) and its {} device(s); they are refused at their next renewal (REVOKED){}",
                done.key.id,
                done.key.name,
                done.devices,
                if done.seated > 0 {
                    format!("; {} waiting user(s) received the freed seats", done.seated)
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(())
}

/// `license key list`.
fn print_keys(db: &Db, license: Option<&str>) -> Result<(), CliError> {
    use crate::licensing::keys;
    let list = keys::list(db, license).map_err(manage_error)?;
    if list.is_empty() {
        outln!("no license keys");
    }
    let names = db.read(store::catalog).map_err(runtime)?;
    for k in list {
        let pool = match &k.sublicense_id {
            Some(s) => names
                .sublicense(s)
                .map_or(s.clone(), |s| format!("sublicense {}", s.name)),
            None => format!("{} primary pool", k.license_id),
        };
        let state = match k.revoked_at {
            Some(t) => format!("revoked {}", rfc3339(t)),
            None => "active".into(),
        };
        outln!(
            "{}\t{}\t…{}\t{}/{} devices\t{pool}\t{state}",
            k.id,
            k.name,
            k.hint,
            k.devices,
            k.device_limit
        );
    }
    Ok(())
}

/// `license key devices`.
fn print_key_devices(db: &Db, key: &str) -> Result<(), CliError> {
    use crate::licensing::keys;
    let devices = db
        .read(|tx| {
            let k = keys::find_key(tx, key)?;
            Ok::<_, manage::ManageError>(store::devices_of_key(tx, &k.id)?)
        })
        .map_err(manage_error)?;
    if devices.is_empty() {
        outln!("no devices");
    }
    for d in devices {
        outln!(
            "{}\t{}\t{}\tlease until {}\tlast seen {}",
            d.id,
            d.name,
            d.os,
            rfc3339(d.lease_expires_at),
            rfc3339(d.last_seen_at)
        );
    }
    Ok(())
}

pub fn sublicense(db: &Db, cmd: SublicenseCommand) -> Result<(), CliError> {
    match cmd {
        SublicenseCommand::Add {
            license,
            name,
            seats,
            reserved,
            dynamic: _,
            expires,
        } => {
            let expires_at = expires
                .as_deref()
                .map(manage::parse_expiry)
                .transpose()
                .map_err(manage_error)?;
            let id = manage::add_sublicense(
                db,
                ACTOR,
                &NewSublicense {
                    license: &license,
                    name: &name,
                    seats,
                    reserved,
                    expires_at,
                },
            )
            .map_err(manage_error)?;
            outln!("{id}");
        }
        SublicenseCommand::Set {
            sublicense,
            seats,
            expires,
        } => {
            let expires_at = expiry_change(expires.as_deref())?;
            let summary = manage::set_sublicense(db, ACTOR, &sublicense, seats, expires_at)
                .map_err(manage_error)?;
            outln!("sublicense {sublicense} changed");
            print_summary(&summary);
        }
        SublicenseCommand::Remove { sublicense } => {
            manage::remove_sublicense(db, ACTOR, &sublicense).map_err(manage_error)?;
            outln!("sublicense {sublicense} removed");
        }
    }
    Ok(())
}

/// `--expires`: absent (no change), `never`, or a date.
fn expiry_change(expires: Option<&str>) -> Result<Option<Option<i64>>, CliError> {
    Ok(match expires {
        None => None,
        Some("never") => Some(None),
        Some(d) => Some(Some(manage::parse_expiry(d).map_err(manage_error)?)),
    })
}

pub fn usage(db: &Db, cmd: UsageCommand) -> Result<(), CliError> {
    let UsageCommand::Report {
        month,
        out,
        include_users,
    } = cmd;
    let report = crate::licensing::usage::report(db, &month, include_users, ACTOR, now_unix())
        .map_err(|e| match e {
            crate::licensing::usage::UsageError::Db(e) => runtime(e),
            other => CliError::Usage(other.to_string()),
        })?;
    std::fs::write(&out, format!("{report}\n"))
        .map_err(|e| CliError::Usage(format!("{}: {e}", out.display())))?;
    outln!(
        "usage report for {month} written to {} ({} bytes){}",
        out.display(),
        report.len() + 1,
        if include_users {
            ", with user names"
        } else {
            ", without personal data"
        }
    );
    Ok(())
}

/// Writes a registration request for the vendor and says what it names.
pub fn register(db: &Db, public_url: &str, out: &std::path::Path) -> Result<(), CliError> {
    let hostname = crate::public_url::host_name().unwrap_or_default();
    let (request, thumbprint) =
        crate::licensing::entitlements::registration_request(db, public_url, &hostname, now_unix())
            .map_err(runtime)?;
    std::fs::write(out, format!("{request}\n"))
        .map_err(|e| CliError::Usage(format!("{}: {e}", out.display())))?;
    outln!("registration request written to {}", out.display());
    outln!("this gateway's instance: {thumbprint}");
    outln!(
        "send the file to the vendor; import the entitlement they return with `seatgate license import FILE`"
    );
    Ok(())
}

/// One line about a license's entitlement: whose, which serial, and how long it runs.
fn entitlement_line(e: &entitlement::Entitlement, now: i64) -> String {
    let days_left = (e.ends_at - now).div_euclid(86_400);
    format!(
        "{kind} {id} serial {serial}: {customer}, {edition}, {seats} seats{devices}, ends {ends} ({days_left} days left){bound}",
        kind = if e.trial {
            "trial entitlement"
        } else {
            "entitlement"
        },
        id = e.entitlement_id,
        serial = e.serial,
        customer = e.customer_name,
        edition = e.edition,
        seats = e.seats,
        devices = if e.device_seats > 0 {
            format!(" and {} device seats", e.device_seats)
        } else {
            String::new()
        },
        ends = rfc3339(e.ends_at),
        bound = if e.instance.is_some() {
            ", bound to this gateway"
        } else {
            ""
        },
    )
}

/// Entitlement files are a few KB; anything larger is not one.
const MAX_ENTITLEMENT_FILE: u64 = 64 * 1024;

fn import_entitlement(db: &Db, file: &std::path::Path) -> Result<(), CliError> {
    use crate::licensing::entitlements;
    let too_large = std::fs::metadata(file)
        .map(|m| m.len() > MAX_ENTITLEMENT_FILE)
        .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
    if too_large {
        return Err(CliError::Usage(format!(
            "{} is larger than {MAX_ENTITLEMENT_FILE} bytes; it is not an entitlement file",
            file.display()
        )));
    }
    let token = std::fs::read_to_string(file)
        .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
    let (imported, summary) = entitlements::import(
        db,
        &token,
        &entitlements::trusted_keys(false),
        ACTOR,
        now_unix(),
    )
    .map_err(|e| {
        // The sentence, and the reason code the API would answer with.
        let message = e.to_string();
        let code = crate::domain::problem::Problem::from(e).reason.code();
        CliError::Runtime(format!("{message} ({code})"))
    })?;
    outln!("{imported}");
    print_summary(&summary);
    Ok(())
}

fn print_licenses(db: &Db) -> Result<(), CliError> {
    let now = now_unix();
    let (licenses, pools, entitlements) = db
        .read(|tx| {
            Ok::<_, rusqlite::Error>((
                store::licenses(tx)?,
                crate::db::portal::pool_usage(tx, now)?,
                crate::db::entitlements::entitlements(tx)?,
            ))
        })
        .map_err(runtime)?;
    if licenses.is_empty() {
        outln!("no licenses; add one with `seatgate license add --product NAME --seats N`");
    }
    let expiry = |t: Option<i64>| {
        t.map_or_else(
            || "no expiry".to_string(),
            |t| format!("expires {}", rfc3339(t)),
        )
    };
    for l in &licenses {
        outln!(
            "{}\t{}\t{} seats\t{}",
            l.id,
            l.product,
            l.seats,
            expiry(l.expires_at)
        );
        match entitlements.iter().find(|e| e.license_id == l.id) {
            Some(e) => outln!("    {}", entitlement_line(&e.claims, now)),
            None => outln!("    not from a vendor entitlement (entered by hand)"),
        }
        if let Some(secs) = l.max_offline_secs {
            outln!(
                "    Macs work at most {} without reaching the gateway",
                crate::config::format_duration(std::time::Duration::from_secs(secs as u64))
            );
        }
        for p in pools.iter().filter(|p| p.license_id == l.id) {
            let over = p.seats.used - p.seats.capacity;
            let figures = format!(
                "{} used, {} pending, {} free of {}{}",
                p.seats.used,
                p.pending,
                p.seats.free,
                p.seats.capacity,
                if over > 0 {
                    format!(" (over by {over}: none handed out until it is under)")
                } else {
                    String::new()
                }
            );
            let figures = if p.key_devices > 0 {
                format!("{figures}; {} held by license-key devices", p.key_devices)
            } else {
                figures
            };
            match &p.sublicense_id {
                None if p.seats.used_by_dynamic > 0 => outln!(
                    "    primary pool: {figures} ({} used through dynamic sublicenses)",
                    p.seats.used_by_dynamic
                ),
                None => outln!("    primary pool: {figures}"),
                Some(id) => outln!(
                    "    {id} {} ({}, {}): {figures}",
                    p.name,
                    if p.reserved { "reserved" } else { "dynamic" },
                    expiry(p.expires_at),
                ),
            }
        }
    }
    Ok(())
}

pub fn explain(db: &Db, config: &Config, email: &str, json: bool) -> Result<(), CliError> {
    let bounds = crate::licensing::policies::bounds(&config.lease);
    // Not an email: a license key (id, name or the key) or a key device.
    let explained = if email.contains('@') {
        None
    } else {
        // Ids are lower case; a key or a key's name is matched as typed.
        let id = email.trim().to_ascii_lowercase();
        let as_id = if id.starts_with("dev-") || id.starts_with("key-") {
            crate::licensing::keys::explain(db, &id, bounds, now_unix())
                .map_err(|e| CliError::Runtime(e.message))?
        } else {
            None
        };
        match as_id {
            Some(k) => Some(k),
            None => crate::licensing::keys::explain(db, email, bounds, now_unix())
                .map_err(|e| CliError::Runtime(e.message))?,
        }
    };
    if explained.is_none() && !email.contains('@') {
        return Err(CliError::Usage(format!(
            "{email:?} is not an email address, and neither a license key of this gateway nor one of its key devices (for a device that moved to its person, explain that person's email)"
        )));
    }
    if let Some(k) = explained {
        if json {
            outln!("{}", serde_json::to_string_pretty(&k).map_err(runtime)?);
        } else {
            print!(
                "{}",
                super::terminal_safe(&crate::licensing::keys::render(&k))
            );
        }
        return Ok(());
    }
    let e = crate::licensing::explain::explain(
        db,
        email,
        config.lease.device_limit,
        crate::licensing::policies::bounds(&config.lease),
        now_unix(),
    )
    .map_err(|e| CliError::Runtime(e.message))?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&e).map_err(runtime)?);
    } else {
        print!(
            "{}",
            super::terminal_safe(&crate::licensing::explain::render(&e))
        );
    }
    Ok(())
}

pub fn audit(
    db: &Db,
    user: Option<&str>,
    action: Option<&str>,
    limit: u32,
) -> Result<(), CliError> {
    let entries = db
        .read(|tx| {
            let user_id = match user {
                Some(u) if u.contains('@') => {
                    let key = crate::domain::scim::resource::fold(u);
                    crate::db::directory::user_by_name_key(tx, &key)?
                        .or(crate::db::directory::user_by_email_key(tx, &key)?)
                        .map(|u| u.id)
                        .or(Some(u.to_string()))
                }
                other => other.map(str::to_string),
            };
            store::audit_entries(tx, user_id.as_deref(), action, limit)
        })
        .map_err(runtime)?;
    if entries.is_empty() {
        outln!("no audit entries");
    }
    for e in entries {
        outln!(
            "{} {} {} user={} {} {} {}",
            rfc3339(e.at),
            e.actor,
            e.action,
            e.user_id.as_deref().unwrap_or("-"),
            e.subject.as_deref().unwrap_or("-"),
            e.reason.as_deref().unwrap_or(""),
            e.detail.as_deref().unwrap_or("")
        );
    }
    Ok(())
}
