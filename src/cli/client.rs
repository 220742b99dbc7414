//! `seatgate client …`: the reference client, and `seatgate device …` for admins.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::{CliError, runtime};
use crate::client::{Client, ClientError, verify_lease};
use crate::clock::{now_unix, rfc3339};

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Activate this machine: with --email, prints the address to open in a browser,
    /// waits for the sign-in and stores the lease; with --key, a license key's per-device
    /// seat and the lease at once, no sign-in
    #[command(group(clap::ArgGroup::new("how").args(["email", "key"])))]
    Activate {
        /// The gateway, e.g. https://seatgate.example.com:8443 [default: the profile's
        /// ServerURL]
        #[arg(long)]
        server: Option<String>,
        /// Your work email: activate with single sign-on
        #[arg(long)]
        email: Option<String>,
        /// A license key from your IT administrator (SGK-…): activate without signing in
        #[arg(long, value_name = "KEY")]
        key: Option<String>,
        /// A CA certificate to trust (the gateway's local CA, tls/ca.pem) [default: the
        /// profile's ServerCACertificate]
        #[arg(long, value_name = "FILE")]
        ca_cert: Option<PathBuf>,
        /// The device name the gateway shows [default: this machine's host name]
        #[arg(long)]
        name: Option<String>,
    },
    /// Renew the lease (proof of possession of the device key)
    Renew {
        /// Report this device's virtual machines with the renewal: a JSON file holding an
        /// array of {uuid, name, guest_os, image: {name, version}, encrypted, expires_at,
        /// last_started_at}
        #[arg(long, value_name = "FILE")]
        vms: Option<PathBuf>,
        /// Report the app version this Mac runs (the portal's Updates page counts them)
        #[arg(long, value_name = "VERSION")]
        app_version: Option<String>,
    },
    /// Fetch this device's policy (signed by the gateway), verify it and print each setting;
    /// unchanged policies are not sent again (ETag)
    Policy,
    /// Show this device's update branch (from its policy, else the profile) and the app
    /// versions the gateway offers on it
    Updates,
    /// List the golden VM images assigned to this device (a listing the gateway signs)
    Images,
    /// Download an assigned image, resuming an interrupted download, and verify its SHA-256
    ImageDownload {
        /// The image's name
        image: String,
        /// A version other than the one assigned (default: the assigned one)
        #[arg(long)]
        version: Option<String>,
        /// Where to save it [default: NAME-VERSION.img in the current directory]
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Show the device, the lease and whether it verifies now
    Status,
    /// Deactivate this device at the gateway and forget its lease
    Deactivate,
    /// Verify a lease offline against a JWKS (from --jwks FILE, else the gateway): this
    /// client's stored lease, or FILE; once activated, also that it was issued by the
    /// gateway this client activated against and is bound to this device's key
    Verify {
        file: Option<PathBuf>,
        #[arg(long, value_name = "FILE")]
        jwks: Option<PathBuf>,
    },
}

/// Where the client keeps its key and lease: `--state-dir`, else `SEATGATE_CLIENT_DIR`, else
/// `~/.seatgate-client`.
fn state_dir(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os("SEATGATE_CLIENT_DIR").map(PathBuf::from))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".seatgate-client")))
        .unwrap_or_else(|| PathBuf::from(".seatgate-client"))
}

fn client_error(e: ClientError) -> CliError {
    match e {
        ClientError::Usage(m) => CliError::Usage(m),
        ClientError::Failed(m) => CliError::Runtime(m),
        e @ ClientError::ReportRefused(_) => CliError::Runtime(e.to_string()),
    }
}

/// Where macOS puts the settings an MDM profile manages for the client app.
const MANAGED_PREFERENCES: &str = "/Library/Managed Preferences/com.seatgate.client.plist";

