//! `seatgate backup` and `seatgate restore`: a plain database copy as before, or (with
//! `--include-keys`) a bundle with the keys a replacement machine needs (`crate::bundle`),
//! encrypted with a passphrase from a file or `SEATGATE_BACKUP_PASSPHRASE`, never from
//! the command line (where `ps` and shell history would show it).

use std::path::{Path, PathBuf};

use clap::Args;

use super::{CliError, open_existing_db, runtime};
use crate::bundle::{self, BundleError};
use crate::config::{Config, TlsMode};
use crate::datadir::DataDir;
use crate::db::backup;

const PASSPHRASE_ENV: &str = "SEATGATE_BACKUP_PASSPHRASE";

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the backup (a new file, mode 0600)
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Also take the local CA and server certificate, the SAML signing key (and, as
    /// always, the lease signing keys in the database): one bundle for a new machine
    #[arg(long)]
    include_keys: bool,
    /// Encrypt the bundle with the passphrase in FILE (first line; or set
    /// SEATGATE_BACKUP_PASSPHRASE)
    #[arg(long, value_name = "FILE", requires = "include_keys")]
    passphrase_file: Option<PathBuf>,
    /// Write the keys unencrypted (protect the file yourself)
    #[arg(long, requires = "include_keys", conflicts_with = "passphrase_file")]
    no_encryption: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file (a database copy or a bundle) to restore
    file: PathBuf,
    /// The passphrase of an encrypted bundle, in FILE (or set SEATGATE_BACKUP_PASSPHRASE)
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
}

/// A passphrase others can read protects nothing; say so, but go on (the admin may be
/// restoring from a read-only medium).
fn warn_if_others_can_read(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o044 != 0
    {
        eprintln!(
            "seatgate: warning: the passphrase file {} can be read by other users (mode {:o}); chmod 600 it",
            path.display(),
            meta.permissions().mode() & 0o777
        );
    }
}

/// The passphrase from `--passphrase-file` (its first line), else the environment.
fn passphrase(file: Option<&Path>) -> Result<Option<String>, CliError> {
    let text = match file {
        Some(path) => {
            warn_if_others_can_read(path);
            Some(std::fs::read_to_string(path).map_err(|e| {
                CliError::Usage(format!(
                    "cannot read the passphrase file {}: {e}",
                    path.display()
                ))
            })?)
        }
        None => std::env::var(PASSPHRASE_ENV).ok(),
    };
    Ok(text.map(|t| t.lines().next().unwrap_or("").to_string()))
}

pub fn backup(config: &Config, args: &BackupArgs) -> Result<(), CliError> {
    let out = &args.out;
    if out.exists() {
        return Err(CliError::Runtime(format!(
            "{} already exists; choose a new file name",
            out.display()
        )));
    }
    if !args.include_keys {
        let db = open_existing_db(config)?;
        db.backup_to(out).map_err(runtime)?;
        let verified = backup::verify(out).map_err(runtime)?;
        outln!(
            "backup written to {} ({} bytes, schema version {}, integrity ok)",
            out.display(),
            verified.bytes,
            verified.version
        );
        return Ok(());
    }
    let passphrase = if args.no_encryption {
        if std::env::var_os(PASSPHRASE_ENV).is_some() {
            return Err(CliError::Usage(format!(
                "{PASSPHRASE_ENV} is set but --no-encryption asks for an unencrypted bundle; unset one of them"
            )));
        }
        None
    } else {
        let Some(p) = passphrase(args.passphrase_file.as_deref())? else {
            return Err(CliError::Usage(format!(
                "--include-keys writes private keys: give a passphrase with --passphrase-file FILE or {PASSPHRASE_ENV}, or pass --no-encryption to write them unencrypted"
            )));
        };
        if p.chars().count() < bundle::MIN_PASSPHRASE {
            return Err(CliError::Usage(format!(
                "the backup passphrase must be at least {} characters long",
                bundle::MIN_PASSPHRASE
            )));
        }
        Some(p)
    };
    let data = DataDir::existing(&config.data_dir).map_err(runtime)?;
    let db = open_existing_db(config)?;
    // The plain copy holds the lease signing keys: it lives only in the 0700 backup
    // directory, and only until the bundle is written.
    let backup_dir = config.backup_dir();
    crate::datadir::ensure_private_dir(&backup_dir)
        .map_err(|e| CliError::Runtime(format!("cannot create {}: {e}", backup_dir.display())))?;
    let copy = backup_dir.join(format!(".bundle-{}.db", crate::crypto::random_hex(4)));
    let written = db.backup_to(&copy).map_err(runtime).and_then(|()| {
        let verified = backup::verify(&copy).map_err(runtime)?;
        bundle::write(&data, &copy, out, passphrase.as_deref().map(str::as_bytes))
            .map(|w| (w, verified.version))
            .map_err(runtime)
    });
    let _ = std::fs::remove_file(&copy);
    let (written, version) = written?;
    outln!(
        "backup bundle written to {} ({} bytes, schema version {}, {})",
        out.display(),
        written.bytes,
        version,
        if written.encrypted {
            "encrypted with the passphrase"
        } else {
            "NOT encrypted: it holds private keys, keep it safe"
        }
    );
    outln!("it holds: {}", written.files.join(", "));
    if config.tls.mode == TlsMode::Files {
        outln!(
            "not included: your certificate and key ({}, {}); copy them to the new machine yourself",
            config.tls.cert,
            config.tls.key
        );
    }
    Ok(())
}

