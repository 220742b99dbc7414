//! Bearer tokens for machine clients (SCIM provisioning now; the admin API later). A token
//! is 256 random bits shown once; only its SHA-256 is stored. Tokens are scoped, revocable,
//! and remember when they were last used.

use rusqlite::{OptionalExtension, Transaction};

use crate::audit::{Actor, AuditAction};
use crate::clock::now_unix;
use crate::crypto::{constant_time_eq, new_secret_token, sha256_hex};

/// `last_used_at` is refreshed at most this often, so authentication does not write on
/// every request.
const LAST_USED_RESOLUTION_SECS: i64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Scim,
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Scim => "scim",
            Scope::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The IdP connection a SCIM token provisions for (None: the unassigned scope).
    pub connection_id: Option<String>,
}

/// Creates a token (audited as `actor`); returns its id and the secret (the only time it
/// exists in clear). A SCIM token bound to `connection` reads and writes only that
/// connection's users and groups; unbound, only the unassigned scope's.
pub fn create(
    tx: &Transaction<'_>,
    scope: Scope,
    name: &str,
    actor: &Actor,
    connection: Option<&str>,
) -> rusqlite::Result<(i64, String)> {
    let token = new_secret_token();
    let now = now_unix();
    tx.prepare_cached(
        "INSERT INTO api_tokens (scope, name, token_hash, created_at, connection_id) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute((scope.as_str(), name, sha256_hex(token.as_bytes()), now, connection))?;
    let id = tx.last_insert_rowid();
    let action = match scope {
        Scope::Scim => AuditAction::ScimTokenCreated,
        Scope::Admin => AuditAction::AdminTokenCreated,
    };
    audit_token(tx, now, actor, action, id, name)?;
    Ok((id, token))
}

fn audit_token(
    tx: &Transaction<'_>,
    now: i64,
    actor: &Actor,
    action: AuditAction,
    id: i64,
    name: &str,
) -> rusqlite::Result<()> {
    let detail = serde_json::json!({ "name": name }).to_string();
    super::licensing::audit(
        tx,
        now,
        actor,
        action,
        None,
        super::licensing::AuditAbout {
            subject: Some(&id.to_string()),
            detail: Some(&detail),
            ..Default::default()
        },
    )
}

/// A live token that a request presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    pub id: i64,
    pub name: String,
    pub last_used_at: Option<i64>,
    /// The connection whose directory resources this token may see (None: unassigned).
    pub connection_id: Option<String>,
}

/// The live token of `scope` whose secret is `presented`.
pub fn authenticate(
    tx: &Transaction<'_>,
    scope: Scope,
    presented: &str,
) -> rusqlite::Result<Option<Presented>> {
    let hash = sha256_hex(presented.as_bytes());
    let row: Option<(Presented, String)> = tx
        .prepare_cached(
            "SELECT id, name, last_used_at, token_hash, connection_id FROM api_tokens
             WHERE token_hash = ?1 AND scope = ?2 AND revoked_at IS NULL",
        )?
        .query_row((&hash, scope.as_str()), |r| {
            Ok((
                Presented {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    last_used_at: r.get(2)?,
                    connection_id: r.get(4)?,
                },
                r.get(3)?,
            ))
        })
        .optional()?;
    // The lookup is by hash of a 256-bit secret; the constant-time comparison guards the
    // final equality anyway.
    Ok(row
        .filter(|(_, stored)| constant_time_eq(stored.as_bytes(), hash.as_bytes()))
        .map(|(token, _)| token))
}

/// Whether `last_used_at` is stale enough to be worth a write.
pub fn needs_touch(last_used_at: Option<i64>) -> bool {
    last_used_at.is_none_or(|t| now_unix() - t >= LAST_USED_RESOLUTION_SECS)
}

pub fn touch(tx: &Transaction<'_>, id: i64) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE api_tokens SET last_used_at = ?1 WHERE id = ?2",
        (now_unix(), id),
    )?;
    Ok(())
}

pub fn list(tx: &Transaction<'_>, scope: Scope) -> rusqlite::Result<Vec<TokenInfo>> {
    let mut stmt = tx.prepare(
        "SELECT id, name, created_at, last_used_at, revoked_at, connection_id FROM api_tokens WHERE scope = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([scope.as_str()], |r| {
        Ok(TokenInfo {
            id: r.get(0)?,
            name: r.get(1)?,
            created_at: r.get(2)?,
            last_used_at: r.get(3)?,
            revoked_at: r.get(4)?,
            connection_id: r.get(5)?,
        })
    })?;
    rows.collect()
}

/// Revokes the live tokens with this id or name (audited as `actor`); returns how many.
pub fn revoke(
    tx: &Transaction<'_>,
    scope: Scope,
    id_or_name: &str,
    actor: &Actor,
) -> rusqlite::Result<usize> {
    revoke_where(
        tx,
        scope,
        "(CAST(id AS TEXT) = ?3 OR name = ?3)",
        id_or_name,
        actor,
    )
}

/// Revokes every live SCIM token bound to a connection (when it is removed); returns how
/// many.
pub fn revoke_of_connection(
    tx: &Transaction<'_>,
    connection: &str,
    actor: &Actor,
) -> rusqlite::Result<usize> {
    revoke_where(tx, Scope::Scim, "connection_id = ?3", connection, actor)
}

/// Revokes the live tokens of `scope` that `condition` (on `?3` = `value`) selects, each
/// audited.
fn revoke_where(
    tx: &Transaction<'_>,
    scope: Scope,
    condition: &str,
    value: &str,
    actor: &Actor,
) -> rusqlite::Result<usize> {
    let now = now_unix();
    let revoked: Vec<(i64, String)> = tx
        .prepare_cached(&format!(
            "UPDATE api_tokens SET revoked_at = ?1
             WHERE scope = ?2 AND revoked_at IS NULL AND {condition}
             RETURNING id, name"
        ))?
        .query_map((now, scope.as_str(), value), |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let action = match scope {
        Scope::Scim => AuditAction::ScimTokenRevoked,
        Scope::Admin => AuditAction::AdminTokenRevoked,
    };
    for (id, name) in &revoked {
        audit_token(tx, now, actor, action, *id, name)?;
    }
    Ok(revoked.len())
}
