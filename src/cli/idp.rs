//! `seatgate idp …`: SAML IdP connections.

use std::path::Path;

use clap::{Subcommand, ValueEnum};

use super::{CliError, open_existing_db, public_url_for_cli, runtime};
use crate::clock::rfc3339;
use crate::config::Config;
use crate::db::Db;
use crate::db::idp::Options;
use crate::saml::connections::{self, AddError, AddRequest};
use crate::saml::fetch::MetadataFetcher;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

impl Switch {
    fn on(self) -> bool {
        self == Switch::On
    }
}

#[derive(Debug, Subcommand)]
pub enum IdpCommand {
    /// Add a SAML IdP connection from its metadata (file or https URL); prints what to
    /// enter at the IdP
    Add {
        /// A name for the connection, e.g. "Contoso Entra"
        #[arg(long)]
        name: String,
        /// The IdP's SAML metadata: an XML file, or an https:// URL that is then refreshed
        /// on a schedule ([saml] metadata_refresh)
        #[arg(long, value_name = "FILE_OR_URL")]
        metadata: String,
        /// An email domain this IdP signs users in for (repeatable); a domain belongs to one IdP
        #[arg(long = "domain", value_name = "DOMAIN", required = true)]
        domains: Vec<String>,
        /// entra, okta, google, jumpcloud, ping or generic
        #[arg(long, default_value = "generic")]
        preset: String,
        /// Create users unknown to the directory on their first sign-in (default for google)
        #[arg(long, conflicts_with = "no_jit")]
        jit: bool,
        /// Never create users from sign-ins (they must come from SCIM)
        #[arg(long)]
        no_jit: bool,
        /// Sign AuthnRequests with the gateway's SAML key (not for Google Workspace)
        #[arg(long)]
        sign_requests: bool,
        /// Accept IdP-initiated sign-in (an app tile at the IdP) into the admin portal;
        /// never used for device activation
        #[arg(long)]
        allow_idp_initiated: bool,
    },
    /// List IdP connections with their switches, domains, certificates and metadata refresh
    List,
    /// Change a connection's switches
    Set {
        /// The connection's id
        id: String,
        #[arg(long, value_enum)]
        jit: Option<Switch>,
        #[arg(long, value_enum)]
        sign_requests: Option<Switch>,
        #[arg(long, value_enum)]
        idp_initiated: Option<Switch>,
        /// New metadata from the same IdP (a file or URL), e.g. after a certificate
        /// rollover; users, seats and settings stay
        #[arg(long, value_name = "FILE_OR_URL")]
        metadata: Option<String>,
    },
    /// Fetch the metadata of URL-backed connections now (a failure keeps the last good copy)
    Refresh,
    /// Remove a connection; its domains can no longer sign in
    ///
    /// With no IdP left to deprovision them, the users and groups it provisioned are
    /// deleted (seats freed, devices refused), its SCIM tokens revoked, its mappings removed
    /// and admin sessions opened through it ended.
    Remove {
        /// The connection's id
        id: String,
    },
}

