//! IdP connections, their signing certificates and their email domains.

use rusqlite::{OptionalExtension, Transaction, params};

use crate::domain::connection::IdpMetadata;
use crate::domain::identity::Purpose;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub id: String,
    pub name: String,
    pub preset: String,
    pub idp_entity_id: String,
    pub sso_url: String,
    pub domains: Vec<String>,
    /// (SHA-256 fingerprint, subject, not_after) per signing certificate.
    pub certificates: Vec<(String, String, i64)>,
    pub options: Options,
    /// Where the metadata came from: a file path or a URL.
    pub metadata_source: String,
    /// For metadata from a URL: the last successful and the last failed refresh.
    pub refresh: Option<RefreshState>,
}

/// Per-connection switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Create users unknown to the directory from their sign-in (IdPs without SCIM).
    pub jit_users: bool,
    /// Sign AuthnRequests with the SP key.
    pub sign_requests: bool,
    /// Accept unsolicited (IdP-initiated) responses, for the admin portal only.
    pub allow_idp_initiated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshState {
    pub url: String,
    pub last_attempt_at: Option<i64>,
    pub last_success_at: Option<i64>,
    pub last_error: Option<String>,
}

pub struct NewConnection<'a> {
    pub id: &'a str,
    pub options: Options,
    pub name: &'a str,
    pub preset: &'a str,
    pub metadata: &'a IdpMetadata,
    pub metadata_xml: &'a str,
    pub metadata_source: &'a str,
    pub domains: &'a [String],
}

/// Whether a connection has, or ever had, this id. Ids are never reused: a removed
/// connection's users, groups, SCIM tokens and mappings keep naming it, and a new
/// connection must not inherit them.
pub fn id_taken(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<bool> {
    tx.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM idp_connections WHERE id = ?1)
             OR EXISTS (SELECT 1 FROM audit_log WHERE action = 'idp_connection_added' AND subject = ?1)
             OR EXISTS (SELECT 1 FROM users WHERE connection_id = ?1)
             OR EXISTS (SELECT 1 FROM groups WHERE connection_id = ?1)
             OR EXISTS (SELECT 1 FROM api_tokens WHERE connection_id = ?1)
             OR EXISTS (SELECT 1 FROM group_mappings WHERE connection_id = ?1)",
    )?
    .query_row([id], |r| r.get(0))
}

/// The connection that owns `domain`, if any.
pub fn domain_owner(tx: &Transaction<'_>, domain: &str) -> rusqlite::Result<Option<String>> {
    tx.prepare_cached("SELECT connection_id FROM idp_domains WHERE domain = ?1")?
        .query_row([domain], |r| r.get(0))
        .optional()
}

pub fn insert(tx: &Transaction<'_>, c: &NewConnection<'_>, now: i64) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO idp_connections (id, name, preset, idp_entity_id, sso_url, metadata_xml, metadata_source, jit_users, sign_requests, allow_idp_initiated, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
        params![c.id, c.name, c.preset, c.metadata.entity_id, c.metadata.sso_url, c.metadata_xml, c.metadata_source, c.options.jit_users, c.options.sign_requests, c.options.allow_idp_initiated, now],
    )?;
    insert_certificates(tx, c.id, c.metadata)?;
    if c.metadata_source.starts_with("https://") {
        tx.execute(
            "INSERT INTO idp_metadata_urls (connection_id, url, last_attempt_at, last_success_at) VALUES (?1, ?2, ?3, ?3)",
            params![c.id, c.metadata_source, now],
        )?;
    }
    for d in c.domains {
        tx.execute(
            "INSERT INTO idp_domains (domain, connection_id) VALUES (?1, ?2)",
            params![d, c.id],
        )?;
    }
    Ok(())
}

fn insert_certificates(
    tx: &Transaction<'_>,
    id: &str,
    metadata: &IdpMetadata,
) -> rusqlite::Result<()> {
    for cert in &metadata.certificates {
        tx.execute(
            "INSERT INTO idp_certificates (connection_id, sha256, der, subject, not_after) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, cert.sha256, cert.der, cert.subject, cert.not_after],
        )?;
    }
    Ok(())
}

