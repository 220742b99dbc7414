//! Deploying to a fleet of Macs: the MDM configuration profile ([`profile`]). The pure
//! builder lives there; this gathers what it says from the configuration, the database
//! and the data directory, and loads the signing identity.

pub mod invitations;
pub mod profile;

use std::path::Path;

use crate::config::{Config, TlsMode};
use crate::db::Db;
use crate::domain::problem::{Problem, Reason};
use profile::{Activation, ProfileError, ProfileInput, SigningIdentity};

/// The organization's name in emails and pages: `[profile] organization`, else the public
/// URL's host.
pub fn organization(config: &Config, public_url: &str) -> String {
    let configured = config.profile.organization.trim();
    if !configured.is_empty() {
        return configured.to_string();
    }
    public_url
        .split_once("://")
        .map_or(public_url, |(_, r)| r)
        .split([':', '/'])
        .next()
        .unwrap_or("")
        .to_string()
}

/// What every invitation made now shares.
pub fn invitation_context<'a>(
    config: &Config,
    public_url: &'a str,
    organization: &'a str,
) -> invitations::Context<'a> {
    invitations::Context {
        public_url,
        organization,
        valid_for_secs: config.invitations.valid_for.as_secs() as i64,
    }
}

/// The gateway's own CA certificate (DER), when it serves with one (self-signed mode).
fn own_ca(config: &Config) -> Result<Option<Vec<u8>>, Problem> {
    if config.tls.mode != TlsMode::SelfSigned {
        return Ok(None);
    }
    let path = config.data_dir.join("tls").join("ca.pem");
    let pem = match std::fs::read(&path) {
        Ok(p) => p,
        // Not created yet (the gateway has never served): nothing to trust.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            log::error!("cannot read {}: {e}", path.display());
            return Err(Problem::internal());
        }
    };
    let der = profile::certificate_der(&pem).map_err(|e| {
        log::error!("{} is not a PEM certificate: {e}", path.display());
        Problem::internal()
    })?;
    Ok(Some(der))
}

/// What the profile says, for `activation`: a typed license key is checked to be a live
/// key of this gateway before it goes into a profile.
pub fn profile_input(
    db: &Db,
    config: &Config,
    public_url: &str,
    activation: Activation,
    now: i64,
) -> Result<ProfileInput, Problem> {
    // A typed key: a live key of this gateway, written as it is shown.
    let (activation, variant) = match activation {
        Activation::Sso => (Activation::Sso, String::new()),
        Activation::Key(None) => (Activation::Key(None), "key".to_string()),
        Activation::Key(Some(typed)) => {
            let key = crate::licensing::keys::check_live(db, &typed)?;
            let shown = crate::licensing::keys::normalized(&typed).unwrap_or(typed);
            (Activation::Key(Some(shown)), format!("key-{}", key.id))
        }
    };
    let instance = crate::licensing::entitlements::instance_key(db, now)
        .map_err(Problem::from)?
        .thumbprint();
    let mut email_domains: Vec<String> = db
        .read(crate::db::idp::list)?
        .into_iter()
        .flat_map(|c| c.domains)
        .collect();
    email_domains.sort();
    email_domains.dedup();
    Ok(ProfileInput {
        server_url: public_url.to_string(),
        instance,
        organization: config.profile.organization.clone(),
        preference_domain: config.profile.preference_domain.clone(),
        ca_der: own_ca(config)?,
        email_domains,
        activation,
        renewal_check_secs: config.profile.renewal_check_interval.as_secs(),
        update_branch: config.profile.update_branch.clone(),
        variant,
    })
}

/// The signing identity: `path` if given, else `[profile] signing_identity`; `None` when
/// neither is set (profiles are then unsigned).
pub fn signing_identity(
    config: &Config,
    path: Option<&Path>,
) -> Result<Option<SigningIdentity>, ProfileError> {
    let configured = config.profile.signing_identity.as_str();
    let path = match path {
        Some(p) => p,
        None if configured.is_empty() => return Ok(None),
        None => Path::new(configured),
    };
    let password = match config.profile.signing_password_file.as_str() {
        "" => std::env::var("SEATGATE_PROFILE_SIGNING_PASSWORD").unwrap_or_default(),
        file => std::fs::read_to_string(file)
            .map_err(|e| {
                ProfileError::Identity(format!("cannot read the signing password file {file}: {e}"))
            })?
            .lines()
            .next()
            .unwrap_or("")
            .to_string(),
    };
    SigningIdentity::load(path, &password).map(Some)
}

/// A profile holding a license key in clear text is audited when it is exported.
pub fn audit_export(
    db: &Db,
    actor: &crate::audit::Actor,
    input: &ProfileInput,
    built: &profile::Profile,
    now: i64,
) -> Result<(), Problem> {
    let Some(key) = input.variant.strip_prefix("key-") else {
        return Ok(());
    };
    let detail =
        serde_json::json!({"key": key, "version": built.version, "identifier": built.identifier});
    db.write(|tx| {
        crate::db::licensing::audit(
            tx,
            now,
            actor,
            crate::audit::AuditAction::ProfileWithKeyExported,
            None,
            crate::db::licensing::AuditAbout {
                subject: Some(key),
                detail: Some(&detail.to_string()),
                ..Default::default()
            },
        )
    })?;
    Ok(())
}

impl From<ProfileError> for Problem {
    fn from(e: ProfileError) -> Problem {
        match e {
            ProfileError::Identity(why) => Problem::new(Reason::BadRequest, why),
            ProfileError::Build(why) => {
                log::error!("profile: {why}");
                Problem::internal()
            }
        }
    }
}
