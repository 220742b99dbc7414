//! The outbox (`outbox`), invitations (`invitations`) and sent notifications
//! (`notifications_sent`).

use rusqlite::{OptionalExtension, Transaction, params};

/// What a message is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Invitation,
    Notification,
    Test,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Invitation => "invitation",
            Kind::Notification => "notification",
            Kind::Test => "test",
        }
    }
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub kind: Kind,
    pub recipient: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: Option<String>,
}

/// A message as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Message {
    pub id: i64,
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    #[serde(skip)]
    pub text_body: String,
    #[serde(skip)]
    pub html_body: Option<String>,
    /// `queued`, `sent` or `failed`.
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

const COLS: &str = "id, kind, recipient, subject, text_body, html_body, state, attempts, next_attempt_at, last_error, created_at, sent_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        id: r.get(0)?,
        kind: r.get(1)?,
        recipient: r.get(2)?,
        subject: r.get(3)?,
        text_body: r.get(4)?,
        html_body: r.get(5)?,
        state: r.get(6)?,
        attempts: r.get(7)?,
        next_attempt_at: r.get(8)?,
        last_error: r.get(9)?,
        created_at: r.get(10)?,
        sent_at: r.get(11)?,
    })
}

/// Queues a message, due now; returns its id.
pub fn enqueue(tx: &Transaction<'_>, m: &NewMessage, now: i64) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "INSERT INTO outbox (kind, recipient, subject, text_body, html_body, state, next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6, ?6)",
    )?
    .execute(params![
        m.kind.as_str(),
        m.recipient,
        m.subject,
        m.text_body,
        m.html_body,
        now
    ])?;
    Ok(tx.last_insert_rowid())
}

/// Queued messages due by `now`, oldest first.
pub fn due(tx: &Transaction<'_>, now: i64, limit: i64) -> rusqlite::Result<Vec<Message>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {COLS} FROM outbox WHERE state = 'queued' AND next_attempt_at <= ?1
         ORDER BY next_attempt_at, id LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![now, limit], row)?;
    rows.collect()
}

pub fn message(tx: &Transaction<'_>, id: i64) -> rusqlite::Result<Option<Message>> {
    tx.prepare_cached(&format!("SELECT {COLS} FROM outbox WHERE id = ?1"))?
        .query_row([id], row)
        .optional()
}

/// The newest messages, for the portal's outbox view.
pub fn recent(tx: &Transaction<'_>, limit: i64) -> rusqlite::Result<Vec<Message>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {COLS} FROM outbox ORDER BY id DESC LIMIT ?1"
    ))?;
    let rows = stmt.query_map([limit], row)?;
    rows.collect()
}

/// How many messages are in each state.
pub fn counts(tx: &Transaction<'_>) -> rusqlite::Result<(i64, i64, i64)> {
    tx.prepare_cached(
        "SELECT coalesce(sum(state = 'queued'), 0), coalesce(sum(state = 'sent'), 0),
                coalesce(sum(state = 'failed'), 0) FROM outbox",
    )?
    .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
}

pub fn mark_sent(tx: &Transaction<'_>, id: i64, now: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE outbox SET state = 'sent', sent_at = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
    )?
    .execute(params![id, now])?;
    scrub(tx, id)
}

/// An invitation's email holds its link, a credential: once the message is done with
/// (sent, failed or cancelled) its body is not kept.
fn scrub(tx: &Transaction<'_>, id: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE outbox SET text_body = '', html_body = NULL WHERE id = ?1 AND kind = 'invitation'",
    )?
    .execute([id])?;
    Ok(())
}

/// Cancels a message not sent yet (its invitation was resent or revoked).
pub fn cancel(tx: &Transaction<'_>, id: i64, why: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE outbox SET state = 'failed', last_error = ?2 WHERE id = ?1 AND state = 'queued'",
    )?
    .execute(params![id, why])?;
    scrub(tx, id)
}

/// A failed attempt: tried again at `retry_at`, or failed for good when `None`.
pub fn mark_attempt_failed(
    tx: &Transaction<'_>,
    id: i64,
    error: &str,
    retry_at: Option<i64>,
) -> rusqlite::Result<()> {
    match retry_at {
        Some(at) => tx
            .prepare_cached(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3 WHERE id = ?1",
            )?
            .execute(params![id, error, at])?,
        None => {
            tx.prepare_cached(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, state = 'failed' WHERE id = ?1",
            )?
            .execute(params![id, error])?;
            scrub(tx, id)?;
            1
        }
    };
    Ok(())
}

