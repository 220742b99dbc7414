//! `seatgate profile export`: the MDM configuration profile for the Macs.

use std::io::Write;
use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};

use super::{CliError, runtime};
use crate::clock::now_unix;
use crate::config::Config;
use crate::db::Db;
use crate::deploy::profile::{self, Activation};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Method {
    /// Each user signs in with their work email (per-user seats)
    Sso,
    /// With a license key (per-device seats)
    Key,
}

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Write the .mobileconfig for your MDM (Jamf Pro, Intune, Kandji, …): the gateway's CA
    /// (self-signed mode) and the client app's settings. Same gateway, same identifiers:
    /// uploading a new export replaces the old profile
    Export {
        /// Where to write it [default: standard output]
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Sign with this identity (PKCS#12 or PEM with certificate and key) [default:
        /// [profile] signing_identity]; its password from [profile] signing_password_file
        /// or SEATGATE_PROFILE_SIGNING_PASSWORD
        #[arg(long, value_name = "FILE", conflicts_with = "unsigned")]
        sign_identity: Option<PathBuf>,
        /// Do not sign, even if [profile] signing_identity is set
        #[arg(long)]
        unsigned: bool,
        /// How the Macs activate [default: key with --license-key, else sso]
        #[arg(long, value_enum)]
        activation: Option<Method>,
        /// A license key to put in the profile (Macs then activate with it, no sign-in)
        #[arg(long, value_name = "KEY")]
        license_key: Option<String>,
    },
}

pub fn run(
    db: &Db,
    config: &Config,
    public_url: &str,
    cmd: ProfileCommand,
) -> Result<(), CliError> {
    let ProfileCommand::Export {
        out,
        sign_identity,
        unsigned,
        activation,
        license_key,
    } = cmd;
    let activation = match (activation, license_key) {
        (Some(Method::Sso), Some(_)) => {
            return Err(CliError::Usage(
                "--license-key goes with --activation key, not sso".into(),
            ));
        }
        (Some(Method::Sso) | None, None) => Activation::Sso,
        (_, key) => Activation::Key(key),
    };
    let identity = if unsigned {
        None
    } else {
        crate::deploy::signing_identity(config, sign_identity.as_deref())
            .map_err(|e| CliError::Usage(e.to_string()))?
    };
    let input = crate::deploy::profile_input(db, config, public_url, activation, now_unix())
        .map_err(|e| CliError::Usage(e.message))?;
    let built = profile::export(&input, identity.as_ref()).map_err(runtime)?;
    crate::deploy::audit_export(db, super::access::ACTOR, &input, &built, now_unix())
        .map_err(|e| CliError::Runtime(e.message))?;
    let summary = format!(
        "profile {} version {} for {}: {}{}, {}",
        built.identifier,
        built.version,
        input.server_url,
        if input.ca_der.is_some() {
            "the gateway's CA root and "
        } else {
            ""
        },
        format_args!("{} settings", input.preference_domain),
        match &built.signed_by {
            Some(s) => format!("signed by {s}"),
            None => "unsigned".to_string(),
        }
    );
    match out {
        Some(path) => {
            std::fs::write(&path, &built.bytes)
                .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
            outln!("wrote {}: {summary}", path.display());
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&built.bytes).map_err(runtime)?;
            stdout.flush().map_err(runtime)?;
            eprintln!("{summary}");
        }
    }
    Ok(())
}