pub fn run(config: &Config, cmd: IdpCommand) -> Result<(), CliError> {
    let db = open_existing_db(config)?;
    match cmd {
        IdpCommand::Add {
            name,
            metadata,
            domains,
            preset,
            jit,
            no_jit,
            sign_requests,
            allow_idp_initiated,
        } => {
            let xml = read_metadata(config, &metadata)?;
            let request = AddRequest {
                actor: super::access::ACTOR,
                name: &name,
                preset: &preset,
                metadata_xml: &xml,
                metadata_source: &metadata,
                domains: &domains,
                jit_users: if jit {
                    Some(true)
                } else if no_jit {
                    Some(false)
                } else {
                    None
                },
                sign_requests,
                allow_idp_initiated,
            };
            let added = connections::add(&db, &request).map_err(add_error)?;
            let public_url = public_url_for_cli(config, &db)?;
            print!("{}", connections::setup_text(&public_url, &added));
        }
        IdpCommand::List => list(&db)?,
        IdpCommand::Set {
            id,
            jit,
            sign_requests,
            idp_initiated,
            metadata,
        } => {
            if let Some(source) = metadata {
                let xml = read_metadata(config, &source)?;
                let n = connections::update_metadata(&db, &id, &xml, &source, super::access::ACTOR)
                    .map_err(add_error)?;
                outln!("{id}: metadata replaced from {source}; {n} signing certificate(s) trusted");
                if jit.is_none() && sign_requests.is_none() && idp_initiated.is_none() {
                    return Ok(());
                }
            }
            let current = db
                .read(crate::db::idp::list)
                .map_err(runtime)?
                .into_iter()
                .find(|c| c.id == id)
                .ok_or_else(|| CliError::Usage(format!("there is no IdP connection {id:?}")))?
                .options;
            let options = Options {
                jit_users: jit.map_or(current.jit_users, Switch::on),
                sign_requests: sign_requests.map_or(current.sign_requests, Switch::on),
                allow_idp_initiated: idp_initiated.map_or(current.allow_idp_initiated, Switch::on),
            };
            connections::set_options(&db, &id, &options, super::access::ACTOR)
                .map_err(add_error)?;
            outln!(
                "{id}: jit {}, sign-requests {}, idp-initiated {}",
                word(options.jit_users),
                word(options.sign_requests),
                word(options.allow_idp_initiated)
            );
        }
        IdpCommand::Remove { id } => {
            let removed = connections::remove(&db, &id, super::access::ACTOR).map_err(add_error)?;
            outln!("removed IdP connection {id}: {removed}");
        }
        IdpCommand::Refresh => refresh(config, &db)?,
    }
    Ok(())
}

/// A metadata URL is fetched (through the configured CA file); anything else is a file.
fn read_metadata(config: &Config, metadata: &str) -> Result<String, CliError> {
    if metadata.starts_with("https://") || metadata.starts_with("http://") {
        fetcher(config)?
            .fetch(metadata)
            .map_err(|e| CliError::Usage(e.to_string()))
    } else {
        std::fs::read_to_string(metadata)
            .map_err(|e| CliError::Runtime(format!("cannot read {metadata}: {e}")))
    }
}

fn list(db: &Db) -> Result<(), CliError> {
    let all = db.read(crate::db::idp::list).map_err(runtime)?;
    if all.is_empty() {
        outln!("no IdP connections; add one with `seatgate idp add`");
    }
    for c in all {
        let o = c.options;
        outln!(
            "{}\t{}\t{}\t{}\tdomains: {}",
            c.id,
            c.name,
            c.preset,
            c.idp_entity_id,
            c.domains.join(", ")
        );
        outln!(
            "    jit {}, sign-requests {}, idp-initiated {}",
            word(o.jit_users),
            word(o.sign_requests),
            word(o.allow_idp_initiated)
        );
        for (sha, subject, not_after) in c.certificates {
            outln!(
                "    signing certificate {subject} (SHA-256 {sha}) valid until {}",
                rfc3339(not_after)
            );
        }
        match c.refresh {
            Some(r) => outln!(
                "    metadata from {} (last refreshed {}{})",
                r.url,
                r.last_success_at.map_or_else(|| "never".into(), rfc3339),
                r.last_error
                    .map(|e| format!("; last attempt failed: {e}"))
                    .unwrap_or_default()
            ),
            None => outln!("    metadata from {}", c.metadata_source),
        }
    }
    Ok(())
}

fn refresh(config: &Config, db: &Db) -> Result<(), CliError> {
    let outcomes = connections::refresh_metadata(db, &fetcher(config)?, None).map_err(runtime)?;
    if outcomes.is_empty() {
        outln!("no connection takes its metadata from a URL");
    }
    let mut failed = false;
    for r in outcomes {
        match r.outcome {
            Ok(n) => outln!("{}: refreshed, {n} signing certificate(s)", r.connection),
            Err(e) => {
                failed = true;
                outln!("{}: kept the last good metadata; {e}", r.connection);
            }
        }
    }
    if failed {
        return Err(CliError::Runtime(
            "some metadata could not be refreshed".into(),
        ));
    }
    Ok(())
}

fn fetcher(config: &Config) -> Result<MetadataFetcher, CliError> {
    let ca = &config.saml.metadata_ca_file;
    MetadataFetcher::new((!ca.is_empty()).then(|| Path::new(ca)))
        .map_err(|e| CliError::Usage(e.to_string()))
}

fn add_error(e: AddError) -> CliError {
    match e {
        AddError::Db(e) => CliError::Runtime(e.to_string()),
        other => CliError::Usage(other.to_string()),
    }
}

fn word(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}
