//! Configuration: defaults < TOML file < `SEATGATE_*` environment < command-line flags.
//!
//! Every key is documented in `config.example.toml`; a test keeps that file and
//! [`Config::default`] in step. Unknown keys in the file are errors that name the key;
//! unknown `SEATGATE_*` variables are warnings (a typo must not stop a launchd service
//! from starting, but it must be visible).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Environment variables that are not configuration keys but are still ours.
const NON_KEY_ENV: &[&str] = &[
    "SEATGATE_CONFIG",
    "SEATGATE_DATA_DIR",
    // Read by `backup --include-keys` and `restore` only, never part of the configuration.
    "SEATGATE_BACKUP_PASSPHRASE",
    "SEATGATE_PROFILE_SIGNING_PASSWORD",
    "SEATGATE_SMTP_PASSWORD",
];

/// Switches of debug-build test hooks: ours too, but only where they exist.
const TEST_HOOK_ENV: &[&str] = &[
    "SEATGATE_TEST_PANIC_ROUTE",
    "SEATGATE_TEST_CRASH_IN_CHECKPOINT",
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the database, keys, certificates and backups live.
    pub data_dir: PathBuf,
    /// Address the gateway listens on.
    pub listen: SocketAddr,
    /// The URL clients and IdPs use to reach the gateway; empty = derived from `listen`.
    pub public_url: String,
    /// `error`, `warn`, `info`, `debug` or `trace`; `RUST_LOG` overrides it.
    pub log_level: String,
    pub tls: TlsConfig,
    pub limits: Limits,
    pub database: DatabaseConfig,
    pub scim: ScimConfig,
    pub pre_auth: PreAuthConfig,
    pub metrics: MetricsConfig,
    pub backup: BackupConfig,
    pub admin: AdminConfig,
    pub saml: SamlConfig,
    pub lease: LeaseConfig,
    pub profile: ProfileConfig,
    pub smtp: SmtpConfig,
    pub invitations: InvitationsConfig,
    pub storage: StorageConfig,
}

/// How `[smtp] security` protects the connection to the mail server.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (port 587), required.
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on this machine.
    None,
}

/// The mail server the outbox sends through (invitations, admin notifications).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// The mail server; empty = no email is sent (messages wait in the outbox).
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// Sign in with this user (empty: no authentication).
    pub username: String,
    /// A file holding the password (first line); or SEATGATE_SMTP_PASSWORD.
    pub password_file: String,
    /// The sender, e.g. "Contoso IT <licensing@contoso.com>".
    pub from: String,
    /// An extra CA certificate (PEM) to trust for the mail server, e.g. an internal relay's.
    pub ca_file: String,
    /// How long one connection, command or answer may take before the attempt fails (the
    /// message stays queued and is tried again).
    #[serde(with = "duration_str")]
    pub timeout: Duration,
    /// The most messages sent per minute.
    pub max_per_minute: u32,
    /// Attempts before a message that keeps failing temporarily is given up.
    pub max_attempts: u32,
    /// The wait before the first retry; it doubles with each attempt, up to 1 hour.
    #[serde(with = "duration_str")]
    pub retry_after: Duration,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: String::new(),
            port: 587,
            security: SmtpSecurity::Starttls,
            username: String::new(),
            password_file: String::new(),
            from: String::new(),
            ca_file: String::new(),
            timeout: Duration::from_secs(30),
            max_per_minute: 120,
            max_attempts: 10,
            retry_after: Duration::from_secs(60),
        }
    }
}

/// Invitation emails.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct InvitationsConfig {
    /// How long an invitation's link works.
    #[serde(with = "duration_str")]
    pub valid_for: Duration,
    /// Where invitees download the app (the landing page links it); empty = the page tells
    /// them to get it from IT (Self Service, the MDM).
    pub download_url: String,
}

impl Default for InvitationsConfig {
    fn default() -> Self {
        InvitationsConfig {
            valid_for: Duration::from_secs(14 * 86_400),
            download_url: String::new(),
        }
    }
}

/// The distribution point's files: golden VM images and app update packages.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Where the files are kept; empty = `storage` in the data directory. Never inside
    /// SQLite: images are tens of GB.
    pub dir: String,
    /// The largest single file (an image version or a package); written like `"200GiB"`.
    #[serde(with = "bytes_str")]
    pub max_file_size: u64,
    /// All stored files and uploads in progress together.
    #[serde(with = "bytes_str")]
    pub max_total_size: u64,
    /// Free space an upload must leave on the storage file system (the database and the
    /// logs need room too).
    #[serde(with = "bytes_str")]
    pub reserve: u64,
    /// An upload left untouched this long is removed with its partial file.
    #[serde(with = "duration_str")]
    pub abandoned_after: Duration,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            dir: String::new(),
            max_file_size: 200 << 30,
            max_total_size: 1 << 40,
            reserve: 2 << 30,
            abandoned_after: Duration::from_secs(7 * 86_400),
        }
    }
}