/// The managed settings: `--config FILE`, else the managed preferences macOS keeps for the
/// app, when present.
fn managed_settings(config: Option<&Path>) -> Result<Option<plist::Dictionary>, CliError> {
    let path = match config {
        Some(p) => p.to_path_buf(),
        None if Path::new(MANAGED_PREFERENCES).exists() => PathBuf::from(MANAGED_PREFERENCES),
        None => return Ok(None),
    };
    let bytes = crate::deploy::profile::read_bounded(&path, 1024 * 1024)
        .map_err(|why| CliError::Usage(format!("cannot read {}: {why}", path.display())))?;
    let settings = crate::deploy::profile::read_preferences(&bytes)
        .map_err(|why| CliError::Usage(format!("{}: {why}", path.display())))?;
    // What the client uses must have the right type: a wrong one is an error, not ignored.
    for key in ["ServerURL", "LicenseKey", "ActivationMethod"] {
        if settings.get(key).is_some_and(|v| v.as_string().is_none()) {
            return Err(CliError::Usage(format!(
                "{}: {key} must be text",
                path.display()
            )));
        }
    }
    if settings
        .get("ServerCACertificate")
        .is_some_and(|v| v.as_data().is_none())
    {
        return Err(CliError::Usage(format!(
            "{}: ServerCACertificate must be data (the certificate, DER)",
            path.display()
        )));
    }
    if let Some(url) = settings.get("ServerURL").and_then(plist::Value::as_string) {
        let ok = url::Url::parse(url).is_ok_and(|u| {
            matches!(u.scheme(), "https" | "http")
                && u.host().is_some()
                && u.username().is_empty()
                && u.password().is_none()
                && u.query().is_none()
                && u.fragment().is_none()
                && u.as_str().trim_end_matches('/') == url.trim_end_matches('/')
        });
        if !ok {
            return Err(CliError::Usage(format!(
                "{}: ServerURL must be the gateway's address, such as https://gateway.example.com:8443 (http:// only for a demo), without user name, password, query or spaces",
                path.display()
            )));
        }
    }
    Ok(Some(settings))
}

/// The CA a profile carries, written where the client can trust it from.
fn profile_ca(dir: &Path, settings: &plist::Dictionary) -> Result<Option<PathBuf>, CliError> {
    let Some(der) = settings
        .get("ServerCACertificate")
        .and_then(plist::Value::as_data)
    else {
        return Ok(None);
    };
    let pem = crate::deploy::profile::certificate_pem(der).map_err(|_| {
        CliError::Usage("the profile's ServerCACertificate is not a certificate".into())
    })?;
    crate::datadir::ensure_private_dir(dir).map_err(runtime)?;
    let path = dir.join("ca-from-profile.pem");
    crate::datadir::write_private_file(&path, &pem).map_err(runtime)?;
    Ok(Some(path))
}