/// Replaces a connection's sign-on URL and signing certificates with fresh metadata.
pub fn replace_metadata(
    tx: &Transaction<'_>,
    id: &str,
    metadata: &IdpMetadata,
    xml: &str,
    now: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE idp_connections SET sso_url = ?2, metadata_xml = ?3, updated_at = ?4 WHERE id = ?1",
        params![id, metadata.sso_url, xml, now],
    )?;
    tx.execute(
        "DELETE FROM idp_certificates WHERE connection_id = ?1",
        [id],
    )?;
    insert_certificates(tx, id, metadata)
}

/// Records where a connection's metadata now comes from (a file or the portal).
pub fn set_metadata_source(tx: &Transaction<'_>, id: &str, source: &str) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE idp_connections SET metadata_source = ?2 WHERE id = ?1",
        params![id, source],
    )?;
    Ok(())
}

/// Connections with a metadata URL not tried since `tried_before` (all with `None`).
pub fn metadata_urls_due(
    tx: &Transaction<'_>,
    tried_before: Option<i64>,
) -> rusqlite::Result<Vec<(String, String, String)>> {
    let mut stmt = tx.prepare_cached(
        "SELECT u.connection_id, u.url, c.idp_entity_id FROM idp_metadata_urls u
         JOIN idp_connections c ON c.id = u.connection_id
         WHERE ?1 IS NULL OR coalesce(u.last_attempt_at, 0) < ?1 ORDER BY u.connection_id",
    )?;
    let rows = stmt.query_map([tried_before], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

/// Records a refresh attempt: success clears the error, failure keeps the last success.
pub fn record_refresh(
    tx: &Transaction<'_>,
    id: &str,
    now: i64,
    error: Option<&str>,
) -> rusqlite::Result<()> {
    match error {
        None => tx.execute(
            "UPDATE idp_metadata_urls SET last_attempt_at = ?2, last_success_at = ?2, last_error = NULL WHERE connection_id = ?1",
            params![id, now],
        )?,
        Some(e) => tx.execute(
            "UPDATE idp_metadata_urls SET last_attempt_at = ?2, last_error = ?3 WHERE connection_id = ?1",
            params![id, now, e],
        )?,
    };
    Ok(())
}

/// Changes a connection's switches; false if there is no such connection.
pub fn set_options(
    tx: &Transaction<'_>,
    id: &str,
    o: &Options,
    now: i64,
) -> rusqlite::Result<bool> {
    Ok(tx.execute(
        "UPDATE idp_connections SET jit_users = ?2, sign_requests = ?3, allow_idp_initiated = ?4, updated_at = ?5 WHERE id = ?1",
        params![id, o.jit_users, o.sign_requests, o.allow_idp_initiated, now],
    )? == 1)
}

pub fn list(tx: &Transaction<'_>) -> rusqlite::Result<Vec<Connection>> {
    let mut stmt = tx.prepare(
        "SELECT c.id, c.name, c.preset, c.idp_entity_id, c.sso_url, c.jit_users, c.sign_requests, c.allow_idp_initiated,
                c.metadata_source, u.url, u.last_attempt_at, u.last_success_at, u.last_error
         FROM idp_connections c LEFT JOIN idp_metadata_urls u ON u.connection_id = c.id
         ORDER BY c.created_at, c.id",
    )?;
    let rows: Vec<Connection> = stmt
        .query_map([], |r| {
            Ok(Connection {
                id: r.get(0)?,
                name: r.get(1)?,
                preset: r.get(2)?,
                idp_entity_id: r.get(3)?,
                sso_url: r.get(4)?,
                domains: Vec::new(),
                certificates: Vec::new(),
                options: Options {
                    jit_users: r.get(5)?,
                    sign_requests: r.get(6)?,
                    allow_idp_initiated: r.get(7)?,
                },
                metadata_source: r.get(8)?,
                refresh: match r.get::<_, Option<String>>(9)? {
                    Some(url) => Some(RefreshState {
                        url,
                        last_attempt_at: r.get(10)?,
                        last_success_at: r.get(11)?,
                        last_error: r.get(12)?,
                    }),
                    None => None,
                },
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::with_capacity(rows.len());
    for mut c in rows {
        let mut d = tx.prepare_cached(
            "SELECT domain FROM idp_domains WHERE connection_id = ?1 ORDER BY domain",
        )?;
        c.domains = d
            .query_map([&c.id], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut k = tx.prepare_cached(
            "SELECT sha256, subject, not_after FROM idp_certificates WHERE connection_id = ?1 ORDER BY not_after",
        )?;
        c.certificates = k
            .query_map([&c.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        out.push(c);
    }
    Ok(out)
}

/// Connection ids in creation order (for the SP metadata's ACS list).
pub fn ids(tx: &Transaction<'_>) -> rusqlite::Result<Vec<String>> {
    let mut stmt = tx.prepare_cached("SELECT id FROM idp_connections ORDER BY created_at, id")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}

/// What starting a sign-in needs to know about a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginTarget {
    pub id: String,
    pub preset: String,
    pub sso_url: String,
    pub sign_requests: bool,
    /// Signing certificates on file; without one no sign-in can be verified.
    pub certificates: i64,
}

fn login_target(r: &rusqlite::Row<'_>) -> rusqlite::Result<LoginTarget> {
    Ok(LoginTarget {
        id: r.get(0)?,
        preset: r.get(1)?,
        sso_url: r.get(2)?,
        sign_requests: r.get(3)?,
        certificates: r.get(4)?,
    })
}

const CERTIFICATE_COUNT: &str =
    "(SELECT count(*) FROM idp_certificates k WHERE k.connection_id = c.id)";

pub fn target_by_id(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<Option<LoginTarget>> {
    tx.prepare_cached(
        &format!("SELECT c.id, c.preset, c.sso_url, c.sign_requests, {CERTIFICATE_COUNT} FROM idp_connections c WHERE c.id = ?1"),
    )?
    .query_row([id], login_target)
    .optional()
}

pub fn target_by_domain(
    tx: &Transaction<'_>,
    domain: &str,
) -> rusqlite::Result<Option<LoginTarget>> {
    tx.prepare_cached(
        &format!("SELECT c.id, c.preset, c.sso_url, c.sign_requests, {CERTIFICATE_COUNT} FROM idp_domains d JOIN idp_connections c ON c.id = d.connection_id
         WHERE d.domain = ?1"),
    )?
    .query_row([domain], login_target)
    .optional()
}

/// An outstanding AuthnRequest.
pub struct PendingRequest<'a> {
    pub id: &'a str,
    pub relay_key: &'a str,
    pub connection_id: &'a str,
    pub purpose: Purpose,
    pub browser_hash: &'a str,
    pub email_hint: Option<&'a str>,
    pub return_to: Option<&'a str>,
    pub expires_at: i64,
}

/// Stores an outstanding request, drops ones expired for an hour, and keeps at most
/// `max_outstanding` unanswered ones (the oldest go first).
pub fn insert_request(
    tx: &Transaction<'_>,
    r: &PendingRequest<'_>,
    now: i64,
    max_outstanding: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM saml_requests WHERE expires_at < ?1")?
        .execute([now - 3600])?;
    tx.prepare_cached(
        "INSERT INTO saml_requests (id, relay_key, connection_id, purpose, browser_hash, email_hint, return_to, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![r.id, r.relay_key, r.connection_id, r.purpose.as_str(), r.browser_hash, r.email_hint, r.return_to, now, r.expires_at])?;
    tx.prepare_cached(
        "DELETE FROM saml_requests WHERE rowid IN (
           SELECT rowid FROM saml_requests WHERE consumed_at IS NULL ORDER BY created_at, rowid
           LIMIT max(0, (SELECT count(*) FROM saml_requests WHERE consumed_at IS NULL) - ?1))",
    )?
    .execute([max_outstanding])?;
    Ok(())
}

/// What verifying a response from a connection needs.
pub struct VerificationKeys {
    pub idp_entity_id: String,
    pub sso_url: String,
    pub preset: String,
    pub certificates_der: Vec<Vec<u8>>,
    /// Users unknown to the directory are created from their sign-in.
    pub jit_users: bool,
    /// Unsolicited responses are accepted (for the admin portal only).
    pub allow_idp_initiated: bool,
    pub domains: Vec<String>,
}

pub fn verification_keys(
    tx: &Transaction<'_>,
    id: &str,
) -> rusqlite::Result<Option<VerificationKeys>> {
    let Some((idp_entity_id, sso_url, preset, jit_users, allow_idp_initiated)) = tx
        .prepare_cached(
            "SELECT idp_entity_id, sso_url, preset, jit_users, allow_idp_initiated FROM idp_connections WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?
    else {
        return Ok(None);
    };
    let certificates_der = tx
        .prepare_cached("SELECT der FROM idp_certificates WHERE connection_id = ?1")?
        .query_map([id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let domains = tx
        .prepare_cached("SELECT domain FROM idp_domains WHERE connection_id = ?1")?
        .query_map([id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(VerificationKeys {
        idp_entity_id,
        sso_url,
        preset,
        certificates_der,
        jit_users,
        allow_idp_initiated,
        domains,
    }))
}

/// An outstanding request as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRequest {
    pub connection_id: String,
    pub purpose: Purpose,
    pub browser_hash: String,
    pub return_to: Option<String>,
    pub email_hint: Option<String>,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
}

pub fn request(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<Option<StoredRequest>> {
    tx.prepare_cached(
        "SELECT connection_id, browser_hash, return_to, email_hint, expires_at, consumed_at, purpose FROM saml_requests WHERE id = ?1",
    )?
    .query_row([id], |r| {
        Ok(StoredRequest {
            connection_id: r.get(0)?,
            browser_hash: r.get(1)?,
            return_to: r.get(2)?,
            email_hint: r.get(3)?,
            expires_at: r.get(4)?,
            consumed_at: r.get(5)?,
            purpose: Purpose::parse(&r.get::<_, String>(6)?),
        })
    })
    .optional()
}

/// Marks a request used; false if it already was (a concurrent second use).
pub fn consume_request(tx: &Transaction<'_>, id: &str, now: i64) -> rusqlite::Result<bool> {
    Ok(tx
        .prepare_cached(
            "UPDATE saml_requests SET consumed_at = ?2 WHERE id = ?1 AND consumed_at IS NULL",
        )?
        .execute(params![id, now])?
        == 1)
}

/// Records an accepted assertion ID; false if it was seen before (a replay).
pub fn remember_assertion(
    tx: &Transaction<'_>,
    id: &str,
    expires_at: i64,
    now: i64,
) -> rusqlite::Result<bool> {
    tx.prepare_cached("DELETE FROM saml_seen_assertions WHERE expires_at < ?1")?
        .execute([now])?;
    Ok(tx
        .prepare_cached(
            "INSERT OR IGNORE INTO saml_seen_assertions (id, expires_at) VALUES (?1, ?2)",
        )?
        .execute(params![id, expires_at])?
        == 1)
}

/// Deletes a connection with its domains, certificates, metadata URL and outstanding
/// sign-in requests; false if there was none.
pub fn delete(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<bool> {
    Ok(tx
        .prepare_cached("DELETE FROM idp_connections WHERE id = ?1")?
        .execute([id])?
        == 1)
}

/// The connection that owns an email domain, if any.
pub fn connection_of_domain(
    tx: &Transaction<'_>,
    domain: &str,
) -> rusqlite::Result<Option<String>> {
    tx.prepare_cached("SELECT connection_id FROM idp_domains WHERE domain = ?1")?
        .query_row([domain], |r| r.get(0))
        .optional()
}
