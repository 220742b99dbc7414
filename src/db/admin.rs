//! Admin access storage: group mappings, break-glass admins, admin sessions and the
//! sign-in log. Plain SQL over the caller's transaction; the rules live in `crate::admin`.

use std::borrow::Cow;

use rusqlite::{OptionalExtension, Transaction, params};

/// Sign-in log rows kept; older ones are deleted as new ones arrive.
const SIGN_IN_LOG_ROWS: i64 = 100_000;
/// Sign-in log fields come from clients and IdPs: at most this many bytes each are kept,
/// so that a row stays small whatever was sent.
const IDENTITY_MAX_BYTES: usize = 256;
const DETAIL_MAX_BYTES: usize = 1024;
const CLIENT_MAX_BYTES: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admins,
    Primary,
    Sublicense,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admins => "admins",
            Role::Primary => "primary",
            Role::Sublicense => "sublicense",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub id: String,
    pub group_ref: String,
    pub role: String,
    pub license_id: Option<String>,
    pub sublicense_id: Option<String>,
    pub created_at: i64,
    /// The connection whose groups this mapping applies to (None: the unassigned scope).
    pub connection_id: Option<String>,
}

/// What a new mapping grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    Admins,
    Primary {
        license_id: &'a str,
    },
    Sublicense {
        license_id: &'a str,
        sublicense_id: &'a str,
    },
}

/// Adds a mapping for the groups of `connection` (None: the unassigned scope); `None` if
/// this group already has this role there.
pub fn add_mapping(
    tx: &Transaction<'_>,
    id: &str,
    group_ref: &str,
    connection: Option<&str>,
    target: Target<'_>,
    now: i64,
) -> rusqlite::Result<Option<String>> {
    let (role, license_id, sublicense_id) = match target {
        Target::Admins => (Role::Admins, None, None),
        Target::Primary { license_id } => (Role::Primary, Some(license_id), None),
        Target::Sublicense {
            license_id,
            sublicense_id,
        } => (Role::Sublicense, Some(license_id), Some(sublicense_id)),
    };
    let inserted = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO group_mappings (id, group_ref, group_key, role, license_id, sublicense_id, created_at, connection_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![id, group_ref, fold(group_ref), role.as_str(), license_id, sublicense_id, now, connection])?;
    Ok((inserted == 1).then(|| id.to_string()))
}