pub fn run(
    state: Option<PathBuf>,
    config: Option<&Path>,
    cmd: ClientCommand,
) -> Result<(), CliError> {
    let dir = state_dir(state);
    match cmd {
        ClientCommand::Activate {
            server,
            email,
            key,
            ca_cert,
            name,
        } => activate(
            &dir,
            config,
            Activation {
                server,
                email,
                key,
                ca_cert,
                name,
            },
        )?,
        ClientCommand::Renew { vms, app_version } => {
            let vms = vms.map(|f| read_vms(&f)).transpose()?;
            let client = open_activated(&dir)?;
            let mut report = serde_json::Map::new();
            if let Some(vms) = vms {
                report.insert("vms".into(), vms);
            }
            if let Some(v) = app_version {
                report.insert("app_version".into(), serde_json::Value::String(v));
            }
            let claims = match report.is_empty() {
                false => {
                    let report = serde_json::Value::Object(report);
                    let (claims, refused) =
                        client.renew_reporting(&report).map_err(client_error)?;
                    if let Some(why) = refused {
                        eprintln!(
                            "warning: the VM report was refused ({why}); the lease was renewed without it"
                        );
                    }
                    claims
                }
                true => client.renew(None).map_err(client_error)?,
            };
            outln!(
                "renewed: lease {} valid offline until {}",
                claims["jti"].as_str().unwrap_or(""),
                rfc3339(claims["exp"].as_i64().unwrap_or(0))
            );
        }
        ClientCommand::Policy => policy(&dir)?,
        ClientCommand::Images => images(&dir)?,
        ClientCommand::Updates => {
            let client = open_activated(&dir)?;
            let feed = client.updates().map_err(client_error)?;
            outln!(
                "update branch {} (from the {}); appcast {}",
                feed["branch"].as_str().unwrap_or(""),
                feed["branch_from"].as_str().unwrap_or(""),
                feed["appcast"].as_str().unwrap_or("")
            );
            for item in feed["items"].as_array().into_iter().flatten() {
                outln!(
                    "{}  {}  macOS {}+  {} bytes",
                    item["version"].as_str().unwrap_or(""),
                    item["branch"].as_str().unwrap_or(""),
                    item["min_os"].as_str().unwrap_or(""),
                    item["size"]
                );
            }
        }
        ClientCommand::ImageDownload {
            image,
            version,
            out,
        } => image_download(&dir, &image, version.as_deref(), out)?,
        ClientCommand::Status => status(&dir)?,
        ClientCommand::Deactivate => {
            let client = open_activated(&dir)?;
            client.deactivate().map_err(client_error)?;
            outln!("deactivated");
        }
        ClientCommand::Verify { file, jwks } => verify(&dir, file, jwks)?,
    }
    Ok(())
}

/// What `client activate` was given.
struct Activation {
    server: Option<String>,
    email: Option<String>,
    key: Option<String>,
    ca_cert: Option<PathBuf>,
    name: Option<String>,
}

/// `client activate`: by SSO or with a key, what is not given taken from the profile.
fn activate(dir: &Path, config: Option<&Path>, given: Activation) -> Result<(), CliError> {
    let Activation {
        server,
        email,
        key,
        ca_cert,
        name,
    } = given;
    let settings = managed_settings(config)?;
    let setting = |k: &str| {
        settings
            .as_ref()
            .and_then(|s| s.get(k))
            .and_then(plist::Value::as_string)
            .map(str::to_string)
    };
    let server = server.or_else(|| setting("ServerURL")).ok_or_else(|| {
        CliError::Usage("give --server, or --config with a configuration profile".into())
    })?;
    let ca_cert = match (ca_cert, &settings) {
        (Some(c), _) => Some(c),
        (None, Some(s)) => profile_ca(dir, s)?,
        (None, None) => None,
    };
    let key = key.or_else(|| {
        if email.is_none() {
            setting("LicenseKey")
        } else {
            None
        }
    });
    if email.is_none() && key.is_none() {
        return Err(CliError::Usage(
            match setting("ActivationMethod").as_deref() {
                Some("key") => "this Mac's profile activates with a license key: give --key".into(),
                _ => "give --email (single sign-on) or --key (a license key)".into(),
            },
        ));
    }
    if let Some(e) = &email {
        let domains: Vec<String> = settings
            .as_ref()
            .and_then(|s| s.get("EmailDomains"))
            .and_then(plist::Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(plist::Value::as_string)
                    .map(str::to_lowercase)
                    .collect()
            })
            .unwrap_or_default();
        let domain = e
            .rsplit_once('@')
            .map(|(_, d)| d.to_lowercase())
            .unwrap_or_default();
        if !domains.is_empty() && !domains.contains(&domain) {
            eprintln!(
                "note: {e} is not at one of your organization's email domains ({})",
                domains.join(", ")
            );
        }
    }
    let client = Client::open(dir, ca_cert.as_deref()).map_err(client_error)?;
    let name = name
        .or_else(crate::public_url::host_name)
        .unwrap_or_else(|| "this machine".into());
    let (Some(email), None) = (email, key.as_deref()) else {
        let key = key.unwrap_or_default();
        let claims = client
            .activate_with_key(&server, &key, &name, ca_cert.as_deref())
            .map_err(client_error)?;
        outln!(
            "activated: {} with license key {} ({}), a per-device seat; renew after {}, valid offline until {}",
            claims["device"].as_str().unwrap_or(""),
            claims["license_key"].as_str().unwrap_or(""),
            claims["product"].as_str().unwrap_or(""),
            rfc3339(claims["renew_after"].as_i64().unwrap_or(0)),
            rfc3339(claims["exp"].as_i64().unwrap_or(0))
        );
        return Ok(());
    };
    let claims = client
        .activate(
            &server,
            &email,
            &name,
            ca_cert.as_deref(),
            &mut std::io::stdout(),
        )
        .map_err(client_error)?;
    outln!(
        "activated: {} for {} ({}), renew after {}, valid offline until {}",
        claims["device"].as_str().unwrap_or(""),
        claims["email"].as_str().unwrap_or(""),
        claims["product"].as_str().unwrap_or(""),
        rfc3339(claims["renew_after"].as_i64().unwrap_or(0)),
        rfc3339(claims["exp"].as_i64().unwrap_or(0))
    );
    Ok(())
}