/// Sends a failed (or queued) message again, now. Not an invitation's (its body, with the
/// link, is gone): resend the invitation instead.
pub fn requeue(tx: &Transaction<'_>, id: i64, now: i64) -> rusqlite::Result<bool> {
    Ok(tx
        .prepare_cached(
            "UPDATE outbox SET state = 'queued', next_attempt_at = ?2, attempts = 0
             WHERE id = ?1 AND state <> 'sent' AND kind <> 'invitation'",
        )?
        .execute(params![id, now])?
        == 1)
}

/// Records that notification `kind` about `subject` went out; false if it already had.
pub fn note_notification(
    tx: &Transaction<'_>,
    kind: &str,
    subject: &str,
    now: i64,
) -> rusqlite::Result<bool> {
    Ok(tx
        .prepare_cached(
            "INSERT INTO notifications_sent (kind, subject, sent_at) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![kind, subject, now])?
        == 1)
}

/// An invitation as stored, with its message's delivery.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Invitation {
    pub id: String,
    pub email: String,
    pub method: String,
    pub license_id: Option<String>,
    pub sublicense_id: Option<String>,
    pub message_id: Option<i64>,
    pub key_id: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub opened_at: Option<i64>,
    pub used_at: Option<i64>,
    pub activated_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The message's state (`queued`, `sent`, `failed`) and its last error.
    pub delivery: Option<String>,
    pub delivery_error: Option<String>,
}

const INVITATION_COLS: &str =
    "i.id, i.email, i.method, i.license_id, i.sublicense_id, i.message_id, i.key_id,
    i.created_by, i.created_at, i.expires_at, i.opened_at, i.used_at, i.activated_at, i.revoked_at,
    o.state, o.last_error";

fn invitation_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Invitation> {
    Ok(Invitation {
        id: r.get(0)?,
        email: r.get(1)?,
        method: r.get(2)?,
        license_id: r.get(3)?,
        sublicense_id: r.get(4)?,
        message_id: r.get(5)?,
        key_id: r.get(6)?,
        created_by: r.get(7)?,
        created_at: r.get(8)?,
        expires_at: r.get(9)?,
        opened_at: r.get(10)?,
        used_at: r.get(11)?,
        activated_at: r.get(12)?,
        revoked_at: r.get(13)?,
        delivery: r.get(14)?,
        delivery_error: r.get(15)?,
    })
}

pub struct NewInvitation<'a> {
    pub id: &'a str,
    pub email: &'a str,
    pub method: &'a str,
    pub license_id: Option<&'a str>,
    pub sublicense_id: Option<&'a str>,
    pub token_hash: &'a str,
    pub message_id: i64,
    pub created_by: &'a str,
    pub expires_at: i64,
}

pub fn insert_invitation(
    tx: &Transaction<'_>,
    i: &NewInvitation<'_>,
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO invitations (id, email, email_key, method, license_id, sublicense_id, token_hash,
            message_id, created_by, created_at, expires_at)
         VALUES (?1, ?2, lower(?2), ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        i.id,
        i.email,
        i.method,
        i.license_id,
        i.sublicense_id,
        i.token_hash,
        i.message_id,
        i.created_by,
        now,
        i.expires_at
    ])?;
    Ok(())
}

pub fn invitation(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<Option<Invitation>> {
    tx.prepare_cached(&format!(
        "SELECT {INVITATION_COLS} FROM invitations i LEFT JOIN outbox o ON o.id = i.message_id WHERE i.id = ?1"
    ))?
    .query_row([id], invitation_row)
    .optional()
}

pub fn invitation_by_token(
    tx: &Transaction<'_>,
    token_hash: &str,
) -> rusqlite::Result<Option<Invitation>> {
    tx.prepare_cached(&format!(
        "SELECT {INVITATION_COLS} FROM invitations i LEFT JOIN outbox o ON o.id = i.message_id WHERE i.token_hash = ?1"
    ))?
    .query_row([token_hash], invitation_row)
    .optional()
}

/// The newest invitations.
pub fn invitations(tx: &Transaction<'_>, limit: i64) -> rusqlite::Result<Vec<Invitation>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {INVITATION_COLS} FROM invitations i LEFT JOIN outbox o ON o.id = i.message_id
         ORDER BY i.created_at DESC, i.id LIMIT ?1"
    ))?;
    let rows = stmt.query_map([limit], invitation_row)?;
    rows.collect()
}