pub fn restore(config: &Config, args: &RestoreArgs) -> Result<(), CliError> {
    let file = &args.file;
    let is_bundle = bundle::is_bundle(file)
        .map_err(|e| CliError::Runtime(format!("cannot read {}: {e}", file.display())))?;
    let passphrase = passphrase(args.passphrase_file.as_deref())?;
    if !is_bundle {
        // Given a passphrase, the admin expects an encrypted bundle; a plain database copy
        // (which holds the lease keys) is just as forgeable as an unencrypted bundle.
        if passphrase.is_some() {
            return Err(CliError::Runtime(
                bundle::BundleError::NotEncrypted(file.to_path_buf()).to_string(),
            ));
        }
        return restore_database(config, file);
    }
    let passphrase = passphrase.as_deref().map(str::as_bytes);
    // The whole bundle is checked before the data directory is touched, or even created.
    bundle::verify(file, passphrase).map_err(bundle_error)?;
    refuse_symlinks(config)?;
    let data = DataDir::create(&config.data_dir).map_err(runtime)?;
    let _lock = data
        .lock()
        .map_err(|e| CliError::Runtime(format!("{e}; restore only works offline")))?;
    let restored =
        bundle::restore(file, passphrase, &data, &config.backup_dir()).map_err(bundle_error)?;
    let mut owned: Vec<&str> = vec!["seatgate.lock", "backups", "tls", "saml"];
    owned.extend(restored.files.iter().copied());
    warn_unowned(&data, &owned);
    if let Some(kept) = &restored.kept_database {
        outln!("the previous database was kept as {}", kept.display());
    }
    if let Some(kept) = &restored.kept_keys {
        outln!("the previous keys were kept in {}", kept.display());
    }
    outln!(
        "restored {} into {} (schema version {}): {}; start seatgate to use it",
        file.display(),
        data.root().display(),
        restored.version,
        restored.files.join(", ")
    );
    Ok(())
}

/// A passphrase the admin must fix is a usage error (exit 2); damage is a runtime one.
fn bundle_error(e: BundleError) -> CliError {
    match e {
        BundleError::PassphraseNeeded(_) => CliError::Usage(e.to_string()),
        _ => CliError::Runtime(e.to_string()),
    }
}

fn restore_database(config: &Config, file: &Path) -> Result<(), CliError> {
    refuse_symlinks(config)?;
    let data = DataDir::create(&config.data_dir).map_err(runtime)?;
    let _lock = data
        .lock()
        .map_err(|e| CliError::Runtime(format!("{e}; restore only works offline")))?;
    let verified = backup::verify(file).map_err(runtime)?;
    let kept = backup::restore(file, &data.db_path(), &config.backup_dir()).map_err(runtime)?;
    warn_unowned(&data, &["seatgate.lock", "backups", "seatgate.db"]);
    if let Some(kept) = kept {
        outln!("the previous database was kept as {}", kept.display());
    }
    outln!(
        "restored {} into {} (schema version {}); start seatgate to use it",
        file.display(),
        data.db_path().display(),
        verified.version
    );
    Ok(())
}

/// Restored files get the data directory's owner (see [`DataDir::match_owner`]); any that
/// cannot are named, since the service would not start with them.
fn warn_unowned(data: &DataDir, relative: &[&str]) {
    for path in data.match_owner(relative) {
        outln!(
            "warning: {} could not be given the data directory's owner; chown it before starting seatgate",
            path.display()
        );
    }
}

/// Restore runs as root on a folder the service account owns: a symlink it planted there
/// (`tls -> /etc/…`) would have root write key files where it points.
fn refuse_symlinks(config: &Config) -> Result<(), CliError> {
    for name in ["tls", "saml", "backups", "seatgate.db"] {
        let path = config.data_dir.join(name);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(CliError::Runtime(format!(
                "{} is a symbolic link; restore writes only into the data directory itself: replace the link with a folder (or file) and try again",
                path.display()
            )));
        }
    }
    Ok(())
}
