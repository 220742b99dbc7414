-- The outbox: every email the gateway sends (invitations, admin notifications, test
-- messages), kept until sent, so nothing is lost across restarts. A message waits until
-- next_attempt_at; a temporary failure (4xx, the server down or hanging) is retried with
-- backoff, a permanent one (5xx) or too many attempts ends it as failed with the reason.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    kind             TEXT NOT NULL CHECK (kind IN ('invitation', 'notification', 'test')),
    recipient        TEXT NOT NULL,
    subject          TEXT NOT NULL,
    text_body        TEXT NOT NULL,
    html_body        TEXT,
    state            TEXT NOT NULL CHECK (state IN ('queued', 'sent', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    sent_at          INTEGER
) STRICT;
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

-- Invitations to install and activate: the link's token is stored as its SHA-256 and
-- works until expires_at, until used (the landing page's Continue), or until revoked or
-- resent (a new token). The message's delivery is the outbox row's (message_id).
-- method: sso (sign in with this email) or key (a license key of one device, made when
-- the invitee continues, key_id). opened_at: the landing page was shown; used_at: the
-- invitee continued; activated_at: a device was activated for this email or key.
CREATE TABLE invitations (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    email_key     TEXT NOT NULL,
    method        TEXT NOT NULL CHECK (method IN ('sso', 'key')),
    license_id    TEXT REFERENCES licenses (id) ON DELETE SET NULL,
    sublicense_id TEXT REFERENCES sublicenses (id) ON DELETE SET NULL,
    token_hash    TEXT NOT NULL UNIQUE,
    message_id    INTEGER,
    key_id        TEXT,
    created_by    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    opened_at     INTEGER,
    used_at       INTEGER,
    activated_at  INTEGER,
    revoked_at    INTEGER
) STRICT;
CREATE INDEX invitations_email ON invitations (email_key, created_at);
CREATE INDEX invitations_created ON invitations (created_at);

-- Admin notifications already sent, by what they are about (kind and subject, e.g. a
-- license and the days left), so each goes out once.
CREATE TABLE notifications_sent (
    kind     TEXT NOT NULL,
    subject  TEXT NOT NULL,
    sent_at  INTEGER NOT NULL,
    PRIMARY KEY (kind, subject)
) STRICT, WITHOUT ROWID;
