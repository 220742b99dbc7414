//! The command line: clap definitions and the dispatch of each command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// `println!` for everything the command line prints: text that came from the directory,
/// an IdP or a client has its control and invisible formatting characters escaped
/// ([`terminal_safe`]), so none of it can drive the admin's terminal.
macro_rules! outln {
    () => {
        $crate::cli::out_line("")
    };
    ($($arg:tt)*) => {
        $crate::cli::out_line(&$crate::cli::terminal_safe(&format!($($arg)*)))
    };
}

/// Writes a line to standard output. When the reader has gone (`seatgate audit | head`),
/// the command ends quietly, as Unix tools do, instead of panicking.
pub fn out_line(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}")
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

mod access;
mod backup;
mod client;
mod idp;
mod image;
mod licensing;
mod mail;
mod policy;
mod profile;
mod update;

use crate::config::{Config, Overrides};
use crate::datadir::DataDir;
use crate::db::Db;

/// How a command failed: configuration/usage (exit 2) or at run time (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Runtime(String),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Runtime(_) => 1,
        }
    }
}

fn runtime(e: impl std::fmt::Display) -> CliError {
    CliError::Runtime(e.to_string())
}

#[derive(Debug, Parser)]
#[command(
    name = "seatgate",
    version,
    about = "On-premises licensing gateway: SCIM provisioning, SAML sign-in and signed device leases",
    long_about = "seatgate connects your identity provider to your product licenses. It runs as one \
binary with one data directory (SQLite database, keys, certificates, backups) and one optional \
TOML config file. Start with `seatgate serve`; see config.example.toml for every setting."
)]
pub struct Cli {
    /// Data directory [default: data_dir from the config, else ./seatgate-data]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML config file (also SEATGATE_CONFIG)
    #[arg(long, global = true, value_name = "FILE", env = "SEATGATE_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway; on an empty data directory, initialize everything first
    Serve(ServeArgs),
    /// Try seatgate in five minutes: a seeded demo organization and a built-in demo IdP on
    /// loopback (plain HTTP, temporary data deleted on exit); prints a walkthrough
    Demo {
        /// Loopback address to listen on
        #[arg(long, value_name = "ADDR", default_value = crate::demo::DEFAULT_LISTEN)]
        listen: std::net::SocketAddr,
    },
    /// Inspect the configuration
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Write a consistent, integrity-checked copy of the database (safe while serving);
    /// with --include-keys, a bundle a replacement machine restores with the same CA and keys
    Backup(backup::BackupArgs),
    /// Check, without changing anything, that this seatgate can serve the data directory's
    /// database; exit 1 with the server's error if it is newer (installers run it before an
    /// upgrade so a downgrade keeps the old binary)
    CheckDb,
    /// Replace the database (and, from a bundle, the keys) with a backup (only while no
    /// server runs on the data directory)
    Restore(backup::RestoreArgs),
    /// Mint a new one-time first-run setup link (invalidates earlier ones)
    SetupLink,
    /// Manage the bearer tokens identity providers use for SCIM provisioning
    #[command(subcommand)]
    ScimToken(ScimTokenCommand),
    /// Manage admin API tokens (bearer tokens for /api/v1/admin/…; never accepted by SCIM)
    #[command(subcommand)]
    AdminToken(ScimTokenCommand),
    /// Manage SAML identity provider connections
    #[command(subcommand)]
    Idp(idp::IdpCommand),
    /// Show recent SCIM requests: what each IdP sent and how it went (newest first)
    ScimLog {
        /// How many requests to show
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Only requests that failed (status 400 and above)
        #[arg(long)]
        failures: bool,
        /// Also print each request body (passwords are never stored)
        #[arg(long)]
        bodies: bool,
    },
    /// Map an IdP group to a role: the admins group, a license's primary pool, or a sublicense
    #[command(subcommand)]
    GroupMap(access::GroupMapCommand),
    /// Manage break-glass administrators (local accounts that work when the IdP is down)
    #[command(subcommand)]
    Admin(access::AdminCommand),
    /// Licenses: register, list with seat usage per pool, change seats or expiry
    #[command(subcommand)]
    License(licensing::LicenseCommand),
    /// Write a registration request for the vendor (air-gapped registration): it names this
    /// gateway's instance; the vendor answers with an entitlement bound to it
    Register {
        /// Where to write the request
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// The MDM configuration profile (.mobileconfig) for the Macs
    #[command(subcommand)]
    Profile(profile::ProfileCommand),
    /// Invitation emails: invite people to install and activate, list, resend, revoke
    #[command(subcommand)]
    Invite(mail::InviteCommand),
    /// The outbox: send a test email, list messages, retry a failed one
    #[command(subcommand)]
    Mail(mail::MailCommand),
    /// Usage reports for the vendor (true-up), signed with this gateway's instance key
    #[command(subcommand)]
    Usage(licensing::UsageCommand),
    /// Client policies (restricted actions, USB, VM expiration, updates, lease windows …):
    /// create, assign to groups with a priority, set the default
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Golden VM images: add versions (resumable), list them with their SHA-256, assign
    /// them to IdP groups (latest or pinned)
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Uploads in progress (images and packages): list them, cancel one
    #[command(subcommand)]
    Upload(image::UploadCommand),
    /// The local update server: add app packages (signed for Sparkle), list them with the
    /// feeds and the versions Macs run, retire one
    #[command(subcommand)]
    Update(update::UpdateCommand),
    /// Sublicenses: named slices of a license for the groups mapped to them
    #[command(subcommand)]
    Sublicense(licensing::SublicenseCommand),
    /// Explain what happens when this person activates now, and why; or, given a license
    /// key (its id, name or the key) or a key device's id, what that key's activations get
    Explain {
        #[arg(value_name = "EMAIL|KEY|DEVICE")]
        email: String,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// The audit log (newest first): seat grants, revocations, activations, admin changes
    Audit {
        /// Only entries about this user (email or directory id)
        #[arg(long)]
        user: Option<String>,
        /// Only this action, e.g. seat_granted, seat_revoked, device_revoked
        #[arg(long)]
        action: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// The reference client: activate this machine, renew, status, deactivate, verify.
    /// Its --config FILE is a configuration profile's settings (the preferences plist, the
    /// same as JSON, or the whole .mobileconfig), so `activate` needs nothing else
    Client {
        /// Where the device key and lease live [default: SEATGATE_CLIENT_DIR, else ~/.seatgate-client]
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        #[command(subcommand)]
        command: client::ClientCommand,
    },
    /// Activated devices: list a user's, or deactivate one
    #[command(subcommand)]
    Device(licensing::DeviceCommand),
    /// Show recent sign-ins (SSO and break-glass) with their outcome, newest first
    SignInLog {
        /// How many sign-ins to show
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Only refused sign-ins
        #[arg(long)]
        failures: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ScimTokenCommand {
    /// Create a token; it is printed once, alone on the last line of stdout
    Create {
        /// A name to recognize it by, e.g. the IdP it is for
        #[arg(long)]
        name: String,
        /// SCIM tokens: the IdP connection it provisions for. It then sees and changes only
        /// that connection's users and groups, and cannot take names in another
        /// connection's domains. Without it, the token works in a scope of its own shared
        /// by every token made without --connection.
        #[arg(long, value_name = "CONNECTION")]
        connection: Option<String>,
    },
    /// List tokens (never their secrets) with creation, last use and revocation times
    List,
    /// Revoke a token by id or name; the IdP using it is refused from then on
    Revoke {
        /// The token's id or name
        token: String,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on, e.g. 0.0.0.0:8443 or 127.0.0.1:0 for a free port
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// URL users and IdPs reach the gateway at, e.g. https://seatgate.example.com
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print the effective values (secrets redacted)
    Check,
}

/// Loads the configuration for this invocation; warnings are returned for logging.
pub fn load_config(cli: &Cli) -> Result<(Config, Vec<String>), CliError> {
    let mut overrides = Overrides {
        data_dir: cli.data_dir.clone(),
        ..Overrides::default()
    };
    if let Command::Serve(args) = &cli.command {
        overrides.listen = args.listen;
        overrides.public_url = args.public_url.clone();
    }
    // The client's --config is the managed preferences a profile gives it, not this file.
    let file = match &cli.command {
        Command::Client { .. } => None,
        _ => cli.config.as_deref(),
    };
    let loaded = Config::load(file, &overrides).map_err(|e| CliError::Usage(e.to_string()))?;
    Ok((loaded.config, loaded.warnings))
}

pub fn run(cli: Cli, config: Config) -> Result<(), CliError> {
    match cli.command {
        Command::Serve(_) => crate::server::serve(config).map_err(runtime),
        Command::Demo { listen } => crate::demo::run(listen).map_err(|e| match e {
            crate::demo::DemoError::NotLoopback => CliError::Usage(e.to_string()),
            e => runtime(e),
        }),
        Command::Config(ConfigCommand::Check) => config_check_command(config),
        Command::Backup(args) => backup::backup(&config, &args),
        Command::Restore(args) => backup::restore(&config, &args),
        Command::CheckDb => check_db_command(&config),
        Command::SetupLink => setup_link_command(&config),
        Command::ScimToken(cmd) => token_command(&config, crate::db::tokens::Scope::Scim, cmd),
        Command::AdminToken(cmd) => token_command(&config, crate::db::tokens::Scope::Admin, cmd),
        Command::Idp(cmd) => idp::run(&config, cmd),
        Command::ScimLog {
            limit,
            failures,
            bodies,
        } => scim_log_command(&config, limit, failures, bodies),
        Command::GroupMap(cmd) => access::group_map(&open_existing_db(&config)?, cmd),
        Command::Admin(cmd) => {
            let db = open_existing_db(&config)?;
            let public_url = public_url_for_cli(&config, &db)?;
            access::admin(&db, &public_url, cmd)
        }
        Command::License(cmd) => licensing::license(&open_existing_db(&config)?, cmd),
        Command::Usage(cmd) => licensing::usage(&open_existing_db(&config)?, cmd),
        Command::Register { out } => {
            let db = open_existing_db(&config)?;
            let public_url = public_url_for_cli(&config, &db)?;
            licensing::register(&db, &public_url, &out)
        }
        Command::Sublicense(cmd) => licensing::sublicense(&open_existing_db(&config)?, cmd),
        Command::Invite(cmd) => {
            let db = open_existing_db(&config)?;
            let public_url = public_url_for_cli(&config, &db)?;
            mail::invite(&db, &config, &public_url, cmd)
        }
        Command::Mail(cmd) => mail::mail(&open_existing_db(&config)?, &config, cmd),
        Command::Policy(cmd) => policy::run(&open_existing_db(&config)?, &config, cmd),
        Command::Image(cmd) => image::run(&open_existing_db(&config)?, &config, cmd),
        Command::Upload(cmd) => image::uploads(&open_existing_db(&config)?, &config, cmd),
        Command::Update(cmd) => {
            let db = open_existing_db(&config)?;
            let public_url = public_url_for_cli(&config, &db)?;
            update::run(&db, &config, &public_url, cmd)
        }
        Command::Profile(cmd) => {
            let db = open_existing_db(&config)?;
            let public_url = public_url_for_cli(&config, &db)?;
            profile::run(&db, &config, &public_url, cmd)
        }
        Command::Explain { email, json } => {
            licensing::explain(&open_existing_db(&config)?, &config, &email, json)
        }
        Command::Audit {
            user,
            action,
            limit,
        } => licensing::audit(
            &open_existing_db(&config)?,
            user.as_deref(),
            action.as_deref(),
            limit,
        ),
        Command::Client { state_dir, command } => {
            client::run(state_dir, cli.config.as_deref(), command)
        }
        Command::Device(cmd) => licensing::device(&open_existing_db(&config)?, &config, cmd),
        Command::SignInLog { limit, failures } => {
            access::sign_in_log(&open_existing_db(&config)?, limit, failures)
        }
    }
}

/// The public URL for links an offline command prints: configured, else the one the last
/// `serve` used, else derived from `listen`.
fn public_url_for_cli(config: &Config, db: &Db) -> Result<String, CliError> {
    if !config.public_url.is_empty() {
        return Ok(config.public_url.clone());
    }
    Ok(crate::server::last_public_url(db)
        .map_err(runtime)?
        .unwrap_or_else(|| crate::public_url::derived(config, config.listen)))
}

fn scim_log_command(
    config: &Config,
    limit: u32,
    failures: bool,
    bodies: bool,
) -> Result<(), CliError> {
    let db = open_existing_db(config)?;
    let min_status = if failures { 400 } else { 0 };
    let rows = db
        .read(|tx| crate::db::directory::recent_scim_requests(tx, min_status, limit))
        .map_err(runtime)?;
    if rows.is_empty() {
        outln!(
            "no SCIM requests recorded{}",
            if failures { " that failed" } else { "" }
        );
    }
    for r in rows {
        let what = [r.scim_type.as_deref(), r.detail.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        outln!(
            "{} {} {} {} {} {what}",
            crate::clock::rfc3339(r.at),
            r.client,
            r.method,
            r.path,
            r.status
        );
        if bodies && let Some(body) = r.request {
            outln!("    {body}");
        }
    }
    Ok(())
}

/// Text from the directory or a client, fit for a terminal: control characters and
/// invisible formatting (which could move the cursor, retitle the window or reorder what
/// an admin reads) escaped; line breaks and tabs of our own layout kept.
pub(crate) fn terminal_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == '\n' || c == '\t' || !crate::caps::invisible(c) {
                c.to_string()
            } else {
                c.escape_unicode().to_string()
            }
        })
        .collect()
}

fn token_command(
    config: &Config,
    scope: crate::db::tokens::Scope,
    cmd: ScimTokenCommand,
) -> Result<(), CliError> {
    use crate::db::tokens::{self, Scope};
    let (label, command, purpose) = match scope {
        Scope::Scim => (
            "SCIM",
            "scim-token",
            "Give it to your identity provider as the bearer token",
        ),
        Scope::Admin => (
            "admin API",
            "admin-token",
            "Use it as `Authorization: Bearer <token>` on /api/v1/admin/",
        ),
    };
    let db = open_existing_db(config)?;
    match cmd {
        ScimTokenCommand::Create { name, connection } => {
            let name =
                crate::caps::admin_name("token name", &name, 100).map_err(CliError::Usage)?;
            let connection = connection.as_deref().map(str::trim);
            if scope == Scope::Admin && connection.is_some() {
                return Err(CliError::Usage(
                    "--connection is for SCIM tokens; admin API tokens are not bound to a connection"
                        .into(),
                ));
            }
            if let Some(c) = connection
                && db
                    .read(|tx| crate::db::idp::verification_keys(tx, c))
                    .map_err(runtime)?
                    .is_none()
            {
                return Err(CliError::Usage(format!(
                    "there is no IdP connection {c:?} (see `seatgate idp list`)"
                )));
            }
            let (id, token) = db
                .write(|tx| tokens::create(tx, scope, name, access::ACTOR, connection))
                .map_err(runtime)?;
            if scope == Scope::Scim {
                eprintln!(
                    "it provisions for {}",
                    crate::domain::connection::scope_label(connection)
                );
            }
            eprintln!("created {label} token {id} ({name}); it is shown only now. {purpose}:");
            outln!("{token}");
        }
        ScimTokenCommand::List => {
            let all = db.read(|tx| tokens::list(tx, scope)).map_err(runtime)?;
            if all.is_empty() {
                outln!(
                    "no {label} tokens; create one with `seatgate {command} create --name NAME`"
                );
            }
            let when = |t: Option<i64>| t.map_or("-".to_string(), crate::clock::rfc3339);
            for t in all {
                let state = if t.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                let bound = match scope {
                    Scope::Scim => format!(
                        "\t{}",
                        crate::domain::connection::scope_label(t.connection_id.as_deref())
                    ),
                    Scope::Admin => String::new(),
                };
                outln!(
                    "{}\t{}\t{state}\tcreated {}\tlast used {}\trevoked {}{bound}",
                    t.id,
                    t.name,
                    crate::clock::rfc3339(t.created_at),
                    when(t.last_used_at),
                    when(t.revoked_at)
                );
            }
        }
        ScimTokenCommand::Revoke { token } => {
            let n = db
                .write(|tx| tokens::revoke(tx, scope, &token, access::ACTOR))
                .map_err(runtime)?;
            if n == 0 {
                return Err(CliError::Runtime(format!(
                    "no active {label} token has the id or name {token:?}"
                )));
            }
            outln!("revoked {n} {label} token(s)");
        }
    }
    Ok(())
}

/// Opens the database of an existing data directory for an admin command.
fn open_existing_db(config: &Config) -> Result<Db, CliError> {
    let data = DataDir::existing(&config.data_dir).map_err(runtime)?;
    if !data.db_path().exists() {
        return Err(CliError::Runtime(format!(
            "there is no database in {}; run `seatgate serve` once to create it",
            data.root().display()
        )));
    }
    Db::open(
        &data.db_path(),
        &config.backup_dir(),
        config.database.synchronous,
    )
    .map_err(runtime)
}

/// Prints the effective configuration. A `public_url` left empty in the file is the one
/// first-run setup stored (what `serve` uses), marked as such.
fn config_check_command(mut config: Config) -> Result<(), CliError> {
    let mut stored = false;
    if config.public_url.is_empty()
        && let Ok(data) = DataDir::existing(&config.data_dir)
        && let Ok(Some(url)) = crate::db::stored_public_url(&data.db_path())
    {
        config.public_url = url;
        stored = true;
    }
    print!("{}", config.to_redacted_toml());
    if stored {
        eprintln!(
            "public_url is the one stored at first-run setup; set public_url in the file to override it"
        );
    }
    eprintln!("configuration is valid");
    Ok(())
}

fn check_db_command(config: &Config) -> Result<(), CliError> {
    use crate::db::SchemaStatus;
    let Ok(data) = DataDir::existing(&config.data_dir) else {
        outln!(
            "no data directory at {} yet; the first start creates it",
            config.data_dir.display()
        );
        return Ok(());
    };
    let path = data.db_path();
    match crate::db::schema_status(&path).map_err(runtime)? {
        SchemaStatus::Missing => outln!(
            "no database at {} yet; the first start creates it",
            path.display()
        ),
        SchemaStatus::Current(v) => outln!(
            "the database {} is at schema version {v}, the one this seatgate serves",
            path.display()
        ),
        SchemaStatus::Upgradable { found, latest } => outln!(
            "the database {} is at schema version {found}; the next start migrates it to {latest} after a backup",
            path.display()
        ),
    }
    Ok(())
}

fn setup_link_command(config: &Config) -> Result<(), CliError> {
    let db = open_existing_db(config)?;
    let public_url = public_url_for_cli(config, &db)?;
    let data = DataDir::existing(&config.data_dir).map_err(runtime)?;
    let (link, expires_at) =
        crate::setup::mint(&db, &data.setup_link_path(), &public_url).map_err(runtime)?;
    eprintln!(
        "valid until {} and usable once:",
        crate::clock::rfc3339(expires_at)
    );
    outln!("{link}");
    Ok(())
}