/// A new token and message for an invitation (a resend); the old link stops working, and
/// the invitation holds no key until its new link is used.
pub fn reissue(
    tx: &Transaction<'_>,
    id: &str,
    token_hash: &str,
    message_id: i64,
    expires_at: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE invitations SET token_hash = ?2, message_id = ?3, expires_at = ?4, used_at = NULL, key_id = NULL WHERE id = ?1",
    )?
    .execute(params![id, token_hash, message_id, expires_at])?;
    Ok(())
}

pub fn set_opened(tx: &Transaction<'_>, id: &str, now: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE invitations SET opened_at = coalesce(opened_at, ?2) WHERE id = ?1")?
        .execute(params![id, now])?;
    Ok(())
}

pub fn set_used(
    tx: &Transaction<'_>,
    id: &str,
    key_id: Option<&str>,
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE invitations SET used_at = ?2, key_id = coalesce(?3, key_id), opened_at = coalesce(opened_at, ?2) WHERE id = ?1",
    )?
    .execute(params![id, now, key_id])?;
    Ok(())
}

pub fn set_revoked(tx: &Transaction<'_>, id: &str, now: i64) -> rusqlite::Result<bool> {
    Ok(tx
        .prepare_cached(
            "UPDATE invitations SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL AND activated_at IS NULL",
        )?
        .execute(params![id, now])?
        == 1)
}

/// A device was activated for `email` (SSO) or with `key_id`: their open invitations are
/// done.
pub fn mark_activated(
    tx: &Transaction<'_>,
    email: Option<&str>,
    key_id: Option<&str>,
    now: i64,
) -> rusqlite::Result<usize> {
    tx.prepare_cached(
        "UPDATE invitations SET activated_at = ?3
         WHERE activated_at IS NULL AND revoked_at IS NULL
           AND ((?1 IS NOT NULL AND method = 'sso' AND email_key = lower(?1))
             OR (?2 IS NOT NULL AND key_id = ?2))",
    )?
    .execute(params![email, key_id, now])
}

/// Whether `email` has an invitation still open (not activated, revoked or expired).
pub fn open_invitation_for(
    tx: &Transaction<'_>,
    email: &str,
    now: i64,
) -> rusqlite::Result<Option<String>> {
    tx.prepare_cached(
        "SELECT id FROM invitations WHERE email_key = lower(?1) AND activated_at IS NULL
           AND revoked_at IS NULL AND expires_at > ?2 ORDER BY created_at DESC LIMIT 1",
    )?
    .query_row(params![email, now], |r| r.get(0))
    .optional()
}

/// The emails of the active members of a group (by its case-folded name or external id)
/// who have no active device.
pub fn members_without_device(
    tx: &Transaction<'_>,
    group_key: &str,
) -> rusqlite::Result<Vec<String>> {
    let mut stmt = tx.prepare_cached(
        "SELECT DISTINCT coalesce(u.email_key, u.user_name_key) FROM groups g
           JOIN group_members m ON m.group_id = g.id JOIN users u ON u.id = m.user_id
         WHERE (g.display_name_key = ?1 OR lower(g.external_id) = ?1) AND u.active = 1
           AND NOT EXISTS (SELECT 1 FROM devices d WHERE d.user_id = u.id AND d.revoked_at IS NULL)
         ORDER BY 1",
    )?;
    let rows = stmt.query_map([group_key], |r| r.get::<_, String>(0))?;
    rows.collect()
}

/// Per SCIM token: the first failure since its last success and how many requests have
/// failed since, for tokens whose every request since `since` failed and whose first such
/// failure is no later than `failing_since`.
pub fn scim_failing(
    tx: &Transaction<'_>,
    since: i64,
    failing_since: i64,
) -> rusqlite::Result<Vec<(i64, i64, i64)>> {
    let mut stmt = tx.prepare_cached(
        "SELECT r.token_id, min(r.at), count(*) FROM scim_requests r
         WHERE r.status >= 400 AND r.token_id IS NOT NULL
           AND r.at > coalesce((SELECT max(s.at) FROM scim_requests s
                                WHERE s.token_id = r.token_id AND s.status < 400), 0)
           AND r.at > ?1
         GROUP BY r.token_id HAVING min(r.at) <= ?2",
    )?;
    let rows = stmt.query_map([since, failing_since], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    rows.collect()
}