fn status(dir: &Path) -> Result<(), CliError> {
    let client = open_activated(dir)?;
    let state = client
        .state()
        .ok_or_else(|| CliError::Usage("not activated".into()))?;
    outln!("server     {}", state.server);
    match &state.license_key {
        Some(key) => outln!("seat       per-device, license key {key}"),
        None => outln!("email      {}", state.email),
    }
    outln!(
        "device     {} (key {})",
        state.device_id.as_deref().unwrap_or("none"),
        client.thumbprint()
    );
    match std::fs::read_to_string(client.lease_path()) {
        Ok(lease) => {
            let verdict = client.jwks(&state.server).and_then(|jwks| {
                verify_lease(&lease, &jwks, now_unix(), Some(&client.binding(&state)))
            });
            match verdict {
                Ok(c) => outln!(
                    "lease      {} valid; renew after {}, offline until {}",
                    c["jti"].as_str().unwrap_or(""),
                    rfc3339(c["renew_after"].as_i64().unwrap_or(0)),
                    rfc3339(c["exp"].as_i64().unwrap_or(0))
                ),
                Err(e) => outln!("lease      does not verify: {e}"),
            }
        }
        Err(_) => outln!("lease      none"),
    }
    if let Some(r) = &state.last_refusal {
        outln!(
            "renewal    REFUSED by the server on {}: {} ({}); the lease is not renewed and stops working when it expires",
            rfc3339(r.at),
            r.message,
            r.reason
        );
    }
    Ok(())
}

/// Verifies a lease offline; the issuer and device key too when this client is activated.
fn verify(dir: &Path, file: Option<PathBuf>, jwks: Option<PathBuf>) -> Result<(), CliError> {
    // Only an activated state directory is opened: verifying a lease file with
    // --jwks must not create a device key where there was none.
    let activated = match read_state(dir) {
        Some(state) => Some((open_activated(dir)?, state)),
        None => None,
    };
    let file = match (file, &activated) {
        (Some(file), _) => file,
        (None, Some((client, _))) => client.lease_path(),
        (None, None) => {
            return Err(CliError::Usage(
                "give a lease FILE, or activate this client first".into(),
            ));
        }
    };
    let lease = std::fs::read_to_string(&file)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
    let jwks = match (jwks, &activated) {
        (Some(path), _) => serde_json::from_slice(&std::fs::read(&path).map_err(runtime)?)
            .map_err(|e| CliError::Usage(format!("{} is not a JWKS: {e}", path.display())))?,
        (None, Some((client, state))) => client.jwks(&state.server).map_err(client_error)?,
        (None, None) => {
            return Err(CliError::Usage(
                "give --jwks FILE, or activate first".into(),
            ));
        }
    };
    let binding = activated
        .as_ref()
        .map(|(client, state)| client.binding(state));
    if binding.is_none() {
        eprintln!(
            "note: {} holds no activated client, so the lease's issuer and device key were not checked",
            dir.display()
        );
    }
    let claims =
        verify_lease(lease.trim(), &jwks, now_unix(), binding.as_ref()).map_err(client_error)?;
    outln!(
        "{}",
        serde_json::to_string_pretty(&claims).map_err(runtime)?
    );
    Ok(())
}