pub fn mapping(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<Option<Mapping>> {
    tx.prepare_cached(
        "SELECT id, group_ref, role, license_id, sublicense_id, created_at, connection_id FROM group_mappings WHERE id = ?1",
    )?
    .query_row([id], mapping_row)
    .optional()
}

fn mapping_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Mapping> {
    Ok(Mapping {
        id: r.get(0)?,
        group_ref: r.get(1)?,
        role: r.get(2)?,
        license_id: r.get(3)?,
        sublicense_id: r.get(4)?,
        created_at: r.get(5)?,
        connection_id: r.get(6)?,
    })
}

pub fn mappings(tx: &Transaction<'_>) -> rusqlite::Result<Vec<Mapping>> {
    let mut stmt = tx.prepare_cached(
        "SELECT id, group_ref, role, license_id, sublicense_id, created_at, connection_id FROM group_mappings
         ORDER BY role, group_key, connection_id",
    )?;
    let rows = stmt.query_map([], mapping_row)?;
    rows.collect()
}

pub fn remove_mapping(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<bool> {
    Ok(tx
        .prepare_cached("DELETE FROM group_mappings WHERE id = ?1")?
        .execute([id])?
        == 1)
}

/// The admins-mapped groups that a directory user's groups (by displayName or externalId)
/// or the group values a sign-in through `connection` asserted match, as the mappings name
/// them. A mapping matches only groups of its own connection: a directory group of the
/// same scope, or a value asserted by that connection (never by another one).
pub fn admin_groups_matching(
    tx: &Transaction<'_>,
    user_id: Option<&str>,
    connection: Option<&str>,
    asserted_groups: &[String],
) -> rusqlite::Result<Vec<String>> {
    let mut found = Vec::new();
    if let Some(user_id) = user_id {
        let mut stmt = tx.prepare_cached(
            "SELECT DISTINCT m.group_ref FROM group_mappings m
             JOIN groups g ON (m.group_key = g.display_name_key OR m.group_key = lower(g.external_id))
                  AND m.connection_id IS g.connection_id
             JOIN group_members gm ON gm.group_id = g.id
             WHERE m.role = 'admins' AND gm.user_id = ?1",
        )?;
        for row in stmt.query_map([user_id], |r| r.get::<_, String>(0))? {
            found.push(row?);
        }
    }
    let Some(connection) = connection else {
        return Ok(found);
    };
    let mut stmt = tx.prepare_cached(
        "SELECT group_ref FROM group_mappings WHERE role = 'admins' AND group_key = ?1 AND connection_id = ?2",
    )?;
    for group in asserted_groups {
        if let Some(g) = stmt
            .query_row([fold(group), connection.to_string()], |r| {
                r.get::<_, String>(0)
            })
            .optional()?
            && !found.contains(&g)
        {
            found.push(g);
        }
    }
    Ok(found)
}

pub fn fold(s: &str) -> String {
    s.trim().to_lowercase()
}

/// Creates or replaces a break-glass admin's password; true if the admin is new.
pub fn set_local_admin(
    tx: &Transaction<'_>,
    username: &str,
    password_hash: &str,
    now: i64,
) -> rusqlite::Result<bool> {
    let updated = tx
        .prepare_cached(
            "UPDATE local_admins SET password_hash = ?2, updated_at = ?3 WHERE username = ?1",
        )?
        .execute(params![username, password_hash, now])?;
    if updated == 1 {
        return Ok(false);
    }
    tx.prepare_cached(
        "INSERT INTO local_admins (username, password_hash, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
    )?
    .execute(params![username, password_hash, now])?;
    Ok(true)
}

/// A break-glass admin's stored name (its original casing) and password hash.
pub fn local_admin(
    tx: &Transaction<'_>,
    username: &str,
) -> rusqlite::Result<Option<(String, String)>> {
    tx.prepare_cached("SELECT username, password_hash FROM local_admins WHERE username = ?1")?
        .query_row([username], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAdmin {
    pub username: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_login_at: Option<i64>,
}

pub fn local_admins(tx: &Transaction<'_>) -> rusqlite::Result<Vec<LocalAdmin>> {
    let mut stmt = tx.prepare_cached(
        "SELECT username, created_at, updated_at, last_login_at FROM local_admins ORDER BY username",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(LocalAdmin {
            username: r.get(0)?,
            created_at: r.get(1)?,
            updated_at: r.get(2)?,
            last_login_at: r.get(3)?,
        })
    })?;
    rows.collect()
}

pub fn delete_local_admin(tx: &Transaction<'_>, username: &str) -> rusqlite::Result<bool> {
    Ok(tx
        .prepare_cached("DELETE FROM local_admins WHERE username = ?1")?
        .execute([username])?
        == 1)
}

/// Stores a one-time sign-in link for a break-glass admin (its token's hash).
pub fn create_login_link(
    tx: &Transaction<'_>,
    username: &str,
    token_hash: &str,
    now: i64,
    expires_at: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO admin_login_links (token_hash, username, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![token_hash, username, now, expires_at])?;
    Ok(())
}

/// Uses a sign-in link: the admin's name if the link exists, is unused and unexpired.
pub fn consume_login_link(
    tx: &Transaction<'_>,
    token_hash: &str,
    now: i64,
) -> rusqlite::Result<Option<String>> {
    tx.prepare_cached(
        "UPDATE admin_login_links SET used_at = ?2
         WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2 RETURNING username",
    )?
    .query_row(params![token_hash, now], |r| r.get(0))
    .optional()
}

pub fn note_local_login(tx: &Transaction<'_>, username: &str, now: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE local_admins SET last_login_at = ?2 WHERE username = ?1")?
        .execute(params![username, now])?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    Local,
    Sso,
}

impl SessionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Local => "local",
            SessionKind::Sso => "sso",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub kind: String,
    /// The break-glass username, or the directory user id (the identity when unprovisioned).
    pub subject: String,
    pub display_name: String,
    pub connection_id: Option<String>,
    pub csrf_token: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub ended_at: Option<i64>,
    /// SSO only: the group values the sign-in asserted.
    pub asserted_groups: Vec<String>,
}

pub struct NewSession<'a> {
    pub id_hash: &'a str,
    pub kind: SessionKind,
    pub subject: &'a str,
    pub display_name: &'a str,
    pub connection_id: Option<&'a str>,
    pub csrf_token: &'a str,
    pub client: &'a str,
    pub expires_at: i64,
    pub asserted_groups: &'a [String],
}

/// Stores a new session and drops sessions that ended more than a day ago.
pub fn create_session(tx: &Transaction<'_>, s: &NewSession<'_>, now: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM admin_sessions WHERE expires_at < ?1 OR ended_at < ?1")?
        .execute([now - 86_400])?;
    tx.prepare_cached(
        "INSERT INTO admin_sessions (id_hash, kind, subject, display_name, connection_id, csrf_token, client, created_at, last_seen_at, expires_at, asserted_groups)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10)",
    )?
    .execute(params![
        s.id_hash,
        s.kind.as_str(),
        s.subject,
        s.display_name,
        s.connection_id,
        s.csrf_token,
        s.client,
        now,
        s.expires_at,
        serde_json::to_string(s.asserted_groups).unwrap_or_else(|_| "[]".into())
    ])?;
    Ok(())
}

pub fn session(tx: &Transaction<'_>, id_hash: &str) -> rusqlite::Result<Option<Session>> {
    tx.prepare_cached(
        "SELECT kind, subject, display_name, connection_id, csrf_token, created_at, last_seen_at, expires_at, ended_at, asserted_groups
         FROM admin_sessions WHERE id_hash = ?1",
    )?
    .query_row([id_hash], |r| {
        Ok(Session {
            kind: r.get(0)?,
            subject: r.get(1)?,
            display_name: r.get(2)?,
            connection_id: r.get(3)?,
            csrf_token: r.get(4)?,
            created_at: r.get(5)?,
            last_seen_at: r.get(6)?,
            expires_at: r.get(7)?,
            ended_at: r.get(8)?,
            asserted_groups: serde_json::from_str(&r.get::<_, String>(9)?).unwrap_or_default(),
        })
    })
    .optional()
}

pub fn touch_session(tx: &Transaction<'_>, id_hash: &str, now: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE admin_sessions SET last_seen_at = ?2 WHERE id_hash = ?1")?
        .execute(params![id_hash, now])?;
    Ok(())
}

pub fn end_session(tx: &Transaction<'_>, id_hash: &str, now: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE admin_sessions SET ended_at = ?2 WHERE id_hash = ?1 AND ended_at IS NULL",
    )?
    .execute(params![id_hash, now])?;
    Ok(())
}