/// The MDM configuration profile (`seatgate profile export`, the portal's Deploy page).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProfileConfig {
    /// The client app's preference domain: the managed-preferences payload's type.
    pub preference_domain: String,
    /// The organization name shown in System Settings; empty = the public URL's host.
    pub organization: String,
    /// Sign profiles with this identity (PKCS#12 or PEM: certificate and private key), so
    /// MDMs show them as verified; empty = unsigned.
    pub signing_identity: String,
    /// A file holding the PKCS#12 identity's password (first line); empty = no password.
    pub signing_password_file: String,
    /// How often the app checks whether its lease is due for renewal.
    #[serde(with = "duration_str")]
    pub renewal_check_interval: Duration,
    /// The update branch of Macs no policy gives one: `stable`, `beta` or a version to pin
    /// (the profile's `SUFeedURL` is that feed's appcast).
    pub update_branch: String,
}

impl Default for ProfileConfig {
    fn default() -> Self {
        ProfileConfig {
            preference_domain: "com.seatgate.client".into(),
            organization: String::new(),
            signing_identity: String::new(),
            signing_password_file: String::new(),
            renewal_check_interval: Duration::from_secs(3600),
            update_branch: "stable".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LeaseConfig {
    /// How long a lease is valid before the device must renew it (its `renew_after`), and
    /// how long past that it still works offline (its `exp`).
    #[serde(with = "duration_str")]
    pub renew_after: Duration,
    #[serde(with = "duration_str")]
    pub offline_grace: Duration,
    /// Devices one user may have active at once; beyond it, DEVICE_LIMIT.
    pub device_limit: u32,
    /// A device that has not renewed for this long is released (its seat stays with the user).
    #[serde(with = "duration_str")]
    pub release_silent_after: Duration,
    /// How long a started activation waits for the browser sign-in.
    #[serde(with = "duration_str")]
    pub activation_timeout: Duration,
    /// Seconds between a client's activation polls (slower polls get slow_down).
    pub poll_interval_secs: u32,
    /// A new lease-signing key is made this often; old keys stay published until every
    /// lease they signed has expired.
    #[serde(with = "duration_str")]
    pub key_rotation: Duration,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig {
            renew_after: Duration::from_secs(7 * 86_400),
            offline_grace: Duration::from_secs(14 * 86_400),
            device_limit: 3,
            release_silent_after: Duration::from_secs(90 * 86_400),
            activation_timeout: Duration::from_secs(10 * 60),
            poll_interval_secs: 5,
            key_rotation: Duration::from_secs(90 * 86_400),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// An admin session ends after this long without a request.
    #[serde(with = "duration_str")]
    pub session_idle: Duration,
    /// An admin session ends this long after sign-in, however active.
    #[serde(with = "duration_str")]
    pub session_lifetime: Duration,
    /// Failed break-glass passwords allowed per (username, client address), and 4x per
    /// address, within `login_window`; beyond them that address gets 429 until the window
    /// passes. Per username, failures only slow sign-in down (`admin::limiter`).
    pub login_failures: u32,
    #[serde(with = "duration_str")]
    pub login_window: Duration,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            session_idle: Duration::from_secs(30 * 60),
            session_lifetime: Duration::from_secs(12 * 3600),
            login_failures: 5,
            login_window: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SamlConfig {
    /// How often IdP metadata added by URL is fetched again (new signing certificates).
    #[serde(with = "duration_str")]
    pub metadata_refresh: Duration,
    /// Extra PEM CA certificates trusted when fetching metadata URLs, on top of the
    /// system's roots (for an IdP behind an internal CA); empty = none.
    pub metadata_ca_file: String,
}

impl Default for SamlConfig {
    fn default() -> Self {
        SamlConfig {
            metadata_refresh: Duration::from_secs(24 * 3600),
            metadata_ca_file: String::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ScimConfig {
    /// Requests per second allowed per SCIM token (0 = unlimited); beyond it, 429.
    pub requests_per_second: u32,
    /// Requests a token may send in a burst above the steady rate.
    pub burst: u32,
    /// SCIM request-log rows kept (oldest deleted first).
    pub request_log_rows: u32,
}

impl Default for ScimConfig {
    fn default() -> Self {
        ScimConfig {
            requests_per_second: 2000,
            burst: 4000,
            request_log_rows: 100_000,
        }
    }
}

/// Requests anyone may send before signing in that store a row: device activations and
/// SSO starts. Beyond a limit, 429 with `Retry-After`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PreAuthConfig {
    /// Steady rate per client address (0 = unlimited), and the burst above it.
    pub per_client_per_minute: u32,
    pub per_client_burst: u32,
    /// Steady rate for all clients together (0 = unlimited), and the burst above it.
    pub global_per_minute: u32,
    pub global_burst: u32,
    /// Unfinished activations, and unanswered SAML requests, kept at most; beyond it the
    /// oldest is dropped.
    pub max_outstanding: u32,
}

impl Default for PreAuthConfig {
    fn default() -> Self {
        PreAuthConfig {
            per_client_per_minute: 120,
            per_client_burst: 60,
            global_per_minute: 3000,
            global_burst: 1000,
            max_outstanding: 5000,
        }
    }
}

/// SQLite's `synchronous` setting (`[database] synchronous`): `normal` (WAL-safe, the
/// default) or `full` (every commit reaches the disk before it is acknowledged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    Normal,
    Full,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `normal`: commits survive a killed process; `full`: they also survive power loss.
    pub synchronous: Synchronous,
    /// How often `PRAGMA quick_check` looks for damage while serving (it also runs at
    /// start); 0 = only at start.
    #[serde(with = "duration_str")]
    pub quick_check_interval: Duration,
    /// Free space on the data directory's file system below which seatgate warns (log,
    /// portal, `/metrics`), in bytes; written like `"512MiB"`.
    #[serde(with = "bytes_str")]
    pub min_free_space: u64,
    /// The write-ahead log is checkpointed and reset, pausing writes briefly, once it
    /// passes this many MiB; it is also truncated back to it whenever it starts over.
    pub wal_max_mib: u64,
}

impl DatabaseConfig {
    pub fn wal_max_bytes(&self) -> u64 {
        self.wal_max_mib * 1024 * 1024
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            synchronous: Synchronous::Normal,
            quick_check_interval: Duration::from_secs(6 * 3600),
            min_free_space: 512 * 1024 * 1024,
            wal_max_mib: 64,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// A local CA and server certificate generated in the data dir.
    SelfSigned,
    /// Operator-supplied PEM files, reloaded on SIGHUP.
    Files,
    /// Plain HTTP, for a reverse proxy in front or a loopback demo.
    Off,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    pub mode: TlsMode,
    /// PEM certificate chain (leaf first), for `mode = "files"`.
    pub cert: String,
    /// PEM private key, for `mode = "files"`.
    pub key: String,
    /// Extra DNS names or IP addresses for the self-signed server certificate.
    pub hostnames: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    /// Threads forwarding requests to the application; 0 = 4 × CPU cores (at least 8).
    pub workers: usize,
    /// Requests waiting for a worker before new ones are answered 503.
    pub queue: usize,
    #[serde(with = "duration_str")]
    pub handshake_timeout: Duration,
    #[serde(with = "duration_str")]
    pub header_timeout: Duration,
    #[serde(with = "duration_str")]
    pub body_timeout: Duration,
    #[serde(with = "duration_str")]
    pub idle_timeout: Duration,
    #[serde(with = "duration_str")]
    pub write_timeout: Duration,
    #[serde(with = "duration_str")]
    pub app_timeout: Duration,
    #[serde(with = "duration_str")]
    pub shutdown_grace: Duration,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    /// Body caps per route class, in bytes.
    pub body_max_scim: usize,
    pub body_max_saml: usize,
    pub body_max_api: usize,
    pub body_max_renewal: usize,
    pub body_max_admin: usize,
    pub body_max_other: usize,
    /// Stored files (image and package downloads) sent at once; more wait with a 503 and
    /// `Retry-After`. Never above what the open file limit leaves (see the start-up log).
    pub max_file_streams: usize,
    /// The largest piece of a file upload one request may carry (`Content-Range` chunks).
    /// Written to disk as it arrives, never held in memory.
    pub body_max_upload: usize,
    /// Reverse proxies (addresses or blocks) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<crate::cidr::Cidr>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub enabled: bool,
    /// Bearer token Prometheus must send; required when enabled.
    pub token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// Take scheduled backups while serving.
    pub enabled: bool,
    #[serde(with = "duration_str")]
    pub interval: Duration,
    /// How many scheduled backups to keep.
    pub retain: usize,
    /// Where scheduled and pre-migration backups go; empty = `<data_dir>/backups`.
    pub dir: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./seatgate-data"),
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            public_url: String::new(),
            log_level: "info".into(),
            tls: TlsConfig::default(),
            limits: Limits::default(),
            database: DatabaseConfig::default(),
            scim: ScimConfig::default(),
            pre_auth: PreAuthConfig::default(),
            metrics: MetricsConfig::default(),
            profile: ProfileConfig::default(),
            smtp: SmtpConfig::default(),
            invitations: InvitationsConfig::default(),
            storage: StorageConfig::default(),
            backup: BackupConfig::default(),
            admin: AdminConfig::default(),
            saml: SamlConfig::default(),
            lease: LeaseConfig::default(),
        }
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            mode: TlsMode::SelfSigned,
            cert: String::new(),
            key: String::new(),
            hostnames: Vec::new(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            max_connections_per_client: 128,
            workers: 0,
            queue: 256,
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            app_timeout: Duration::from_secs(55),
            shutdown_grace: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            body_max_scim: 1024 * 1024,
            body_max_saml: 256 * 1024,
            body_max_api: 64 * 1024,
            body_max_renewal: 1024 * 1024,
            body_max_admin: 256 * 1024,
            body_max_other: 16 * 1024,
            body_max_upload: 1 << 30,
            max_file_streams: 64,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            enabled: true,
            interval: Duration::from_secs(24 * 3600),
            retain: 7,
            dir: String::new(),
        }
    }
}

/// Values given on the command line; they win over everything else.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub public_url: Option<String>,
}

/// The loaded configuration plus the warnings met on the way (logged once logging is up).
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

impl Config {
    /// Loads the configuration from an optional file, the process environment and flags.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Loaded, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| k.starts_with("SEATGATE_"))
            .collect();
        Self::load_from(file, &env, overrides)
    }

    /// Same as [`Config::load`] with an explicit environment (testable without `set_var`).
    pub fn load_from(
        file: Option<&Path>,
        env: &[(String, String)],
        overrides: &Overrides,
    ) -> Result<Loaded, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Parse {
                        path: path.to_path_buf(),
                        message: one_line(&e.to_string()),
                    })?
            }
            None => toml::Table::new(),
        };
        // Validate the file alone first so its errors name the file, not the env.
        if let Some(path) = file {
            Config::deserialize(toml::Value::Table(table.clone())).map_err(|e| {
                ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: one_line(&e.to_string()),
                }
            })?;
        }
        let warnings = apply_env(&mut table, env)?;
        let mut config = Config::deserialize(toml::Value::Table(table)).map_err(|e| {
            ConfigError::Invalid(format!(
                "after applying SEATGATE_* variables: {}",
                one_line(&e.to_string())
            ))
        })?;
        if let Some((_, dir)) = env.iter().find(|(k, _)| k == "SEATGATE_DATA_DIR") {
            config.data_dir = PathBuf::from(dir);
        }
        if let Some(dir) = &overrides.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(listen) = overrides.listen {
            config.listen = listen;
        }
        if let Some(url) = &overrides.public_url {
            config.public_url = url.clone();
        }
        config.validate()?;
        Ok(Loaded { config, warnings })
    }

    /// `[profile]`, `[smtp]` and `[invitations]`.
    fn validate_deploy(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        let p = &self.profile;
        let domain_ok = p.preference_domain.split('.').count() >= 2
            && p.preference_domain.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            });
        if !domain_ok || p.preference_domain.len() > 200 {
            return invalid(
                "profile.preference_domain must be a reverse-DNS name such as com.example.app",
            );
        }
        if p.organization.len() > 200 || p.organization.chars().any(char::is_control) {
            return invalid("profile.organization must be printable text of at most 200 bytes");
        }
        if p.renewal_check_interval < Duration::from_secs(60) {
            return invalid("profile.renewal_check_interval must be at least 1m");
        }
        let branch_ok = !p.update_branch.is_empty()
            && p.update_branch.len() <= 64
            && p.update_branch
                .starts_with(|c: char| c.is_ascii_alphanumeric())
            && p.update_branch
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'+'));
        if !branch_ok {
            return invalid("profile.update_branch must be stable, beta or a version to pin");
        }
        let m = &self.smtp;
        if !m.host.is_empty() {
            if m.from.is_empty() || m.from.parse::<lettre::message::Mailbox>().is_err() {
                return invalid(
                    "smtp.from must be a sender address such as \"Contoso IT <licensing@contoso.com>\" when smtp.host is set",
                );
            }
            let local = matches!(m.host.as_str(), "localhost" | "127.0.0.1" | "::1");
            if m.security == SmtpSecurity::None && !m.username.is_empty() && !local {
                return invalid(
                    "smtp.security = \"none\" would send the password in clear text: use starttls or tls with smtp.username",
                );
            }
        }
        if m.timeout < Duration::from_secs(1) || m.max_per_minute == 0 || m.max_attempts == 0 {
            return invalid(
                "smtp.timeout must be at least 1s, smtp.max_per_minute and smtp.max_attempts at least 1",
            );
        }
        if m.retry_after < Duration::from_secs(1) {
            return invalid("smtp.retry_after must be at least 1s");
        }
        let i = &self.invitations;
        if i.valid_for < Duration::from_secs(3600) || i.valid_for > Duration::from_secs(90 * 86_400)
        {
            return invalid("invitations.valid_for must be from 1h to 90 days");
        }
        if !i.download_url.is_empty() && !i.download_url.starts_with("https://") {
            return invalid("invitations.download_url must be an https:// address");
        }
        let st = &self.storage;
        if st.max_file_size < (1 << 20) {
            return invalid("storage.max_file_size must be at least 1MiB");
        }
        if st.max_total_size < st.max_file_size {
            return invalid("storage.max_total_size must be at least storage.max_file_size");
        }
        if st.abandoned_after < Duration::from_secs(3600) {
            return invalid("storage.abandoned_after must be at least 1h");
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if self.tls.mode == TlsMode::Files && (self.tls.cert.is_empty() || self.tls.key.is_empty())
        {
            return invalid("tls.mode = \"files\" needs both tls.cert and tls.key");
        }
        if self.metrics.enabled && self.metrics.token.len() < 16 {
            return invalid("metrics.enabled = true needs metrics.token of at least 16 characters");
        }
        if !self.public_url.is_empty() {
            let ok =
                self.public_url.starts_with("https://") || self.public_url.starts_with("http://");
            if !ok || self.public_url.ends_with('/') {
                return invalid(
                    "public_url must start with https:// or http:// and not end with a slash",
                );
            }
        }
        let l = &self.limits;
        if self.pre_auth.max_outstanding == 0 {
            return invalid("pre_auth.max_outstanding must be at least 1");
        }
        if l.max_connections == 0 || l.max_connections_per_client == 0 || l.queue == 0 {
            return invalid(
                "limits.max_connections, limits.max_connections_per_client and limits.queue must be at least 1",
            );
        }
        if l.max_headers == 0 || l.max_header_bytes < 1024 {
            return invalid(
                "limits.max_headers must be at least 1 and limits.max_header_bytes at least 1024",
            );
        }
        let a = &self.admin;
        if a.session_idle < Duration::from_secs(60)
            || a.session_lifetime < a.session_idle
            || a.login_failures == 0
        {
            return invalid(
                "admin.session_idle must be at least 1m, admin.session_lifetime at least admin.session_idle, and admin.login_failures at least 1",
            );
        }
        let lease = &self.lease;
        if lease.renew_after < Duration::from_secs(60)
            || lease.device_limit == 0
            || lease.poll_interval_secs == 0
            || lease.activation_timeout < Duration::from_secs(60)
            || lease.key_rotation < Duration::from_secs(86_400)
        {
            return invalid(
                "lease.renew_after and lease.activation_timeout must be at least 1m, lease.key_rotation at least 1 day, lease.device_limit and lease.poll_interval_secs at least 1",
            );
        }
        let qc = self.database.quick_check_interval;
        if !qc.is_zero() && qc < Duration::from_secs(60) {
            return invalid(
                "database.quick_check_interval must be 0 (only at start) or at least 1m",
            );
        }
        self.validate_deploy()?;
        if self.saml.metadata_refresh < Duration::from_secs(60) {
            return invalid("saml.metadata_refresh must be at least 1m");
        }
        if !self.saml.metadata_ca_file.is_empty()
            && !Path::new(&self.saml.metadata_ca_file).is_file()
        {
            return Err(ConfigError::Invalid(format!(
                "saml.metadata_ca_file {} is not a readable file",
                self.saml.metadata_ca_file
            )));
        }
        if self.backup.enabled
            && (self.backup.retain == 0 || self.backup.interval < Duration::from_secs(1))
        {
            return invalid("backup.retain must be at least 1 and backup.interval at least 1s");
        }
        if !(1..=65_536).contains(&self.database.wal_max_mib) {
            return invalid("database.wal_max_mib must be between 1 and 65536");
        }
        if !matches!(
            self.log_level.as_str(),
            "error" | "warn" | "info" | "debug" | "trace" | "off"
        ) {
            return invalid("log_level must be one of error, warn, info, debug, trace, off");
        }
        Ok(())
    }

    /// Number of forwarding workers after resolving `0 = automatic`.
    pub fn worker_count(&self) -> usize {
        if self.limits.workers > 0 {
            return self.limits.workers;
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        (cores * 4).max(8)
    }

    /// The directory backups are written to.
    pub fn backup_dir(&self) -> PathBuf {
        if self.backup.dir.is_empty() {
            self.data_dir.join("backups")
        } else {
            PathBuf::from(&self.backup.dir)
        }
    }

    /// The effective configuration as TOML with secrets replaced.
    pub fn to_redacted_toml(&self) -> String {
        let mut copy = self.clone();
        if !copy.metrics.token.is_empty() {
            copy.metrics.token = "<redacted>".into();
        }
        toml::to_string_pretty(&copy)
            .unwrap_or_else(|e| format!("# cannot render configuration: {e}\n"))
    }
}

