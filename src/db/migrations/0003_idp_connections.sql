-- SAML identity provider connections. `id` is a short slug used in URLs
-- (/saml/acs/{id}); hyphens only, because Okta refuses ACS URLs with underscores.
CREATE TABLE idp_connections (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    preset               TEXT NOT NULL,
    idp_entity_id        TEXT NOT NULL,
    sso_url              TEXT NOT NULL,
    metadata_xml         TEXT NOT NULL,
    metadata_source      TEXT NOT NULL,
    -- Create users (and their groups, by name) from sign-ins, for IdPs without SCIM.
    jit_users            INTEGER NOT NULL DEFAULT 0 CHECK (jit_users IN (0, 1)),
    allow_idp_initiated  INTEGER NOT NULL DEFAULT 0 CHECK (allow_idp_initiated IN (0, 1)),
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
) STRICT;

-- The IdP's signing certificates (several during a rollover). A connection without one is
-- refused: samael skips signature checks when it has no certificate.
CREATE TABLE idp_certificates (
    connection_id  TEXT NOT NULL REFERENCES idp_connections (id) ON DELETE CASCADE,
    sha256         TEXT NOT NULL,
    der            BLOB NOT NULL,
    subject        TEXT NOT NULL,
    not_after      INTEGER NOT NULL,
    PRIMARY KEY (connection_id, sha256)
) STRICT, WITHOUT ROWID;

-- Email domains each connection may assert identities in; a domain belongs to one
-- connection (IdP A must not sign in ceo@domain-of-B).
CREATE TABLE idp_domains (
    domain         TEXT PRIMARY KEY,
    connection_id  TEXT NOT NULL REFERENCES idp_connections (id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX idp_domains_connection ON idp_domains (connection_id);