/// Ends every open session of one subject (a changed password, a removed admin).
pub fn end_sessions_of(
    tx: &Transaction<'_>,
    kind: SessionKind,
    subject: &str,
    now: i64,
) -> rusqlite::Result<usize> {
    tx.prepare_cached(
        "UPDATE admin_sessions SET ended_at = ?3
         WHERE kind = ?1 AND subject = ?2 COLLATE NOCASE AND ended_at IS NULL",
    )?
    .execute(params![kind.as_str(), subject, now])
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignIn {
    pub at: i64,
    /// `saml` or `local`.
    pub method: String,
    /// `test`, `admin` or `activation`.
    pub purpose: String,
    pub connection_id: Option<String>,
    pub identity: Option<String>,
    /// `OK` or the reason code the user saw.
    pub outcome: String,
    pub detail: Option<String>,
    pub client: String,
    /// How many attempts the row stands for (limiter refusals are counted, see
    /// [`record_refusal`]); 1 for everything else.
    pub count: i64,
}

/// Records one attempt; identity, detail and client are cut to their caps here, whoever
/// the caller is.
pub fn record_sign_in(tx: &Transaction<'_>, s: &SignIn) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO sign_in_log (at, method, purpose, connection_id, identity, outcome, detail, client, count)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        s.at,
        s.method,
        s.purpose,
        s.connection_id,
        s.identity.as_deref().map(|i| clip(i, IDENTITY_MAX_BYTES)),
        s.outcome,
        s.detail.as_deref().map(|d| clip(d, DETAIL_MAX_BYTES)),
        clip(&s.client, CLIENT_MAX_BYTES),
        s.count.max(1)
    ])?;
    let last = tx.last_insert_rowid();
    if last % 1000 == 0 {
        tx.prepare_cached("DELETE FROM sign_in_log WHERE id <= ?1")?
            .execute([last - SIGN_IN_LOG_ROWS])?;
    }
    Ok(())
}