/// Applies `SEATGATE_SECTION_KEY=value` variables to the table, typed like the default
/// value of that key. Returns warnings for variables that match no key.
fn apply_env(
    table: &mut toml::Table,
    env: &[(String, String)],
) -> Result<Vec<String>, ConfigError> {
    let defaults = toml::Table::try_from(Config::default())
        .map_err(|e| ConfigError::Invalid(format!("cannot render defaults: {e}")))?;
    let mut warnings = Vec::new();
    let mut sorted: Vec<&(String, String)> = env.iter().collect();
    sorted.sort();
    for (var, raw) in sorted {
        if NON_KEY_ENV.contains(&var.as_str())
            || (cfg!(debug_assertions) && TEST_HOOK_ENV.contains(&var.as_str()))
        {
            continue;
        }
        let key = var["SEATGATE_".len()..].to_ascii_lowercase();
        let Some((section, name, default)) = find_key(&defaults, &key) else {
            warnings.push(format!(
                "ignoring environment variable {var}: it matches no configuration key"
            ));
            continue;
        };
        let value = typed_like(default, raw).ok_or_else(|| ConfigError::Env {
            var: var.clone(),
            message: format!("expected {} value", default.type_str()),
        })?;
        let target = match section {
            Some(section) => table
                .entry(section.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .ok_or_else(|| ConfigError::Env {
                    var: var.clone(),
                    message: format!("[{section}] in the config file is not a table"),
                })?,
            None => &mut *table,
        };
        target.insert(name.to_string(), value);
    }
    Ok(warnings)
}

/// Finds `key` (e.g. `limits_max_connections`) among the defaults: a top-level key, or a
/// section name, an underscore, and a key of that section.
fn find_key<'a>(
    defaults: &'a toml::Table,
    key: &'a str,
) -> Option<(Option<&'a str>, &'a str, &'a toml::Value)> {
    if let Some(v) = defaults.get(key).filter(|v| !v.is_table()) {
        return Some((None, key, v));
    }
    defaults.iter().find_map(|(section, v)| {
        let inner = v.as_table()?;
        let rest = key.strip_prefix(section.as_str())?.strip_prefix('_')?;
        inner
            .get_key_value(rest)
            .map(|(k, v)| (Some(section.as_str()), k.as_str(), v))
    })
}

