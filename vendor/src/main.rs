//! `seatgate-vendor`: the vendor's side of seatgate licensing. It creates vendor keys,
//! mints entitlements from a TOML description (bound to a gateway through its
//! registration request, or unbound), and verifies registration requests and usage
//! reports. It is built in the workspace for tests and never shipped in customer packages.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use entitlement::registration::Request;
use entitlement::usage::Report;
use entitlement::{Entitlement, KeyPair, TrustedKey};
use serde::Deserialize;

#[derive(Parser)]
#[command(
    name = "seatgate-vendor",
    version,
    about = "The vendor's tool for seatgate licenses"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Creates a vendor signing key (PKCS#8, mode 0600) and prints its public half, to be
    /// compiled into seatgate's trusted key list.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Mints an entitlement from a TOML description and prints it (or writes --out).
    Mint {
        /// The description: customer_id, customer_name, entitlement_id, serial, product,
        /// edition, seats, device_seats, starts (YYYY-MM-DD), ends (YYYY-MM-DD), trial,
        /// max_offline_grace_days, per_device_keys, gateways, instance.
        description: PathBuf,
        /// The vendor key to sign with.
        #[arg(long, required_unless_present = "dev", requires = "kid")]
        key: Option<PathBuf>,
        /// The key's id, as seatgate's trusted key list names it.
        #[arg(long)]
        kid: Option<String>,
        /// Sign with the development key (trusted only by test builds and `seatgate demo`).
        #[arg(long, conflicts_with = "key")]
        dev: bool,
        /// Bind the entitlement to the gateway that wrote this registration request.
        #[arg(long)]
        request: Option<PathBuf>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Verifies a gateway's registration request and prints what it asks for.
    VerifyRequest { file: PathBuf },
    /// Verifies a gateway's usage report and prints its figures.
    VerifyReport { file: PathBuf },
    /// Verifies an entitlement against the development key or a given public key.
    Inspect {
        file: PathBuf,
        /// A vendor public key (base64url) and its id, instead of the development key.
        #[arg(long, requires = "kid")]
        public_key: Option<String>,
        #[arg(long)]
        kid: Option<String>,
    },
}

/// The TOML description of an entitlement.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Description {
    customer_id: String,
    customer_name: String,
    entitlement_id: String,
    serial: u32,
    product: String,
    edition: String,
    seats: u32,
    #[serde(default)]
    device_seats: u32,
    starts: String,
    ends: String,
    #[serde(default)]
    trial: bool,
    #[serde(default = "default_grace")]
    max_offline_grace_days: u32,
    #[serde(default)]
    per_device_keys: bool,
    #[serde(default = "one")]
    gateways: u32,
    #[serde(default)]
    instance: Option<String>,
}

fn default_grace() -> u32 {
    30
}

fn one() -> u32 {
    1
}

/// Prints a line; a closed pipe (`| head`) ends the tool quietly, as SIGPIPE would.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout().lock(), $($arg)*).is_err() {
            std::process::exit(141);
        }
    }};
}

/// Text from a file, safe to print: control and invisible characters escaped, so a
/// forged request or report cannot rewrite the terminal or fake lines.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| {
            if entitlement::entitlement::is_hidden(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seatgate-vendor: {}", clean(&e));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Keygen { out } => keygen(&out),
        Command::Mint {
            description,
            key,
            kid,
            dev,
            request,
            out,
        } => {
            let (key, kid) = if dev {
                (
                    entitlement::dev::signing_key(),
                    entitlement::dev::DEV_KEY.kid.to_string(),
                )
            } else {
                let path = key.ok_or("--key or --dev is required")?;
                let pkcs8 = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                let pair =
                    KeyPair::from_pkcs8(&pkcs8).map_err(|e| format!("{}: {e}", path.display()))?;
                (pair, kid.ok_or("--kid is required with --key")?)
            };
            let token = mint(&description, request.as_deref(), &key, &kid)?;
            write_or_print(out.as_deref(), &token)
        }
        Command::VerifyRequest { file } => {
            let r = Request::verify(&read(&file)?).map_err(|e| e.to_string())?;
            out!("instance: {}", clean(&r.instance));
            out!("gateway version: {}", clean(&r.gateway_version));
            out!("public URL: {}", clean(&r.public_url));
            out!("host name: {}", clean(&r.hostname));
            out!("created: {}", date_of(r.created_at));
            for held in &r.current {
                out!(
                    "holds: {} serial {}",
                    clean(&held.entitlement_id),
                    held.serial
                );
            }
            Ok(())
        }
        Command::VerifyReport { file } => {
            let r = Report::verify(&read(&file)?).map_err(|e| e.to_string())?;
            check_report(&r)?;
            out!("instance: {}", clean(&r.instance));
            out!("month: {}", clean(&r.month));
            for p in &r.products {
                let peak = p.days.iter().map(|d| d.peak_seats).max().unwrap_or(0);
                let activations: i64 = p.days.iter().map(|d| d.activations).sum();
                out!(
                    "{}: licensed {}, peak {peak}, activations {activations}, {} days",
                    clean(&p.product),
                    p.licensed_seats,
                    p.days.len()
                );
            }
            out!(
                "seat holders: {}",
                r.seat_holders
                    .as_ref()
                    .map_or("not included".to_string(), |h| h.len().to_string())
            );
            Ok(())
        }
        Command::Inspect {
            file,
            public_key,
            kid,
        } => {
            let trusted = match (public_key, kid) {
                (Some(pk), Some(kid)) => vec![TrustedKey {
                    kid: Box::leak(kid.into_boxed_str()),
                    public_key: Box::leak(pk.into_boxed_str()),
                }],
                _ => vec![entitlement::dev::DEV_KEY],
            };
            let e = Entitlement::verify(&read(&file)?, &trusted).map_err(|e| e.to_string())?;
            let text = serde_json::to_string_pretty(&e).map_err(|e| e.to_string())?;
            out!("{text}");
            Ok(())
        }
    }
}