/// Records a refusal by a rate limiter: counted into the newest row recorded since
/// `since` with the same method, purpose, identity, outcome, detail and client, else a new
/// row. A flood of refused attempts is then one row per key and window, not a row each.
pub fn record_refusal(tx: &Transaction<'_>, s: &SignIn, since: i64) -> rusqlite::Result<()> {
    let counted = tx
        .prepare_cached(
            "UPDATE sign_in_log SET count = count + 1 WHERE id = (
                 SELECT id FROM sign_in_log
                 WHERE at >= ?1 AND method = ?2 AND purpose = ?3 AND identity IS ?4
                   AND outcome = ?5 AND detail IS ?6 AND client = ?7
                 ORDER BY id DESC LIMIT 1)",
        )?
        .execute(params![
            since,
            s.method,
            s.purpose,
            s.identity.as_deref().map(|i| clip(i, IDENTITY_MAX_BYTES)),
            s.outcome,
            s.detail.as_deref().map(|d| clip(d, DETAIL_MAX_BYTES)),
            clip(&s.client, CLIENT_MAX_BYTES),
        ])?;
    if counted == 0 {
        record_sign_in(tx, s)?;
    }
    Ok(())
}

/// `text` cut to at most `max` bytes on a character boundary, with `…` when cut.
fn clip(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…", &text[..end]))
}

/// The newest sign-ins first; only refusals when `failures_only`.
pub fn recent_sign_ins(
    tx: &Transaction<'_>,
    failures_only: bool,
    limit: u32,
) -> rusqlite::Result<Vec<SignIn>> {
    let mut stmt = tx.prepare_cached(
        "SELECT at, method, purpose, connection_id, identity, outcome, detail, client, count FROM sign_in_log
         WHERE (?1 = 0 OR outcome <> 'OK') ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![failures_only as i64, limit], |r| {
        Ok(SignIn {
            at: r.get(0)?,
            method: r.get(1)?,
            purpose: r.get(2)?,
            connection_id: r.get(3)?,
            identity: r.get(4)?,
            outcome: r.get(5)?,
            detail: r.get(6)?,
            client: r.get(7)?,
            count: r.get(8)?,
        })
    })?;
    rows.collect()
}

/// Ends the live SSO sessions opened through a connection; returns how many.
pub fn end_sessions_through(
    tx: &Transaction<'_>,
    connection_id: &str,
    now: i64,
) -> rusqlite::Result<usize> {
    tx.prepare_cached(
        "UPDATE admin_sessions SET ended_at = ?2 WHERE connection_id = ?1 AND ended_at IS NULL",
    )?
    .execute(params![connection_id, now])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_text_and_cuts_long_text_on_a_character_boundary() {
        assert_eq!(clip("alice", 8), "alice");
        let cut = clip("ééééé", 8);
        assert!(cut.len() <= 8 && cut.ends_with('…'), "{cut}");
        assert_eq!(cut, "éé…");
    }
}