fn typed_like(default: &toml::Value, raw: &str) -> Option<toml::Value> {
    Some(match default {
        toml::Value::Integer(_) => toml::Value::Integer(raw.trim().parse().ok()?),
        toml::Value::Boolean(_) => toml::Value::Boolean(match raw.trim() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            _ => return None,
        }),
        toml::Value::Array(_) => toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        ),
        _ => toml::Value::String(raw.to_string()),
    })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A duration as an admin writes it (`90d`, `30m`): how the CLI and `config check` show
/// one.
pub fn format_duration(d: Duration) -> String {
    duration_str::format(d)
}

/// Durations in the config are human-readable strings such as `"30s"`, `"10m"`, `"24h"`.
mod duration_str {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*d))
    }

    /// In the largest unit that holds it whole, as an admin writes it: `90d` rather than
    /// humantime's `2months 29days 2h 52m 48s` (its months are 30.44 days).
    pub fn format(d: Duration) -> String {
        if d.subsec_nanos() != 0 {
            return humantime::format_duration(d).to_string();
        }
        let secs = d.as_secs();
        let unit = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)]
            .into_iter()
            .find(|(_, n)| secs >= *n && secs.is_multiple_of(*n));
        match unit {
            Some((name, n)) => format!("{}{name}", secs / n),
            None => "0s".into(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration {text:?} ({e}); use e.g. \"30s\", \"10m\", \"24h\""
            ))
        })
    }
}

