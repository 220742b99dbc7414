//! `seatgate update …`: the local update server's app packages, on the data directory
//! directly (safe while the server runs) through `distribution`, as the admin API.

use std::path::PathBuf;

use clap::Subcommand;

use super::CliError;
use super::image::{copy_in, problem};
use crate::audit::Actor;
use crate::clock::{now_unix, rfc3339};
use crate::config::Config;
use crate::db::Db;
use crate::distribution::updates;
use crate::distribution::uploads::{Finished, Target};

#[derive(Debug, Subcommand)]
pub enum UpdateCommand {
    /// Add an app installer package: copied into the storage folder (resumable), signed
    /// with the gateway's update key (Sparkle's edSignature) and offered on its branch
    Add {
        file: PathBuf,
        #[arg(long)]
        version: String,
        /// stable or beta
        #[arg(long, default_value = "stable")]
        branch: String,
        /// The oldest macOS it installs on, e.g. 13.0
        #[arg(long)]
        min_os: String,
        /// Release notes (plain text)
        #[arg(long, default_value = "")]
        notes: String,
        /// The name it is offered under [default: App-VERSION.pkg]
        #[arg(long)]
        file_name: Option<String>,
        #[arg(long)]
        sha256: Option<String>,
    },
    /// Versions per branch, the feeds, and which app versions the Macs report
    List,
    /// Stop offering a version (feeds leave it out; its file is no longer served)
    Retire { version: String },
}

pub fn run(db: &Db, config: &Config, public_url: &str, cmd: UpdateCommand) -> Result<(), CliError> {
    let dist = super::image::distribution(db, config)?;
    match cmd {
        UpdateCommand::Add {
            file,
            version,
            branch,
            min_os,
            notes,
            file_name,
            sha256,
        } => {
            let target = Target::Package {
                file_name: file_name
                    .unwrap_or_else(|| crate::endpoints::updates::default_file_name(&version)),
                version,
                branch,
                min_os,
                notes,
            };
            if let Finished::Package(p) = copy_in(&dist, db, &file, target, sha256.as_deref())? {
                outln!(
                    "added app version {} on the {} branch ({} bytes), sha256 {}, edSignature {}",
                    p.version,
                    p.branch,
                    p.size,
                    p.sha256,
                    p.ed_signature
                );
            }
            Ok(())
        }
        UpdateCommand::List => list(db, public_url),
        UpdateCommand::Retire { version } => {
            updates::retire(db, &Actor::Cli, &version, now_unix()).map_err(problem)?;
            outln!("retired app version {version}; the feeds no longer offer it");
            Ok(())
        }
    }
}

fn list(db: &Db, public_url: &str) -> Result<(), CliError> {
    let all = updates::all(db).map_err(problem)?;
    outln!("feeds: {public_url}/updates/stable/appcast.xml, {public_url}/updates/beta/appcast.xml");
    outln!(
        "update key (SUPublicEDKey): {}",
        updates::public_key(db, now_unix()).map_err(problem)?
    );
    let running = db
        .read(crate::db::distribution::app_versions)
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    for p in &all {
        let devices = running
            .iter()
            .find(|(v, _)| v == &p.version)
            .map_or(0, |r| r.1);
        outln!(
            "{}  {}  macOS {}+  {} bytes  added {}  on {devices} device(s){}",
            p.version,
            p.branch,
            p.min_os,
            p.size,
            rfc3339(p.created_at),
            p.retired_at
                .map(|t| format!("  retired {}", rfc3339(t)))
                .unwrap_or_default()
        );
    }
    Ok(())
}
