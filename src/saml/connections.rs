//! Adding IdP connections: the rules shared by the CLI (and later the portal). A connection
//! needs IdP metadata with a signing certificate, a preset, and at least one email domain
//! that no other connection owns.

use crate::audit::{Actor, AuditAction};
use crate::clock::{now_unix, rfc3339};
use crate::db::idp::{self, NewConnection, Options};
use crate::db::{Db, DbError};
use crate::domain::connection::IdpMetadata;
use crate::saml::metadata::{self, MetadataError};
use crate::saml::preset::{self, Preset};

#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error("{0}")]
    Metadata(#[from] MetadataError),
    #[error("unknown preset {0:?}; use one of: {list}", list = preset::keys())]
    UnknownPreset(String),
    #[error("{0:?} is not an email domain (expected e.g. contoso.com)")]
    BadDomain(String),
    #[error("the domain {domain} already belongs to the connection {owner}")]
    DomainTaken { domain: String, owner: String },
    #[error("give at least one email domain (--domain) this IdP may sign users in for")]
    NoDomain,
    #[error("the name must contain letters or digits")]
    BadName,
    #[error("{0} does not accept signed AuthnRequests; leave request signing off for it")]
    SigningNotSupported(&'static str),
    #[error("there is no IdP connection {0:?}")]
    UnknownConnection(String),
    #[error(
        "the metadata names the IdP {found:?}, not this connection's {expected:?}; add another IdP as a new connection"
    )]
    OtherIdp { found: String, expected: String },
    #[error(transparent)]
    Db(#[from] DbError),
}

/// One sentence for the admin: an unknown connection is 404, a database fault is what the
/// database layer says, anything else is the request's fault.
impl From<AddError> for crate::domain::problem::Problem {
    fn from(e: AddError) -> Self {
        use crate::domain::problem::{Problem, Reason};
        match e {
            AddError::UnknownConnection(_) => {
                Problem::new(Reason::NotFound, "There is no such IdP connection.")
            }
            AddError::Db(e) => e.into(),
            e => Problem::new(Reason::BadRequest, e.to_string()),
        }
    }
}

impl From<rusqlite::Error> for AddError {
    fn from(e: rusqlite::Error) -> AddError {
        AddError::Db(DbError::Sqlite(e))
    }
}

pub struct AddRequest<'a> {
    pub name: &'a str,
    pub preset: &'a str,
    pub metadata_xml: &'a str,
    /// Where the metadata came from (a file path), for the record.
    pub metadata_source: &'a str,
    pub domains: &'a [String],
    /// Create unknown users from their sign-in; `None`: the preset's default.
    pub jit_users: Option<bool>,
    pub sign_requests: bool,
    pub allow_idp_initiated: bool,
    /// Who adds it, for the audit log.
    pub actor: &'a Actor,
}

pub struct Added {
    pub id: String,
    pub preset: &'static Preset,
    pub metadata: IdpMetadata,
    pub domains: Vec<String>,
    pub options: Options,
}