/// Sizes in the config are strings with a binary unit: `"512MiB"`, `"2GiB"`, `"0"`.
mod bytes_str {
    use serde::{Deserialize, Deserializer, Serializer};

    const UNITS: [(&str, u64); 5] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
        ("B", 1),
    ];

    pub fn serialize<S: Serializer>(bytes: &u64, s: S) -> Result<S::Ok, S::Error> {
        let (unit, size) = UNITS
            .iter()
            .find(|(_, size)| bytes.is_multiple_of(*size) && *bytes >= *size)
            .copied()
            .unwrap_or(("B", 1));
        s.serialize_str(&format!("{}{unit}", bytes / size))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid size {text:?}; use e.g. \"512MiB\", \"2GiB\" or \"0\""
            ))
        })
    }

    pub(super) fn parse(text: &str) -> Option<u64> {
        let t = text.trim();
        let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let number: u64 = t[..digits].parse().ok()?;
        let unit = t[digits..].trim();
        let size = match unit {
            "" => 1,
            _ => UNITS.iter().find(|(name, _)| *name == unit)?.1,
        };
        number.checked_mul(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_in_the_largest_whole_unit_and_read_back() {
        for (secs, text) in [
            (90 * 86_400, "90d"),
            (36 * 3_600, "36h"),
            (90 * 60, "90m"),
            (90, "90s"),
            (0, "0s"),
        ] {
            let d = Duration::from_secs(secs);
            assert_eq!(duration_str::format(d), text);
            assert_eq!(humantime::parse_duration(text).ok(), Some(d));
        }
        let odd = Duration::from_millis(1_500);
        assert_eq!(
            humantime::parse_duration(&duration_str::format(odd)).ok(),
            Some(odd)
        );
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn write(text: &str) -> (tempdir::Dir, PathBuf) {
        let dir = tempdir::Dir::new();
        let path = dir.path().join("seatgate.toml");
        std::fs::write(&path, text).expect("write config");
        (dir, path)
    }

    /// Minimal self-cleaning temp dir so unit tests need no extra crate.
    mod tempdir {
        pub struct Dir(std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                let p = std::env::temp_dir()
                    .join(format!("seatgate-cfg-{}", crate::crypto::random_hex(8)));
                std::fs::create_dir_all(&p).expect("mkdir");
                Dir(p)
            }
            pub fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn example_config_is_exactly_the_defaults() {
        let example = include_str!("../config.example.toml");
        let table: toml::Table = example.parse().expect("example parses");
        let parsed = Config::deserialize(toml::Value::Table(table)).expect("example is valid");
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn example_config_mentions_every_key() {
        let example = include_str!("../config.example.toml");
        let defaults = toml::Table::try_from(Config::default()).expect("defaults render");
        for (key, value) in &defaults {
            match value.as_table() {
                Some(section) => {
                    assert!(
                        example.contains(&format!("[{key}]")),
                        "missing section [{key}]"
                    );
                    for inner in section.keys() {
                        assert!(
                            example.contains(&format!("\n{inner} =")),
                            "missing key {key}.{inner}"
                        );
                    }
                }
                None => assert!(example.contains(&format!("\n{key} =")), "missing key {key}"),
            }
        }
    }

    #[test]
    fn typo_in_file_names_the_key() {
        let (_d, path) = write("[limits]\nmax_conections = 5\n");
        let err = Config::load_from(Some(&path), &[], &Overrides::default())
            .err()
            .expect("typo must fail")
            .to_string();
        assert!(err.contains("max_conections"), "{err}");
        assert!(err.contains("seatgate.toml"), "{err}");
    }

    #[test]
    fn precedence_is_defaults_file_env_flags() {
        let (_d, path) = write(
            "listen = \"127.0.0.1:1000\"\npublic_url = \"https://file.example\"\n[limits]\nqueue = 7\nmax_headers = 9\n",
        );
        let e = env(&[
            ("SEATGATE_PUBLIC_URL", "https://env.example"),
            ("SEATGATE_LIMITS_QUEUE", "11"),
            ("SEATGATE_BACKUP_ENABLED", "false"),
            ("SEATGATE_TLS_HOSTNAMES", "a.example, b.example"),
        ]);
        let flags = Overrides {
            listen: Some("127.0.0.1:2000".parse().expect("addr")),
            ..Overrides::default()
        };
        let loaded = Config::load_from(Some(&path), &e, &flags).expect("loads");
        let c = loaded.config;
        assert_eq!(c.listen.port(), 2000);
        assert_eq!(c.public_url, "https://env.example");
        assert_eq!(c.limits.queue, 11);
        assert_eq!(c.limits.max_headers, 9);
        assert!(!c.backup.enabled);
        assert_eq!(c.tls.hostnames, vec!["a.example", "b.example"]);
        assert!(loaded.warnings.is_empty());
    }

    #[test]
    fn unknown_env_var_is_a_warning_and_bad_value_an_error() {
        let loaded = Config::load_from(
            None,
            &env(&[("SEATGATE_LIMTS_QUEUE", "3")]),
            &Overrides::default(),
        )
        .expect("unknown var is not fatal");
        assert_eq!(loaded.warnings.len(), 1);
        assert!(loaded.warnings[0].contains("SEATGATE_LIMTS_QUEUE"));
        let err = Config::load_from(
            None,
            &env(&[("SEATGATE_LIMITS_QUEUE", "many")]),
            &Overrides::default(),
        )
        .err()
        .expect("bad integer fails")
        .to_string();
        assert!(err.contains("SEATGATE_LIMITS_QUEUE"), "{err}");
    }

    #[test]
    fn durations_are_human_readable() {
        let (_d, path) = write("[limits]\nidle_timeout = \"2m\"\n");
        let c = Config::load_from(Some(&path), &[], &Overrides::default())
            .expect("loads")
            .config;
        assert_eq!(c.limits.idle_timeout, Duration::from_secs(120));
        let (_d2, bad) = write("[limits]\nidle_timeout = \"soon\"\n");
        assert!(Config::load_from(Some(&bad), &[], &Overrides::default()).is_err());
    }

    #[test]
    fn item5_sizes_have_binary_units() {
        assert_eq!(bytes_str::parse("512MiB"), Some(512 << 20));
        assert_eq!(bytes_str::parse("2 GiB"), Some(2 << 30));
        assert_eq!(bytes_str::parse("0"), Some(0));
        assert_eq!(bytes_str::parse("4096"), Some(4096));
        assert_eq!(bytes_str::parse("lots"), None);
        assert_eq!(bytes_str::parse("5MB"), None);
        let c = Config::load_from(
            None,
            &env(&[("SEATGATE_DATABASE_MIN_FREE_SPACE", "2MiB")]),
            &Overrides::default(),
        )
        .expect("loads")
        .config;
        assert_eq!(c.database.min_free_space, 2 << 20);
        assert!(c.to_redacted_toml().contains("min_free_space = \"2MiB\""));
    }

    #[test]
    fn item2_the_wal_bound_is_at_least_one_mib() {
        let (_d, path) = write("[database]\nwal_max_mib = 8\n");
        let c = Config::load_from(Some(&path), &[], &Overrides::default())
            .expect("loads")
            .config;
        assert_eq!(c.database.wal_max_bytes(), 8 * 1024 * 1024);
        let (_d2, zero) = write("[database]\nwal_max_mib = 0\n");
        let err = Config::load_from(Some(&zero), &[], &Overrides::default())
            .err()
            .expect("0 is refused")
            .to_string();
        assert!(err.contains("database.wal_max_mib"), "{err}");
    }

    #[test]
    fn metrics_need_a_token_and_redaction_hides_it() {
        let (_d, path) = write("[metrics]\nenabled = true\n");
        assert!(Config::load_from(Some(&path), &[], &Overrides::default()).is_err());
        let (_d2, ok) = write("[metrics]\nenabled = true\ntoken = \"0123456789abcdef-secret\"\n");
        let c = Config::load_from(Some(&ok), &[], &Overrides::default())
            .expect("loads")
            .config;
        let shown = c.to_redacted_toml();
        assert!(!shown.contains("0123456789abcdef-secret"));
        assert!(shown.contains("<redacted>"));
    }
}
