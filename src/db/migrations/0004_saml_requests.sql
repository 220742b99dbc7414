-- Outstanding SP-initiated sign-ins. Each AuthnRequest ID (128 random bits, starting with
-- a letter) is single-use, expires quickly and is bound to the browser that started it by
-- a cookie whose hash is stored. RelayState is the opaque relay_key, never a URL.
CREATE TABLE saml_requests (
    id             TEXT PRIMARY KEY,
    relay_key      TEXT NOT NULL UNIQUE,
    connection_id  TEXT NOT NULL REFERENCES idp_connections (id) ON DELETE CASCADE,
    browser_hash   TEXT NOT NULL,
    email_hint     TEXT,
    return_to      TEXT,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    consumed_at    INTEGER
) STRICT;
CREATE INDEX saml_requests_expires ON saml_requests (expires_at);