pub fn add(db: &Db, req: &AddRequest<'_>) -> Result<Added, AddError> {
    let preset =
        preset::find(req.preset).ok_or_else(|| AddError::UnknownPreset(req.preset.to_string()))?;
    let meta = metadata::parse_idp_metadata(req.metadata_xml)?;
    let mut domains = Vec::new();
    for d in req.domains {
        let d = normalize_domain(d)?;
        if !domains.contains(&d) {
            domains.push(d);
        }
    }
    if domains.is_empty() {
        return Err(AddError::NoDomain);
    }
    let base = slug(req.name);
    if base.is_empty() {
        return Err(AddError::BadName);
    }
    if req.sign_requests && !preset.accepts_signed_requests {
        return Err(AddError::SigningNotSupported(preset.label));
    }
    let options = Options {
        jit_users: req.jit_users.unwrap_or(preset.jit_by_default),
        sign_requests: req.sign_requests,
        allow_idp_initiated: req.allow_idp_initiated,
    };
    let id = db.write(|tx| {
        for d in &domains {
            if let Some(owner) = idp::domain_owner(tx, d)? {
                return Err(AddError::DomainTaken {
                    domain: d.clone(),
                    owner,
                });
            }
        }
        let mut id = base.clone();
        let mut n = 2;
        while idp::id_taken(tx, &id)? {
            id = format!("{base}-{n}");
            n += 1;
        }
        idp::insert(
            tx,
            &NewConnection {
                id: &id,
                options,
                name: req.name.trim(),
                preset: preset.key,
                metadata: &meta,
                metadata_xml: req.metadata_xml,
                metadata_source: req.metadata_source,
                domains: &domains,
            },
            now_unix(),
        )?;
        let detail = serde_json::json!({"name": req.name.trim(), "preset": preset.key,
            "domains": domains, "metadata": req.metadata_source});
        crate::db::licensing::audit(
            tx,
            now_unix(),
            req.actor,
            AuditAction::IdpConnectionAdded,
            None,
            crate::db::licensing::AuditAbout {
                subject: Some(&id),
                detail: Some(&detail.to_string()),
                ..Default::default()
            },
        )?;
        Ok::<_, AddError>(id)
    })?;
    Ok(Added {
        id,
        preset,
        metadata: meta,
        domains,
        options,
    })
}

/// Removes a connection: its domains can no longer sign in (until another connection
/// claims them), and admin sessions opened through it end. Directory users stay.
/// What removing a connection did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub users_deleted: usize,
    pub groups_deleted: usize,
    pub scim_tokens_revoked: usize,
    pub mappings_removed: usize,
    pub policy_assignments_removed: usize,
    pub sessions_ended: usize,
}

impl std::fmt::Display for Removed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} user(s) and {} group(s) it provisioned deleted (their seats freed and devices revoked), {} SCIM token(s) revoked, {} group mapping(s) and {} policy assignment(s) removed, {} admin session(s) ended",
            self.users_deleted,
            self.groups_deleted,
            self.scim_tokens_revoked,
            self.mappings_removed,
            self.policy_assignments_removed,
            self.sessions_ended
        )
    }
}

pub fn remove(db: &Db, id: &str, actor: &Actor) -> Result<Removed, AddError> {
    let now = now_unix();
    db.write(|tx| {
        let Some(c) = idp::list(tx)?.into_iter().find(|c| c.id == id) else {
            return Err(AddError::UnknownConnection(id.to_string()));
        };
        idp::delete(tx, id)?;
        let ended = crate::db::admin::end_sessions_through(tx, id, now)?;
        // No IdP is left to deprovision what it provisioned, so the removal does: its SCIM
        // tokens are revoked, its users and groups deleted (seats released, devices
        // revoked, all in this transaction, as if its IdP had deleted them; the audit log
        // keeps the record), and its mappings removed. Its id is never reused.
        let revoked = crate::db::tokens::revoke_of_connection(tx, id, actor)?;
        let mark = crate::db::licensing::last_event_id(tx)?;
        let (users_deleted, groups_deleted) = crate::db::directory::delete_scope(tx, id, now)?;
        crate::licensing::reconcile::after_directory_change(tx, mark, actor, now)?;
        let mut mappings_removed = 0;
        for m in crate::db::admin::mappings(tx)? {
            if m.connection_id.as_deref() == Some(id) {
                crate::db::admin::remove_mapping(tx, &m.id)?;
                let detail = serde_json::json!({"group": m.group_ref, "role": m.role,
                    "connection_removed": id});
                crate::db::licensing::audit(
                    tx,
                    now,
                    actor,
                    AuditAction::MappingRemoved,
                    None,
                    crate::db::licensing::AuditAbout {
                        subject: Some(&m.id),
                        detail: Some(&detail.to_string()),
                        ..Default::default()
                    },
                )?;
                mappings_removed += 1;
            }
        }
        let policy_assignments_removed =
            crate::licensing::policies::unassign_connection(tx, id, actor, now)?;
        crate::licensing::reconcile::reconcile(tx, None, actor, now)?;
        let detail = serde_json::json!({"name": c.name, "domains": c.domains,
            "sessions_ended": ended, "scim_tokens_revoked": revoked,
            "users_deleted": users_deleted, "groups_deleted": groups_deleted,
            "mappings_removed": mappings_removed,
            "policy_assignments_removed": policy_assignments_removed});
        crate::db::licensing::audit(
            tx,
            now,
            actor,
            AuditAction::IdpConnectionRemoved,
            None,
            crate::db::licensing::AuditAbout {
                subject: Some(id),
                detail: Some(&detail.to_string()),
                ..Default::default()
            },
        )?;
        Ok(Removed {
            users_deleted,
            groups_deleted,
            scim_tokens_revoked: revoked as usize,
            mappings_removed,
            policy_assignments_removed,
            sessions_ended: ended as usize,
        })
    })
}