/// The client's state, if it was activated, without creating anything.
fn read_state(dir: &std::path::Path) -> Option<crate::client::State> {
    std::fs::read(dir.join("state.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

fn open_activated(dir: &std::path::Path) -> Result<Client, CliError> {
    let ca = read_state(dir).and_then(|s| s.ca_cert);
    Client::open(dir, ca.as_deref()).map_err(client_error)
}

/// A VM inventory file: JSON, at most 4 MiB, a regular file.
fn read_vms(path: &Path) -> Result<serde_json::Value, CliError> {
    let text = crate::deploy::profile::read_bounded(path, 4 * 1024 * 1024)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_slice(&text)
        .map_err(|e| CliError::Usage(format!("{} is not JSON: {e}", path.display())))
}

/// `client policy`: fetch, verify, keep and print this device's policy.
fn images(dir: &Path) -> Result<(), CliError> {
    let client = open_activated(dir)?;
    let listed = client.images().map_err(client_error)?;
    if listed.is_empty() {
        outln!("no images are assigned to this device");
    }
    for e in &listed {
        outln!(
            "{}  {}  {} bytes  sha256 {}{}",
            e["name"].as_str().unwrap_or(""),
            e["version"].as_str().unwrap_or(""),
            e["size"],
            e["sha256"].as_str().unwrap_or(""),
            if e["pinned"].as_bool() == Some(true) {
                "  (pinned)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

fn image_download(
    dir: &Path,
    image: &str,
    version: Option<&str>,
    out: Option<PathBuf>,
) -> Result<(), CliError> {
    let client = open_activated(dir)?;
    let out = match out {
        Some(o) => o,
        None => {
            let listed = client.images().map_err(client_error)?;
            let v = listed
                .iter()
                .find(|e| {
                    e["name"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case(image))
                })
                .and_then(|e| e["version"].as_str())
                .unwrap_or("image");
            let safe: String = format!("{image}-{}", version.unwrap_or(v))
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            PathBuf::from(format!("{safe}.img"))
        }
    };
    let d = client
        .download_image(image, version, &out)
        .map_err(client_error)?;
    if d.resumed_from > 0 {
        outln!("resumed after {} bytes already downloaded", d.resumed_from);
    }
    outln!(
        "saved {} ({} bytes), sha256 {} verified",
        d.path.display(),
        d.size,
        d.sha256
    );
    Ok(())
}

fn policy(dir: &Path) -> Result<(), CliError> {
    let client = open_activated(dir)?;
    let fetched = client.policy().map_err(client_error)?;
    let claims = &fetched.claims;
    let hash = claims["policy"].as_str().unwrap_or("");
    outln!(
        "policy {hash} ({}), verified against the gateway's keys",
        if fetched.changed {
            "fetched"
        } else {
            "unchanged"
        }
    );
    let lease_policy = std::fs::read_to_string(client.lease_path())
        .ok()
        .and_then(|t| crate::domain::jose::Jws::parse(&t).ok())
        .and_then(|j| j.claims["policy"].as_str().map(str::to_string));
    if lease_policy.as_deref().is_some_and(|p| p != hash) {
        outln!("note: the lease names an older policy; the next renewal brings it up to date");
    }
    let settings = &claims["settings"];
    for (name, label) in crate::domain::policy::SETTINGS {
        outln!(
            "  {label}: {}",
            crate::domain::policy::describe_value(name, &settings[*name])
        );
    }
    Ok(())
}