/// What a genuine gateway never writes: the figures of a report that verified but was
/// signed by something else than seatgate (a customer holding its instance key can sign
/// anything, so the vendor also compares the figures with its own entitlements).
fn check_report(r: &Report) -> Result<(), String> {
    let month_ok = r.month.len() == 7
        && r.month.as_bytes()[4] == b'-'
        && r.month[..4]
            .bytes()
            .chain(r.month[5..].bytes())
            .all(|b| b.is_ascii_digit())
        && matches!(r.month[5..].parse::<u8>(), Ok(1..=12));
    if !month_ok {
        return Err(format!(
            "the report's month {:?} is not a month",
            clean(&r.month)
        ));
    }
    for p in &r.products {
        let negative = p.licensed_seats < 0
            || p.days
                .iter()
                .any(|d| d.peak_seats < 0 || d.activations < 0 || d.average_seats < 0.0);
        if negative {
            return Err(format!(
                "the report's figures for {} are negative",
                clean(&p.product)
            ));
        }
    }
    Ok(())
}

fn keygen(out: &Path) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(|e| format!("{}: {e}", out.display()))?;
    file.write_all(key.pkcs8())
        .map_err(|e| format!("{}: {e}", out.display()))?;
    out!("public key: {}", entitlement::jws::b64url(key.public_key()));
    out!("thumbprint: {}", key.thumbprint());
    Ok(())
}

fn mint(
    description: &Path,
    request: Option<&Path>,
    key: &KeyPair,
    kid: &str,
) -> Result<String, String> {
    let text = read(description)?;
    let d: Description =
        toml::from_str(&text).map_err(|e| format!("{}: {e}", description.display()))?;
    let instance = match request {
        Some(path) => {
            let r = Request::verify(&read(path)?).map_err(|e| e.to_string())?;
            if d.instance.as_ref().is_some_and(|i| *i != r.instance) {
                return Err("the description names another instance than the request".into());
            }
            Some(r.instance)
        }
        None => d.instance,
    };
    let claims = Entitlement {
        format: entitlement::entitlement::FORMAT,
        customer_id: d.customer_id,
        customer_name: d.customer_name,
        entitlement_id: d.entitlement_id,
        serial: d.serial,
        product: d.product,
        edition: d.edition,
        seats: d.seats,
        device_seats: d.device_seats,
        starts_at: day_start(&d.starts)?,
        // The end date is the last valid day: valid through its last second.
        ends_at: day_start(&d.ends)? + 86_400 - 1,
        trial: d.trial,
        max_offline_grace_days: d.max_offline_grace_days,
        per_device_keys: d.per_device_keys,
        gateways: d.gateways,
        instance,
        issued_at: now(),
    };
    claims.sign(key, kid).map_err(|e| e.to_string())
}

fn day_start(date: &str) -> Result<i64, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(date.trim(), &format)
        .map(|d| d.midnight().assume_utc().unix_timestamp())
        .map_err(|_| format!("{date:?} is not a date (YYYY-MM-DD)"))
}

fn date_of(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn read(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > entitlement::jws::MAX_TOKEN_BYTES as u64 {
        return Err(format!("{}: the file is too large", path.display()));
    }
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn write_or_print(out: Option<&Path>, token: &str) -> Result<(), String> {
    match out {
        Some(path) => std::fs::write(path, format!("{token}\n"))
            .map_err(|e| format!("{}: {e}", path.display())),
        None => {
            out!("{token}");
            Ok(())
        }
    }
}