/// Changes a connection's switches, with the same rules as when adding it.
pub fn set_options(db: &Db, id: &str, options: &Options, actor: &Actor) -> Result<(), AddError> {
    let preset_key = db
        .read(|tx| idp::target_by_id(tx, id))?
        .ok_or_else(|| AddError::UnknownConnection(id.to_string()))?
        .preset;
    let preset = preset::find(&preset_key).ok_or(AddError::UnknownPreset(preset_key))?;
    if options.sign_requests && !preset.accepts_signed_requests {
        return Err(AddError::SigningNotSupported(preset.label));
    }
    db.write(|tx| {
        idp::set_options(tx, id, options, now_unix())?;
        let detail = serde_json::json!({"jit_users": options.jit_users,
            "sign_requests": options.sign_requests, "allow_idp_initiated": options.allow_idp_initiated});
        crate::db::licensing::audit(tx, now_unix(), actor, AuditAction::IdpConnectionChanged, None,
            crate::db::licensing::AuditAbout { subject: Some(id), detail: Some(&detail.to_string()), reason: None })
    })?;
    Ok(())
}

/// How refreshing one connection's metadata went.
/// Replaces a connection's IdP metadata with `xml` (a certificate rollover, a moved
/// sign-on URL): the same IdP only, as the daily refresh of a metadata URL does. Its
/// users, seats and settings stay. Returns how many signing certificates it now trusts.
pub fn update_metadata(
    db: &Db,
    id: &str,
    xml: &str,
    source: &str,
    actor: &Actor,
) -> Result<usize, AddError> {
    let meta = metadata::parse_idp_metadata(xml)?;
    let now = now_unix();
    db.write(|tx| {
        let Some(c) = idp::list(tx)?.into_iter().find(|c| c.id == id) else {
            return Err(AddError::UnknownConnection(id.to_string()));
        };
        if meta.entity_id != c.idp_entity_id {
            return Err(AddError::OtherIdp {
                found: meta.entity_id.clone(),
                expected: c.idp_entity_id,
            });
        }
        idp::replace_metadata(tx, id, &meta, xml, now)?;
        // A metadata URL stays the source (its daily refresh goes on); a file's name or
        // "the admin portal" is replaced by where the new copy came from.
        if !c.metadata_source.starts_with("https://") {
            idp::set_metadata_source(tx, id, source)?;
        }
        let detail = serde_json::json!({"metadata": "replaced",
            "certificates": meta.certificates.len(), "sso_url": meta.sso_url});
        crate::db::licensing::audit(
            tx,
            now,
            actor,
            AuditAction::IdpConnectionChanged,
            None,
            crate::db::licensing::AuditAbout {
                subject: Some(id),
                detail: Some(&detail.to_string()),
                reason: None,
            },
        )?;
        Ok(meta.certificates.len())
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refreshed {
    pub connection: String,
    /// `Ok(certificates now stored)` or why the last good copy was kept.
    pub outcome: Result<usize, String>,
}

/// Fetches the metadata of every URL-backed connection not tried since `tried_before`
/// (all with `None`) and stores what parses; a failure keeps the last good copy. The
/// entity ID must not change: a different IdP behind the same URL is not followed.
pub fn refresh_metadata(
    db: &Db,
    fetcher: &super::fetch::MetadataFetcher,
    tried_before: Option<i64>,
) -> Result<Vec<Refreshed>, DbError> {
    let due = db.read(|tx| idp::metadata_urls_due(tx, tried_before))?;
    let mut out = Vec::with_capacity(due.len());
    for (id, url, entity_id) in due {
        let fetched = fetcher
            .fetch(&url)
            .map_err(|e| e.to_string())
            .and_then(|xml| {
                let meta = metadata::parse_idp_metadata(&xml).map_err(|e| e.to_string())?;
                if meta.entity_id != entity_id {
                    return Err(format!(
                        "the metadata now names the entity ID {:?} instead of {entity_id:?}; add it as a new connection if the IdP really changed",
                        meta.entity_id
                    ));
                }
                Ok((meta, xml))
            });
        let now = now_unix();
        let outcome = db.write(|tx| match &fetched {
            Ok((meta, xml)) => {
                idp::replace_metadata(tx, &id, meta, xml, now)?;
                idp::record_refresh(tx, &id, now, None)?;
                Ok::<_, rusqlite::Error>(Ok(meta.certificates.len()))
            }
            Err(e) => {
                idp::record_refresh(tx, &id, now, Some(e))?;
                Ok(Err(e.clone()))
            }
        })?;
        match &outcome {
            Ok(n) => log::info!(
                "refreshed the metadata of IdP connection {id}: {n} signing certificate(s)"
            ),
            Err(e) => log::warn!(
                "IdP connection {id}: metadata refresh failed, keeping the last good copy: {e}"
            ),
        }
        out.push(Refreshed {
            connection: id,
            outcome,
        });
    }
    Ok(out)
}

/// Lower-case ASCII domain names with at least one dot.
pub fn normalize_domain(d: &str) -> Result<String, AddError> {
    let d = d
        .trim()
        .trim_start_matches('@')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if d.len() > 253 || !d.contains('.') || !d.split('.').all(label_ok) {
        return Err(AddError::BadDomain(d));
    }
    Ok(d)
}

/// A URL-safe id from a name: lower-case letters, digits and hyphens (no underscores:
/// Okta refuses ACS URLs with them).
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').chars().take(40).collect()
}

/// What the IdP admin must enter, and what seatgate learned from the metadata.
pub fn setup_text(public_url: &str, added: &Added) -> String {
    let p = added.preset;
    let login_url = format!("{public_url}/saml/login/{}", added.id);
    let metadata_url = format!("{public_url}/saml/metadata/{}", added.id);
    let mut s = format!(
        "IdP connection {id} ({label}) for {domains}\n\nEnter these values at the IdP:\n  Entity ID (Identifier, Audience):  {entity}\n  ACS URL (Reply URL, Single sign-on URL, HTTP-POST):  {acs}\n  Sign-on URL (to start sign-in from seatgate):  {login}\n  SP metadata:  {metadata}\n",
        id = added.id,
        label = p.label,
        domains = added.domains.join(", "),
        entity = metadata::sp_entity_id(public_url),
        acs = metadata::acs_url(public_url, &added.id),
        login = login_url,
        metadata = metadata_url,
    );
    for step in p.instructions {
        s.push_str(&format!("  - {step}\n"));
    }
    if added.options.sign_requests {
        s.push_str("  - seatgate signs its AuthnRequests (RSA-SHA256); the IdP finds the signing certificate in the SP metadata.\n");
    }
    if added.options.allow_idp_initiated {
        s.push_str("  - IdP-initiated sign-in (a tile in the IdP's app portal) opens the admin portal; it never activates a device.\n");
    }
    if added.options.jit_users {
        s.push_str("  - Users unknown to the directory are created on their first sign-in, with the groups it names.\n");
    }
    s.push_str(&format!(
        "\nFrom the IdP metadata:\n  IdP entity ID:  {}\n  Sign-on URL:  {}\n",
        added.metadata.entity_id, added.metadata.sso_url
    ));
    for c in &added.metadata.certificates {
        s.push_str(&format!(
            "  Signing certificate:  {} (SHA-256 {}), valid until {}\n",
            c.subject,
            c.sha256,
            rfc3339(c.not_after)
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saml::metadata::tests::{cert_b64, idp_metadata};

    fn db() -> (Db, std::path::PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("seatgate-idp-{}", crate::crypto::random_hex(6)));
        std::fs::create_dir_all(&dir).expect("dir");
        let db = Db::open(&dir.join("t.db"), &dir, crate::db::Synchronous::Normal).expect("db");
        (db, dir)
    }

    #[test]
    fn adds_a_connection_with_a_url_safe_id_and_owned_domains() {
        let (db, dir) = db();
        let xml = idp_metadata("https://sts.windows.net/t/", &[(None, &cert_b64("a"))]);
        let req = AddRequest {
            actor: &Actor::Cli,
            name: "Contoso Entra_ID",
            preset: "Entra",
            metadata_xml: &xml,
            metadata_source: "contoso.xml",
            domains: &[
                "Contoso.COM".into(),
                "@contoso.com".into(),
                "eu.contoso.com".into(),
            ],
            jit_users: None,
            sign_requests: false,
            allow_idp_initiated: false,
        };
        let added = add(&db, &req).expect("added");
        assert_eq!(added.id, "contoso-entra-id");
        assert_eq!(added.domains, ["contoso.com", "eu.contoso.com"]);
        let text = setup_text("https://gw.example", &added);
        assert!(text.contains("https://gw.example/saml/acs/contoso-entra-id"));
        assert!(text.contains("https://gw.example/saml/metadata"));

        // Same name again: a new id; a domain already owned: refused.
        let other = AddRequest {
            domains: &["fabrikam.com".into()],
            ..req
        };
        assert_eq!(add(&db, &other).expect("second").id, "contoso-entra-id-2");
        let clash = AddRequest {
            domains: &["eu.contoso.com".into()],
            ..other
        };
        assert!(matches!(
            add(&db, &clash),
            Err(AddError::DomainTaken { .. })
        ));
        let listed = db.read(idp::list).expect("list");
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].certificates.len(), 1);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn refuses_bad_domains_presets_and_unsigned_metadata() {
        let (db, dir) = db();
        let xml = idp_metadata("https://idp", &[(None, &cert_b64("a"))]);
        let base = AddRequest {
            actor: &Actor::Cli,
            name: "x",
            preset: "okta",
            metadata_xml: &xml,
            metadata_source: "f",
            domains: &["ok.example".into()],
            jit_users: None,
            sign_requests: false,
            allow_idp_initiated: false,
        };
        for bad in ["localhost", "a..b", "-a.com", "a b.com", "ex_ample.com"] {
            let req = AddRequest {
                domains: &[bad.into()],
                ..base
            };
            assert!(
                matches!(add(&db, &req), Err(AddError::BadDomain(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            add(
                &db,
                &AddRequest {
                    domains: &[],
                    ..base
                }
            ),
            Err(AddError::NoDomain)
        ));
        assert!(matches!(
            add(
                &db,
                &AddRequest {
                    preset: "adfs",
                    ..base
                }
            ),
            Err(AddError::UnknownPreset(_))
        ));
        let unsigned = idp_metadata("https://idp", &[(Some("encryption"), &cert_b64("e"))]);
        let r = add(
            &db,
            &AddRequest {
                metadata_xml: &unsigned,
                ..base
            },
        );
        assert!(matches!(
            r,
            Err(AddError::Metadata(MetadataError::NoSigningCertificate))
        ));
        assert!(matches!(
            add(
                &db,
                &AddRequest {
                    name: "!!!",
                    ..base
                }
            ),
            Err(AddError::BadName)
        ));
        let _ = std::fs::remove_dir_all(dir);
    }
}
