-- Who may administer the gateway, and how they are signed in.

-- Break-glass administrators: local accounts that work when the IdP does not.
-- password_hash is an Argon2id PHC string.
CREATE TABLE local_admins (
    username       TEXT PRIMARY KEY COLLATE NOCASE,
    password_hash  TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    last_login_at  INTEGER
) STRICT;

-- Admin portal sessions. Only the SHA-256 of the cookie value is stored. A session ends
-- at expires_at (absolute), after the idle timeout past last_seen_at, or at logout.
CREATE TABLE admin_sessions (
    id_hash        TEXT PRIMARY KEY,
    kind           TEXT NOT NULL CHECK (kind IN ('local', 'sso')),
    subject        TEXT NOT NULL,
    display_name   TEXT NOT NULL,
    connection_id  TEXT,
    csrf_token     TEXT NOT NULL,
    client         TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    last_seen_at   INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    ended_at       INTEGER
) STRICT, WITHOUT ROWID;
CREATE INDEX admin_sessions_expires ON admin_sessions (expires_at);

-- Every sign-in attempt (SSO and break-glass) with its outcome and the detail an admin
-- needs; never the assertion or a password.
CREATE TABLE sign_in_log (
    id             INTEGER PRIMARY KEY,
    at             INTEGER NOT NULL,
    method         TEXT NOT NULL CHECK (method IN ('saml', 'local')),
    purpose        TEXT NOT NULL,
    connection_id  TEXT,
    identity       TEXT,
    outcome        TEXT NOT NULL,
    detail         TEXT,
    client         TEXT NOT NULL
) STRICT;
CREATE INDEX sign_in_log_at ON sign_in_log (at);

-- Connections may ask for signed AuthnRequests (the SP key is in <data_dir>/saml/).
ALTER TABLE idp_connections ADD COLUMN sign_requests INTEGER NOT NULL DEFAULT 0 CHECK (sign_requests IN (0, 1));

-- Connections whose metadata came from a URL are refreshed from it on a schedule; a
-- failed fetch keeps the last good copy (in idp_connections and idp_certificates).
CREATE TABLE idp_metadata_urls (
    connection_id    TEXT PRIMARY KEY REFERENCES idp_connections (id) ON DELETE CASCADE,
    url              TEXT NOT NULL,
    last_attempt_at  INTEGER,
    last_success_at  INTEGER,
    last_error       TEXT
) STRICT, WITHOUT ROWID;

-- Sign-ins now say what they are for. Outstanding requests live minutes, so the table
-- is recreated rather than altered.
DROP TABLE saml_requests;
CREATE TABLE saml_requests (
    id             TEXT PRIMARY KEY,
    relay_key      TEXT NOT NULL UNIQUE,
    connection_id  TEXT NOT NULL REFERENCES idp_connections (id) ON DELETE CASCADE,
    purpose        TEXT NOT NULL CHECK (purpose IN ('test', 'admin', 'activation')),
    browser_hash   TEXT NOT NULL,
    email_hint     TEXT,
    return_to      TEXT,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    consumed_at    INTEGER
) STRICT;
CREATE INDEX saml_requests_expires ON saml_requests (expires_at);
